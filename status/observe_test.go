package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/rmqnomad/rocketmq-nomad-driver/nomadstate"
	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// fakeKV is an in-memory KV holding owner and cluster records as JSON, so
// that undecodable values can be planted; it implements Records and
// KeyLister with the store's key layout.
type fakeKV struct {
	prefix string
	kv     map[string]string
}

func (f *fakeKV) Prefix() string { return f.prefix }

func (f *fakeKV) Keys(_ context.Context, prefix string) ([]string, error) {
	var out []string
	for k := range f.kv {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (f *fakeKV) List(ctx context.Context) ([]ownership.Entry, int, error) {
	keys, _ := f.Keys(ctx, f.prefix+"/owners/")
	var out []ownership.Entry
	bad := 0
	for _, k := range keys {
		kind, key, _ := strings.Cut(strings.TrimPrefix(k, f.prefix+"/owners/"), "/")
		var o ownership.Owner
		if (kind != ownership.KindEIP && kind != ownership.KindBackend) || json.Unmarshal([]byte(f.kv[k]), &o) != nil {
			bad++
			continue
		}
		out = append(out, ownership.Entry{Kind: kind, Key: key, Owner: o})
	}
	return out, bad, nil
}

func (f *fakeKV) Get(_ context.Context, kind, key string) (*ownership.Owner, uint64, error) {
	v, ok := f.kv[f.prefix+"/owners/"+kind+"/"+key]
	if !ok {
		return nil, 0, nil
	}
	var o ownership.Owner
	if err := json.Unmarshal([]byte(v), &o); err != nil {
		return nil, 1, fmt.Errorf("owner record %s/%s is not valid JSON (%v)", kind, key, err)
	}
	return &o, 1, nil
}

func (f *fakeKV) Clusters(ctx context.Context) (map[string]ownership.Tenant, map[string]uint64, error) {
	keys, _ := f.Keys(ctx, f.prefix+"/clusters/")
	out, idx := map[string]ownership.Tenant{}, map[string]uint64{}
	for _, k := range keys {
		var t ownership.Tenant
		if json.Unmarshal([]byte(f.kv[k]), &t) == nil {
			c := strings.TrimPrefix(k, f.prefix+"/clusters/")
			out[c], idx[c] = t, 1
		}
	}
	return out, idx, nil
}

func (f *fakeKV) GetCluster(_ context.Context, cluster string) (*ownership.Tenant, uint64, error) {
	v, ok := f.kv[f.prefix+"/clusters/"+cluster]
	if !ok {
		return nil, 0, nil
	}
	var t ownership.Tenant
	if err := json.Unmarshal([]byte(v), &t); err != nil {
		return nil, 1, fmt.Errorf("cluster record %s is not valid JSON (%v)", cluster, err)
	}
	return &t, 1, nil
}

func (f *fakeKV) put(t *testing.T, key string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	f.kv[f.prefix+"/"+key] = string(b)
}

// fakeNomad answers from a map of allocation id to client status; a
// missing id is unknown to Nomad, "!" fails. Jobs: namespace/id -> exists;
// a job in failJobs fails. asked counts the calls by allocation and by
// namespace/job.
type fakeNomad struct {
	allocs   map[string]string
	jobs     map[string]bool
	failJobs map[string]bool
	asked    map[string]int
}

func (n *fakeNomad) Alloc(_ context.Context, ns, id string) (nomadstate.Alloc, error) {
	n.asked[id]++
	st, ok := n.allocs[id]
	switch {
	case !ok:
		return nomadstate.Alloc{}, fmt.Errorf("read nomad allocation %s: %w", id, nomadstate.ErrNotFound)
	case st == "!":
		return nomadstate.Alloc{}, fmt.Errorf("read nomad allocation %s: connection refused", id)
	}
	return nomadstate.Alloc{ID: id, Namespace: ns, ClientStatus: st, DesiredStatus: "run"}, nil
}

func (n *fakeNomad) JobExists(_ context.Context, ns, id string) (bool, error) {
	n.asked[ns+"/"+id]++
	if n.failJobs[ns+"/"+id] {
		return false, fmt.Errorf("read nomad job %s: connection refused", id)
	}
	return n.jobs[ns+"/"+id], nil
}

// fakeCloud answers from maps and counts calls.
type fakeCloud struct {
	eips  map[string]*ucloudapi.EIP
	vs    map[string][]ucloudapi.Backend
	calls int
}

func (c *fakeCloud) DescribeEIP(_ context.Context, id string) (*ucloudapi.EIP, error) {
	c.calls++
	if e, ok := c.eips[id]; ok {
		return e, nil
	}
	return nil, fmt.Errorf("describe eip %s: %w", id, ucloudapi.ErrNotFound)
}

func (c *fakeCloud) DescribeVServer(_ context.Context, ulb, vs string) ([]ucloudapi.Backend, error) {
	c.calls++
	if bs, ok := c.vs[ulb+"/"+vs]; ok {
		return bs, nil
	}
	return nil, errors.New("describe vserver: ucloud RetCode 150: service unavailable")
}

func TestObserve(t *testing.T) {
	kv := &fakeKV{prefix: "p", kv: map[string]string{}}
	// orders: three jobs of namespace default (one listed twice, as a hand
	// edit might), one purged, one nomad cannot say about.
	kv.put(t, "clusters/orders", ownership.Tenant{Namespace: "default", Jobs: []string{"rmq-namesrv", "rmq-broker", "rmq-old", "rmq-namesrv"}})
	kv.put(t, "clusters/payments", ownership.Tenant{Jobs: []string{"rmq-payments"}})
	kv.kv["p/clusters/broken"] = "{not json"
	// Two EIP records of one allocation, one backend, one of another
	// cluster, one undecodable, one of an unknown kind.
	for _, id := range []string{"eip-a", "eip-b"} {
		o := owner("a1", "broker", 0, "uhost-a")
		o.Resource = id
		kv.put(t, "owners/eip/"+id, o)
	}
	n := owner("n1", "namesrv", 0, "uhost-a")
	n.Port = 30001
	kv.put(t, "owners/backend/"+vsKey, n)
	p := owner("p1", "broker", 0, "uhost-b")
	p.Cluster = "payments"
	kv.put(t, "owners/eip/eip-p", p)
	kv.kv["p/owners/eip/eip-z"] = "garbage"
	kv.kv["p/owners/what/x"] = "{}"

	nomad := &fakeNomad{allocs: map[string]string{"a1": "running", "n1": "!"}, jobs: map[string]bool{"default/rmq-namesrv": true},
		failJobs: map[string]bool{"default/rmq-broker": true}, asked: map[string]int{}}
	cloud := &fakeCloud{
		eips: map[string]*ucloudapi.EIP{"eip-a": {ID: "eip-a", Status: "used", BoundType: "uhost", BoundID: "uhost-a"}},
		vs:   map[string][]ucloudapi.Backend{"ulb-ns/vserver-ns": {be("backend-1", "uhost-a", 30001, true)}},
	}
	s, err := Observe(context.Background(), Deps{
		Records: kv, Keys: kv, Allocs: nomad, JobExists: nomad.JobExists, Cloud: cloud, Cluster: "orders",
		EIPIDs: []string{"eip-a", "eip-x"}, VServers: []VServerRef{{ULB: "ulb-ns", VServer: "vserver-ns"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if nomad.asked["a1"] != 1 || nomad.asked["p1"] != 0 {
		t.Errorf("nomad asked %v: want a1 once (two records, one allocation) and nothing outside the filter", nomad.asked)
	}
	// eip-a, eip-b, vserver, eip-x: each described once.
	if cloud.calls != 4 {
		t.Errorf("cloud calls = %d, want 4", cloud.calls)
	}
	if !s.EIPs["eip-b"].NotFound || !s.EIPs["eip-x"].NotFound || s.EIPs["eip-a"].EIP == nil {
		t.Errorf("eips = %+v", s.EIPs)
	}
	if _, ok := s.EIPs["eip-p"]; ok {
		t.Error("eip of a cluster outside the filter was described")
	}
	var unread []string
	for _, u := range s.Unreadable {
		unread = append(unread, u.Key)
	}
	sort.Strings(unread)
	if strings.Join(unread, ",") != "p/clusters/broken,p/owners/eip/eip-z,p/owners/what/x" {
		t.Errorf("unreadable = %v", unread)
	}
	if len(s.Tenants) != 1 {
		t.Errorf("tenants = %+v (want orders only)", s.Tenants)
	}
	jobs := s.Tenants["orders"].Jobs
	if len(jobs) != 3 || jobs[0] != (JobObs{ID: "rmq-namesrv", Exists: true}) || jobs[2] != (JobObs{ID: "rmq-old"}) ||
		jobs[1].ID != "rmq-broker" || !strings.Contains(jobs[1].Err, "job rmq-broker (namespace default) of cluster orders exists: read nomad job rmq-broker: connection refused") {
		t.Errorf("orders jobs = %+v (want namesrv existing, broker failing, old purged, in record order, each once)", jobs)
	}
	if nomad.asked["default/rmq-namesrv"] != 1 || nomad.asked["default/rmq-old"] != 1 || nomad.asked["default/rmq-payments"] != 0 {
		t.Errorf("nomad asked %v: want each job of orders once (all of them, not only until one exists), none of payments", nomad.asked)
	}
	for _, r := range s.Records {
		switch r.Entry.Owner.AllocID {
		case "n1":
			if !strings.Contains(r.Alloc.Err, "connection refused") {
				t.Errorf("n1 alloc = %+v", r.Alloc)
			}
		case "p1":
			if r.Observed {
				t.Error("record outside the filter marked observed")
			}
		case "a1":
			if !r.Alloc.Found || r.Alloc.Alloc.ClientStatus != "running" {
				t.Errorf("a1 alloc = %+v", r.Alloc)
			}
		}
	}
	if len(s.Records) != 4 {
		t.Errorf("records = %d, want 4 (all decodable ones, any cluster)", len(s.Records))
	}
	// And the decision over it: eip-b is drift (not found), n1 unknown,
	// the undecodable keys orphans, nomad's failures and eip-x errors; the
	// claim is kept (rmq-namesrv exists).
	r := Decide(s)
	if ExitCode(r) != 2 || r.Counts.Orphan != 3 || r.Counts.Drift != 1 || len(r.Errors) != 3 {
		t.Errorf("exit %d counts %+v errors %q", ExitCode(r), r.Counts, r.Errors)
	}
	if ten := r.Clusters[0].Tenant; ten == nil || ten.State != StateOK || len(ten.Jobs) != 3 {
		t.Errorf("orders tenant = %+v", ten)
	}
}

func TestObserveWithoutCloud(t *testing.T) {
	kv := &fakeKV{prefix: "p", kv: map[string]string{}}
	kv.put(t, "owners/eip/eip-a", owner("a1", "broker", 0, "uhost-a"))
	nomad := &fakeNomad{allocs: map[string]string{"a1": "running"}, jobs: map[string]bool{}, asked: map[string]int{}}
	s, err := Observe(context.Background(), Deps{Records: kv, Keys: kv, Allocs: nomad, JobExists: nomad.JobExists})
	if err != nil {
		t.Fatal(err)
	}
	r := Decide(s)
	if s.CloudAccess || r.CloudAccess || r.Clusters[0].Bindings[0].Cloud.Summary != "unknown (no UCloud access)" || ExitCode(r) != 0 {
		t.Errorf("report = %+v", r)
	}
	if _, err := Observe(context.Background(), Deps{Records: kv}); err == nil {
		t.Error("Observe without nomad did not fail")
	}
}
