package testutil

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NomadBinary returns the Nomad v1.6.3 agent used by tests: $RMQ_NOMAD_BIN,
// else $HOME/.cache/rmq-nomad-driver/bin/nomad ("" when missing).
func NomadBinary() string {
	if p := os.Getenv("RMQ_NOMAD_BIN"); p != "" && consulIsExecutable(p) {
		return p
	}
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, ".cache", "rmq-nomad-driver", "bin", "nomad")
	if consulIsExecutable(p) {
		return p
	}
	return ""
}

// NomadOptions configures StartNomad.
type NomadOptions struct {
	// PluginDir holds the rmq-driver binary.
	PluginDir string
	// Clients is the number of client agents (default 1).
	Clients int
	// ClientHCL returns extra HCL for client i's agent config, typically
	// `plugin "rmq-driver" { ... }` and `plugin "docker" { ... }` blocks.
	ClientHCL func(i int) string
	// ConsulAddr, when set, points every agent (server and clients) at that
	// one Consul agent. With more than one client this setup is broken the
	// way a shared agent is in production: once a client's first minute is
	// over, its service sync (every 30 s and on changes) deregisters the
	// services the others registered, so services (and the NameServer
	// lists fed from them) come and go. Use it only with one client, or to
	// show that; otherwise set Consul.
	ConsulAddr string
	// Consul, when set, gives every agent its own Consul agent, as on real
	// hosts: the server uses Consul.Server and client i Consul.Clients[i]
	// (it must have at least Clients client agents). KillHost and
	// ReviveHost need it.
	Consul *ConsulCluster
	// NetworkInterface is the clients' task network interface; default
	// "lo". "docker0" makes task ports reachable from the host and from
	// inside containers alike (needed when tasks talk to each other).
	NetworkInterface string
	// LogLevel is every agent's log_level (default DEBUG); TRACE adds the
	// task runner's hook timings.
	LogLevel string
}

// NomadCluster is one Nomad server agent and N client agents on loopback,
// each with its own data_dir, ports and dynamic port range.
type NomadCluster struct {
	Addr    string // server HTTP address, http://127.0.0.1:PORT
	Server  *NomadAgent
	Clients []*NomadAgent

	t         testing.TB
	bin       string
	pluginDir string
	consul    *ConsulCluster
}

// NomadAgent is one Nomad agent process.
type NomadAgent struct {
	Name       string
	HTTPAddr   string
	ConfigPath string
	DataDir    string
	LogPath    string
	// PluginDir is a client's own plugin_dir: links to the files of
	// NomadOptions.PluginDir, so the processes started from it (the
	// plugins and their docker_logger children) tell which client runs
	// them, even once orphaned. Empty for the server.
	PluginDir string
	// ConsulAddr is the HTTP address of the Consul agent this agent uses
	// ("" when none is configured).
	ConsulAddr string

	t    testing.TB
	bin  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartNomad starts the agents, waits until every client is ready, and stops
// everything (agents, plugin processes, containers of the cluster's
// allocations) on t.Cleanup.
func StartNomad(t testing.TB, opts NomadOptions) *NomadCluster {
	t.Helper()
	bin := NomadBinary()
	if bin == "" {
		requireOrSkip(t, "Nomad agent binary not found (set RMQ_NOMAD_BIN or run `make tools`)")
	}
	if opts.Clients == 0 {
		opts.Clients = 1
	}
	if opts.NetworkInterface == "" {
		opts.NetworkInterface = "lo"
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "DEBUG"
	}
	root, err := os.MkdirTemp("", "rmq-nomad-e2e-")
	if err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	ports, err := consulFreePorts(3 * (opts.Clients + 1))
	if err != nil {
		t.Fatalf("free ports: %v", err)
	}
	if opts.Consul != nil && opts.ConsulAddr != "" {
		t.Fatalf("NomadOptions: set ConsulAddr or Consul, not both")
	}
	if opts.Consul != nil && len(opts.Consul.Clients) < opts.Clients {
		t.Fatalf("NomadOptions: %d Nomad clients need as many Consul client agents, the Consul cluster has %d", opts.Clients, len(opts.Consul.Clients))
	}
	c := &NomadCluster{t: t, bin: bin, pluginDir: opts.PluginDir, consul: opts.Consul}

	// consulAddr is the Consul agent of the Nomad server (i < 0) or of
	// client i.
	consulAddr := func(i int) string {
		switch {
		case opts.Consul != nil && i < 0:
			return opts.Consul.Server.HTTPAddr
		case opts.Consul != nil:
			return opts.Consul.Clients[i].HTTPAddr
		}
		return opts.ConsulAddr
	}
	common := func(name, dir string, p []int, consulAddr string) string {
		consulHCL := `consul {
  auto_advertise   = false
  server_auto_join = false
  client_auto_join = false
}`
		if consulAddr != "" {
			consulHCL = fmt.Sprintf("consul {\n  address = %q\n}", consulAddr)
		}
		return fmt.Sprintf(`name = %q
data_dir = %q
bind_addr = "127.0.0.1"
log_level = %q
disable_update_check = true
ports {
  http = %d
  rpc  = %d
  serf = %d
}
advertise {
  http = "127.0.0.1"
  rpc  = "127.0.0.1"
  serf = "127.0.0.1"
}
%s
`, name, dir, opts.LogLevel, p[0], p[1], p[2], consulHCL)
	}

	srvDir := filepath.Join(root, "server")
	srvCfg := common("server", filepath.Join(srvDir, "data"), ports[0:3], consulAddr(-1)) + `
server {
  enabled          = true
  bootstrap_expect = 1
}
`
	c.Server = newNomadAgent(t, bin, "server", srvDir, srvCfg)
	c.Server.ConsulAddr = consulAddr(-1)
	c.Server.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	c.Addr = "http://" + c.Server.HTTPAddr
	rpc := ports[1]

	for i := 0; i < opts.Clients; i++ {
		name := fmt.Sprintf("client-%d", i)
		dir := filepath.Join(root, name)
		p := ports[3*(i+1) : 3*(i+2)]
		minPort := 21000 + i*1000
		extra := ""
		if opts.ClientHCL != nil {
			extra = opts.ClientHCL(i)
		}
		pluginDir := filepath.Join(dir, "plugins")
		if err := linkDir(opts.PluginDir, pluginDir); err != nil {
			t.Fatalf("plugin dir of nomad %s: %v", name, err)
		}
		cfg := common(name, filepath.Join(dir, "data"), p, consulAddr(i)) + fmt.Sprintf(`
plugin_dir = %q
client {
  enabled           = true
  servers           = ["127.0.0.1:%d"]
  network_interface = %q
  min_dynamic_port  = %d
  max_dynamic_port  = %d
}
%s
`, pluginDir, rpc, opts.NetworkInterface, minPort, minPort+999, extra)
		a := newNomadAgent(t, bin, name, dir, cfg)
		a.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", p[0])
		a.PluginDir, a.ConsulAddr = pluginDir, consulAddr(i)
		c.Clients = append(c.Clients, a)
	}

	t.Cleanup(func() { c.cleanup(root) })
	for _, a := range append([]*NomadAgent{c.Server}, c.Clients...) {
		if err := a.start(); err != nil {
			t.Fatalf("start nomad %s: %v", a.Name, err)
		}
	}
	c.WaitNodesReady(t, opts.Clients, 90*time.Second)
	return c
}

func newNomadAgent(t testing.TB, bin, name, dir, cfg string) *NomadAgent {
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	path := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatalf("write config: %v", err)
	}
	return &NomadAgent{Name: name, ConfigPath: path, DataDir: filepath.Join(dir, "data"), LogPath: filepath.Join(dir, "agent.log"), t: t, bin: bin}
}

func (a *NomadAgent) start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	logf, err := os.OpenFile(a.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(a.bin, "agent", "-config", a.ConfigPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	// NOMAD_ADDR names the agent's own HTTP API, as an operator's
	// environment would on a host whose agent is not on :4646: the plugins
	// it starts inherit it and ask their own agent whether an allocation
	// has ended (the rmq-driver's nomad block default).
	cmd.Env = append(consulCleanEnv(), "NOMAD_ADDR=http://"+a.HTTPAddr)
	// Pdeathsig: the agent dies with the test binary, even when that is
	// killed before its cleanups run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	a.cmd, a.done = cmd, done
	return nil
}

// Stop stops the agent with SIGINT (graceful), then SIGKILL after 20s. The
// agent's plugin processes and tasks keep running, as on a real host.
func (a *NomadAgent) Stop() {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.cmd = nil
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	stopGracefully(cmd, done, 20*time.Second)
}

// Kill kills the agent with SIGKILL and waits for it to exit. Unlike a
// host death (NomadCluster.KillHost) its plugin processes and tasks keep
// running.
func (a *NomadAgent) Kill() {
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
func (a *NomadAgent) pid() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil {
		return 0
	}
	return a.cmd.Process.Pid
}

// Restart stops and starts the agent with the same config and data_dir.
func (a *NomadAgent) Restart() {
	a.t.Helper()
	a.Stop()
	if err := a.start(); err != nil {
		a.t.Fatalf("restart nomad %s: %v", a.Name, err)
	}
}

// LogTail returns the last n lines of the agent's output.
func (a *NomadAgent) LogTail(n int) string { return consulLogTail(a.LogPath, n) }

func (c *NomadCluster) cleanup(root string) {
	// Stop the jobs first so the clients remove their containers, then
	// remove any container of this cluster's allocations that is left.
	var allocs []struct{ ID string }
	_ = c.GetJSON("/v1/allocations", &allocs)
	var jobs []struct{ ID string }
	if c.GetJSON("/v1/jobs", &jobs) == nil {
		for _, j := range jobs {
			_, _ = c.Nomad(context.Background(), "job", "stop", "-purge", "-detach", j.ID)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && c.runningContainers(allocs) > 0 {
		time.Sleep(500 * time.Millisecond)
	}
	for _, a := range c.Clients {
		a.Stop()
	}
	c.Server.Stop()
	for _, al := range allocs {
		if ids, err := Docker("ps", "-aq", "--filter", "label=com.hashicorp.nomad.alloc_id="+al.ID); err == nil && ids != "" {
			_, _ = Docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
	}
	// Plugin and docker_logger processes were started by the clients from
	// their plugin dirs; none may outlive the test.
	for _, a := range c.Clients {
		killProcessesUsing(a.PluginDir + "/")
	}
	killProcessesUsing(filepath.Join(c.pluginDir, "rmq-driver"))
	if c.t.Failed() {
		for _, a := range append([]*NomadAgent{c.Server}, c.Clients...) {
			c.t.Logf("nomad %s log (tail):\n%s", a.Name, a.LogTail(60))
		}
		unmountUnder(root)
		c.t.Logf("nomad agent dirs kept in %s", root)
		return
	}
	unmountUnder(root)
	_ = os.RemoveAll(root)
}

// unmountUnder unmounts what the Nomad clients mounted under dir (the
// tmpfs secrets and private dirs of task dirs), deepest first.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			points = append(points, f[1])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, p := range points {
		_ = syscall.Unmount(p, 0)
	}
}

func (c *NomadCluster) runningContainers(allocs []struct{ ID string }) int {
	n := 0
	for _, al := range allocs {
		if ids, err := Docker("ps", "-q", "--filter", "label=com.hashicorp.nomad.alloc_id="+al.ID); err == nil && ids != "" {
			n++
		}
	}
	return n
}

// Nomad runs the nomad CLI against the cluster and returns its combined
// output.
func (c *NomadCluster) Nomad(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(consulCleanEnv(), "NOMAD_ADDR="+c.Addr)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("nomad %s: %w: %s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// GetJSON GETs a path of the server's HTTP API into out.
func (c *NomadCluster) GetJSON(path string, out any) error {
	resp, err := http.Get(c.Addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// WaitNodesReady waits until n client nodes are ready with the rocketmq
// driver healthy.
func (c *NomadCluster) WaitNodesReady(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	var last string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var nodes []struct {
			ID      string
			Name    string
			Status  string
			Drivers map[string]struct {
				Detected          bool
				Healthy           bool
				HealthDescription string
			}
		}
		if err := c.GetJSON("/v1/nodes", &nodes); err == nil {
			ready := 0
			for _, nd := range nodes {
				d := nd.Drivers["rocketmq"]
				last = fmt.Sprintf("%s status=%s rocketmq=%+v", nd.Name, nd.Status, d)
				if nd.Status == "ready" && d.Healthy {
					ready++
				}
			}
			if ready >= n {
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("nomad clients not ready after %s: %s", timeout, last)
}

// WaitHTTP polls url until it answers 200 and returns the body.
func WaitHTTP(t testing.TB, url string, timeout time.Duration) string {
	t.Helper()
	var last error
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(b)
			}
			last = fmt.Errorf("status %s", resp.Status)
		} else {
			last = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("GET %s did not answer 200 in %s: %v", url, timeout, last)
	return ""
}

// FreeTCPPort returns a free port on loopback.
func FreeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
