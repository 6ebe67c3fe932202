//go:build e2e

package e2e

import (
	"fmt"
	"math/rand"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// The replication tests run real RocketMQ under the driver on four Nomad
// clients, each with its own Consul agent: client-0 holds the three
// controllers (pinned, static ports) and the two NameServers, clients 1-3
// the broker group. A Go producer sends keyed messages the whole time and
// records every acknowledged key; afterwards a consumer in a new group reads
// the topic from the first offset, so a key counts only if the surviving
// replicas really hold it.
//
// The host death (testutil KillHost: SIGKILL of the client's Nomad agent,
// plugin and Consul agent, docker kill of its containers; then WipeHost: its
// Nomad data dir, and with it the broker's store, is deleted), the drain
// and the death of both slaves at once (writes must then be refused) run
// in TestReplicatedBrokerGroup; TestSingleMasterLosesAckedKeys is the
// negative control: the same host death under the single-master example.
// RMQ_E2E_REPLICATION=short skips the drain and both-slaves phases.

const (
	replCluster    = "repl"
	replTopic      = "ReplTopic"
	replBroker     = "broker-0"
	controllerHeap = "-Xms32m -Xmx64m -XX:MaxDirectMemorySize=32m"
	brokerHeap     = "-Xms128m -Xmx192m -XX:MaxDirectMemorySize=128m"
)

// startReplEnv starts Consul (a server and one client agent per host),
// Nomad (a server and n clients on the docker bridge) and the plugin's
// address endpoint on client 0. Private mode only: no UCloud.
func startReplEnv(t *testing.T, n int) *rmqEnv {
	t.Helper()
	image := buildRocketMQImage(t)
	pluginDir := testutil.BuildPlugin(t)
	consul := testutil.StartConsulCluster(t, n)
	nsaddrPort := testutil.FreeTCPPort(t)
	hcl := func(i int) string {
		nsaddr := ""
		if i == 0 {
			nsaddr = fmt.Sprintf("\n    nsaddr {\n      enabled = true\n      listen  = \"0.0.0.0:%d\"\n    }", nsaddrPort)
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
`, consul.Clients[i].HTTPAddr, nsaddr)
	}
	nomad := testutil.StartNomad(t, testutil.NomadOptions{
		PluginDir: pluginDir, Clients: n, ClientHCL: hcl, Consul: consul, NetworkInterface: "docker0",
	})
	t.Setenv("HOME", t.TempDir()) // the Go resolver's snapshot files
	return &rmqEnv{nomad: nomad, image: image, bridgeIP: testutil.BridgeIP(t), nsaddrPort: nsaddrPort, root: testutil.RepoRoot(t)}
}

func hclList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// staticPorts returns n ports p, each with p-2 and p+1 free too (a broker
// replica's listenPort, fast channel and HA port), below the kernel's
// ephemeral range and above the test clients' dynamic port ranges, so no
// outgoing connection or dynamic allocation takes them meanwhile.
func staticPorts(t *testing.T, n int) []int {
	t.Helper()
	free := func(p int) bool {
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			return false
		}
		l.Close()
		return true
	}
	var out []int
	used := map[int]bool{}
	for tries := 0; len(out) < n && tries < 1000; tries++ {
		p := 26000 + 4*rand.Intn(1500)
		if used[p] || !free(p-2) || !free(p) || !free(p+1) {
			continue
		}
		used[p] = true
		out = append(out, p)
	}
	if len(out) < n {
		t.Fatalf("found only %d free port triples", len(out))
	}
	return out
}

func intList(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return "[" + strings.Join(s, ",") + "]"
}

// startInfra runs the controllers (three static ports on client-0) and two
// NameServers on client-0, and returns the controllers' peers list.
func (e *rmqEnv) startInfra(t *testing.T, cluster string) []string {
	t.Helper()
	var peers []string
	for _, p := range staticPorts(t, 3) {
		peers = append(peers, fmt.Sprintf("%s:%d", e.bridgeIP, p))
	}
	e.nomad.RunJobFile(t, e.job("replicated-controller.nomad.hcl"), map[string]string{
		"image": e.image, "cluster": cluster, "peers": hclList(peers),
		"nodes": hclList([]string{"client-0", "client-0", "client-0"}), "heap": controllerHeap,
	})
	e.nomad.RunJobFile(t, e.job("private-namesrv.nomad.hcl"), map[string]string{
		"image": e.image, "cluster": cluster, "node_regexp": "^client-0$",
	})
	e.nsList(t, cluster, 2)
	return peers
}

// syncState is a broker group's replica set as the controllers see it.
type syncState struct {
	Master string
	InSync map[string]int // broker address -> broker id, alive in-sync replicas
	All    map[string]int // every replica the controllers know, address -> id
}

var (
	masterAddrRe = regexp.MustCompile(`(?m)^#MasterAddr\s+(\S+)`)
	replicaRe    = regexp.MustCompile(`(?m)^(InSyncReplica|NotInSyncReplica):\s+ReplicaIdentity\{brokerName='[^']*', brokerId=(\d+), brokerAddress='([^']+)', alive=(\w+)\}`)
)

// lastLeader is the controller that answered last: asked first next time.
var lastLeader string

// syncStateSet asks the controllers (each in turn, until one answers; the
// last one to answer first) for the group's SyncStateSet. Each ask is an
// mqadmin JVM: callers poll every few seconds, not faster.
func (e *rmqEnv) syncStateSet(peers []string, broker string) (syncState, bool) {
	order := append([]string{}, peers...)
	for i, p := range order {
		if p == lastLeader {
			order[0], order[i] = order[i], order[0]
		}
	}
	for _, p := range order {
		out, err := testutil.Docker("run", "--rm", "--network", "host", e.image, "mqadmin", "getSyncStateSet", "-a", p, "-b", broker)
		m := masterAddrRe.FindStringSubmatch(out)
		if err != nil || m == nil {
			continue
		}
		lastLeader = p
		st := syncState{Master: m[1], InSync: map[string]int{}, All: map[string]int{}}
		for _, r := range replicaRe.FindAllStringSubmatch(out, -1) {
			id, _ := strconv.Atoi(r[2])
			st.All[r[3]] = id
			if r[1] == "InSyncReplica" && r[4] == "true" {
				st.InSync[r[3]] = id
			}
		}
		return st, true
	}
	return syncState{}, false
}

// waitSyncState waits until cond holds for the group's SyncStateSet.
func (e *rmqEnv) waitSyncState(t *testing.T, peers []string, what string, timeout time.Duration, cond func(syncState) bool) syncState {
	t.Helper()
	var last syncState
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if st, ok := e.syncStateSet(peers, replBroker); ok {
			last = st
			if cond(st) {
				return st
			}
		}
		time.Sleep(2 * time.Second)
	}
	logs, _ := e.nomad.Nomad(t.Context(), "alloc", "logs", "-job", "rocketmq-replicated-broker")
	t.Fatalf("%s: not after %s; last SyncStateSet %+v\nbroker log (tail):\n%s", what, timeout, last, tail(logs, 40))
	return last
}

// allocAt returns the running allocation of job whose port label has the
// host port of addr (ip:port).
func (e *rmqEnv) allocAt(t *testing.T, job, label, addr string) testutil.Alloc {
	t.Helper()
	_, p, _ := strings.Cut(addr, ":")
	port, _ := strconv.Atoi(p)
	allocs, err := e.nomad.JobAllocs(job)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range allocs {
		if v, ok := a.PortOf(label); ok && v == port && a.ClientStatus == "running" {
			return a
		}
	}
	t.Fatalf("no running allocation of %s has port %s = %d", job, label, port)
	return testutil.Alloc{}
}

// waitAllocOn waits for a running allocation of job on the node called
// name, other than the allocations in not, and returns it. (A killed
// host's allocation stays "running" in the server's view until the node
// is marked down.)
func (e *rmqEnv) waitAllocOn(t *testing.T, job, name string, timeout time.Duration, not ...string) testutil.Alloc {
	t.Helper()
	var found testutil.Alloc
	waitFor(t, timeout, job+" running on "+name, func() bool {
		id, err := e.nomad.NodeID(name)
		if err != nil {
			return false
		}
		allocs, err := e.nomad.JobAllocs(job)
		if err != nil {
			return false
		}
		for _, a := range allocs {
			if a.NodeID == id && a.ClientStatus == "running" && a.DesiredStatus == "run" && !slices.Contains(not, a.ID) {
				found = a
				return true
			}
		}
		return false
	})
	return found
}

// clusterMemory sums the memory of the cluster's containers (docker stats).
func clusterMemory(t *testing.T, cluster string) string {
	t.Helper()
	ids, err := testutil.Docker("ps", "-q", "--filter", "label=com.github.rmqnomad.cluster="+cluster)
	if err != nil || ids == "" {
		return "unknown"
	}
	out, err := testutil.Docker(append([]string{"stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}"}, strings.Fields(ids)...)...)
	if err != nil {
		return "unknown"
	}
	total, n := 0.0, 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		total += mib(f[1])
		n++
	}
	return fmt.Sprintf("%.0f MiB in %d containers", total, n)
}

func mib(s string) float64 {
	for _, u := range []struct {
		suffix string
		f      float64
	}{{"GiB", 1024}, {"MiB", 1}, {"KiB", 1.0 / 1024}, {"B", 1.0 / (1024 * 1024)}} {
		if strings.HasSuffix(s, u.suffix) {
			v, _ := strconv.ParseFloat(strings.TrimSuffix(s, u.suffix), 64)
			return v * u.f
		}
	}
	return 0
}

// becameMaster reads from the broker's log when it last began to change to
// master (RocketMQ logs in UTC, like the host), or zero.
func becameMaster(t *testing.T, allocID string) time.Time {
	t.Helper()
	logs, _ := testutil.Docker("logs", containerOf(t, allocID))
	var at time.Time
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "Begin to change to master") && len(line) > 23 {
			if ts, err := time.ParseInLocation("2006-01-02 15:04:05.000", line[:23], time.UTC); err == nil {
				at = ts
			}
		}
	}
	return at
}

// taskEvent returns the message of the allocation's last task event that
// contains substr, "" when none does.
func taskEvent(t *testing.T, n *testutil.NomadCluster, allocID, substr string) string {
	t.Helper()
	var a testutil.Alloc
	if err := n.GetJSON("/v1/allocation/"+allocID, &a); err != nil {
		return ""
	}
	found := ""
	for _, ts := range a.TaskStates {
		for _, ev := range ts.Events {
			if msg := ev.Message + " " + ev.DisplayMessage; strings.Contains(msg, substr) {
				found = ev.Message
				if found == "" {
					found = ev.DisplayMessage
				}
			}
		}
	}
	return found
}

// nodeName returns the name of a test client by index.
func nodeName(i int) string { return fmt.Sprintf("client-%d", i) }

// checkAllConsumed consumes the topic in a new group and fails the test
// unless every acknowledged key arrived; it returns the duplicate count.
func (e *rmqEnv) checkAllConsumed(t *testing.T, cluster, group string, acked []string) int {
	t.Helper()
	got := e.consumeKeys(t, cluster, replTopic, group, acked, 240*time.Second)
	if miss := missing(acked, got); len(miss) > 0 {
		t.Fatalf("%d of %d acknowledged keys were never consumed, e.g. %v", len(miss), len(acked), firstN(miss, 10))
	}
	return duplicates(acked, got)
}

func TestReplicatedBrokerGroup(t *testing.T) {
	e := startReplEnv(t, 4)
	peers := e.startInfra(t, replCluster)
	nsaddr := fmt.Sprintf("%s:%d", e.bridgeIP, e.nsaddrPort)
	const job = "rocketmq-replicated-broker"
	// One docker engine serves every test host: the replicas' static ports
	// must differ here, where on real hosts they could all be the same.
	listen := staticPorts(t, 3)
	ha := make([]int, len(listen))
	for i, p := range listen {
		ha[i] = p + 1
	}
	e.nomad.RunJobFile(t, e.job("replicated-broker.nomad.hcl"), map[string]string{
		"image": e.image, "cluster": replCluster, "broker_name": replBroker, "controllers": hclList(peers),
		"nsaddr": nsaddr, "node_regexp": "^client-[1-3]$", "heap": brokerHeap,
		"listen_ports": intList(listen), "ha_ports": intList(ha),
	})
	st := e.waitSyncState(t, peers, "three replicas in sync", 300*time.Second, func(s syncState) bool { return len(s.InSync) == 3 })
	t.Logf("SyncStateSet: master %s, in sync %v", st.Master, st.InSync)
	e.createTopic(t, strings.Split(e.nsList(t, replCluster, 2), ";")[0], replCluster, replTopic)

	// Phase 1: the master's host dies.
	kp := e.startKeyProducer(t, replCluster, replTopic, "death", 20*time.Millisecond)
	// Slaves copy the topic config every 10 s: give them two rounds.
	kp.waitAcks(300, 120*time.Second)
	time.Sleep(20 * time.Second)
	// The master may have changed meanwhile (a master whose controller
	// request times out under load closes its channel, which the
	// controllers take for its death): kill the one that is master now.
	st = e.waitSyncState(t, peers, "three replicas in sync before the kill", 120*time.Second, func(s syncState) bool { return len(s.InSync) == 3 })
	master := e.allocAt(t, job, "rmq", st.Master)
	idx := nodeIndex(t, e.nomad, master.NodeID)
	memBefore := clusterMemory(t, replCluster)
	dead := e.nomad.KillHost(t, idx)
	e.nomad.WipeHost(t, idx)
	elected := e.waitSyncState(t, peers, "a new master", 120*time.Second, func(s syncState) bool {
		return s.Master != st.Master && s.Master != ""
	})
	failover := time.Since(dead.At)
	if at := becameMaster(t, e.allocAt(t, job, "rmq", elected.Master).ID); !at.IsZero() {
		failover = at.Sub(dead.At)
	}
	kp.waitAcks(100, 180*time.Second)
	death := kp.outageSince(dead.At)
	t.Logf("master %s on %s killed; new master %s after %.1f s; producer: %s",
		st.Master, nodeName(idx), elected.Master, failover.Seconds(), death)

	// The host comes back as a new machine: Nomad places the replacement
	// there (distinct_hosts leaves no other), with an empty store.
	revived := time.Now()
	e.nomad.ReviveHost(t, idx, 120*time.Second)
	repl := e.waitAllocOn(t, job, nodeName(idx), 240*time.Second, master.ID)
	replPort, _ := repl.PortOf("rmq")
	replAddr := fmt.Sprintf("%s:%d", e.bridgeIP, replPort)
	placed := time.Since(revived)
	joined := e.waitSyncState(t, peers, "the replacement "+replAddr+" in sync", 300*time.Second, func(s syncState) bool {
		_, in := s.InSync[replAddr]
		return in && len(s.InSync) == 3
	})
	rejoin := time.Since(revived)
	for addr, id := range st.All {
		if id == joined.InSync[replAddr] {
			t.Fatalf("the replacement %s has broker id %d, which %s had: its store was not empty", replAddr, id, addr)
		}
	}
	// The keepers say the same in their task events.
	replID, masterID := joined.InSync[replAddr], joined.InSync[joined.Master]
	var ev, mev string
	defer func() {
		if t.Failed() {
			t.Logf("last replica events: replacement %q, master %s %q", ev, joined.Master, mev)
		}
	}()
	waitFor(t, 120*time.Second, "the replacement's and the master's replica events", func() bool {
		ev, _, _ = lastReplicaEvent(t, e.nomad, repl.ID)
		mev, _, _ = lastReplicaEvent(t, e.nomad, e.allocAt(t, job, "rmq", joined.Master).ID)
		return strings.Contains(ev, "replica: slave of "+joined.Master+" (replicates from ") &&
			strings.HasSuffix(ev, fmt.Sprintf("broker id %d, in sync set (3 of 3)", replID)) &&
			strings.HasSuffix(mev, fmt.Sprintf("replica: master, broker id %d, in sync set (3 of 3)", masterID))
	})
	kp.waitAcks(100, 120*time.Second)
	kp.Stop()
	acked := kp.Acked()
	dups := e.checkAllConsumed(t, replCluster, "death-check", acked)
	fmt.Printf("BENCH replication host death: %d acknowledged keys, all consumed (%d duplicates); new master elected %.1f s after the kill; producer %s; replacement placed %.1f s and in the SyncStateSet (broker id %d) %.1f s after the host came back; cluster memory %s\n",
		len(acked), dups, failover.Seconds(), death, placed.Seconds(), joined.InSync[replAddr], rejoin.Seconds(), memBefore)

	if os.Getenv("RMQ_E2E_REPLICATION") == "short" {
		t.Log("RMQ_E2E_REPLICATION=short: drain and both-slaves phases skipped")
		return
	}

	// Phase 2: a graceful drain of the (new) master's node. The driver
	// hands the master role to an in-sync slave before it stops the
	// replica (docs/replication.md, "The master handoff"). The group has
	// no spare host: the replacement is placed back on the node once it is
	// eligible again, with its store (sticky ephemeral disk).
	st = joined
	kp = e.startKeyProducer(t, replCluster, replTopic, "drain", 20*time.Millisecond)
	kp.waitAcks(300, 120*time.Second)
	st = e.waitSyncState(t, peers, "three replicas in sync before the drain", 120*time.Second, func(s syncState) bool { return len(s.InSync) == 3 })
	master = e.allocAt(t, job, "rmq", st.Master)
	drainAt := time.Now()
	nomadOK(t, e.nomad, "node", "drain", "-enable", "-yes", "-detach", "-deadline", "60s", master.NodeID)
	elected = e.waitSyncState(t, peers, "a new master after the drain", 120*time.Second, func(s syncState) bool {
		return s.Master != st.Master && s.Master != ""
	})
	drainFailover := time.Since(drainAt)
	if at := becameMaster(t, e.allocAt(t, job, "rmq", elected.Master).ID); !at.IsZero() {
		drainFailover = at.Sub(drainAt)
	}
	kp.waitAcks(100, 180*time.Second)
	drain := kp.outageSince(drainAt)
	// The drained master handed its role over before it stopped: its
	// task event names the new master the controllers report.
	var handoff string
	waitFor(t, 60*time.Second, "the drained master's handoff event", func() bool {
		handoff = taskEvent(t, e.nomad, master.ID, "replica: handed the master role to broker id ")
		return handoff != ""
	})
	if want := fmt.Sprintf("broker id %d (%s) before stopping", elected.InSync[elected.Master], elected.Master); !strings.Contains(handoff, want) {
		t.Fatalf("handoff event %q, want it to name %s; SyncStateSet %+v", handoff, want, elected)
	}
	t.Logf("handoff: %s", handoff)
	waitFor(t, 120*time.Second, "the drained allocation stopped", func() bool {
		allocs, err := e.nomad.JobAllocs(job)
		if err != nil {
			return false
		}
		for _, a := range allocs {
			if a.ID == master.ID {
				return a.ClientStatus != "running"
			}
		}
		return false
	})
	back := time.Now()
	// The drain is over (nothing left to move); make the node eligible.
	_, _ = e.nomad.Nomad(t.Context(), "node", "drain", "-disable", "-yes", master.NodeID)
	nomadOK(t, e.nomad, "node", "eligibility", "-enable", master.NodeID)
	again := e.waitAllocOn(t, job, master.NodeName, 240*time.Second)
	againPort, _ := again.PortOf("rmq")
	againAddr := fmt.Sprintf("%s:%d", e.bridgeIP, againPort)
	e.waitSyncState(t, peers, "the drained replica back in sync", 300*time.Second, func(s syncState) bool {
		_, in := s.InSync[againAddr]
		return in && len(s.InSync) == 3
	})
	drainRejoin := time.Since(back)
	kp.waitAcks(100, 120*time.Second)
	kp.Stop()
	acked = append(acked, kp.Acked()...)
	dups = e.checkAllConsumed(t, replCluster, "drain-check", acked)
	fmt.Printf("BENCH replication drain: %d acknowledged keys over both phases, all consumed (%d duplicates); new master (handed over: %q) after %.1f s; producer %s; replica back in the SyncStateSet %.1f s after its node was eligible again; cluster memory %s\n",
		len(acked), dups, handoff, drainFailover.Seconds(), drain, drainRejoin.Seconds(), clusterMemory(t, replCluster))

	// Phase 3: both slaves die at once. The master alone must refuse
	// writes (min_in_sync_replicas = 2): no ack while no slave runs.
	st = e.waitSyncState(t, peers, "three replicas in sync before the slaves die", 120*time.Second, func(s syncState) bool { return len(s.InSync) == 3 })
	kp = e.startKeyProducer(t, replCluster, replTopic, "minisr", 20*time.Millisecond)
	kp.waitAcks(100, 120*time.Second)
	slaves := map[string]string{} // alloc id -> container id
	for addr := range st.InSync {
		if addr != st.Master {
			a := e.allocAt(t, job, "rmq", addr)
			slaves[a.ID] = containerOf(t, a.ID)
		}
	}
	for _, c := range slaves {
		if _, err := testutil.Docker("kill", c); err != nil {
			t.Fatal(err)
		}
	}
	// Both are dead once docker kill returned (SIGKILL); on a loaded
	// machine the two kills can take seconds, during which the master
	// rightly acknowledges what a live slave confirmed.
	killAt := time.Now()
	// Nomad restarts them (restart policy, 15 s delay) with their stores.
	var backAt time.Time
	waitFor(t, 180*time.Second, "a slave's task restarted", func() bool {
		for alloc, old := range slaves {
			if id, _ := testutil.Docker("ps", "-q", "--no-trunc", "--filter", "label=com.hashicorp.nomad.alloc_id="+alloc); id != "" && id != old {
				backAt = time.Now()
				return true
			}
		}
		return false
	})
	kp.waitAcks(100, 240*time.Second)
	kp.Stop()
	// A send in flight at the kill may have reached both slaves first.
	const grace = time.Second
	var early []string
	kp.mu.Lock()
	for i, at := range kp.ackAt {
		if at.After(killAt.Add(grace)) && at.Before(backAt) {
			early = append(early, kp.acked[i])
		}
	}
	kp.mu.Unlock()
	if len(early) > 0 {
		t.Fatalf("%d sends were acknowledged while only the master ran (%.1f s to %.1f s after both slaves died), e.g. %v",
			len(early), grace.Seconds(), backAt.Sub(killAt).Seconds(), firstN(early, 5))
	}
	minisr := kp.outageSince(killAt)
	acked = append(acked, kp.Acked()...)
	dups = e.checkAllConsumed(t, replCluster, "minisr-check", acked)
	fmt.Printf("BENCH replication both slaves down: no ack for the %.1f s until a slave ran again; producer %s; all %d keys of the three phases consumed (%d duplicates)\n",
		backAt.Sub(killAt).Seconds(), minisr, len(acked), dups)
}

// TestSingleMasterLosesAckedKeys is the negative control: the single-master
// example (one broker, its store in the allocation) under the same host
// death. The broker is rescheduled with an empty store, and keys it had
// acknowledged are gone.
func TestSingleMasterLosesAckedKeys(t *testing.T) {
	e := startReplEnv(t, 3)
	const cluster = "single"
	e.nomad.RunJobFile(t, e.job("private-namesrv.nomad.hcl"), map[string]string{
		"image": e.image, "cluster": cluster, "node_regexp": "^client-0$",
	})
	ns := strings.Split(e.nsList(t, cluster, 2), ";")[0]
	nsaddr := fmt.Sprintf("%s:%d", e.bridgeIP, e.nsaddrPort)
	e.nomad.RunJobFile(t, e.job("private-broker.nomad.hcl"), map[string]string{
		"image": e.image, "cluster": cluster, "nsaddr": nsaddr, "node_regexp": "^client-[12]$", "count": "1",
	})
	broker := e.brokerAlloc(t, "rocketmq-broker")
	port, _ := broker.PortOf("rmq")
	e.waitBroker(t, ns, cluster, "rocketmq-broker", fmt.Sprintf("%s:%d", e.bridgeIP, port))
	e.createTopic(t, ns, cluster, replTopic)

	kp := e.startKeyProducer(t, cluster, replTopic, "single", 20*time.Millisecond)
	kp.waitAcks(300, 120*time.Second)
	idx := nodeIndex(t, e.nomad, broker.NodeID)
	dead := e.nomad.KillHost(t, idx)
	e.nomad.WipeHost(t, idx)
	// Nomad marks the node down and places the broker on the other host.
	other := 3 - idx
	moved := e.waitAllocOn(t, "rocketmq-broker", nodeName(other), 240*time.Second)
	movedPort, _ := moved.PortOf("rmq")
	e.waitBroker(t, ns, cluster, "rocketmq-broker", fmt.Sprintf("%s:%d", e.bridgeIP, movedPort))
	// The empty broker has no topic; the producer's route still names the
	// dead broker until the NameServers learn otherwise. Re-create the
	// topic, as an operator would, and the producer follows.
	e.createTopic(t, ns, cluster, replTopic)
	kp.waitAcks(100, 240*time.Second)
	kp.Stop()
	acked := kp.Acked()
	o := kp.outageSince(dead.At)
	got := e.consumeKeys(t, cluster, replTopic, "single-check", acked, 60*time.Second)
	lost := missing(acked, got)
	fmt.Printf("BENCH single master host death: %d of %d acknowledged keys lost; producer %s\n", len(lost), len(acked), o)
	if len(lost) == 0 {
		t.Fatalf("negative control: every one of %d acknowledged keys survived the single master's host death; the test cannot tell replication from luck", len(acked))
	}
}
