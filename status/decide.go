package status

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/collector"
	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

const noCloud = "unknown (no UCloud access)"

// Decide turns what was observed into the report: for every owner record
// the collector's decision (collector.Decide: keep, collect, orphan) and,
// for records kept for a live owner, whether the cloud agrees with the
// record; for every cluster its tenant (namespace and jobs) and whether the
// collector deletes that claim; for the asked EIPs and VServers the
// resources that carry no record. It does no I/O.
func Decide(s Snapshot) Report {
	r := Report{
		Schema: SchemaVersion, GeneratedAt: s.Now, KVPrefix: s.Prefix, ClusterFilter: s.Cluster,
		CloudAccess: s.CloudAccess, Clusters: []Cluster{}, Unowned: []Binding{}, Errors: []Failure{},
	}
	var errs []Failure
	clusters := map[string]*Cluster{}
	cluster := func(name string) *Cluster {
		c, ok := clusters[name]
		if !ok {
			c = &Cluster{Name: name, Bindings: []Binding{}, Replicas: []Replica{}}
			clusters[name] = c
		}
		return c
	}

	var obs []collector.Observed
	var recs []RecordObs
	for _, rec := range s.Records {
		if rec.Observed {
			obs = append(obs, observed(rec))
			recs = append(recs, rec)
		}
	}
	for i, st := range collector.Decide(obs, s.Now, 0) {
		rec := recs[i]
		if rec.Alloc.Err != "" {
			errs = append(errs, Failure{SourceNomad, rec.Alloc.Err})
		}
		b := decideRecord(s, rec, st)
		if rec.Entry.Owner.Cluster == "" {
			r.Unowned = append(r.Unowned, b)
			continue
		}
		c := cluster(rec.Entry.Owner.Cluster)
		c.Bindings = append(c.Bindings, b)
	}
	for name, t := range s.Tenants {
		c := cluster(name)
		c.Tenant = decideTenant(name, t, c.Bindings)
		for _, j := range t.Jobs {
			if j.Err != "" {
				errs = append(errs, Failure{SourceNomad, j.Err})
			}
		}
	}
	for name, svc := range s.NameServers {
		c := cluster(name)
		inst := slices.Clone(svc.Instances)
		if inst == nil {
			inst = []Instance{}
		}
		sort.Slice(inst, func(i, j int) bool {
			if inst[i].Address != inst[j].Address {
				return inst[i].Address < inst[j].Address
			}
			return inst[i].Port < inst[j].Port
		})
		c.NameServers = &Service{Name: svc.Service, Instances: inst, Error: svc.Err}
		if svc.Err != "" {
			errs = append(errs, Failure{SourceConsul, svc.Err})
		}
	}
	for _, o := range s.Replicas {
		c := cluster(o.Record.Cluster)
		c.Replicas = append(c.Replicas, decideReplica(s.Now, s.Prefix, o))
		if o.Alloc.Err != "" {
			errs = append(errs, Failure{SourceNomad, o.Alloc.Err})
		}
	}
	for _, e := range s.ReplicaErrs {
		errs = append(errs, Failure{SourceConsul, e})
	}
	for _, u := range s.Unreadable {
		r.Unowned = append(r.Unowned, Binding{
			Kind: "record", Key: u.Key, Recorded: true, Nomad: "-", Cloud: CloudState{Summary: "unknown (record cannot be read)"},
			Decision: string(collector.Drop), State: StateOrphan, Reason: u.Reason,
			Action: fmt.Sprintf("none: the collector skips records it cannot read; fix or delete it (consul kv delete %s)", u.Key),
		})
	}
	unowned, askErrs := decideAsked(s)
	r.Unowned = append(r.Unowned, unowned...)
	errs = append(errs, askErrs...)
	for _, e := range s.EIPs {
		if e.Err != "" {
			errs = append(errs, Failure{SourceUCloud, e.Err})
		}
	}
	for _, v := range s.VServers {
		if v.Err != "" {
			errs = append(errs, Failure{SourceUCloud, v.Err})
		}
	}

	for _, name := range sortedKeys(clusters) {
		c := clusters[name]
		sortBindings(c.Bindings)
		sortReplicas(c.Replicas)
		r.Clusters = append(r.Clusters, *c)
		for _, b := range c.Bindings {
			r.Counts.add(b.State)
		}
		if c.Tenant != nil && c.Tenant.State == StateCollect {
			r.Counts.ClaimsCollect++
		}
	}
	sortBindings(r.Unowned)
	for _, b := range r.Unowned {
		r.Counts.add(b.State)
	}
	sort.Slice(errs, func(i, j int) bool {
		if errs[i].Source != errs[j].Source {
			return errs[i].Source < errs[j].Source
		}
		return errs[i].Message < errs[j].Message
	})
	r.Errors = append(r.Errors, slices.Compact(errs)...)
	r.Converged = len(r.Errors) == 0 && r.Counts.Problems() == 0
	return r
}

func (c *Counts) add(state string) {
	c.Bindings++
	switch state {
	case StateOK:
		c.OK++
	case StateDrift:
		c.Drift++
	case StateOrphan:
		c.Orphan++
	case StateCollect:
		c.Collect++
	case StateReleasing:
		c.Releasing++
	case StateFree:
		c.Free++
	default:
		c.Unknown++
	}
}

// observed is the collector's view of one record.
func observed(rec RecordObs) collector.Observed {
	o := collector.Observed{Entry: rec.Entry}
	id := rec.Entry.Owner.AllocID
	switch a := rec.Alloc; {
	case a.Err != "":
		o.LivenessErr = errors.New(a.Err)
	case !a.Found:
		o.Gone, o.Why = true, fmt.Sprintf("allocation %s is unknown to nomad", id)
	case a.Alloc.Terminal():
		o.Gone, o.Why = true, fmt.Sprintf("allocation %s is %s", id, a.Alloc.ClientStatus)
	default:
		o.Why = fmt.Sprintf("allocation %s is %s (desired %s)", id, a.Alloc.ClientStatus, a.Alloc.DesiredStatus)
	}
	return o
}

func nomadState(a AllocObs) string {
	switch {
	case a.Err != "":
		return "unknown (could not ask nomad)"
	case !a.Found:
		return "unknown to nomad"
	}
	return a.Alloc.ClientStatus
}

// decideRecord is one record's row: the collector's verb, and for a live
// owner the comparison of record and cloud.
func decideRecord(s Snapshot, rec RecordObs, st collector.Step) Binding {
	e, o := rec.Entry, rec.Entry.Owner
	b := Binding{
		Kind: e.Kind, Key: s.Prefix + "/owners/" + e.Kind + "/" + e.Key, Recorded: true,
		Slot: o.Slot(), Role: o.Role, AllocIndex: o.AllocIndex, Namespace: nsOr(o.Namespace), JobID: o.JobID,
		AllocID: o.AllocID, Nomad: nomadState(rec.Alloc), UHostID: o.UHostID, Port: o.Port,
		Resource: o.Resource, ReleasingUntil: o.ReleasingUntil, Decision: string(st.Verb), Reason: st.Reason,
	}
	var drift, fix string // what the cloud disagrees on, and who fixes it
	switch e.Kind {
	case ownership.KindEIP:
		b.Resource = e.Key
		drift, fix = eipState(s, &b, o)
	case ownership.KindBackend:
		if v, ok := backendVServer(e.Key); ok {
			b.ULB, b.VServer = v.ULB, v.VServer
			drift, fix = backendState(s, &b, o)
		} else {
			b.Cloud = CloudState{Summary: "unknown (record key cannot be parsed)"}
		}
	}
	switch st.Verb {
	case collector.Drop:
		b.State = StateOrphan
		b.Action = fmt.Sprintf("none: the collector cannot act on this record; fix its key or delete it (consul kv delete %s)", b.Key)
	case collector.Collect:
		b.State = StateCollect
		b.Action = collectAction(b)
	default: // keep
		switch {
		case o.Releasing(s.Now):
			b.State = StateReleasing
			b.Action = fmt.Sprintf("none: its owner is releasing it; once the record is gone or the mark expires (%s) the liveness rule decides",
				o.ReleasingUntil.UTC().Format(time.RFC3339))
		case rec.Alloc.Err != "":
			b.State = StateUnknown
			b.Action = "none until nomad answers: a binding is never taken on a guess"
		case namespaceMismatch(s, o) != "":
			b.State = StateDrift
			b.Reason = namespaceMismatch(s, o)
			b.Action = fmt.Sprintf("none: the reconciler does not settle this; jobs of two namespaces name cluster id %s: "+
				"give one namespace's jobs another cluster name, or stop and purge them", o.Cluster)
		case !b.Cloud.Known:
			b.State = StateUnknown
			b.Action = "none: cloud state unknown, drift cannot be seen"
		case drift != "":
			b.State = StateDrift
			b.Reason = st.Reason + "; " + drift
			b.Action = fix
		default:
			b.State = StateOK
		}
	}
	return b
}

// eipState fills the EIP's cloud state; drift is what disagrees with the
// record, fix what the owner's re-check (eipbind.Verify) does about it.
func eipState(s Snapshot, b *Binding, o ownership.Owner) (drift, fix string) {
	if !s.CloudAccess {
		b.Cloud = CloudState{Summary: noCloud}
		return "", ""
	}
	obs, ok := s.EIPs[b.Resource]
	switch {
	case !ok:
		b.Cloud = CloudState{Summary: "unknown (not described)"}
		return "", ""
	case obs.Err != "":
		b.Cloud = CloudState{Summary: "unknown (describe failed)"}
		return "", ""
	case obs.NotFound:
		b.Cloud = CloudState{Known: true, Summary: "not found"}
		return fmt.Sprintf("eip %s does not exist in UCloud", b.Resource),
			"none: the owner's re-check fails for good (the eip is unusable); fix the eip id in the job or the seed layout"
	}
	e := obs.EIP
	b.Cloud = CloudState{Known: true, Status: e.Status, BoundType: e.BoundType, BoundID: e.BoundID, IPs: slices.Clone(e.IPs)}
	switch {
	case e.Status == "freeze":
		b.Cloud.Summary = "frozen"
		return fmt.Sprintf("eip %s is frozen", b.Resource), "none: a frozen eip cannot be bound; unfreeze it in UCloud"
	case e.BoundID == "":
		b.Cloud.Summary = "free"
		return fmt.Sprintf("record says uhost %s, the eip is free", o.UHostID), RepairAction
	case !strings.EqualFold(e.BoundType, "uhost"):
		b.Cloud.Summary = "bound to " + e.BoundType + " " + e.BoundID
		return fmt.Sprintf("record says uhost %s, the eip is bound to %s %s", o.UHostID, e.BoundType, e.BoundID),
			"none: the owner's re-check refuses to move an eip off a resource that is not a uhost; unbind it by hand"
	case e.BoundID != o.UHostID:
		b.Cloud.Summary = "bound to " + e.BoundID
		return fmt.Sprintf("record says uhost %s, the eip is bound to uhost %s", o.UHostID, e.BoundID), RepairAction
	}
	b.Cloud.Summary = "bound to " + e.BoundID
	return "", ""
}

// backendState fills the backend's cloud state: the VServer lists the
// record's backend (by its id, else by uhost and port), on the record's
// host and port, enabled.
func backendState(s Snapshot, b *Binding, o ownership.Owner) (drift, fix string) {
	if !s.CloudAccess {
		b.Cloud = CloudState{Summary: noCloud}
		return "", ""
	}
	obs, ok := s.VServers[b.ULB+"/"+b.VServer]
	switch {
	case !ok:
		b.Cloud = CloudState{Summary: "unknown (not described)"}
		return "", ""
	case obs.Err != "":
		b.Cloud = CloudState{Summary: "unknown (describe failed)"}
		return "", ""
	case obs.NotFound:
		b.Cloud = CloudState{Known: true, Summary: "vserver not found", Listed: ptr(false)}
		return fmt.Sprintf("vserver %s of ulb %s does not exist", b.VServer, b.ULB),
			"none: the owner's re-check fails for good; fix the job's ulb block"
	}
	found := findBackend(obs.Backends, o)
	if found == nil {
		b.Cloud = CloudState{Known: true, Summary: "missing", Listed: ptr(false)}
		what := fmt.Sprintf("uhost %s port %d", o.UHostID, o.Port)
		if o.Resource != "" {
			what = "backend " + o.Resource + " (" + what + ")"
		}
		return fmt.Sprintf("the vserver does not list %s", what), RepairAction
	}
	b.Cloud = CloudState{Known: true, Listed: ptr(true), BackendID: found.ID, ResourceID: found.ResourceID,
		BackendIP: found.PrivateIP, Port: found.Port, Enabled: ptr(found.Enabled), Health: found.Status}
	if b.Resource == "" {
		b.Resource = found.ID
	}
	switch {
	case found.ResourceID != o.UHostID || found.Port != o.Port:
		b.Cloud.Summary = fmt.Sprintf("listed on %s:%d", found.ResourceID, found.Port)
		return fmt.Sprintf("record says uhost %s port %d, backend %s is uhost %s port %d", o.UHostID, o.Port, found.ID, found.ResourceID, found.Port),
			RepairAction + " (it registers uhost " + o.UHostID + "; backend " + found.ID + " is then unrecorded: release it by hand)"
	case o.Resource != "" && found.ID != o.Resource:
		b.Cloud.Summary = "listed as " + found.ID
		return fmt.Sprintf("record names backend %s, the vserver lists backend %s for uhost %s port %d", o.Resource, found.ID, o.UHostID, o.Port),
			RepairAction + " (it records backend " + found.ID + ")"
	case !found.Enabled:
		b.Cloud.Summary = "listed, disabled"
		return fmt.Sprintf("backend %s is disabled", found.ID), RepairAction + " (it enables the backend again)"
	}
	b.Cloud.Summary = "listed, enabled, " + found.Status
	return "", ""
}

// findBackend is the record's backend: by id, else by uhost and port.
func findBackend(bs []ucloudapi.Backend, o ownership.Owner) *ucloudapi.Backend {
	if o.Resource != "" {
		for i := range bs {
			if bs[i].ID == o.Resource {
				return &bs[i]
			}
		}
	}
	for i := range bs {
		if bs[i].ResourceID == o.UHostID && bs[i].Port == o.Port {
			return &bs[i]
		}
	}
	return nil
}

// collectAction says what the collector's release (the binders' Release
// on behalf of the gone owner) will do, given the cloud state.
func collectAction(b Binding) string {
	switch b.Kind {
	case ownership.KindEIP:
		switch {
		case !b.Cloud.Known:
			return fmt.Sprintf("the collector unbinds eip %s if it is still bound to uhost %s, then deletes the record", b.Resource, b.UHostID)
		case b.Cloud.BoundID == b.UHostID && b.UHostID != "":
			return fmt.Sprintf("the collector unbinds eip %s from uhost %s and deletes the record", b.Resource, b.UHostID)
		}
		return fmt.Sprintf("the collector deletes the record; eip %s is not bound to uhost %s, so it is left as it is", b.Resource, b.UHostID)
	case ownership.KindBackend:
		switch {
		case !b.Cloud.Known:
			return "the collector releases the backend (by id, else by uhost and port) and deletes the record"
		case b.Cloud.Listed != nil && *b.Cloud.Listed:
			return fmt.Sprintf("the collector releases backend %s from vserver %s of ulb %s and deletes the record", b.Cloud.BackendID, b.VServer, b.ULB)
		}
		return "the collector deletes the record (the backend is already gone)"
	}
	return "the collector releases it and deletes the record"
}

// namespaceMismatch says when a record names another namespace than its
// cluster's tenant record. A record of another job of the same namespace is
// normal: a cluster is several jobs (its NameServers, its brokers). Records
// of an older version (no job) are not compared.
func namespaceMismatch(s Snapshot, o ownership.Owner) string {
	t, ok := s.Tenants[o.Cluster]
	if !ok || o.JobID == "" || nsOr(o.Namespace) == nsOr(t.Tenant.Namespace) {
		return ""
	}
	return fmt.Sprintf("record names job %s of namespace %s, cluster %s belongs to namespace %s",
		o.JobID, nsOr(o.Namespace), o.Cluster, nsOr(t.Tenant.Namespace))
}

// decideTenant is a cluster's tenant record and what becomes of it: the
// collector deletes the claim once none of its jobs exists any more and the
// cluster holds no bindings (ownership.TenantGone); until Nomad has
// answered for every job, and none exists, nothing is said.
func decideTenant(cluster string, t TenantObs, bindings []Binding) *Tenant {
	out := &Tenant{Namespace: nsOr(t.Tenant.Namespace), Jobs: []TenantJob{}, ClaimedAt: t.Tenant.ClaimedAt}
	exists, failed := false, false
	for _, j := range t.Jobs {
		tj := TenantJob{JobID: j.ID}
		if j.Err != "" {
			tj.Error, failed = j.Err, true
		} else {
			tj.Exists, exists = ptr(j.Exists), exists || j.Exists
		}
		out.Jobs = append(out.Jobs, tj)
	}
	switch {
	case exists:
		out.State, out.Action = StateOK, "none"
	case failed:
		out.State, out.Action = StateUnknown, "none until nomad answers"
	case slices.ContainsFunc(bindings, func(b Binding) bool { return b.Decision != string(collector.Collect) }):
		out.State, out.Action = StateOK, "none: none of its jobs exists, but the claim is kept while the cluster holds bindings"
	default:
		out.State = StateCollect
		out.Action = fmt.Sprintf("the collector deletes the claim (none of its jobs exists any more and it holds no bindings); "+
			"then a job of any namespace naming cluster %s takes it", cluster)
	}
	return out
}

// decideAsked reports the resources on the asked EIPs and VServers that
// carry no owner record (any cluster's), and asked ids that do not exist.
func decideAsked(s Snapshot) ([]Binding, []Failure) {
	if !s.CloudAccess {
		return nil, nil
	}
	var out []Binding
	var errs []Failure
	recorded := map[string]bool{}
	var backends []ownership.Owner
	vsOf := map[int]string{}
	for _, rec := range s.Records {
		switch rec.Entry.Kind {
		case ownership.KindEIP:
			recorded[rec.Entry.Key] = true
		case ownership.KindBackend:
			if v, ok := backendVServer(rec.Entry.Key); ok {
				vsOf[len(backends)] = v.String()
				backends = append(backends, rec.Entry.Owner)
			}
		}
	}
	for _, id := range slices.Compact(slices.Sorted(slices.Values(s.AskedEIPs))) {
		obs, ok := s.EIPs[id]
		if recorded[id] || !ok || obs.Err != "" {
			continue
		}
		if obs.NotFound {
			errs = append(errs, Failure{SourceUCloud, fmt.Sprintf("eip %s (given with -eip-ids) does not exist in UCloud", id)})
			continue
		}
		e := obs.EIP
		b := Binding{Kind: ownership.KindEIP, Resource: id, Nomad: "-", Decision: "",
			Cloud: CloudState{Known: true, Status: e.Status, BoundType: e.BoundType, BoundID: e.BoundID, IPs: slices.Clone(e.IPs)}}
		if e.BoundID == "" {
			b.Cloud.Summary, b.State = "free", StateFree
			b.Reason = "free, and no owner record names it"
			b.Action = "none: the next broker that names it binds it"
		} else {
			b.Cloud.Summary = "bound to " + e.BoundID
			if !strings.EqualFold(e.BoundType, "uhost") {
				b.Cloud.Summary = "bound to " + e.BoundType + " " + e.BoundID
			}
			b.UHostID, b.State = e.BoundID, StateOrphan
			b.Reason = fmt.Sprintf("bound to %s %s, and no owner record names it", e.BoundType, e.BoundID)
			b.Action = "none: the reconciler never touches a resource without its record; a broker naming this eip is refused until it is unbound by hand or its record is restored"
		}
		out = append(out, b)
	}
	seen := map[string]bool{}
	for _, v := range s.AskedVServers {
		obs, ok := s.VServers[v.String()]
		if seen[v.String()] || !ok || obs.Err != "" {
			continue
		}
		seen[v.String()] = true
		if obs.NotFound {
			errs = append(errs, Failure{SourceUCloud, fmt.Sprintf("vserver %s of ulb %s (given with -vservers) does not exist", v.VServer, v.ULB)})
			continue
		}
		for _, be := range obs.Backends {
			owned := false
			for i, o := range backends {
				if vsOf[i] == v.String() && (o.Resource == be.ID || (o.UHostID == be.ResourceID && o.Port == be.Port)) {
					owned = true
					break
				}
			}
			if owned {
				continue
			}
			out = append(out, Binding{
				Kind: ownership.KindBackend, Resource: be.ID, ULB: v.ULB, VServer: v.VServer, UHostID: be.ResourceID, Port: be.Port, Nomad: "-",
				Cloud: CloudState{Known: true, Summary: fmt.Sprintf("listed on %s:%d", be.ResourceID, be.Port), Listed: ptr(true), BackendID: be.ID,
					ResourceID: be.ResourceID, BackendIP: be.PrivateIP, Port: be.Port, Enabled: ptr(be.Enabled), Health: be.Status},
				State:  StateOrphan,
				Reason: fmt.Sprintf("backend %s (uhost %s port %d) is listed, and no owner record names it", be.ID, be.ResourceID, be.Port),
				Action: "none: the reconciler never releases a backend without its record; release it by hand if no NameServer or proxy of yours uses it",
			})
		}
	}
	return out, errs
}

func sortBindings(bs []Binding) {
	sort.SliceStable(bs, func(i, j int) bool {
		a, b := bs[i], bs[j]
		if a.Role != b.Role {
			return a.Role < b.Role
		}
		if a.AllocIndex != b.AllocIndex {
			return a.AllocIndex < b.AllocIndex
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		if a.VServer != b.VServer {
			return a.VServer < b.VServer
		}
		return a.Resource < b.Resource
	})
}

func ptr[T any](v T) *T { return &v }
