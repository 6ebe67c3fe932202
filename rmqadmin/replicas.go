package rmqadmin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// The calls that show a replicated (controller mode) broker group: where
// the NameServers route each broker id, what a broker's HA service does,
// and what the controllers hold (the group's master and SyncStateSet).
// Request codes, response codes and JSON shapes are RocketMQ 5.3.3's:
// RequestCode, ResponseCode, ClusterInfo/BrokerData, HARuntimeInfo,
// BrokerReplicasInfo, GetMetaDataResponseHeader.

// Request codes of the replication calls.
const (
	reqGetBrokerClusterInfo  = 106  // NameServer: DefaultRequestProcessor.getBrokerClusterInfo
	reqGetBrokerHAStatus     = 907  // broker: AdminBrokerProcessor.getBrokerHaStatus
	reqControllerGetMetadata = 1005 // controller: ControllerRequestProcessor.handleControllerGetMetadataInfo
	reqControllerGetSyncData = 1006 // controller: ControllerRequestProcessor.handleControllerGetSyncStateData
)

// CodeControllerNotLeader is what a controller that is not the DLedger
// leader answers to a request for the replicas' state
// (DLedgerController.EventScheduler.appendEvent).
const CodeControllerNotLeader = 2007

// ClusterInfo is a NameServer's view of every broker (GET_BROKER_CLUSTER_INFO).
type ClusterInfo struct {
	// Brokers are the broker groups by broker name.
	Brokers map[string]ClusterBroker `json:"brokerAddrTable"`
	// Clusters are the broker names of each cluster.
	Clusters map[string][]string `json:"clusterAddrTable"`
}

// ClusterBroker is one broker group: the address of each broker id
// registered under its name (0 is the master).
type ClusterBroker struct {
	Cluster    string            `json:"cluster"`
	BrokerName string            `json:"brokerName"`
	Addrs      map[string]string `json:"brokerAddrs"`
}

// IDs returns the group's broker ids, ascending.
func (b ClusterBroker) IDs() []int64 {
	out := make([]int64, 0, len(b.Addrs))
	for k := range b.Addrs {
		if id, err := strconv.ParseInt(k, 10, 64); err == nil {
			out = append(out, id)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Addr returns the address registered for broker id, "" when none.
func (b ClusterBroker) Addr(id int64) string { return b.Addrs[strconv.FormatInt(id, 10)] }

// GetClusterInfo asks a NameServer for every registered broker. The
// NameServer writes the body with fastjson's defaults, which leave the
// Long keys of brokerAddrs unquoted ({0:"ip:port"}); they are quoted
// before decoding.
func GetClusterInfo(ctx context.Context, namesrv string) (*ClusterInfo, error) {
	resp, err := Invoke(ctx, namesrv, reqGetBrokerClusterInfo, nil, nil)
	if err != nil {
		return nil, err
	}
	ci, err := DecodeClusterInfo(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("rocketmq %s: cluster info: %w", namesrv, err)
	}
	return ci, nil
}

// DecodeClusterInfo decodes a GET_BROKER_CLUSTER_INFO body.
func DecodeClusterInfo(body []byte) (*ClusterInfo, error) {
	var ci ClusterInfo
	if err := json.Unmarshal(QuoteNumericKeys(body), &ci); err != nil {
		return nil, err
	}
	if ci.Brokers == nil {
		ci.Brokers = map[string]ClusterBroker{}
	}
	return &ci, nil
}

// HAStatus is a broker's HA runtime info (GET_BROKER_HA_STATUS): as a
// master, its slaves' connections; as a slave, where its HA client
// replicates from.
type HAStatus struct {
	Master bool `json:"master"`
	// MasterCommitLogMaxOffset is the master's commit log end.
	MasterCommitLogMaxOffset int64 `json:"masterCommitLogMaxOffset"`
	// InSyncSlaveNums is the master's SyncStateSet size less itself
	// (controller mode: AutoSwitchHAService.getRuntimeInfo).
	InSyncSlaveNums int `json:"inSyncSlaveNums"`
	// Connections are the master's slave connections.
	Connections []HAConnection `json:"haConnectionInfo"`
	// Client is the slave's HA client.
	Client HAClient `json:"haClientRuntimeInfo"`
}

// HAConnection is one slave connection on the master.
type HAConnection struct {
	// Addr is the slave's address as the master sees the connection.
	Addr           string `json:"addr"`
	SlaveAckOffset int64  `json:"slaveAckOffset"`
	Diff           int64  `json:"diff"`
	InSync         bool   `json:"inSync"`
}

// HAClient is a slave's HA client.
type HAClient struct {
	// MasterAddr is the HA address the slave replicates from: the
	// master's brokerIP2:haListenPort as the NameServers hand it out
	// (BrokerController.handleRegisterBrokerResult); "" while unknown.
	MasterAddr string `json:"masterAddr"`
	MaxOffset  int64  `json:"maxOffset"`
	// LastReadTimestamp is when it last read from the master (ms).
	LastReadTimestamp int64 `json:"lastReadTimestamp"`
}

// GetHAStatus asks a broker for its HA runtime info.
func GetHAStatus(ctx context.Context, broker string) (*HAStatus, error) {
	resp, err := Invoke(ctx, broker, reqGetBrokerHAStatus, nil, nil)
	if err != nil {
		return nil, err
	}
	var h HAStatus
	if err := json.Unmarshal(resp.Body, &h); err != nil {
		return nil, fmt.Errorf("rocketmq %s: HA status: %w", broker, err)
	}
	return &h, nil
}

// ReplicasInfo is what the controllers hold of one broker group
// (BrokerReplicasInfo.ReplicasInfo).
type ReplicasInfo struct {
	MasterBrokerID    int64     `json:"masterBrokerId"`
	MasterAddress     string    `json:"masterAddress"`
	MasterEpoch       int       `json:"masterEpoch"`
	SyncStateSetEpoch int       `json:"syncStateSetEpoch"`
	InSync            []Replica `json:"inSyncReplicas"`
	NotInSync         []Replica `json:"notInSyncReplicas"`
}

// Replica is one replica the controllers know (ReplicaIdentity).
type Replica struct {
	BrokerName string `json:"brokerName"`
	BrokerID   int64  `json:"brokerId"`
	// Address is the replica's brokerIP1:listenPort.
	Address string `json:"brokerAddress"`
	// Alive says whether the controllers get its heartbeats.
	Alive bool `json:"alive"`
}

// DecodeSyncStateData decodes a CONTROLLER_GET_SYNC_STATE_DATA body:
// the groups by broker name (a name the controllers do not know is
// missing).
func DecodeSyncStateData(body []byte) (map[string]ReplicasInfo, error) {
	var w struct {
		Table map[string]ReplicasInfo `json:"replicasInfoTable"`
	}
	if err := json.Unmarshal(QuoteNumericKeys(body), &w); err != nil {
		return nil, err
	}
	if w.Table == nil {
		w.Table = map[string]ReplicasInfo{}
	}
	return w.Table, nil
}

// GetSyncStateData asks one controller for the groups' replicas. Only the
// DLedger leader answers; the others answer CodeControllerNotLeader.
func GetSyncStateData(ctx context.Context, controller string, brokerNames ...string) (map[string]ReplicasInfo, error) {
	body, err := json.Marshal(brokerNames)
	if err != nil {
		return nil, err
	}
	resp, err := Invoke(ctx, controller, reqControllerGetSyncData, nil, body)
	if err != nil {
		return nil, err
	}
	out, err := DecodeSyncStateData(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("rocketmq controller %s: sync state data: %w", controller, err)
	}
	return out, nil
}

// ControllerMetadata is a controller's view of its DLedger group
// (GetMetaDataResponseHeader, sent as header fields).
type ControllerMetadata struct {
	Group      string
	LeaderID   string
	LeaderAddr string
	IsLeader   bool
	Peers      string
}

// GetControllerMetadata asks a controller who leads its group.
func GetControllerMetadata(ctx context.Context, controller string) (*ControllerMetadata, error) {
	resp, err := Invoke(ctx, controller, reqControllerGetMetadata, nil, nil)
	if err != nil {
		return nil, err
	}
	f := resp.ExtFields
	return &ControllerMetadata{Group: f["group"], LeaderID: f["controllerLeaderId"], LeaderAddr: f["controllerLeaderAddress"],
		IsLeader: f["isLeader"] == "true", Peers: f["peers"]}, nil
}

// SyncStateFrom asks the controllers, first first (the one that answered
// last time, say), then the others in order, each within perCall, for
// one group's replicas. It returns the group (ok false when the
// controllers do not know the name), and the controller that answered.
func SyncStateFrom(ctx context.Context, controllers []string, first, brokerName string, perCall time.Duration) (ReplicasInfo, bool, string, error) {
	table, from, errs := inTurn(ctx, controllers, first, perCall, func(cctx context.Context, c string) (map[string]ReplicasInfo, error) {
		return GetSyncStateData(cctx, c, brokerName)
	}, func(error) bool { return false })
	if from == "" {
		return ReplicasInfo{}, false, "", fmt.Errorf("no controller of %v answered for %s: %w", controllers, brokerName, errors.Join(errs...))
	}
	info, ok := table[brokerName]
	return info, ok, from, nil
}

// QuoteNumericKeys turns fastjson's unquoted integer object keys
// ({0:"a",1:"b"}) into JSON strings ({"0":"a","1":"b"}); standard JSON
// passes unchanged.
func QuoteNumericKeys(b []byte) []byte {
	out := make([]byte, 0, len(b)+16)
	inStr, esc := false, false
	// expectKey: the last significant byte outside strings was { or ,
	expectKey := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			out = append(out, c)
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch {
		case c == '"':
			inStr, expectKey = true, false
			out = append(out, c)
		case c == '{' || c == ',':
			expectKey = true
			out = append(out, c)
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			out = append(out, c)
		case expectKey && (c == '-' || (c >= '0' && c <= '9')):
			j := i + 1
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			k := j
			for k < len(b) && (b[k] == ' ' || b[k] == '\t' || b[k] == '\n' || b[k] == '\r') {
				k++
			}
			if k < len(b) && b[k] == ':' {
				out = append(out, '"')
				out = append(out, b[i:j]...)
				out = append(out, '"')
			} else {
				out = append(out, b[i:j]...) // a number in an array
			}
			i = j - 1
			expectKey = false
		default:
			expectKey = false
			out = append(out, c)
		}
	}
	return out
}
