package driver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// The binding lock and the stopping state of a task: the rule is in
// docs/binding.md, "One lock per task".

// errBindingClosed is what withBinding returns once a task's stop has begun
// or the task is no longer tracked: nothing may bind for it any more.
var errBindingClosed = errors.New("the task is stopping or gone, its binding is not re-checked any more")

// Backoff between the attempts of a release at stop.
const (
	releaseBackoff    = 500 * time.Millisecond
	maxReleaseBackoff = 5 * time.Second
)

// taskRecord is what the driver tracks per task.
type taskRecord struct {
	// state is complete before the record is tracked; after that only the
	// fields of state.Binding change, and only under mu.
	state taskState

	// mu is the task's binding lock. Bind, the rollback of a failed
	// start, release, verify and any other re-check hold it while they
	// read or change the task's binding.
	mu sync.Mutex

	// ctx is cancelled (cause errBindingClosed) when the task's stop
	// begins, or when the plugin shuts down. Re-checks run their calls
	// under it, so a stop cuts an attempt in flight short.
	ctx  context.Context
	stop context.CancelCauseFunc

	// lost is set once a re-check found the binding taken by another
	// allocation, so that is reported in one event, not every interval.
	lost atomic.Bool
}

// noteLost records that the binding was found lost and reports whether it
// had been already.
func (r *taskRecord) noteLost() bool { return r.lost.Swap(true) }

func newTaskRecord(parent context.Context) *taskRecord {
	ctx, stop := context.WithCancelCause(parent)
	return &taskRecord{ctx: ctx, stop: stop}
}

// beginStop marks the task stopping, for good: withBinding refuses from now
// on and a re-check in flight is cancelled. It does not wait for the lock.
func (r *taskRecord) beginStop() { r.stop(errBindingClosed) }

// stopping reports whether the task's stop has begun (or the plugin is
// shutting down).
func (r *taskRecord) stopping() bool { return r.ctx.Err() != nil }

// kind is the kind of the task's binding, "" without one. The binding and
// its kind are set before the record is tracked and never change.
func (r *taskRecord) kind() string {
	if r.state.Binding == nil {
		return ""
	}
	return r.state.Binding.Kind
}

// taskRecord returns the record of a tracked task.
func (d *Driver) taskRecord(taskID string) (*taskRecord, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	rec, ok := d.tasks[taskID]
	return rec, ok
}

// withBinding runs fn under the task's binding lock, with the task's binding
// (nil when it has none) and a context that the task's stop cancels: fn
// derives its calls' deadlines from it. Once the task's stop has begun, its
// binding was released, or the task is no longer tracked, withBinding
// refuses with an error wrapping errBindingClosed and does not call fn.
//
// It is how everything but the stop itself touches a running task's
// binding: recovery's verify, and any periodic re-check.
func (d *Driver) withBinding(taskID string, fn func(ctx context.Context, b *Binding) error) error {
	rec, ok := d.taskRecord(taskID)
	if !ok {
		return fmt.Errorf("task %s is not tracked: %w", taskID, errBindingClosed)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	// Checked again under the lock: a stop may have begun, or even ended
	// and untracked the task, while we waited for it.
	if cur, ok := d.taskRecord(taskID); !ok || cur != rec || rec.stopping() {
		return fmt.Errorf("task %s: %w", taskID, errBindingClosed)
	}
	if b := rec.state.Binding; b != nil && b.Released {
		return fmt.Errorf("task %s released its binding: %w", taskID, errBindingClosed)
	}
	return fn(rec.ctx, rec.state.Binding)
}

// releaseBinding begins the task's stop and releases its binding under the
// binding lock. With retry it tries again, with backoff, until the release
// succeeds, fails for good or budget runs out; without, it tries once. The
// budget is fresh, from the plugin's context, never the caller's.
func (d *Driver) releaseBinding(taskID string, rec *taskRecord, budget time.Duration, retry bool) error {
	rec.beginStop()
	ctx, cancel := context.WithTimeout(d.ctx, budget)
	defer cancel()
	wait := releaseBackoff
	for attempt := 1; ; attempt++ {
		err := d.releaseLocked(ctx, taskID, rec)
		if err == nil || !retry || ucloudapi.IsPermanent(err) {
			return err
		}
		d.logger.Warn("failed to release binding, retrying", "task_id", taskID, "kind", rec.kind(),
			"attempt", attempt, "wait", wait, "error", err)
		if !ucloudapi.Sleep(ctx, wait) {
			return fmt.Errorf("%w (gave up after %d attempts in %s)", err, attempt, budget)
		}
		wait = min(2*wait, maxReleaseBackoff)
	}
}

func (d *Driver) releaseLocked(ctx context.Context, taskID string, rec *taskRecord) error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return d.release(ctx, taskID, rec.state.Binding)
}

// logUnreleased reports, at Error, a binding that is still in place though
// its task is gone, with everything needed to find it.
func (d *Driver) logUnreleased(taskID string, b *Binding, when string, err error) {
	// TODO(binding-gc): nothing retries this release once DestroyTask has
	// returned (Nomad calls it once). The binding stays in place, and so
	// does its owner record in Consul (the binders delete a record only
	// after the release succeeded): <kv_prefix>/owners/eip/<eip id> or
	// <kv_prefix>/owners/backend/<ulb>/<vserver>/<slot>, naming the
	// allocation, node, uhost and resource. A garbage collector can find
	// it there and release it once that allocation is terminal. Without
	// Consul this log line is the only trace.
	d.logger.Error("binding left in place: release failed", "when", when, "task_id", taskID,
		"alloc_id", b.Owner.AllocID, "node_id", b.Owner.NodeID, "kind", b.Kind, "uhost_id", b.UHostID,
		"eip_id", b.EIPID, "ulb_id", b.ULBID, "vserver_id", b.VServerID, "backend_id", b.BackendID,
		"port", b.Port, "owner_record", d.ownerKey(b), "error", err)
}

// ownerKey is the Consul key of the binding's owner record ("" without
// Consul).
func (d *Driver) ownerKey(b *Binding) string {
	d.mu.RLock()
	c := d.cloud
	d.mu.RUnlock()
	if c == nil || c.owners == nil {
		return ""
	}
	kind, key := ownershipKey(b)
	k, err := c.owners.Key(kind, key)
	if err != nil {
		return ""
	}
	return k
}
