// Package status is the operator's view of the bindings: which cluster
// belongs to which Nomad namespace and which of its jobs use it, which
// allocation owns which EIP and ULB
// backend, what Nomad and UCloud say about each, and what the reconciler
// (the owning client's re-check and the collector) will do about it; and
// of the replicas of replicated broker groups, as their keepers recorded
// them (replicas.go).
//
// It is split the usual way: Observe reads Consul, Nomad and UCloud into a
// Snapshot (plain data); Decide turns a Snapshot into a Report (pure, no
// I/O, table-tested); Render and RenderJSON print a Report. It never
// changes anything. The command is `rmq-driver status`; see
// docs/reference.md, "rmq-driver status".
package status

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/nomadstate"
	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// Records reads owner and cluster records; *ownership.Store has it.
type Records interface {
	Prefix() string
	List(ctx context.Context) ([]ownership.Entry, int, error)
	Get(ctx context.Context, kind, key string) (*ownership.Owner, uint64, error)
	Clusters(ctx context.Context) (map[string]ownership.Tenant, map[string]uint64, error)
	GetCluster(ctx context.Context, cluster string) (*ownership.Tenant, uint64, error)
}

// KeyLister lists the raw Consul keys under a prefix, so that records the
// store cannot decode are reported instead of silently skipped.
type KeyLister interface {
	Keys(ctx context.Context, prefix string) ([]string, error)
}

// Allocs reads allocations; *nomadstate.Client has it.
type Allocs interface {
	Alloc(ctx context.Context, namespace, id string) (nomadstate.Alloc, error)
}

// Cloud reads UCloud; *ucloudapi.Client has it.
type Cloud interface {
	DescribeEIP(ctx context.Context, id string) (*ucloudapi.EIP, error)
	DescribeVServer(ctx context.Context, ulbID, vserverID string) ([]ucloudapi.Backend, error)
}

// Services lists the instances of a cluster's NameServer Consul service.
type Services interface {
	// NameServers returns the service's name and its instances (passing
	// or not).
	NameServers(ctx context.Context, cluster string) (string, []Instance, error)
}

// Deps is what Observe reads from. Records, Keys, Allocs and JobExists are
// required; Cloud nil means no UCloud access (the cloud columns then say
// so); Services nil leaves the NameServer services out.
type Deps struct {
	Records   Records
	Keys      KeyLister
	Allocs    Allocs
	JobExists ownership.JobExists
	Cloud     Cloud
	Services  Services
	// Replicas nil leaves the replicas of replicated groups out.
	Replicas ReplicaLister
	// Cluster, when set, limits the report to that cluster.
	Cluster string
	// EIPIDs and VServers are checked for resources that carry no owner
	// record (only these: the account is never scanned).
	EIPIDs   []string
	VServers []VServerRef
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// VServerRef names a ULB VServer.
type VServerRef struct{ ULB, VServer string }

func (v VServerRef) String() string { return v.ULB + "/" + v.VServer }

// ParseVServerRef parses "ulb-id/vserver-id".
func ParseVServerRef(s string) (VServerRef, error) {
	ulb, vs, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok || ulb == "" || vs == "" || strings.Contains(vs, "/") {
		return VServerRef{}, fmt.Errorf("vserver %q is not <ulb id>/<vserver id>, e.g. ulb-xxxx/vserver-yyyy", s)
	}
	return VServerRef{ULB: ulb, VServer: vs}, nil
}

// Snapshot is everything Observe saw: plain data, the only input of Decide.
type Snapshot struct {
	Now         time.Time
	Prefix      string
	Cluster     string // the filter ("" for all)
	CloudAccess bool
	// Tenants are the tenant records <prefix>/clusters/<cluster>, by
	// cluster.
	Tenants map[string]TenantObs
	// Records are all owner records (those outside the filter too, which
	// are not observed further but tell which resources carry a record).
	Records []RecordObs
	// Unreadable are keys under <prefix>/owners/ or <prefix>/clusters/
	// that do not decode.
	Unreadable []Unreadable
	// EIPs and VServers are what UCloud said, by EIP id and by
	// "ulb/vserver".
	EIPs     map[string]EIPObs
	VServers map[string]VServerObs
	// AskedEIPs and AskedVServers are the ids given for the unrecorded
	// resource check.
	AskedEIPs     []string
	AskedVServers []VServerRef
	// NameServers are the clusters' NameServer services, by cluster.
	NameServers map[string]ServiceObs
	// Replicas are the replica records of replicated broker groups (in
	// the filter); ReplicaErrs what could not be read of them.
	Replicas    []ReplicaObs
	ReplicaErrs []string
}

// TenantObs is a tenant record and whether Nomad knows each of its jobs.
type TenantObs struct {
	Tenant ownership.Tenant
	// Jobs are what Nomad said about Tenant.Jobs, in their order (each
	// job once).
	Jobs []JobObs
}

// JobObs is what Nomad said about a job of the tenant's namespace.
type JobObs struct {
	ID     string
	Exists bool
	Err    string // not empty: Nomad could not be asked
}

// RecordObs is one owner record and what Nomad said about its allocation.
type RecordObs struct {
	Entry ownership.Entry
	// Observed is false for records outside the cluster filter.
	Observed bool
	Alloc    AllocObs
}

// AllocObs is what Nomad said about an allocation.
type AllocObs struct {
	Found bool // false with Err "": Nomad does not know it
	Alloc nomadstate.Alloc
	Err   string
}

// Unreadable is a record key that does not decode.
type Unreadable struct {
	Key    string // the full Consul key
	Reason string
}

// EIPObs is what DescribeEIP said.
type EIPObs struct {
	EIP      *ucloudapi.EIP
	NotFound bool
	Err      string
}

// VServerObs is what DescribeVServer said.
type VServerObs struct {
	Backends []ucloudapi.Backend
	NotFound bool
	Err      string
}

// ServiceObs is a NameServer service's instances.
type ServiceObs struct {
	Service   string
	Instances []Instance
	Err       string
}

// Instance is one instance of a Consul service.
type Instance struct {
	Node    string `json:"node"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	// Status is the aggregated health: passing, warning or critical.
	Status string `json:"status"`
}

// Observe reads the records, asks Nomad about every owner and job and
// UCloud about every recorded (and asked) resource. Only reading the
// records can fail it; every other failure is kept in the snapshot (the
// report shows it, and the command exits 2).
func Observe(ctx context.Context, d Deps) (Snapshot, error) {
	if d.Records == nil || d.Keys == nil || d.Allocs == nil || d.JobExists == nil {
		return Snapshot{}, errors.New("status needs owner records (consul), their keys, and nomad")
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	s := Snapshot{
		Now: now().UTC(), Prefix: d.Records.Prefix(), Cluster: d.Cluster, CloudAccess: d.Cloud != nil,
		Tenants: map[string]TenantObs{}, EIPs: map[string]EIPObs{}, VServers: map[string]VServerObs{},
		NameServers: map[string]ServiceObs{}, AskedEIPs: slices.Clone(d.EIPIDs), AskedVServers: slices.Clone(d.VServers),
	}
	entries, _, err := d.Records.List(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	unreadable, err := unreadableOwners(ctx, d, entries)
	if err != nil {
		return Snapshot{}, err
	}
	s.Unreadable = unreadable
	tenants, _, err := d.Records.Clusters(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	bad, err := unreadableTenants(ctx, d, tenants)
	if err != nil {
		return Snapshot{}, err
	}
	s.Unreadable = append(s.Unreadable, bad...)

	in := func(cluster string) bool { return d.Cluster == "" || cluster == d.Cluster }
	allocs := map[string]AllocObs{}
	clusters := map[string]bool{}
	for _, e := range entries {
		r := RecordObs{Entry: e}
		if in(e.Owner.Cluster) {
			r.Observed = true
			clusters[e.Owner.Cluster] = true
			k := e.Owner.Namespace + "\x00" + e.Owner.AllocID
			a, ok := allocs[k]
			if !ok {
				a = observeAlloc(ctx, d.Allocs, e.Owner)
				allocs[k] = a
			}
			r.Alloc = a
			if d.Cloud != nil {
				observeResource(ctx, d.Cloud, &s, e)
			}
		}
		s.Records = append(s.Records, r)
	}
	for cluster, t := range tenants {
		if !in(cluster) {
			continue
		}
		clusters[cluster] = true
		s.Tenants[cluster] = observeTenant(ctx, d.JobExists, cluster, t)
	}
	if d.Replicas != nil {
		observeReplicas(ctx, d, &s, allocs, clusters)
	}
	if d.Cloud != nil {
		for _, id := range d.EIPIDs {
			describeEIP(ctx, d.Cloud, &s, id)
		}
		for _, v := range d.VServers {
			describeVServer(ctx, d.Cloud, &s, v)
		}
	}
	if d.Services != nil {
		for _, c := range sortedKeys(clusters) {
			name, inst, err := d.Services.NameServers(ctx, c)
			obs := ServiceObs{Service: name, Instances: inst}
			if err != nil {
				obs.Err = fmt.Sprintf("list instances of consul service %s (nameservers of cluster %s): %v", name, c, err)
			}
			s.NameServers[c] = obs
		}
	}
	return s, nil
}

// unreadableOwners finds the keys under <prefix>/owners/ that List could
// not decode. A key that decodes when read again was written after List
// and is left out, as is one deleted since.
func unreadableOwners(ctx context.Context, d Deps, entries []ownership.Entry) ([]Unreadable, error) {
	root := d.Records.Prefix() + "/owners/"
	keys, err := d.Keys.Keys(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("list owner record keys under %s: %w", root, err)
	}
	listed := map[string]bool{}
	for _, e := range entries {
		listed[root+e.Kind+"/"+e.Key] = true
	}
	var out []Unreadable
	for _, k := range keys {
		if listed[k] {
			continue
		}
		kind, key, _ := strings.Cut(strings.TrimPrefix(k, root), "/")
		if kind != ownership.KindEIP && kind != ownership.KindBackend {
			out = append(out, Unreadable{Key: k, Reason: fmt.Sprintf("record kind %q is neither %q nor %q", kind, ownership.KindEIP, ownership.KindBackend)})
			continue
		}
		if _, _, err := d.Records.Get(ctx, kind, key); err != nil {
			out = append(out, Unreadable{Key: k, Reason: err.Error()})
		}
	}
	return out, nil
}

// unreadableTenants finds the keys under <prefix>/clusters/ that Clusters
// could not decode.
func unreadableTenants(ctx context.Context, d Deps, tenants map[string]ownership.Tenant) ([]Unreadable, error) {
	root := d.Records.Prefix() + "/clusters/"
	keys, err := d.Keys.Keys(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("list cluster record keys under %s: %w", root, err)
	}
	var out []Unreadable
	for _, k := range keys {
		c := strings.TrimPrefix(k, root)
		if _, ok := tenants[c]; ok {
			continue
		}
		if _, _, err := d.Records.GetCluster(ctx, c); err != nil {
			out = append(out, Unreadable{Key: k, Reason: err.Error()})
		}
	}
	return out, nil
}

// observeTenant asks Nomad about every job of a tenant record (not only
// until one exists, as a claim does: the report shows each).
func observeTenant(ctx context.Context, exists ownership.JobExists, cluster string, t ownership.Tenant) TenantObs {
	obs := TenantObs{Tenant: t, Jobs: []JobObs{}}
	seen := map[string]bool{}
	for _, j := range t.Jobs {
		if seen[j] {
			continue
		}
		seen[j] = true
		ok, err := exists(ctx, nsOr(t.Namespace), j)
		o := JobObs{ID: j, Exists: ok}
		if err != nil {
			o = JobObs{ID: j, Err: fmt.Sprintf("ask nomad whether job %s (namespace %s) of cluster %s exists: %v", j, nsOr(t.Namespace), cluster, err)}
		}
		obs.Jobs = append(obs.Jobs, o)
	}
	return obs
}

func observeAlloc(ctx context.Context, n Allocs, o ownership.Owner) AllocObs {
	a, err := n.Alloc(ctx, o.Namespace, o.AllocID)
	switch {
	case errors.Is(err, nomadstate.ErrNotFound):
		return AllocObs{}
	case err != nil:
		return AllocObs{Err: err.Error()}
	}
	return AllocObs{Found: true, Alloc: a}
}

// observeResource describes a record's EIP or VServer (once each).
func observeResource(ctx context.Context, c Cloud, s *Snapshot, e ownership.Entry) {
	switch e.Kind {
	case ownership.KindEIP:
		describeEIP(ctx, c, s, e.Key)
	case ownership.KindBackend:
		if v, ok := backendVServer(e.Key); ok {
			describeVServer(ctx, c, s, v)
		}
	}
}

func describeEIP(ctx context.Context, c Cloud, s *Snapshot, id string) {
	if _, done := s.EIPs[id]; done {
		return
	}
	e, err := c.DescribeEIP(ctx, id)
	switch {
	case ucloudapi.IsNotFound(err):
		s.EIPs[id] = EIPObs{NotFound: true}
	case err != nil:
		s.EIPs[id] = EIPObs{Err: err.Error()}
	default:
		s.EIPs[id] = EIPObs{EIP: e}
	}
}

func describeVServer(ctx context.Context, c Cloud, s *Snapshot, v VServerRef) {
	if _, done := s.VServers[v.String()]; done {
		return
	}
	bs, err := c.DescribeVServer(ctx, v.ULB, v.VServer)
	switch {
	case ucloudapi.IsNotFound(err):
		s.VServers[v.String()] = VServerObs{NotFound: true}
	case err != nil:
		s.VServers[v.String()] = VServerObs{Err: err.Error()}
	default:
		s.VServers[v.String()] = VServerObs{Backends: bs}
	}
}

// backendVServer is the VServer of a backend record key
// <ulb>/<vserver>/<cluster>/<role>/<index>; ok is false for other keys
// (collector.Decide reports those as orphans).
func backendVServer(key string) (VServerRef, bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 5 || parts[0] == "" || parts[1] == "" {
		return VServerRef{}, false
	}
	return VServerRef{ULB: parts[0], VServer: parts[1]}, true
}

func nsOr(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
