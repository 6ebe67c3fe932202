package driver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/helper/pluginutils/hclspecutils"
	"github.com/hashicorp/nomad/helper/pluginutils/hclutils"
	"github.com/hashicorp/nomad/helper/uuid"
	"github.com/hashicorp/nomad/nomad/structs"
	"github.com/hashicorp/nomad/plugins/base"
	"github.com/hashicorp/nomad/plugins/drivers"
	dtestutil "github.com/hashicorp/nomad/plugins/drivers/testutils"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi/simtest"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// The harness tests run the driver the way the Nomad client does (over
// go-plugin gRPC, Nomad's own DriverHarness) against the real Docker engine,
// the UCloud simulator through the real SDK, and a real Consul agent. They
// skip loudly without those, and fail with RMQ_REQUIRE_AGENTS=1.

// kvPrefix is the consul.kv_prefix of every harness driver.
const kvPrefix = "rmqtest"

// The simulated host every harness driver runs on (simtest.State).
const (
	testUHost     = "uhost-a"
	testPrivateIP = "10.9.0.11"
)

// cloudEnv is a simulator and a Consul agent for one test.
type cloudEnv struct {
	sim    *simtest.Env
	consul *testutil.ConsulAgent
}

func newCloudEnv(t *testing.T) *cloudEnv {
	t.Helper()
	consul := testutil.StartConsul(t)
	return &cloudEnv{sim: simtest.Start(t, ucloudsim.Config{}), consul: consul}
}

// newSimEnv is a simulator without Consul.
func newSimEnv(t *testing.T) *cloudEnv {
	t.Helper()
	return &cloudEnv{sim: simtest.Start(t, ucloudsim.Config{})}
}

// dockerImage makes sure Docker answers and returns the test image.
func dockerImage(t *testing.T) string {
	t.Helper()
	testutil.EnsureDocker(t)
	return testutil.BuildTestImage(t)
}

// pluginOpts tune the plugin config of a harness driver.
type pluginOpts struct {
	BindTimeout string // ucloud.bind_timeout; "" means 20s
	MaxAttempts int    // ucloud.max_attempts; 0 means the default
	CallTimeout string // ucloud.call_timeout; "" means 2s
	ConsulAddr  string // "" means the env's agent
}

// pluginConfig is the client's `plugin "rmq-driver" { config { ... } }`.
func (e *cloudEnv) pluginConfig(o pluginOpts) map[string]any {
	if o.BindTimeout == "" {
		o.BindTimeout = "20s"
	}
	if o.CallTimeout == "" {
		o.CallTimeout = "2s"
	}
	if o.ConsulAddr == "" && e.consul != nil {
		o.ConsulAddr = e.consul.HTTPAddr
	}
	uc := map[string]any{
		"region": simtest.Region, "project_id": simtest.Project,
		"public_key": simtest.PublicKey, "private_key": simtest.PrivateKey,
		"base_url": e.sim.Sim.URL(), "uhost_id": testUHost, "private_ip": testPrivateIP,
		"call_timeout": o.CallTimeout, "bind_timeout": o.BindTimeout,
	}
	if o.MaxAttempts > 0 {
		uc["max_attempts"] = o.MaxAttempts
	}
	cfg := map[string]any{
		"docker": map[string]any{
			// Log shipping re-executes the plugin binary, which is the
			// test binary here.
			"disable_log_collection": true,
			"gc": map[string]any{
				"image":               false,
				"dangling_containers": map[string]any{"enabled": false},
			},
		},
		"ucloud": uc,
	}
	if o.ConsulAddr != "" {
		cfg["consul"] = map[string]any{"address": o.ConsulAddr, "kv_prefix": kvPrefix}
	}
	return cfg
}

// harness is one plugin process: our driver behind Nomad's DriverHarness.
type harness struct {
	*dtestutil.DriverHarness
	t      *testing.T
	d      *Driver
	cancel context.CancelFunc
	logs   *logBuffer
}

// MkAllocDir makes the task's alloc dir, like the embedded harness's, but
// the embedded cleanup also closes the harness's plugin client: run from
// a test's defers, the first one would leave every other task's
// DestroyTask failing and its container running. So that cleanup runs
// only at the test's end (t.Cleanup, after the defers), and the cleanup
// returned here destroys the task, while the client is still open.
func (h *harness) MkAllocDir(task *drivers.TaskConfig, enableLogs bool) func() {
	h.t.Helper()
	// Registered first, so it runs last: after every task's destroy and
	// every harness's cleanup of this test.
	h.t.Cleanup(func() { assertNoContainers(h.t, task.AllocID) })
	h.t.Cleanup(h.DriverHarness.MkAllocDir(task, enableLogs))
	return func() {
		if err := h.DestroyTask(task.ID, true); err != nil && !strings.Contains(err.Error(), drivers.ErrTaskNotFound.Error()) {
			h.t.Logf("destroy task %s: %v", task.ID, err)
		}
	}
}

// assertNoContainers fails t when a container of the allocation is still
// there at the test's end (a leaked task: a broker JVM left running loads
// every later test), and removes it.
func assertNoContainers(t *testing.T, allocID string) {
	t.Helper()
	out, err := testutil.Docker("ps", "-aq", "--filter", "label=com.hashicorp.nomad.alloc_id="+allocID)
	if err != nil {
		t.Errorf("list containers of alloc %s: %v", allocID, err)
		return
	}
	ids := strings.Fields(out)
	if len(ids) == 0 {
		return
	}
	t.Errorf("alloc %s left %d container(s) behind: %v", allocID, len(ids), ids)
	_, _ = testutil.Docker(append([]string{"rm", "-f", "-v"}, ids...)...)
}

// newHarness starts a driver and configures it the way the Nomad client
// does: the HCL config decoded against our schema, sent as msgpack.
func newHarness(t *testing.T, cfg map[string]any) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &logBuffer{}
	logger := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Debug, Output: logs, JSONFormat: true})
	d := New(ctx, logger)
	h := &harness{DriverHarness: dtestutil.NewDriverHarness(t, d), t: t, d: d, cancel: cancel, logs: logs}
	t.Cleanup(func() {
		cancel()
		if t.Failed() {
			t.Logf("driver log:\n%s", logs.tail(80))
		}
	})

	spec, err := d.ConfigSchema()
	if err != nil {
		t.Fatal(err)
	}
	dec, diags := hclspecutils.Convert(spec)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	val, diags, errs := hclutils.ParseHclInterface(cfg, dec, nil)
	if diags.HasErrors() || len(errs) > 0 {
		t.Fatalf("plugin config: %v %v", diags, errs)
	}
	data, err := ctymsgpack.Marshal(val, val.Type())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.SetConfig(&base.Config{PluginConfig: data}); err != nil {
		t.Fatalf("SetConfig: %v", err)
	}
	return h
}

// crash ends the plugin process without stopping its tasks, as when the
// Nomad client or the plugin restarts: containers keep running.
func (h *harness) crash() {
	h.cancel()
	h.Kill()
}

// brokerRMQ and nameServerRMQ are public-mode rocketmq blocks on the
// simulator's account.
func brokerRMQ(eip string) RocketMQConfig {
	return RocketMQConfig{Cluster: "orders", Role: RoleBroker, Mode: ModePublic, Port: "rmq", EIP: &EIPConfig{ID: eip}}
}

func nameServerRMQ() RocketMQConfig {
	return RocketMQConfig{Cluster: "orders", Role: RoleNameServer, Mode: ModePublic, Port: "rmq",
		ULB: &ULBConfig{ULBID: "ulb-ns", VServerID: "vserver-ns"}}
}

// newTask returns a task config for image with the rocketmq block rmq, its
// listen port a free host port.
func newTask(t *testing.T, image string, rmq RocketMQConfig) *drivers.TaskConfig {
	t.Helper()
	port := testutil.FreeTCPPort(t)
	task := &drivers.TaskConfig{
		ID:      uuid.Generate(),
		Name:    "app",
		JobName: "rmq-" + rmq.Role,
		AllocID: uuid.Generate(),
		NodeID:  uuid.Generate(),
		Env:     map[string]string{"NOMAD_ALLOC_INDEX": "0"},
		Resources: &drivers.Resources{
			NomadResources: &structs.AllocatedTaskResources{
				Memory: structs.AllocatedMemoryResources{MemoryMB: 64},
				Cpu:    structs.AllocatedCpuResources{CpuShares: 100},
			},
			LinuxResources: &drivers.LinuxResources{CPUShares: 100, MemoryLimitBytes: 64 << 20, PercentTicks: 100.0 / 4096},
			Ports:          &structs.AllocatedPorts{{Label: "rmq", Value: port, HostIP: "127.0.0.1"}},
		},
	}
	setTaskConfig(t, task, map[string]any{"image": image, "args": []string{"serve"}, "rocketmq": rmqBlock(rmq)})
	return task
}

// setTaskConfig sets the task's `config` block the way the Nomad client
// does: decoded against our task schema (docker's plus the rocketmq block,
// defaults filled in) and sent as msgpack.
func setTaskConfig(t *testing.T, task *drivers.TaskConfig, cfg map[string]any) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	spec, err := New(ctx, hclog.NewNullLogger()).TaskConfigSchema()
	if err != nil {
		t.Fatal(err)
	}
	dec, diags := hclspecutils.Convert(spec)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	val, diags, errs := hclutils.ParseHclInterface(cfg, dec, nil)
	if diags.HasErrors() || len(errs) > 0 {
		t.Fatalf("task config: %v %v", diags, errs)
	}
	if err := task.EncodeDriverConfig(val); err != nil {
		t.Fatal(err)
	}
}

// rmqBlock is the rocketmq block as a job spec writes it.
func rmqBlock(r RocketMQConfig) map[string]any {
	m := map[string]any{"cluster": r.Cluster, "role": r.Role, "mode": r.Mode, "port": r.Port}
	if r.EIP != nil {
		e := map[string]any{}
		if r.EIP.ID != "" {
			e["id"] = r.EIP.ID
		}
		if len(r.EIP.IDs) > 0 {
			e["ids"] = r.EIP.IDs
		}
		if r.EIP.ConsulKey {
			e["consul_key"] = true
		}
		m["eip"] = e
	}
	if r.ULB != nil {
		m["ulb"] = map[string]any{"ulb_id": r.ULB.ULBID, "vserver_id": r.ULB.VServerID}
	}
	return m
}

// eipBoundTo returns the host the EIP is bound to in the simulator ("" if
// free).
func (e *cloudEnv) eipBoundTo(t *testing.T, id string) string {
	t.Helper()
	return e.sim.EIP(t, id).ResourceID
}

// backendsOf returns the simulator's backends of (host, port) on the test
// VServer.
func (e *cloudEnv) backendsOf(t *testing.T, uhost string, port int) []ucloudsim.Backend {
	t.Helper()
	var out []ucloudsim.Backend
	for _, b := range e.sim.Backends(t, "ulb-ns", "vserver-ns") {
		if b.ResourceID == uhost && b.Port == port {
			out = append(out, b)
		}
	}
	return out
}

// ownerRecords returns every owner record key in Consul.
func (e *cloudEnv) ownerRecords(t *testing.T) []string {
	t.Helper()
	keys, _, err := e.consul.Client.KV().Keys(kvPrefix+"/owners/", "", nil)
	if err != nil {
		t.Fatalf("list owner records: %v", err)
	}
	return keys
}

// requireReleased fails the test unless the EIP is free and no owner
// record is left.
func (e *cloudEnv) requireReleased(t *testing.T, eip string) {
	t.Helper()
	if on := e.eipBoundTo(t, eip); on != "" {
		t.Errorf("eip %s is still bound to %s", eip, on)
	}
	if keys := e.ownerRecords(t); len(keys) != 0 {
		t.Errorf("owner records left in consul: %v", keys)
	}
}

// listenPortOf is the host port of the task's rmq port.
func listenPortOf(task *drivers.TaskConfig) int {
	m, _ := task.Resources.Ports.Get("rmq")
	return m.Value
}

// actionsSince returns the simulator's logged requests of action after seq.
func (e *cloudEnv) actionsSince(action string, seq int64) []ucloudsim.RequestLogEntry {
	var out []ucloudsim.RequestLogEntry
	for _, r := range e.sim.Sim.Requests() {
		if r.Seq > seq && r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// containerOf returns the container id in the task handle's driver state.
func containerOf(t *testing.T, h *drivers.TaskHandle) string {
	t.Helper()
	var st taskState
	if err := h.GetDriverState(&st); err != nil {
		t.Fatal(err)
	}
	return st.ContainerID
}

// dockerEvent is one line of `docker events --format '{{json .}}'`.
type dockerEvent struct {
	Action   string `json:"Action"`
	TimeNano int64  `json:"timeNano"`
}

// containerEvents returns the Docker engine's events of a container since
// `since`, oldest first.
func containerEvents(t *testing.T, id string, since time.Time) []dockerEvent {
	t.Helper()
	out, err := testutil.Docker("events", "--since", fmt.Sprintf("%d", since.Add(-time.Second).Unix()),
		"--until", fmt.Sprintf("%d", time.Now().Add(time.Second).Unix()),
		"--filter", "container="+id, "--format", "{{json .}}")
	if err != nil {
		t.Fatal(err)
	}
	var evs []dockerEvent
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var ev dockerEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("docker event %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// firstEvent returns the time of the container's first event named action.
func firstEvent(t *testing.T, evs []dockerEvent, action string) time.Time {
	t.Helper()
	for _, ev := range evs {
		if ev.Action == action || strings.HasPrefix(ev.Action, action+":") {
			return time.Unix(0, ev.TimeNano)
		}
	}
	t.Fatalf("no %q event among %+v", action, evs)
	return time.Time{}
}

// logBuffer collects the driver's JSON log lines; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines returns the decoded log lines.
func (l *logBuffer) lines() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.buf.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func (l *logBuffer) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := strings.Split(strings.TrimRight(l.buf.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
