package collector_test

import (
	"context"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/collector"
	"github.com/rmqnomad/rocketmq-nomad-driver/eipbind"
	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi/simtest"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
	"github.com/rmqnomad/rocketmq-nomad-driver/ulbbind"
)

// sched answers liveness as Nomad would, from a table the test sets.
type sched struct {
	mu     sync.Mutex
	status map[string]string
}

func (s *sched) Gone(_ context.Context, o ownership.Owner) (bool, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.status[o.AllocID]
	switch {
	case !ok:
		return true, "unknown to nomad", nil
	case st == "complete" || st == "failed" || st == "lost":
		return true, st, nil
	}
	return false, st, nil
}

var nonKey = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

type world struct {
	env   *simtest.Env
	store *ownership.Store
	eips  *eipbind.Binder
	ulbs  *ulbbind.Binder
	sched *sched
}

func newWorld(t *testing.T, consul *testutil.ConsulAgent) *world {
	env := simtest.Start(t, ucloudsim.Config{}, simtest.Options{CallTimeout: 2 * time.Second})
	store := ownership.New(consul.Client, "test/"+nonKey.ReplaceAllString(t.Name(), "_"))
	retry := eipbind.RetryPolicy{Initial: time.Millisecond, Max: 10 * time.Millisecond, MaxAttempts: 20, Deadline: 20 * time.Second}
	return &world{
		env: env, store: store, sched: &sched{status: map[string]string{}},
		eips: eipbind.New(env.API, store, eipbind.Guard{}, eipbind.Options{Retry: retry, PollInterval: time.Millisecond}),
		ulbs: ulbbind.New(env.API, store, ulbbind.Guard{}, ulbbind.Options{Retry: retry, PollInterval: time.Millisecond}),
	}
}

func owner(alloc, role string, index int, uhost string, port int) ownership.Owner {
	return ownership.Owner{AllocID: alloc, UHostID: uhost, Namespace: "default", JobID: "rmq", Group: role,
		Cluster: "orders", Role: role, AllocIndex: index, Port: port}
}

// TestCollectGoneOwners: bindings of allocations the scheduler reports
// lost, complete or unknown are removed from the cloud and their records
// deleted; a live allocation's binding and a binding without our record are
// untouched. With every owner alive (the negative control) nothing changes.
func TestCollectGoneOwners(t *testing.T) {
	consul := testutil.StartConsul(t)
	for _, control := range []bool{false, true} {
		name := map[bool]string{false: "gone owners", true: "control: all alive"}[control]
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, consul)
			ctx := context.Background()
			// A lost broker's EIP on uhost-a, a live broker's on uhost-b,
			// a completed NameServer's backend and a live one's.
			mustBind(t, w, "eip-a", owner("a-lost", "broker", 0, "uhost-a", 0))
			mustBind(t, w, "eip-b", owner("a-live", "broker", 1, "uhost-b", 0))
			mustRegister(t, w, owner("n-done", "namesrv", 0, "uhost-a", 31000))
			mustRegister(t, w, owner("n-live", "namesrv", 1, "uhost-b", 31001))
			w.sched.status = map[string]string{"a-lost": "lost", "a-live": "running", "n-done": "complete", "n-live": "running"}
			if control {
				w.sched.status["a-lost"], w.sched.status["n-done"] = "running", "running"
			}
			c, err := collector.New(collector.Config{Records: w.store, Liveness: w.sched, EIPs: w.eips, Backends: w.ulbs, CallsPerSecond: 100})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := c.Once(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wantFreeA := !control
			if got := w.env.EIP(t, "eip-a").ResourceID; (got == "") != wantFreeA {
				t.Errorf("eip-a bound to %q; want free=%v", got, wantFreeA)
			}
			if got := w.env.EIP(t, "eip-b").ResourceID; got != "uhost-b" {
				t.Errorf("live owner's eip-b bound to %q", got)
			}
			if got := w.env.EIP(t, "eip-c").ResourceID; got != "uhost-c" {
				t.Errorf("eip-c (no owner record) bound to %q, must be untouched", got)
			}
			ports := map[int]bool{}
			for _, b := range w.env.Backends(t, "ulb-ns", "vserver-ns") {
				ports[b.Port] = true
			}
			if ports[31000] == wantFreeA || !ports[31001] || !ports[30000] {
				t.Errorf("backends after the pass: %v (want 31000 present=%v, 31001 and the seeded 30000 present)", ports, control)
			}
			want := 2
			if control {
				want = 0
			}
			if len(rep.Collected) != want {
				t.Errorf("collected %d records, want %d: %+v", len(rep.Collected), want, rep)
			}
			entries, _, err := w.store.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 4-want {
				t.Errorf("%d records left, want %d", len(entries), 4-want)
			}
			// A second pass is a no-op.
			if rep, err := c.Once(ctx); err != nil || len(rep.Collected) != 0 {
				t.Errorf("second pass: %+v, %v", rep, err)
			}
		})
	}
}

func mustBind(t *testing.T, w *world, eip string, o ownership.Owner) {
	t.Helper()
	if _, err := w.eips.Bind(context.Background(), eipbind.Request{EIPID: eip, UHostID: o.UHostID, Owner: o}); err != nil {
		t.Fatalf("bind %s: %v", eip, err)
	}
}

func mustRegister(t *testing.T, w *world, o ownership.Owner) {
	t.Helper()
	if _, err := w.ulbs.Register(context.Background(), ulbbind.Request{ULBID: "ulb-ns", VServerID: "vserver-ns", UHostID: o.UHostID, Port: o.Port, Owner: o}); err != nil {
		t.Fatalf("register %s:%d: %v", o.UHostID, o.Port, err)
	}
}
