package replica

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Record is a replica's state as its keeper last recorded it in Consul KV,
// at Key: one record per allocation slot, so a replacement overwrites its
// predecessor's.
type Record struct {
	State
	Cluster    string `json:"cluster"`
	Namespace  string `json:"namespace"`
	JobID      string `json:"job_id"`
	Group      string `json:"group"`
	AllocIndex int    `json:"alloc_index"`
	AllocID    string `json:"alloc_id"`
	NodeName   string `json:"node_name"`
	// Address is the replica's brokerIP1:listenPort (the EIP in public
	// mode); HAAddress its own brokerIP2:haListenPort.
	Address   string `json:"address"`
	HAAddress string `json:"ha_address"`
	// ObservedAt is when the keeper last wrote the record (it rewrites
	// it every RecordRefresh); ChangedAt when the state last changed.
	ObservedAt time.Time `json:"observed_at"`
	ChangedAt  time.Time `json:"changed_at"`
}

// Dir is the KV folder of the replica records under the plugin's
// consul.kv_prefix.
func Dir(prefix string) string { return prefix + "/replicas/" }

// Key is a record's key: <prefix>/replicas/<cluster>/<broker
// name>/<namespace>/<job>/<group>/<alloc index>.
func Key(prefix string, r Record) string {
	ns := r.Namespace
	if ns == "" {
		ns = "default"
	}
	return Dir(prefix) + strings.Join([]string{r.Cluster, r.BrokerName, ns, r.JobID, r.Group, strconv.Itoa(r.AllocIndex)}, "/")
}

// Encode is the record's value.
func (r Record) Encode() ([]byte, error) { return json.Marshal(r) }

// Decode reads a record's value; the key must be the record's own.
func Decode(prefix, key string, value []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(value, &r); err != nil {
		return r, fmt.Errorf("replica record %s: %w", key, err)
	}
	if r.Cluster == "" || r.BrokerName == "" {
		return r, fmt.Errorf("replica record %s: no cluster or broker name", key)
	}
	if want := Key(prefix, r); want != key {
		return r, fmt.Errorf("replica record %s: its fields make the key %s", key, want)
	}
	return r, nil
}
