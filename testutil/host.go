package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DeadHost is what KillHost killed.
type DeadHost struct {
	// Index is the client's index in NomadCluster.Clients.
	Index int
	// NodeID is the Nomad node id of the client.
	NodeID string
	// ConsulNode is the node name of its Consul client agent.
	ConsulNode string
	// PIDs are the processes killed with SIGKILL: the Nomad and Consul
	// agents, the plugins and their docker_logger children.
	PIDs []int
	// Containers are the ids of the containers killed.
	Containers []string
	// At is when the first SIGKILL was sent.
	At time.Time
}

// KillHost simulates the sudden death of Nomad client i's host: it sends
// SIGKILL, all at once, to the client's Nomad agent, every process below it
// and every process started from its plugin dir (the rmq-driver plugin and
// its docker_logger children, orphaned ones too), and its Consul client
// agent; then it `docker kill`s the containers of the allocations on that
// node (label com.hashicorp.nomad.alloc_id) and the containers the driver
// labelled with the node's id. Nothing gets to deregister, leave or release
// anything: the Consul servers see the node fail, the Nomad server sees its
// heartbeats stop. The cluster must have been started with
// NomadOptions.Consul. ReviveHost brings the host back.
func (c *NomadCluster) KillHost(t testing.TB, i int) DeadHost {
	t.Helper()
	if c.consul == nil {
		t.Fatalf("KillHost: the cluster was not started with NomadOptions.Consul")
	}
	if i < 0 || i >= len(c.Clients) {
		t.Fatalf("KillHost: no client %d", i)
	}
	a, ca := c.Clients[i], c.consul.Clients[i]
	d := DeadHost{Index: i, ConsulNode: ca.NodeName}
	var err error
	if d.NodeID, err = c.NodeID(a.Name); err != nil {
		t.Fatalf("KillHost: %v", err)
	}
	// Everything is looked up first, so the kills land within a moment.
	before := c.hostContainers(d.NodeID)
	pids := map[int]bool{}
	if pid := a.pid(); pid != 0 {
		pids[pid] = true
		for _, p := range descendants(pid) {
			pids[p] = true
		}
	}
	for _, p := range procsWithPrefix(a.PluginDir + "/") {
		pids[p.pid] = true
	}
	if pid := ca.pid(); pid != 0 {
		pids[pid] = true
	}
	names := procNames(pids)
	d.At = time.Now()
	for pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		d.PIDs = append(d.PIDs, pid)
	}
	sort.Ints(d.PIDs)
	a.Kill()
	ca.Kill()
	// Whatever the dying processes started meanwhile goes too.
	for _, p := range procsWithPrefix(a.PluginDir + "/") {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
		if !pids[p.pid] {
			pids[p.pid] = true
			d.PIDs = append(d.PIDs, p.pid)
		}
	}
	seen := map[string]bool{}
	for _, id := range append(before, c.hostContainers(d.NodeID)...) {
		if !seen[id] {
			seen[id] = true
			d.Containers = append(d.Containers, id)
		}
	}
	if len(d.Containers) > 0 {
		if _, err := Docker(append([]string{"kill"}, d.Containers...)...); err != nil {
			// A container that exited meanwhile cannot be killed; any
			// other still running is a failure of the helper.
			if left := c.runningOf(d.Containers); len(left) > 0 {
				t.Fatalf("KillHost: containers %v of %s still run: %v", left, a.Name, err)
			}
		}
	}
	t.Logf("host %s killed: nomad node %s, consul node %s, processes %s, containers %v",
		a.Name, d.NodeID, d.ConsulNode, strings.Join(names, ", "), d.Containers)
	return d
}

// ReviveHost starts a host killed by KillHost again: its Consul client agent
// (same node name, data dir and ports; it rejoins) and then its Nomad agent
// (same config and data_dir), and waits until the Nomad node is ready with
// the rocketmq driver healthy. The killed containers stay dead: the client
// finds its allocations lost, as after a real reboot.
func (c *NomadCluster) ReviveHost(t testing.TB, i int, timeout time.Duration) {
	t.Helper()
	if c.consul == nil {
		t.Fatalf("ReviveHost: the cluster was not started with NomadOptions.Consul")
	}
	a := c.Clients[i]
	c.consul.Clients[i].Restart()
	a.Restart()
	c.WaitNodeReady(t, a.Name, timeout)
}

// NodeID returns the Nomad node id of the agent called name. A host that
// came back without its data dir (WipeHost) registers a new node of the
// same name; the live one is preferred over the old, down one.
func (c *NomadCluster) NodeID(name string) (string, error) {
	var nodes []struct {
		ID, Name, Status string
		CreateIndex      uint64
	}
	if err := c.GetJSON("/v1/nodes", &nodes); err != nil {
		return "", fmt.Errorf("list nomad nodes: %w", err)
	}
	id, best, bestIndex := "", false, uint64(0)
	for _, n := range nodes {
		if n.Name != name {
			continue
		}
		live := n.Status != "down"
		if id == "" || (live && !best) || (live == best && n.CreateIndex > bestIndex) {
			id, best, bestIndex = n.ID, live, n.CreateIndex
		}
	}
	if id == "" {
		return "", fmt.Errorf("no nomad node called %s", name)
	}
	return id, nil
}

// WipeHost deletes the Nomad data dir of client i, killed by KillHost: the
// allocation dirs, and with them the stores of the tasks that ran there.
// ReviveHost then brings the host back as a new machine (a new node id,
// nothing to restore), as when a dead host is replaced.
func (c *NomadCluster) WipeHost(t testing.TB, i int) {
	t.Helper()
	a := c.Clients[i]
	a.mu.Lock()
	running := a.cmd != nil
	a.mu.Unlock()
	if running {
		t.Fatalf("WipeHost: nomad %s still runs; KillHost it first", a.Name)
	}
	unmountUnder(a.DataDir)
	if err := os.RemoveAll(a.DataDir); err != nil {
		t.Fatalf("WipeHost: %v", err)
	}
	if err := os.MkdirAll(a.DataDir, 0o755); err != nil {
		t.Fatalf("WipeHost: %v", err)
	}
}

// WaitNodeReady waits until the node called name is ready with the rocketmq
// driver healthy.
func (c *NomadCluster) WaitNodeReady(t testing.TB, name string, timeout time.Duration) {
	t.Helper()
	var last string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		id, err := c.NodeID(name)
		if err == nil {
			var n struct {
				Status  string
				Drivers map[string]struct{ Healthy bool }
			}
			if err = c.GetJSON("/v1/node/"+id, &n); err == nil {
				if n.Status == "ready" && n.Drivers["rocketmq"].Healthy {
					return
				}
				last = fmt.Sprintf("status %s, rocketmq %+v", n.Status, n.Drivers["rocketmq"])
			}
		}
		if err != nil {
			last = err.Error()
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("nomad node %s not ready after %s: %s", name, timeout, last)
}

// hostContainers lists the running containers of node's allocations and
// those the driver labelled with the node id (driver/driver.go labelNodeID).
func (c *NomadCluster) hostContainers(nodeID string) []string {
	filters := []string{"label=com.github.rmqnomad.node_id=" + nodeID}
	var allocs []struct{ ID string }
	if err := c.GetJSON("/v1/node/"+nodeID+"/allocations", &allocs); err == nil {
		for _, al := range allocs {
			filters = append(filters, "label=com.hashicorp.nomad.alloc_id="+al.ID)
		}
	}
	var ids []string
	for _, f := range filters {
		out, err := Docker("ps", "-q", "--no-trunc", "--filter", f)
		if err == nil && out != "" {
			ids = append(ids, strings.Fields(out)...)
		}
	}
	return ids
}

// procNames describes the processes pids as "pid:name [first argument]".
func procNames(pids map[int]bool) []string {
	var out []string
	for _, p := range allProcs() {
		if !pids[p.pid] {
			continue
		}
		argv := strings.Split(strings.TrimRight(p.cmdline, "\x00"), "\x00")
		name := filepath.Base(argv[0])
		if len(argv) > 1 {
			name += " " + argv[1]
		}
		out = append(out, fmt.Sprintf("%d:%s", p.pid, name))
	}
	return out
}

// runningOf returns the containers of ids that still run.
func (c *NomadCluster) runningOf(ids []string) []string {
	var left []string
	for _, id := range ids {
		if out, err := Docker("inspect", "-f", "{{.State.Running}}", id); err == nil && out == "true" {
			left = append(left, id)
		}
	}
	return left
}

// Consul returns the Consul cluster the Nomad agents use (nil when the
// cluster was started without NomadOptions.Consul).
func (c *NomadCluster) Consul() *ConsulCluster { return c.consul }
