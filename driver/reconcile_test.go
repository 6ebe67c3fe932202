package driver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// metricValue reads a counter or gauge.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}

// TestHarnessReconcileRepairsDrift: a broker's EIP unbound by hand, a name
// server's backend released by hand and the broker's owner record deleted
// by hand are all repaired by one re-check pass, each counted as a repair;
// a second pass changes nothing. The negative control: once a task's stop
// has begun, the pass binds nothing for it.
func TestHarnessReconcileRepairsDrift(t *testing.T) {
	image := dockerImage(t)
	env := newCloudEnv(t)
	h := newHarness(t, env.pluginConfig(pluginOpts{}))
	ctx := context.Background()

	broker := newTask(t, image, brokerRMQ("eip-a"))
	defer h.MkAllocDir(broker, false)()
	if _, _, err := h.StartTask(broker); err != nil {
		t.Fatalf("start broker: %v", err)
	}
	ns := newTask(t, image, nameServerRMQ())
	defer h.MkAllocDir(ns, false)()
	if _, _, err := h.StartTask(ns); err != nil {
		t.Fatalf("start name server: %v", err)
	}
	port := listenPortOf(ns)
	if env.eipBoundTo(t, "eip-a") != testUHost || len(env.backendsOf(t, testUHost, port)) != 1 || len(env.ownerRecords(t)) != 2 {
		t.Fatalf("not bound after start: eip on %q, backends %v, records %v", env.eipBoundTo(t, "eip-a"), env.backendsOf(t, testUHost, port), env.ownerRecords(t))
	}

	// Drift, by hand, through the SDK and Consul.
	if err := env.sim.API.UnBindEIP(ctx, "eip-a", testUHost); err != nil {
		t.Fatal(err)
	}
	for _, b := range env.backendsOf(t, testUHost, port) {
		if err := env.sim.API.ReleaseBackend(ctx, "ulb-ns", b.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := env.consul.Client.KV().Delete(kvPrefix+"/owners/eip/eip-a", nil); err != nil {
		t.Fatal(err)
	}

	h.d.reconcileOnce(ctx)
	if got := env.eipBoundTo(t, "eip-a"); got != testUHost {
		t.Errorf("eip-a bound to %q after the re-check, want %s", got, testUHost)
	}
	if got := env.backendsOf(t, testUHost, port); len(got) != 1 {
		t.Errorf("backends of %s:%d after the re-check: %v, want one", testUHost, port, got)
	}
	recs := env.ownerRecords(t)
	if len(recs) != 2 || !strings.Contains(strings.Join(recs, " "), "owners/eip/eip-a") {
		t.Errorf("owner records after the re-check: %v", recs)
	}
	if n := metricValue(t, h.d.metrics.repairs.WithLabelValues(BindingEIP)); n != 1 {
		t.Errorf("eip repairs counted: %v, want 1", n)
	}
	if n := metricValue(t, h.d.metrics.repairs.WithLabelValues(BindingBackend)); n != 1 {
		t.Errorf("backend repairs counted: %v, want 1", n)
	}
	if n := metricValue(t, h.d.metrics.bindings.WithLabelValues(BindingEIP, bindingOK)); n != 1 {
		t.Errorf("eip bindings ok: %v, want 1", n)
	}

	// Converged: a second pass makes no write call, and reads the cloud
	// once per kind (one DescribeEIP for all EIPs, one DescribeVServer per
	// VServer), not once per task.
	writes := env.sim.Writes()
	eipReads, vsReads := env.sim.Requests("DescribeEIP"), env.sim.Requests("DescribeVServer")
	h.d.reconcileOnce(ctx)
	if w := env.sim.Writes(); w != writes {
		t.Errorf("a pass over converged bindings made %d write calls", w-writes)
	}
	if n := env.sim.Requests("DescribeEIP") - eipReads; n != 1 {
		t.Errorf("a converged pass made %d DescribeEIP calls, want 1", n)
	}
	if n := env.sim.Requests("DescribeVServer") - vsReads; n != 1 {
		t.Errorf("a converged pass made %d DescribeVServer calls, want 1", n)
	}

	// Negative control: the broker's stop releases its EIP; a pass that
	// comes after the stop began must not bind it again.
	if err := h.StopTask(broker.ID, 10*time.Second, "SIGTERM"); err != nil {
		t.Fatal(err)
	}
	if got := env.eipBoundTo(t, "eip-a"); got != "" {
		t.Fatalf("eip-a still bound to %q after stop", got)
	}
	h.d.reconcileOnce(ctx)
	if got := env.eipBoundTo(t, "eip-a"); got != "" {
		t.Errorf("the re-check bound eip-a to %q for a stopped task", got)
	}
}
