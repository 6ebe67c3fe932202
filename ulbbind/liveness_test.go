package ulbbind_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ulbbind"
)

// TestLivePredecessorKeepsItsBackend: a NameServer whose allocation still
// runs (a canary, a reconnecting client) keeps its backend when another
// allocation of its slot registers; the registration waits and gives up
// with a retryable error. Once the scheduler reports the predecessor lost,
// the same registration replaces its backend.
func TestLivePredecessorKeepsItsBackend(t *testing.T) {
	consul := testutil.StartConsul(t)
	status := "running"
	live := ownership.LivenessFunc(func(_ context.Context, o ownership.Owner) (bool, string, error) {
		if o.AllocID == "alloc-old" {
			return status == "lost", "allocation alloc-old is " + status, nil
		}
		return false, "running", nil
	})
	retry := ulbbind.RetryPolicy{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond, MaxAttempts: 1000, Deadline: 1500 * time.Millisecond}
	f := newFixture(t, consul, fixtureOpts{liveness: live, retry: &retry})
	ctx := context.Background()
	if _, err := f.binder.Register(ctx, req("uhost-a", 31000, "alloc-old", 0)); err != nil {
		t.Fatal(err)
	}
	_, err := f.binder.Register(ctx, req("uhost-b", 31001, "alloc-new", 0))
	if err == nil || ulbbind.IsPermanent(err) || !strings.Contains(err.Error(), "held by allocation alloc-old") {
		t.Fatalf("register over a live predecessor: %v (permanent %v)", err, ulbbind.IsPermanent(err))
	}
	if got := f.backends(t); !slices.Contains(got, "uhost-a:31000") || slices.Contains(got, "uhost-b:31001") {
		t.Fatalf("backends after a refused replacement: %v", got)
	}
	status = "lost"
	if _, err := f.binder.Register(ctx, req("uhost-b", 31001, "alloc-new", 0)); err != nil {
		t.Fatal(err)
	}
	if got := f.backends(t); slices.Contains(got, "uhost-a:31000") || !slices.Contains(got, "uhost-b:31001") {
		t.Fatalf("backends after the predecessor was lost: %v", got)
	}
}
