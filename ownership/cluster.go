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

// ErrClusterTaken is wrapped by ClaimCluster's refusal: the cluster id
// belongs to another Nomad job.
var ErrClusterTaken = errors.New("cluster id belongs to another job")

// Tenant is the Nomad job a cluster id belongs to.
type Tenant struct {
	Namespace string    `json:"namespace"`
	JobID     string    `json:"job_id"`
	ClaimedAt time.Time `json:"claimed_at"`
}

func (t Tenant) namespace() string {
	if t.Namespace == "" {
		return "default"
	}
	return t.Namespace
}

func (t Tenant) same(u Tenant) bool { return t.namespace() == u.namespace() && t.JobID == u.JobID }

// JobExists tells whether Nomad still knows a job (nomadstate.Client has it).
type JobExists func(ctx context.Context, namespace, jobID string) (bool, error)

// ClusterKey is the Consul key of a cluster's tenant record.
func (s *Store) ClusterKey(cluster string) (string, error) {
	if err := checkKey(cluster); err != nil || strings.Contains(cluster, "/") {
		return "", fmt.Errorf("cluster id %q cannot be used as a consul key segment", cluster)
	}
	return s.prefix + "/clusters/" + cluster, nil
}

// ClaimCluster makes cluster belong to t: the first Nomad job to claim a
// cluster id owns it, and every other job naming it is refused (an error
// wrapping ErrClusterTaken that names the owner job and the fix). A claim
// whose job Nomad no longer knows (purged) is taken over; exists may be nil
// when Nomad cannot be asked, and then no claim is ever taken over.
func (s *Store) ClaimCluster(ctx context.Context, cluster string, t Tenant, exists JobExists) error {
	k, err := s.ClusterKey(cluster)
	if err != nil {
		return err
	}
	if t.JobID == "" {
		return fmt.Errorf("claim cluster %s: no job id", cluster)
	}
	for range 8 {
		cur, idx, err := s.GetCluster(ctx, cluster)
		if err != nil {
			return err
		}
		if cur != nil && cur.same(t) {
			return nil
		}
		if cur != nil {
			free := false
			if exists != nil {
				ok, err := exists(ctx, cur.Namespace, cur.JobID)
				if err != nil {
					return fmt.Errorf("claim cluster %s: learn whether its owner job %s (namespace %s) still exists: %w", cluster, cur.JobID, cur.namespace(), err)
				}
				free = !ok
			}
			if !free {
				return fmt.Errorf("rocketmq.cluster: cluster %q belongs to job %q in namespace %q: give this job's cluster another name, or stop and purge that job first: %w",
					cluster, cur.JobID, cur.namespace(), ErrClusterTaken)
			}
		}
		t.ClaimedAt = time.Now().UTC()
		data, err := json.Marshal(t)
		if err != nil {
			return fmt.Errorf("encode cluster record %s: %w", k, err)
		}
		ok, _, err := s.kv.CAS(&consulapi.KVPair{Key: k, Value: data, ModifyIndex: idx}, (&consulapi.WriteOptions{}).WithContext(ctx))
		if err != nil {
			return fmt.Errorf("write cluster record %s to consul: %w", k, err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("claim cluster %s: its record kept changing under us; try again", cluster)
}

// GetCluster returns the cluster's tenant record and its modify index
// (nil, 0 when unclaimed).
func (s *Store) GetCluster(ctx context.Context, cluster string) (*Tenant, uint64, error) {
	k, err := s.ClusterKey(cluster)
	if err != nil {
		return nil, 0, err
	}
	pair, _, err := s.kv.Get(k, (&consulapi.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return nil, 0, fmt.Errorf("read cluster record %s from consul: %w", k, err)
	}
	if pair == nil {
		return nil, 0, nil
	}
	var t Tenant
	if err := json.Unmarshal(pair.Value, &t); err != nil {
		return nil, pair.ModifyIndex, fmt.Errorf("cluster record %s in consul is not valid JSON (%v): fix or delete the key", k, err)
	}
	return &t, pair.ModifyIndex, nil
}

// DropCluster deletes the cluster's record if it is still at idx.
func (s *Store) DropCluster(ctx context.Context, cluster string, idx uint64) (bool, error) {
	k, err := s.ClusterKey(cluster)
	if err != nil {
		return false, err
	}
	ok, _, err := s.kv.DeleteCAS(&consulapi.KVPair{Key: k, ModifyIndex: idx}, (&consulapi.WriteOptions{}).WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("delete cluster record %s from consul: %w", k, err)
	}
	return ok, nil
}

// SeedEIPOwner finds which cluster's seed layout (brokerEip/<cluster>/eipId/
// <index>) lists eipID; found is false when none does.
func (s *Store) SeedEIPOwner(ctx context.Context, eipID string) (cluster string, index int, found bool, err error) {
	pairs, _, err := s.kv.List("brokerEip/", (&consulapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return "", 0, false, fmt.Errorf("list consul keys under brokerEip/: %w", err)
	}
	for _, p := range pairs {
		parts := strings.Split(p.Key, "/")
		if len(parts) != 4 || parts[2] != "eipId" {
			continue
		}
		if strings.Trim(strings.TrimSpace(string(p.Value)), `"`) != eipID {
			continue
		}
		i, err := strconv.Atoi(parts[3])
		if err != nil {
			continue
		}
		return parts[1], i, true, nil
	}
	return "", 0, false, nil
}

// Entry is one owner record as listed.
type Entry struct {
	Kind  string
	Key   string // the key under <prefix>/owners/<kind>/
	Owner Owner
	Index uint64
}

// List returns every owner record under the prefix. Records that do not
// decode are skipped and counted in bad, so one broken key does not stop
// the others from being looked after.
func (s *Store) List(ctx context.Context) (entries []Entry, bad int, err error) {
	root := s.prefix + "/owners/"
	pairs, _, err := s.kv.List(root, (&consulapi.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return nil, 0, fmt.Errorf("list owner records under %s: %w", root, err)
	}
	for _, p := range pairs {
		rest := strings.TrimPrefix(p.Key, root)
		kind, key, ok := strings.Cut(rest, "/")
		if !ok || (kind != KindEIP && kind != KindBackend) {
			bad++
			continue
		}
		var o Owner
		if err := json.Unmarshal(p.Value, &o); err != nil {
			bad++
			continue
		}
		entries = append(entries, Entry{Kind: kind, Key: key, Owner: o, Index: p.ModifyIndex})
	}
	return entries, bad, nil
}

// Clusters lists the cluster tenant records.
func (s *Store) Clusters(ctx context.Context) (map[string]Tenant, map[string]uint64, error) {
	root := s.prefix + "/clusters/"
	pairs, _, err := s.kv.List(root, (&consulapi.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return nil, nil, fmt.Errorf("list cluster records under %s: %w", root, err)
	}
	out, idx := map[string]Tenant{}, map[string]uint64{}
	for _, p := range pairs {
		var t Tenant
		if json.Unmarshal(p.Value, &t) != nil {
			continue
		}
		c := strings.TrimPrefix(p.Key, root)
		out[c], idx[c] = t, p.ModifyIndex
	}
	return out, idx, nil
}

// Prefix is the store's KV prefix.
func (s *Store) Prefix() string { return s.prefix }
