package replica

import (
	"errors"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/rmqadmin"
)

const (
	eipA, eipB, eipC = "203.0.113.10:30911", "203.0.113.11:30915", "203.0.113.12:30919"
	haA              = "10.9.0.11:30912"
)

func group(master int64, in []rmqadmin.Replica, out ...rmqadmin.Replica) *rmqadmin.ReplicasInfo {
	addr := ""
	for _, r := range append(append([]rmqadmin.Replica{}, in...), out...) {
		if r.BrokerID == master {
			addr = r.Address
		}
	}
	return &rmqadmin.ReplicasInfo{MasterBrokerID: master, MasterAddress: addr, MasterEpoch: 3, SyncStateSetEpoch: 4, InSync: in, NotInSync: out}
}

func rep(id int64, addr string, alive bool) rmqadmin.Replica {
	return rmqadmin.Replica{BrokerName: "broker-0", BrokerID: id, Address: addr, Alive: alive}
}

func TestDerive(t *testing.T) {
	masterHA := &rmqadmin.HAStatus{Master: true, InSyncSlaveNums: 1}
	slaveHA := &rmqadmin.HAStatus{Client: rmqadmin.HAClient{MasterAddr: haA}}
	conf := func(id, role string) map[string]string {
		return map[string]string{"brokerName": "broker-0", "brokerId": id, "brokerRole": role}
	}
	two := []rmqadmin.Replica{rep(1, eipA, true), rep(2, eipB, true)}
	for _, tc := range []struct {
		name    string
		obs     Observation
		want    string
		known   bool
		problem bool
	}{
		{"master of two in sync",
			Observation{Self: eipA, Conf: conf("0", "SYNC_MASTER"), HA: masterHA, Group: group(1, two)},
			"master, broker id 1, in sync set (2 of 2)", true, false},
		{"slave in sync, replicating from the master's private address",
			Observation{Self: eipB, Conf: conf("2", "SLAVE"), HA: slaveHA, Group: group(1, two)},
			"slave of " + eipA + " (replicates from " + haA + "), broker id 2, in sync set (2 of 2)", true, false},
		{"slave out of the set; a lost replica is not counted",
			Observation{Self: eipB, Conf: conf("2", "SLAVE"), HA: slaveHA,
				Group: group(1, two[:1], rep(2, eipB, true), rep(3, eipC, false))},
			"slave of " + eipA + " (replicates from " + haA + "), broker id 2, not in sync set (1 of 2)", true, false},
		{"a replacement at its predecessor's address: the alive, newest entry",
			Observation{Self: eipA, Conf: conf("-1", "SLAVE"), HA: slaveHA,
				Group: group(2, []rmqadmin.Replica{rep(2, eipB, true)}, rep(1, eipA, false), rep(4, eipA, true))},
			"slave of " + eipB + " (replicates from " + haA + "), broker id 4, not in sync set (1 of 2)", true, false},
		{"the controllers name the master before the broker changed",
			Observation{Self: eipB, Conf: conf("2", "SLAVE"), HA: slaveHA, Group: group(2, two)},
			"master, broker id 2, in sync set (2 of 2)", true, false},
		{"controllers unreachable: the broker's own role",
			Observation{Self: eipB, Conf: conf("2", "SLAVE"), HA: slaveHA, SyncErr: errors.New("no controller answered")},
			"slave (replicates from " + haA + "), broker id unknown, sync state unknown", false, true},
		{"not registered with the controllers yet",
			Observation{Self: eipC, Conf: conf("-1", "SLAVE"), HA: &rmqadmin.HAStatus{}, Group: group(1, two)},
			"slave of " + eipA + ", broker id unknown, sync state unknown", false, true},
		{"no master elected yet",
			Observation{Self: eipA, Conf: conf("-1", "SLAVE"), HA: &rmqadmin.HAStatus{}, Group: group(0, nil, rep(1, eipA, true))},
			"slave, broker id 1, not in sync set (0 of 1)", true, true},
		{"HA status and controllers failing: the config's role",
			Observation{Self: eipA, Conf: conf("0", "SYNC_MASTER"), HAErr: errors.New("timeout"), SyncErr: errors.New("timeout")},
			"master, broker id unknown, sync state unknown", false, true},
		{"the controllers do not know the name",
			Observation{Self: eipA, Conf: conf("-1", "SLAVE"), HA: &rmqadmin.HAStatus{}},
			"slave, broker id unknown, sync state unknown", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Derive(tc.obs)
			if got := s.Summary(); got != tc.want {
				t.Errorf("Summary() = %q\n want %q", got, tc.want)
			}
			if s.Known() != tc.known {
				t.Errorf("Known() = %v, want %v (%+v)", s.Known(), tc.known, s)
			}
			if (s.Problem != "") != tc.problem {
				t.Errorf("Problem = %q, want one: %v", s.Problem, tc.problem)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	master := State{BrokerName: "b", Role: RoleMaster, BrokerID: 1, MasterID: 1, MasterAddr: eipA, SyncKnown: true, InSync: true, SyncSetSize: 2, Replicas: 2, MasterEpoch: 1}
	shrunk := master
	shrunk.SyncSetSize = 1
	newEpoch := master
	newEpoch.MasterEpoch = 2
	unknown := State{BrokerName: "b", Role: RoleMaster, Problem: "controllers: timeout"}
	unknown2 := unknown
	unknown2.Problem = "controllers: refused"
	for _, tc := range []struct {
		name               string
		announced, written *State
		writtenAt          time.Time
		cur                State
		want               Plan
	}{
		{"first complete state", nil, nil, time.Time{}, master, Plan{Event: true, Write: true}},
		{"first pass, incomplete: recorded, not announced", nil, nil, time.Time{}, unknown, Plan{Write: true}},
		{"unchanged, record fresh", &master, &master, now.Add(-10 * time.Second), master, Plan{}},
		{"unchanged, record due", &master, &master, now.Add(-RecordRefresh), master, Plan{Write: true}},
		{"sync set shrank", &master, &master, now, shrunk, Plan{Event: true, Write: true}},
		{"only the epoch moved", &master, &master, now, newEpoch, Plan{}},
		{"controllers gone for a pass: no event, recorded", &master, &master, now, unknown, Plan{Write: true}},
		{"back to what was announced: recorded, no new event", &master, &unknown, now, master, Plan{Write: true}},
		{"another problem: recorded", &master, &unknown, now, unknown2, Plan{Write: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Decide(tc.announced, tc.written, tc.writtenAt, tc.cur, now); got != tc.want {
				t.Errorf("Decide = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRecordKey(t *testing.T) {
	r := Record{State: State{BrokerName: "broker-0", Role: RoleSlave, BrokerID: 2}, Cluster: "pub", JobID: "rocketmq-replicated-broker", Group: "replica-1"}
	key := Key("rocketmq-nomad", r)
	if key != "rocketmq-nomad/replicas/pub/broker-0/default/rocketmq-replicated-broker/replica-1/0" {
		t.Fatalf("key %s", key)
	}
	v, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	r.Namespace = "default"
	got, err := Decode("rocketmq-nomad", key, v)
	if err != nil || got.BrokerID != 2 || got.Group != "replica-1" {
		t.Fatalf("Decode = %+v, %v", got, err)
	}
	if _, err := Decode("rocketmq-nomad", key+"x", v); err == nil {
		t.Fatal("a record under another key decoded")
	}
	if _, err := Decode("rocketmq-nomad", key, []byte("{")); err == nil {
		t.Fatal("bad JSON decoded")
	}
}

func TestAnnotations(t *testing.T) {
	s := State{BrokerName: "b", Role: RoleSlave, BrokerID: 2, MasterAddr: eipA, HAMasterAddr: haA, SyncKnown: true, InSync: true, SyncSetSize: 2, Replicas: 3}
	a := s.Annotations()
	if a["role"] != "slave" || a["broker_id"] != "2" || a["in_sync"] != "true" || a["sync_set"] != "2/3" || a["ha_master"] != haA || a["master"] != eipA {
		t.Fatalf("annotations %v", a)
	}
	if _, ok := (State{Role: RoleMaster}).Annotations()["in_sync"]; ok {
		t.Fatal("in_sync annotated without a known sync state")
	}
}
