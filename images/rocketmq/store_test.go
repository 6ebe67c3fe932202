// Package rocketmqimage tests the image's entrypoint against a real
// RocketMQ 5.3.3 broker (Docker and the image needed; skipped without them
// unless RMQ_REQUIRE_AGENTS=1).
package rocketmqimage

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/rmqadmin"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

const seedTopics = `{"topicConfigTable":{"SeededT":{"topicName":"SeededT","readQueueNums":2,"writeQueueNums":2,"perm":6,
"topicFilterType":"SINGLE_TAG","topicSysFlag":0,"order":false,"attributes":{}}},
"dataVersion":{"counter":1,"stateVersion":0,"timestamp":1700000000000}}`

const seedGroups = `{"subscriptionGroupTable":{"seeded-g":{"groupName":"seeded-g","consumeEnable":true}},"forbiddenTable":{},
"dataVersion":{"counter":1,"stateVersion":0,"timestamp":1700000000000}}`

// Store sizes as in examples/jobs/private-broker.nomad.hcl.
const smallStore = "mappedFileSizeCommitLog=67108864\nmappedFileSizeConsumeQueue=1200000\nmaxIndexNum=2000000\nmaxHashSlotNum=500000\n"

func writeSeed(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "rocketmq"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"topics.json": seedTopics, "subscriptionGroup.json": seedGroups} {
		if err := os.WriteFile(filepath.Join(dir, "rocketmq", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// An empty store is seeded with the driver's topics and groups, which the
// broker registers in its first registration; a store with its own files
// is not touched.
func TestSeedEmptyStore(t *testing.T) {
	image := testutil.RocketMQImage(t)
	task := writeSeed(t)
	r := testutil.StartRocketMQ(t, image, testutil.RocketMQOptions{TaskDir: task})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// No one created SeededT: it is in the broker's first registration
	// (right after its port opened, or 10 s later when its NameServer scan
	// had not connected yet: the driver's keeper removes that wait).
	route, waited := waitRoute(t, r, "SeededT", 15*time.Second)
	t.Logf("seeded topic routed %s after the broker's port opened", waited)
	if route.MasterAddr(r.BrokerName) != r.Broker || route.Queues[0].WriteQueueNums != 2 {
		t.Fatalf("route %+v", route)
	}
	groups, err := rmqadmin.Groups(ctx, r.Broker)
	if err != nil || !groups["seeded-g"] {
		t.Fatalf("groups %v (%v)", groups, err)
	}
	if !strings.Contains(r.Logs(), "store has no topics.json: seeded it with the driver's 1 entries") {
		t.Fatalf("no seed message in the log:\n%s", r.Logs())
	}
	// The store now has a topics.json of its own: a later seed is not
	// applied (the driver's keeper adds what is missing at run time).
	got, err := os.ReadFile(filepath.Join(r.DataDir, "store", "config", "topics.json"))
	if err != nil || !strings.Contains(string(got), "SeededT") {
		t.Fatalf("store topics.json: %v", err)
	}
}

// restoreHoles: a store copied in full (as Nomad's ephemeral_disk
// migration does) takes its old size on disk again at the next start, and
// the broker serves it as before.
func TestMigratedStoreGetsItsHolesBack(t *testing.T) {
	image := testutil.RocketMQImage(t)
	r := testutil.StartRocketMQ(t, image, testutil.RocketMQOptions{TaskDir: writeSeed(t), BrokerConf: smallStore})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	waitRoute(t, r, "SeededT", 15*time.Second)
	sendKeys(t, r.NameServer, "SeededT", "m", 200)
	if err := r.StopBroker(); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(r.DataDir, "store")
	du0, apparent := diskUsage(t, store)
	t.Logf("store before the copy: %d KiB on disk, %d KiB apparent", du0, apparent)

	// Copy every file in full, zeros included, like a tar stream.
	moved := t.TempDir()
	if out, err := exec.Command("cp", "-r", "--sparse=never", r.DataDir+"/.", moved).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	du1, _ := diskUsage(t, filepath.Join(moved, "store"))
	t.Logf("copied in full: %d KiB on disk", du1)
	if du1 < apparent*9/10 {
		t.Fatalf("the copy is not dense (%d KiB of %d): the test does not show anything", du1, apparent)
	}

	r2 := testutil.StartRocketMQ(t, image, testutil.RocketMQOptions{DataDir: moved, BrokerConf: smallStore})
	du2, _ := diskUsage(t, filepath.Join(moved, "store"))
	fmt.Printf("BENCH store_size before_kib=%d copied_kib=%d restarted_kib=%d apparent_kib=%d\n", du0, du1, du2, apparent)
	if du2 > du0+2048 {
		t.Fatalf("after the restart the store takes %d KiB on disk, it took %d before the copy\n%s", du2, du0, r2.Logs())
	}
	if !strings.Contains(r2.Logs(), "restored the holes of") {
		t.Fatalf("no restore message:\n%s", r2.Logs())
	}
	// The messages are all still there (counted through the new
	// NameServer, once the broker has registered with it).
	waitRoute(t, r2, "SeededT", 60*time.Second)
	topics, err := rmqadmin.Topics(ctx, r2.Broker)
	if err != nil || topics["SeededT"].Name == "" {
		t.Fatalf("topics after the move: %v %v", topics, err)
	}
	if n := maxOffsets(t, ctx, r2, "SeededT"); n != 200 {
		t.Fatalf("queues of SeededT hold %d messages after the move, want 200", n)
	}
}

// waitRoute waits until the broker's NameServer routes topic to it.
func waitRoute(t *testing.T, r *testutil.RocketMQ, topic string, timeout time.Duration) (*rmqadmin.Route, time.Duration) {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < timeout {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var route *rmqadmin.Route
		route, err = rmqadmin.TopicRoute(ctx, r.NameServer, topic)
		cancel()
		if err == nil && route.MasterAddr(r.BrokerName) == r.Broker {
			return route, time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("topic %s not routed to %s within %s: %v\n%s", topic, r.Broker, timeout, err, r.Logs())
	return nil, 0
}

// diskUsage returns the KiB a tree takes on disk and its apparent size.
func diskUsage(t *testing.T, dir string) (onDisk, apparent int64) {
	t.Helper()
	err := filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		onDisk += st.Blocks * 512
		apparent += info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return onDisk / 1024, apparent / 1024
}

// maxOffsets sums the max offsets of a topic's queues, read with
// mqadmin topicStatus.
func maxOffsets(t *testing.T, ctx context.Context, r *testutil.RocketMQ, topic string) int {
	t.Helper()
	out, err := testutil.Docker("run", "--rm", "--network", "host", testutil.RocketMQImage(t), "mqadmin", "topicStatus", "-n", r.NameServer, "-t", topic)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[0] == r.BrokerName {
			n, _ := strconv.Atoi(f[3])
			sum += n
		}
	}
	return sum
}
