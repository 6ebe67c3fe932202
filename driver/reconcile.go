package driver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hashicorp/nomad/plugins/drivers"

	"github.com/rmqnomad/rocketmq-nomad-driver/collector"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// Binding states reported by the bindings gauge.
const (
	bindingOK       = "ok"
	bindingNotOwner = "not_owner"
	bindingUnknown  = "unknown"
)

// reconcileLoop re-checks the binding of every task this plugin runs every
// interval (jittered by up to 20%), until ctx ends: bindings are desired
// state, and drift (an EIP unbound or moved by hand, a backend released by
// hand, an owner record deleted) is repaired. Each re-check holds the
// task's binding lock (withBinding), so it never binds for a task that is
// stopping or stopped.
func (d *Driver) reconcileLoop(ctx context.Context, interval time.Duration) {
	for {
		wait := interval - time.Duration(rand.Int64N(int64(interval)/5+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		d.reconcileOnce(ctx)
	}
}

// reconcileOnce re-checks every tracked task's binding once: one
// observation of all of them (observePass), then the full reconcile, task
// by task, of those not in place (a mass drift is repaired at the binders'
// pace, not all at once). A task whose binding is being changed (its lock
// is held: a start's rollback, a stop, a recovery) is left to that.
func (d *Driver) reconcileOnce(ctx context.Context) {
	c, err := d.cloudOrErr(&RocketMQConfig{Mode: ModePublic})
	if err != nil {
		return
	}
	d.mu.RLock()
	recs := make(map[string]*taskRecord, len(d.tasks))
	for id, rec := range d.tasks {
		if rec.state.Binding != nil {
			recs[id] = rec
		}
	}
	d.mu.RUnlock()
	ids := make([]string, 0, len(recs))
	bindings := make([]Binding, 0, len(recs))
	for id, rec := range recs {
		if rec.stopping() || !rec.mu.TryLock() {
			continue
		}
		b := *rec.state.Binding
		rec.mu.Unlock()
		if b.Released {
			continue
		}
		ids = append(ids, id)
		bindings = append(bindings, b)
	}
	if len(ids) == 0 {
		d.setBindingGauges(nil)
		return
	}
	octx, cancel := context.WithTimeout(ctx, d.bindTimeout())
	snap := observePass(octx, c, bindings)
	cancel()
	counts := map[[2]string]float64{}
	now := time.Now()
	for i, id := range ids {
		if ctx.Err() != nil {
			return
		}
		b := bindings[i]
		ok, known := inPlace(b, snap, now)
		switch {
		case !known:
			counts[[2]string{b.Kind, bindingUnknown}]++
			continue
		case ok:
			counts[[2]string{b.Kind, bindingOK}]++
			continue
		}
		kind, state := d.recheck(c, id)
		if kind != "" {
			counts[[2]string{kind, state}]++
		}
	}
	d.setBindingGauges(counts)
}

// setBindingGauges publishes one pass's counts of bindings by kind and
// state.
func (d *Driver) setBindingGauges(counts map[[2]string]float64) {
	for _, kind := range []string{BindingEIP, BindingBackend} {
		for _, state := range []string{bindingOK, bindingNotOwner, bindingUnknown} {
			d.metrics.bindings.WithLabelValues(kind, state).Set(counts[[2]string{kind, state}])
		}
	}
}

// recheck re-checks one task's binding and reports its kind and state
// ("" kind when the task is stopping or has no binding).
func (d *Driver) recheck(c *cloud, taskID string) (string, string) {
	var kind, msg string
	var rec *taskRecord
	err := d.withBinding(taskID, func(ctx context.Context, b *Binding) error {
		if b == nil {
			return nil
		}
		kind = b.Kind
		rec, _ = d.taskRecord(taskID)
		ctx, cancel := context.WithTimeout(ctx, d.bindTimeout())
		defer cancel()
		var err error
		msg, err = d.recheckOnce(ctx, c, b)
		return err
	})
	switch {
	case kind == "" || errors.Is(err, errBindingClosed) || (rec != nil && rec.stopping()):
		return "", ""
	case err == nil && msg != "":
		d.metrics.repairs.WithLabelValues(kind).Inc()
		d.emitFor(taskID, rec, msg)
		d.logger.Warn("repaired binding drift", "task_id", taskID, "kind", kind, "event", msg)
		return kind, bindingOK
	case err == nil:
		return kind, bindingOK
	case ucloudapi.IsPermanent(err):
		if !rec.noteLost() {
			d.emitFor(taskID, rec, fmt.Sprintf("binding is no longer this task's: %v", err))
		}
		d.logger.Error("binding of a running task is no longer ours", "task_id", taskID, "kind", kind, "error", err)
		return kind, bindingNotOwner
	default:
		d.logger.Warn("failed to re-check binding; trying again next interval", "task_id", taskID, "kind", kind, "error", err)
		return kind, bindingUnknown
	}
}

// recheckOnce verifies the binding; it returns the event to report when
// something was repaired ("" when all was in place).
func (d *Driver) recheckOnce(ctx context.Context, c *cloud, b *Binding) (string, error) {
	switch b.Kind {
	case BindingEIP:
		res, err := c.eips.Verify(ctx, b.eipRequest())
		if err != nil || !res.Changed {
			return "", err
		}
		return fmt.Sprintf("repaired drift: EIP %s (%s) bound to %s again", b.EIPID, res.IP, b.UHostID), nil
	case BindingBackend:
		res, err := c.ulbs.Verify(ctx, b.ulbRequest())
		if err != nil || !res.Changed {
			return "", err
		}
		b.BackendID = res.BackendID
		return fmt.Sprintf("repaired drift: backend %s (%s:%d) registered with %s/%s again", res.BackendID, b.PrivateIP, b.Port, b.ULBID, b.VServerID), nil
	}
	return "", ucloudapi.Permanent(fmt.Errorf("binding kind %q is unknown", b.Kind))
}

// emitFor sends a task event for a tracked task.
func (d *Driver) emitFor(taskID string, rec *taskRecord, msg string) {
	cfg := &drivers.TaskConfig{ID: taskID}
	if rec != nil {
		cfg.Name = rec.state.TaskName
		if b := rec.state.Binding; b != nil {
			cfg.AllocID = b.Owner.AllocID
		}
	}
	d.emit(cfg, msg, nil)
}

// startCollector runs the elected collector of bindings of gone owners,
// when this client has Consul.
func (d *Driver) startCollector(c *cloud, interval time.Duration) {
	if c.owners == nil {
		d.logger.Info("binding collector off: it needs consul")
		return
	}
	col, err := collector.New(collector.Config{
		Records:   c.owners,
		Liveness:  c.nomad,
		JobExists: c.nomad.JobExists,
		EIPs:      c.eips,
		Backends:  c.ulbs,
		Logger:    d.logger.Named("collector"),
		Observe:   func(kind, outcome string) { d.metrics.collected.WithLabelValues(kind, outcome).Inc() },
	})
	if err != nil {
		d.logger.Error("binding collector off", "error", err)
		return
	}
	go col.RunElected(d.ctx, c.consul, c.owners.Prefix()+"/collector/leader", interval)
}
