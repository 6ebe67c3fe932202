//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/rmqnomad/rocketmq-nomad-driver/rmqadmin"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// The producer settings docs/moves.md recommends for the Go client: two
// more attempts, each on another broker group when there is one, 2 s
// each, within the caller's context.
var movesSend = sendSettings{Retries: 2, Timeout: 2 * time.Second, Call: 7 * time.Second}

const (
	movesCluster = "moves"
	movesTopic   = "MovesTopic"
	movesJob     = "rocketmq-broker"
	// recoverWait bounds the wait for a moved group to take sends again.
	recoverWait = 180 * time.Second
)

// legacyBrokerProperties are the settings of the examples before: the
// broker creates topics on first use, RocketMQ's store file sizes.
const legacyBrokerProperties = "autoCreateTopicEnable=true\n"

// movesCfg is one broker-move scenario.
type movesCfg struct {
	Groups int
	// Legacy runs the examples as they were: topics created by hand and
	// not declared, the broker's own address-server lookup, RocketMQ's
	// store sizes, no hole restore, no read-only grace.
	Legacy bool
	// NoGrace lets an empty replacement take writes at once (the negative
	// control of empty_store_read_only).
	NoGrace bool
}

func (c movesCfg) String() string {
	switch {
	case c.Legacy:
		return fmt.Sprintf("groups=%d legacy", c.Groups)
	case c.NoGrace:
		return fmt.Sprintf("groups=%d no-grace", c.Groups)
	}
	return fmt.Sprintf("groups=%d", c.Groups)
}

// movesResult is what a scenario measured.
type movesResult struct {
	DrainLost, DrainAcked   int
	DeathLostStore          int // keys that died with the killed group's store
	DeathLostOther          []string
	DeathAcked              int
	DrainRecovered, DeathOK bool
	Endpoint                []string // bad endpoint answers
	HandTopicOnReplacement  bool
	GroupsOnReplacement     bool
	SeededTopicRouted       bool
	ReadOnlyAfterRegistered bool
}

// TestBrokerMoves: the example broker job with two broker groups (broker-0
// and broker-1, private mode, the NameServers on client-0), a Go producer
// with the documented retry settings sending 50 messages a second and
// recording every acknowledged key and which group acknowledged it, and a
// Go consumer from the first offset for the whole test. First a drain of
// broker-0's host (its store migrates): no acknowledged key may be lost.
// Then the death of broker-1's host (testutil KillHost): broker-1 comes
// back empty on another host, read-only at first, and the declared topic
// and groups are routed on it with nobody creating them, while a topic
// created by hand (the negative control) is not. The keys that die with
// broker-1's store are counted; no other key may be lost. The address
// endpoint answers 200 with the live NameServers the whole time (both, or
// one while the other's Consul check fails: on a loaded machine a 2 s TCP
// check can). Each phase prints the producer's error window.
func TestBrokerMoves(t *testing.T) {
	r := runMoves(t, movesCfg{Groups: 2}, true)
	if r.DrainLost > 0 {
		t.Errorf("drain: %d of %d acknowledged keys were never consumed", r.DrainLost, r.DrainAcked)
	}
	if len(r.DeathLostOther) > 0 {
		t.Errorf("host death: %d acknowledged keys that did not die with the store were never consumed", len(r.DeathLostOther))
	}
	if !r.SeededTopicRouted || !r.GroupsOnReplacement {
		t.Errorf("the replacement lacks the declared topic (%v) or groups (%v)", r.SeededTopicRouted, r.GroupsOnReplacement)
	}
	if r.HandTopicOnReplacement {
		t.Error("negative control: HandTopic, created by hand and declared nowhere, is on the empty replacement: the test cannot tell seeding from luck")
	}
	if !r.ReadOnlyAfterRegistered {
		t.Error("the replacement of broker-1 was not read-only right after it registered")
	}
	if !r.DrainRecovered || !r.DeathOK {
		t.Errorf("a moved group took no sends again within %s (drain %v, host death %v)", recoverWait, r.DrainRecovered, r.DeathOK)
	}
	if len(r.Endpoint) > 0 {
		t.Errorf("the address endpoint answered %d times without a live NameServer, e.g. %v", len(r.Endpoint), firstN(r.Endpoint, 5))
	}
}

// TestBenchMoves is the "broker moves" benchmark (make bench
// SECTIONS=moves): the same drain and host death with one group as the
// examples were (legacy), with one group and with two as they are now,
// and, only when named, with two without the empty-store grace (whether
// the consumer then skips keys is a race here: images/rocketmq
// TestEmptyReplacementAndConsumerOffsets shows it for certain). It prints
// BENCH lines and fails only when a scenario cannot run. RMQ_BENCH_MOVES
// picks scenarios by name, e.g. "groups=1-legacy groups=2-no-grace".
func TestBenchMoves(t *testing.T) {
	if os.Getenv("RMQ_BENCH") != "1" {
		t.Skip("benchmark: run with RMQ_BENCH=1 (make bench SECTIONS=moves)")
	}
	only := os.Getenv("RMQ_BENCH_MOVES")
	for _, c := range []movesCfg{{Groups: 1, Legacy: true}, {Groups: 1}, {Groups: 2}, {Groups: 2, NoGrace: true}} {
		name := strings.ReplaceAll(c.String(), " ", "-")
		if only == "" && c.NoGrace || only != "" && !strings.Contains(" "+only+" ", " "+name+" ") {
			continue
		}
		t.Run(c.String(), func(t *testing.T) { runMoves(t, c, false) })
	}
}

// runMoves runs one scenario. strict makes a missing recovery fatal.
func runMoves(t *testing.T, c movesCfg, strict bool) movesResult {
	var res movesResult
	e := startReplEnv(t, 3)
	kv := e.nomad.Consul().Server.Client.KV()
	if _, err := kv.Put(&consulapi.KVPair{Key: "rocketmq/" + movesCluster + "/groups/moves-audit"}, nil); err != nil {
		t.Fatal(err)
	}
	e.nomad.RunJobFile(t, e.job("private-namesrv.nomad.hcl"), map[string]string{
		"image": e.image, "cluster": movesCluster, "node_regexp": "^client-0$",
	})
	nsList := e.nsList(t, movesCluster, 2)
	endpoint := e.pollEndpoint(t, movesCluster, nsList)

	// The groups go to client-1 and client-2 (distinct_hosts). With two
	// groups client-0 takes placements again afterwards, so the drain has
	// a host to go to; with one it stays for the NameServers alone.
	e.eligibility(t, 0, false)
	vars := map[string]string{
		"image": e.image, "cluster": movesCluster, "nsaddr": fmt.Sprintf("%s:%d", e.bridgeIP, e.nsaddrPort),
		"count": fmt.Sprint(c.Groups), "topics": `["` + movesTopic + `"]`, "subscription_groups": `["moves-consumer"]`,
	}
	if c.Legacy {
		vars["topics"], vars["subscription_groups"] = "[]", "[]"
		vars["namesrv_source"], vars["empty_store_read_only"], vars["restore_holes"] = "task", "0s", "false"
		vars["broker_properties"] = legacyBrokerProperties
	}
	if c.NoGrace {
		vars["empty_store_read_only"] = "0s"
	}
	e.nomad.RunJobFile(t, e.job("private-broker.nomad.hcl"), vars)
	brokers := make([]testutil.Alloc, c.Groups)
	for i := range brokers {
		brokers[i] = e.allocOf(t, movesJob, i, "", 240*time.Second)
	}
	if c.Groups > 1 {
		e.eligibility(t, 0, true)
	}
	addr := func(a testutil.Alloc) string {
		p, _ := a.PortOf("rmq")
		return fmt.Sprintf("%s:%d", e.bridgeIP, p)
	}
	name := func(i int) string { return fmt.Sprintf("broker-%d", i) }
	for i, b := range brokers {
		e.reportRegistration(t, c, "start", b, name(i), nsList, addr(b))
	}
	// HandTopic: created by hand on every broker, declared nowhere (the
	// negative control; the legacy scenario's only topic).
	topic := movesTopic
	if c.Legacy {
		topic = "HandTopic"
	}
	for _, b := range brokers {
		e.createByHand(t, addr(b), "HandTopic")
	}
	for i, b := range brokers {
		waitRegistered(t, nsList, topic, name(i), addr(b), 120*time.Second)
	}

	cons := e.startKeyConsumer(t, movesCluster, topic, "moves-consumer")
	kp := e.startKeyProducerWith(t, movesCluster, topic, "moves", 20*time.Millisecond, movesSend)
	kp.waitAcks(500, 120*time.Second)

	// --- Drain broker-0's host. ---
	b0 := brokers[0]
	du0, app0 := e.storeSize(t, nodeIndex(t, e.nomad, b0.NodeID), b0.ID, name(0))
	drainAt := time.Now()
	nomadOK(t, e.nomad, "node", "drain", "-enable", "-yes", "-detach", "-deadline", "60s", b0.NodeID)
	m0 := e.allocOf(t, movesJob, 0, b0.NodeID, 240*time.Second)
	registered := e.reportRegistration(t, c, "drain", m0, name(0), nsList, addr(m0))
	var back time.Time
	back, res.DrainRecovered = kp.firstAckBy(name(0), registered, recoverWait)
	if !res.DrainRecovered && strict {
		t.Fatalf("drain: %s took no send within %s", name(0), recoverWait)
	}
	if res.DrainRecovered {
		fmt.Printf("BENCH moves %s drain: %s takes sends again +%.1f s after the drain began (%.1f s after it registered)\n",
			c, name(0), back.Sub(drainAt).Seconds(), back.Sub(registered).Seconds())
	}
	time.Sleep(5 * time.Second)
	fmt.Printf("BENCH moves %s drain: producer %s\n", c, kp.window(drainAt, time.Now()))
	du1, app1 := e.storeSize(t, nodeIndex(t, e.nomad, m0.NodeID), m0.ID, name(0))
	fmt.Printf("BENCH moves %s drain store: %d KiB on disk (%d KiB apparent) before, %d KiB on disk (%d KiB apparent) after the migration\n",
		c, du0, app0, du1, app1)
	drained := kp.Acks()
	res.DrainAcked = len(drained)
	res.DrainLost = len(cons.waitKeys(keysOf(drained, func(ack) bool { return true }), 180*time.Second))
	fmt.Printf("BENCH moves %s drain: %d of %d acknowledged keys lost\n", c, res.DrainLost, res.DrainAcked)
	nomadOK(t, e.nomad, "node", "eligibility", "-enable", b0.NodeID)

	// --- The death of the last group's host. ---
	last := c.Groups - 1
	bl := e.allocOf(t, movesJob, last, "", 10*time.Second)
	dead := e.nomad.KillHost(t, nodeIndex(t, e.nomad, bl.NodeID))
	ml := e.allocOf(t, movesJob, last, bl.NodeID, 240*time.Second)
	registered = e.reportRegistration(t, c, "host death", ml, name(last), nsList, addr(ml))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	if r, err := rmqadmin.TopicRoute(ctx, strings.Split(nsList, ";")[0], movesTopic); err == nil {
		res.SeededTopicRouted = r.MasterAddr(name(last)) == addr(ml)
		res.ReadOnlyAfterRegistered = queuePerm(r, name(last)) == rmqadmin.PermRead
	}
	if r, err := rmqadmin.TopicRoute(ctx, strings.Split(nsList, ";")[0], "HandTopic"); err == nil {
		res.HandTopicOnReplacement = r.MasterAddr(name(last)) != ""
	}
	if groups, err := rmqadmin.Groups(ctx, addr(ml)); err == nil {
		res.GroupsOnReplacement = groups["moves-audit"] && groups["moves-consumer"]
	}
	cancel()
	back, res.DeathOK = kp.firstAckBy(name(last), registered, recoverWait)
	if !res.DeathOK && strict {
		t.Fatalf("host death: %s took no send within %s", name(last), recoverWait)
	}
	time.Sleep(5 * time.Second)
	fmt.Printf("BENCH moves %s host death: producer %s\n", c, kp.window(dead.At, time.Now()))
	if res.DeathOK {
		fmt.Printf("BENCH moves %s host death: %s takes sends again +%.1f s after the kill (%.1f s after it registered)\n",
			c, name(last), back.Sub(dead.At).Seconds(), back.Sub(registered).Seconds())
	} else {
		fmt.Printf("BENCH moves %s host death: %s took no send within %s of the kill\n", c, name(last), recoverWait)
	}
	fmt.Printf("BENCH moves %s host death replacement: seeded topic routed %v, read-only at first %v, declared groups %v, hand-made topic %v\n",
		c, res.SeededTopicRouted, res.ReadOnlyAfterRegistered, res.GroupsOnReplacement, res.HandTopicOnReplacement)

	kp.Stop()
	acks := kp.Acks()
	res.DeathAcked = len(acks)
	diedWith := func(a ack) bool { return a.Broker == name(last) && a.At.Before(dead.At) }
	res.DeathLostOther = cons.waitKeys(keysOf(acks, func(a ack) bool { return !diedWith(a) }), 180*time.Second)
	res.DeathLostStore = len(cons.missingOf(keysOf(acks, diedWith)))
	fmt.Printf("BENCH moves %s host death: %d of the %d keys %s acknowledged before its host died lost with its store (the consumer had the others), %d others lost (%s), %d acknowledged in all\n",
		c, res.DeathLostStore, len(keysOf(acks, diedWith)), name(last), len(res.DeathLostOther), describeKeys(acks, res.DeathLostOther, dead.At, registered), len(acks))

	endpoint.Stop()
	n, fewer, bad := endpoint.result()
	res.Endpoint = bad
	fmt.Printf("BENCH moves %s address endpoint: %d answers, %d with one NameServer (its Consul check failed), %d not 200 or naming another address\n",
		c, n, fewer, len(bad))
	return res
}

// reportRegistration prints when a broker's container started, when its
// broker's remoting server started (its log), and when every NameServer
// routed the broker's own topic to its address; it returns the last.
func (e *rmqEnv) reportRegistration(t *testing.T, c movesCfg, phase string, a testutil.Alloc, name, nsList, addr string) time.Time {
	t.Helper()
	registered := waitRegistered(t, nsList, name, name, addr, 120*time.Second)
	started := e.taskEventAt(t, a.ID, "broker", "Started")
	port, _ := a.PortOf("rmq")
	ready, logged := brokerLogTimes(t, a.ID, port)
	fmt.Printf("BENCH moves %s registration %s %s: container start to JVM ready %.1f s; JVM ready to registered %.2f s (broker log), to seen on every NameServer %.2f s\n",
		c, phase, name, ready.Sub(started).Seconds(), logged.Sub(ready).Seconds(), registered.Sub(ready).Seconds())
	return registered
}

// createByHand creates a topic on one broker, as an operator would with
// mqadmin updateTopic.
func (e *rmqEnv) createByHand(t *testing.T, broker, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rmqadmin.CreateTopic(ctx, broker, rmqadmin.Topic{Name: topic, ReadQueueNums: 4, WriteQueueNums: 4, Perm: rmqadmin.PermRW}); err != nil {
		t.Fatal(err)
	}
}
