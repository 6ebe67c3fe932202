// Package eipbind binds a broker's EIP to the host its task runs on, as a
// reconcile (package reconcile): observe the EIP and its Consul owner
// record, decide a plan (decide, a pure function), act on it, and confirm.
// Every step is idempotent and retried with backoff within a deadline; an
// EIP bound to another host is taken over only when its owner record shows
// it was left there by an ended allocation of the same slot. The rules are
// in docs/binding.md.
package eipbind

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/reconcile"
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

// Options tune a Binder. New applies their defaults once.
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

// defaultConfirmRefusals is what a zero Options.ConfirmRefusals means.
const defaultConfirmRefusals = 3

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
	owners   Owners // nil: no Consul
	guard    Guard
	logger   hclog.Logger
	policy   reconcile.Policy
	polling  reconcile.Polling
	liveness ownership.Liveness
	lease    time.Duration
	now      func() time.Time
}

// New returns a binder. owners may be nil (no Consul).
func New(api API, owners Owners, guard Guard, opts Options) *Binder {
	confirm := opts.ConfirmRefusals
	if confirm == 0 {
		confirm = defaultConfirmRefusals
	}
	polling := reconcile.Polling{Interval: opts.PollInterval, Max: opts.MaxPolls}.WithDefaults()
	b := &Binder{
		api:     api,
		owners:  owners,
		guard:   Guard{AllowedEIPIDs: slices.Clone(guard.AllowedEIPIDs), RemarkPrefix: guard.RemarkPrefix},
		logger:  opts.Logger,
		polling: polling,
		policy: reconcile.Policy{
			Retry:            opts.Retry,
			ConfirmConflicts: confirm,
			ConfirmWait:      polling.Interval,
			CleanupTimeout:   opts.CleanupTimeout,
			Report:           opts.Observe,
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

// Bind makes sure the EIP is bound to req.UHostID: a no-op when it already
// is, a bind when it is free, a move when it is bound to the host of an
// ended allocation of the same slot (per the owner record). Anything else
// is refused. On failure it undoes what it can (see docs/binding.md).
func (b *Binder) Bind(ctx context.Context, req Request) (Result, error) {
	return b.run(ctx, "eip_bind", req, modeBind)
}

// Verify re-checks a binding after a driver restart: it repairs it (binds
// again, or moves it back from a host someone moved it to) while this
// allocation owns it, and fails with ErrNotOwner when another allocation
// owns it now. It never takes the EIP from another allocation.
func (b *Binder) Verify(ctx context.Context, req Request) (Result, error) {
	return b.run(ctx, "eip_verify", req, modeVerify)
}

func (b *Binder) run(ctx context.Context, action string, req Request, m mode) (Result, error) {
	o := b.newOp(req, m)
	return reconcile.Run(ctx, b.policy, reconcile.Op[observed, plan, Result]{
		Action:   action,
		Name:     "eip binding",
		Log:      o.log,
		Prepare:  o.prepare,
		Observe:  o.observe,
		Decide:   func(s observed) plan { return decide(o.req, m, o.progress, s) },
		Act:      o.act,
		Rollback: o.rollback,
		Changed:  func(r Result) bool { return r.Changed },
		Done: func(r Result, attempts int) {
			switch {
			case r.Changed && r.PreviousUHost != "":
				o.log.Info("moved eip", "ip", r.IP, "previous_uhost_id", r.PreviousUHost, "attempts", attempts)
			case r.Changed:
				o.log.Info("bound eip", "ip", r.IP, "attempts", attempts)
			default:
				o.log.Debug("eip already bound here", "ip", r.IP, "attempts", attempts)
			}
		},
	})
}

// Release unbinds the EIP from req.UHostID, only if it is still bound there
// and (with Owners) still owned by req.Owner.AllocID, then deletes the owner
// record. It never takes an EIP from a replacement allocation. Releasing
// something already released is a no-op.
func (b *Binder) Release(ctx context.Context, req Request) error {
	o := b.newOp(req, modeRelease)
	prepared := false
	_, err := reconcile.Run(ctx, b.policy, reconcile.Op[releaseObserved, releasePlan, bool]{
		Action: "eip_release",
		Name:   "eip release",
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
		return fmt.Errorf("release eip %s from uhost %s: %w", o.req.EIPID, o.req.UHostID, err)
	}
	return err
}

// check validates and completes a request, and applies the allow-list:
// before any call.
func (b *Binder) check(req Request) (Request, error) {
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
	if len(b.guard.AllowedEIPIDs) > 0 && !slices.Contains(b.guard.AllowedEIPIDs, req.EIPID) {
		return req, permanent(fmt.Errorf("eip %s is not in the allowed EIP ids of this client (%s): add it to the plugin's allowed_eip_ids if it is yours: %w",
			req.EIPID, strings.Join(b.guard.AllowedEIPIDs, ", "), ErrRefused))
	}
	return req, nil
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

// describe reads the EIP and applies the checks every step needs: it
// exists, is not frozen, and passes the remark rule.
func (b *Binder) describe(ctx context.Context, req Request) (*ucloudapi.EIP, error) {
	e, err := b.api.DescribeEIP(ctx, req.EIPID)
	switch {
	case ucloudapi.IsNotFound(err):
		return nil, permanent(fmt.Errorf("eip %s does not exist in this region and project: check the EIP id: %w: %w", req.EIPID, ErrUnusable, err))
	case err != nil && !ucloudapi.IsRetryable(err):
		return nil, permanent(err)
	case err != nil:
		return nil, err
	}
	if strings.EqualFold(e.Status, "freeze") {
		return nil, permanent(fmt.Errorf("eip %s is frozen (status freeze, e.g. unpaid): unfreeze it in the UCloud console: %w", e.ID, ErrUnusable))
	}
	if err := b.remarkOK(e, req.Owner.Cluster); err != nil {
		return nil, err
	}
	return e, nil
}

// callFailed classifies a failed BindEIP or UnBindEIP: transient failures
// and state conflicts (RetCode 8039: re-read and decide again) are
// retried, anything else (e.g. the uhost does not exist) is permanent.
func callFailed(err error) error {
	if !ucloudapi.IsRetryable(err) && ucloudapi.RetCode(err) != 8039 {
		return permanent(err)
	}
	return err
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
