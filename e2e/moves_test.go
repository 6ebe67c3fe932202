//go:build e2e

package e2e

import (
	"context"
	"fmt"
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
)

// TestBrokerMoves: the example broker job with two broker groups (broker-0
// and broker-1, private mode, the NameServers on client-0), a Go producer
// with the documented retry settings sending 50 messages a second and
// recording every acknowledged key and which group acknowledged it, and a
// Go consumer from the first offset for the whole test. First a drain of
// broker-0's host (its store migrates): no acknowledged key may be lost.
// Then the death of broker-1's host (testutil KillHost): broker-1 comes
// back empty on another host, and the declared topic and groups are routed
// on it with nobody creating them, while a topic created by hand (the
// negative control) is not. The keys that die with broker-1's store are
// counted; no other key may be lost. The address endpoint answers 200
// with the live NameServers the whole time (both, or one while the other's
// Consul check fails: on a loaded machine a 2 s TCP check can). Each phase prints the producer's
// error window.
func TestBrokerMoves(t *testing.T) {
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

	// The broker groups on client-1 and client-2 (distinct_hosts); client-0
	// takes new placements again afterwards, so a drain has somewhere to go.
	e.eligibility(t, 0, false)
	e.nomad.RunJobFile(t, e.job("private-broker.nomad.hcl"), map[string]string{
		"image": e.image, "cluster": movesCluster, "nsaddr": fmt.Sprintf("%s:%d", e.bridgeIP, e.nsaddrPort),
		"count": "2", "topics": `["` + movesTopic + `"]`, "subscription_groups": `["moves-consumer"]`,
	})
	b0 := e.allocOf(t, movesJob, 0, "", 240*time.Second)
	b1 := e.allocOf(t, movesJob, 1, "", 240*time.Second)
	e.eligibility(t, 0, true)
	addr := func(a testutil.Alloc) string {
		p, _ := a.PortOf("rmq")
		return fmt.Sprintf("%s:%d", e.bridgeIP, p)
	}
	waitRegistered(t, nsList, movesTopic, "broker-0", addr(b0), 120*time.Second)
	waitRegistered(t, nsList, movesTopic, "broker-1", addr(b1), 120*time.Second)
	// The negative control: a topic someone created by hand, on both.
	for _, a := range []testutil.Alloc{b0, b1} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := rmqadmin.CreateTopic(ctx, addr(a), rmqadmin.Topic{Name: "HandTopic", ReadQueueNums: 2, WriteQueueNums: 2, Perm: rmqadmin.PermRW})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}

	cons := e.startKeyConsumer(t, movesCluster, movesTopic, "moves-consumer")
	kp := e.startKeyProducerWith(t, movesCluster, movesTopic, "moves", 20*time.Millisecond, movesSend)
	kp.waitAcks(500, 120*time.Second)
	if acksSince(kp.Acks(), "broker-0", time.Time{}) == 0 || acksSince(kp.Acks(), "broker-1", time.Time{}) == 0 {
		t.Fatalf("the producer does not use both broker groups: %d/%d acks", acksSince(kp.Acks(), "broker-0", time.Time{}), acksSince(kp.Acks(), "broker-1", time.Time{}))
	}

	// --- Drain broker-0's host. ---
	fromIdx := nodeIndex(t, e.nomad, b0.NodeID)
	du0, app0 := e.storeSize(t, fromIdx, b0.ID, "broker-0")
	drainAt := time.Now()
	nomadOK(t, e.nomad, "node", "drain", "-enable", "-yes", "-detach", "-deadline", "60s", b0.NodeID)
	m0 := e.allocOf(t, movesJob, 0, b0.NodeID, 240*time.Second)
	started := e.taskEventAt(t, m0.ID, "broker", "Started")
	registered := waitRegistered(t, nsList, "broker-0", "broker-0", addr(m0), 120*time.Second)
	back := kp.waitGroupAcks(t, "broker-0", registered, 120*time.Second)
	time.Sleep(5 * time.Second)
	drain := kp.outageSince(drainAt)
	killed := e.taskEventAt(t, b0.ID, "broker", "Killed")
	du1, app1 := e.storeSize(t, nodeIndex(t, e.nomad, m0.NodeID), m0.ID, "broker-0")
	fmt.Printf("BENCH moves drain groups=2 producer: %s\n", drain)
	fmt.Printf("BENCH moves drain broker-0: old task killed +%.1f s, new started +%.1f s, registered +%.1f s (%.1f s after its start), producer acks on it again +%.1f s\n",
		killed.Sub(drainAt).Seconds(), started.Sub(drainAt).Seconds(), registered.Sub(drainAt).Seconds(),
		registered.Sub(started).Seconds(), back.Sub(drainAt).Seconds())
	fmt.Printf("BENCH moves drain store: before %d KiB on disk (%d KiB apparent), after the migration %d KiB on disk (%d KiB apparent)\n", du0, app0, du1, app1)
	if du1 > du0+32*1024 {
		t.Errorf("the migrated store takes %d KiB on disk, it took %d before the drain", du1, du0)
	}
	// No acknowledged key is lost on a drain.
	drained := kp.Acks()
	if miss := cons.waitKeys(keysOf(drained, func(ack) bool { return true }), 180*time.Second); len(miss) > 0 {
		t.Fatalf("drain: %d of %d acknowledged keys were never consumed, e.g. %v", len(miss), len(drained), firstN(miss, 10))
	}
	fmt.Printf("BENCH moves drain: all %d acknowledged keys consumed\n", len(drained))
	nomadOK(t, e.nomad, "node", "eligibility", "-enable", b0.NodeID)

	// --- The death of broker-1's host. ---
	b1 = e.allocOf(t, movesJob, 1, "", 10*time.Second)
	deadIdx := nodeIndex(t, e.nomad, b1.NodeID)
	dead := e.nomad.KillHost(t, deadIdx)
	m1 := e.allocOf(t, movesJob, 1, b1.NodeID, 240*time.Second)
	started = e.taskEventAt(t, m1.ID, "broker", "Started")
	// Routed on the replacement, which started with an empty store: the
	// declared topic was seeded; nobody created it.
	registered = waitRegistered(t, nsList, movesTopic, "broker-1", addr(m1), 120*time.Second)
	// It starts read-only (empty store, a name that ran before), so that
	// consumers reset their offsets of the lost store before anything is
	// written; then the driver makes it writable.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r, err := rmqadmin.TopicRoute(ctx, strings.Split(nsList, ";")[0], movesTopic); err != nil || queuePerm(r, "broker-1") != rmqadmin.PermRead {
		t.Errorf("the replacement of broker-1 is not read-only right after it registered: %+v %v", r, err)
	}
	back = kp.waitGroupAcks(t, "broker-1", registered, 180*time.Second)
	time.Sleep(5 * time.Second)
	death := kp.outageSince(dead.At)
	fmt.Printf("BENCH moves host death groups=2 producer: %s\n", death)
	fmt.Printf("BENCH moves host death broker-1: replacement started +%.1f s, topic routed on it +%.1f s (%.1f s after its start), producer acks on it again +%.1f s\n",
		started.Sub(dead.At).Seconds(), registered.Sub(dead.At).Seconds(), registered.Sub(started).Seconds(), back.Sub(dead.At).Seconds())
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if r, err := rmqadmin.TopicRoute(ctx2, strings.Split(nsList, ";")[0], "HandTopic"); err != nil || r.MasterAddr("broker-1") != "" || r.MasterAddr("broker-0") == "" {
		t.Errorf("negative control: HandTopic (created by hand, declared nowhere) should be on broker-0 only after broker-1 came back empty; route %+v, %v", r, err)
	}
	if groups, err := rmqadmin.Groups(ctx2, addr(m1)); err != nil || !groups["moves-audit"] || !groups["moves-consumer"] {
		t.Errorf("the replacement lacks the declared groups: %v %v", groups, err)
	}

	kp.Stop()
	acks := kp.Acks()
	diedWith := func(a ack) bool { return a.Broker == "broker-1" && a.At.Before(dead.At) }
	mustHave := keysOf(acks, func(a ack) bool { return !diedWith(a) })
	if miss := cons.waitKeys(mustHave, 180*time.Second); len(miss) > 0 {
		t.Errorf("%d acknowledged keys that did not die with broker-1's store were never consumed: %s", len(miss), describeKeys(acks, miss, dead.At, registered))
	}
	lost := cons.missingOf(keysOf(acks, diedWith))
	fmt.Printf("BENCH moves host death: %d of %d acknowledged keys lost, all acknowledged by broker-1 before its host died (its store died with it); %d keys acknowledged in all\n",
		len(lost), len(keysOf(acks, diedWith)), len(acks))

	endpoint.Stop()
	n, fewer, bad := endpoint.result()
	fmt.Printf("BENCH moves address endpoint: %d answers, %d of them with one NameServer (its Consul check failed), %d not 200 or naming another address\n", n, fewer, len(bad))
	if len(bad) > 0 {
		t.Errorf("the address endpoint answered %d times without a live NameServer, e.g. %v", len(bad), firstN(bad, 5))
	}
}
