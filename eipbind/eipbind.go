// Package eipbind binds a broker's EIP to the host its task runs on, as a
// reconcile: read the EIP, compare with what is wanted, act, and check.
// Every step is idempotent and retried with backoff within a deadline; an EIP
// bound to another host is taken over only when its Consul owner record
// shows it was left there by an earlier allocation of the same slot. The
// rules are in docs/binding.md.
package eipbind

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// API is the part of UCloud the binder uses; *ucloudapi.Client has it.
type API interface {
	DescribeEIP(ctx context.Context, id string) (*ucloudapi.EIP, error)
	BindEIP(ctx context.Context, eipID, uhostID string) error
	UnBindEIP(ctx context.Context, eipID, uhostID string) error
}

// Owners keeps owner records; *ownership.Store has it. Without one (nil) the
// binder binds free EIPs and releases EIPs bound to its host, but never takes
// an EIP from another host.
type Owners interface {
	Get(ctx context.Context, kind, key string) (*ownership.Owner, uint64, error)
	Claim(ctx context.Context, kind, key string, o ownership.Owner, prevIndex uint64) (bool, error)
	Release(ctx context.Context, kind, key string, allocID string) error
}

// Guard keeps the binder to the operator's own EIPs.
type Guard struct {
	// AllowedEIPIDs, when not empty, lists the only EIPs the binder may
	// touch.
	AllowedEIPIDs []string
	// RemarkPrefix, when set, requires the EIP's Remark or Tag to be
	// RemarkPrefix+cluster, alone or followed by one of " ,;:/|" and
	// anything (prefix "rmq:" and cluster "orders" accept "rmq:orders" and
	// "rmq:orders broker-0", not "rmq:orders2").
	RemarkPrefix string
}

// RetryPolicy bounds retries; see ucloudapi.RetryPolicy.
type RetryPolicy = ucloudapi.RetryPolicy

// Options tune a Binder.
type Options struct {
	// Logger gets structured logs; nil discards them.
	Logger hclog.Logger
	// Retry bounds each operation; zero fields take ucloudapi's defaults.
	Retry RetryPolicy
	// Observe, when set, is called once per operation with the action
	// ("eip_bind", "eip_verify", "eip_release"), the outcome ("changed",
	// "unchanged", "refused", "error") and the time it took.
	Observe func(action, outcome string, d time.Duration)
	// PollInterval is the first wait between the describes that confirm a
	// bind (it doubles up to 1s); 0 means 25ms.
	PollInterval time.Duration
	// MaxPolls bounds those describes per attempt; 0 means 20.
	MaxPolls int
	// CleanupTimeout bounds the rollback after a failed Bind (it runs even
	// when the caller's context has ended); 0 means 10s.
	CleanupTimeout time.Duration
	// ConfirmRefusals is how many more times an EIP seen bound elsewhere is
	// read again (PollInterval apart, doubling) before that refusal is
	// final; 0 means 3, negative means none.
	ConfirmRefusals int
	// Liveness tells whether the allocation of another owner record of the
	// same slot has ended; only then is its EIP taken over. Nil treats
	// every such record as stale (no scheduler to ask).
	Liveness ownership.Liveness
	// ReleaseLease is how long a Release marks the owner record as
	// releasing before it unbinds; 0 means the retry deadline.
	ReleaseLease time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Errors the binder's errors wrap. All three are permanent (IsPermanent);
// they are ucloudapi's, shared with the other binder.
var (
	ErrRefused  = ucloudapi.ErrRefused
	ErrNotOwner = ucloudapi.ErrNotOwner
	ErrUnusable = ucloudapi.ErrUnusable
)

func permanent(err error) error { return ucloudapi.Permanent(err) }

// IsPermanent reports whether retrying the EIP operation later cannot help
// without someone changing something: a refusal, a missing resource, an
// invalid request, or a UCloud error that is not transient.
func IsPermanent(err error) bool { return ucloudapi.IsPermanent(err) }

// conflictError is a refusal decided on a describe showing the EIP bound
// elsewhere. Describes may lag behind changes (a release that just
// happened), so it is read again a few times before it becomes final.
type conflictError struct{ err error }

func (e *conflictError) Error() string { return e.err.Error() }
func (e *conflictError) Unwrap() error { return e.err }

func conflict(err error) error { return &conflictError{err} }

var errCASLost = ucloudapi.ErrCASLost

// Request says which EIP goes to which host, for which allocation.
type Request struct {
	EIPID   string
	UHostID string
	// Owner is the allocation asking; AllocID, Cluster, Role and AllocIndex
	// are required when the binder has Owners. UHostID defaults to the
	// request's, Resource is set to EIPID.
	Owner ownership.Owner
}

// Result is the binding as it now is.
type Result struct {
	EIPID   string
	IP      string
	UHostID string
	// PreviousUHost is the host the EIP was taken from ("" if none).
	PreviousUHost string
	// Changed is false when the EIP was already bound here.
	Changed bool
}

// Binder binds EIPs. It is safe for concurrent use.
type Binder struct {
	api      API
	owners   Owners
	guard    Guard
	logger   hclog.Logger
	retry    RetryPolicy
	observe  func(action, outcome string, d time.Duration)
	poll     time.Duration
	maxPolls int
	cleanup  time.Duration
	confirm  int
	liveness ownership.Liveness
	lease    time.Duration
	now      func() time.Time
}

// New returns a binder. owners may be nil (no Consul).
func New(api API, owners Owners, guard Guard, opts Options) *Binder {
	b := &Binder{
		api:      api,
		owners:   owners,
		guard:    Guard{AllowedEIPIDs: slices.Clone(guard.AllowedEIPIDs), RemarkPrefix: guard.RemarkPrefix},
		logger:   opts.Logger,
		retry:    opts.Retry.WithDefaults(),
		observe:  opts.Observe,
		poll:     opts.PollInterval,
		maxPolls: opts.MaxPolls,
		cleanup:  opts.CleanupTimeout,
		confirm:  opts.ConfirmRefusals,
		liveness: opts.Liveness,
		lease:    opts.ReleaseLease,
		now:      opts.Now,
	}
	if isNil(owners) {
		b.owners = nil
	}
	if isNil(b.liveness) {
		b.liveness = nil
	}
	if b.lease <= 0 {
		b.lease = b.retry.Deadline
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.logger == nil {
		b.logger = hclog.NewNullLogger()
	}
	if b.poll <= 0 {
		b.poll = 25 * time.Millisecond
	}
	if b.maxPolls <= 0 {
		b.maxPolls = 20
	}
	if b.cleanup <= 0 {
		b.cleanup = 10 * time.Second
	}
	switch {
	case b.confirm == 0:
		b.confirm = 3
	case b.confirm < 0:
		b.confirm = 0
	}
	return b
}

// isNil catches a typed nil pointer passed as an interface.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

type mode int

const (
	modeBind mode = iota
	modeVerify
)

// op is one Bind or Verify: what it has done so far, across attempts.
type op struct {
	req  Request
	mode mode
	// claimed: we wrote our owner record; prev is the record it replaced.
	claimed bool
	prev    *ownership.Owner
	// takeoverFrom is the host of the stale binding we claimed.
	takeoverFrom string
	// unboundFrom is the host we unbound the EIP from.
	unboundFrom string
	// bound: our BindEIP call succeeded and is waiting to be confirmed by
	// a describe; everBound: some BindEIP of ours succeeded.
	bound     bool
	everBound bool
	// confirmations of a conflict so far.
	confirmations int
	// triedBind: we sent a BindEIP (its reply may have been lost).
	triedBind bool
	changed   bool
	ip        string
}

func (o *op) result() Result {
	return Result{EIPID: o.req.EIPID, IP: o.ip, UHostID: o.req.UHostID, PreviousUHost: o.unboundFrom,
		Changed: o.changed || o.triedBind || o.unboundFrom != ""}
}

// Bind makes sure the EIP is bound to req.UHostID: a no-op when it already
// is, a bind when it is free, a move when it is bound to the host of an
// earlier allocation of the same slot (per the owner record). Anything else
// is refused. On failure it undoes what it can (see docs/binding.md).
func (b *Binder) Bind(ctx context.Context, req Request) (Result, error) {
	return b.run(ctx, "eip_bind", req, modeBind)
}

// Verify re-checks a binding after a driver restart: it repairs it (binds
// again) when the EIP is free and this allocation still owns it, and fails
// with ErrNotOwner when another allocation owns it now. It never takes the
// EIP from another host.
func (b *Binder) Verify(ctx context.Context, req Request) (Result, error) {
	return b.run(ctx, "eip_verify", req, modeVerify)
}

func (b *Binder) run(ctx context.Context, action string, req Request, m mode) (res Result, err error) {
	start := time.Now()
	defer func() { b.done(action, res.Changed, err, start) }()
	if req, err = b.prepare(req); err != nil {
		return Result{}, err
	}
	if err := b.allowed(req.EIPID); err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, b.retry.Deadline)
	defer cancel()
	o := &op{req: req, mode: m}
	log := b.logger.With("eip_id", req.EIPID, "uhost_id", req.UHostID, "alloc_id", req.Owner.AllocID)
	var last, failure error // failure: the last error not caused by the deadline
	for attempt := 1; attempt <= b.retry.MaxAttempts; attempt++ {
		r, err := b.attempt(ctx, o)
		if err == nil {
			switch {
			case r.Changed && r.PreviousUHost != "":
				log.Info("moved eip", "ip", r.IP, "previous_uhost_id", r.PreviousUHost, "attempts", attempt)
			case r.Changed:
				log.Info("bound eip", "ip", r.IP, "attempts", attempt)
			default:
				log.Debug("eip already bound here", "ip", r.IP, "attempts", attempt)
			}
			return r, nil
		}
		last = err
		if ctx.Err() == nil {
			failure = err
		}
		var c *conflictError
		if errors.As(err, &c) {
			if o.confirmations >= b.confirm {
				last = permanent(c.err)
				break
			}
			wait := b.poll << o.confirmations
			o.confirmations++
			log.Debug("eip bound elsewhere, reading again before refusing", "wait", wait, "error", c.err)
			if !ucloudapi.Sleep(ctx, wait) {
				last = permanent(c.err)
				break
			}
			attempt--
			continue
		}
		if IsPermanent(err) || ctx.Err() != nil {
			break
		}
		if errors.Is(err, errCASLost) {
			log.Debug("owner record changed while claiming, reading again", "attempt", attempt)
			continue
		}
		wait := b.retry.Backoff(attempt)
		log.Warn("eip attempt failed, retrying", "attempt", attempt, "wait", wait, "error", err)
		if !ucloudapi.Sleep(ctx, wait) {
			break
		}
	}
	if ctx.Err() != nil {
		// The deadline ran out, possibly in the middle of a call (which
		// the API client reports as not retryable): that is a timeout,
		// worth another try later, not a permanent refusal.
		last = ucloudapi.Transient(last)
		if !IsPermanent(last) {
			if failure != nil && failure != last {
				last = fmt.Errorf("%w (gave up after %s; last failure: %v)", last, b.retry.Deadline, failure)
			} else {
				last = fmt.Errorf("%w (gave up after %s)", last, b.retry.Deadline)
			}
		}
	}
	err = b.rollback(ctx, o, last)
	log.Error("eip binding failed", "error", err)
	return Result{}, err
}

// prepare checks and completes a request.
func (b *Binder) prepare(req Request) (Request, error) {
	if req.EIPID == "" || req.UHostID == "" {
		return req, permanent(fmt.Errorf("eip binding request needs an eip id and a uhost id (got %q, %q): %w", req.EIPID, req.UHostID, ErrUnusable))
	}
	if req.Owner.UHostID == "" {
		req.Owner.UHostID = req.UHostID
	}
	if req.Owner.UHostID != req.UHostID {
		return req, permanent(fmt.Errorf("eip %s: owner names uhost %s but the request uhost %s: %w", req.EIPID, req.Owner.UHostID, req.UHostID, ErrUnusable))
	}
	req.Owner.Resource = req.EIPID
	if b.owners != nil {
		if err := req.Owner.Validate(); err != nil {
			return req, permanent(fmt.Errorf("eip %s: %w: %w", req.EIPID, err, ErrUnusable))
		}
	}
	if b.guard.RemarkPrefix != "" && req.Owner.Cluster == "" {
		return req, permanent(fmt.Errorf("eip %s: the remark guard needs the cluster name in the request: %w", req.EIPID, ErrUnusable))
	}
	return req, nil
}

// allowed applies the allow-list, before any call.
func (b *Binder) allowed(id string) error {
	if len(b.guard.AllowedEIPIDs) == 0 || slices.Contains(b.guard.AllowedEIPIDs, id) {
		return nil
	}
	return permanent(fmt.Errorf("eip %s is not in the allowed EIP ids of this client (%s): add it to the plugin's allowed_eip_ids if it is yours: %w",
		id, strings.Join(b.guard.AllowedEIPIDs, ", "), ErrRefused))
}

// remarkOK applies the remark rule to a described EIP.
func (b *Binder) remarkOK(e *ucloudapi.EIP, cluster string) error {
	if b.guard.RemarkPrefix == "" {
		return nil
	}
	want := b.guard.RemarkPrefix + cluster
	for _, s := range []string{e.Remark, e.Tag} {
		s = strings.TrimSpace(s)
		if s == want || (strings.HasPrefix(s, want) && strings.ContainsRune(" ,;:/|", rune(s[len(want)]))) {
			return nil
		}
	}
	return permanent(fmt.Errorf("eip %s has remark %q and tag %q, neither starts with %q: it is not marked as this cluster's; set its remark to %q if it is: %w",
		e.ID, e.Remark, e.Tag, want, want, ErrRefused))
}

func boundTo(e *ucloudapi.EIP, uhostID string) bool {
	return e.BoundID == uhostID && (e.BoundType == "" || strings.EqualFold(e.BoundType, "uhost"))
}

func describeBound(e *ucloudapi.EIP) string {
	t := e.BoundType
	if t == "" {
		t = "resource"
	}
	return t + " " + e.BoundID
}

// describe reads the EIP and applies the checks every step needs.
func (b *Binder) describe(ctx context.Context, o *op) (*ucloudapi.EIP, error) {
	e, err := b.api.DescribeEIP(ctx, o.req.EIPID)
	switch {
	case ucloudapi.IsNotFound(err):
		return nil, permanent(fmt.Errorf("eip %s does not exist in this region and project: check the EIP id: %w: %w", o.req.EIPID, ErrUnusable, err))
	case err != nil && !ucloudapi.IsRetryable(err):
		return nil, permanent(err)
	case err != nil:
		return nil, err
	}
	if strings.EqualFold(e.Status, "freeze") {
		return nil, permanent(fmt.Errorf("eip %s is frozen (status freeze, e.g. unpaid): unfreeze it in the UCloud console: %w", e.ID, ErrUnusable))
	}
	if err := b.remarkOK(e, o.req.Owner.Cluster); err != nil {
		return nil, err
	}
	if len(e.IPs) > 0 {
		o.ip = e.IPs[0]
	}
	return e, nil
}

// attempt is one read-compare-act pass.
func (b *Binder) attempt(ctx context.Context, o *op) (Result, error) {
	req := o.req
	e, err := b.describe(ctx, o)
	if err != nil {
		return Result{}, err
	}
	var rec *ownership.Owner
	var idx uint64
	if b.owners != nil {
		if rec, idx, err = b.owners.Get(ctx, ownership.KindEIP, req.EIPID); err != nil {
			return Result{}, err
		}
	}
	ours := rec != nil && rec.AllocID == req.Owner.AllocID

	switch {
	case boundTo(e, req.UHostID):
		if b.owners != nil && !ours {
			if err := b.checkOther(o, rec, "is bound to this host"); err != nil {
				return Result{}, err
			}
			if err := b.waitHeld(ctx, o, rec, "bound to this host"); err != nil {
				return Result{}, err
			}
			if err := b.claim(ctx, o, rec, idx); err != nil {
				return Result{}, err
			}
		}
		return o.result(), nil

	case e.BoundID == "":
		if o.takeoverFrom != "" && o.unboundFrom == "" {
			// Our unbind went through though its reply was lost (or the
			// old owner let go meanwhile).
			o.unboundFrom = o.takeoverFrom
		}
		if b.owners != nil && !ours {
			if err := b.checkOther(o, rec, "is free"); err != nil {
				return Result{}, err
			}
			if err := b.waitHeld(ctx, o, rec, "free"); err != nil {
				return Result{}, err
			}
			if err := b.claim(ctx, o, rec, idx); err != nil {
				return Result{}, err
			}
		}
		return b.bindHere(ctx, o)

	default:
		where := describeBound(e)
		if o.mode == modeVerify && ours && o.takeoverFrom == "" && strings.EqualFold(e.BoundType, "uhost") {
			// Drift: our record says the EIP is ours, so no binder of
			// ours moved it; someone did by hand. Move it back.
			b.logger.Warn("eip was moved away from its owner's host, moving it back", "eip_id", req.EIPID,
				"uhost_id", req.UHostID, "bound_to", e.BoundID)
			o.takeoverFrom = e.BoundID
		}
		switch {
		case o.mode == modeVerify && rec != nil && !ours:
			return Result{}, conflict(fmt.Errorf("eip %s is now owned by allocation %s (slot %s) and bound to %s: %w",
				req.EIPID, rec.AllocID, rec.Slot(), where, ErrNotOwner))
		case o.mode == modeVerify && !ours:
			return Result{}, conflict(fmt.Errorf("eip %s is bound to %s, not to this host %s; recovery does not move it: %w",
				req.EIPID, where, req.UHostID, ErrRefused))
		case b.owners == nil:
			return Result{}, conflict(fmt.Errorf("eip %s is bound to %s; without consul there is no owner record to show that binding is stale, so it is not taken: unbind it by hand or configure consul: %w",
				req.EIPID, where, ErrRefused))
		case !strings.EqualFold(e.BoundType, "uhost"):
			return Result{}, conflict(fmt.Errorf("eip %s is bound to %s, not to a uhost; it is not taken: %w", req.EIPID, where, ErrRefused))
		case rec == nil:
			return Result{}, conflict(fmt.Errorf("eip %s is bound to %s and has no owner record: it is someone else's binding and is not taken; if it is stale, unbind it by hand: %w",
				req.EIPID, where, ErrRefused))
		case !rec.SameSlot(req.Owner):
			return Result{}, conflict(fmt.Errorf("eip %s is bound to %s for slot %s (allocation %s), not for this slot %s: check the job's EIP ids: %w",
				req.EIPID, where, rec.Slot(), rec.AllocID, req.Owner.Slot(), ErrRefused))
		case ours && o.takeoverFrom != e.BoundID:
			return Result{}, conflict(fmt.Errorf("eip %s is owned by this allocation but bound to %s by someone else; not fighting over it: %w",
				req.EIPID, where, ErrRefused))
		case !ours && rec.UHostID != e.BoundID:
			return Result{}, conflict(fmt.Errorf("eip %s is bound to %s but its owner record (allocation %s of slot %s) says uhost %s; not taking it: %w",
				req.EIPID, where, rec.AllocID, rec.Slot(), rec.UHostID, ErrRefused))
		}
		if !ours {
			if err := b.waitHeld(ctx, o, rec, "bound to "+where); err != nil {
				return Result{}, err
			}
			// A stale binding of an ended allocation of this slot: claim
			// it first, so its owner cannot release it from under us.
			if err := b.claim(ctx, o, rec, idx); err != nil {
				return Result{}, err
			}
			o.takeoverFrom = e.BoundID
		}
		b.logger.Info("taking eip over from a previous allocation", "eip_id", req.EIPID, "uhost_id", req.UHostID,
			"previous_uhost_id", e.BoundID, "previous_alloc_id", allocOf(o.prev))
		if err := b.api.UnBindEIP(ctx, req.EIPID, e.BoundID); err != nil {
			if !ucloudapi.IsRetryable(err) && ucloudapi.RetCode(err) != 8039 {
				return Result{}, permanent(err)
			}
			return Result{}, err
		}
		o.unboundFrom = e.BoundID
		return b.bindHere(ctx, o)
	}
}

func allocOf(o *ownership.Owner) string {
	if o == nil {
		return ""
	}
	return o.AllocID
}

// checkOther decides about a record of another allocation when the EIP is
// free or already on this host: an earlier allocation of the same slot is
// replaced (Bind), anything else is refused.
func (b *Binder) checkOther(o *op, rec *ownership.Owner, state string) error {
	if rec == nil {
		return nil
	}
	req := o.req
	if !rec.SameSlot(req.Owner) {
		return permanent(fmt.Errorf("eip %s %s but is claimed for slot %s by allocation %s, not for this slot %s: each slot needs its own EIP; if the claim is stale delete its owner record in consul: %w",
			req.EIPID, state, rec.Slot(), rec.AllocID, req.Owner.Slot(), ErrRefused))
	}
	if o.mode == modeVerify {
		return permanent(fmt.Errorf("eip %s %s but is now owned by allocation %s of this slot: %w", req.EIPID, state, rec.AllocID, ErrNotOwner))
	}
	return nil
}

// waitHeld returns a retryable error while rec (another allocation of our
// slot) still holds the EIP: it is releasing it, or its allocation has not
// ended. A live owner's binding is never taken; the attempt is repeated
// until it lets go or the deadline ends.
func (b *Binder) waitHeld(ctx context.Context, o *op, rec *ownership.Owner, state string) error {
	if rec == nil {
		return nil
	}
	held, why, err := ownership.Held(ctx, b.liveness, *rec, b.now())
	if err != nil {
		return fmt.Errorf("eip %s is %s for allocation %s of this slot: %w", o.req.EIPID, state, rec.AllocID, err)
	}
	if held {
		return fmt.Errorf("eip %s is %s and held by allocation %s of this slot (%s): waiting for it to let go", o.req.EIPID, state, rec.AllocID, why)
	}
	if why != "" {
		b.logger.Info("previous owner of eip has ended", "eip_id", o.req.EIPID, "previous_alloc_id", rec.AllocID, "why", why)
	}
	return nil
}

// claim writes our owner record over rec (nil: none) at idx.
func (b *Binder) claim(ctx context.Context, o *op, rec *ownership.Owner, idx uint64) error {
	ok, err := b.owners.Claim(ctx, ownership.KindEIP, o.req.EIPID, o.req.Owner, idx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("eip %s: %w", o.req.EIPID, errCASLost)
	}
	if !o.claimed {
		o.claimed = true
		if rec != nil {
			prev := *rec
			o.prev = &prev
		}
	}
	return nil
}

// bindHere binds the EIP (unless our bind already succeeded) and waits until
// a describe shows it bound here.
func (b *Binder) bindHere(ctx context.Context, o *op) (Result, error) {
	req := o.req
	if !o.bound {
		o.triedBind = true
		if err := b.api.BindEIP(ctx, req.EIPID, req.UHostID); err != nil {
			if !ucloudapi.IsRetryable(err) && ucloudapi.RetCode(err) != 8039 {
				// Not a transient failure nor a state conflict we can
				// re-read (e.g. the uhost does not exist).
				return Result{}, permanent(err)
			}
			return Result{}, err
		}
		o.bound, o.everBound, o.changed = true, true, true
	}
	wait := b.poll
	var seen string
	for i := 0; i < b.maxPolls; i++ {
		e, err := b.api.DescribeEIP(ctx, req.EIPID)
		switch {
		case err == nil && boundTo(e, req.UHostID):
			if len(e.IPs) > 0 {
				o.ip = e.IPs[0]
			}
			return o.result(), nil
		case err == nil:
			seen = "free"
			if e.BoundID != "" {
				seen = "bound to " + describeBound(e)
			}
		case ucloudapi.IsNotFound(err):
			return Result{}, permanent(fmt.Errorf("eip %s vanished right after it was bound: %w: %w", req.EIPID, ErrUnusable, err))
		default:
			seen = "unreadable (" + err.Error() + ")"
		}
		if !ucloudapi.Sleep(ctx, wait) {
			break
		}
		wait = min(2*wait, time.Second)
	}
	// Start over next attempt: re-read, and bind again if still needed.
	o.bound = false
	return Result{}, fmt.Errorf("eip %s: BindEIP to uhost %s succeeded but DescribeEIP still shows it %s", req.EIPID, req.UHostID, seen)
}

// rollback undoes what a failed Bind or Verify did, as far as it can be sure
// of, and returns the error to report.
func (b *Binder) rollback(ctx context.Context, o *op, cause error) error {
	if !o.claimed && !o.everBound {
		return cause
	}
	req := o.req
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cleanup)
	defer cancel()
	if o.everBound && b.stillOurs(cctx, req) {
		// Bound but never confirmed: take it back, so the task that will
		// not start does not hold it. UCloud refuses (8039) if it is not
		// bound to this host, so this never touches another host.
		if err := b.api.UnBindEIP(cctx, req.EIPID, req.UHostID); err != nil && ucloudapi.RetCode(err) != 8039 {
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
	if err := b.restore(cctx, o); err != nil {
		return fmt.Errorf("%w; restoring the owner record of eip %s failed too: %v", cause, req.EIPID, err)
	}
	return cause
}

// stillOurs reports whether no other allocation has claimed the EIP since.
func (b *Binder) stillOurs(ctx context.Context, req Request) bool {
	if b.owners == nil {
		return true
	}
	rec, _, err := b.owners.Get(ctx, ownership.KindEIP, req.EIPID)
	return err == nil && rec != nil && rec.AllocID == req.Owner.AllocID
}

// restore puts back the owner record our claim replaced (or deletes ours).
func (b *Binder) restore(ctx context.Context, o *op) error {
	return ownership.Restore(ctx, b.owners, ownership.KindEIP, o.req.EIPID, o.req.Owner.AllocID, o.prev)
}

// Release unbinds the EIP from req.UHostID, only if it is still bound there
// and (with Owners) still owned by req.Owner.AllocID, then deletes the owner
// record. It never takes an EIP from a replacement allocation. Releasing
// something already released is a no-op.
func (b *Binder) Release(ctx context.Context, req Request) (err error) {
	start := time.Now()
	changed := false
	defer func() { b.done("eip_release", changed, err, start) }()
	if req, err = b.prepare(req); err != nil {
		return err
	}
	if err := b.allowed(req.EIPID); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, b.retry.Deadline)
	defer cancel()
	log := b.logger.With("eip_id", req.EIPID, "uhost_id", req.UHostID, "alloc_id", req.Owner.AllocID)
	o := &op{req: req}
	for attempt := 1; attempt <= b.retry.MaxAttempts; attempt++ {
		var c bool
		c, err = b.releaseOnce(ctx, o, log)
		changed = changed || c
		if err == nil || IsPermanent(err) || ctx.Err() != nil {
			break
		}
		wait := b.retry.Backoff(attempt)
		log.Warn("eip release attempt failed, retrying", "attempt", attempt, "wait", wait, "error", err)
		if !ucloudapi.Sleep(ctx, wait) {
			break
		}
	}
	if err != nil {
		err = fmt.Errorf("release eip %s from uhost %s: %w", req.EIPID, req.UHostID, err)
		log.Error("eip release failed", "error", err)
	}
	return err
}

func (b *Binder) releaseOnce(ctx context.Context, o *op, log hclog.Logger) (bool, error) {
	req := o.req
	if b.owners != nil {
		rec, idx, err := b.owners.Get(ctx, ownership.KindEIP, req.EIPID)
		if err != nil {
			return false, err
		}
		if rec == nil {
			log.Info("not unbinding eip: no owner record, so not ours")
			return false, nil
		}
		if rec.AllocID != req.Owner.AllocID {
			log.Info("not unbinding eip: another allocation owns it now", "owner_alloc_id", rec.AllocID, "owner_uhost_id", rec.UHostID)
			return false, nil
		}
		// Mark the record releasing before unbinding (check-and-set): a
		// replacement that reads it now waits instead of finding the EIP
		// on its host and then losing it to our unbind.
		if !rec.Releasing(b.now()) {
			until := b.now().Add(b.lease).UTC()
			mark := *rec
			mark.ReleasingUntil, mark.UpdatedAt = &until, time.Time{}
			ok, err := b.owners.Claim(ctx, ownership.KindEIP, req.EIPID, mark, idx)
			if err != nil {
				return false, err
			}
			if !ok {
				return false, fmt.Errorf("eip %s: %w", req.EIPID, errCASLost)
			}
		}
	}
	e, err := b.describe(ctx, o)
	if errors.Is(err, ErrUnusable) && errors.Is(err, ucloudapi.ErrNotFound) {
		log.Info("eip no longer exists, nothing to unbind")
		return false, b.dropRecord(ctx, req)
	}
	if err != nil {
		return false, err
	}
	changed := false
	if boundTo(e, req.UHostID) {
		if err := b.api.UnBindEIP(ctx, req.EIPID, req.UHostID); err != nil {
			if !ucloudapi.IsRetryable(err) && ucloudapi.RetCode(err) != 8039 {
				return false, permanent(err)
			}
			return false, err
		}
		changed = true
		log.Info("unbound eip")
		b.waitUnbound(ctx, req, log)
	} else {
		log.Info("eip is not bound here, nothing to unbind", "bound_to", e.BoundID)
	}
	return changed, b.dropRecord(ctx, req)
}

// waitUnbound polls until a describe no longer shows the EIP bound to the
// host, so that whoever binds it next reads the change. The unbind itself
// succeeded; if it does not show in time, that is only logged.
func (b *Binder) waitUnbound(ctx context.Context, req Request, log hclog.Logger) {
	wait := b.poll
	for i := 0; i < b.maxPolls; i++ {
		e, err := b.api.DescribeEIP(ctx, req.EIPID)
		if err == nil && !boundTo(e, req.UHostID) || ucloudapi.IsNotFound(err) {
			return
		}
		if !ucloudapi.Sleep(ctx, wait) {
			break
		}
		wait = min(2*wait, time.Second)
	}
	log.Warn("eip unbound, but describes do not show it yet")
}

func (b *Binder) dropRecord(ctx context.Context, req Request) error {
	if b.owners == nil {
		return nil
	}
	return b.owners.Release(ctx, ownership.KindEIP, req.EIPID, req.Owner.AllocID)
}

// done reports an operation to Observe.
func (b *Binder) done(action string, changed bool, err error, start time.Time) {
	if b.observe == nil {
		return
	}
	outcome := "unchanged"
	switch {
	case errors.Is(err, ErrRefused) || errors.Is(err, ErrNotOwner):
		outcome = "refused"
	case err != nil:
		outcome = "error"
	case changed:
		outcome = "changed"
	}
	b.observe(action, outcome, time.Since(start))
}
