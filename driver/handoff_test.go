package driver

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/plugins/drivers"
)

func TestHandoffBudget(t *testing.T) {
	for _, tc := range []struct{ kill, want time.Duration }{
		{0, time.Second}, {2 * time.Second, time.Second}, {5 * time.Second, 5 * time.Second / 3},
		{15 * time.Second, 5 * time.Second}, {time.Minute, 5 * time.Second},
	} {
		if got := handoffBudget(tc.kill); got != tc.want {
			t.Errorf("handoffBudget(%s) = %s, want %s", tc.kill, got, tc.want)
		}
	}
}

// A stopping replica hands the master role over when it is the master and
// another replica is in sync; it says so, or why not, in a task event, and
// a handoff that cannot happen takes no longer than its budget.
func TestHandOff(t *testing.T) {
	const (
		self  = "203.0.113.10:30911"
		other = "203.0.113.11:30915"
	)
	group := func(master int64, inSync ...string) string {
		addr := map[int64]string{1: self, 2: other}[master]
		return `{"replicasInfoTable":{"broker-0":{"inSyncReplicas":[` + strings.Join(inSync, ",") + `],"masterAddress":"` + addr +
			`","masterBrokerId":` + string(rune('0'+master)) + `,"masterEpoch":1,"notInSyncReplicas":[],"syncStateSetEpoch":1}}}`
	}
	r1 := `{"alive":true,"brokerAddress":"` + self + `","brokerId":1,"brokerName":"broker-0"}`
	r2 := `{"alive":true,"brokerAddress":"` + other + `","brokerId":2,"brokerName":"broker-0"}`
	masterConf := stubAnswer{0, "brokerClusterName=pub\nbrokerName=broker-0\nbrokerId=0\nbrokerRole=SYNC_MASTER\n"}

	// A controller that accepts and never answers.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	var held []net.Conn
	var heldMu sync.Mutex
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			heldMu.Lock()
			held = append(held, c)
			heldMu.Unlock()
		}
	}()
	defer func() {
		heldMu.Lock()
		for _, c := range held {
			c.Close()
		}
		heldMu.Unlock()
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := closed.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name   string
		setup  func(follower, leader *remotingStub) []string // returns the controllers
		conf   stubAnswer
		event  string // prefix; "" means none
		elects []string
		budget time.Duration
	}{
		{"the master with an in-sync slave", func(f, l *remotingStub) []string {
			l.set(1006, stubAnswer{0, group(1, r1, r2)})
			l.set(1002, stubAnswer{0, `{"syncStateSet":[2]}`})
			l.mu.Lock()
			l.ext = map[int]map[string]string{1002: {"masterBrokerId": "2", "masterAddress": other, "masterEpoch": "2", "syncStateSetEpoch": "2"}}
			l.mu.Unlock()
			return []string{f.addr, l.addr}
		}, masterConf, "rocketmq broker: replica: handed the master role to broker id 2 (" + other + ") before stopping", []string{"2"}, 5 * time.Second},
		{"a slave", func(f, l *remotingStub) []string {
			l.set(1006, stubAnswer{0, group(2, r1, r2)})
			return []string{l.addr}
		}, stubAnswer{0, "brokerName=broker-0\nbrokerId=1\nbrokerRole=SLAVE\n"}, "", nil, 5 * time.Second},
		{"the master alone", func(f, l *remotingStub) []string {
			l.set(1006, stubAnswer{0, group(1, r1)})
			return []string{l.addr}
		}, masterConf, "rocketmq broker: replica: did not hand the master role over before stopping: no other alive replica is in the SyncStateSet (1 in the set, of 1 replicas)", nil, 5 * time.Second},
		{"the controllers refuse the slave", func(f, l *remotingStub) []string {
			l.set(1006, stubAnswer{0, group(1, r1, r2)})
			l.set(1002, stubAnswer{2012, ""})
			return []string{l.addr}
		}, masterConf, "rocketmq broker: replica: did not hand the master role over before stopping: the controllers elected none of the in-sync replicas: ", []string{"2"}, 5 * time.Second},
		{"the election's answer is lost, but it happened", func(f, l *remotingStub) []string {
			l.set(1006, stubAnswer{0, group(1, r1, r2)})
			l.set(1002, stubAnswer{1, ""})
			return []string{l.addr}
		}, masterConf, "rocketmq broker: replica: handed the master role to broker id 2 (" + other + ") before stopping", []string{"2"}, 5 * time.Second},
		{"controllers unreachable", func(f, l *remotingStub) []string { return []string{refused} },
			masterConf, "rocketmq broker: replica: did not hand the master role over before stopping: the controllers cannot be reached: ", nil, 5 * time.Second},
		{"controllers hanging: bounded by the budget", func(f, l *remotingStub) []string {
			// Unbounded, three would take 3 s.
			return []string{hang.Addr().String(), hang.Addr().String(), hang.Addr().String()}
		}, masterConf, "rocketmq broker: replica: did not hand the master role over before stopping: the controllers cannot be reached: ", nil, 1500 * time.Millisecond},
		{"the broker does not answer", func(f, l *remotingStub) []string { return []string{l.addr} },
			stubAnswer{}, "rocketmq broker: replica: did not hand the master role over before stopping: the broker does not answer: ", nil, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			d := New(ctx, hclog.NewNullLogger())
			evs, err := d.events.TaskEvents(ctx)
			if err != nil {
				t.Fatal(err)
			}
			broker := startRemotingStub(t, map[int]stubAnswer{26: tc.conf})
			if tc.conf.body == "" {
				broker.addr = refused
			}
			follower := startRemotingStub(t, map[int]stubAnswer{1006: {2007, ""}, 1002: {2007, ""}})
			leader := startRemotingStub(t, map[int]stubAnswer{1006: {2007, ""}})
			var mu sync.Mutex
			var elects []string
			leader.mu.Lock()
			leader.hook = func(code int, ext map[string]string) {
				if code != 1002 {
					return
				}
				mu.Lock()
				elects = append(elects, ext["brokerId"])
				mu.Unlock()
				if ext["designateElect"] != "true" || ext["brokerName"] != "broker-0" || ext["clusterName"] != "pub" {
					t.Errorf("election fields %v", ext)
				}
				leader.mu.Lock()
				refused := leader.answer[1002].code == 2012
				leader.mu.Unlock()
				if !refused {
					leader.set(1006, stubAnswer{0, group(2, r1, r2)})
				}
			}
			leader.mu.Unlock()
			rec := &taskRecord{state: taskState{TaskName: "broker", Advertised: Address{IP: "203.0.113.10", Port: 30911},
				RocketMQ: RocketMQConfig{Cluster: "pub", Role: RoleBroker, Controllers: tc.setup(follower, leader)},
				Keep:     &brokerKeep{Admin: broker.addr, AllocID: "a1"}}}
			begin := time.Now()
			d.handOff("t1", rec, tc.budget)
			if took := time.Since(begin); took > tc.budget+time.Second {
				t.Errorf("the handoff took %s, budget %s", took, tc.budget)
			}
			var ev *drivers.TaskEvent
			select {
			case ev = <-evs:
			case <-time.After(300 * time.Millisecond):
			}
			switch {
			case tc.event == "" && ev != nil:
				t.Errorf("event %q, want none", ev.Message)
			case tc.event != "" && (ev == nil || !strings.HasPrefix(ev.Message, tc.event)):
				t.Errorf("event %+v, want %q...", ev, tc.event)
			case ev != nil && (ev.TaskID != "t1" || ev.AllocID != "a1" || ev.Annotations["handoff"] == ""):
				t.Errorf("event fields %+v", ev)
			}
			mu.Lock()
			defer mu.Unlock()
			if strings.Join(elects, ",") != strings.Join(tc.elects, ",") {
				t.Errorf("elections of %v, want %v", elects, tc.elects)
			}
		})
	}
}

// Not a controller-mode replica: no call, no event.
func TestHandOffNotControllerMode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := New(ctx, hclog.NewNullLogger())
	evs, err := d.events.TaskEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	called := make(chan int, 1)
	broker := startRemotingStub(t, map[int]stubAnswer{})
	broker.mu.Lock()
	broker.hook = func(code int, _ map[string]string) { called <- code }
	broker.mu.Unlock()
	for _, rmq := range []RocketMQConfig{{Cluster: "c", Role: RoleBroker}, {Cluster: "c", Role: RoleNameServer, Controllers: []string{broker.addr}}} {
		d.handOff("t1", &taskRecord{state: taskState{RocketMQ: rmq, Keep: &brokerKeep{Admin: broker.addr}}}, time.Second)
	}
	select {
	case ev := <-evs:
		t.Fatalf("event %q", ev.Message)
	case code := <-called:
		t.Fatalf("called %d", code)
	case <-time.After(200 * time.Millisecond):
	}
}
