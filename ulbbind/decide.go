package ulbbind

import (
	"fmt"
	"slices"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// mode is what an operation may do.
type mode int

const (
	// modeRegister (Register) may release the backend of an ended earlier
	// allocation of its slot.
	modeRegister mode = iota
	// modeVerify (Verify) keeps what this allocation owns, and never
	// releases anything.
	modeVerify
	// modeRelease (Release) lets go.
	modeRelease
)

// progress is what the earlier attempts of a Register or Verify did that
// the next decision depends on.
type progress struct {
	// allocated is the id AllocateBackend replied with.
	allocated string
	// released lists the predecessors' backends we released; releasing
	// those we sent a ReleaseBackend for (its reply may have been lost).
	released  []string
	releasing map[string]bool
}

// observed is what one attempt of a Register or Verify read.
type observed struct {
	backends []ucloudapi.Backend
	// mine is the backend of (this host, this port): listed, or the one
	// our AllocateBackend created once describes list it. Nil: none.
	mine *ucloudapi.Backend
	// records: the binder keeps owner records (Consul is configured).
	records bool
	// rec is the slot's owner record (nil: none), idx its modify index.
	rec *ownership.Owner
	idx uint64
	// Liveness of rec's owner, learned only when rec names another
	// allocation of this slot and the operation is a Register (see
	// asksLiveness): held says it still holds the slot (why: what was
	// seen), heldErr that liveness could not be learned.
	held    bool
	why     string
	heldErr error
}

// asksLiveness tells whether an attempt learns the liveness of rec's
// owner: only a Register replaces a predecessor's backend.
func asksLiveness(req Request, m mode, rec *ownership.Owner) bool {
	return m == modeRegister && rec != nil && rec.AllocID != req.Owner.AllocID && rec.SameSlot(req.Owner)
}

// planKind is what a Register or Verify attempt does.
type planKind int

const (
	// planDone: our backend exists and our record names it.
	planDone planKind = iota
	// planClaim: our backend exists (reused); claim the slot's record
	// naming it (CAS).
	planClaim
	// planRecord: our backend exists and the record is ours, but does not
	// name it yet: write its id into the record (CAS).
	planRecord
	// planCreate: no backend of ours; claim the record unless it is ours,
	// AllocateBackend, wait until describes list it, record its id.
	planCreate
	// planReplace: release the backend of an ended earlier allocation of
	// the slot, claim the record, then reuse or create ours as above.
	planReplace
	// planEnable: our backend exists and is recorded, but someone
	// disabled it: enable it again.
	planEnable
	// planWait: another allocation of the slot still holds it (alive,
	// releasing, or liveness unknown): retryable.
	planWait
	// planRefuse: permanent.
	planRefuse
)

func (k planKind) String() string {
	switch k {
	case planDone:
		return "done"
	case planClaim:
		return "claim"
	case planRecord:
		return "record"
	case planCreate:
		return "create"
	case planReplace:
		return "replace"
	case planEnable:
		return "enable"
	case planWait:
		return "wait"
	case planRefuse:
		return "refuse"
	}
	return fmt.Sprintf("plan(%d)", int(k))
}

// plan is the decision of one attempt; its steps run in the order of its
// fields.
type plan struct {
	kind planKind
	// gone is a predecessor's backend describes no longer list; released
	// when it went by our ReleaseBackend (whose reply was lost).
	gone     string
	released bool
	// release is the predecessor's backend to release.
	release string
	// claim: write our record over prev (nil: none) at idx, naming
	// resource ("" until our backend exists).
	claim    bool
	prev     *ownership.Owner
	idx      uint64
	resource string
	// allocate: create our backend; else reuse, our backend's id.
	allocate bool
	reuse    string
	// record: write our backend's id into our record afterwards.
	record bool
	// enable: our backend is listed disabled; enable it.
	enable bool
	// ended says why the previous owner counts as gone (logged).
	ended string
	// err is why the attempt waits or refuses.
	err error
}

// Err is the error that ends the attempt without acting (reconcile.Plan).
func (p plan) Err() error {
	switch p.kind {
	case planWait:
		return p.err
	case planRefuse:
		return permanent(p.err)
	}
	return nil
}

// decide is the decision of docs/binding.md ("ULB backends": Register,
// Verify): from what an attempt observed, what it must do. It is pure.
func decide(req Request, m mode, key string, pr progress, s observed) plan {
	rec, mine := s.rec, s.mine
	ours := rec != nil && rec.AllocID == req.Owner.AllocID
	var p plan
	if mine != nil {
		p.reuse = mine.ID
	}
	if s.records && !ours {
		if rec != nil {
			switch {
			case !rec.SameSlot(req.Owner):
				return plan{kind: planRefuse, err: fmt.Errorf("owner record %s names allocation %s of slot %s, not slot %s: fix or delete the record: %w",
					key, rec.AllocID, rec.Slot(), req.Owner.Slot(), ErrRefused)}
			case m != modeRegister:
				return plan{kind: planRefuse, err: fmt.Errorf("the backend of slot %s in vserver %s of ulb %s is now owned by allocation %s (uhost %s port %d): %w",
					req.Owner.Slot(), req.VServerID, req.ULBID, rec.AllocID, rec.UHostID, rec.Port, ErrNotOwner)}
			case s.heldErr != nil:
				return plan{kind: planWait, err: fmt.Errorf("slot %s: %w", req.Owner.Slot(), s.heldErr)}
			case s.held:
				return plan{kind: planWait, err: fmt.Errorf("the backend of slot %s is held by allocation %s (uhost %s port %d; %s): waiting for it to let go",
					req.Owner.Slot(), rec.AllocID, rec.UHostID, rec.Port, s.why)}
			}
			p.ended = s.why
			p.gone, p.released, p.release = predecessor(pr, s, *rec)
		}
		// Claimed before creating anything: until the backend's id is
		// known, the record's uhost and port identify it.
		p.claim, p.prev, p.idx, p.resource = true, rec, s.idx, p.reuse
	}
	p.allocate = mine == nil
	p.enable = mine != nil && !mine.Enabled
	p.record = s.records && (mine == nil || (ours && rec.Resource != mine.ID))
	switch {
	case p.release != "":
		p.kind = planReplace
	case p.allocate:
		p.kind = planCreate
	case p.claim:
		p.kind = planClaim
	case p.record:
		p.kind = planRecord
	case p.enable:
		p.kind = planEnable
	default:
		p.kind = planDone
	}
	return p
}

// predecessor finds the backend an ended earlier allocation of the slot
// recorded (by id, else by its host and port) and says what to do with
// it: release it, unless it is the very backend we want (same host and
// port), we released it already, or it is gone.
func predecessor(pr progress, s observed, rec ownership.Owner) (gone string, released bool, release string) {
	old := rec.Resource
	if old == "" && rec.UHostID != "" && rec.Port != 0 {
		if x := find(s.backends, rec.UHostID, rec.Port); x != nil {
			old = x.ID
		}
	}
	switch {
	case old == "" || (s.mine != nil && old == s.mine.ID) || slices.Contains(pr.released, old):
		return "", false, ""
	case !has(s.backends, old):
		// Our release went through though its reply was lost, or it
		// was gone already.
		return old, pr.releasing[old], ""
	}
	return "", false, old
}

// releaseObserved is what one attempt of a Release read.
type releaseObserved struct {
	records bool
	// rec is the slot's owner record (nil: none), idx its modify index.
	rec *ownership.Owner
	idx uint64
	// backends is the VServer's list; vserverGone: the VServer or ULB no
	// longer exists. Neither is read when the slot is not ours.
	backends    []ucloudapi.Backend
	vserverGone bool
	now         time.Time
}

// releaseKind is what a Release attempt does.
type releaseKind int

const (
	// releaseNothing: not ours (no record, or another allocation's).
	releaseNothing releaseKind = iota
	// releaseDrop: our backend is gone: only delete our record.
	releaseDrop
	// releaseBackend: mark the record releasing (unless it is), release
	// the backend, wait until describes no longer list it, delete the
	// record.
	releaseBackend
)

func (k releaseKind) String() string {
	switch k {
	case releaseNothing:
		return "nothing"
	case releaseDrop:
		return "drop"
	case releaseBackend:
		return "release"
	}
	return fmt.Sprintf("release(%d)", int(k))
}

// releasePlan is the decision of one Release attempt.
type releasePlan struct {
	kind releaseKind
	// id is the backend to release.
	id string
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

// decideRelease: release only while the slot's record names this
// allocation (with Consul), and only its backend (by id, else by host and
// port); without Consul, the backend of this host and port. Mark the
// record first, so that a replacement that would reuse this very backend
// (same host and port) waits instead of losing it.
func decideRelease(req Request, s releaseObserved) releasePlan {
	uhost, port, id := req.UHostID, req.Port, ""
	if s.records {
		switch {
		case s.rec == nil:
			return releasePlan{kind: releaseNothing, why: "not releasing backend: no owner record, so not ours"}
		case s.rec.AllocID != req.Owner.AllocID:
			return releasePlan{kind: releaseNothing, why: "not releasing backend: another allocation owns the slot now",
				logArgs: []any{"owner_alloc_id", s.rec.AllocID, "backend_id", s.rec.Resource}}
		}
		uhost, port, id = s.rec.UHostID, s.rec.Port, s.rec.Resource
	}
	if s.vserverGone {
		return releasePlan{kind: releaseDrop, why: "vserver no longer exists, nothing to release"}
	}
	if id == "" {
		if x := find(s.backends, uhost, port); x != nil {
			id = x.ID
		}
	}
	if id == "" || !has(s.backends, id) {
		return releasePlan{kind: releaseDrop, why: "backend already gone", logArgs: []any{"backend_id", id}}
	}
	p := releasePlan{kind: releaseBackend, id: id}
	if s.records && !s.rec.Releasing(s.now) {
		p.mark, p.rec, p.idx = true, *s.rec, s.idx
	}
	return p
}
