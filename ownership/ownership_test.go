package ownership_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

func owner(alloc string, index int) ownership.Owner {
	return ownership.Owner{AllocID: alloc, NodeID: "node-1", UHostID: "uhost-a", Job: "rmq", Cluster: "orders", Role: "broker", AllocIndex: index, Resource: "eip-a"}
}

func TestGetClaimRelease(t *testing.T) {
	consul := testutil.StartConsul(t)
	s := ownership.New(consul.Client, "")
	ctx := context.Background()

	o, idx, err := s.Get(ctx, ownership.KindEIP, "eip-a")
	if o != nil || idx != 0 || err != nil {
		t.Fatalf("empty Get = %v, %d, %v", o, idx, err)
	}
	ok, err := s.Claim(ctx, ownership.KindEIP, "eip-a", owner("alloc-1", 0), 0)
	if !ok || err != nil {
		t.Fatalf("first claim = %v, %v", ok, err)
	}
	// A second create-only claim loses.
	if ok, err := s.Claim(ctx, ownership.KindEIP, "eip-a", owner("alloc-2", 0), 0); ok || err != nil {
		t.Fatalf("create-only claim over a record = %v, %v", ok, err)
	}
	o, idx, err = s.Get(ctx, ownership.KindEIP, "eip-a")
	if err != nil || o == nil || o.AllocID != "alloc-1" || o.Slot() != "orders/broker/0" || o.UpdatedAt.IsZero() || idx == 0 {
		t.Fatalf("Get = %+v, %d, %v", o, idx, err)
	}
	// The record is where docs/binding.md says, as JSON.
	pair, _, err := consul.Client.KV().Get("rocketmq-nomad/owners/eip/eip-a", nil)
	if err != nil || pair == nil || !strings.Contains(string(pair.Value), `"alloc_id":"alloc-1"`) {
		t.Fatalf("raw record = %+v, %v", pair, err)
	}
	// A claim with a stale index loses; with the current one it wins.
	if ok, _ := s.Claim(ctx, ownership.KindEIP, "eip-a", owner("alloc-2", 0), idx-1); ok {
		t.Fatal("claim with a stale index won")
	}
	if ok, err := s.Claim(ctx, ownership.KindEIP, "eip-a", owner("alloc-2", 0), idx); !ok || err != nil {
		t.Fatalf("claim with the current index = %v, %v", ok, err)
	}
	// Release by someone who no longer owns it leaves the record.
	if err := s.Release(ctx, ownership.KindEIP, "eip-a", "alloc-1"); err != nil {
		t.Fatal(err)
	}
	if o, _, _ := s.Get(ctx, ownership.KindEIP, "eip-a"); o == nil || o.AllocID != "alloc-2" {
		t.Fatalf("release by a former owner changed the record: %+v", o)
	}
	if err := s.Release(ctx, ownership.KindEIP, "eip-a", "alloc-2"); err != nil {
		t.Fatal(err)
	}
	if o, _, _ := s.Get(ctx, ownership.KindEIP, "eip-a"); o != nil {
		t.Fatalf("record left after release by its owner: %+v", o)
	}
	// Releasing nothing is fine.
	if err := s.Release(ctx, ownership.KindEIP, "eip-a", "alloc-2"); err != nil {
		t.Fatal(err)
	}
}

// TestClaimRace: many goroutines claim the same record from the same index;
// exactly one wins, and the record is the winner's.
func TestClaimRace(t *testing.T) {
	consul := testutil.StartConsul(t)
	s := ownership.New(consul.Client, "race")
	ctx := context.Background()
	for round, prev := range []string{"", "alloc-old"} {
		key := fmt.Sprintf("eip-race-%d", round)
		var idx uint64
		if prev != "" {
			if ok, err := s.Claim(ctx, ownership.KindEIP, key, owner(prev, 1), 0); !ok || err != nil {
				t.Fatalf("seed claim: %v %v", ok, err)
			}
			_, idx, _ = s.Get(ctx, ownership.KindEIP, key)
		}
		const n = 8
		var wg sync.WaitGroup
		wins := make([]bool, n)
		errs := make([]error, n)
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				wins[i], errs[i] = s.Claim(ctx, ownership.KindEIP, key, owner(fmt.Sprintf("alloc-%d", i), 1), idx)
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("claim %d: %v", i, errs[i])
			}
			if wins[i] {
				if winner >= 0 {
					t.Fatalf("round %d: claims %d and %d both won", round, winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody won", round)
		}
		o, _, _ := s.Get(ctx, ownership.KindEIP, key)
		if o == nil || o.AllocID != fmt.Sprintf("alloc-%d", winner) {
			t.Fatalf("round %d: record %+v, winner alloc-%d", round, o, winner)
		}
	}
}

func TestKeysAndValidation(t *testing.T) {
	s := ownership.New(mustClient(t), "/pfx/")
	k, err := s.Key(ownership.KindBackend, "ulb-1/vserver-1/orders/namesrv/0")
	if err != nil || k != "pfx/owners/backend/ulb-1/vserver-1/orders/namesrv/0" {
		t.Fatalf("Key = %q, %v", k, err)
	}
	for _, tc := range []struct{ kind, key string }{
		{"disk", "x"}, {ownership.KindEIP, ""}, {ownership.KindEIP, "a//b"}, {ownership.KindEIP, "../x"},
		{ownership.KindEIP, "a b"}, {ownership.KindEIP, "/a"}, {ownership.KindEIP, "a?b"},
	} {
		if _, err := s.Key(tc.kind, tc.key); err == nil {
			t.Errorf("Key(%q, %q) accepted", tc.kind, tc.key)
		}
	}
	for _, o := range []ownership.Owner{{Cluster: "c", Role: "r"}, {AllocID: "a", Role: "r"}, {AllocID: "a", Cluster: "c"}, {AllocID: "a", Cluster: "c", Role: "r", AllocIndex: -1}} {
		if err := o.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted", o)
		}
	}
	a, b := owner("x", 0), owner("y", 0)
	if !a.SameSlot(b) {
		t.Error("same cluster/role/index is not the same slot")
	}
	b.AllocIndex = 1
	if a.SameSlot(b) {
		t.Error("different index is the same slot")
	}
}

func mustClient(t *testing.T) *consulapi.Client {
	t.Helper()
	c, err := consulapi.NewClient(&consulapi.Config{Address: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEIPIDFromSeedLayout(t *testing.T) {
	consul := testutil.StartConsul(t)
	s := ownership.New(consul.Client, "")
	ctx := context.Background()
	kv := consul.Client.KV()
	for k, v := range map[string]string{
		"brokerEip/orders/eipId/0": "eip-abc123",
		"brokerEip/orders/eipId/1": " \"eip-def456\"\n",
		"brokerEip/orders/eipId/2": "not an id",
	} {
		if _, err := kv.Put(&consulapi.KVPair{Key: k, Value: []byte(v)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		cluster string
		index   int
		want    string
		errHas  string
	}{
		{"orders", 0, "eip-abc123", ""},
		{"orders", 1, "eip-def456", ""},
		{"orders", 2, "", "not an EIP id"},
		{"orders", 3, "", "consul key brokerEip/orders/eipId/3 is missing"},
		{"a/b", 0, "", "cannot be used"},
		{"orders", -1, "", "negative"},
	}
	for _, tc := range tests {
		got, err := s.EIPIDFromSeedLayout(ctx, tc.cluster, tc.index)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("%s/%d: err %v, want %q", tc.cluster, tc.index, err, tc.errHas)
			}
			// A key that is missing or malformed is for good.
			var bad *ownership.SeedKeyError
			if !errors.As(err, &bad) {
				t.Errorf("%s/%d: err %v is not a SeedKeyError", tc.cluster, tc.index, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s/%d = %q, %v; want %q", tc.cluster, tc.index, got, err, tc.want)
		}
	}

	// Consul unreachable is not a problem of the key: worth retrying.
	consul.Stop()
	_, err := s.EIPIDFromSeedLayout(ctx, "orders", 0)
	var bad *ownership.SeedKeyError
	if err == nil || errors.As(err, &bad) {
		t.Errorf("with consul down: err %v, want a read error that is not a SeedKeyError", err)
	}
}

func TestConsulDown(t *testing.T) {
	s := ownership.New(mustClient(t), "")
	ctx := context.Background()
	if _, _, err := s.Get(ctx, ownership.KindEIP, "eip-a"); err == nil || !strings.Contains(err.Error(), "rocketmq-nomad/owners/eip/eip-a") {
		t.Fatalf("Get with consul down: %v", err)
	}
	if _, err := s.Claim(ctx, ownership.KindEIP, "eip-a", owner("a", 0), 0); err == nil {
		t.Fatal("Claim with consul down succeeded")
	}
}
