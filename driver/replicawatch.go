package driver

import (
	"context"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/replica"
	"github.com/rmqnomad/rocketmq-nomad-driver/rmqadmin"
)

// The keeper of a replicated broker also watches the replica
// (docs/replication.md, "Watching a group"): each pass it observes the
// broker's HA status and the controllers' view of its group, derives the
// replica's role, broker id and sync state (replica.Derive, pure), and
// acts on replica.Decide: a task event when the state changes, a record
// in Consul KV (<kv_prefix>/replicas/...) for `rmq-driver status`.

const (
	// replicaCallTimeout bounds the HA status call and each controller's
	// answer.
	replicaCallTimeout = 2 * time.Second
	// replicaSettle is how long after its start a replica whose state is
	// not fully known yet is looked at every settleInterval.
	replicaSettle = 2 * time.Minute
)

// replicaWatch is what the keeper remembers between passes.
type replicaWatch struct {
	announced *replica.State // the last state sent as an event
	written   *replica.State // the last state recorded in Consul
	writtenAt time.Time
	changedAt time.Time
	// leader is the controller that answered last: asked first.
	leader string
}

// watchReplica is one observe / decide / act round; it reports whether
// the replica's state is fully known.
func (k *keeper) watchReplica(ctx context.Context, broker string, conf map[string]string) bool {
	obs := k.observeReplica(ctx, broker, conf)
	now := time.Now()
	cur := replica.Derive(obs)
	plan := replica.Decide(k.rw.announced, k.rw.written, k.rw.writtenAt, cur, now)
	if k.rw.written == nil || !replica.Same(*k.rw.written, cur) {
		k.rw.changedAt = now
	}
	if plan.Event {
		k.d.logger.Info("replica state", "task_id", k.taskID, "cluster", k.rmq.Cluster, "broker_name", cur.BrokerName,
			"role", cur.Role, "broker_id", cur.BrokerID, "in_sync", cur.InSync, "sync_set", cur.SyncSetSize,
			"replicas", cur.Replicas, "master", cur.MasterAddr, "ha_master", cur.HAMasterAddr)
		k.event("replica: "+cur.Summary(), cur.Annotations())
		announced := cur
		k.rw.announced = &announced
	}
	if cur.Problem != "" {
		k.d.logger.Debug("replica state not fully known", "task_id", k.taskID, "cluster", k.rmq.Cluster, "problem", cur.Problem)
	}
	if plan.Write {
		if err := k.recordReplica(ctx, cur, now); err != nil {
			k.warnOnce("cannot record the replica's state in consul; rmq-driver status shows an older one", "", "error", err)
			return cur.Known()
		}
		written := cur
		k.rw.written, k.rw.writtenAt = &written, now
	}
	return cur.Known()
}

// observeReplica reads the broker's HA status and asks the controllers
// for its group. Failures are part of the observation.
func (k *keeper) observeReplica(ctx context.Context, broker string, conf map[string]string) replica.Observation {
	obs := replica.Observation{Self: k.advertised, Conf: conf}
	hctx, cancel := context.WithTimeout(ctx, replicaCallTimeout)
	obs.HA, obs.HAErr = rmqadmin.GetHAStatus(hctx, broker)
	cancel()
	name := conf["brokerName"]
	if name == "" {
		return obs
	}
	info, ok, from, err := rmqadmin.SyncStateFrom(ctx, k.rmq.Controllers, k.rw.leader, name, replicaCallTimeout)
	switch {
	case err != nil:
		obs.SyncErr = err
	case ok:
		obs.Group = &info
	}
	if from != "" {
		k.rw.leader = from
	}
	return obs
}

// recordReplica writes the replica's record (a plain put: the key is
// this allocation slot's, and only its keeper writes it).
func (k *keeper) recordReplica(ctx context.Context, s replica.State, now time.Time) error {
	c := k.d.stateConsul()
	if c == nil {
		return nil
	}
	rec := replica.Record{State: s, Cluster: k.rmq.Cluster, Namespace: k.keep.Namespace, JobID: k.keep.JobID,
		Group: k.keep.Group, AllocIndex: k.rec.state.AllocIndex, AllocID: k.keep.AllocID, NodeName: k.keep.NodeName,
		Address: k.advertised, HAAddress: k.keep.HAAddr, ObservedAt: now.UTC(), ChangedAt: k.rw.changedAt.UTC()}
	if rec.BrokerName == "" {
		return nil // not known before the broker answers its config
	}
	body, err := rec.Encode()
	if err != nil {
		return err
	}
	_, err = c.KV().Put(&consulapi.KVPair{Key: replica.Key(k.d.kvPrefix(), rec), Value: body}, (&consulapi.WriteOptions{}).WithContext(ctx))
	return err
}

// kvPrefix is the plugin's consul.kv_prefix.
func (d *Driver) kvPrefix() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.config.Consul != nil && d.config.Consul.KVPrefix != "" {
		return d.config.Consul.KVPrefix
	}
	return ownership.DefaultPrefix
}
