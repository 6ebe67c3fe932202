package status

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/replica"
)

// The replicas of replicated broker groups, as each replica's keeper
// recorded them (<prefix>/replicas/..., docs/replication.md, "Watching a
// group"). Status reads the records and asks Nomad about each record's
// allocation; it never asks a broker or a controller, so it needs no
// route to the RocketMQ hosts, and no host has to answer at the time of
// asking. A record whose allocation is not running, or that its keeper
// has not refreshed for StaleAfter, is shown as not current.

// StaleAfter is the age after which a replica record of a running
// allocation is not current: its keeper rewrites it every
// replica.RecordRefresh.
const StaleAfter = 3 * replica.RecordRefresh

// ReplicaLister reads the replica records.
type ReplicaLister interface {
	// Replicas returns every record that decodes, and the keys of those
	// that do not.
	Replicas(ctx context.Context) ([]replica.Record, []Unreadable, error)
}

// ConsulReplicas reads the records under Prefix's replicas folder.
type ConsulReplicas struct {
	KV     *consulapi.KV
	Prefix string
}

// Replicas lists and decodes the records (consistent read).
func (c ConsulReplicas) Replicas(ctx context.Context) ([]replica.Record, []Unreadable, error) {
	dir := replica.Dir(c.Prefix)
	pairs, _, err := c.KV.List(dir, (&consulapi.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return nil, nil, fmt.Errorf("list replica records under %s: %w", dir, err)
	}
	var out []replica.Record
	var bad []Unreadable
	for _, p := range pairs {
		r, err := replica.Decode(c.Prefix, p.Key, p.Value)
		if err != nil {
			bad = append(bad, Unreadable{Key: p.Key, Reason: err.Error()})
			continue
		}
		out = append(out, r)
	}
	return out, bad, nil
}

// ReplicaObs is one replica record and what Nomad said of its allocation.
type ReplicaObs struct {
	Record replica.Record
	Alloc  AllocObs
}

// observeReplicas reads the records in the filter and asks Nomad about
// each allocation (through allocs, the cache of owner allocations).
func observeReplicas(ctx context.Context, d Deps, s *Snapshot, allocs map[string]AllocObs, clusters map[string]bool) {
	recs, bad, err := d.Replicas.Replicas(ctx)
	if err != nil {
		s.ReplicaErrs = append(s.ReplicaErrs, err.Error())
		return
	}
	for _, u := range bad {
		s.ReplicaErrs = append(s.ReplicaErrs, "replica record "+u.Key+" cannot be read: "+u.Reason)
	}
	for _, r := range recs {
		if d.Cluster != "" && r.Cluster != d.Cluster {
			continue
		}
		clusters[r.Cluster] = true
		k := r.Namespace + "\x00" + r.AllocID
		a, ok := allocs[k]
		if !ok {
			a = observeAlloc(ctx, d.Allocs, ownership.Owner{Namespace: r.Namespace, AllocID: r.AllocID})
			allocs[k] = a
		}
		s.Replicas = append(s.Replicas, ReplicaObs{Record: r, Alloc: a})
	}
}

// Replica is one replica of a replicated broker group in the report.
type Replica struct {
	BrokerName string `json:"broker_name"`
	// Key is the record's Consul key; Slot its allocation slot,
	// namespace/job/group/index.
	Key     string `json:"key"`
	Slot    string `json:"slot"`
	AllocID string `json:"alloc_id"`
	// Nomad is the allocation's client status, as for bindings.
	Nomad string `json:"nomad"`
	Node  string `json:"node"`
	// Address is the replica's brokerIP1:listenPort (the EIP in public
	// mode); HAAddress its brokerIP2:haListenPort.
	Address   string `json:"address"`
	HAAddress string `json:"ha_address"`
	// Role (master, slave, "" unknown), BrokerID (the controllers' id, 0
	// unknown), the group's Master (brokerIP1:listenPort) and, for a
	// slave, HAMaster, the address it replicates from.
	Role     string `json:"role"`
	BrokerID int64  `json:"broker_id"`
	Master   string `json:"master"`
	HAMaster string `json:"ha_master"`
	// SyncKnown, InSync, SyncSetSize and Replicas: the replica's place in
	// the SyncStateSet as the controllers last said; Sync is it in words
	// ("in sync set (2 of 3)").
	SyncKnown   bool   `json:"sync_known"`
	InSync      bool   `json:"in_sync"`
	SyncSetSize int    `json:"sync_set_size"`
	Replicas    int    `json:"replicas"`
	Sync        string `json:"sync"`
	// Summary is the line of the replica's last task event.
	Summary    string    `json:"summary"`
	ObservedAt time.Time `json:"observed_at"`
	ChangedAt  time.Time `json:"changed_at"`
	// AgeSeconds is how old the record is.
	AgeSeconds int64 `json:"age_seconds"`
	// Current is false when the allocation is not running or the record
	// is older than StaleAfter: then it says what was, not what is.
	Current bool `json:"current"`
	// Note says why it is not current, or what was not known.
	Note string `json:"note"`
}

// decideReplica turns a record into a report row.
func decideReplica(now time.Time, prefix string, o ReplicaObs) Replica {
	r := o.Record
	ns := nsOr(r.Namespace)
	row := Replica{
		BrokerName: r.BrokerName, Key: replica.Key(prefix, r), Slot: ns + "/" + r.JobID + "/" + r.Group + "/" + strconv.Itoa(r.AllocIndex),
		AllocID: r.AllocID, Node: r.NodeName, Address: r.Address, HAAddress: r.HAAddress,
		Role: r.Role, BrokerID: r.BrokerID, Master: r.MasterAddr, HAMaster: r.HAMasterAddr,
		SyncKnown: r.SyncKnown, InSync: r.InSync, SyncSetSize: r.SyncSetSize, Replicas: r.Replicas, Sync: r.SyncText(),
		Summary: r.Summary(), ObservedAt: r.ObservedAt, ChangedAt: r.ChangedAt, AgeSeconds: int64(now.Sub(r.ObservedAt) / time.Second),
		Nomad: nomadState(o.Alloc), Note: r.Problem,
	}
	age := now.Sub(r.ObservedAt)
	switch {
	case !o.Alloc.Found || o.Alloc.Alloc.ClientStatus != "running":
		row.Note = fmt.Sprintf("allocation %s is %s: the record is what its keeper saw %s ago", short(r.AllocID), row.Nomad, age.Round(time.Second))
	case age > StaleAfter:
		row.Note = fmt.Sprintf("not refreshed for %s (its keeper rewrites it every %s): the plugin on %s may not be running", age.Round(time.Second), replica.RecordRefresh, dash(r.NodeName))
	default:
		row.Current = true
	}
	return row
}

func sortReplicas(rs []Replica) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].BrokerName != rs[j].BrokerName {
			return rs[i].BrokerName < rs[j].BrokerName
		}
		return rs[i].Slot < rs[j].Slot
	})
}

// replicaTable renders a cluster's replicas, one table per broker name,
// with a note per replica that is not current or not fully known.
func replicaTable(ew *errWriter, rs []Replica) {
	for i, r := range rs {
		if i == 0 || rs[i-1].BrokerName != r.BrokerName {
			ew.printf("  replicas of %s:\n", r.BrokerName)
			tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  ALLOC\tNOMAD\tNODE\tADDRESS\tROLE\tID\tSYNC\tREPLICATES FROM\tSEEN")
			for _, g := range rs[i:] {
				if g.BrokerName != r.BrokerName {
					break
				}
				id := "-"
				if g.BrokerID != 0 {
					id = strconv.FormatInt(g.BrokerID, 10)
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%ds ago\n", dash(short(g.AllocID)), dash(g.Nomad), dash(g.Node),
					dash(g.Address), or(g.Role, "unknown"), id, g.Sync, dash(g.HAMaster), g.AgeSeconds)
			}
			_ = tw.Flush()
		}
	}
	for _, r := range rs {
		switch {
		case !r.Current:
			ew.printf("  not current: %s %s: %s\n", r.BrokerName, r.Slot, r.Note)
		case r.Note != "":
			ew.printf("  partly known: %s %s: %s\n", r.BrokerName, r.Slot, r.Note)
		}
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
