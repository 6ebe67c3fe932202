package testutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// ConsulAgent is a real Consul agent started for one test, on free loopback
// ports, with its own data directory. It is stopped on t.Cleanup.
//
// StartConsul starts a dev agent (`consul agent -dev`: a server that is its
// own leader); StartConsulCluster adds client agents (server = false) that
// join it, one per simulated host.
//
// Unlike a plain dev agent it is given a data directory, so services and
// checks registered through its HTTP API are persisted by the agent and
// synced back into the catalog after Restart; ports stay the same across
// restarts. The dev server's catalog is in memory: its raft indexes start
// over after a restart, as they would after a real cluster is rebuilt. A TTL
// check comes back with the status of its last TTL update
// (Agent().UpdateTTL); the status given at registration is not persisted, so
// such a check is critical after a restart until it is updated.
type ConsulAgent struct {
	// HTTPAddr is the agent's HTTP API address, "127.0.0.1:PORT".
	HTTPAddr string
	// SerfLANAddr is the agent's LAN gossip address, "127.0.0.1:PORT".
	SerfLANAddr string
	// NodeName is the agent's node name in the catalog.
	NodeName string
	// Client talks to the agent.
	Client *api.Client
	// DataDir is the agent's data directory, kept across restarts.
	DataDir string
	// LogPath is the file holding the agent's output (all runs).
	LogPath string

	t       testing.TB
	bin     string
	cfgPath string
	args    []string // after the binary

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exits
}

// consulStartTimeout bounds how long StartConsul and Restart wait for the
// agent to answer and elect itself leader.
const consulStartTimeout = 60 * time.Second

// ConsulBinary returns the path of the Consul agent binary used by tests:
// $RMQ_CONSUL_BIN, else $HOME/.cache/rmq-nomad-driver/bin/consul (also looked
// up under the user's home directory from the password database, for tests
// that point HOME elsewhere). It returns "" when none exists.
func ConsulBinary() string {
	if p := os.Getenv("RMQ_CONSUL_BIN"); p != "" {
		if consulIsExecutable(p) {
			return p
		}
		return ""
	}
	var homes []string
	if h, err := os.UserHomeDir(); err == nil {
		homes = append(homes, h)
	}
	if u, err := user.Current(); err == nil && u.HomeDir != "" {
		homes = append(homes, u.HomeDir)
	}
	for _, h := range homes {
		p := filepath.Join(h, ".cache", "rmq-nomad-driver", "bin", "consul")
		if consulIsExecutable(p) {
			return p
		}
	}
	return ""
}

func consulIsExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// StartConsul starts a Consul dev agent for the test and waits until it has
// elected itself leader. Without a Consul binary the test is skipped, or
// failed when RMQ_REQUIRE_AGENTS=1.
func StartConsul(t testing.TB) *ConsulAgent {
	t.Helper()
	return startConsulAgent(t, consulAgentSpec{nodeName: "rmq-test", server: true})
}

// consulAgentSpec says which agent startConsulAgent starts.
type consulAgentSpec struct {
	nodeName string
	server   bool   // the dev server; otherwise a client agent
	join     string // client agents: the server's serf LAN address
}

// startConsulAgent starts one agent on free ports and waits until it is
// ready (see start).
func startConsulAgent(t testing.TB, spec consulAgentSpec) *ConsulAgent {
	t.Helper()
	bin := ConsulBinary()
	if bin == "" {
		const msg = "Consul agent binary not found ($RMQ_CONSUL_BIN or $HOME/.cache/rmq-nomad-driver/bin/consul): " +
			"run `make tools` (or `bash scripts/tools.sh consul`) to build it, or run `make test`"
		if os.Getenv("RMQ_REQUIRE_AGENTS") == "1" {
			t.Fatalf("RMQ_REQUIRE_AGENTS=1: %s", msg)
		}
		t.Skipf("SKIPPING: %s", msg)
	}

	dir := t.TempDir()
	a := &ConsulAgent{
		t:        t,
		bin:      bin,
		NodeName: spec.nodeName,
		DataDir:  filepath.Join(dir, "data"),
		LogPath:  filepath.Join(dir, "consul.log"),
		cfgPath:  filepath.Join(dir, "consul.hcl"),
	}
	a.args = []string{"agent", "-config-file=" + a.cfgPath}
	if spec.server {
		a.args = []string{"agent", "-dev", "-config-file=" + a.cfgPath}
	}
	if err := os.MkdirAll(a.DataDir, 0o700); err != nil {
		t.Fatalf("create consul data dir: %v", err)
	}
	t.Cleanup(func() {
		a.Stop()
		if t.Failed() {
			t.Logf("consul agent %s output (tail of %s):\n%s", a.NodeName, a.LogPath, consulLogTail(a.LogPath, 60))
		}
	})

	// Free ports are picked by binding port 0 and releasing it, so another
	// process can take one before the agent binds it; retry a few times.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := consulFreePorts(4)
		if err != nil {
			t.Fatalf("pick free ports for consul: %v", err)
		}
		a.HTTPAddr = net.JoinHostPort("127.0.0.1", fmt.Sprint(ports[0]))
		a.SerfLANAddr = net.JoinHostPort("127.0.0.1", fmt.Sprint(ports[1]))
		if err := os.WriteFile(a.cfgPath, []byte(consulConfig(spec, a.DataDir, ports)), 0o600); err != nil {
			t.Fatalf("write consul config: %v", err)
		}
		client, err := api.NewClient(&api.Config{Address: a.HTTPAddr, Scheme: "http"})
		if err != nil {
			t.Fatalf("create consul api client: %v", err)
		}
		a.Client = client
		if lastErr = a.start(); lastErr == nil {
			return a
		}
		a.Stop()
		if !strings.Contains(consulLogTail(a.LogPath, 40), "address already in use") {
			break
		}
	}
	t.Fatalf("start consul agent %s: %v\n%s", a.NodeName, lastErr, consulLogTail(a.LogPath, 60))
	return nil
}

// consulConfig renders an agent's config. ports are http, serf_lan,
// serf_wan and server (RPC); a client agent binds only the first two.
func consulConfig(spec consulAgentSpec, dataDir string, ports []int) string {
	role := ""
	if !spec.server {
		// A graceful stop (SIGINT or SIGTERM) leaves the cluster, so the
		// node and its services leave the catalog at once; a SIGKILL
		// cannot leave, so the servers see the node fail, as when its
		// host dies.
		role = fmt.Sprintf(`server = false
retry_join = [%q]
retry_interval = "1s"
leave_on_terminate = true
skip_leave_on_interrupt = false
`, spec.join)
	}
	wan := fmt.Sprint(ports[2])
	if !spec.server {
		wan = "-1" // client agents do not gossip over the WAN
	}
	return fmt.Sprintf(`disable_update_check = true
node_name = %q
data_dir = %q
bind_addr = "127.0.0.1"
client_addr = "127.0.0.1"
advertise_addr = "127.0.0.1"
log_level = "INFO"
%sports {
  http = %d
  serf_lan = %d
  serf_wan = %s
  server = %d
  dns = -1
  grpc = -1
  grpc_tls = -1
  https = -1
}
connect { enabled = false }
peering { enabled = false }
ui_config { enabled = false }
`, spec.nodeName, dataDir, role, ports[0], ports[1], wan, ports[3])
}

// URL returns the agent's HTTP API base URL.
func (a *ConsulAgent) URL() string { return "http://" + a.HTTPAddr }

// Running reports whether the agent process is running.
func (a *ConsulAgent) Running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil {
		return false
	}
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

// Stop stops the agent (SIGINT, then SIGKILL after 15 s) and waits for it to
// exit; a client agent leaves the cluster first: the servers deregister its
// node (serfHealth and services) instead of marking it failed. Consul
// 1.15.6 keeps the agent's anti-entropy sync running during the few seconds
// a leave takes, so a sync that falls in that window puts the node and its
// services back into the catalog, without a serfHealth check; a test must
// not count on the services being gone after Stop. Its data directory and
// ports are kept for Restart. Stopping a stopped agent does nothing.
func (a *ConsulAgent) Stop() {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.cmd = nil
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	stopGracefully(cmd, done, 15*time.Second)
}

// Kill kills the agent with SIGKILL and waits for it to exit: it cannot
// leave the cluster, so the servers see its node fail (a client agent's
// serfHealth check turns critical), as when its host dies. Restart brings
// it back. Killing a stopped agent does nothing.
func (a *ConsulAgent) Kill() {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.cmd = nil
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// pid returns the agent process id (0 when not running).
func (a *ConsulAgent) pid() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil {
		return 0
	}
	return a.cmd.Process.Pid
}

// Restart starts a stopped agent again (stopping it first if it runs), with
// the same ports, configuration and data directory, and waits until it is
// ready again (see start). The test fails if it does not come back.
func (a *ConsulAgent) Restart() {
	a.t.Helper()
	a.Stop()
	if err := a.start(); err != nil {
		a.t.Fatalf("restart consul agent %s: %v\n%s", a.NodeName, err, consulLogTail(a.LogPath, 60))
	}
}

// start launches the agent process and waits until a leader is known
// through it and the catalog holds its node with a passing serfHealth
// check: the agent has joined and registrations made through it sync.
func (a *ConsulAgent) start() error {
	logf, err := os.OpenFile(a.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open consul log file: %w", err)
	}
	fmt.Fprintf(logf, "==== %s: starting %s %s\n", time.Now().Format(time.RFC3339Nano), a.bin, strings.Join(a.args, " "))
	cmd := exec.Command(a.bin, a.args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Own process group: a Ctrl-C in the terminal goes to the test binary,
	// whose cleanup stops the agent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL} // dies with the test binary
	// The agent must not pick up the caller's Consul client settings.
	cmd.Env = consulCleanEnv()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", a.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	a.mu.Lock()
	a.cmd, a.done = cmd, done
	a.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), consulStartTimeout)
	defer cancel()
	var lastErr error
	for {
		if lastErr = a.ready(); lastErr == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("consul agent %s exited during start-up", a.NodeName)
		case <-ctx.Done():
			return fmt.Errorf("consul agent %s at %s not ready after %s (last: %w)", a.NodeName, a.HTTPAddr, consulStartTimeout, lastErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ready reports why the agent is not ready yet (nil once it is).
func (a *ConsulAgent) ready() error {
	leader, err := a.Client.Status().Leader()
	switch {
	case err != nil:
		return fmt.Errorf("ask for the leader: %w", err)
	case leader == "":
		return errors.New("no leader yet")
	}
	status, err := a.SerfHealth(a.NodeName)
	if err != nil {
		return err
	}
	if status != api.HealthPassing {
		return fmt.Errorf("node %s serfHealth is %q", a.NodeName, status)
	}
	return nil
}

// SerfHealth returns the status of node's serfHealth check in the catalog
// ("passing", "critical"), asked through this agent; "" when the catalog
// has no such node or check (a node that left).
func (a *ConsulAgent) SerfHealth(node string) (string, error) {
	checks, _, err := a.Client.Health().Node(node, nil)
	if err != nil {
		return "", fmt.Errorf("health of node %s: %w", node, err)
	}
	for _, c := range checks {
		if c.CheckID == "serfHealth" {
			return c.Status, nil
		}
	}
	return "", nil
}

// consulCleanEnv returns the environment without CONSUL_* variables.
func consulCleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONSUL_") {
			env = append(env, kv)
		}
	}
	return env
}

// consulFreePorts returns n distinct free TCP ports on 127.0.0.1.
func consulFreePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for len(ports) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("listen on a free port: %w", err)
		}
		lns = append(lns, ln)
		port := ln.Addr().(*net.TCPAddr).Port
		// Serf also needs the UDP port.
		if pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			pc.Close()
			ports = append(ports, port)
		}
	}
	return ports, nil
}

// consulLogTail returns the last n lines of the file at path.
func consulLogTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
