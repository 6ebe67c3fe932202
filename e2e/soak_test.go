//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// soakFaults inject about 30% failures into every API action: timeouts
// (the client gives up after call_timeout), lost replies (the change is
// applied, the reply is a 504) and transient UCloud errors.
func soakFaults() ucloudsim.Faults {
	timeout, lost, transient := 0.04, 0.15, 0.13
	return ucloudsim.Faults{Rules: []ucloudsim.FaultRule{
		{Action: "*", Rate: &timeout, Timeout: true},
		{Action: "*", Rate: &lost, HTTPStatus: 504, AfterApply: true},
		{Action: "*", Rate: &transient, RetCode: 5000, Latency: ucloudsim.Duration(20 * time.Millisecond)},
	}, PendingDescribes: 1}
}

// soakJob is a job of the cloud env with count allocations that restarts
// its tasks (a start that fails under the faults is tried again).
func soakJob(spec string, count int) string {
	spec = strings.Replace(spec, `attempts = 0
      mode     = "fail"`, `attempts = 10
      interval = "10m"
      delay    = "1s"
      mode     = "delay"`, 1)
	for _, c := range []string{"count = 3", "count = 1", "count = 2"} {
		if strings.Contains(spec, c) {
			return strings.Replace(spec, c, "count = "+strconv.Itoa(count), 1)
		}
	}
	return spec
}

// invariant says what is wrong with the cloud against the live
// allocations ("" when converged): the VServer holds exactly the running
// name servers, each broker EIP is bound to its running allocation's host
// or free, and every owner record names a running allocation.
func (c *cloudEnv) invariant(t *testing.T, wantNS, wantBrokers int) string {
	ns, err := c.runningAllocs("ns")
	if err != nil {
		return err.Error()
	}
	br, err := c.runningAllocs("brokers")
	if err != nil {
		return err.Error()
	}
	// Nomad has settled: the desired allocations run, none is starting or
	// still stopping, and no node is draining.
	if len(ns) != wantNS || len(br) != wantBrokers {
		return fmt.Sprintf("running ns=%d brokers=%d, want %d and %d", len(ns), len(br), wantNS, wantBrokers)
	}
	for _, job := range []string{"ns", "brokers"} {
		allocs, _ := c.nomad.JobAllocs(job)
		for _, a := range allocs {
			if a.DesiredStatus == "run" && a.ClientStatus == "pending" {
				return "alloc " + a.Name + " pending"
			}
			if a.DesiredStatus != "run" && (a.ClientStatus == "running" || a.ClientStatus == "pending") {
				return "alloc " + a.Name + " still stopping"
			}
		}
	}
	var nodes []struct {
		Name  string
		Drain bool
	}
	if err := c.nomad.GetJSON("/v1/nodes", &nodes); err != nil {
		return err.Error()
	}
	for _, n := range nodes {
		if n.Drain {
			return "node " + n.Name + " still draining"
		}
	}
	if got, want := c.backends(), c.wantBackends(t, ns); strings.Join(got, ",") != strings.Join(want, ",") {
		return fmt.Sprintf("backends %v, want %v", got, want)
	}
	hosts := c.nodeHosts(t)
	want := map[string]string{}
	live := map[string]bool{}
	for _, a := range br {
		want[demoEIPs[allocIndex(a)]] = hosts[a.NodeID]
		live[a.ID] = true
	}
	for _, a := range ns {
		live[a.ID] = true
	}
	bound := c.eipBindings()
	for _, id := range demoEIPs {
		if bound[id] != want[id] {
			return fmt.Sprintf("eip %s bound to %q, want %q", id, bound[id], want[id])
		}
	}
	pairs, _, err := c.consul.Server.Client.KV().List("rocketmq-nomad/owners/", nil)
	if err != nil {
		return "list owner records: " + err.Error()
	}
	for _, p := range pairs {
		var o struct {
			AllocID string `json:"alloc_id"`
		}
		if json.Unmarshal(p.Value, &o) != nil || !live[o.AllocID] {
			return fmt.Sprintf("owner record %s names allocation %s, which is not running", p.Key, o.AllocID)
		}
	}
	return ""
}

// waitConverged waits until the invariant holds twice in a row, 1 s apart,
// and returns how long it took.
func (c *cloudEnv) waitConverged(t *testing.T, timeout time.Duration, wantNS, wantBrokers int) (time.Duration, string) {
	start := time.Now()
	last := ""
	for time.Since(start) < timeout {
		if last = c.invariant(t, wantNS, wantBrokers); last == "" {
			time.Sleep(time.Second)
			if last = c.invariant(t, wantNS, wantBrokers); last == "" {
				return time.Since(start) - time.Second, ""
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return time.Since(start), last
}

// TestChaosSoak runs random steps (scale, stop and start, drain, plugin
// SIGKILL, client restart, Consul agent restart, drift by hand) against 3 clients while
// about 30% of UCloud calls fail (timeouts, lost replies, errors), and after
// each step checks, once converged, that the cloud holds exactly the live
// set. RMQ_SOAK_STEPS sets the number of steps (default 12; `make soak`
// runs 100), RMQ_SOAK_SEED the random seed.
func TestChaosSoak(t *testing.T) {
	steps := 12
	if v, err := strconv.Atoi(os.Getenv("RMQ_SOAK_STEPS")); err == nil && v > 0 {
		steps = v
	}
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("RMQ_SOAK_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("soak: %d steps, seed %d (RMQ_SOAK_SEED=%d reproduces the step sequence)", steps, seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	c := startCloudEnv(t, soakFaults(), cloudOpts{bindTimeout: "60s", maxAttempts: 40})
	nsCount, brCount := 3, 3
	nsUp, brUp := true, true
	run := func() {
		if nsUp {
			c.nomad.RunJob(t, soakJob(nameServerJob(c.image), nsCount))
		}
		if brUp {
			c.nomad.RunJob(t, soakJob(brokerJob("brokers", c.image, demoEIPs), brCount))
		}
	}
	run()
	want := func() (int, int) {
		n, b := 0, 0
		if nsUp {
			n = nsCount
		}
		if brUp {
			b = brCount
		}
		return n, b
	}
	if d, why := c.waitConverged(t, 4*time.Minute, nsCount, brCount); why != "" {
		t.Fatalf("initial deployment not converged after %s: %s", d, why)
	}

	var drained []string
	kinds := []string{"scale", "stop-start", "drain", "plugin-kill", "client-restart", "consul-restart", "drift"}
	api := c.sdk(t)
	took := map[string][]time.Duration{}
	var all []time.Duration
	for step := 1; step <= steps; step++ {
		kind := kinds[rng.IntN(len(kinds))]
		i := rng.IntN(len(c.nomad.Clients))
		desc := kind
		switch kind {
		case "scale":
			if rng.IntN(2) == 0 {
				nsCount = 1 + rng.IntN(3)
				desc += fmt.Sprintf(" ns to %d", nsCount)
			} else {
				brCount = 1 + rng.IntN(3)
				desc += fmt.Sprintf(" brokers to %d", brCount)
			}
			run()
		case "stop-start":
			job := []string{"ns", "brokers"}[rng.IntN(2)]
			up := &nsUp
			if job == "brokers" {
				up = &brUp
			}
			if *up {
				nomadOK(t, c.nomad, "job", "stop", "-detach", job)
				desc += " stop " + job
			} else {
				desc += " start " + job
			}
			*up = !*up
			run()
		case "drain":
			node, err := c.nomad.NodeID(c.nomad.Clients[i].Name)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(drained, node) || len(drained) == len(c.nomad.Clients)-1 {
				// Never drain the last eligible node; undrain instead.
				node = drained[0]
				nomadOK(t, c.nomad, "node", "drain", "-disable", "-yes", node)
				nomadOK(t, c.nomad, "node", "eligibility", "-enable", node)
				drained = slices.DeleteFunc(drained, func(n string) bool { return n == node })
				desc = "undrain node " + node[:8]
				break
			}
			nomadOK(t, c.nomad, "node", "drain", "-enable", "-yes", "-detach", "-deadline", "30s", node)
			drained = append(drained, node)
			desc += " " + c.nomad.Clients[i].Name
		case "plugin-kill":
			if pid := c.nomad.PluginPID(c.nomad.Clients[i]); pid != 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				desc += fmt.Sprintf(" on %s (pid %d)", c.nomad.Clients[i].Name, pid)
			} else {
				desc += " on " + c.nomad.Clients[i].Name + " (no plugin running)"
			}
		case "client-restart":
			c.nomad.Clients[i].Restart()
			c.nomad.WaitNodeReady(t, c.nomad.Clients[i].Name, 2*time.Minute)
			desc += " " + c.nomad.Clients[i].Name
		case "consul-restart":
			c.consul.Clients[i].Restart()
			desc += " agent of " + c.nomad.Clients[i].Name
		case "drift":
			// By hand, through the SDK (which the faults hit too: retry).
			ctx := context.Background()
			for id, host := range c.eipBindings() {
				if host != "" && slices.Contains(demoEIPs, id) && rng.IntN(2) == 0 {
					for try := 0; try < 10 && api.UnBindEIP(ctx, id, host) != nil && c.eipBindings()[id] == host; try++ {
					}
					desc += " unbind " + id
				}
			}
			for _, lb := range c.sim.Snapshot().ULBs {
				for _, vs := range lb.VServers {
					for _, b := range vs.Backends {
						if lb.ID == demoULB && rng.IntN(2) == 0 {
							for try := 0; try < 10 && api.ReleaseBackend(ctx, demoULB, b.ID) != nil && c.hasBackend(b.ID); try++ {
							}
							desc += " release " + b.ID
						}
					}
				}
			}
		}
		wn, wb := want()
		d, why := c.waitConverged(t, 4*time.Minute, wn, wb)
		if why != "" {
			t.Fatalf("step %d (%s): not converged after %s: %s", step, desc, d.Round(time.Millisecond), why)
		}
		t.Logf("step %d: %s: converged in %s", step, desc, d.Round(10*time.Millisecond))
		took[kind] = append(took[kind], d)
		all = append(all, d)
	}

	var faults, requests int64
	for _, ctr := range c.sim.Counters() {
		faults += ctr.Faults
		requests += ctr.Requests
	}
	if faults == 0 {
		t.Fatal("no fault was injected; the soak proves nothing")
	}
	t.Logf("soak: %d steps, %d API requests, %d injected faults (%.0f%%); time to converge: %s",
		steps, requests, faults, 100*float64(faults)/float64(requests), distribution(all))
	for _, k := range kinds {
		if len(took[k]) > 0 {
			t.Logf("  %-15s %s", k, distribution(took[k]))
		}
	}
}

// hasBackend reports whether the simulator lists backend id.
func (c *cloudEnv) hasBackend(id string) bool {
	for _, lb := range c.sim.Snapshot().ULBs {
		for _, vs := range lb.VServers {
			for _, b := range vs.Backends {
				if b.ID == id {
					return true
				}
			}
		}
	}
	return false
}

// distribution formats n, min, median, p90 and max of ds.
func distribution(ds []time.Duration) string {
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) time.Duration { return s[int(p*float64(len(s)-1))].Round(10 * time.Millisecond) }
	return fmt.Sprintf("n=%d min %s median %s p90 %s max %s", len(s), q(0), q(0.5), q(0.9), q(1))
}
