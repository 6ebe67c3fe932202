// Package ulbbind registers a NameServer's host and port as a backend of a
// ULB VServer, as a reconcile: read the VServer's backends, compare, act,
// check. It reuses an existing backend for the same host and port, releases
// the backend left by an earlier allocation of the same slot (found through
// its Consul owner record, and only that one), and records the new
// backend's owner with check-and-set. The rules are in docs/binding.md.
package ulbbind

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// API is the part of UCloud the binder uses; *ucloudapi.Client has it.
type API interface {
	DescribeVServer(ctx context.Context, ulbID, vserverID string) ([]ucloudapi.Backend, error)
	AllocateBackend(ctx context.Context, ulbID, vserverID, uhostID string, port int) (string, error)
	ReleaseBackend(ctx context.Context, ulbID, backendID string) error
}

// Owners keeps owner records; *ownership.Store has it. Without one (nil) the
// binder registers and releases the backend of its own host and port, and
// never releases another allocation's backend.
type Owners interface {
	Get(ctx context.Context, kind, key string) (*ownership.Owner, uint64, error)
	Claim(ctx context.Context, kind, key string, o ownership.Owner, prevIndex uint64) (bool, error)
	Release(ctx context.Context, kind, key string, allocID string) error
}

// Guard keeps the binder to the operator's own load balancers.
type Guard struct {
	// AllowedULBIDs, when not empty, lists the only ULBs the binder may
	// touch.
	AllowedULBIDs []string
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
	// ("ulb_register", "ulb_verify", "ulb_release"), the outcome
	// ("changed", "unchanged", "refused", "error") and the time it took.
	Observe func(action, outcome string, d time.Duration)
	// PollInterval is the first wait between the describes that wait for a
	// change to show (it doubles up to 1s); 0 means 25ms.
	PollInterval time.Duration
	// MaxPolls bounds those describes; 0 means 20.
	MaxPolls int
	// CleanupTimeout bounds the rollback after a failed Register; 0 means
	// 10s.
	CleanupTimeout time.Duration
	// Liveness tells whether the allocation of another owner record of the
	// slot has ended; only then is its backend released for ours. Nil
	// treats every such record as stale (no scheduler to ask).
	Liveness ownership.Liveness
	// ReleaseLease is how long a Release marks the owner record as
	// releasing before it releases the backend; 0 means the retry deadline.
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

// IsPermanent reports whether retrying the ULB backend operation later cannot help
// without someone changing something: a refusal, a missing resource, an
// invalid request, or a UCloud error that is not transient.
func IsPermanent(err error) bool { return ucloudapi.IsPermanent(err) }

var errCASLost = ucloudapi.ErrCASLost

// Request says which host and port to register, for which allocation.
type Request struct {
	ULBID, VServerID string
	UHostID          string
	// PrivateIP is the host's private IP, for logs and checks (UCloud
	// identifies the backend by UHostID).
	PrivateIP string
	Port      int
	// Owner is the allocation asking; AllocID, Cluster, Role and AllocIndex
	// are required when the binder has Owners. UHostID defaults to the
	// request's; Port and Resource are set by the binder.
	Owner ownership.Owner
}

// RecordKey is the owner record key of the request's slot:
// <ulb>/<vserver>/<cluster>/<role>/<alloc index>.
func RecordKey(req Request) string {
	return req.ULBID + "/" + req.VServerID + "/" + req.Owner.Cluster + "/" + req.Owner.Role + "/" + strconv.Itoa(req.Owner.AllocIndex)
}

// Result is the registration as it now is.
type Result struct {
	BackendID string
	// Released lists the backends of earlier allocations of the slot that
	// were released.
	Released []string
	// Changed is false when the backend already existed and nothing was
	// released.
	Changed bool
}

// Binder registers backends. It is safe for concurrent use.
type Binder struct {
	api      API
	owners   Owners
	allowed  []string
	logger   hclog.Logger
	retry    RetryPolicy
	observe  func(action, outcome string, d time.Duration)
	poll     time.Duration
	maxPolls int
	cleanup  time.Duration
	liveness ownership.Liveness
	lease    time.Duration
	now      func() time.Time
}

// New returns a binder. owners may be nil (no Consul).
func New(api API, owners Owners, guard Guard, opts Options) *Binder {
	b := &Binder{
		api:      api,
		owners:   owners,
		allowed:  slices.Clone(guard.AllowedULBIDs),
		logger:   opts.Logger,
		retry:    opts.Retry.WithDefaults(),
		observe:  opts.Observe,
		poll:     opts.PollInterval,
		maxPolls: opts.MaxPolls,
		cleanup:  opts.CleanupTimeout,
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
	return b
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

type mode int

const (
	modeRegister mode = iota
	modeVerify
)

// op is one Register or Verify, across attempts.
type op struct {
	req  Request
	key  string
	mode mode
	// seen: backend ids of the first describe (to tell what we created).
	seen map[string]bool
	// claimed: we wrote our owner record; prev is the record it replaced.
	claimed bool
	prev    *ownership.Owner
	// triedAlloc: we sent an AllocateBackend; allocated: its reply's id.
	triedAlloc bool
	allocated  string
	released   []string
	// releasing: predecessor backends we sent a ReleaseBackend for.
	releasing map[string]bool
}

// Register makes sure (req.UHostID, req.Port) is a backend of the VServer
// and that the slot's owner record names it; it first releases the backend
// an earlier allocation of the same slot left behind. On failure it
// releases what it created (see docs/binding.md).
func (b *Binder) Register(ctx context.Context, req Request) (Result, error) {
	return b.run(ctx, "ulb_register", req, modeRegister)
}

// Verify re-checks a registration after a driver restart: it re-creates the
// backend if it is gone and this allocation still owns the slot, and fails
// with ErrNotOwner when another allocation owns it now. It never releases
// anything.
func (b *Binder) Verify(ctx context.Context, req Request) (Result, error) {
	return b.run(ctx, "ulb_verify", req, modeVerify)
}

func (b *Binder) run(ctx context.Context, action string, req Request, m mode) (res Result, err error) {
	start := time.Now()
	defer func() { b.done(action, res.Changed, err, start) }()
	if req, err = b.prepare(req); err != nil {
		return Result{}, err
	}
	if err := b.guard(req.ULBID); err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, b.retry.Deadline)
	defer cancel()
	o := &op{req: req, key: RecordKey(req), mode: m}
	log := b.logger.With("ulb_id", req.ULBID, "vserver_id", req.VServerID, "uhost_id", req.UHostID,
		"port", req.Port, "alloc_id", req.Owner.AllocID)
	var last, failure error // failure: the last error not caused by the deadline
	for attempt := 1; attempt <= b.retry.MaxAttempts; attempt++ {
		r, err := b.attempt(ctx, o, log)
		if err == nil {
			if r.Changed {
				log.Info("registered backend", "backend_id", r.BackendID, "released", r.Released, "attempts", attempt)
			} else {
				log.Debug("backend already registered", "backend_id", r.BackendID, "attempts", attempt)
			}
			return r, nil
		}
		last = err
		if ctx.Err() == nil {
			failure = err
		}
		if IsPermanent(err) || ctx.Err() != nil {
			break
		}
		if errors.Is(err, errCASLost) {
			log.Debug("owner record changed while claiming, reading again", "attempt", attempt)
			continue
		}
		wait := b.retry.Backoff(attempt)
		log.Warn("backend attempt failed, retrying", "attempt", attempt, "wait", wait, "error", err)
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
	err = b.rollback(ctx, o, last, log)
	log.Error("backend registration failed", "error", err)
	return Result{}, err
}

func (b *Binder) prepare(req Request) (Request, error) {
	if req.ULBID == "" || req.VServerID == "" || req.UHostID == "" {
		return req, permanent(fmt.Errorf("backend request needs a ulb id, a vserver id and a uhost id (got %q, %q, %q): %w",
			req.ULBID, req.VServerID, req.UHostID, ErrUnusable))
	}
	if req.Port < 1 || req.Port > 65535 {
		return req, permanent(fmt.Errorf("backend uhost %s port %d for vserver %s of ulb %s: port out of range 1-65535: %w",
			req.UHostID, req.Port, req.VServerID, req.ULBID, ErrUnusable))
	}
	if req.Owner.UHostID == "" {
		req.Owner.UHostID = req.UHostID
	}
	if req.Owner.UHostID != req.UHostID {
		return req, permanent(fmt.Errorf("backend for ulb %s: owner names uhost %s but the request uhost %s: %w",
			req.ULBID, req.Owner.UHostID, req.UHostID, ErrUnusable))
	}
	req.Owner.Port = req.Port
	if b.owners != nil {
		if err := req.Owner.Validate(); err != nil {
			return req, permanent(fmt.Errorf("backend for ulb %s vserver %s: %w: %w", req.ULBID, req.VServerID, err, ErrUnusable))
		}
	}
	return req, nil
}

func (b *Binder) guard(ulbID string) error {
	if len(b.allowed) == 0 || slices.Contains(b.allowed, ulbID) {
		return nil
	}
	return permanent(fmt.Errorf("ulb %s is not in the allowed ULB ids of this client (%s): add it to the plugin's allowed_ulb_ids if it is yours: %w",
		ulbID, strings.Join(b.allowed, ", "), ErrRefused))
}

// describe lists the VServer's backends.
func (b *Binder) describe(ctx context.Context, req Request) ([]ucloudapi.Backend, error) {
	bs, err := b.api.DescribeVServer(ctx, req.ULBID, req.VServerID)
	switch {
	case ucloudapi.IsNotFound(err):
		return nil, permanent(fmt.Errorf("vserver %s of ulb %s does not exist in this region and project: check the ids: %w: %w",
			req.VServerID, req.ULBID, ErrUnusable, err))
	case err != nil && !ucloudapi.IsRetryable(err):
		return nil, permanent(err)
	}
	return bs, err
}

// find returns the backend of the host and port.
func find(bs []ucloudapi.Backend, uhostID string, port int) *ucloudapi.Backend {
	for i := range bs {
		if bs[i].ResourceID == uhostID && bs[i].Port == port {
			return &bs[i]
		}
	}
	return nil
}

func has(bs []ucloudapi.Backend, id string) bool {
	return slices.ContainsFunc(bs, func(x ucloudapi.Backend) bool { return x.ID == id })
}

// attempt is one read-compare-act pass.
func (b *Binder) attempt(ctx context.Context, o *op, log hclog.Logger) (Result, error) {
	req := o.req
	bs, err := b.describe(ctx, req)
	if err != nil {
		return Result{}, err
	}
	if o.seen == nil {
		o.seen = map[string]bool{}
		for _, x := range bs {
			o.seen[x.ID] = true
		}
	}
	mine := find(bs, req.UHostID, req.Port)
	if mine == nil && o.allocated != "" {
		// Created, but the describe does not show it yet.
		if err := b.waitFor(ctx, req, func(bs []ucloudapi.Backend) bool { return has(bs, o.allocated) }); err != nil {
			return Result{}, fmt.Errorf("backend %s (uhost %s port %d) was created but vserver %s does not list it yet", o.allocated, req.UHostID, req.Port, req.VServerID)
		}
		mine = &ucloudapi.Backend{ID: o.allocated, ResourceID: req.UHostID, Port: req.Port}
	}
	if mine != nil && req.PrivateIP != "" && mine.PrivateIP != "" && mine.PrivateIP != req.PrivateIP {
		log.Warn("backend private IP differs from the request's", "backend_id", mine.ID, "backend_ip", mine.PrivateIP, "request_ip", req.PrivateIP)
	}

	var rec *ownership.Owner
	var idx uint64
	if b.owners != nil {
		if rec, idx, err = b.owners.Get(ctx, ownership.KindBackend, o.key); err != nil {
			return Result{}, err
		}
	}
	ours := rec != nil && rec.AllocID == req.Owner.AllocID
	if b.owners != nil && !ours {
		if rec != nil {
			if !rec.SameSlot(req.Owner) {
				return Result{}, permanent(fmt.Errorf("owner record %s names allocation %s of slot %s, not slot %s: fix or delete the record: %w",
					o.key, rec.AllocID, rec.Slot(), req.Owner.Slot(), ErrRefused))
			}
			if o.mode == modeVerify {
				return Result{}, permanent(fmt.Errorf("the backend of slot %s in vserver %s of ulb %s is now owned by allocation %s (uhost %s port %d): %w",
					req.Owner.Slot(), req.VServerID, req.ULBID, rec.AllocID, rec.UHostID, rec.Port, ErrNotOwner))
			}
			held, why, err := ownership.Held(ctx, b.liveness, *rec, b.now())
			if err != nil {
				return Result{}, fmt.Errorf("slot %s: %w", req.Owner.Slot(), err)
			}
			if held {
				return Result{}, fmt.Errorf("the backend of slot %s is held by allocation %s (uhost %s port %d; %s): waiting for it to let go",
					req.Owner.Slot(), rec.AllocID, rec.UHostID, rec.Port, why)
			}
			if err := b.releasePredecessor(ctx, o, rec, bs, mine, log); err != nil {
				return Result{}, err
			}
		}
		claim := req.Owner
		if mine != nil {
			claim.Resource = mine.ID
		}
		// Claimed before creating anything: until the backend's id is
		// known, the record's uhost and port identify it.
		if err := b.claim(ctx, o, claim, rec, idx); err != nil {
			return Result{}, err
		}
		rec = &claim
	}

	if mine == nil {
		o.triedAlloc = true
		id, err := b.api.AllocateBackend(ctx, req.ULBID, req.VServerID, req.UHostID, req.Port)
		if err != nil {
			return Result{}, b.allocateFailed(ctx, req, err)
		}
		o.allocated = id
		log.Info("allocated backend", "backend_id", id)
		if err := b.waitFor(ctx, req, func(bs []ucloudapi.Backend) bool { return has(bs, id) }); err != nil {
			log.Warn("backend allocated, but the vserver does not list it yet", "backend_id", id)
		}
		mine = &ucloudapi.Backend{ID: id, ResourceID: req.UHostID, Port: req.Port}
	}

	if b.owners != nil && rec.Resource != mine.ID {
		// Record the backend's id (the record is ours: re-read its index).
		cur, idx, err := b.owners.Get(ctx, ownership.KindBackend, o.key)
		if err != nil {
			return Result{}, err
		}
		if cur == nil || cur.AllocID != req.Owner.AllocID {
			return Result{}, fmt.Errorf("backend record %s: %w", o.key, errCASLost)
		}
		upd := req.Owner
		upd.Resource = mine.ID
		if err := b.claim(ctx, o, upd, cur, idx); err != nil {
			return Result{}, err
		}
	}
	return Result{
		BackendID: mine.ID,
		Released:  slices.Clone(o.released),
		Changed:   o.allocated != "" || !o.seen[mine.ID] || len(o.released) > 0,
	}, nil
}

// releasePredecessor releases the backend an earlier allocation of the same
// slot recorded (by id, else by its host and port), unless it is the very
// backend we want (same host and port).
func (b *Binder) releasePredecessor(ctx context.Context, o *op, rec *ownership.Owner, bs []ucloudapi.Backend, mine *ucloudapi.Backend, log hclog.Logger) error {
	req := o.req
	old := rec.Resource
	if old == "" && rec.UHostID != "" && rec.Port != 0 {
		if x := find(bs, rec.UHostID, rec.Port); x != nil {
			old = x.ID
		}
	}
	if old == "" || (mine != nil && old == mine.ID) || slices.Contains(o.released, old) {
		return nil
	}
	if !has(bs, old) {
		if o.releasing[old] {
			// Our release went through though its reply was lost.
			o.released = append(o.released, old)
		}
		log.Debug("previous allocation's backend is already gone", "backend_id", old, "previous_alloc_id", rec.AllocID)
		return nil
	}
	if o.releasing == nil {
		o.releasing = map[string]bool{}
	}
	o.releasing[old] = true
	err := b.api.ReleaseBackend(ctx, req.ULBID, old)
	switch {
	case ucloudapi.IsNotFound(err):
	case err != nil && !ucloudapi.IsRetryable(err):
		return permanent(err)
	case err != nil:
		return err
	}
	o.released = append(o.released, old)
	log.Info("released backend of a previous allocation", "backend_id", old, "previous_alloc_id", rec.AllocID,
		"previous_uhost_id", rec.UHostID, "previous_port", rec.Port)
	return nil
}

// allocateFailed classifies an AllocateBackend failure. A refusal because
// the backend exists (a lost reply, or a describe lagging behind) is read
// again; anything else not transient is permanent.
func (b *Binder) allocateFailed(ctx context.Context, req Request, err error) error {
	if ucloudapi.IsRetryable(err) {
		return err
	}
	if bs, derr := b.api.DescribeVServer(ctx, req.ULBID, req.VServerID); derr == nil && find(bs, req.UHostID, req.Port) != nil {
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

// waitFor polls the VServer until ok holds or the polls run out.
func (b *Binder) waitFor(ctx context.Context, req Request, ok func([]ucloudapi.Backend) bool) error {
	wait := b.poll
	for i := 0; i < b.maxPolls; i++ {
		bs, err := b.api.DescribeVServer(ctx, req.ULBID, req.VServerID)
		if err == nil && ok(bs) {
			return nil
		}
		if ucloudapi.IsNotFound(err) {
			return err
		}
		if !ucloudapi.Sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(2*wait, time.Second)
	}
	return errors.New("not visible yet")
}

func (b *Binder) claim(ctx context.Context, o *op, own ownership.Owner, rec *ownership.Owner, idx uint64) error {
	ok, err := b.owners.Claim(ctx, ownership.KindBackend, o.key, own, idx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("backend record %s: %w", o.key, errCASLost)
	}
	if !o.claimed {
		o.claimed = true
		if rec != nil {
			p := *rec
			o.prev = &p
		}
	}
	return nil
}

// rollback releases what a failed Register created and puts the owner
// record back when nothing changed.
func (b *Binder) rollback(ctx context.Context, o *op, cause error, log hclog.Logger) error {
	if !o.claimed && !o.triedAlloc {
		return cause
	}
	req := o.req
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cleanup)
	defer cancel()
	if o.triedAlloc && o.mode == modeRegister {
		id := o.allocated
		if id == "" {
			bs, err := b.api.DescribeVServer(cctx, req.ULBID, req.VServerID)
			if err != nil {
				return fmt.Errorf("%w; could not check whether a backend for uhost %s port %d was created (%v): the owner record %s is kept so releasing this slot cleans up",
					cause, req.UHostID, req.Port, err, o.key)
			}
			if x := find(bs, req.UHostID, req.Port); x != nil && !o.seen[x.ID] {
				id = x.ID
			}
		}
		if id != "" {
			if err := b.api.ReleaseBackend(cctx, req.ULBID, id); err != nil && !ucloudapi.IsNotFound(err) {
				return fmt.Errorf("%w; releasing backend %s created by this attempt failed too (%v): the owner record %s is kept so releasing this slot cleans up",
					cause, id, err, o.key)
			}
			log.Info("released backend created by the failed attempt", "backend_id", id)
		}
	}
	if !o.claimed || b.owners == nil {
		return cause
	}
	if o.prev != nil && len(o.released) == 0 {
		if err := b.restore(cctx, o); err != nil {
			return fmt.Errorf("%w; restoring owner record %s failed too: %v", cause, o.key, err)
		}
		return cause
	}
	if err := b.owners.Release(cctx, ownership.KindBackend, o.key, req.Owner.AllocID); err != nil {
		return fmt.Errorf("%w; deleting owner record %s failed too: %v", cause, o.key, err)
	}
	return cause
}

func (b *Binder) restore(ctx context.Context, o *op) error {
	return ownership.Restore(ctx, b.owners, ownership.KindBackend, o.key, o.req.Owner.AllocID, o.prev)
}

// Release removes the allocation's backend: with Owners only while the
// slot's owner record still names req.Owner.AllocID (a replacement's
// backend is never touched), then deletes the record. A backend already
// gone counts as released.
func (b *Binder) Release(ctx context.Context, req Request) (err error) {
	start := time.Now()
	changed := false
	defer func() { b.done("ulb_release", changed, err, start) }()
	if req, err = b.prepare(req); err != nil {
		return err
	}
	if err := b.guard(req.ULBID); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, b.retry.Deadline)
	defer cancel()
	key := RecordKey(req)
	log := b.logger.With("ulb_id", req.ULBID, "vserver_id", req.VServerID, "uhost_id", req.UHostID,
		"port", req.Port, "alloc_id", req.Owner.AllocID)
	for attempt := 1; attempt <= b.retry.MaxAttempts; attempt++ {
		var c bool
		c, err = b.releaseOnce(ctx, req, key, log)
		changed = changed || c
		if err == nil || IsPermanent(err) || ctx.Err() != nil {
			break
		}
		wait := b.retry.Backoff(attempt)
		log.Warn("backend release attempt failed, retrying", "attempt", attempt, "wait", wait, "error", err)
		if !ucloudapi.Sleep(ctx, wait) {
			break
		}
	}
	if err != nil {
		err = fmt.Errorf("release backend of uhost %s port %d from vserver %s of ulb %s: %w", req.UHostID, req.Port, req.VServerID, req.ULBID, err)
		log.Error("backend release failed", "error", err)
	}
	return err
}

func (b *Binder) releaseOnce(ctx context.Context, req Request, key string, log hclog.Logger) (bool, error) {
	uhost, port, id := req.UHostID, req.Port, ""
	if b.owners != nil {
		rec, idx, err := b.owners.Get(ctx, ownership.KindBackend, key)
		if err != nil {
			return false, err
		}
		if rec == nil {
			log.Info("not releasing backend: no owner record, so not ours")
			return false, nil
		}
		if rec.AllocID != req.Owner.AllocID {
			log.Info("not releasing backend: another allocation owns the slot now", "owner_alloc_id", rec.AllocID, "backend_id", rec.Resource)
			return false, nil
		}
		// Mark the record releasing first (check-and-set), so a
		// replacement that would reuse this very backend (same host and
		// port) waits instead of losing it to our release.
		if !rec.Releasing(b.now()) {
			until := b.now().Add(b.lease).UTC()
			mark := *rec
			mark.ReleasingUntil, mark.UpdatedAt = &until, time.Time{}
			ok, err := b.owners.Claim(ctx, ownership.KindBackend, key, mark, idx)
			if err != nil {
				return false, err
			}
			if !ok {
				return false, fmt.Errorf("backend record %s: %w", key, errCASLost)
			}
		}
		uhost, port, id = rec.UHostID, rec.Port, rec.Resource
	}
	bs, err := b.describe(ctx, req)
	if err != nil {
		if errors.Is(err, ucloudapi.ErrNotFound) {
			log.Info("vserver no longer exists, nothing to release")
			return false, b.dropRecord(ctx, req, key)
		}
		return false, err
	}
	if id == "" {
		if x := find(bs, uhost, port); x != nil {
			id = x.ID
		}
	}
	changed := false
	if id != "" && has(bs, id) {
		err := b.api.ReleaseBackend(ctx, req.ULBID, id)
		switch {
		case err == nil:
			changed = true
			log.Info("released backend", "backend_id", id)
			if werr := b.waitFor(ctx, req, func(bs []ucloudapi.Backend) bool { return !has(bs, id) }); werr != nil {
				log.Warn("backend released, but the vserver still lists it", "backend_id", id)
			}
		case ucloudapi.IsNotFound(err):
		case !ucloudapi.IsRetryable(err):
			return false, permanent(err)
		default:
			return false, err
		}
	} else {
		log.Info("backend already gone", "backend_id", id)
	}
	return changed, b.dropRecord(ctx, req, key)
}

func (b *Binder) dropRecord(ctx context.Context, req Request, key string) error {
	if b.owners == nil {
		return nil
	}
	return b.owners.Release(ctx, ownership.KindBackend, key, req.Owner.AllocID)
}

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
