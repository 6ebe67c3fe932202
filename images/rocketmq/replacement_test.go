package rocketmqimage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/rmqnomad/rocketmq-nomad-driver/rmqadmin"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// TestEmptyReplacementAndConsumerOffsets: real RocketMQ 5.3.3 and the Go
// client, no Nomad. A consumer has read from broker-t; broker-t's host goes
// silent (docker pause: its NameServer connection stays open, as when a
// host vanishes) and a replacement with an empty store and the same broker
// name registers at another address, so the route never shows the name
// missing. A new producer then writes to the replacement.
//
//   - without a grace (the negative control): the consumer still holds
//     offsets of the lost store; its first pull on the replacement is
//     beyond the queue's end, RocketMQ moves it to the end, and it skips
//     what the producer wrote before;
//   - with the entrypoint's read-only grace (the driver's
//     rocketmq/read-only-grace): the replacement takes no writes at first,
//     the consumer's first pull finds the queue empty and starts over at
//     0, and after the grace (the test does what the driver's keeper
//     does) it gets every message.
func TestEmptyReplacementAndConsumerOffsets(t *testing.T) {
	image := testutil.RocketMQImage(t)
	for _, grace := range []int{0, 45} {
		t.Run(fmt.Sprintf("grace=%ds", grace), func(t *testing.T) {
			r := testutil.StartRocketMQ(t, image, testutil.RocketMQOptions{TaskDir: writeSeed(t)})
			waitRoute(t, r, "SeededT", 20*time.Second) // 10 s when the start registration is lost
			rlog.SetLogLevel("error")
			c := startConsumer(t, r.NameServer, "SeededT", "replacement-g")
			sendKeys(t, r.NameServer, "SeededT", "before", 100)
			if miss := c.wait("before", 100, 60*time.Second); len(miss) > 0 {
				t.Fatalf("the consumer did not get %d messages from the first broker", len(miss))
			}
			time.Sleep(6 * time.Second) // the consumer commits its offsets every 5 s

			if _, err := testutil.Docker("pause", r.First.ContainerName()); err != nil {
				t.Fatal(err)
			}
			task := writeSeed(t)
			if grace > 0 {
				if err := os.WriteFile(filepath.Join(task, "rocketmq", "read-only-grace"), []byte(strconv.Itoa(grace)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b := r.StartBroker(t, testutil.RocketMQOptions{TaskDir: task, BrokerName: r.BrokerName})
			waitRouteTo(t, r.NameServer, "SeededT", r.BrokerName, b.Addr, 30*time.Second)
			if grace > 0 {
				endGrace(t, task, b.Addr)
			}
			sendKeys(t, r.NameServer, "SeededT", "after", 20)
			// The consumer learns the new address at its route refresh
			// (30 s), then waits 10 s after an offset correction.
			miss := c.wait("after", 20, 60*time.Second)
			t.Logf("grace %d s: the consumer missed %d of the 20 messages written to the replacement", grace, len(miss))
			fmt.Printf("BENCH replacement grace=%ds: consumer skipped %d of 20 messages written to an empty replacement\n", grace, len(miss))
			switch {
			case grace == 0 && len(miss) == 0:
				t.Fatal("negative control: without the grace the consumer skipped nothing; the test cannot show what the grace is for")
			case grace > 0 && len(miss) > 0:
				t.Fatalf("with the read-only grace the consumer still skipped %d messages: %v", len(miss), miss)
			}
		})
	}
}

// waitRouteTo waits until the NameServer routes topic to name at addr.
func waitRouteTo(t *testing.T, ns, topic, name, addr string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		route, err := rmqadmin.TopicRoute(ctx, ns, topic)
		cancel()
		if err == nil && route.MasterAddr(name) == addr {
			return
		}
	}
	t.Fatalf("%s not routed to %s at %s within %s", topic, name, addr, timeout)
}

// endGrace checks the replacement started read-only and makes it writable
// when its grace is over, as the driver's keeper does.
func endGrace(t *testing.T, task, broker string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	conf, err := rmqadmin.BrokerConfig(ctx, broker)
	cancel()
	if err != nil || conf["brokerPermission"] != "4" {
		t.Fatalf("the replacement is not read-only: brokerPermission=%q (%v)", conf["brokerPermission"], err)
	}
	b, err := os.ReadFile(filepath.Join(task, "rocketmq", "read-only-until"))
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	time.Sleep(time.Until(time.Unix(sec, 0)))
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rmqadmin.UpdateBrokerConfig(ctx, broker, map[string]string{"brokerPermission": "6"}); err != nil {
		t.Fatal(err)
	}
}

type keyCounter struct {
	mu  sync.Mutex
	got map[string]bool
}

func startConsumer(t *testing.T, ns, topic, group string) *keyCounter {
	t.Helper()
	kc := &keyCounter{got: map[string]bool{}}
	c, err := rocketmq.NewPushConsumer(consumer.WithNameServer([]string{ns}), consumer.WithGroupName(group),
		consumer.WithInstance(fmt.Sprint(time.Now().UnixNano())), consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		kc.mu.Lock()
		defer kc.mu.Unlock()
		for _, m := range msgs {
			kc.got[string(m.Body)] = true
		}
		return consumer.ConsumeSuccess, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Shutdown() })
	return kc
}

// wait waits until prefix-0 .. prefix-(n-1) arrived or timeout, and
// returns the missing ones.
func (kc *keyCounter) wait(prefix string, n int, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		var miss []string
		kc.mu.Lock()
		for i := 0; i < n; i++ {
			if k := fmt.Sprintf("%s-%d", prefix, i); !kc.got[k] {
				miss = append(miss, k)
			}
		}
		kc.mu.Unlock()
		if len(miss) == 0 || time.Now().After(deadline) {
			return miss
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// sendKeys sends prefix-0 .. prefix-(n-1) with a new producer.
func sendKeys(t *testing.T, ns, topic, prefix string, n int) {
	t.Helper()
	p, err := rocketmq.NewProducer(producer.WithNameServer([]string{ns}), producer.WithRetry(2),
		producer.WithGroupName(fmt.Sprintf("replacement-p-%d", time.Now().UnixNano())))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Shutdown() }()
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(fmt.Sprintf("%s-%d", prefix, i))))
		cancel()
		if err != nil || res.Status != primitive.SendOK {
			t.Fatalf("send %s-%d: %v %v", prefix, i, res, err)
		}
	}
}
