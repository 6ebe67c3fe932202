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
	// ConsulAddr, when set, points every agent at that Consul agent.
	ConsulAddr string
	// NetworkInterface is the clients' task network interface; default
	// "lo". "docker0" makes task ports reachable from the host and from
	// inside containers alike (needed when tasks talk to each other).
	NetworkInterface string
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
}

// NomadAgent is one Nomad agent process.
type NomadAgent struct {
	Name       string
	HTTPAddr   string
	ConfigPath string
	DataDir    string
	LogPath    string

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
	root, err := os.MkdirTemp("", "rmq-nomad-e2e-")
	if err != nil {
		t.Fatalf("mkdir: %v", err)
	}
	ports, err := consulFreePorts(3 * (opts.Clients + 1))
	if err != nil {
		t.Fatalf("free ports: %v", err)
	}
	c := &NomadCluster{t: t, bin: bin, pluginDir: opts.PluginDir}

	consulHCL := `consul {
  auto_advertise   = false
  server_auto_join = false
  client_auto_join = false
}`
	if opts.ConsulAddr != "" {
		consulHCL = fmt.Sprintf("consul {\n  address = %q\n}", opts.ConsulAddr)
	}
	common := func(name, dir string, p []int) string {
		return fmt.Sprintf(`name = %q
data_dir = %q
bind_addr = "127.0.0.1"
log_level = "DEBUG"
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
`, name, dir, p[0], p[1], p[2], consulHCL)
	}

	srvDir := filepath.Join(root, "server")
	srvCfg := common("server", filepath.Join(srvDir, "data"), ports[0:3]) + `
server {
  enabled          = true
  bootstrap_expect = 1
}
`
	c.Server = newNomadAgent(t, bin, "server", srvDir, srvCfg)
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
		cfg := common(name, filepath.Join(dir, "data"), p) + fmt.Sprintf(`
plugin_dir = %q
client {
  enabled           = true
  servers           = ["127.0.0.1:%d"]
  network_interface = %q
  min_dynamic_port  = %d
  max_dynamic_port  = %d
}
%s
`, opts.PluginDir, rpc, opts.NetworkInterface, minPort, minPort+999, extra)
		a := newNomadAgent(t, bin, name, dir, cfg)
		a.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", p[0])
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
	cmd.Env = consulCleanEnv()
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
	// the plugin dir; none may outlive the test.
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

// killProcessesUsing kills every process whose executable path starts with
// prefix: the plugin and its docker_logger children.
func killProcessesUsing(prefix string) {
	for _, p := range procsWithPrefix(prefix) {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
}

type procInfo struct{ pid, ppid int }

// procsWithPrefix lists processes whose argv[0] starts with prefix.
func procsWithPrefix(prefix string) []procInfo {
	entries, _ := os.ReadDir("/proc")
	var out []procInfo
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.HasPrefix(string(cmdline), prefix) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		ppid := 0
		if len(fields) > 1 {
			fmt.Sscanf(fields[1], "%d", &ppid)
		}
		out = append(out, procInfo{pid: pid, ppid: ppid})
	}
	return out
}

// PluginPID returns the pid of the rmq-driver plugin process this client
// agent started (0 when none runs).
func (c *NomadCluster) PluginPID(a *NomadAgent) int {
	a.mu.Lock()
	cmd := a.cmd
	a.mu.Unlock()
	if cmd == nil {
		return 0
	}
	for _, p := range procsWithPrefix(filepath.Join(c.pluginDir, "rmq-driver")) {
		if p.ppid == cmd.Process.Pid {
			return p.pid
		}
	}
	return 0
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

// Alloc is the part of a Nomad allocation the tests read.
type Alloc struct {
	ID            string
	Name          string
	NodeID        string
	NodeName      string
	ClientStatus  string
	DesiredStatus string
	TaskStates    map[string]struct {
		State  string
		Failed bool
		Events []struct {
			Type            string
			DisplayMessage  string
			Message         string
			DriverError     string
			ValidationError string
			SetupError      string
			Details         map[string]string
		}
	}
	AllocatedResources *struct {
		Shared struct {
			Ports []struct {
				Label  string
				Value  int
				To     int
				HostIP string
			}
		}
	}
}

// JobAllocs returns the allocations of a job, with task states.
func (c *NomadCluster) JobAllocs(jobID string) ([]Alloc, error) {
	var stubs []struct{ ID string }
	if err := c.GetJSON("/v1/job/"+jobID+"/allocations", &stubs); err != nil {
		return nil, err
	}
	out := make([]Alloc, 0, len(stubs))
	for _, s := range stubs {
		var a Alloc
		if err := c.GetJSON("/v1/allocation/"+s.ID, &a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// WaitRunning waits until the job has n allocations running (desired run)
// and returns them.
func (c *NomadCluster) WaitRunning(t testing.TB, jobID string, n int, timeout time.Duration) []Alloc {
	t.Helper()
	var last []Alloc
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		allocs, err := c.JobAllocs(jobID)
		if err == nil {
			last = allocs
			var running []Alloc
			for _, a := range allocs {
				if a.DesiredStatus == "run" && a.ClientStatus == "running" {
					running = append(running, a)
				}
			}
			if len(running) == n {
				return running
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(last, "", " ")
	t.Fatalf("job %s: want %d running allocs after %s; allocs:\n%s", jobID, n, timeout, b)
	return nil
}

// RunJob writes the job spec to a file and runs `nomad job run -detach`.
func (c *NomadCluster) RunJob(t testing.TB, spec string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "job.nomad.hcl")
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatalf("write job: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := c.Nomad(ctx, "job", "run", "-detach", path); err != nil {
		t.Fatalf("job run: %v\n%s", err, out)
	}
}

// RunJobFile runs `nomad job run -detach` on a job file with -var values.
func (c *NomadCluster) RunJobFile(t testing.TB, path string, vars map[string]string) {
	t.Helper()
	args := []string{"job", "run", "-detach"}
	for _, k := range sortedKeys(vars) {
		args = append(args, "-var", k+"="+vars[k])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := c.Nomad(ctx, append(args, path)...); err != nil {
		t.Fatalf("job run %s: %v\n%s", path, err, out)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// PortOf returns the host port allocated for label in alloc a.
func (a *Alloc) PortOf(label string) (int, bool) {
	if a.AllocatedResources == nil {
		return 0, false
	}
	for _, p := range a.AllocatedResources.Shared.Ports {
		if p.Label == label {
			return p.Value, true
		}
	}
	return 0, false
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
