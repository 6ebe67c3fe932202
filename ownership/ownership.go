// Package ownership records in Consul KV which allocation owns which cloud
// resource (an EIP, a ULB backend), with check-and-set so that concurrent
// claimants never both win.
//
// Records live at <prefix>/owners/<kind>/<key> as JSON. The binders key EIP
// records by EIP id and backend records by slot (ULB, VServer, cluster,
// role, allocation index), so the replacement of an allocation finds its
// predecessor's record. Layout and rules: docs/binding.md.
package ownership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// Record kinds.
const (
	KindEIP     = "eip"
	KindBackend = "backend"
)

// DefaultPrefix is the KV prefix New uses when given "".
const DefaultPrefix = "rocketmq-nomad"

// Owner says which allocation holds a resource.
type Owner struct {
	AllocID string `json:"alloc_id"`
	NodeID  string `json:"node_id,omitempty"`
	UHostID string `json:"uhost_id"`
	// Namespace, JobID and Group are the Nomad job the allocation belongs
	// to: with Cluster, Role and AllocIndex they make the slot. Records
	// written before they existed leave them empty.
	Namespace  string `json:"namespace,omitempty"`
	JobID      string `json:"job_id,omitempty"`
	Group      string `json:"group,omitempty"`
	Job        string `json:"job,omitempty"`
	Cluster    string `json:"cluster"`
	Role       string `json:"role"`
	AllocIndex int    `json:"alloc_index"`
	// Resource is the EIP id or the backend id ("" for a backend claimed
	// before it was allocated: then UHostID and Port identify it).
	Resource string `json:"resource,omitempty"`
	// Port is the backend's port on UHostID (ULB backends only).
	Port int `json:"port,omitempty"`
	// UpdatedAt is when the record was written; Claim sets it when zero.
	UpdatedAt time.Time `json:"updated_at"`
	// ReleasingUntil, when set, says the owner is releasing the resource
	// and holds it until then: nobody else acts on it before the record
	// is gone or the time has passed (see docs/binding.md, "Release").
	ReleasingUntil *time.Time `json:"releasing_until,omitempty"`
}

// Slot is [namespace/job/group/]cluster/role/alloc-index, e.g.
// "default/rmq-orders/broker/orders/broker/0": what an allocation and its
// replacements have in common.
func (o Owner) Slot() string {
	s := o.Cluster + "/" + o.Role + "/" + strconv.Itoa(o.AllocIndex)
	if o.JobID != "" {
		s = o.namespace() + "/" + o.JobID + "/" + o.Group + "/" + s
	}
	return s
}

func (o Owner) namespace() string {
	if o.Namespace == "" {
		return "default"
	}
	return o.Namespace
}

// SameSlot reports whether two owners are allocations of the same slot:
// the same cluster, role and allocation index, and, when both records
// name their job, the same namespace, job and group.
func (o Owner) SameSlot(p Owner) bool {
	if o.Cluster != p.Cluster || o.Role != p.Role || o.AllocIndex != p.AllocIndex {
		return false
	}
	if o.JobID == "" || p.JobID == "" {
		return true // a record from before jobs were recorded
	}
	return o.namespace() == p.namespace() && o.JobID == p.JobID && o.Group == p.Group
}

// SameJob reports whether two owners belong to the same Nomad job.
func (o Owner) SameJob(p Owner) bool {
	return o.namespace() == p.namespace() && o.JobID == p.JobID
}

// Releasing reports whether the owner is, at now, still releasing.
func (o Owner) Releasing(now time.Time) bool {
	return o.ReleasingUntil != nil && now.Before(*o.ReleasingUntil)
}

// Validate checks the fields a claim needs.
func (o Owner) Validate() error {
	var missing []string
	if o.AllocID == "" {
		missing = append(missing, "alloc id")
	}
	if o.Cluster == "" {
		missing = append(missing, "cluster")
	}
	if o.Role == "" {
		missing = append(missing, "role")
	}
	if len(missing) > 0 {
		return fmt.Errorf("owner record: %s not set", strings.Join(missing, ", "))
	}
	if o.AllocIndex < 0 {
		return fmt.Errorf("owner record: alloc index %d is negative", o.AllocIndex)
	}
	return nil
}

// Store reads and writes owner records. It is safe for concurrent use.
type Store struct {
	kv     *consulapi.KV
	prefix string
}

// New returns a store under prefix ("" means DefaultPrefix).
func New(client *consulapi.Client, prefix string) *Store {
	prefix = strings.Trim(prefix, "/")
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Store{kv: client.KV(), prefix: prefix}
}

// Key is the Consul key of a record.
func (s *Store) Key(kind, key string) (string, error) {
	if kind != KindEIP && kind != KindBackend {
		return "", fmt.Errorf("owner record kind %q is neither %q nor %q", kind, KindEIP, KindBackend)
	}
	if err := checkKey(key); err != nil {
		return "", err
	}
	return s.prefix + "/owners/" + kind + "/" + key, nil
}

// checkKey accepts slash-separated segments of letters, digits and ._-:@.
func checkKey(key string) error {
	if key == "" {
		return errors.New("owner record key is empty")
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("owner record key %q has an empty, . or .. segment", key)
		}
		for _, r := range seg {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-:@", r)
			if !ok {
				return fmt.Errorf("owner record key %q: character %q not allowed (letters, digits, . _ - : @ and /)", key, r)
			}
		}
	}
	return nil
}

// Get returns the record and its modify index; (nil, 0, nil) when there is
// none. Pass the index to Claim to replace exactly this version.
func (s *Store) Get(ctx context.Context, kind, key string) (*Owner, uint64, error) {
	k, err := s.Key(kind, key)
	if err != nil {
		return nil, 0, err
	}
	q := (&consulapi.QueryOptions{RequireConsistent: true}).WithContext(ctx)
	pair, _, err := s.kv.Get(k, q)
	if err != nil {
		return nil, 0, fmt.Errorf("read owner record %s from consul: %w", k, err)
	}
	if pair == nil {
		return nil, 0, nil
	}
	var o Owner
	if err := json.Unmarshal(pair.Value, &o); err != nil {
		return nil, pair.ModifyIndex, fmt.Errorf("owner record %s in consul is not valid JSON (%v): fix or delete the key", k, err)
	}
	return &o, pair.ModifyIndex, nil
}

// Claim writes o as the record if its modify index is still prevIndex (0:
// only if there is no record). ok is false when someone else wrote or
// deleted it first: re-read and decide again.
func (s *Store) Claim(ctx context.Context, kind, key string, o Owner, prevIndex uint64) (bool, error) {
	k, err := s.Key(kind, key)
	if err != nil {
		return false, err
	}
	if err := o.Validate(); err != nil {
		return false, err
	}
	if o.UpdatedAt.IsZero() {
		o.UpdatedAt = time.Now().UTC()
	}
	data, err := json.Marshal(o)
	if err != nil {
		return false, fmt.Errorf("encode owner record %s: %w", k, err)
	}
	ok, _, err := s.kv.CAS(&consulapi.KVPair{Key: k, Value: data, ModifyIndex: prevIndex}, (&consulapi.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("write owner record %s to consul: %w", k, err)
	}
	return ok, nil
}

// Release deletes the record only while it names allocID (check-and-set,
// re-read on a race). No record, or a record of another allocation, is left
// alone and is not an error.
func (s *Store) Release(ctx context.Context, kind, key string, allocID string) error {
	k, err := s.Key(kind, key)
	if err != nil {
		return err
	}
	for range 8 {
		o, idx, err := s.Get(ctx, kind, key)
		if err != nil {
			return err
		}
		if o == nil || o.AllocID != allocID {
			return nil
		}
		ok, _, err := s.kv.DeleteCAS(&consulapi.KVPair{Key: k, ModifyIndex: idx}, (&consulapi.WriteOptions{}).WithContext(ctx))
		if err != nil {
			return fmt.Errorf("delete owner record %s from consul: %w", k, err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("delete owner record %s from consul: it kept changing under us; try again", k)
}

// SeedEIPKey is the seed's Consul key holding the EIP id of a broker
// allocation: brokerEip/<cluster>/eipId/<index>.
func SeedEIPKey(cluster string, index int) string {
	return "brokerEip/" + cluster + "/eipId/" + strconv.Itoa(index)
}

// SeedKeyError is a seed-layout lookup that fails for good: the key cannot
// be formed, is missing, or does not hold an EIP id. Retrying does not help
// until someone fixes the key or the job. A failure to reach Consul is not a
// SeedKeyError.
type SeedKeyError struct {
	// Key is the Consul key ("" when it cannot be formed).
	Key string
	msg string
}

func (e *SeedKeyError) Error() string { return e.msg }

// EIPIDFromSeedLayout reads the EIP id of a broker allocation from the
// seed's layout, brokerEip/<cluster>/eipId/<index> (not under the prefix).
// A key that is missing or malformed is a *SeedKeyError; any other error
// (Consul unreachable, a deadline) is worth retrying.
func (s *Store) EIPIDFromSeedLayout(ctx context.Context, cluster string, index int) (string, error) {
	if cluster == "" || strings.Contains(cluster, "/") {
		return "", &SeedKeyError{msg: fmt.Sprintf("cluster name %q cannot be used in consul key brokerEip/<cluster>/eipId/<index>", cluster)}
	}
	if index < 0 {
		return "", &SeedKeyError{msg: fmt.Sprintf("allocation index %d is negative", index)}
	}
	k := SeedEIPKey(cluster, index)
	pair, _, err := s.kv.Get(k, (&consulapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("read eip id of cluster %s allocation %d from consul key %s: %w", cluster, index, k, err)
	}
	if pair == nil {
		return "", &SeedKeyError{Key: k, msg: fmt.Sprintf("consul key %s is missing: put the EIP id of broker allocation %d of cluster %s there (consul kv put %s eip-...) or set the EIP id in the job", k, index, cluster, k)}
	}
	id := strings.Trim(strings.TrimSpace(string(pair.Value)), `"`)
	if id == "" || strings.ContainsAny(id, " \t\r\n/") {
		return "", &SeedKeyError{Key: k, msg: fmt.Sprintf("consul key %s holds %q, which is not an EIP id (expected e.g. eip-xxxxxxxx): put the EIP id of broker allocation %d of cluster %s there (consul kv put %s eip-...) or set the EIP id in the job", k, string(pair.Value), index, cluster, k)}
	}
	return id, nil
}

// Records is the part of a Store that Restore needs (binders hold it as an
// interface so tests can wrap it).
type Records interface {
	Get(ctx context.Context, kind, key string) (*Owner, uint64, error)
	Claim(ctx context.Context, kind, key string, o Owner, prevIndex uint64) (bool, error)
	Release(ctx context.Context, kind, key string, allocID string) error
}

// Restore undoes a claim allocID made on kind/key: it puts back prev, the
// record the claim replaced, or deletes the record when there was none. It
// leaves the record alone once another allocation has claimed it since.
func Restore(ctx context.Context, r Records, kind, key, allocID string, prev *Owner) error {
	if prev == nil {
		return r.Release(ctx, kind, key, allocID)
	}
	for range 4 {
		cur, idx, err := r.Get(ctx, kind, key)
		if err != nil {
			return err
		}
		if cur == nil || cur.AllocID != allocID {
			return nil // someone else's now: leave it
		}
		ok, err := r.Claim(ctx, kind, key, *prev, idx)
		if err != nil || ok {
			return err
		}
	}
	return fmt.Errorf("restore owner record %s/%s: it kept changing under us; try again", kind, key)
}
