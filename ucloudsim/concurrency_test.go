package ucloudsim

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// TestConcurrentClients: many clients racing for the same EIP and the same
// backend slot. Exactly one bind wins each round, duplicate backends are
// refused, and the counters add up. Run with -race.
func TestConcurrentClients(t *testing.T) {
	srv := startSim(t, Config{Faults: Faults{Rules: []FaultRule{
		{Action: "DescribeEIP", RetCode: 5000, Rate: Rate(0.2)},
	}}})
	hosts := []string{"uhost-a", "uhost-b"}
	const rounds, workers = 20, 4
	var calls atomic.Int64
	for round := range rounds {
		var wins, dupRefused atomic.Int64
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := newClients(srv, withRetries(0))
				host := hosts[w%len(hosts)]
				calls.Add(1)
				if err := c.bind("eip-free", host); err == nil {
					wins.Add(1)
				} else if retCode(err) != RetCodeEIPOperationFailed {
					t.Errorf("bind: %v", err)
				}
				calls.Add(1)
				_, err := c.allocateBackend("vserver-t", "uhost-a", 40000+round)
				switch retCode(err) {
				case 0:
				case RetCodeParamsNotAvailable:
					dupRefused.Add(1)
				default:
					t.Errorf("allocate: %v", err)
				}
				calls.Add(1)
				_ = describeEIPErr(c)
				calls.Add(1)
				_, _ = c.uhost.DescribeUHostInstance(c.uhost.NewDescribeUHostInstanceRequest())
			}()
		}
		wg.Wait()
		if wins.Load() != 1 || dupRefused.Load() != workers-1 {
			t.Fatalf("round %d: %d binds won, %d duplicate backends refused", round, wins.Load(), dupRefused.Load())
		}
		// Free the EIP for the next round.
		snap := srv.Snapshot()
		for _, e := range snap.EIPs {
			if e.ID == "eip-free" {
				calls.Add(1)
				mustOK(t, newClients(srv).unbind("eip-free", e.ResourceID))
			}
		}
	}
	var total int64
	for _, c := range srv.Counters() {
		total += c.Requests
	}
	if total != calls.Load() {
		t.Fatalf("counters say %d requests, clients made %d", total, calls.Load())
	}
	if n := len(srv.Snapshot().ULBs[0].VServers[0].Backends); n != rounds+1 {
		t.Fatalf("%d backends, want %d", n, rounds+1)
	}
}

// BenchmarkBindUnbind measures one SDK round trip pair through the simulator.
func BenchmarkBindUnbind(b *testing.B) {
	srv := startSim(b, Config{})
	c := newClients(srv)
	b.ResetTimer()
	for range b.N {
		if err := c.bind("eip-free", "uhost-a"); err != nil {
			b.Fatal(err)
		}
		if err := c.unbind("eip-free", "uhost-a"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDescribeULB measures a DescribeULB of a ULB with 50 backends.
func BenchmarkDescribeULB(b *testing.B) {
	srv := startSim(b, Config{})
	c := newClients(srv)
	for port := 1; port < 50; port++ {
		if _, err := c.allocateBackend("vserver-t", "uhost-a", port); err != nil {
			b.Fatal(fmt.Errorf("port %d: %w", port, err))
		}
	}
	req := c.ulb.NewDescribeULBRequest()
	req.ULBId = ptr("ulb-t")
	b.ResetTimer()
	for range b.N {
		if _, err := c.ulb.DescribeULB(req); err != nil {
			b.Fatal(err)
		}
	}
}
