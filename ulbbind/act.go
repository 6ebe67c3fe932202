package ulbbind

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// op is one Register, Verify or Release: its request and what its
// attempts did so far.
type op struct {
	b    *Binder
	req  Request
	key  string // the slot's owner record key
	mode mode
	log  hclog.Logger
	progress
	// seen: backend ids of the first describe (to tell what we created).
	seen map[string]bool
	// claimed: we wrote our owner record; prev is the record it replaced.
	claimed bool
	prev    *ownership.Owner
	// triedAlloc: we sent an AllocateBackend.
	triedAlloc bool
	// enabled: we enabled our disabled backend.
	enabled bool
	// releasedOurs: our Release's ReleaseBackend succeeded.
	releasedOurs bool
}

func (b *Binder) newOp(req Request, m mode) *op {
	return &op{b: b, req: req, mode: m,
		log: b.logger.With("ulb_id", req.ULBID, "vserver_id", req.VServerID, "uhost_id", req.UHostID,
			"port", req.Port, "alloc_id", req.Owner.AllocID)}
}

func (o *op) prepare() error {
	req, err := o.b.check(o.req)
	o.req, o.key = req, RecordKey(req)
	return err
}

// observe lists the VServer's backends, finds ours, and reads the slot's
// record and, for a record of another allocation of the slot that a
// Register might replace, its owner's liveness.
func (o *op) observe(ctx context.Context) (observed, error) {
	b, req := o.b, o.req
	bs, err := b.describe(ctx, req)
	if err != nil {
		return observed{}, err
	}
	if o.seen == nil {
		o.seen = map[string]bool{}
		for _, x := range bs {
			o.seen[x.ID] = true
		}
	}
	s := observed{backends: bs, mine: find(bs, req.UHostID, req.Port), records: b.owners != nil}
	if s.mine == nil && o.allocated != "" {
		// Created, but the describe does not show it yet.
		if err := b.waitFor(ctx, req, func(bs []ucloudapi.Backend) bool { return has(bs, o.allocated) }); err != nil {
			return observed{}, fmt.Errorf("backend %s (uhost %s port %d) was created but vserver %s does not list it yet", o.allocated, req.UHostID, req.Port, req.VServerID)
		}
		s.mine = &ucloudapi.Backend{ID: o.allocated, ResourceID: req.UHostID, Port: req.Port, Enabled: true}
	}
	if m := s.mine; m != nil && req.PrivateIP != "" && m.PrivateIP != "" && m.PrivateIP != req.PrivateIP {
		o.log.Warn("backend private IP differs from the request's", "backend_id", m.ID, "backend_ip", m.PrivateIP, "request_ip", req.PrivateIP)
	}
	if !s.records {
		return s, nil
	}
	if s.rec, s.idx, err = b.owners.Get(ctx, ownership.KindBackend, o.key); err != nil {
		return observed{}, err
	}
	if asksLiveness(req, o.mode, s.rec) {
		s.held, s.why, s.heldErr = ownership.Held(ctx, b.liveness, *s.rec, b.now())
	}
	return s, nil
}

// act carries out a Register or Verify plan.
func (o *op) act(ctx context.Context, p plan) (Result, error) {
	b, req := o.b, o.req
	if p.gone != "" {
		if p.released {
			o.released = append(o.released, p.gone)
		}
		o.log.Debug("previous allocation's backend is already gone", "backend_id", p.gone, "previous_alloc_id", allocOf(p.prev))
	}
	if p.release != "" {
		if err := o.releasePredecessor(ctx, p.release, p.prev); err != nil {
			return Result{}, err
		}
	}
	if p.claim {
		if p.prev != nil && p.ended != "" {
			o.log.Info("previous owner of the slot has ended", "previous_alloc_id", p.prev.AllocID, "why", p.ended)
		}
		own := req.Owner
		own.Resource = p.resource
		if err := o.claim(ctx, own, p.prev, p.idx); err != nil {
			return Result{}, err
		}
	}
	id := p.reuse
	if p.allocate {
		o.triedAlloc = true
		var err error
		if id, err = b.api.AllocateBackend(ctx, req.ULBID, req.VServerID, req.UHostID, req.Port); err != nil {
			return Result{}, o.allocateFailed(ctx, err)
		}
		o.allocated = id
		o.log.Info("allocated backend", "backend_id", id)
		if err := b.waitFor(ctx, req, func(bs []ucloudapi.Backend) bool { return has(bs, id) }); err != nil {
			o.log.Warn("backend allocated, but the vserver does not list it yet", "backend_id", id)
		}
	}
	if p.record {
		// Record the backend's id (the record is ours: re-read its index).
		cur, idx, err := b.owners.Get(ctx, ownership.KindBackend, o.key)
		if err != nil {
			return Result{}, err
		}
		if cur == nil || cur.AllocID != req.Owner.AllocID {
			return Result{}, fmt.Errorf("backend record %s: %w", o.key, ucloudapi.ErrCASLost)
		}
		upd := req.Owner
		upd.Resource = id
		if err := o.claim(ctx, upd, cur, idx); err != nil {
			return Result{}, err
		}
	}
	if p.enable {
		// Disabled by hand (the console's switch): a backend of a live
		// allocation serves, so it is enabled again.
		if err := b.api.SetBackendEnabled(ctx, req.ULBID, id, true); err != nil {
			if !ucloudapi.IsRetryable(err) {
				return Result{}, permanent(err)
			}
			return Result{}, err
		}
		o.enabled = true
		o.log.Warn("backend was disabled, enabled it again", "backend_id", id)
	}
	return Result{
		BackendID: id,
		Released:  slices.Clone(o.released),
		Changed:   o.allocated != "" || !o.seen[id] || len(o.released) > 0 || o.enabled,
	}, nil
}

func allocOf(o *ownership.Owner) string {
	if o == nil {
		return ""
	}
	return o.AllocID
}

// releasePredecessor releases the backend of an ended earlier allocation
// of the slot (rec); not found counts as done.
func (o *op) releasePredecessor(ctx context.Context, id string, rec *ownership.Owner) error {
	if o.releasing == nil {
		o.releasing = map[string]bool{}
	}
	o.releasing[id] = true
	err := o.b.api.ReleaseBackend(ctx, o.req.ULBID, id)
	switch {
	case ucloudapi.IsNotFound(err):
	case err != nil && !ucloudapi.IsRetryable(err):
		return permanent(err)
	case err != nil:
		return err
	}
	o.released = append(o.released, id)
	o.log.Info("released backend of a previous allocation", "backend_id", id, "previous_alloc_id", allocOf(rec),
		"previous_uhost_id", rec.UHostID, "previous_port", rec.Port)
	return nil
}

// allocateFailed classifies an AllocateBackend failure. A refusal because
// the backend exists (a lost reply, or a describe lagging behind) is read
// again; anything else not transient is permanent.
func (o *op) allocateFailed(ctx context.Context, err error) error {
	req := o.req
	if ucloudapi.IsRetryable(err) {
		return err
	}
	if bs, derr := o.b.api.DescribeVServer(ctx, req.ULBID, req.VServerID); derr == nil && find(bs, req.UHostID, req.Port) != nil {
		return err // it exists: the next attempt reuses it
	}
	var e *ucloudapi.Error
	if errors.As(err, &e) && strings.Contains(strings.ToLower(e.Message), "already") {
		return err // a duplicate the describe does not show yet
	}
	if ucloudapi.IsNotFound(err) {
		return permanent(fmt.Errorf("%w: %w", err, ErrUnusable))
	}
	return permanent(err)
}

// claim writes own as the slot's record over prev (nil: none) at idx.
func (o *op) claim(ctx context.Context, own ownership.Owner, prev *ownership.Owner, idx uint64) error {
	ok, err := o.b.owners.Claim(ctx, ownership.KindBackend, o.key, own, idx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("backend record %s: %w", o.key, ucloudapi.ErrCASLost)
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

// rollback releases what a failed Register created and puts the owner
// record back when nothing changed.
func (o *op) rollback(ctx context.Context, cause error) error {
	if !o.claimed && !o.triedAlloc {
		return cause
	}
	b, req := o.b, o.req
	if o.triedAlloc && o.mode == modeRegister {
		id := o.allocated
		if id == "" {
			bs, err := b.api.DescribeVServer(ctx, req.ULBID, req.VServerID)
			if err != nil {
				return fmt.Errorf("%w; could not check whether a backend for uhost %s port %d was created (%v): the owner record %s is kept so releasing this slot cleans up",
					cause, req.UHostID, req.Port, err, o.key)
			}
			if x := find(bs, req.UHostID, req.Port); x != nil && !o.seen[x.ID] {
				id = x.ID
			}
		}
		if id != "" {
			if err := b.api.ReleaseBackend(ctx, req.ULBID, id); err != nil && !ucloudapi.IsNotFound(err) {
				return fmt.Errorf("%w; releasing backend %s created by this attempt failed too (%v): the owner record %s is kept so releasing this slot cleans up",
					cause, id, err, o.key)
			}
			o.log.Info("released backend created by the failed attempt", "backend_id", id)
		}
	}
	if !o.claimed || b.owners == nil {
		return cause
	}
	if o.prev != nil && len(o.released) == 0 {
		if err := ownership.Restore(ctx, b.owners, ownership.KindBackend, o.key, req.Owner.AllocID, o.prev); err != nil {
			return fmt.Errorf("%w; restoring owner record %s failed too: %v", cause, o.key, err)
		}
		return cause
	}
	if err := b.owners.Release(ctx, ownership.KindBackend, o.key, req.Owner.AllocID); err != nil {
		return fmt.Errorf("%w; deleting owner record %s failed too: %v", cause, o.key, err)
	}
	return cause
}

// observeRelease reads the slot's record and, when the backend may be ours
// to release, the VServer.
func (o *op) observeRelease(ctx context.Context) (releaseObserved, error) {
	b, req := o.b, o.req
	s := releaseObserved{records: b.owners != nil, now: b.now()}
	if s.records {
		var err error
		if s.rec, s.idx, err = b.owners.Get(ctx, ownership.KindBackend, o.key); err != nil {
			return releaseObserved{}, err
		}
		if s.rec == nil || s.rec.AllocID != req.Owner.AllocID {
			return s, nil // not ours: the VServer is not read
		}
	}
	bs, err := b.describe(ctx, req)
	switch {
	case errors.Is(err, ucloudapi.ErrNotFound):
		s.vserverGone = true
	case err != nil:
		return releaseObserved{}, err
	}
	s.backends = bs
	return s, nil
}

// actRelease carries out a Release plan; it reports whether the backend
// was released (by this or an earlier attempt).
func (o *op) actRelease(ctx context.Context, p releasePlan) (bool, error) {
	b, req := o.b, o.req
	switch p.kind {
	case releaseNothing:
		o.log.Info(p.why, p.logArgs...)
		return o.releasedOurs, nil
	case releaseDrop:
		o.log.Info(p.why, p.logArgs...)
		return o.releasedOurs, o.dropRecord(ctx)
	}
	if p.mark {
		ok, err := ownership.MarkReleasing(ctx, b.owners, ownership.KindBackend, o.key, p.rec, p.idx, b.now().Add(b.lease))
		if err != nil {
			return false, err
		}
		if !ok {
			return false, fmt.Errorf("backend record %s: %w", o.key, ucloudapi.ErrCASLost)
		}
	}
	err := b.api.ReleaseBackend(ctx, req.ULBID, p.id)
	switch {
	case err == nil:
		o.releasedOurs = true
		o.log.Info("released backend", "backend_id", p.id)
		if werr := b.waitFor(ctx, req, func(bs []ucloudapi.Backend) bool { return !has(bs, p.id) }); werr != nil {
			o.log.Warn("backend released, but the vserver still lists it", "backend_id", p.id)
		}
	case ucloudapi.IsNotFound(err):
	case !ucloudapi.IsRetryable(err):
		return false, permanent(err)
	default:
		return false, err
	}
	return o.releasedOurs, o.dropRecord(ctx)
}

func (o *op) dropRecord(ctx context.Context) error {
	if o.b.owners == nil {
		return nil
	}
	return o.b.owners.Release(ctx, ownership.KindBackend, o.key, o.req.Owner.AllocID)
}
