//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi/simtest"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// cloudEnv is a UCloud simulator seeded with the demo account, a Consul
// server, and a Nomad server with three clients, client i being simulated
// UHost uhost-demo-(i+1) with its own Consul client agent (as on real
// hosts: the client's services and its plugin's owner records go through
// it).
type cloudEnv struct {
	env
	sim         *ucloudsim.Server
	consul      *testutil.ConsulCluster
	nomad       *testutil.NomadCluster
	metricsURLs []string // each client's plugin /metrics
}

var demoHosts = []string{"uhost-demo-1", "uhost-demo-2", "uhost-demo-3"}

const (
	demoULB     = "ulb-demo"
	demoVServer = "vserver-demo-ns"
)

var demoEIPs = []string{"eip-demo-broker-0", "eip-demo-broker-1", "eip-demo-broker-2"}

// cloudOpts tune startCloudEnv.
type cloudOpts struct {
	bindTimeout string // ucloud.bind_timeout; "" means 45s
	maxAttempts int    // ucloud.max_attempts; 0 means the default
}

func startCloudEnv(t *testing.T, faults ucloudsim.Faults, opts ...cloudOpts) *cloudEnv {
	t.Helper()
	var o cloudOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.bindTimeout == "" {
		o.bindTimeout = "45s"
	}
	e := setup(t)
	state, err := ucloudsim.LoadState(filepath.Join(testutil.RepoRoot(t), "examples", "ucloudsim", "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	sim := simtest.Start(t, ucloudsim.Config{State: state, Faults: faults, Seed: 42}).Sim
	consul := testutil.StartConsulCluster(t, 3)
	var metricsURLs []string
	metricsPorts := make([]int, 3)
	for i := range metricsPorts {
		metricsPorts[i] = testutil.FreeTCPPort(t)
		metricsURLs = append(metricsURLs, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPorts[i]))
	}
	keyFile := secretFile(t, "ucloud-private-key", demoPrivateKey)
	hcl := func(i int) string {
		return fmt.Sprintf(`
plugin "rmq-driver" {
  config {
    docker {
      gc {
        dangling_containers {
          enabled        = true
          period         = "1s"
          creation_grace = "5s"
        }
      }
    }
    ucloud {
      region            = "cn-bj2"
      project_id        = "org-demo"
      public_key        = "demo-public-key"
      private_key_file  = %q
      base_url          = %q
      metadata_endpoint = %q
      call_timeout      = "2s"
      bind_timeout      = %q
      max_attempts      = %d
      allowed_eip_ids   = ["eip-demo-broker-0", "eip-demo-broker-1", "eip-demo-broker-2", "eip-demo-missing"]
      allowed_ulb_ids   = ["ulb-demo"]
    }
    consul {
      address = %q
    }
    # Short intervals so drift and orphans are handled within a test.
    reconcile_interval = "2s"
    collect_interval   = "2s"
    metrics_listen     = "127.0.0.1:%d"
  }
}
plugin "docker" {
  config {
    gc {
      dangling_containers {
        enabled = false
      }
    }
  }
}
`, keyFile, sim.URL(), sim.MetadataURL(demoHosts[i]), o.bindTimeout, o.maxAttempts, consul.Clients[i].HTTPAddr, metricsPorts[i])
	}
	nomad := testutil.StartNomad(t, testutil.NomadOptions{PluginDir: e.pluginDir, Clients: 3, ClientHCL: hcl, Consul: consul})
	return &cloudEnv{env: e, sim: sim, consul: consul, nomad: nomad, metricsURLs: metricsURLs}
}

func nameServerJob(image string) string {
	return fmt.Sprintf(`
job "ns" {
  datacenters = ["dc1"]
  group "ns" {
    count = 3
    network {
      port "rmq" {}
    }
    task "app" {
      driver = "rocketmq"
      config {
        image = %q
        args  = ["serve"]
        ports = ["rmq"]
        rocketmq {
          cluster = "demo"
          role    = "namesrv"
          mode    = "public"
          port    = "rmq"
          ulb {
            ulb_id     = %q
            vserver_id = %q
          }
        }
      }
      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
`, image, demoULB, demoVServer)
}

func brokerJob(job, image string, eips []string) string {
	return fmt.Sprintf(`
job %q {
  datacenters = ["dc1"]
  group "broker" {
    count = %d
    network {
      port "rmq" {}
    }
    restart {
      attempts = 0
      mode     = "fail"
    }
    reschedule {
      attempts  = 0
      unlimited = false
    }
    task "app" {
      driver = "rocketmq"
      config {
        image = %q
        args  = ["serve"]
        ports = ["rmq"]
        rocketmq {
          cluster = "demo"
          role    = "broker"
          mode    = "public"
          port    = "rmq"
          eip {
            ids = [%s]
          }
        }
      }
      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
`, job, len(eips), image, `"`+strings.Join(eips, `", "`)+`"`)
}

// nodeHosts maps Nomad node ids to simulated UHost ids (client-i is
// uhost-demo-(i+1)).
func (c *cloudEnv) nodeHosts(t *testing.T) map[string]string {
	t.Helper()
	var nodes []struct{ ID, Name string }
	if err := c.nomad.GetJSON("/v1/nodes", &nodes); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range nodes {
		var i int
		if _, err := fmt.Sscanf(n.Name, "client-%d", &i); err == nil {
			out[n.ID] = demoHosts[i]
		}
	}
	return out
}

// backends returns the VServer's backends as "uhost:port", sorted.
func (c *cloudEnv) backends() []string {
	var out []string
	for _, lb := range c.sim.Snapshot().ULBs {
		if lb.ID != demoULB {
			continue
		}
		for _, vs := range lb.VServers {
			if vs.ID != demoVServer {
				continue
			}
			for _, b := range vs.Backends {
				out = append(out, fmt.Sprintf("%s:%d", b.ResourceID, b.Port))
			}
		}
	}
	sort.Strings(out)
	return out
}

// eipBindings returns EIP id -> bound uhost ("" when free).
func (c *cloudEnv) eipBindings() map[string]string {
	out := map[string]string{}
	for _, e := range c.sim.Snapshot().EIPs {
		out[e.ID] = e.ResourceID
	}
	return out
}

// wantBackends is the set the VServer must hold for the running allocs.
func (c *cloudEnv) wantBackends(t *testing.T, allocs []testutil.Alloc) []string {
	hosts := c.nodeHosts(t)
	var out []string
	for _, a := range allocs {
		p, _ := a.PortOf("rmq")
		out = append(out, fmt.Sprintf("%s:%d", hosts[a.NodeID], p))
	}
	sort.Strings(out)
	return out
}

// assertConverged waits until the cloud matches the running allocations:
// the VServer holds exactly the live name servers, each broker EIP is on
// its alloc's host, and no other demo EIP is bound.
func (c *cloudEnv) assertConverged(t *testing.T, nsCount, brokerCount int) {
	t.Helper()
	ok, why := waitUntil(120*time.Second, func() (bool, string) {
		ns, err := c.runningAllocs("ns")
		if err != nil {
			return false, err.Error()
		}
		br, err := c.runningAllocs("brokers")
		if err != nil {
			return false, err.Error()
		}
		if len(ns) != nsCount || len(br) != brokerCount {
			return false, fmt.Sprintf("running ns=%d brokers=%d", len(ns), len(br))
		}
		got, want := c.backends(), c.wantBackends(t, ns)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return false, fmt.Sprintf("backends %v, want %v", got, want)
		}
		hosts := c.nodeHosts(t)
		bound := c.eipBindings()
		wantBound := map[string]string{}
		for _, a := range br {
			var idx int
			fmt.Sscanf(a.Name[strings.LastIndex(a.Name, "[")+1:], "%d", &idx)
			wantBound[demoEIPs[idx]] = hosts[a.NodeID]
		}
		for _, id := range demoEIPs {
			if bound[id] != wantBound[id] {
				return false, fmt.Sprintf("eip %s bound to %q, want %q", id, bound[id], wantBound[id])
			}
		}
		return true, ""
	})
	if !ok {
		t.Fatalf("not converged after 120 s: %s\n%s", why, c.nomad.AllocReport("ns", "brokers"))
	}
}

func (c *cloudEnv) runningAllocs(job string) ([]testutil.Alloc, error) {
	allocs, err := c.nomad.JobAllocs(job)
	if err != nil {
		if strings.Contains(err.Error(), "404") {
			return nil, nil
		}
		return nil, err
	}
	var out []testutil.Alloc
	for _, a := range allocs {
		if a.DesiredStatus == "run" && a.ClientStatus == "running" {
			out = append(out, a)
		}
	}
	return out, nil
}

// waitForMsg fails t when cond does not hold within timeout, with cond's
// last message.
func waitForMsg(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	if ok, msg := waitUntil(timeout, cond); !ok {
		t.Fatalf("not converged after %s: %s", timeout, msg)
	}
}

// waitUntil polls cond until it holds or timeout passes; it returns cond's
// last message when it did not hold.
func waitUntil(timeout time.Duration, cond func() (bool, string)) (bool, string) {
	deadline := time.Now().Add(timeout)
	var msg string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, msg = cond(); ok {
			return true, ""
		}
		time.Sleep(300 * time.Millisecond)
	}
	return false, msg
}

// runBindingScenario: name servers and brokers bound on start, re-bound
// after a drain, everything released on stop.
func runBindingScenario(t *testing.T, c *cloudEnv) {
	c.nomad.RunJob(t, nameServerJob(c.image))
	c.nomad.RunJob(t, brokerJob("brokers", c.image, demoEIPs))
	c.assertConverged(t, 3, 3)

	// The broker is told its EIP.
	bound := c.eipBindings()
	br, _ := c.runningAllocs("brokers")
	for _, a := range br {
		var idx int
		fmt.Sscanf(a.Name[strings.LastIndex(a.Name, "[")+1:], "%d", &idx)
		var ip string
		for _, e := range c.sim.Snapshot().EIPs {
			if e.ID == demoEIPs[idx] {
				ip = e.IP
			}
		}
		out := nomadOK(t, c.nomad, "alloc", "exec", "-task", "app", a.ID, "/testapp", "cat", "/local/rocketmq/broker.conf")
		p, _ := a.PortOf("rmq")
		if !strings.Contains(out, "brokerIP1="+ip) || !strings.Contains(out, fmt.Sprintf("listenPort=%d", p)) {
			t.Fatalf("broker %s (eip %s on %s) broker.conf = %q, want brokerIP1=%s listenPort=%d", a.Name, demoEIPs[idx], bound[demoEIPs[idx]], out, ip, p)
		}
	}

	// Drain a client that runs something: its allocs move and re-bind.
	drained := br[0].NodeID
	nomadOK(t, c.nomad, "node", "drain", "-enable", "-yes", "-detach", "-deadline", "60s", drained)
	waitFor(t, 120*time.Second, "every alloc moved off the drained node", func() bool {
		n := 0
		for _, job := range []string{"ns", "brokers"} {
			allocs, err := c.nomad.JobAllocs(job)
			if err != nil {
				return false
			}
			for _, a := range allocs {
				if a.NodeID == drained && a.ClientStatus == "running" {
					n++
				}
			}
		}
		return n == 0
	})
	c.assertConverged(t, 3, 3)

	// Stop everything: nothing stays bound.
	nomadOK(t, c.nomad, "job", "stop", "-detach", "ns")
	nomadOK(t, c.nomad, "job", "stop", "-detach", "brokers")
	c.assertConverged(t, 0, 0)
}

func TestBindingLifecycle(t *testing.T) {
	c := startCloudEnv(t, ucloudsim.Faults{})
	runBindingScenario(t, c)

	// Visibility: every cloud action is counted on the plugins' /metrics.
	var all string
	for _, u := range c.metricsURLs {
		all += testutil.WaitHTTP(t, u, 10*time.Second)
	}
	for _, want := range []string{
		`rmq_driver_cloud_actions_total{action="eip_bind",outcome="changed"}`,
		`rmq_driver_cloud_actions_total{action="ulb_register",outcome="changed"}`,
		`rmq_driver_cloud_actions_total{action="eip_release",outcome="changed"}`,
		`rmq_driver_cloud_action_duration_seconds_bucket{action="eip_bind"`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("plugin metrics lack %s", want)
		}
	}

	// The node attributes say which UHost each client is, and no secret
	// reaches them, the metrics, or the task events.
	var nodes []struct{ ID, Name string }
	if err := c.nomad.GetJSON("/v1/nodes", &nodes); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		var node struct{ Attributes map[string]string }
		if err := c.nomad.GetJSON("/v1/node/"+n.ID, &node); err != nil {
			t.Fatal(err)
		}
		var i int
		fmt.Sscanf(n.Name, "client-%d", &i)
		if got := node.Attributes["driver.rocketmq.ucloud.uhost_id"]; got != demoHosts[i] {
			t.Errorf("node %s: driver.rocketmq.ucloud.uhost_id = %q, want %q", n.Name, got, demoHosts[i])
		}
		for k, v := range node.Attributes {
			if strings.Contains(v, "demo-private-key") {
				t.Errorf("node %s attribute %s = %q", n.Name, k, v)
			}
		}
	}
	for _, job := range []string{"ns", "brokers"} {
		if hasEvent(t, c.nomad, job, "demo-private-key") {
			t.Errorf("a task event of %s contains the private key", job)
		}
	}
	if strings.Contains(all, "demo-private-key") {
		t.Errorf("the metrics contain the private key")
	}
}

func TestBindingUnderFaults(t *testing.T) {
	rate := 0.3
	c := startCloudEnv(t, ucloudsim.Faults{
		Rules: []ucloudsim.FaultRule{
			{Action: "*", Rate: &rate, RetCode: 5000, Latency: ucloudsim.Duration(50 * time.Millisecond)},
		},
		PendingDescribes: 1,
	})
	runBindingScenario(t, c)
	var hits int64
	for _, ctr := range c.sim.Counters() {
		hits += ctr.Faults
	}
	if hits == 0 {
		t.Fatalf("no fault was injected; the test proves nothing")
	}
}

// TestBindingGuard: an EIP outside the allow-list, or unknown, fails the
// task with a clear event, and nothing is bound.
func TestBindingGuard(t *testing.T) {
	c := startCloudEnv(t, ucloudsim.Faults{})
	cases := []struct{ job, eip, want string }{
		{"foreign", "eip-demo-ulb", "eip-demo-ulb"},
		{"unknown", "eip-demo-missing", "eip-demo-missing"},
	}
	for _, tc := range cases {
		t.Run(tc.job, func(t *testing.T) {
			before := c.eipBindings()
			c.nomad.RunJob(t, brokerJob(tc.job, c.image, []string{tc.eip}))
			var msg string
			waitFor(t, 90*time.Second, "task fails with a binding event", func() bool {
				allocs, err := c.nomad.JobAllocs(tc.job)
				if err != nil || len(allocs) == 0 {
					return false
				}
				msg = ""
				failed := false
				for _, ts := range allocs[0].TaskStates {
					failed = ts.Failed
					for _, ev := range ts.Events {
						msg += ev.DisplayMessage + " | " + ev.DriverError + "\n"
					}
				}
				return failed
			})
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("task events do not name %s:\n%s", tc.want, msg)
			}
			if strings.Contains(msg, "demo-private-key") {
				t.Fatalf("task events leak the private key:\n%s", msg)
			}
			after := c.eipBindings()
			for id, h := range before {
				if after[id] != h {
					t.Fatalf("eip %s changed from %q to %q", id, h, after[id])
				}
			}
		})
	}
}

// TestBindingSurvivesRestarts: plugin SIGKILL and client restart while
// bound leave the bindings intact.
func TestBindingSurvivesRestarts(t *testing.T) {
	c := startCloudEnv(t, ucloudsim.Faults{})
	c.nomad.RunJob(t, nameServerJob(c.image))
	c.nomad.RunJob(t, brokerJob("brokers", c.image, demoEIPs))
	c.assertConverged(t, 3, 3)
	before, beforeB := c.eipBindings(), c.backends()

	for _, cl := range c.nomad.Clients {
		if pid := c.nomad.PluginPID(cl); pid != 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	c.nomad.Clients[0].Restart()
	c.nomad.WaitNodesReady(t, 3, 90*time.Second)
	time.Sleep(5 * time.Second)
	c.assertConverged(t, 3, 3)
	after, afterB := c.eipBindings(), c.backends()
	for id, h := range before {
		if after[id] != h {
			t.Fatalf("eip %s moved from %q to %q across restarts", id, h, after[id])
		}
	}
	if strings.Join(beforeB, ",") != strings.Join(afterB, ",") {
		t.Fatalf("backends changed across restarts: %v -> %v", beforeB, afterB)
	}
}
