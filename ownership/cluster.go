package ownership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// ErrClusterTaken is wrapped by ClaimCluster's refusal: the cluster id
// belongs to another Nomad namespace.
var ErrClusterTaken = errors.New("cluster id belongs to another namespace")

// Tenant is the Nomad namespace a cluster id belongs to, and the jobs of
// that namespace that have used it. A cluster is usually several jobs (its
// NameServers, one or more broker groups); all must be in one namespace.
// Within it, each slot belongs to one job (Owner.SameSlot).
type Tenant struct {
	Namespace string    `json:"namespace"`
	Jobs      []string  `json:"jobs"`
	ClaimedAt time.Time `json:"claimed_at"`
}

func nsOrDefault(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

// JobExists tells whether Nomad still knows a job (nomadstate.Client has it).
type JobExists func(ctx context.Context, namespace, jobID string) (bool, error)

// ClusterKey is the Consul key of a cluster's tenant record.
func (s *Store) ClusterKey(cluster string) (string, error) {
	if err := checkKey(cluster); err != nil || strings.Contains(cluster, "/") {
		return "", fmt.Errorf("cluster id %q cannot be used as a consul key segment", cluster)
	}
	return s.prefix + "/clusters/" + cluster, nil
}

// ClaimCluster makes cluster belong to namespace and records jobID among
// its jobs. The first namespace to claim a cluster id owns it; a job of any
// other namespace naming it is refused (an error wrapping ErrClusterTaken
// that names the owner and the fix) while any of the owner's recorded jobs
// still exists in Nomad. exists may be nil when Nomad cannot be asked; then
// no claim is ever taken over.
func (s *Store) ClaimCluster(ctx context.Context, cluster, namespace, jobID string, exists JobExists) error {
	k, err := s.ClusterKey(cluster)
	if err != nil {
		return err
	}
	if jobID == "" {
		return fmt.Errorf("claim cluster %s: no job id", cluster)
	}
	namespace = nsOrDefault(namespace)
	for range 8 {
		cur, idx, err := s.GetCluster(ctx, cluster)
		if err != nil {
			return err
		}
		next := Tenant{Namespace: namespace, Jobs: []string{jobID}, ClaimedAt: time.Now().UTC()}
		switch {
		case cur != nil && nsOrDefault(cur.Namespace) == namespace:
			if slices.Contains(cur.Jobs, jobID) {
				return nil
			}
			next = *cur
			next.Jobs = append(slices.Clone(cur.Jobs), jobID)
		case cur != nil:
			live, err := anyJobExists(ctx, exists, cur)
			if err != nil {
				return fmt.Errorf("claim cluster %s: learn whether the jobs of namespace %s that use it still exist: %w", cluster, nsOrDefault(cur.Namespace), err)
			}
			if live != "" {
				return fmt.Errorf("rocketmq.cluster: cluster %q belongs to namespace %q (job %q uses it): give this job's cluster another name, or stop and purge that namespace's jobs of cluster %q first: %w",
					cluster, nsOrDefault(cur.Namespace), live, cluster, ErrClusterTaken)
			}
		}
		data, err := json.Marshal(next)
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

// anyJobExists returns one of t's jobs that Nomad still knows ("" when
// none does). Without exists every job counts as existing.
func anyJobExists(ctx context.Context, exists JobExists, t *Tenant) (string, error) {
	for _, j := range t.Jobs {
		if exists == nil {
			return j, nil
		}
		ok, err := exists(ctx, nsOrDefault(t.Namespace), j)
		if err != nil {
			return "", err
		}
		if ok {
			return j, nil
		}
	}
	return "", nil
}

// TenantGone reports whether none of t's jobs exists in Nomad any more.
func TenantGone(ctx context.Context, exists JobExists, t Tenant) (bool, error) {
	live, err := anyJobExists(ctx, exists, &t)
	return live == "" && err == nil, err
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
