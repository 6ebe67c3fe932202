package status

import (
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/nomadstate"
	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// world is a snapshot of cluster orders (namespace default, used by jobs
// rmq-namesrv and rmq-broker, which exist) with no records; the helpers add
// records and cloud state.
func world() Snapshot {
	return Snapshot{
		Now: now, Prefix: "rocketmq-nomad", CloudAccess: true,
		Tenants:  map[string]TenantObs{"orders": tenant("default", job("rmq-namesrv", true), job("rmq-broker", true))},
		EIPs:     map[string]EIPObs{},
		VServers: map[string]VServerObs{},
	}
}

func tenant(ns string, jobs ...JobObs) TenantObs {
	t := TenantObs{Tenant: ownership.Tenant{Namespace: ns, ClaimedAt: now.Add(-time.Hour)}, Jobs: jobs}
	for _, j := range jobs {
		t.Tenant.Jobs = append(t.Tenant.Jobs, j.ID)
	}
	return t
}

func job(id string, exists bool) JobObs { return JobObs{ID: id, Exists: exists} }

// owner is an allocation of the role's job (rmq-namesrv, rmq-broker) of
// namespace default.
func owner(alloc, role string, index int, uhost string) ownership.Owner {
	return ownership.Owner{AllocID: alloc, UHostID: uhost, Namespace: "default", JobID: "rmq-" + role, Group: role,
		Cluster: "orders", Role: role, AllocIndex: index}
}

func running() AllocObs {
	return AllocObs{Found: true, Alloc: nomadstate.Alloc{ClientStatus: "running", DesiredStatus: "run"}}
}

func status(s string) AllocObs {
	return AllocObs{Found: true, Alloc: nomadstate.Alloc{ClientStatus: s, DesiredStatus: "stop"}}
}

func eipRec(id, alloc, uhost string, a AllocObs) RecordObs {
	o := owner(alloc, "broker", 0, uhost)
	o.Resource = id
	return RecordObs{Entry: ownership.Entry{Kind: ownership.KindEIP, Key: id, Owner: o}, Observed: true, Alloc: a}
}

func backendRec(key, backend, alloc, uhost string, port int, a AllocObs) RecordObs {
	o := owner(alloc, "namesrv", 0, uhost)
	o.Resource, o.Port = backend, port
	return RecordObs{Entry: ownership.Entry{Kind: ownership.KindBackend, Key: key, Owner: o}, Observed: true, Alloc: a}
}

func bound(id, uhost string) EIPObs {
	return EIPObs{EIP: &ucloudapi.EIP{ID: id, Status: "used", BoundType: "uhost", BoundID: uhost, IPs: []string{"203.0.113.10"}}}
}

func free(id string) EIPObs {
	return EIPObs{EIP: &ucloudapi.EIP{ID: id, Status: "free", IPs: []string{"203.0.113.10"}}}
}

func vserver(bs ...ucloudapi.Backend) VServerObs { return VServerObs{Backends: bs} }

func be(id, uhost string, port int, enabled bool) ucloudapi.Backend {
	return ucloudapi.Backend{ID: id, ResourceID: uhost, Port: port, Enabled: enabled, Status: "healthy", PrivateIP: "10.9.0.11"}
}

const vsKey = "ulb-ns/vserver-ns/orders/namesrv/0"

func TestDecide(t *testing.T) {
	later := now.Add(time.Minute)
	earlier := now.Add(-time.Minute)
	tests := []struct {
		name     string
		setup    func(s *Snapshot)
		state    string // of the only binding ("" when none is expected)
		decision string
		action   string // substring of its action
		reason   string // substring of its reason
		exit     int
		check    func(t *testing.T, r Report)
	}{
		{name: "converged eip", state: StateOK, decision: "keep", exit: 0,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{eipRec("eip-a", "a1", "uhost-a", running())}
				s.EIPs["eip-a"] = bound("eip-a", "uhost-a")
			},
			check: func(t *testing.T, r Report) {
				if !r.Converged || r.Counts.OK != 1 || r.Clusters[0].Bindings[0].Cloud.Summary != "bound to uhost-a" {
					t.Errorf("report = %+v", r)
				}
			}},
		{name: "eip free with a live owner is drift", state: StateDrift, decision: "keep", action: RepairAction, reason: "the eip is free", exit: 1,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{eipRec("eip-a", "a1", "uhost-a", running())}
				s.EIPs["eip-a"] = free("eip-a")
			}},
		{name: "eip moved elsewhere is drift", state: StateDrift, decision: "keep", action: RepairAction, reason: "bound to uhost uhost-b", exit: 1,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{eipRec("eip-a", "a1", "uhost-a", running())}
				s.EIPs["eip-a"] = bound("eip-a", "uhost-b")
			}},
		{name: "eip bound to a non-uhost resource is drift nobody repairs", state: StateDrift, action: "unbind it by hand", exit: 1,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{eipRec("eip-a", "a1", "uhost-a", running())}
				s.EIPs["eip-a"] = EIPObs{EIP: &ucloudapi.EIP{ID: "eip-a", Status: "used", BoundType: "ulb", BoundID: "ulb-x"}}
			}},
		{name: "eip that does not exist is drift", state: StateDrift, action: "fix the eip id", exit: 1,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{eipRec("eip-a", "a1", "uhost-a", running())}
				s.EIPs["eip-a"] = EIPObs{NotFound: true}
			}},
		{name: "frozen eip is drift", state: StateDrift, action: "unfreeze", exit: 1,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{eipRec("eip-a", "a1", "uhost-a", running())}
				s.EIPs["eip-a"] = EIPObs{EIP: &ucloudapi.EIP{ID: "eip-a", Status: "freeze"}}
			}},
		{name: "record of a lost alloc is collected (eip unbound)", state: StateCollect, decision: "collect", reason: "is lost", exit: 1,
			action: "unbinds eip eip-a from uhost uhost-a",
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{eipRec("eip-a", "a1", "uhost-a", status("lost"))}
				s.EIPs["eip-a"] = bound("eip-a", "uhost-a")
			}},
		{name: "record of a gone alloc whose eip moved on: only the record goes", state: StateCollect, decision: "collect", exit: 1,
			action: "left as it is",
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{eipRec("eip-a", "a1", "uhost-a", status("complete"))}
				s.EIPs["eip-a"] = bound("eip-a", "uhost-b")
			}},
		{name: "record of an alloc unknown to nomad is collected", state: StateCollect, decision: "collect", reason: "unknown to nomad", exit: 1,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{eipRec("eip-a", "a1", "uhost-a", AllocObs{})}
				s.EIPs["eip-a"] = bound("eip-a", "uhost-a")
			},
			check: func(t *testing.T, r Report) {
				if b := r.Clusters[0].Bindings[0]; b.Nomad != "unknown to nomad" {
					t.Errorf("nomad column = %q", b.Nomad)
				}
			}},
		{name: "live alloc with releasing mark is kept", state: StateReleasing, decision: "keep", action: "releasing", exit: 0,
			setup: func(s *Snapshot) {
				r := eipRec("eip-a", "a1", "uhost-a", running())
				r.Entry.Owner.ReleasingUntil = &later
				s.Records = []RecordObs{r}
				s.EIPs["eip-a"] = free("eip-a")
			}},
		{name: "gone alloc with an expired releasing mark is collected", state: StateCollect, decision: "collect", exit: 1,
			setup: func(s *Snapshot) {
				r := eipRec("eip-a", "a1", "uhost-a", status("failed"))
				r.Entry.Owner.ReleasingUntil = &earlier
				s.Records = []RecordObs{r}
				s.EIPs["eip-a"] = free("eip-a")
			}},
		{name: "nomad unreachable keeps the record, state unknown, exit 2", state: StateUnknown, decision: "keep", action: "never taken on a guess", exit: 2,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{eipRec("eip-a", "a1", "uhost-a", AllocObs{Err: "read nomad allocation a1: connection refused"})}
				s.EIPs["eip-a"] = free("eip-a")
			},
			check: func(t *testing.T, r Report) {
				if len(r.Errors) != 1 || r.Errors[0].Source != SourceNomad || !strings.Contains(r.Errors[0].Message, "connection refused") {
					t.Errorf("errors = %q", r.Errors)
				}
			}},
		{name: "no ucloud access: cloud unknown, not drift", state: StateUnknown, decision: "keep", exit: 0,
			setup: func(s *Snapshot) {
				s.CloudAccess = false
				s.Records = []RecordObs{eipRec("eip-a", "a1", "uhost-a", running())}
			},
			check: func(t *testing.T, r Report) {
				if got := r.Clusters[0].Bindings[0].Cloud.Summary; got != "unknown (no UCloud access)" {
					t.Errorf("cloud = %q", got)
				}
			}},
		{name: "describe failure: unknown, exit 2", state: StateUnknown, exit: 2,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{eipRec("eip-a", "a1", "uhost-a", running())}
				s.EIPs["eip-a"] = EIPObs{Err: "describe eip eip-a: ucloud RetCode 172: bad signature"}
			}},
		{name: "converged backend", state: StateOK, decision: "keep", exit: 0,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{backendRec(vsKey, "backend-1", "n1", "uhost-a", 30001, running())}
				s.VServers["ulb-ns/vserver-ns"] = vserver(be("backend-1", "uhost-a", 30001, true), be("backend-seed", "uhost-c", 30000, true))
			},
			check: func(t *testing.T, r Report) {
				b := r.Clusters[0].Bindings[0]
				if b.ULB != "ulb-ns" || b.VServer != "vserver-ns" || b.Cloud.Enabled == nil || !*b.Cloud.Enabled {
					t.Errorf("binding = %+v", b)
				}
			}},
		{name: "backend found by uhost and port before its id is recorded", state: StateOK, exit: 0,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{backendRec(vsKey, "", "n1", "uhost-a", 30001, running())}
				s.VServers["ulb-ns/vserver-ns"] = vserver(be("backend-1", "uhost-a", 30001, true))
			}},
		{name: "backend missing is drift", state: StateDrift, decision: "keep", action: RepairAction, reason: "does not list backend backend-1", exit: 1,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{backendRec(vsKey, "backend-1", "n1", "uhost-a", 30001, running())}
				s.VServers["ulb-ns/vserver-ns"] = vserver(be("backend-seed", "uhost-c", 30000, true))
			}},
		{name: "backend disabled is drift", state: StateDrift, action: "enables the backend again", exit: 1,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{backendRec(vsKey, "backend-1", "n1", "uhost-a", 30001, running())}
				s.VServers["ulb-ns/vserver-ns"] = vserver(be("backend-1", "uhost-a", 30001, false))
			}},
		{name: "backend on another host is drift", state: StateDrift, action: RepairAction, reason: "backend-1 is uhost uhost-b", exit: 1,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{backendRec(vsKey, "backend-1", "n1", "uhost-a", 30001, running())}
				s.VServers["ulb-ns/vserver-ns"] = vserver(be("backend-1", "uhost-b", 30001, true))
			}},
		{name: "backend with another id than recorded is drift", state: StateDrift, action: "it records backend backend-2", exit: 1,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{backendRec(vsKey, "backend-1", "n1", "uhost-a", 30001, running())}
				s.VServers["ulb-ns/vserver-ns"] = vserver(be("backend-2", "uhost-a", 30001, true))
			}},
		{name: "vserver gone is drift", state: StateDrift, action: "fix the job's ulb block", exit: 1,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{backendRec(vsKey, "backend-1", "n1", "uhost-a", 30001, running())}
				s.VServers["ulb-ns/vserver-ns"] = VServerObs{NotFound: true}
			}},
		{name: "backend of a lost alloc is collected", state: StateCollect, decision: "collect", action: "releases backend backend-1 from vserver vserver-ns", exit: 1,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{backendRec(vsKey, "backend-1", "n1", "uhost-a", 30001, status("lost"))}
				s.VServers["ulb-ns/vserver-ns"] = vserver(be("backend-1", "uhost-a", 30001, true))
			}},
		{name: "backend record with a bad key is an orphan", state: StateOrphan, decision: "orphan", action: "consul kv delete rocketmq-nomad/owners/backend/ulb-ns/orders/0", exit: 1,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{backendRec("ulb-ns/orders/0", "backend-1", "n1", "uhost-a", 30001, running())}
			}},
		{name: "records of the cluster's several jobs are ok", exit: 0,
			setup: func(s *Snapshot) {
				s.Records = []RecordObs{eipRec("eip-a", "a1", "uhost-a", running()), backendRec(vsKey, "backend-1", "n1", "uhost-a", 30001, running())}
				s.EIPs["eip-a"] = bound("eip-a", "uhost-a")
				s.VServers["ulb-ns/vserver-ns"] = vserver(be("backend-1", "uhost-a", 30001, true))
			},
			check: func(t *testing.T, r Report) {
				if !r.Converged || r.Counts.OK != 2 {
					t.Errorf("counts = %+v, clusters %+v", r.Counts, r.Clusters)
				}
			}},
		{name: "record of a job of the namespace not yet in the tenant record is ok", state: StateOK, exit: 0,
			setup: func(s *Snapshot) {
				r := eipRec("eip-a", "a1", "uhost-a", running())
				r.Entry.Owner.JobID = "rmq-broker-b"
				s.Records = []RecordObs{r}
				s.EIPs["eip-a"] = bound("eip-a", "uhost-a")
			}},
		{name: "record of another namespace than the cluster's is drift", state: StateDrift, exit: 1,
			action: "jobs of two namespaces name cluster id orders", reason: "record names job rmq-broker of namespace team-b, cluster orders belongs to namespace default",
			setup: func(s *Snapshot) {
				r := eipRec("eip-a", "a1", "uhost-a", running())
				r.Entry.Owner.Namespace = "team-b"
				s.Records = []RecordObs{r}
				s.EIPs["eip-a"] = bound("eip-a", "uhost-a")
			}},
		{name: "empty namespaces are the default one", state: StateOK, exit: 0,
			setup: func(s *Snapshot) {
				s.Tenants["orders"] = tenant("", job("rmq-broker", true))
				r := eipRec("eip-a", "a1", "uhost-a", running())
				r.Entry.Owner.Namespace = ""
				s.Records = []RecordObs{r}
				s.EIPs["eip-a"] = bound("eip-a", "uhost-a")
			},
			check: func(t *testing.T, r Report) {
				if ten := r.Clusters[0].Tenant; ten.Namespace != "default" {
					t.Errorf("tenant = %+v", ten)
				}
			}},
		{name: "record of an older version (no job) is not compared", state: StateOK, exit: 0,
			setup: func(s *Snapshot) {
				r := eipRec("eip-a", "a1", "uhost-a", running())
				r.Entry.Owner.Namespace, r.Entry.Owner.JobID, r.Entry.Owner.Group = "", "", ""
				s.Tenants["orders"] = tenant("team-a", job("rmq-broker", true))
				s.Records = []RecordObs{r}
				s.EIPs["eip-a"] = bound("eip-a", "uhost-a")
			}},
		{name: "cluster with no records", exit: 0,
			check: func(t *testing.T, r Report) {
				if len(r.Clusters) != 1 || r.Clusters[0].Name != "orders" || len(r.Clusters[0].Bindings) != 0 || !r.Converged {
					t.Fatalf("report = %+v", r)
				}
				ten := r.Clusters[0].Tenant
				if ten == nil || ten.State != StateOK || ten.Namespace != "default" || len(ten.Jobs) != 2 ||
					ten.Jobs[0].JobID != "rmq-namesrv" || ten.Jobs[1].JobID != "rmq-broker" || ten.Jobs[0].Exists == nil || !*ten.Jobs[0].Exists {
					t.Errorf("tenant = %+v", ten)
				}
			}},
		{name: "one of the jobs purged: the claim stays", exit: 0,
			setup: func(s *Snapshot) {
				s.Tenants["orders"] = tenant("default", job("rmq-namesrv", false), job("rmq-broker", true))
			},
			check: func(t *testing.T, r Report) {
				ten := r.Clusters[0].Tenant
				if ten.State != StateOK || ten.Jobs[0].Exists == nil || *ten.Jobs[0].Exists || r.Counts.ClaimsCollect != 0 {
					t.Errorf("tenant = %+v counts %+v", ten, r.Counts)
				}
			}},
		{name: "all jobs purged, no bindings: the claim is collected", exit: 1,
			setup: func(s *Snapshot) {
				s.Tenants["orders"] = tenant("default", job("rmq-namesrv", false), job("rmq-broker", false))
			},
			check: func(t *testing.T, r Report) {
				ten := r.Clusters[0].Tenant
				if ten.State != StateCollect || !strings.Contains(ten.Action, "the collector deletes the claim") || r.Counts.ClaimsCollect != 1 {
					t.Errorf("tenant = %+v counts %+v", ten, r.Counts)
				}
			}},
		{name: "no jobs recorded, no bindings: the claim is collected", exit: 1,
			setup: func(s *Snapshot) {
				s.Tenants["orders"] = tenant("default")
			},
			check: func(t *testing.T, r Report) {
				if ten := r.Clusters[0].Tenant; ten.State != StateCollect || ten.Jobs == nil || r.Counts.ClaimsCollect != 1 {
					t.Errorf("tenant = %+v counts %+v", ten, r.Counts)
				}
			}},
		{name: "all jobs purged with a live binding: the claim stays", state: StateOK, exit: 0,
			setup: func(s *Snapshot) {
				s.Tenants["orders"] = tenant("default", job("rmq-namesrv", false), job("rmq-broker", false))
				s.Records = []RecordObs{eipRec("eip-a", "a1", "uhost-a", running())}
				s.EIPs["eip-a"] = bound("eip-a", "uhost-a")
			},
			check: func(t *testing.T, r Report) {
				if ten := r.Clusters[0].Tenant; ten.State != StateOK || !strings.Contains(ten.Action, "kept while the cluster holds bindings") {
					t.Errorf("tenant = %+v", ten)
				}
			}},
		{name: "all jobs purged, only collectable bindings: both are collected", state: StateCollect, exit: 1,
			setup: func(s *Snapshot) {
				s.Tenants["orders"] = tenant("default", job("rmq-namesrv", false), job("rmq-broker", false))
				s.Records = []RecordObs{eipRec("eip-a", "a1", "uhost-a", status("complete"))}
				s.EIPs["eip-a"] = bound("eip-a", "uhost-a")
			},
			check: func(t *testing.T, r Report) {
				if ten := r.Clusters[0].Tenant; ten.State != StateCollect || r.Counts.ClaimsCollect != 1 || r.Counts.Collect != 1 {
					t.Errorf("tenant = %+v counts %+v", ten, r.Counts)
				}
			}},
		{name: "nomad fails for one job, the other is purged: claim unknown, exit 2", exit: 2,
			setup: func(s *Snapshot) {
				s.Tenants["orders"] = tenant("default", job("rmq-namesrv", false),
					JobObs{ID: "rmq-broker", Err: "ask nomad whether job rmq-broker (namespace default) of cluster orders exists: connection refused"})
			},
			check: func(t *testing.T, r Report) {
				ten := r.Clusters[0].Tenant
				if ten.State != StateUnknown || ten.Jobs[1].Exists != nil || !strings.Contains(ten.Jobs[1].Error, "connection refused") || r.Counts.ClaimsCollect != 0 {
					t.Errorf("tenant = %+v counts %+v", ten, r.Counts)
				}
				if len(r.Errors) != 1 || r.Errors[0].Source != SourceNomad || !strings.Contains(r.Errors[0].Message, "job rmq-broker") {
					t.Errorf("errors = %q", r.Errors)
				}
			}},
		{name: "nomad fails for one job, another exists: claim ok, still exit 2", exit: 2,
			setup: func(s *Snapshot) {
				s.Tenants["orders"] = tenant("default", job("rmq-namesrv", true), JobObs{ID: "rmq-broker", Err: "connection refused"})
			},
			check: func(t *testing.T, r Report) {
				if ten := r.Clusters[0].Tenant; ten.State != StateOK {
					t.Errorf("tenant = %+v", ten)
				}
			}},
		{name: "undecodable record is an unowned orphan", exit: 1,
			setup: func(s *Snapshot) {
				s.Unreadable = []Unreadable{{Key: "rocketmq-nomad/owners/eip/eip-z", Reason: "not valid JSON"}}
			},
			check: func(t *testing.T, r Report) {
				if len(r.Unowned) != 1 || r.Unowned[0].State != StateOrphan || !strings.Contains(r.Unowned[0].Action, "consul kv delete rocketmq-nomad/owners/eip/eip-z") {
					t.Errorf("unowned = %+v", r.Unowned)
				}
			}},
		{name: "asked eip bound without a record is an orphan", exit: 1,
			setup: func(s *Snapshot) {
				s.AskedEIPs = []string{"eip-c"}
				s.EIPs["eip-c"] = bound("eip-c", "uhost-c")
			},
			check: func(t *testing.T, r Report) {
				if len(r.Unowned) != 1 || r.Unowned[0].State != StateOrphan || r.Unowned[0].Recorded || r.Unowned[0].UHostID != "uhost-c" {
					t.Errorf("unowned = %+v", r.Unowned)
				}
			}},
		{name: "asked free eip without a record is fine", exit: 0,
			setup: func(s *Snapshot) {
				s.AskedEIPs = []string{"eip-b"}
				s.EIPs["eip-b"] = free("eip-b")
			},
			check: func(t *testing.T, r Report) {
				if len(r.Unowned) != 1 || r.Unowned[0].State != StateFree || r.Counts.Free != 1 {
					t.Errorf("unowned = %+v", r.Unowned)
				}
			}},
		{name: "asked recorded eip is not reported twice", state: StateOK, exit: 0,
			setup: func(s *Snapshot) {
				s.AskedEIPs = []string{"eip-a"}
				s.Records = []RecordObs{eipRec("eip-a", "a1", "uhost-a", running())}
				s.EIPs["eip-a"] = bound("eip-a", "uhost-a")
			},
			check: func(t *testing.T, r Report) {
				if len(r.Unowned) != 0 {
					t.Errorf("unowned = %+v", r.Unowned)
				}
			}},
		{name: "asked eip that does not exist is an error", exit: 2,
			setup: func(s *Snapshot) {
				s.AskedEIPs = []string{"eip-nope"}
				s.EIPs["eip-nope"] = EIPObs{NotFound: true}
			}},
		{name: "asked vserver: only the backend without a record is an orphan", state: StateOK, exit: 1,
			setup: func(s *Snapshot) {
				s.AskedVServers = []VServerRef{{ULB: "ulb-ns", VServer: "vserver-ns"}}
				s.Records = []RecordObs{backendRec(vsKey, "backend-1", "n1", "uhost-a", 30001, running())}
				s.VServers["ulb-ns/vserver-ns"] = vserver(be("backend-1", "uhost-a", 30001, true), be("backend-seed", "uhost-c", 30000, true))
			},
			check: func(t *testing.T, r Report) {
				if len(r.Unowned) != 1 || r.Unowned[0].Resource != "backend-seed" || r.Unowned[0].State != StateOrphan {
					t.Errorf("unowned = %+v", r.Unowned)
				}
			}},
		{name: "records of other clusters count as records under a filter", exit: 0,
			setup: func(s *Snapshot) {
				s.Cluster = "orders"
				s.AskedEIPs = []string{"eip-p"}
				r := eipRec("eip-p", "p1", "uhost-b", AllocObs{})
				r.Observed, r.Entry.Owner.Cluster = false, "payments"
				s.Records = []RecordObs{r}
				s.EIPs["eip-p"] = bound("eip-p", "uhost-b")
			},
			check: func(t *testing.T, r Report) {
				if len(r.Unowned) != 0 || len(r.Clusters) != 1 {
					t.Errorf("report = %+v", r)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := world()
			if tc.setup != nil {
				tc.setup(&s)
			}
			r := Decide(s)
			if got := ExitCode(r); got != tc.exit {
				t.Errorf("exit code = %d, want %d (report %+v)", got, tc.exit, r)
			}
			if tc.state != "" {
				if len(r.Clusters) != 1 || len(r.Clusters[0].Bindings) != 1 {
					t.Fatalf("want one cluster with one binding, got %+v", r.Clusters)
				}
				b := r.Clusters[0].Bindings[0]
				if b.State != tc.state {
					t.Errorf("state = %q, want %q (reason %q)", b.State, tc.state, b.Reason)
				}
				if tc.decision != "" && b.Decision != tc.decision {
					t.Errorf("decision = %q, want %q", b.Decision, tc.decision)
				}
				if !strings.Contains(b.Action, tc.action) {
					t.Errorf("action = %q, want it to contain %q", b.Action, tc.action)
				}
				if !strings.Contains(b.Reason, tc.reason) {
					t.Errorf("reason = %q, want it to contain %q", b.Reason, tc.reason)
				}
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}
