package driver

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rmqnomad/rocketmq-nomad-driver/replica"
	"github.com/rmqnomad/rocketmq-nomad-driver/status"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// remotingStub answers RocketMQ remoting requests on loopback: each
// request's code maps to a response code and body (answer is read under
// mu, so a test can change it between passes).
type remotingStub struct {
	addr   string
	mu     sync.Mutex
	answer map[int]stubAnswer
	// ext are the header fields of a code's response; hook, when set,
	// sees each request (its code and header fields) before the answer
	// is read. Both are read under mu; hook runs without it.
	ext  map[int]map[string]string
	hook func(code int, ext map[string]string)
}

type stubAnswer struct {
	code int
	body string
}

func startRemotingStub(t *testing.T, answer map[int]stubAnswer) *remotingStub {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &remotingStub{addr: ln.Addr().String(), answer: answer}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *remotingStub) set(code int, a stubAnswer) {
	s.mu.Lock()
	s.answer[code] = a
	s.mu.Unlock()
}

func (s *remotingStub) serve(c net.Conn) {
	defer c.Close()
	var pre [8]byte
	if _, err := io.ReadFull(c, pre[:]); err != nil {
		return
	}
	rest := make([]byte, binary.BigEndian.Uint32(pre[0:4])-4)
	if _, err := io.ReadFull(c, rest); err != nil {
		return
	}
	var h struct {
		Code      int               `json:"code"`
		Opaque    int32             `json:"opaque"`
		ExtFields map[string]string `json:"extFields"`
	}
	_ = json.Unmarshal(rest[:binary.BigEndian.Uint32(pre[4:8])&0xFFFFFF], &h)
	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook(h.Code, h.ExtFields)
	}
	s.mu.Lock()
	a, ok := s.answer[h.Code]
	ext := s.ext[h.Code]
	s.mu.Unlock()
	if !ok {
		a = stubAnswer{code: 1}
	}
	hb, _ := json.Marshal(map[string]any{"code": a.code, "flag": 1, "opaque": h.Opaque, "language": "JAVA", "version": 479, "extFields": ext})
	out := make([]byte, 8, 8+len(hb)+len(a.body))
	binary.BigEndian.PutUint32(out[0:4], uint32(4+len(hb)+len(a.body)))
	binary.BigEndian.PutUint32(out[4:8], uint32(len(hb)))
	out = append(append(out, hb...), a.body...)
	_, _ = c.Write(out)
}

// The keeper of a replica announces its state once it is complete, once
// per change, and not while the controllers cannot tell.
func TestWatchReplicaEvents(t *testing.T) {
	t.Setenv("CONSUL_HTTP_ADDR", "") // no consul: the records are not written here
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := New(ctx, hclog.NewNullLogger())
	evs, err := d.events.TaskEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const self = "203.0.113.11:30915"
	broker := startRemotingStub(t, map[int]stubAnswer{
		907: {0, `{"haClientRuntimeInfo":{"masterAddr":"10.9.0.11:30912","maxOffset":0},"haConnectionInfo":[],"master":false}`},
	})
	follower := startRemotingStub(t, map[int]stubAnswer{1006: {2007, ""}})
	leader := startRemotingStub(t, map[int]stubAnswer{1006: {2007, ""}})
	group := func(inSync string) string {
		return `{"replicasInfoTable":{"broker-0":{"inSyncReplicas":[` + inSync + `],"masterAddress":"203.0.113.10:30911","masterBrokerId":1,"masterEpoch":1,` +
			`"notInSyncReplicas":[],"syncStateSetEpoch":1}}}`
	}
	m := `{"alive":true,"brokerAddress":"203.0.113.10:30911","brokerId":1,"brokerName":"broker-0"}`
	sl := `{"alive":true,"brokerAddress":"` + self + `","brokerId":2,"brokerName":"broker-0"}`

	rec := &taskRecord{state: taskState{TaskName: "broker", RocketMQ: RocketMQConfig{Cluster: "pub", Role: RoleBroker,
		Controllers: []string{follower.addr, leader.addr}}}}
	k := &keeper{d: d, taskID: "t1", rec: rec, keep: brokerKeep{Admin: broker.addr, AllocID: "a1"}, rmq: rec.state.RocketMQ,
		advertised: self, warned: map[string]bool{}}
	conf := map[string]string{"brokerName": "broker-0", "brokerId": "2", "brokerRole": "SLAVE"}
	next := func() string {
		select {
		case ev := <-evs:
			return ev.Message
		case <-time.After(300 * time.Millisecond):
			return ""
		}
	}
	pass := func() (bool, string) {
		known := k.watchReplica(ctx, broker.addr, conf)
		return known, next()
	}

	// No controller is the leader yet: nothing to announce.
	if known, ev := pass(); known || ev != "" {
		t.Fatalf("no leader: known %v, event %q", known, ev)
	}
	leader.set(1006, stubAnswer{0, group(m + "," + sl)})
	want := "rocketmq broker: replica: slave of 203.0.113.10:30911 (replicates from 10.9.0.11:30912), broker id 2, in sync set (2 of 2)"
	if known, ev := pass(); !known || ev != want {
		t.Fatalf("first complete pass: known %v, event %q, want %q", known, ev, want)
	}
	if k.rw.leader != leader.addr {
		t.Errorf("the keeper asks %s first next time, want the leader %s", k.rw.leader, leader.addr)
	}
	if _, ev := pass(); ev != "" {
		t.Fatalf("unchanged: event %q", ev)
	}
	// The slave falls out of the SyncStateSet.
	leader.set(1006, stubAnswer{0, strings.Replace(group(m), `"notInSyncReplicas":[]`, `"notInSyncReplicas":[`+sl+`]`, 1)})
	if _, ev := pass(); !strings.HasSuffix(ev, "broker id 2, not in sync set (1 of 2)") {
		t.Fatalf("out of the set: event %q", ev)
	}
	// The controllers stop answering: no event, and back to the same
	// state, none either.
	leader.set(1006, stubAnswer{2007, ""})
	if known, ev := pass(); known || ev != "" {
		t.Fatalf("controllers gone: known %v, event %q", known, ev)
	}
	leader.set(1006, stubAnswer{0, strings.Replace(group(m), `"notInSyncReplicas":[]`, `"notInSyncReplicas":[`+sl+`]`, 1)})
	if _, ev := pass(); ev != "" {
		t.Fatalf("the same state again: event %q", ev)
	}
}

// Each pass's state is recorded at the allocation slot's key, rewritten
// when it changes; status decodes it.
func TestWatchReplicaRecords(t *testing.T) {
	consul := testutil.StartConsul(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := New(ctx, hclog.NewNullLogger())
	d.config = &PluginConfig{Consul: &ConsulConfig{Address: consul.HTTPAddr, KVPrefix: "rmqtest"}}
	broker := startRemotingStub(t, map[int]stubAnswer{907: {0, `{"master":true,"inSyncSlaveNums":0,"haConnectionInfo":[]}`}})
	ctl := startRemotingStub(t, map[int]stubAnswer{1006: {0, `{"replicasInfoTable":{"broker-0":{"inSyncReplicas":[{"alive":true,"brokerAddress":"10.0.0.1:30911","brokerId":1,"brokerName":"broker-0"}],"masterAddress":"10.0.0.1:30911","masterBrokerId":1,"masterEpoch":1,"notInSyncReplicas":[],"syncStateSetEpoch":1}}}`}})
	rec := &taskRecord{state: taskState{TaskName: "broker", AllocIndex: 0, RocketMQ: RocketMQConfig{Cluster: "orders", Role: RoleBroker, Controllers: []string{ctl.addr}}}}
	k := &keeper{d: d, taskID: "t1", rec: rec, rmq: rec.state.RocketMQ, advertised: "10.0.0.1:30911", warned: map[string]bool{},
		keep: brokerKeep{Admin: broker.addr, AllocID: "a1", Namespace: "default", JobID: "rmq-repl", Group: "replica-0", NodeName: "n1", HAAddr: "10.0.0.1:30912"}}
	if !k.watchReplica(ctx, broker.addr, map[string]string{"brokerName": "broker-0", "brokerId": "0", "brokerRole": "SYNC_MASTER"}) {
		t.Fatal("state not known")
	}
	recs, bad, err := status.ConsulReplicas{KV: consul.Client.KV(), Prefix: "rmqtest"}.Replicas(ctx)
	if err != nil || len(bad) != 0 || len(recs) != 1 {
		t.Fatalf("records %+v, unreadable %v, %v", recs, bad, err)
	}
	r := recs[0]
	if r.Role != "master" || r.BrokerID != 1 || r.SyncText() != "in sync set (1 of 1)" || r.HAAddress != "10.0.0.1:30912" || r.AllocID != "a1" || r.ObservedAt.IsZero() {
		t.Fatalf("record %+v", r)
	}
	if got := replica.Key("rmqtest", r); got != "rmqtest/replicas/orders/broker-0/default/rmq-repl/replica-0/0" {
		t.Fatalf("key %s", got)
	}
}
