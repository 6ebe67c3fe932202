package testutil_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// A Nomad client's service sync (every 30 s, and on every change)
// deregisters, from the Consul agent it talks to, the Nomad services that it
// does not know about, but not during the first minute after the agent
// started (Nomad v1.6.3 command/agent/consul/service_client.go,
// deregisterProbationPeriod). The services are watched from the start until
// syncWindow after that probation: longer than one sync period.
const (
	nomadProbation = time.Minute
	syncWindow     = 40 * time.Second
)

// hostsEnv is a Nomad server and clients running a system job with one
// NameServer-like service per client, the plugin's address endpoint on
// client 0.
type hostsEnv struct {
	nomad   *testutil.NomadCluster
	consul  *testutil.ConsulCluster // nil in the shared-agent setup
	catalog *api.Client             // asks the Consul server
	nsaddr  string                  // the address endpoint's URL for the job's cluster
	clients int
	started time.Time // before the Nomad agents started
}

const hostsService = "nameServerhosts"

// startHosts starts n Nomad clients, each with its own Consul client agent,
// or (shared) all of them and the Nomad server on one Consul agent, and runs
// the system job.
func startHosts(t *testing.T, n int, shared bool) *hostsEnv {
	t.Helper()
	requireAgents(t)
	image := testutil.BuildTestImage(t)
	pluginDir := testutil.BuildPlugin(t)
	e := &hostsEnv{clients: n}
	opts := testutil.NomadOptions{PluginDir: pluginDir, Clients: n}
	var consulOf func(i int) string
	if shared {
		agent := testutil.StartConsul(t)
		e.catalog = agent.Client
		opts.ConsulAddr = agent.HTTPAddr
		consulOf = func(int) string { return agent.HTTPAddr }
	} else {
		e.consul = testutil.StartConsulCluster(t, n)
		e.catalog = e.consul.Server.Client
		opts.Consul = e.consul
		consulOf = func(i int) string { return e.consul.Clients[i].HTTPAddr }
	}
	nsaddrPort := testutil.FreeTCPPort(t)
	e.nsaddr = fmt.Sprintf("http://127.0.0.1:%d/rocketmq/hosts", nsaddrPort)
	opts.ClientHCL = func(i int) string {
		nsaddr := ""
		if i == 0 {
			nsaddr = fmt.Sprintf("\n    nsaddr {\n      enabled = true\n      listen  = \"127.0.0.1:%d\"\n    }", nsaddrPort)
		}
		return fmt.Sprintf(`
plugin "rmq-driver" {
  config {
    consul {
      address = %q
    }%s
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
`, consulOf(i), nsaddr)
	}
	e.started = time.Now()
	e.nomad = testutil.StartNomad(t, opts)
	e.nomad.RunJob(t, fmt.Sprintf(`
job "hosts" {
  datacenters = ["dc1"]
  type        = "system"
  group "ns" {
    network {
      port "rmq" {}
    }
    service {
      name     = %q
      port     = "rmq"
      provider = "consul"
      check {
        type     = "tcp"
        interval = "1s"
        timeout  = "1s"
      }
    }
    task "app" {
      driver = "rocketmq"
      config {
        image = %q
        args  = ["serve"]
        ports = ["rmq"]
        rocketmq {
          cluster = "hosts"
          role    = "namesrv"
          mode    = "private"
          port    = "rmq"
        }
      }
      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
`, hostsService, image))
	e.nomad.WaitRunning(t, "hosts", n, 120*time.Second)
	e.waitState(t, n, 60*time.Second)
	return e
}

// requireAgents skips the test (fails it with RMQ_REQUIRE_AGENTS=1) before
// anything is built when an agent binary or the Docker engine is missing;
// only with RMQ_REQUIRE_AGENTS=1 is a Docker engine started for it.
func requireAgents(t *testing.T) {
	t.Helper()
	required := os.Getenv("RMQ_REQUIRE_AGENTS") == "1"
	var missing []string
	if testutil.NomadBinary() == "" {
		missing = append(missing, "the Nomad agent binary")
	}
	if testutil.ConsulBinary() == "" {
		missing = append(missing, "the Consul agent binary")
	}
	if !required && exec.Command("docker", "info").Run() != nil {
		missing = append(missing, "a Docker engine")
	}
	switch {
	case len(missing) > 0 && required:
		t.Fatalf("RMQ_REQUIRE_AGENTS=1: missing %s; run `make tools docker`", strings.Join(missing, ", "))
	case len(missing) > 0:
		t.Skipf("SKIPPED: missing %s; run `make test` to run this test", strings.Join(missing, ", "))
	}
	testutil.EnsureDocker(t)
}

// state is one look at the service: instances in the catalog, passing
// instances, and the address endpoint's answer.
type state struct {
	registered, passing int
	nsaddrStatus        int
	nsaddrEntries       int
}

func (s state) String() string {
	return fmt.Sprintf("catalog=%d passing=%d nsaddr=%d/%d entries", s.registered, s.passing, s.nsaddrStatus, s.nsaddrEntries)
}

func (e *hostsEnv) look() state {
	var s state
	if svcs, _, err := e.catalog.Catalog().Service(hostsService, "", nil); err == nil {
		s.registered = len(svcs)
	}
	if entries, _, err := e.catalog.Health().Service(hostsService, "", true, nil); err == nil {
		s.passing = len(entries)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	if resp, err := client.Get(e.nsaddr); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		s.nsaddrStatus = resp.StatusCode
		if resp.StatusCode == http.StatusOK {
			s.nsaddrEntries = len(strings.Split(strings.TrimSpace(string(body)), ";"))
		}
	}
	return s
}

func (s state) all(n int) bool {
	return s.registered == n && s.passing == n && s.nsaddrStatus == http.StatusOK && s.nsaddrEntries == n
}

// waitState waits until all n instances are registered, passing and served.
func (e *hostsEnv) waitState(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	var s state
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if s = e.look(); s.all(n) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("want %d instances registered, passing and served; have %s", n, s)
}

// watch is what the services did over a window.
type watch struct {
	samples, short int           // looks, and looks missing something
	lost           int           // looks with an instance missing from the catalog, or no 200
	unobserved     int           // looks whose request to the endpoint itself failed
	gaps           int           // runs of short looks
	first          string        // the first short look
	longest        time.Duration // longest run of short looks
}

// watchPastProbation looks at the service every 250 ms until syncWindow
// after the Nomad clients' deregistration probation has ended.
func (e *hostsEnv) watchPastProbation() watch {
	var w watch
	var shortSince time.Time
	end := e.started.Add(nomadProbation + syncWindow)
	for time.Now().Before(end) {
		s := e.look()
		now := time.Now()
		if s.nsaddrStatus == 0 {
			// The test's own request to the endpoint failed (a 2 s timeout
			// on a starved machine): nothing was observed.
			w.unobserved++
			time.Sleep(250 * time.Millisecond)
			continue
		}
		w.samples++
		if s.all(e.clients) {
			shortSince = time.Time{}
		} else {
			w.short++
			if s.registered < e.clients || s.nsaddrStatus != http.StatusOK {
				w.lost++
			}
			if w.first == "" {
				w.first = fmt.Sprintf("%s after the Nomad agents started: %s", now.Sub(e.started).Round(100*time.Millisecond), s)
			}
			if shortSince.IsZero() {
				shortSince = now
				w.gaps++
			}
			if run := now.Sub(shortSince); run > w.longest {
				w.longest = run
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	return w
}

// TestOwnConsulAgentKeepsServices: with one Consul agent per Nomad client,
// as in production, every client's service stays registered and the
// address endpoint answers 200 over more than one service sync period.
// A health check may miss a beat on a loaded machine (a registered
// instance briefly not passing); that is allowed for up to checkBlip at a
// time, as it is not what the sync does: a lost registration is never
// allowed. TestSharedConsulAgentLosesServices is its negative control.
func TestOwnConsulAgentKeepsServices(t *testing.T) {
	const checkBlip = 5 * time.Second
	e := startHosts(t, 3, false)
	start := time.Now()
	w := e.watchPastProbation()
	t.Logf("own agents: %d looks over %s (until %s after the Nomad agents started; %d requests to the endpoint failed on their own), %d short (%d with a registration lost or no 200) in %d gaps, longest gap %s",
		w.samples, time.Since(start).Round(time.Second), time.Since(e.started).Round(time.Second), w.unobserved, w.short, w.lost, w.gaps, w.longest)
	if w.lost > 0 || w.longest > checkBlip {
		t.Fatalf("with one Consul agent per client, services went missing in %d of %d looks (%d lost a registration or the endpoint's 200; longest gap %s); first: %s",
			w.short, w.samples, w.lost, w.longest, w.first)
	}
}

// TestSharedConsulAgentLosesServices is the negative control of
// TestOwnConsulAgentKeepsServices, run by hand with RMQ_SHARED_CONSUL=1:
// the same job with every Nomad agent on one Consul agent loses services,
// because each client's sync deregisters the others' services from that
// agent. It passes when it sees the loss.
func TestSharedConsulAgentLosesServices(t *testing.T) {
	if os.Getenv("RMQ_SHARED_CONSUL") != "1" {
		t.Skip("negative control of TestOwnConsulAgentKeepsServices: run with RMQ_SHARED_CONSUL=1")
	}
	e := startHosts(t, 3, true)
	start := time.Now()
	w := e.watchPastProbation()
	t.Logf("shared agent: %d looks over %s (until %s after the Nomad agents started), %d short (%d with a registration lost or no 200) in %d gaps, longest gap %s; first: %s",
		w.samples, time.Since(start).Round(time.Second), time.Since(e.started).Round(time.Second), w.short, w.lost, w.gaps, w.longest, w.first)
	if w.lost == 0 && w.longest <= 5*time.Second {
		t.Fatalf("with one shared Consul agent no registration went missing in %d looks (%d short, longest %s): the control does not reproduce what TestOwnConsulAgentKeepsServices fails on", w.samples, w.short, w.longest)
	}
}

// TestHostDeath: KillHost kills a client's Nomad and Consul agents, plugin
// processes and containers at once; Consul marks the node's serfHealth
// critical, its service leaves the passing set and the address endpoint's
// list, while the other client stays passing; ReviveHost brings it back.
func TestHostDeath(t *testing.T) {
	e := startHosts(t, 2, false)
	server := e.consul.Server
	for _, ca := range e.consul.Clients {
		if st, err := server.SerfHealth(ca.NodeName); err != nil || st != api.HealthPassing {
			t.Fatalf("before the kill: node %s serfHealth %q (%v), want passing", ca.NodeName, st, err)
		}
	}

	dead := e.nomad.KillHost(t, 1)
	var critical, dropped time.Duration
	deadline := dead.At.Add(90 * time.Second)
	for (critical == 0 || dropped == 0) && time.Now().Before(deadline) {
		if critical == 0 {
			if st, _ := server.SerfHealth(dead.ConsulNode); st == api.HealthCritical {
				critical = time.Since(dead.At)
			}
		}
		if dropped == 0 {
			if s := e.look(); s.passing == 1 && s.nsaddrEntries == 1 {
				dropped = time.Since(dead.At)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if critical == 0 {
		t.Fatalf("node %s serfHealth not critical %s after the host died", dead.ConsulNode, 90*time.Second)
	}
	if dropped == 0 {
		t.Fatalf("the dead host's service still passing or served: %s", e.look())
	}
	t.Logf("host death: serfHealth critical after %s, service out of the passing set and the endpoint after %s", critical.Round(time.Millisecond), dropped.Round(time.Millisecond))

	for _, pid := range dead.PIDs {
		if syscall.Kill(pid, 0) == nil {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(b), ") Z ") {
				t.Errorf("process %d of the dead host still runs", pid)
			}
		}
	}
	if len(dead.Containers) == 0 {
		t.Errorf("KillHost killed no container; the system job runs one on every client")
	}
	for _, id := range dead.Containers {
		if out, err := testutil.Docker("inspect", "-f", "{{.State.Running}}", id); err != nil || out != "false" {
			t.Errorf("container %s of the dead host: running=%q (%v)", id, out, err)
		}
	}
	if st, _ := server.SerfHealth(e.consul.Clients[0].NodeName); st != api.HealthPassing {
		t.Errorf("the live node %s serfHealth is %q, want passing", e.consul.Clients[0].NodeName, st)
	}
	if s := e.look(); s.registered < 1 || s.passing != 1 {
		t.Errorf("the live host's service: %s", s)
	}

	e.nomad.ReviveHost(t, 1, 120*time.Second)
	if st, _ := server.SerfHealth(dead.ConsulNode); st != api.HealthPassing {
		t.Errorf("revived node %s serfHealth is %q, want passing", dead.ConsulNode, st)
	}
	e.waitState(t, 2, 180*time.Second)
}

// TestConsulClientStopLeavesKillFails: a client agent stopped gracefully
// leaves (its node's serfHealth goes from the catalog), one killed with
// SIGKILL fails (its node stays, serfHealth critical, its service out of
// the passing set); both come back with Restart.
func TestConsulClientStopLeavesKillFails(t *testing.T) {
	c := testutil.StartConsulCluster(t, 2)
	for _, ca := range c.Clients {
		if st, err := c.Server.SerfHealth(ca.NodeName); err != nil || st != api.HealthPassing {
			t.Fatalf("node %s serfHealth %q (%v), want passing", ca.NodeName, st, err)
		}
		if err := ca.Client.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "svc-" + ca.NodeName, Name: "svc", Port: 1}); err != nil {
			t.Fatal(err)
		}
	}
	waitServices(t, c.Server.Client, 2)

	start := time.Now()
	c.Clients[0].Stop()
	left := waitSerf(t, c.Server, c.Clients[0].NodeName, "", start)
	start = time.Now()
	c.Clients[1].Kill()
	failed := waitSerf(t, c.Server, c.Clients[1].NodeName, api.HealthCritical, start)
	t.Logf("graceful stop: node's serfHealth gone after %s; SIGKILL: serfHealth critical after %s", left.Round(time.Millisecond), failed.Round(time.Millisecond))
	entries, _, err := c.Server.Client.Health().Service("svc", "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var killed *api.ServiceEntry
	for _, en := range entries {
		if en.Node.Node == c.Clients[1].NodeName {
			killed = en
		}
	}
	if killed == nil || killed.Checks.AggregatedStatus() != api.HealthCritical {
		t.Fatalf("the killed node's service: %+v, want it in the catalog and critical", killed)
	}

	c.Clients[0].Restart()
	c.Clients[1].Restart()
	waitServices(t, c.Server.Client, 2)
}

func waitSerf(t *testing.T, server *testutil.ConsulAgent, node, want string, start time.Time) time.Duration {
	t.Helper()
	var st string
	for time.Since(start) < 60*time.Second {
		var err error
		if st, err = server.SerfHealth(node); err == nil && st == want {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("node %s serfHealth %q after %s, want %q", node, st, time.Since(start), want)
	return 0
}

func waitServices(t *testing.T, c *api.Client, n int) {
	t.Helper()
	var got int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		entries, _, err := c.Health().Service("svc", "", true, nil)
		if got = len(entries); err == nil && got == n {
			return
		}
	}
	t.Fatalf("%d passing instances of svc, want %d", got, n)
}
