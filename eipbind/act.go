package eipbind

import (
	"context"
	"errors"
	"fmt"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// op is one Bind, Verify or Release: its request and what its attempts
// did so far.
type op struct {
	b    *Binder
	req  Request
	mode mode
	log  hclog.Logger
	progress
	// claimed: we wrote our owner record; prev is the record it replaced.
	claimed bool
	prev    *ownership.Owner
	// triedBind: we sent a BindEIP (its reply may have been lost).
	// bound: one succeeded and waits to be confirmed by a describe;
	// everBound: one succeeded.
	triedBind, bound, everBound bool
	// unbound: our Release's UnBindEIP succeeded.
	unbound bool
	ip      string
}

func (b *Binder) newOp(req Request, m mode) *op {
	return &op{b: b, req: req, mode: m,
		log: b.logger.With("eip_id", req.EIPID, "uhost_id", req.UHostID, "alloc_id", req.Owner.AllocID)}
}

func (o *op) prepare() error {
	req, err := o.b.check(o.req)
	o.req = req
	return err
}

func (o *op) result() Result {
	return Result{EIPID: o.req.EIPID, IP: o.ip, UHostID: o.req.UHostID, PreviousUHost: o.unboundFrom,
		Changed: o.triedBind || o.unboundFrom != ""}
}

// observe reads the EIP, its owner record and, for a record of another
// allocation of this slot that a Bind might take over, its owner's
// liveness.
func (o *op) observe(ctx context.Context) (observed, error) {
	b, req := o.b, o.req
	e, err := b.describe(ctx, req)
	if err != nil {
		return observed{}, err
	}
	if len(e.IPs) > 0 {
		o.ip = e.IPs[0]
	}
	s := observed{eip: *e, records: b.owners != nil}
	if !s.records {
		return s, nil
	}
	if s.rec, s.idx, err = b.owners.Get(ctx, ownership.KindEIP, req.EIPID); err != nil {
		return observed{}, err
	}
	if asksLiveness(req, o.mode, s.rec) {
		s.held, s.why, s.heldErr = ownership.Held(ctx, b.liveness, *s.rec, b.now())
	}
	return s, nil
}

// act carries out a Bind or Verify plan.
func (o *op) act(ctx context.Context, p plan) (Result, error) {
	if p.unbound {
		o.unboundFrom = o.takeoverFrom
	}
	if p.drift {
		o.log.Warn("eip was moved away from its owner's host, moving it back", "bound_to", p.from)
	}
	if p.claim {
		if p.prev != nil && p.ended != "" {
			o.log.Info("previous owner of eip has ended", "previous_alloc_id", p.prev.AllocID, "why", p.ended)
		}
		if err := o.claim(ctx, p.prev, p.idx); err != nil {
			return Result{}, err
		}
	}
	switch p.kind {
	case planBind:
		return o.bindHere(ctx)
	case planTakeover:
		o.takeoverFrom = p.from
		o.log.Info("taking eip over from a previous allocation", "previous_uhost_id", p.from, "previous_alloc_id", allocOf(o.prev))
		if err := o.b.api.UnBindEIP(ctx, o.req.EIPID, p.from); err != nil {
			return Result{}, callFailed(err)
		}
		o.unboundFrom = p.from
		return o.bindHere(ctx)
	}
	return o.result(), nil // planDone, planClaim
}

func allocOf(o *ownership.Owner) string {
	if o == nil {
		return ""
	}
	return o.AllocID
}

// claim writes our owner record over prev (nil: none) at idx.
func (o *op) claim(ctx context.Context, prev *ownership.Owner, idx uint64) error {
	ok, err := o.b.owners.Claim(ctx, ownership.KindEIP, o.req.EIPID, o.req.Owner, idx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("eip %s: %w", o.req.EIPID, ucloudapi.ErrCASLost)
	}
	if !o.claimed {
		o.claimed = true
		if prev != nil {
			p := *prev
			o.prev = &p
		}
	}
	return nil
}

// bindHere binds the EIP (unless our bind already succeeded) and waits until
// a describe shows it bound here.
func (o *op) bindHere(ctx context.Context) (Result, error) {
	req := o.req
	if !o.bound {
		o.triedBind = true
		if err := o.b.api.BindEIP(ctx, req.EIPID, req.UHostID); err != nil {
			return Result{}, callFailed(err)
		}
		o.bound, o.everBound = true, true
	}
	var seen string
	err := o.b.polling.Until(ctx, func(ctx context.Context) (bool, error) {
		e, err := o.b.api.DescribeEIP(ctx, req.EIPID)
		switch {
		case err == nil && boundTo(e, req.UHostID):
			if len(e.IPs) > 0 {
				o.ip = e.IPs[0]
			}
			return true, nil
		case err == nil && e.BoundID != "":
			seen = "bound to " + describeBound(e)
		case err == nil:
			seen = "free"
		case ucloudapi.IsNotFound(err):
			return false, permanent(fmt.Errorf("eip %s vanished right after it was bound: %w: %w", req.EIPID, ErrUnusable, err))
		default:
			seen = "unreadable (" + err.Error() + ")"
		}
		return false, nil
	})
	switch {
	case err == nil:
		return o.result(), nil
	case IsPermanent(err):
		return Result{}, err
	}
	// Start over next attempt: re-read, and bind again if still needed.
	o.bound = false
	return Result{}, fmt.Errorf("eip %s: BindEIP to uhost %s succeeded but DescribeEIP still shows it %s", req.EIPID, req.UHostID, seen)
}

// rollback undoes what a failed Bind or Verify did, as far as it can be sure
// of, and returns the error to report.
func (o *op) rollback(ctx context.Context, cause error) error {
	if !o.claimed && !o.everBound {
		return cause
	}
	b, req := o.b, o.req
	if o.everBound && o.stillOurs(ctx) {
		// Bound but never confirmed: take it back, so the task that will
		// not start does not hold it. UCloud refuses (8039) if it is not
		// bound to this host, so this never touches another host.
		if err := b.api.UnBindEIP(ctx, req.EIPID, req.UHostID); err != nil && ucloudapi.RetCode(err) != 8039 {
			return fmt.Errorf("%w; undoing the bind of eip %s to uhost %s failed too (%v): the owner record is kept, so releasing or binding this slot again cleans up",
				cause, req.EIPID, req.UHostID, err)
		}
	}
	if o.unboundFrom != "" {
		return fmt.Errorf("%w; eip %s was unbound from uhost %s (previous allocation) but could not be bound to uhost %s: the owner record now names allocation %s, so the next attempt of this slot finishes the move",
			cause, req.EIPID, o.unboundFrom, req.UHostID, req.Owner.AllocID)
	}
	if !o.claimed || b.owners == nil {
		return cause
	}
	// Nothing moved: put the owner record back as it was.
	if err := ownership.Restore(ctx, b.owners, ownership.KindEIP, req.EIPID, req.Owner.AllocID, o.prev); err != nil {
		return fmt.Errorf("%w; restoring the owner record of eip %s failed too: %v", cause, req.EIPID, err)
	}
	return cause
}

// stillOurs reports whether no other allocation has claimed the EIP since.
func (o *op) stillOurs(ctx context.Context) bool {
	if o.b.owners == nil {
		return true
	}
	rec, _, err := o.b.owners.Get(ctx, ownership.KindEIP, o.req.EIPID)
	return err == nil && rec != nil && rec.AllocID == o.req.Owner.AllocID
}

// observeRelease reads the owner record and, when the EIP may be ours to
// unbind, the EIP.
func (o *op) observeRelease(ctx context.Context) (releaseObserved, error) {
	b, req := o.b, o.req
	s := releaseObserved{records: b.owners != nil, now: b.now()}
	if s.records {
		var err error
		if s.rec, s.idx, err = b.owners.Get(ctx, ownership.KindEIP, req.EIPID); err != nil {
			return releaseObserved{}, err
		}
		if s.rec == nil || s.rec.AllocID != req.Owner.AllocID {
			return s, nil // not ours: the EIP is not read
		}
	}
	e, err := b.describe(ctx, req)
	switch {
	case errors.Is(err, ErrUnusable) && errors.Is(err, ucloudapi.ErrNotFound):
		return s, nil
	case err != nil:
		return releaseObserved{}, err
	}
	s.eip = e
	return s, nil
}

// actRelease carries out a Release plan; it reports whether the EIP was
// unbound (by this or an earlier attempt).
func (o *op) actRelease(ctx context.Context, p releasePlan) (bool, error) {
	b, req := o.b, o.req
	switch p.kind {
	case releaseNothing:
		o.log.Info(p.why, p.logArgs...)
		return o.unbound, nil
	case releaseDrop:
		o.log.Info(p.why, p.logArgs...)
		return o.unbound, o.dropRecord(ctx)
	}
	if p.mark {
		ok, err := ownership.MarkReleasing(ctx, b.owners, ownership.KindEIP, req.EIPID, p.rec, p.idx, b.now().Add(b.lease))
		if err != nil {
			return o.unbound, err
		}
		if !ok {
			return o.unbound, fmt.Errorf("eip %s: %w", req.EIPID, ucloudapi.ErrCASLost)
		}
	}
	if err := b.api.UnBindEIP(ctx, req.EIPID, req.UHostID); err != nil {
		return o.unbound, callFailed(err)
	}
	o.unbound = true
	o.log.Info("unbound eip")
	// Wait until describes show it, so that whoever binds it next reads
	// the change. The unbind itself succeeded: a lag is only logged.
	err := b.polling.Until(ctx, func(ctx context.Context) (bool, error) {
		e, err := b.api.DescribeEIP(ctx, req.EIPID)
		return err == nil && !boundTo(e, req.UHostID) || ucloudapi.IsNotFound(err), nil
	})
	if err != nil {
		o.log.Warn("eip unbound, but describes do not show it yet")
	}
	return true, o.dropRecord(ctx)
}

func (o *op) dropRecord(ctx context.Context) error {
	if o.b.owners == nil {
		return nil
	}
	return o.b.owners.Release(ctx, ownership.KindEIP, o.req.EIPID, o.req.Owner.AllocID)
}
