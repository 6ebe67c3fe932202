package rmqadmin

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// Bodies as RocketMQ 5.3.3 writes them (fastjson, fields sorted, Long map
// keys unquoted), with the addresses of a public-mode group: brokerIP1 is
// the EIP, brokerIP2 the host's private IP.
const (
	clusterInfoBody = `{"brokerAddrTable":{"broker-0":{"brokerAddrs":{0:"203.0.113.10:30911",2:"203.0.113.11:30915"},"brokerName":"broker-0","cluster":"pub","enableActingMaster":false,"zoneName":null}},"clusterAddrTable":{"pub":["broker-0"]}}`
	syncStateBody   = `{"replicasInfoTable":{"broker-0":{"inSyncReplicas":[{"alive":true,"brokerAddress":"203.0.113.10:30911","brokerId":1,"brokerName":"broker-0"},{"alive":true,"brokerAddress":"203.0.113.11:30915","brokerId":2,"brokerName":"broker-0"}],"masterAddress":"203.0.113.10:30911","masterBrokerId":1,"masterEpoch":1,"notInSyncReplicas":[{"alive":false,"brokerAddress":"203.0.113.12:30919","brokerId":3,"brokerName":"broker-0"}],"syncStateSetEpoch":2}}}`
	haSlaveBody     = `{"haClientRuntimeInfo":{"activated":true,"lastReadTimestamp":1764611000123,"lastWriteTimestamp":1764611000120,"masterAddr":"10.9.0.11:30912","masterFlushOffset":0,"maxOffset":4096,"transferredByteInSecond":0},"haConnectionInfo":[],"inSyncSlaveNums":0,"master":false,"masterCommitLogMaxOffset":0}`
	haMasterBody    = `{"haClientRuntimeInfo":{"activated":false,"lastReadTimestamp":0,"lastWriteTimestamp":0,"masterFlushOffset":0,"maxOffset":0,"transferredByteInSecond":0},"haConnectionInfo":[{"addr":"10.9.0.12:41234","diff":0,"inSync":true,"slaveAckOffset":4096,"transferFromWhere":0,"transferredByteInSecond":0}],"inSyncSlaveNums":1,"master":true,"masterCommitLogMaxOffset":4096}`
)

func TestQuoteNumericKeys(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{0:"a",1:"b"}`, `{"0":"a","1":"b"}`},
		{`{ 12 : "a" , -1:"b"}`, `{ "12" : "a" , "-1":"b"}`},
		{`{"k":[1,2,3],"n":5}`, `{"k":[1,2,3],"n":5}`},
		{`{"s":"{0:\"x\",1:2}"}`, `{"s":"{0:\"x\",1:2}"}`},
		{`{"a":{7:{8:"x"}}}`, `{"a":{"7":{"8":"x"}}}`},
		{`{"e":"\\",3:"y"}`, `{"e":"\\","3":"y"}`},
	} {
		if got := string(QuoteNumericKeys([]byte(tc.in))); got != tc.want {
			t.Errorf("QuoteNumericKeys(%s) = %s, want %s", tc.in, got, tc.want)
		}
		var v any
		if err := json.Unmarshal(QuoteNumericKeys([]byte(tc.in)), &v); err != nil {
			t.Errorf("%s: not JSON after quoting: %v", tc.in, err)
		}
	}
}

func TestDecodeClusterInfo(t *testing.T) {
	ci, err := DecodeClusterInfo([]byte(clusterInfoBody))
	if err != nil {
		t.Fatal(err)
	}
	b := ci.Brokers["broker-0"]
	if b.Cluster != "pub" || !reflect.DeepEqual(b.IDs(), []int64{0, 2}) || b.Addr(0) != "203.0.113.10:30911" || b.Addr(2) != "203.0.113.11:30915" || b.Addr(1) != "" {
		t.Fatalf("broker-0 = %+v (ids %v)", b, b.IDs())
	}
	if !reflect.DeepEqual(ci.Clusters["pub"], []string{"broker-0"}) {
		t.Fatalf("clusters %v", ci.Clusters)
	}
	if empty, err := DecodeClusterInfo([]byte(`{"brokerAddrTable":{},"clusterAddrTable":{}}`)); err != nil || len(empty.Brokers) != 0 {
		t.Fatalf("empty: %+v %v", empty, err)
	}
}

func TestDecodeSyncStateData(t *testing.T) {
	table, err := DecodeSyncStateData([]byte(syncStateBody))
	if err != nil {
		t.Fatal(err)
	}
	want := ReplicasInfo{MasterBrokerID: 1, MasterAddress: "203.0.113.10:30911", MasterEpoch: 1, SyncStateSetEpoch: 2,
		InSync:    []Replica{{"broker-0", 1, "203.0.113.10:30911", true}, {"broker-0", 2, "203.0.113.11:30915", true}},
		NotInSync: []Replica{{"broker-0", 3, "203.0.113.12:30919", false}}}
	if !reflect.DeepEqual(table["broker-0"], want) {
		t.Fatalf("got %+v\nwant %+v", table["broker-0"], want)
	}
	// A group without a master yet: masterBrokerId is null.
	table, err = DecodeSyncStateData([]byte(`{"replicasInfoTable":{"b":{"inSyncReplicas":[],"masterBrokerId":null,"masterEpoch":0,"notInSyncReplicas":[{"alive":true,"brokerAddress":"10.0.0.1:1","brokerId":1,"brokerName":"b"}],"syncStateSetEpoch":0}}}`))
	if err != nil || table["b"].MasterBrokerID != 0 || len(table["b"].NotInSync) != 1 {
		t.Fatalf("no master: %+v %v", table, err)
	}
}

func TestDecodeHAStatus(t *testing.T) {
	var s HAStatus
	if err := json.Unmarshal([]byte(haSlaveBody), &s); err != nil || s.Master || s.Client.MasterAddr != "10.9.0.11:30912" || s.Client.MaxOffset != 4096 {
		t.Fatalf("slave: %+v %v", s, err)
	}
	var m HAStatus
	if err := json.Unmarshal([]byte(haMasterBody), &m); err != nil || !m.Master || m.InSyncSlaveNums != 1 || len(m.Connections) != 1 || !m.Connections[0].InSync {
		t.Fatalf("master: %+v %v", m, err)
	}
}

// The calls send the request codes and bodies RocketMQ expects, and
// SyncStateFrom goes past a controller that is not the leader.
func TestReplicationCalls(t *testing.T) {
	seen := make(chan header, 10)
	answer := func(code int, ext map[string]string, body string) func(header, []byte) (header, []byte) {
		return func(h header, b []byte) (header, []byte) {
			seen <- h
			var names []string
			if h.Code == reqControllerGetSyncData && (json.Unmarshal(b, &names) != nil || len(names) != 1) {
				return header{Code: CodeSystemError, Remark: "body " + string(b)}, nil
			}
			return header{Code: code, ExtFields: ext}, []byte(body)
		}
	}
	ns := fakeServer(t, answer(CodeSuccess, nil, clusterInfoBody))
	broker := fakeServer(t, answer(CodeSuccess, nil, haSlaveBody))
	follower := fakeServer(t, answer(CodeControllerNotLeader, nil, ""))
	leader := fakeServer(t, answer(CodeSuccess, map[string]string{"controllerLeaderAddress": "10.0.0.1:9878", "isLeader": "true", "group": "g"}, syncStateBody))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if ci, err := GetClusterInfo(ctx, ns); err != nil || ci.Brokers["broker-0"].Addr(2) != "203.0.113.11:30915" {
		t.Fatalf("cluster info %+v %v", ci, err)
	}
	if h := <-seen; h.Code != 106 {
		t.Fatalf("cluster info sent code %d", h.Code)
	}
	if s, err := GetHAStatus(ctx, broker); err != nil || s.Client.MasterAddr != "10.9.0.11:30912" {
		t.Fatalf("HA status %+v %v", s, err)
	}
	if h := <-seen; h.Code != 907 {
		t.Fatalf("HA status sent code %d", h.Code)
	}
	info, ok, from, err := SyncStateFrom(ctx, []string{follower, leader}, "", "broker-0", 3*time.Second)
	if err != nil || !ok || from != leader || info.MasterBrokerID != 1 {
		t.Fatalf("SyncStateFrom = %+v %v %s %v", info, ok, from, err)
	}
	for i := 0; i < 2; i++ {
		if h := <-seen; h.Code != 1006 {
			t.Fatalf("sync state data sent code %d", h.Code)
		}
	}
	if _, ok, _, err := SyncStateFrom(ctx, []string{leader}, "", "broker-9", 3*time.Second); err != nil || ok {
		t.Fatalf("an unknown group: ok %v err %v", ok, err)
	}
	<-seen
	if _, _, _, err := SyncStateFrom(ctx, []string{follower}, "", "broker-0", 3*time.Second); !IsCode(err, CodeControllerNotLeader) {
		t.Fatalf("only a follower: %v", err)
	}
	<-seen
	md, err := GetControllerMetadata(ctx, leader)
	if err != nil || !md.IsLeader || md.LeaderAddr != "10.0.0.1:9878" || md.Group != "g" {
		t.Fatalf("metadata %+v %v", md, err)
	}
}
