package driver

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi/simtest"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// TestReconcileCost: the API calls of one re-check pass over 100 bound tasks
// on one client (50 brokers with an EIP each, 50 name servers on one
// VServer), converged: a few batched describes, not one call per task, and
// no write. With RMQ_BENCH=1 it prints the figures next to those of the
// per-task re-check (a Verify per binding).
func TestReconcileCost(t *testing.T) {
	const n = 50
	state := simtest.State()
	state.Hosts = []ucloudsim.Host{{ID: "uhost-a", PrivateIP: "10.9.0.11"}}
	state.EIPs = nil
	for i := 0; i < n; i++ {
		state.EIPs = append(state.EIPs, ucloudsim.EIP{ID: fmt.Sprintf("eip-%02d", i), IP: fmt.Sprintf("203.0.113.%d", 10+i)})
	}
	state.ULBs = []ucloudsim.ULB{{ID: "ulb-ns", VServers: []ucloudsim.VServer{{ID: "vserver-ns", FrontendPort: 9876}}}}
	env := &cloudEnv{sim: simtest.Start(t, ucloudsim.Config{State: state}), consul: testutil.StartConsul(t)}
	h := newHarness(t, env.pluginConfig(pluginOpts{}))
	c, err := h.d.cloudOrErr(&RocketMQConfig{Mode: ModePublic})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 2*n; i++ {
		b := &Binding{UHostID: testUHost, PrivateIP: testPrivateIP, Owner: ownership.Owner{
			AllocID: fmt.Sprintf("alloc-%03d", i), UHostID: testUHost, Namespace: "default", JobID: "rmq", Cluster: "orders"}}
		if i < n {
			b.Kind, b.EIPID = BindingEIP, fmt.Sprintf("eip-%02d", i)
			b.Owner.Role, b.Owner.Group, b.Owner.AllocIndex = RoleBroker, "broker", i
			if _, err := c.eips.Bind(ctx, b.eipRequest()); err != nil {
				t.Fatal(err)
			}
		} else {
			b.Kind, b.ULBID, b.VServerID, b.Port = BindingBackend, "ulb-ns", "vserver-ns", 31000+i
			b.Owner.Role, b.Owner.Group, b.Owner.AllocIndex, b.Owner.Port = RoleNameServer, "namesrv", i-n, b.Port
			res, err := c.ulbs.Register(ctx, b.ulbRequest())
			if err != nil {
				t.Fatal(err)
			}
			b.BackendID = res.BackendID
		}
		rec := newTaskRecord(h.d.ctx)
		rec.state = taskState{Version: stateVersion, Binding: b, TaskName: "app"}
		h.d.track(fmt.Sprintf("task-%03d", i), rec)
	}

	calls := func() (reads, writes int) {
		for action, ctr := range env.sim.Sim.Counters() {
			if simtest.IsWrite(action) {
				writes += int(ctr.Requests)
			} else {
				reads += int(ctr.Requests)
			}
		}
		return reads, writes
	}
	r0, w0 := calls()
	start := time.Now()
	h.d.reconcileOnce(ctx)
	passTime := time.Since(start)
	r1, w1 := calls()
	// 50 EIPs in batches of 20, one VServer.
	if r1-r0 != 3+1 || w1 != w0 {
		t.Fatalf("a converged pass over %d tasks made %d reads and %d writes, want 4 reads and none", 2*n, r1-r0, w1-w0)
	}
	if ok := metricValue(t, h.d.metrics.bindings.WithLabelValues(BindingEIP, bindingOK)) + metricValue(t, h.d.metrics.bindings.WithLabelValues(BindingBackend, bindingOK)); ok != 2*n {
		t.Fatalf("bindings ok after the pass: %v, want %d", ok, 2*n)
	}

	// The per-task re-check, for comparison: a Verify per binding.
	start = time.Now()
	for i := 0; i < 2*n; i++ {
		h.d.recheck(c, fmt.Sprintf("task-%03d", i))
	}
	perTaskTime := time.Since(start)
	r2, w2 := calls()
	if os.Getenv("RMQ_BENCH") == "1" {
		fmt.Printf("BENCH reconcile tasks=%d batched_calls_per_pass=%d per_task_calls_per_pass=%d calls_per_min_at_30s=%d per_task_calls_per_min_at_30s=%d batched_pass_ms=%.1f per_task_pass_ms=%.1f writes=%d\n",
			2*n, r1-r0, r2-r1, 2*(r1-r0), 2*(r2-r1), float64(passTime.Microseconds())/1000, float64(perTaskTime.Microseconds())/1000, w2-w0)
	}
}
