package ownership_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// TestClaimCluster: the first namespace to claim a cluster id owns it; its
// other jobs join; a job of another namespace is refused with an error that
// names the owner and the fix, until none of the owner's jobs exists.
func TestClaimCluster(t *testing.T) {
	consul := testutil.StartConsul(t)
	s := ownership.New(consul.Client, "tenancy")
	ctx := context.Background()
	jobs := map[string]bool{"team-a/rmq-ns": true, "team-a/rmq-broker": true}
	exists := func(_ context.Context, ns, job string) (bool, error) { return jobs[ns+"/"+job], nil }

	if err := s.ClaimCluster(ctx, "orders", "team-a", "rmq-ns", exists); err != nil {
		t.Fatal(err)
	}
	if err := s.ClaimCluster(ctx, "orders", "team-a", "rmq-broker", exists); err != nil {
		t.Fatalf("second job of the owner namespace: %v", err)
	}
	err := s.ClaimCluster(ctx, "orders", "team-b", "thief", exists)
	if !errors.Is(err, ownership.ErrClusterTaken) || !strings.Contains(err.Error(), `namespace "team-a"`) || !strings.Contains(err.Error(), "rocketmq.cluster") {
		t.Fatalf("claim from another namespace: %v", err)
	}
	tn, _, err := s.GetCluster(ctx, "orders")
	if err != nil || tn.Namespace != "team-a" || strings.Join(tn.Jobs, ",") != "rmq-ns,rmq-broker" {
		t.Fatalf("tenant record = %+v, %v", tn, err)
	}
	// One job purged: still owned. Both purged: the claim moves.
	delete(jobs, "team-a/rmq-ns")
	if err := s.ClaimCluster(ctx, "orders", "team-b", "thief", exists); !errors.Is(err, ownership.ErrClusterTaken) {
		t.Fatalf("claim while one owner job exists: %v", err)
	}
	delete(jobs, "team-a/rmq-broker")
	if err := s.ClaimCluster(ctx, "orders", "team-b", "newcomer", exists); err != nil {
		t.Fatalf("claim after the owner's jobs were purged: %v", err)
	}
	if tn, _, _ := s.GetCluster(ctx, "orders"); tn == nil || tn.Namespace != "team-b" {
		t.Fatalf("tenant after takeover = %+v", tn)
	}
	// Without Nomad (exists nil) a claim is never taken over.
	if err := s.ClaimCluster(ctx, "orders", "team-c", "x", nil); !errors.Is(err, ownership.ErrClusterTaken) {
		t.Fatalf("claim without nomad: %v", err)
	}
}
