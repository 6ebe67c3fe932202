package driver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/nomad/plugins/drivers"

	"github.com/rmqnomad/rocketmq-nomad-driver/replica"
	"github.com/rmqnomad/rocketmq-nomad-driver/rmqadmin"
)

// The master handoff before a replica stops (docs/replication.md): when
// StopTask stops the master of a controller-mode group and another replica
// is in the SyncStateSet, the driver first asks the controllers to elect
// that replica (CONTROLLER_ELECT_MASTER, as `mqadmin electMaster`), waits
// until they report it master, and then stops the container. Without the
// handoff the controllers elect only once they notice the master gone.
// Observe here, decide in replica.DecideHandoff (pure), act here; a
// handoff that cannot happen is logged and announced, and the stop goes on.

const (
	// handoffMax bounds the handoff; it is also at most handoffShare of
	// the task's kill timeout, and at least handoffMin.
	handoffMax   = 5 * time.Second
	handoffMin   = time.Second
	handoffShare = 3
	// handoffCall bounds each call of the handoff.
	handoffCall = time.Second
	// handoffPoll is the pace at which the controllers are asked whether
	// the new master is theirs.
	handoffPoll = 100 * time.Millisecond
)

// handoffBudget is how long a stop may spend on the handoff, for a task
// whose kill timeout is killTimeout.
func handoffBudget(killTimeout time.Duration) time.Duration {
	return max(min(handoffMax, killTimeout/handoffShare), handoffMin)
}

// handoffResult is what a handoff did, for its event and log line.
type handoffResult struct {
	handed bool
	// skip says why there was none (when one could have been wanted).
	skip     string
	to       rmqadmin.Replica
	from     int64
	took     time.Duration
	name     string
	attempts int // elections asked for
}

// handOff runs the handoff of a stopping broker task, if it is a
// controller-mode replica, within budget, and announces the outcome. It
// never fails the stop.
func (d *Driver) handOff(taskID string, rec *taskRecord, budget time.Duration) {
	rmq := rec.state.RocketMQ
	if !rmq.Replicated() || rec.state.Keep == nil || rec.state.Keep.Admin == "" {
		return
	}
	ctx, cancel := context.WithTimeout(d.ctx, budget)
	defer cancel()
	begin := time.Now()
	res := d.handOffReplica(ctx, rec, budget)
	res.took = time.Since(begin)
	event := func(msg string, annotations map[string]string) {
		d.emit(&drivers.TaskConfig{ID: taskID, Name: rec.state.TaskName, AllocID: rec.state.Keep.AllocID}, "rocketmq broker: "+msg, annotations)
	}
	kv := []any{"task_id", taskID, "cluster", rmq.Cluster, "broker_name", res.name, "took", res.took, "elections", res.attempts}
	switch {
	case res.handed:
		d.logger.Info("handed the master role over before stopping", append(kv, "from_broker_id", res.from,
			"to_broker_id", res.to.BrokerID, "to", res.to.Address)...)
		event(fmt.Sprintf("replica: handed the master role to broker id %d (%s) before stopping, in %.1f s",
			res.to.BrokerID, res.to.Address, res.took.Seconds()),
			map[string]string{"handoff": "done", "from_broker_id": strconv.FormatInt(res.from, 10),
				"to_broker_id": strconv.FormatInt(res.to.BrokerID, 10), "to": res.to.Address})
	case res.skip == "":
		d.logger.Debug("no master handoff before stopping: not the master", append(kv, "broker_id", res.from)...)
	default:
		d.logger.Warn("no master handoff before stopping; the controllers elect a new master once they notice this replica gone",
			append(kv, "reason", res.skip, "budget", budget)...)
		event("replica: did not hand the master role over before stopping: "+res.skip,
			map[string]string{"handoff": "skipped", "reason": res.skip})
	}
}

// handOffReplica observes, decides and acts, within ctx (whose deadline
// is budget away); a zero result (neither handed nor skip) means there was
// nothing to hand over.
func (d *Driver) handOffReplica(ctx context.Context, rec *taskRecord, budget time.Duration) handoffResult {
	rmq := rec.state.RocketMQ
	obs := replica.HandoffObservation{ControllerMode: true, Self: rec.state.Advertised.String()}
	cctx, cancel := context.WithTimeout(ctx, handoffCall)
	obs.Conf, obs.ConfErr = rmqadmin.BrokerConfig(cctx, rec.state.Keep.Admin)
	cancel()
	leader := ""
	if name := obs.Conf["brokerName"]; name != "" {
		info, ok, from, err := rmqadmin.SyncStateFrom(ctx, rmq.Controllers, "", name, handoffCall)
		switch {
		case err != nil:
			obs.SyncErr = err
		case ok:
			obs.Group = &info
		}
		leader = from
	}
	plan := replica.DecideHandoff(obs)
	res := handoffResult{skip: plan.Skip, from: plan.SelfID, name: plan.BrokerName}
	if !plan.Elect {
		return res
	}
	cluster := obs.Conf["brokerClusterName"]
	if cluster == "" {
		cluster = rmq.Cluster
	}
	var errs []error
	for _, c := range plan.Candidates {
		res.attempts++
		el, from, err := rmqadmin.ElectMasterFrom(ctx, rmq.Controllers, leader, cluster, plan.BrokerName, c.BrokerID, handoffCall)
		if from != "" {
			leader = from
		}
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if el.MasterBrokerID != c.BrokerID {
			errs = append(errs, fmt.Errorf("controller %s elected broker id %d of %s, not %d", from, el.MasterBrokerID, plan.BrokerName, c.BrokerID))
			break
		}
		if err := waitMaster(ctx, rmq.Controllers, leader, plan.BrokerName, c.BrokerID); err != nil {
			errs = append(errs, err)
			break
		}
		res.handed, res.skip, res.to = true, "", c
		return res
	}
	// An answer lost on its way back (a timeout at the leader) may still
	// have been an election: what the controllers say now decides.
	if ctx.Err() == nil {
		if info, ok, _, err := rmqadmin.SyncStateFrom(ctx, rmq.Controllers, leader, plan.BrokerName, handoffCall); err == nil && ok {
			for _, c := range plan.Candidates {
				if info.MasterBrokerID == c.BrokerID {
					res.handed, res.skip, res.to = true, "", c
					return res
				}
			}
		}
	}
	err := errors.Join(errs...)
	if ctx.Err() != nil {
		res.skip = fmt.Sprintf("the handoff did not finish within %.1f s: %v", budget.Seconds(), err)
	} else {
		res.skip = fmt.Sprintf("the controllers elected none of the in-sync replicas: %v", err)
	}
	return res
}

// waitMaster waits until the controllers report broker id as the group's
// master (they commit an election before they answer it, so this is
// normally the first ask).
func waitMaster(ctx context.Context, controllers []string, first, name string, id int64) error {
	var last error
	for {
		info, ok, from, err := rmqadmin.SyncStateFrom(ctx, controllers, first, name, handoffCall)
		switch {
		case err != nil:
			last = err
		case !ok:
			last = fmt.Errorf("the controllers do not know broker %s", name)
		case info.MasterBrokerID == id:
			return nil
		default:
			last = fmt.Errorf("the controllers report broker id %d of %s as master, not %d", info.MasterBrokerID, name, id)
		}
		if from != "" {
			first = from
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for broker id %d of %s to be master: %w", id, name, last)
		case <-time.After(handoffPoll):
		}
	}
}
