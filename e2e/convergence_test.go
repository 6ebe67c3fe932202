//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// benchf prints a BENCH line for `make bench` (RMQ_BENCH=1).
func benchf(format string, args ...any) {
	if os.Getenv("RMQ_BENCH") == "1" {
		fmt.Printf(format, args...)
	}
}

// sdk is a real UCloud SDK client on the simulator's demo account: what an
// operator clicking in the console (or a script) does.
func (c *cloudEnv) sdk(t *testing.T) *ucloudapi.Client {
	t.Helper()
	api, err := ucloudapi.New(ucloudapi.Config{Region: "cn-bj2", ProjectID: "org-demo", PublicKey: "demo-public-key",
		PrivateKey: demoPrivateKey, BaseURL: c.sim.URL(), CallTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// backendEnabled reports whether the simulator's backend id is enabled.
func (c *cloudEnv) backendEnabled(id string) bool {
	for _, lb := range c.sim.Snapshot().ULBs {
		for _, vs := range lb.VServers {
			for _, b := range vs.Backends {
				if b.ID == id {
					return !b.Disabled
				}
			}
		}
	}
	return false
}

// allocIndex is the index in an allocation's name, job.group[index].
func allocIndex(a testutil.Alloc) int {
	var idx int
	fmt.Sscanf(a.Name[strings.LastIndex(a.Name, "[")+1:], "%d", &idx)
	return idx
}

// eventsOf returns the messages of an allocation's task events.
func (c *cloudEnv) eventsOf(t *testing.T, allocID string) string {
	t.Helper()
	var a testutil.Alloc
	if err := c.nomad.GetJSON("/v1/allocation/"+allocID, &a); err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, ts := range a.TaskStates {
		for _, ev := range ts.Events {
			msgs = append(msgs, ev.DisplayMessage+" "+ev.Message+" "+ev.DriverError)
		}
	}
	return strings.Join(msgs, "\n")
}

// TestDriftIsRepaired: an EIP unbound, a backend released and another
// backend disabled by hand, through the SDK, are all back within a few
// reconcile intervals (2 s here), each with a task event saying so.
func TestDriftIsRepaired(t *testing.T) {
	c := startCloudEnv(t, ucloudsim.Faults{})
	c.nomad.RunJob(t, nameServerJob(c.image))
	c.nomad.RunJob(t, brokerJob("brokers", c.image, demoEIPs))
	c.assertConverged(t, 3, 3)

	ctx := context.Background()
	api := c.sdk(t)
	br, _ := c.runningAllocs("brokers")
	victim := br[0]
	eip := demoEIPs[allocIndex(victim)]
	host := c.nodeHosts(t)[victim.NodeID]
	if err := api.UnBindEIP(ctx, eip, host); err != nil {
		t.Fatal(err)
	}
	ns, _ := c.runningAllocs("ns")
	nsPort, _ := ns[0].PortOf("rmq")
	nsHost := c.nodeHosts(t)[ns[0].NodeID]
	bs, err := api.DescribeVServer(ctx, demoULB, demoVServer)
	if err != nil {
		t.Fatal(err)
	}
	released := ""
	for _, b := range bs {
		if b.ResourceID == nsHost && b.Port == nsPort {
			released = b.ID
			if err := api.ReleaseBackend(ctx, demoULB, b.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if released == "" {
		t.Fatalf("no backend for %s:%d in %v", nsHost, nsPort, c.backends())
	}
	// And another name server's backend is switched off in the console.
	otherPort, _ := ns[1].PortOf("rmq")
	otherHost := c.nodeHosts(t)[ns[1].NodeID]
	disabled := ""
	for _, b := range bs {
		if b.ResourceID == otherHost && b.Port == otherPort {
			disabled = b.ID
			if err := api.SetBackendEnabled(ctx, demoULB, b.ID, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	if disabled == "" {
		t.Fatalf("no backend for %s:%d in %v", otherHost, otherPort, c.backends())
	}
	drifted := time.Now()
	// The SDK calls above succeeded, so the cloud was wrong; the re-check
	// may already be repairing it (its interval is 2 s). The repair events
	// checked below are the proof that the re-check, not chance, fixed it.
	c.assertConverged(t, 3, 3)
	waitFor(t, 30*time.Second, "the disabled backend to be enabled again", func() bool { return c.backendEnabled(disabled) })
	repaired := time.Since(drifted)
	t.Logf("drift repaired %s after the change by hand (reconcile_interval 2s)", repaired.Round(10*time.Millisecond))
	benchf("BENCH convergence drift_repaired_ms=%d reconcile_interval_ms=2000\n", repaired.Milliseconds())
	waitFor(t, 10*time.Second, "the repair events", func() bool {
		return strings.Contains(c.eventsOf(t, victim.ID), "repaired drift: EIP "+eip) &&
			strings.Contains(c.eventsOf(t, ns[0].ID), "repaired drift: backend") &&
			strings.Contains(c.eventsOf(t, ns[1].ID), "repaired drift: backend")
	})
}

// TestNodeLossConverges: a client's host dies (agent, plugin, Consul agent
// SIGKILLed, containers killed). Nomad marks the node down and replaces
// its allocations; the lost broker's EIP is bound on the replacement's
// host, and the dead NameServer's backend is removed by the collector. The
// times from the node being marked down are logged.
func TestNodeLossConverges(t *testing.T) {
	c := startCloudEnv(t, ucloudsim.Faults{})
	c.nomad.RunJob(t, nameServerJob(c.image))
	c.nomad.RunJob(t, brokerJob("brokers", c.image, demoEIPs))
	c.assertConverged(t, 3, 3)

	br, _ := c.runningAllocs("brokers")
	victim := br[0]
	var dead int
	fmt.Sscanf(victim.NodeName, "client-%d", &dead)
	deadHost := demoHosts[dead]
	eip := demoEIPs[allocIndex(victim)]
	ns, _ := c.runningAllocs("ns")
	var deadBackends []string
	for _, a := range ns {
		if a.NodeID == victim.NodeID {
			p, _ := a.PortOf("rmq")
			deadBackends = append(deadBackends, fmt.Sprintf("%s:%d", deadHost, p))
		}
	}
	killed := time.Now()
	c.nomad.KillHost(t, dead)

	// One loop watches the node, the EIP and the backends every 100 ms, so
	// the times are comparable.
	var down, eipAt, backendAt time.Time
	deadline := time.Now().Add(4 * time.Minute)
	for (down.IsZero() || eipAt.IsZero() || backendAt.IsZero()) && time.Now().Before(deadline) {
		now := time.Now()
		if down.IsZero() {
			var n struct{ Status string }
			if err := c.nomad.GetJSON("/v1/node/"+victim.NodeID, &n); err == nil && n.Status == "down" {
				down = now
			}
		}
		if h := c.eipBindings()[eip]; eipAt.IsZero() && h != deadHost {
			eipAt = now
		}
		if backendAt.IsZero() {
			cur := strings.Join(c.backends(), ",")
			gone := true
			for _, b := range deadBackends {
				gone = gone && !strings.Contains(cur, b)
			}
			if gone {
				backendAt = now
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if down.IsZero() || eipAt.IsZero() || backendAt.IsZero() {
		t.Fatalf("after 4m: node down at %v, eip %s on %q, backends %v (dead %v)", down, eip, c.eipBindings()[eip], c.backends(), deadBackends)
	}
	// Liveness: nothing of the dead host's allocations is taken or
	// collected before Nomad has given up on them.
	if eipAt.Before(down) || backendAt.Before(down) {
		t.Errorf("the dead host's bindings moved before nomad marked the node down: eip at %s, backends at %s, node down at %s",
			eipAt.Sub(killed), backendAt.Sub(killed), down.Sub(killed))
	}
	benchf("BENCH convergence node_down_after_kill_ms=%d eip_moved_after_node_down_ms=%d backend_removed_after_node_down_ms=%d\n",
		down.Sub(killed).Milliseconds(), eipAt.Sub(down).Milliseconds(), backendAt.Sub(down).Milliseconds())
	t.Logf("host death: node down %s after the kill; EIP %s off the dead host %s after node down (now on %q); dead backends %v gone %s after node down",
		down.Sub(killed).Round(10*time.Millisecond), eip, eipAt.Sub(down).Round(10*time.Millisecond), c.eipBindings()[eip],
		deadBackends, backendAt.Sub(down).Round(10*time.Millisecond))
	// And the whole cloud matches the live allocations, nothing more.
	c.assertConverged(t, 3, 3)
}

// TestStopDuringConsulOutage: NameServers stopped while every client's
// Consul agent is down cannot release their backends (the owner records
// are out of reach) and give up; once Consul is back, the collector removes
// them. The negative control is the first assertion: while Consul is down
// the backends really are left behind.
func TestStopDuringConsulOutage(t *testing.T) {
	c := startCloudEnv(t, ucloudsim.Faults{}, cloudOpts{bindTimeout: "5s"})
	c.nomad.RunJob(t, nameServerJob(c.image))
	c.assertConverged(t, 3, 0)
	before := c.backends()

	for _, a := range c.consul.Clients {
		a.Stop()
	}
	nomadOK(t, c.nomad, "job", "stop", "-detach", "ns")
	waitFor(t, 120*time.Second, "the name servers to stop", func() bool {
		allocs, err := c.nomad.JobAllocs("ns")
		if err != nil {
			return false
		}
		for _, a := range allocs {
			if a.ClientStatus == "running" || a.ClientStatus == "pending" {
				return false
			}
		}
		return true
	})
	if got := c.backends(); strings.Join(got, ",") != strings.Join(before, ",") {
		t.Fatalf("backends changed while consul was down: %v, before %v (the release needs its owner record)", got, before)
	}
	back := time.Now()
	for _, a := range c.consul.Clients {
		a.Restart()
	}
	waitForMsg(t, 120*time.Second, func() (bool, string) {
		if b := c.backends(); len(b) != 0 {
			return false, fmt.Sprintf("backends %v", b)
		}
		return true, ""
	})
	t.Logf("consul outage: backends of the stopped name servers collected %s after consul came back", time.Since(back).Round(10*time.Millisecond))
	benchf("BENCH convergence collected_after_consul_back_ms=%d collect_interval_ms=2000\n", time.Since(back).Milliseconds())
}

// brokerJobIn is brokerJob for one allocation in a namespace, binding eip.
func brokerJobIn(job, namespace, image, eip string) string {
	spec := brokerJob(job, image, []string{eip})
	return strings.Replace(spec, "job \""+job+"\" {\n", fmt.Sprintf("job %q {\n  namespace = %q\n", job, namespace), 1)
}

// TestTenancy: a second job of the same namespace claiming a live broker's
// slot (same cluster, role, index and EIP) does not run, and a job of
// another namespace naming the cluster is refused; the live brokers keep
// their EIPs throughout.
func TestTenancy(t *testing.T) {
	c := startCloudEnv(t, ucloudsim.Faults{})
	c.nomad.RunJob(t, nameServerJob(c.image))
	c.nomad.RunJob(t, brokerJob("brokers", c.image, demoEIPs))
	c.assertConverged(t, 3, 3)
	bound := c.eipBindings()

	nomadOK(t, c.nomad, "namespace", "apply", "-description", "another tenant", "team-b")
	for _, tc := range []struct{ job, namespace, eip, want string }{
		{"thief", "default", demoEIPs[0], "not for this slot"},
		{"other-tenant", "team-b", demoEIPs[1], `belongs to namespace "default"`},
	} {
		c.nomad.RunJob(t, brokerJobIn(tc.job, tc.namespace, c.image, tc.eip))
		var msg string
		waitFor(t, 90*time.Second, "job "+tc.job+" to fail", func() bool {
			var stubs []struct {
				ID           string
				ClientStatus string
			}
			if err := c.nomad.GetJSON("/v1/job/"+tc.job+"/allocations?namespace="+tc.namespace, &stubs); err != nil || len(stubs) == 0 {
				return false
			}
			for _, s := range stubs {
				if s.ClientStatus == "failed" {
					var a testutil.Alloc
					if err := c.nomad.GetJSON("/v1/allocation/"+s.ID+"?namespace="+tc.namespace, &a); err == nil {
						for _, ts := range a.TaskStates {
							for _, ev := range ts.Events {
								msg += ev.DisplayMessage + " " + ev.DriverError + "\n"
							}
						}
					}
					return true
				}
			}
			return false
		})
		if !strings.Contains(msg, tc.want) {
			t.Errorf("job %s (namespace %s) failed, but its events do not say %q:\n%s", tc.job, tc.namespace, tc.want, msg)
		}
		for id, h := range bound {
			if got := c.eipBindings()[id]; got != h {
				t.Errorf("after job %s: eip %s moved from %q to %q", tc.job, id, h, got)
			}
		}
	}
	if br, _ := c.nomad.JobAllocs("brokers"); len(br) != 3 {
		for _, a := range br {
			t.Logf("brokers alloc %s %s %s/%s:\n%s", a.ID, a.Name, a.DesiredStatus, a.ClientStatus, c.eventsOf(t, a.ID))
		}
	}
	c.assertConverged(t, 3, 3)
}
