//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/rmqnomad/rocketmq-nomad-driver/rmqadmin"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// Helpers of the broker-move tests (moves_test.go).

// keyConsumer is a real Go push consumer that runs for the whole test,
// from the first offset, and counts every key it receives.
type keyConsumer struct {
	c   rocketmq.PushConsumer
	mu  sync.Mutex
	got map[string]int
}

func (e *rmqEnv) startKeyConsumer(t *testing.T, cluster, topic, group string) *keyConsumer {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/rocketmq/%s", e.nsaddrPort, cluster)
	kc := &keyConsumer{got: map[string]int{}}
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNsResolver(primitive.NewHttpResolver(cluster, url)),
		consumer.WithGroupName(group),
		consumer.WithInstance(group+"-"+fmt.Sprint(time.Now().UnixNano())),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		kc.mu.Lock()
		defer kc.mu.Unlock()
		for _, m := range msgs {
			kc.got[string(m.Body)]++
		}
		return consumer.ConsumeSuccess, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	kc.c = c
	t.Cleanup(func() { _ = c.Shutdown() })
	return kc
}

// missingOf returns the keys of want not received yet.
func (kc *keyConsumer) missingOf(want []string) []string {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	return missing(want, kc.got)
}

// waitKeys waits until every key of want arrived, or timeout; it returns
// the keys still missing.
func (kc *keyConsumer) waitKeys(want []string, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		miss := kc.missingOf(want)
		if len(miss) == 0 || time.Now().After(deadline) {
			return miss
		}
		time.Sleep(time.Second)
	}
}

// endpointPoller asks the address endpoint for a cluster's list every
// 200 ms. An answer is good when it is 200 with a non-empty list of the
// NameServers in want (ip:port;ip:port); it records the others, and counts
// the good ones that list fewer than all.
type endpointPoller struct {
	url, want string
	mu        sync.Mutex
	n, fewer  int
	bad       []string
	stop      chan struct{}
	done      chan struct{}
}

func (e *rmqEnv) pollEndpoint(t *testing.T, cluster, want string) *endpointPoller {
	p := &endpointPoller{url: fmt.Sprintf("http://127.0.0.1:%d/rocketmq/%s", e.nsaddrPort, cluster), want: want,
		stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 3 * time.Second}
	all := len(strings.Split(want, ";"))
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			verdict, listed := "", 0
			resp, err := client.Get(p.url)
			if err != nil {
				verdict = err.Error()
			} else {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !subsetOf(string(body), want) {
					verdict = fmt.Sprintf("%d %q", resp.StatusCode, body)
				}
				listed = len(strings.Split(string(body), ";"))
			}
			p.mu.Lock()
			p.n++
			if verdict != "" {
				p.bad = append(p.bad, time.Now().Format("15:04:05.000")+" "+verdict)
			} else if listed < all {
				p.fewer++
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(p.Stop)
	return p
}

// Stop stops polling (idempotent) and returns the answers and the bad ones.
func (p *endpointPoller) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// result returns the answers, those listing fewer than all NameServers,
// and the bad ones.
func (p *endpointPoller) result() (int, int, []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n, p.fewer, append([]string(nil), p.bad...)
}

// subsetOf reports whether list is a non-empty ;-list of entries of all.
func subsetOf(list, all string) bool {
	if list == "" {
		return false
	}
	have := map[string]bool{}
	for _, e := range strings.Split(all, ";") {
		have[e] = true
	}
	for _, e := range strings.Split(list, ";") {
		if !have[e] {
			return false
		}
	}
	return true
}

// eligibility sets client i eligible for placements or not.
func (e *rmqEnv) eligibility(t *testing.T, i int, eligible bool) {
	t.Helper()
	id, err := e.nomad.NodeID(nodeName(i))
	if err != nil {
		t.Fatal(err)
	}
	flag := "-enable"
	if !eligible {
		flag = "-disable"
	}
	nomadOK(t, e.nomad, "node", "eligibility", flag, id)
}

// allocOf waits for the running allocation of job with the given index
// (NOMAD_ALLOC_INDEX) on a node other than notOn, and returns it.
func (e *rmqEnv) allocOf(t *testing.T, job string, index int, notOn string, timeout time.Duration) testutil.Alloc {
	t.Helper()
	suffix := fmt.Sprintf("[%d]", index)
	var found testutil.Alloc
	waitFor(t, timeout, fmt.Sprintf("%s%s running", job, suffix), func() bool {
		allocs, err := e.nomad.JobAllocs(job)
		if err != nil {
			return false
		}
		for _, a := range allocs {
			if strings.HasSuffix(a.Name, suffix) && a.NodeID != notOn && a.ClientStatus == "running" && a.DesiredStatus == "run" {
				found = a
				return true
			}
		}
		return false
	})
	return found
}

// taskEventAt returns when the task of alloc last had an event of type
// typ (zero when none).
func (e *rmqEnv) taskEventAt(t *testing.T, allocID, task, typ string) time.Time {
	t.Helper()
	var a struct {
		TaskStates map[string]struct {
			Events []struct {
				Type string
				Time int64
			}
		}
	}
	if err := e.nomad.GetJSON("/v1/allocation/"+allocID, &a); err != nil {
		t.Fatal(err)
	}
	var at time.Time
	for _, ev := range a.TaskStates[task].Events {
		if ev.Type == typ {
			at = time.Unix(0, ev.Time)
		}
	}
	return at
}

// waitRegistered waits until every NameServer of list routes topic to
// broker group name at addr, and returns when that was first seen.
func waitRegistered(t *testing.T, list, topic, name, addr string, timeout time.Duration) time.Time {
	t.Helper()
	var last error
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		all := true
		for _, ns := range strings.Split(list, ";") {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			r, err := rmqadmin.TopicRoute(ctx, ns, topic)
			cancel()
			if err != nil || r.MasterAddr(name) != addr {
				all, last = false, err
				break
			}
		}
		if all {
			return time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("topic %s not routed to %s at %s on %s within %s (last error %v)", topic, name, addr, list, timeout, last)
	return time.Time{}
}

// storeSize returns the KiB a broker's store takes on disk and its
// apparent size, read in the allocation dir on the Nomad client.
func (e *rmqEnv) storeSize(t *testing.T, client int, allocID, broker string) (onDisk, apparent int64) {
	t.Helper()
	dir := filepath.Join(e.nomad.Clients[client].DataDir, "alloc", allocID, "alloc", "data", "rocketmq-broker-"+broker+"-0", "store")
	err := filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		onDisk += info.Sys().(*syscall.Stat_t).Blocks * 512
		apparent += info.Size()
		return nil
	})
	if err != nil {
		t.Fatalf("store of %s: %v", broker, err)
	}
	return onDisk / 1024, apparent / 1024
}

// acksSince returns the acks of broker group name after at.
func acksSince(acks []ack, name string, at time.Time) int {
	n := 0
	for _, a := range acks {
		if a.Broker == name && a.At.After(at) {
			n++
		}
	}
	return n
}

// firstAckBy waits until broker group name acknowledged a send after at,
// and returns when it first did; false when it did not within timeout.
func (kp *keyProducer) firstAckBy(name string, at time.Time, timeout time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(timeout)
	for {
		for _, a := range kp.Acks() {
			if a.Broker == name && a.At.After(at) {
				return a.At, true
			}
		}
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// window describes the producer's error window in [from, to]: the sends
// that failed (all retries used up), from the first to the last failure,
// and the longest time without any acknowledgement (counting to the end
// when none came).
func (kp *keyProducer) window(from, to time.Time) string {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	failed := 0
	var first, lastFail time.Time
	for _, f := range kp.failAt {
		if f.Before(from) || f.After(to) {
			continue
		}
		if failed == 0 {
			first = f
		}
		failed++
		lastFail = f
	}
	prev, gap := from, time.Duration(0)
	for i := len(kp.ackAt) - 1; i >= 0; i-- {
		if kp.ackAt[i].Before(from) {
			prev = kp.ackAt[i]
			break
		}
	}
	for _, a := range kp.ackAt {
		if !a.After(prev) || a.After(to) {
			continue
		}
		gap = max(gap, a.Sub(prev))
		prev = a
	}
	gap = max(gap, to.Sub(prev))
	if failed == 0 {
		return fmt.Sprintf("no failed sends, longest time without an ack %.1f s", gap.Seconds())
	}
	return fmt.Sprintf("%d failed sends, from +%.1f s to +%.1f s (error window %.1f s), longest time without an ack %.1f s",
		failed, first.Sub(from).Seconds(), lastFail.Sub(from).Seconds(), lastFail.Sub(first).Seconds(), gap.Seconds())
}

// brokerLogTimes reads from a broker's log when its remoting server started
// listening on port (the JVM is up; the fast server on port-2 is another
// line) and when it first registered with a NameServer after that.
// RocketMQ logs in UTC, like the host.
func brokerLogTimes(t *testing.T, allocID string, port int) (ready, registered time.Time) {
	t.Helper()
	stamp := func(line string) time.Time {
		if len(line) < 23 {
			return time.Time{}
		}
		ts, _ := time.ParseInLocation("2006-01-02 15:04:05.000", line[:23], time.UTC)
		return ts
	}
	listening := fmt.Sprintf("RemotingServer started, listening 0.0.0.0:%d", port)
	for deadline := time.Now().Add(30 * time.Second); registered.IsZero() && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		logs, _ := testutil.Docker("logs", containerOf(t, allocID))
		ready, registered = time.Time{}, time.Time{}
		for _, line := range strings.Split(logs, "\n") {
			switch {
			case strings.Contains(line, listening):
				ready = stamp(line)
			case !ready.IsZero() && registered.IsZero() && strings.Contains(line, "Registering current broker to name server completed"):
				registered = stamp(line)
			}
		}
	}
	if ready.IsZero() || registered.IsZero() {
		t.Fatalf("broker log of %s: remoting server start %v, registration %v", allocID, ready, registered)
	}
	return ready, registered
}

func keysOf(acks []ack, keep func(ack) bool) []string {
	var out []string
	for _, a := range acks {
		if keep(a) {
			out = append(out, a.Key)
		}
	}
	return out
}

// queuePerm returns the perm of broker group name's queues in a route.
func queuePerm(r *rmqadmin.Route, name string) int {
	for _, q := range r.Queues {
		if q.BrokerName == name {
			return q.Perm
		}
	}
	return -1
}

// describeKeys tells, for failure messages, which group acknowledged the
// keys and when, relative to an event and to a later registration.
func describeKeys(acks []ack, keys []string, event, registered time.Time) string {
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	count := map[string]int{}
	var sample []string
	for _, a := range acks {
		if !want[a.Key] {
			continue
		}
		phase := "before the event"
		switch {
		case a.At.After(registered):
			phase = "after the replacement registered"
		case a.At.After(event):
			phase = "between the event and the registration"
		}
		count[a.Broker+" "+phase]++
		if len(sample) < 5 {
			sample = append(sample, fmt.Sprintf("%s by %s at %+.1f s", a.Key, a.Broker, a.At.Sub(event).Seconds()))
		}
	}
	return fmt.Sprintf("%v, e.g. %v", count, sample)
}
