package eipbind

import (
	"fmt"
	"strings"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/reconcile"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// mode is what an operation may do.
type mode int

const (
	// modeBind (Bind) may take the EIP over from an ended allocation of
	// its slot.
	modeBind mode = iota
	// modeVerify (Verify) keeps what this allocation owns, and never
	// takes anything from another allocation.
	modeVerify
	// modeRelease (Release) lets go.
	modeRelease
)

// progress is what the earlier attempts of a Bind or Verify did that the
// next decision depends on.
type progress struct {
	// takeoverFrom is the host we are moving the EIP from: a stale
	// binding we claimed, or our own EIP someone moved there by hand.
	takeoverFrom string
	// unboundFrom is the host we unbound the EIP from.
	unboundFrom string
}

// observed is what one attempt of a Bind or Verify read.
type observed struct {
	eip ucloudapi.EIP
	// records: the binder keeps owner records (Consul is configured).
	records bool
	// rec is the owner record (nil: none), idx its modify index.
	rec *ownership.Owner
	idx uint64
	// Liveness of rec's owner, learned only when rec names another
	// allocation of this slot and the operation is a Bind: held says it
	// still holds the EIP (why: what was seen), heldErr that liveness
	// could not be learned.
	held    bool
	why     string
	heldErr error
}

// asksLiveness tells whether an attempt learns the liveness of rec's
// owner: only a Bind may take over, and only from another allocation of
// its own slot.
func asksLiveness(req Request, m mode, rec *ownership.Owner) bool {
	return m == modeBind && rec != nil && rec.AllocID != req.Owner.AllocID && rec.SameSlot(req.Owner)
}

// planKind is what a Bind or Verify attempt does.
type planKind int

const (
	// planDone: the EIP is bound here and the record is ours.
	planDone planKind = iota
	// planClaim: the EIP is bound here; write our owner record (CAS), no
	// cloud call.
	planClaim
	// planBind: the EIP is free; claim it if the record is not ours,
	// BindEIP here, confirm with describes.
	planBind
	// planTakeover: the EIP is bound to host from; claim it if the record
	// is not ours, UnBindEIP from that host, BindEIP here, confirm.
	planTakeover
	// planWait: another allocation of the slot still holds the EIP (its
	// allocation is alive, it is releasing, or liveness is unknown):
	// retryable.
	planWait
	// planRefuse: permanent, decided on the owner record or on an EIP
	// free or bound here.
	planRefuse
	// planConflict: a refusal decided on a describe showing the EIP bound
	// elsewhere, which may lag behind a release: read again before it is
	// final.
	planConflict
)

func (k planKind) String() string {
	switch k {
	case planDone:
		return "done"
	case planClaim:
		return "claim"
	case planBind:
		return "bind"
	case planTakeover:
		return "takeover"
	case planWait:
		return "wait"
	case planRefuse:
		return "refuse"
	case planConflict:
		return "conflict"
	}
	return fmt.Sprintf("plan(%d)", int(k))
}

// plan is the decision of one attempt.
type plan struct {
	kind planKind
	// claim: write our owner record over prev (nil: none) at index idx,
	// before any cloud call.
	claim bool
	prev  *ownership.Owner
	idx   uint64
	// from is the host to unbind from (planTakeover).
	from string
	// drift: Verify moves back an EIP someone moved away by hand.
	drift bool
	// unbound: the EIP is free, so the unbind of our takeover went
	// through even if its reply was lost.
	unbound bool
	// ended says why the previous owner counts as gone (logged).
	ended string
	// err is why the attempt waits, refuses or has a conflict.
	err error
}

// Err is the error that ends the attempt without acting (reconcile.Plan).
func (p plan) Err() error {
	switch p.kind {
	case planWait:
		return p.err
	case planRefuse:
		return permanent(p.err)
	case planConflict:
		return reconcile.Conflict(p.err)
	}
	return nil
}

// decide is the decision table of docs/binding.md ("Bind", "Verify"): from
// what an attempt observed, what it must do. It is pure.
func decide(req Request, m mode, pr progress, s observed) plan {
	e, rec := &s.eip, s.rec
	ours := rec != nil && rec.AllocID == req.Owner.AllocID
	claim := plan{claim: true, prev: rec, idx: s.idx, ended: s.why}

	switch {
	case boundTo(e, req.UHostID):
		if !s.records || ours {
			return plan{kind: planDone}
		}
		if p, stop := otherOwner(req, m, s, "is bound to this host", "bound to this host"); stop {
			return p
		}
		claim.kind = planClaim
		return claim

	case e.BoundID == "":
		// A free EIP during our takeover: our unbind went through though
		// its reply was lost (or the old owner let go meanwhile).
		unbound := pr.takeoverFrom != "" && pr.unboundFrom == ""
		if !s.records || ours {
			return plan{kind: planBind, unbound: unbound}
		}
		if p, stop := otherOwner(req, m, s, "is free", "free"); stop {
			return p
		}
		claim.kind, claim.unbound = planBind, unbound
		return claim
	}

	// Bound elsewhere.
	where := describeBound(e)
	uhost := strings.EqualFold(e.BoundType, "uhost")
	from := pr.takeoverFrom
	// Drift: our record says the EIP is ours, so no binder of ours moved
	// it; someone did by hand. Verify moves it back.
	drift := m == modeVerify && ours && from == "" && uhost
	if drift {
		from = e.BoundID
	}
	conflict := func(format string, args ...any) plan {
		return plan{kind: planConflict, err: fmt.Errorf(format, args...)}
	}
	switch {
	case m == modeVerify && rec != nil && !ours:
		return conflict("eip %s is now owned by allocation %s (slot %s) and bound to %s: %w",
			req.EIPID, rec.AllocID, rec.Slot(), where, ErrNotOwner)
	case m == modeVerify && !ours:
		return conflict("eip %s is bound to %s, not to this host %s; recovery does not move it: %w",
			req.EIPID, where, req.UHostID, ErrRefused)
	case !s.records:
		return conflict("eip %s is bound to %s; without consul there is no owner record to show that binding is stale, so it is not taken: unbind it by hand or configure consul: %w",
			req.EIPID, where, ErrRefused)
	case !uhost:
		return conflict("eip %s is bound to %s, not to a uhost; it is not taken: %w", req.EIPID, where, ErrRefused)
	case rec == nil:
		return conflict("eip %s is bound to %s and has no owner record: it is someone else's binding and is not taken; if it is stale, unbind it by hand: %w",
			req.EIPID, where, ErrRefused)
	case !rec.SameSlot(req.Owner):
		return conflict("eip %s is bound to %s for slot %s (allocation %s), not for this slot %s: check the job's EIP ids: %w",
			req.EIPID, where, rec.Slot(), rec.AllocID, req.Owner.Slot(), ErrRefused)
	case ours && from != e.BoundID:
		return conflict("eip %s is owned by this allocation but bound to %s by someone else; not fighting over it: %w",
			req.EIPID, where, ErrRefused)
	case !ours && rec.UHostID != e.BoundID:
		return conflict("eip %s is bound to %s but its owner record (allocation %s of slot %s) says uhost %s; not taking it: %w",
			req.EIPID, where, rec.AllocID, rec.Slot(), rec.UHostID, ErrRefused)
	}
	if ours {
		// Our own takeover in progress from that host, or drift.
		return plan{kind: planTakeover, from: e.BoundID, drift: drift}
	}
	// A stale binding of an ended allocation of this slot: claim it first,
	// so its owner cannot release it from under us.
	if p, stop := held(req, s, "bound to "+where); stop {
		return p
	}
	claim.kind, claim.from = planTakeover, e.BoundID
	return claim
}

// otherOwner decides about a record of another allocation when the EIP is
// free or already on this host: an ended earlier allocation of the same
// slot is replaced (Bind), a live one waited for, anything else refused.
// stop is false when the record may be claimed over.
func otherOwner(req Request, m mode, s observed, state, heldState string) (plan, bool) {
	rec := s.rec
	if rec == nil {
		return plan{}, false
	}
	if !rec.SameSlot(req.Owner) {
		return plan{kind: planRefuse, err: fmt.Errorf("eip %s %s but is claimed for slot %s by allocation %s, not for this slot %s: each slot needs its own EIP; if the claim is stale delete its owner record in consul: %w",
			req.EIPID, state, rec.Slot(), rec.AllocID, req.Owner.Slot(), ErrRefused)}, true
	}
	if m != modeBind {
		return plan{kind: planRefuse, err: fmt.Errorf("eip %s %s but is now owned by allocation %s of this slot: %w",
			req.EIPID, state, rec.AllocID, ErrNotOwner)}, true
	}
	return held(req, s, heldState)
}

// held makes the attempt wait while the record's owner (another allocation
// of our slot) still holds the EIP: it is releasing it, its allocation has
// not ended, or that cannot be learned. A live owner's binding is never
// taken; the attempt is repeated until it lets go or the deadline ends.
func held(req Request, s observed, state string) (plan, bool) {
	switch {
	case s.heldErr != nil:
		return plan{kind: planWait, err: fmt.Errorf("eip %s is %s for allocation %s of this slot: %w",
			req.EIPID, state, s.rec.AllocID, s.heldErr)}, true
	case s.held:
		return plan{kind: planWait, err: fmt.Errorf("eip %s is %s and held by allocation %s of this slot (%s): waiting for it to let go",
			req.EIPID, state, s.rec.AllocID, s.why)}, true
	}
	return plan{}, false
}

// releaseObserved is what one attempt of a Release read.
type releaseObserved struct {
	records bool
	// rec is the owner record (nil: none), idx its modify index.
	rec *ownership.Owner
	idx uint64
	// eip is nil when it no longer exists, or was not read (not ours).
	eip *ucloudapi.EIP
	now time.Time
}

// releaseKind is what a Release attempt does.
type releaseKind int

const (
	// releaseNothing: not ours (no record, or another allocation's).
	releaseNothing releaseKind = iota
	// releaseDrop: not bound here (or gone): only delete our record.
	releaseDrop
	// releaseUnbind: mark the record releasing (unless it is), unbind the
	// EIP from this host, wait until describes show it, delete the record.
	releaseUnbind
)

func (k releaseKind) String() string {
	switch k {
	case releaseNothing:
		return "nothing"
	case releaseDrop:
		return "drop"
	case releaseUnbind:
		return "unbind"
	}
	return fmt.Sprintf("release(%d)", int(k))
}

// releasePlan is the decision of one Release attempt.
type releasePlan struct {
	kind releaseKind
	// mark: write rec back marked releasing, at index idx.
	mark bool
	rec  ownership.Owner
	idx  uint64
	// why is logged, with logArgs.
	why     string
	logArgs []any
}

// Err is nil: a Release decides nothing that ends it without acting.
func (releasePlan) Err() error { return nil }

// decideRelease: unbind only while the record names this allocation (with
// Consul) and the EIP is bound to this host; mark the record first, so a
// replacement waits instead of losing the EIP to our unbind.
func decideRelease(req Request, s releaseObserved) releasePlan {
	switch {
	case s.records && s.rec == nil:
		return releasePlan{kind: releaseNothing, why: "not unbinding eip: no owner record, so not ours"}
	case s.records && s.rec.AllocID != req.Owner.AllocID:
		return releasePlan{kind: releaseNothing, why: "not unbinding eip: another allocation owns it now",
			logArgs: []any{"owner_alloc_id", s.rec.AllocID, "owner_uhost_id", s.rec.UHostID}}
	case s.eip == nil:
		return releasePlan{kind: releaseDrop, why: "eip no longer exists, nothing to unbind"}
	case !boundTo(s.eip, req.UHostID):
		return releasePlan{kind: releaseDrop, why: "eip is not bound here, nothing to unbind", logArgs: []any{"bound_to", s.eip.BoundID}}
	}
	p := releasePlan{kind: releaseUnbind}
	if s.records && !s.rec.Releasing(s.now) {
		p.mark, p.rec, p.idx = true, *s.rec, s.idx
	}
	return p
}
