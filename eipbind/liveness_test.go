package eipbind_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/eipbind"
	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// scheduler answers liveness as Nomad would, from a table of allocation
// states the test changes.
type scheduler struct {
	mu     sync.Mutex
	states map[string]string // alloc id -> client status
}

func newScheduler(states map[string]string) *scheduler { return &scheduler{states: states} }

func (s *scheduler) set(alloc, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states[alloc] = status
}

func (s *scheduler) Gone(_ context.Context, o ownership.Owner) (bool, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[o.AllocID]
	if !ok {
		return true, "allocation " + o.AllocID + " is unknown to nomad", nil
	}
	switch st {
	case "complete", "failed", "lost":
		return true, "allocation " + o.AllocID + " is " + st, nil
	}
	return false, "allocation " + o.AllocID + " is " + st, nil
}

func shortRetry() *eipbind.RetryPolicy {
	return &eipbind.RetryPolicy{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond, MaxAttempts: 1000, Deadline: 1500 * time.Millisecond}
}

// TestLiveOwnerIsNeverTakenOver: a record of another allocation of the same
// slot whose allocation still runs (a canary, a client that reconnects)
// keeps its EIP; the bind waits, gives up with a retryable error, and
// changes nothing. Once the scheduler says the allocation is lost, the same
// bind moves the EIP.
func TestLiveOwnerIsNeverTakenOver(t *testing.T) {
	consul := testutil.StartConsul(t)
	for _, status := range []string{"running", "pending", "unknown"} {
		t.Run(status, func(t *testing.T) {
			sched := newScheduler(map[string]string{"alloc-old": status, "alloc-new": "pending"})
			f := newFixture(t, consul, fixtureOpts{liveness: sched, retry: shortRetry()})
			f.seedOwner(t, "eip-c", broker("alloc-old", 0, "uhost-c"))

			_, err := f.binder.Bind(context.Background(), req("eip-c", "uhost-a", "alloc-new", 0))
			if err == nil || eipbind.IsPermanent(err) || !strings.Contains(err.Error(), "held by allocation alloc-old") {
				t.Fatalf("bind over a %s owner: err = %v (permanent %v), want a retryable wait", status, err, eipbind.IsPermanent(err))
			}
			if got := f.boundTo(t, "eip-c"); got != "uhost-c" {
				t.Fatalf("eip moved from a %s owner to %q", status, got)
			}
			if got := f.owner(t, "eip-c"); got != "alloc-old" {
				t.Fatalf("owner record = %q, want alloc-old kept", got)
			}

			sched.set("alloc-old", "lost")
			res, err := f.binder.Bind(context.Background(), req("eip-c", "uhost-a", "alloc-new", 0))
			if err != nil || res.PreviousUHost != "uhost-c" {
				t.Fatalf("bind after the owner was lost = %+v, %v", res, err)
			}
			if got := f.boundTo(t, "eip-c"); got != "uhost-a" {
				t.Fatalf("eip bound to %q after takeover, want uhost-a", got)
			}
		})
	}
}

// TestLiveOwnerOnSameHostOrFree: a live owner's record also holds a free EIP
// and one bound to this very host (a replacement placed on the same node
// while its predecessor still runs).
func TestLiveOwnerOnSameHostOrFree(t *testing.T) {
	consul := testutil.StartConsul(t)
	for _, c := range []struct{ eip, host string }{{"eip-a", "uhost-a"}, {"eip-c", "uhost-c"}} {
		sched := newScheduler(map[string]string{"alloc-old": "running"})
		f := newFixture(t, consul, fixtureOpts{liveness: sched, retry: shortRetry()})
		f.seedOwner(t, c.eip, broker("alloc-old", 0, c.host))
		before := f.boundTo(t, c.eip)
		if _, err := f.binder.Bind(context.Background(), req(c.eip, c.host, "alloc-new", 0)); err == nil || !strings.Contains(err.Error(), "waiting for it to let go") {
			t.Fatalf("%s: bind over a live owner: %v", c.eip, err)
		}
		if f.owner(t, c.eip) != "alloc-old" || f.boundTo(t, c.eip) != before {
			t.Fatalf("%s: live owner's record or binding changed: owner %q bound %q", c.eip, f.owner(t, c.eip), f.boundTo(t, c.eip))
		}
	}
}

// TestReleaseDoesNotStealFromSameHostReplacement: while an allocation
// releases its EIP, a replacement on the same host waits for the release to
// finish and then binds; the EIP ends bound to the host for the replacement.
// Before the releasing mark, the replacement found the EIP on its host,
// claimed it without a call, and the release then unbound it from under it.
func TestReleaseDoesNotStealFromSameHostReplacement(t *testing.T) {
	consul := testutil.StartConsul(t)
	sched := newScheduler(map[string]string{"alloc-old": "complete", "alloc-new": "pending"})
	// The release's unbind is held until the replacement has read the
	// record; the replacement's retries outlast it.
	gate := make(chan struct{})
	var once sync.Once
	retry := eipbind.RetryPolicy{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond, MaxAttempts: 1000, Deadline: 20 * time.Second}
	f := newFixture(t, consul, fixtureOpts{liveness: sched, retry: &retry, api: func(a eipbind.API) eipbind.API {
		return &gatedUnbind{API: a, gate: gate}
	}})
	f.seedOwner(t, "eip-c", broker("alloc-old", 0, "uhost-c"))

	relDone := make(chan error, 1)
	go func() { relDone <- f.binder.Release(context.Background(), req("eip-c", "uhost-c", "alloc-old", 0)) }()
	// Wait until the release has marked the record.
	deadline := time.Now().Add(10 * time.Second)
	for {
		o, _, err := f.store.Get(context.Background(), ownership.KindEIP, "eip-c")
		if err == nil && o != nil && o.ReleasingUntil != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("release never marked the record: %+v %v", o, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	bindDone := make(chan error, 1)
	go func() {
		_, err := f.binder.Bind(context.Background(), req("eip-c", "uhost-c", "alloc-new", 0))
		bindDone <- err
	}()
	time.Sleep(300 * time.Millisecond) // the replacement reads the marked record and waits
	once.Do(func() { close(gate) })
	if err := <-relDone; err != nil {
		t.Fatalf("release: %v", err)
	}
	if err := <-bindDone; err != nil {
		t.Fatalf("replacement bind: %v", err)
	}
	if got := f.boundTo(t, "eip-c"); got != "uhost-c" {
		t.Fatalf("eip bound to %q after release + replacement, want uhost-c", got)
	}
	if got := f.owner(t, "eip-c"); got != "alloc-new" {
		t.Fatalf("owner = %q, want alloc-new", got)
	}
}

type gatedUnbind struct {
	eipbind.API
	gate chan struct{}
}

func (g *gatedUnbind) UnBindEIP(ctx context.Context, eipID, uhostID string) error {
	<-g.gate
	return g.API.UnBindEIP(ctx, eipID, uhostID)
}
