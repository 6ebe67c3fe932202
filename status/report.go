package status

import "time"

// SchemaVersion is Report.Schema: it changes only when a field is renamed,
// removed or changes meaning (new fields may be added without it).
//
//   - 1: a cluster had one owner job (clusters[].job).
//   - 2: a cluster id belongs to a namespace; clusters[].job became
//     clusters[].tenant (namespace, jobs[] with each job's existence,
//     claimed_at, state, action).
const SchemaVersion = 2

// States of a binding (Binding.State).
const (
	// StateOK: the record's owner is alive and the cloud agrees with it.
	StateOK = "ok"
	// StateDrift: the owner is alive but the cloud disagrees with the
	// record (EIP free or elsewhere, backend missing, disabled or on
	// another host), or the record's namespace is not its cluster's.
	StateDrift = "drift"
	// StateOrphan: a record the collector cannot act on (unparseable), or
	// a resource on an asked EIP/VServer that carries no record.
	StateOrphan = "orphan"
	// StateCollect: the owner is gone; the collector releases the resource
	// and deletes the record.
	StateCollect = "collect"
	// StateReleasing: the owner is releasing it (releasing mark set).
	StateReleasing = "releasing"
	// StateUnknown: Nomad or UCloud could not be asked (or there is no
	// UCloud access), so nothing can be said about drift.
	StateUnknown = "unknown"
	// StateFree: an asked EIP that is free and carries no record.
	StateFree = "free"
)

// RepairAction is what the report says about drift of a live owner.
const RepairAction = "the owning client re-checks and repairs it within reconcile_interval"

// Report is the status document (`rmq-driver status -json`). Field names
// are stable (see SchemaVersion); lists are never null and are sorted,
// except a tenant's jobs, which keep the record's order.
type Report struct {
	// Schema is SchemaVersion.
	Schema int `json:"schema"`
	// GeneratedAt is when the state was read (UTC).
	GeneratedAt time.Time `json:"generated_at"`
	// KVPrefix is the Consul KV prefix of the records.
	KVPrefix string `json:"kv_prefix"`
	// ClusterFilter is the -cluster flag ("" for all clusters).
	ClusterFilter string `json:"cluster_filter"`
	// CloudAccess is false when UCloud was not configured: cloud states
	// are then "unknown (no UCloud access)" and drift cannot be seen.
	CloudAccess bool `json:"cloud_access"`
	// Converged is true when nothing is in drift, orphaned or collectable
	// and nothing failed to be observed.
	Converged bool `json:"converged"`
	// Counts sums the bindings (and unowned findings) by state.
	Counts Counts `json:"counts"`
	// Clusters are the clusters from tenant and owner records, by name.
	Clusters []Cluster `json:"clusters"`
	// Unowned are findings that belong to no cluster: records that cannot
	// be decoded, and resources on the asked EIPs/VServers without a
	// record.
	Unowned []Binding `json:"unowned"`
	// Errors say what could not be observed (Nomad, UCloud or Consul
	// failures, asked resources that do not exist); the command then
	// exits 2.
	Errors []Failure `json:"errors"`
}

// Sources of a Failure.
const (
	SourceNomad  = "nomad"
	SourceUCloud = "ucloud"
	SourceConsul = "consul"
)

// Failure is one thing that could not be observed.
type Failure struct {
	// Source is which service failed: nomad, ucloud or consul.
	Source  string `json:"source"`
	Message string `json:"message"`
}

// Counts are numbers of bindings and findings by state, plus cluster
// claims the collector will delete.
type Counts struct {
	Bindings  int `json:"bindings"`
	OK        int `json:"ok"`
	Drift     int `json:"drift"`
	Orphan    int `json:"orphan"`
	Collect   int `json:"collect"`
	Releasing int `json:"releasing"`
	Unknown   int `json:"unknown"`
	Free      int `json:"free"`
	// ClaimsCollect counts the tenant records the collector deletes: none
	// of their jobs exists any more and their cluster holds no bindings.
	ClaimsCollect int `json:"claims_collect"`
}

// Problems is the number of things the reconciler still has to do or
// cannot do: drift, orphans and collectable records or claims.
func (c Counts) Problems() int { return c.Drift + c.Orphan + c.Collect + c.ClaimsCollect }

// Cluster is one cluster id.
type Cluster struct {
	Name string `json:"name"`
	// Tenant is the tenant record <prefix>/clusters/<name>: the namespace
	// the cluster id belongs to and the jobs of it that used it; null when
	// there is none (records written by an older version).
	Tenant *Tenant `json:"tenant"`
	// NameServers is the cluster's NameServer Consul service; null when
	// not asked.
	NameServers *Service `json:"nameservers"`
	// Bindings are the cluster's owner records, by role, index, kind, key.
	Bindings []Binding `json:"bindings"`
	// Replicas are the replicas of its replicated broker groups as their
	// keepers recorded them, by broker name and slot.
	Replicas []Replica `json:"replicas"`
}

// Tenant is the Nomad namespace a cluster id belongs to, the jobs of that
// namespace that have used it (usually its NameServer job and its broker
// jobs), and what the collector does with the claim.
type Tenant struct {
	Namespace string `json:"namespace"`
	// Jobs are the record's jobs in the order they first used the cluster,
	// each with whether Nomad still knows it.
	Jobs      []TenantJob `json:"jobs"`
	ClaimedAt time.Time   `json:"claimed_at"`
	// State is ok (some job exists, or the cluster still holds bindings),
	// collect (none of its jobs exists and the cluster holds no bindings:
	// the collector deletes the claim) or unknown (nomad could not say).
	State  string `json:"state"`
	Action string `json:"action"`
}

// TenantJob is one job of a tenant record: exactly one of Exists (what
// Nomad said) and Error (why Nomad could not be asked) is set.
type TenantJob struct {
	JobID  string `json:"job_id"`
	Exists *bool  `json:"exists,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Service is a NameServer service as Consul lists it.
type Service struct {
	Name      string     `json:"name"`
	Instances []Instance `json:"instances"`
	Error     string     `json:"error,omitempty"`
}

// Binding is one owner record (or one unrecorded resource) and its state.
type Binding struct {
	// Kind is "eip" or "backend" (or "record" for an undecodable key).
	Kind string `json:"kind"`
	// Key is the Consul key of the record ("" for a resource without one).
	Key string `json:"key"`
	// Recorded is false for a resource found without an owner record.
	Recorded bool `json:"recorded"`
	// Slot is the owner's slot, [namespace/job/group/]cluster/role/index.
	Slot       string `json:"slot"`
	Role       string `json:"role"`
	AllocIndex int    `json:"alloc_index"`
	Namespace  string `json:"namespace"`
	JobID      string `json:"job_id"`
	AllocID    string `json:"alloc_id"`
	// Nomad is the allocation's client status (running, pending, lost,
	// complete, failed, unknown), "unknown to nomad", or "unknown (…)"
	// when Nomad could not be asked.
	Nomad string `json:"nomad"`
	// UHostID is the host the record names; Port the backend's port.
	UHostID string `json:"uhost_id"`
	Port    int    `json:"port"`
	// Resource is the EIP id or the backend id (the record's, else the
	// one found by host and port).
	Resource string `json:"resource"`
	// ULB and VServer are the backend's (backend records only).
	ULB     string `json:"ulb"`
	VServer string `json:"vserver"`
	// ReleasingUntil is the releasing mark, when set.
	ReleasingUntil *time.Time `json:"releasing_until"`
	Cloud          CloudState `json:"cloud"`
	// Decision is collector.Decide's verb for the record: keep, collect
	// or orphan ("" for a resource without a record).
	Decision string `json:"decision"`
	// State is one of the State* constants.
	State string `json:"state"`
	// Reason says why (what was seen); Action what the reconciler will do.
	Reason string `json:"reason"`
	Action string `json:"action"`
}

// CloudState is what UCloud said about a binding's resource.
type CloudState struct {
	// Known is false without UCloud access or when the call failed.
	Known bool `json:"known"`
	// Summary is the human form: "bound to uhost-a", "free", "listed,
	// enabled", "missing", "unknown (no UCloud access)", …
	Summary string `json:"summary"`
	// EIP: Status (used, free, freeze), the resource it is bound to and
	// its addresses.
	Status    string   `json:"status,omitempty"`
	BoundType string   `json:"bound_type,omitempty"`
	BoundID   string   `json:"bound_id,omitempty"`
	IPs       []string `json:"ips,omitempty"`
	// Backend: whether the VServer lists it, its id, host, port, whether
	// it is enabled and its health.
	Listed     *bool  `json:"listed,omitempty"`
	BackendID  string `json:"backend_id,omitempty"`
	ResourceID string `json:"resource_id,omitempty"`
	BackendIP  string `json:"backend_ip,omitempty"`
	Port       int    `json:"port,omitempty"`
	Enabled    *bool  `json:"enabled,omitempty"`
	Health     string `json:"health,omitempty"`
}

// ExitCode is the command's exit status for a report: 2 when something
// could not be observed, 1 when drift, orphans or collectable records or
// claims exist, 0 when converged.
func ExitCode(r Report) int {
	switch {
	case len(r.Errors) > 0:
		return 2
	case r.Counts.Problems() > 0:
		return 1
	}
	return 0
}
