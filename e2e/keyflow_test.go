//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
)

// keyProducer sends keyed messages continuously with a real Go producer
// and records every key the broker acknowledged (SEND_OK), and when each
// send succeeded or failed. A failed send is not retried under the same key:
// its fate is unknown, and only acknowledged keys count.
type keyProducer struct {
	t      *testing.T
	p      rocketmq.Producer
	topic  string
	prefix string

	// call bounds one SendSync, its retries included.
	call time.Duration

	mu     sync.Mutex
	acked  []string
	ackAt  []time.Time
	ackBy  []string // the broker group that acknowledged each key
	failAt []time.Time
	lastEr error
	seq    int

	stop chan struct{}
	done chan struct{}
}

// sendSettings are a producer's retry settings: Retries more attempts
// after a failed one (on another broker group when there is one), each
// within Timeout, all of them within Call.
type sendSettings struct {
	Retries int
	Timeout time.Duration
	Call    time.Duration
}

// startKeyProducer starts sending to topic, one message every pause.
func (e *rmqEnv) startKeyProducer(t *testing.T, cluster, topic, prefix string, pause time.Duration) *keyProducer {
	return e.startKeyProducerWith(t, cluster, topic, prefix, pause, sendSettings{Retries: 1, Timeout: 3 * time.Second, Call: 5 * time.Second})
}

// startKeyProducerWith starts sending with the given retry settings.
func (e *rmqEnv) startKeyProducerWith(t *testing.T, cluster, topic, prefix string, pause time.Duration, s sendSettings) *keyProducer {
	t.Helper()
	rlog.SetLogLevel("error")
	url := fmt.Sprintf("http://127.0.0.1:%d/rocketmq/%s", e.nsaddrPort, cluster)
	p, err := rocketmq.NewProducer(
		producer.WithNsResolver(primitive.NewHttpResolver(cluster, url)),
		producer.WithGroupName(prefix+"-producer"),
		producer.WithInstanceName(prefix+"-"+fmt.Sprint(time.Now().UnixNano())),
		producer.WithRetry(s.Retries),
		producer.WithSendMsgTimeout(s.Timeout),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	kp := &keyProducer{t: t, p: p, topic: topic, prefix: prefix, call: s.Call, stop: make(chan struct{}), done: make(chan struct{})}
	go kp.run(pause)
	t.Cleanup(kp.Stop)
	return kp
}

func (kp *keyProducer) run(pause time.Duration) {
	defer close(kp.done)
	for {
		select {
		case <-kp.stop:
			return
		default:
		}
		kp.mu.Lock()
		key := fmt.Sprintf("%s-%07d", kp.prefix, kp.seq)
		kp.seq++
		kp.mu.Unlock()
		msg := primitive.NewMessage(kp.topic, []byte(key))
		msg.WithKeys([]string{key})
		ctx, cancel := context.WithTimeout(context.Background(), kp.call)
		res, err := kp.p.SendSync(ctx, msg)
		cancel()
		now := time.Now()
		kp.mu.Lock()
		if err == nil && res.Status == primitive.SendOK {
			kp.acked = append(kp.acked, key)
			kp.ackAt = append(kp.ackAt, now)
			by := ""
			if res.MessageQueue != nil {
				by = res.MessageQueue.BrokerName
			}
			kp.ackBy = append(kp.ackBy, by)
		} else {
			kp.failAt = append(kp.failAt, now)
			if err == nil {
				err = fmt.Errorf("send status %d", res.Status)
			}
			kp.lastEr = err
		}
		kp.mu.Unlock()
		if err != nil {
			time.Sleep(200 * time.Millisecond)
		} else {
			time.Sleep(pause)
		}
	}
}

// Stop stops sending and shuts the producer down (idempotent).
func (kp *keyProducer) Stop() {
	select {
	case <-kp.stop:
	default:
		close(kp.stop)
		<-kp.done
		_ = kp.p.Shutdown()
	}
}

// Acked returns the acknowledged keys so far.
func (kp *keyProducer) Acked() []string {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	return append([]string(nil), kp.acked...)
}

// ack is one acknowledged send.
type ack struct {
	Key, Broker string
	At          time.Time
}

// Acks returns the acknowledged sends so far.
func (kp *keyProducer) Acks() []ack {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	out := make([]ack, len(kp.acked))
	for i := range kp.acked {
		out[i] = ack{kp.acked[i], kp.ackBy[i], kp.ackAt[i]}
	}
	return out
}

// waitAcks waits until n more keys than now are acknowledged.
func (kp *keyProducer) waitAcks(n int, timeout time.Duration) {
	kp.t.Helper()
	start := len(kp.Acked())
	waitFor(kp.t, timeout, fmt.Sprintf("%d more acknowledged sends of %s", n, kp.prefix), func() bool {
		return len(kp.Acked()) >= start+n
	})
}

// outage is what the producer saw after an event: how many sends failed,
// and the longest time without an acknowledgement, from the event (or the
// last ack before it) to the first ack after it, and between later acks.
type outage struct {
	Failed    int
	NoAck     time.Duration
	FirstFail time.Duration // after the event; -1 when none failed
	LastFail  time.Duration
	// Recovered is from the first failed send to the first ack after it
	// (-1 when none came).
	Recovered time.Duration
}

func (o outage) String() string {
	if o.Failed == 0 {
		return fmt.Sprintf("no failed sends, longest time without an ack %.1f s", o.NoAck.Seconds())
	}
	return fmt.Sprintf("%d failed sends between +%.1f s and +%.1f s, first failed send to the next ack %.1f s, longest time without an ack %.1f s",
		o.Failed, o.FirstFail.Seconds(), o.LastFail.Seconds(), o.Recovered.Seconds(), o.NoAck.Seconds())
}

// outageSince measures the producer's error window after at.
func (kp *keyProducer) outageSince(at time.Time) outage {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	o := outage{FirstFail: -1, Recovered: -1}
	var first time.Time
	for _, f := range kp.failAt {
		if f.Before(at) {
			continue
		}
		if o.Failed == 0 {
			o.FirstFail, first = f.Sub(at), f
		}
		o.Failed++
		o.LastFail = f.Sub(at)
	}
	if o.Failed > 0 {
		for _, a := range kp.ackAt {
			if a.After(first) {
				o.Recovered = a.Sub(first)
				break
			}
		}
	}
	prev := at
	for i := len(kp.ackAt) - 1; i >= 0; i-- {
		if kp.ackAt[i].Before(at) {
			prev = kp.ackAt[i]
			break
		}
	}
	for _, a := range kp.ackAt {
		if !a.After(prev) {
			continue
		}
		if d := a.Sub(prev); d > o.NoAck {
			o.NoAck = d
		}
		prev = a
	}
	return o
}

// consumeKeys starts a real Go push consumer in a new group, from the first
// offset, and returns the keys of topic it received (with how often) once
// every key in want arrived or timeout passed.
func (e *rmqEnv) consumeKeys(t *testing.T, cluster, topic, group string, want []string, timeout time.Duration) map[string]int {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/rocketmq/%s", e.nsaddrPort, cluster)
	var mu sync.Mutex
	got := map[string]int{}
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
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			got[string(m.Body)]++
		}
		return consumer.ConsumeSuccess, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Shutdown() }()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(missing(want, got))
		mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	mu.Lock()
	defer mu.Unlock()
	out := make(map[string]int, len(got))
	for k, v := range got {
		out[k] = v
	}
	return out
}

// missing returns the keys of want that got lacks, sorted.
func missing(want []string, got map[string]int) []string {
	var out []string
	for _, k := range want {
		if got[k] == 0 {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// duplicates counts the deliveries beyond the first of the keys in want.
func duplicates(want []string, got map[string]int) int {
	n := 0
	for _, k := range want {
		if got[k] > 1 {
			n += got[k] - 1
		}
	}
	return n
}

func firstN(keys []string, n int) []string {
	if len(keys) > n {
		return keys[:n]
	}
	return keys
}
