// Package ulbbind registers a NameServer's host and port as a backend of a
// ULB VServer, as a reconcile (package reconcile): observe the VServer's
// backends and the slot's owner record, decide a plan (decide, a pure
// function), act on it, and confirm. It reuses an existing backend for the same host and port, releases
// the backend left by an earlier allocation of the same slot (found through
// its Consul owner record, and only that one), and records the new
// backend's owner with check-and-set. The rules are in docs/binding.md.
package ulbbind

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/reconcile"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// API is the part of UCloud the binder uses; *ucloudapi.Client has it.
type API interface {
	DescribeVServer(ctx context.Context, ulbID, vserverID string) ([]ucloudapi.Backend, error)
	AllocateBackend(ctx context.Context, ulbID, vserverID, uhostID string, port int) (string, error)
	ReleaseBackend(ctx context.Context, ulbID, backendID string) error
	SetBackendEnabled(ctx context.Context, ulbID, backendID string, enabled bool) error
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

// Options tune a Binder. New applies their defaults once.
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
	owners   Owners // nil: no Consul
	allowed  []string
	logger   hclog.Logger
	policy   reconcile.Policy
	polling  reconcile.Polling
	liveness ownership.Liveness
	lease    time.Duration
	now      func() time.Time
}

// New returns a binder. owners may be nil (no Consul).
func New(api API, owners Owners, guard Guard, opts Options) *Binder {
	polling := reconcile.Polling{Interval: opts.PollInterval, Max: opts.MaxPolls}.WithDefaults()
	b := &Binder{
		api:     api,
		owners:  owners,
		allowed: slices.Clone(guard.AllowedULBIDs),
		logger:  opts.Logger,
		polling: polling,
		// No conflicts to confirm: every refusal is decided on the owner
		// record, which is read consistently.
		policy: reconcile.Policy{
			Retry:          opts.Retry,
			CleanupTimeout: opts.CleanupTimeout,
			Report:         opts.Observe,
		}.WithDefaults(),
		liveness: opts.Liveness,
		lease:    opts.ReleaseLease,
		now:      opts.Now,
	}
	if reconcile.IsNil(owners) {
		b.owners = nil
	}
	if reconcile.IsNil(b.liveness) {
		b.liveness = nil
	}
	if b.lease <= 0 {
		b.lease = b.policy.Retry.Deadline
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.logger == nil {
		b.logger = hclog.NewNullLogger()
	}
	return b
}

// Register makes sure (req.UHostID, req.Port) is a backend of the VServer
// and that the slot's owner record names it; it first releases the backend
// an ended earlier allocation of the same slot left behind. On failure it
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

func (b *Binder) run(ctx context.Context, action string, req Request, m mode) (Result, error) {
	o := b.newOp(req, m)
	return reconcile.Run(ctx, b.policy, reconcile.Op[observed, plan, Result]{
		Action:   action,
		Name:     "backend registration",
		Log:      o.log,
		Prepare:  o.prepare,
		Observe:  o.observe,
		Decide:   func(s observed) plan { return decide(o.req, m, o.key, o.progress, s) },
		Act:      o.act,
		Rollback: o.rollback,
		Changed:  func(r Result) bool { return r.Changed },
		Done: func(r Result, attempts int) {
			if r.Changed {
				o.log.Info("registered backend", "backend_id", r.BackendID, "released", r.Released, "attempts", attempts)
			} else {
				o.log.Debug("backend already registered", "backend_id", r.BackendID, "attempts", attempts)
			}
		},
	})
}

// Release removes the allocation's backend: with Owners only while the
// slot's owner record still names req.Owner.AllocID (a replacement's
// backend is never touched), then deletes the record. A backend already
// gone counts as released.
func (b *Binder) Release(ctx context.Context, req Request) error {
	o := b.newOp(req, modeRelease)
	prepared := false
	_, err := reconcile.Run(ctx, b.policy, reconcile.Op[releaseObserved, releasePlan, bool]{
		Action: "ulb_release",
		Name:   "backend release",
		Log:    o.log,
		Prepare: func() error {
			err := o.prepare()
			prepared = err == nil
			return err
		},
		Observe: o.observeRelease,
		Decide:  func(s releaseObserved) releasePlan { return decideRelease(o.req, s) },
		Act:     o.actRelease,
		Changed: func(changed bool) bool { return changed },
	})
	if err != nil && prepared {
		return fmt.Errorf("release backend of uhost %s port %d from vserver %s of ulb %s: %w", req.UHostID, req.Port, req.VServerID, req.ULBID, err)
	}
	return err
}

// check validates and completes a request, and applies the allow-list:
// before any call.
func (b *Binder) check(req Request) (Request, error) {
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
	if len(b.allowed) > 0 && !slices.Contains(b.allowed, req.ULBID) {
		return req, permanent(fmt.Errorf("ulb %s is not in the allowed ULB ids of this client (%s): add it to the plugin's allowed_ulb_ids if it is yours: %w",
			req.ULBID, strings.Join(b.allowed, ", "), ErrRefused))
	}
	return req, nil
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

// waitFor polls the VServer until ok holds or the polls run out.
func (b *Binder) waitFor(ctx context.Context, req Request, ok func([]ucloudapi.Backend) bool) error {
	return b.polling.Until(ctx, func(ctx context.Context) (bool, error) {
		bs, err := b.api.DescribeVServer(ctx, req.ULBID, req.VServerID)
		if ucloudapi.IsNotFound(err) {
			return false, err
		}
		return err == nil && ok(bs), nil
	})
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
