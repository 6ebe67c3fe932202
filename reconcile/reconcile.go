// Package reconcile runs the binders' operations (eipbind, ulbbind) as
// reconciles. A binder describes one operation as an Op: Observe reads the
// cloud and the owner records, Decide turns what was observed into a plan
// (a pure function), Act carries the plan's steps out. Run repeats that
// within a deadline, with backoff, and rolls back what the attempts did when
// the operation fails for good. The rules are in docs/binding.md.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// Policy bounds the operations Run runs. Build it once (WithDefaults) and
// share it: Run does not fill in defaults.
type Policy struct {
	// Retry bounds the attempts, the waits between them and the whole
	// operation (Deadline).
	Retry ucloudapi.RetryPolicy
	// ConfirmConflicts is how many more times a conflict (see Conflict) is
	// observed again before it is a final refusal; 0 means none.
	ConfirmConflicts int
	// ConfirmWait is the wait before the first of those observations; it
	// doubles for each further one.
	ConfirmWait time.Duration
	// CleanupTimeout bounds Op.Rollback, which runs on a context of its
	// own so that it still runs when the caller's context has ended.
	CleanupTimeout time.Duration
	// Report, when set, is called once per operation with its action, its
	// outcome ("changed", "unchanged", "refused", "error") and the time it
	// took (the binders' Options.Observe, for metrics).
	Report func(action, outcome string, d time.Duration)
}

// DefaultCleanupTimeout is what a zero Policy.CleanupTimeout means.
const DefaultCleanupTimeout = 10 * time.Second

// WithDefaults fills the zero fields: Retry from ucloudapi's defaults,
// CleanupTimeout with DefaultCleanupTimeout, ConfirmWait with
// DefaultPollInterval. A negative ConfirmConflicts means none.
func (p Policy) WithDefaults() Policy {
	p.Retry = p.Retry.WithDefaults()
	if p.CleanupTimeout <= 0 {
		p.CleanupTimeout = DefaultCleanupTimeout
	}
	if p.ConfirmWait <= 0 {
		p.ConfirmWait = DefaultPollInterval
	}
	p.ConfirmConflicts = max(p.ConfirmConflicts, 0)
	return p
}

// Plan is what an Op's Decide returns. Err is nil for a plan to act on.
// Otherwise the attempt ends with that error and nothing is done: a
// retryable error to wait (someone else holds the resource), a permanent
// one (ucloudapi.Permanent) to refuse, or a Conflict to observe again.
type Plan interface {
	Err() error
}

// Op is one operation (a bind, a release, a verify) as Run runs it. Every
// function but Observe, Decide and Act may be nil.
type Op[S any, P Plan, R any] struct {
	// Action names the operation for Policy.Report, e.g. "eip_bind".
	Action string
	// Name names it in logs, e.g. "eip binding".
	Name string
	// Log gets the runner's logs; give it the operation's ids. Nil
	// discards them.
	Log hclog.Logger
	// Prepare checks the request before anything else (no call may be
	// made before it passes); its error is returned as it is.
	Prepare func() error
	// Observe reads the current state.
	Observe func(ctx context.Context) (S, error)
	// Decide makes the plan from what was observed. It must be pure: all
	// it may use is its argument and what the previous attempts did (the
	// Op's own progress), never a call.
	Decide func(S) P
	// Act carries out the plan's steps, each idempotent, and returns the
	// result, or the error that ends the attempt.
	Act func(ctx context.Context, plan P) (R, error)
	// Rollback undoes what the failed attempts did, as far as it can be
	// sure of, and returns the error to report (cause, or cause with what
	// could not be undone). Its context is a fresh one bounded by
	// Policy.CleanupTimeout.
	Rollback func(ctx context.Context, cause error) error
	// Changed tells whether a result changed anything (for Report).
	Changed func(R) bool
	// Done is called with the result of a successful operation and the
	// attempts it took (to log it).
	Done func(res R, attempts int)
}

// conflictError is a refusal decided on an observation that may lag
// behind the truth (a describe right after someone else's change).
type conflictError struct{ err error }

func (e *conflictError) Error() string { return e.err.Error() }
func (e *conflictError) Unwrap() error { return e.err }

// Conflict marks err as a refusal to confirm: Run observes again up to
// Policy.ConfirmConflicts times, Policy.ConfirmWait apart and doubling,
// before it returns err as permanent. Confirming does not use up attempts.
func Conflict(err error) error {
	if err == nil {
		return nil
	}
	return &conflictError{err}
}

// Run runs op: Prepare, then attempts of Observe, Decide and Act within
// pol.Retry.Deadline and at most pol.Retry.MaxAttempts of them (conflict
// confirmations aside). After a failed attempt it
//
//   - stops on a permanent error (ucloudapi.IsPermanent) or when the
//     deadline has passed;
//   - tries again at once when the owner record changed under a claim
//     (ucloudapi.ErrCASLost);
//   - confirms a Conflict by observing again (see Conflict);
//   - otherwise waits pol.Retry.Backoff and tries again.
//
// When the deadline cut the operation short, the error is made transient
// (unless it is a refusal, ErrNotOwner or ErrUnusable) and says that Run
// gave up, and with which last failure seen before the deadline. Then
// Rollback runs, and its error is returned.
func Run[S any, P Plan, R any](ctx context.Context, pol Policy, op Op[S, P, R]) (res R, err error) {
	start := time.Now()
	defer func() {
		changed := err == nil && op.Changed != nil && op.Changed(res)
		report(pol.Report, op.Action, changed, err, time.Since(start))
	}()
	log := op.Log
	if log == nil {
		log = hclog.NewNullLogger()
	}
	var zero R
	if op.Prepare != nil {
		if err := op.Prepare(); err != nil {
			return zero, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, pol.Retry.Deadline)
	defer cancel()

	var last, failure error // failure: the last error not caused by the deadline
	confirmations := 0
	for attempt := 1; attempt <= pol.Retry.MaxAttempts; attempt++ {
		r, err := attemptOnce(ctx, op)
		if err == nil {
			if op.Done != nil {
				op.Done(r, attempt)
			}
			return r, nil
		}
		last = err
		if ctx.Err() == nil {
			failure = err
		}
		var c *conflictError
		if errors.As(err, &c) {
			if confirmations >= pol.ConfirmConflicts {
				last = ucloudapi.Permanent(c.err)
				break
			}
			wait := pol.ConfirmWait << confirmations
			confirmations++
			log.Debug(op.Name+": conflict seen, reading again before refusing", "wait", wait, "error", c.err)
			if !ucloudapi.Sleep(ctx, wait) {
				last = ucloudapi.Permanent(c.err)
				break
			}
			attempt--
			continue
		}
		if ucloudapi.IsPermanent(err) || ctx.Err() != nil {
			break
		}
		if errors.Is(err, ucloudapi.ErrCASLost) {
			log.Debug(op.Name+": owner record changed while claiming, reading again", "attempt", attempt)
			continue
		}
		wait := pol.Retry.Backoff(attempt)
		log.Warn(op.Name+" attempt failed, retrying", "attempt", attempt, "wait", wait, "error", err)
		if !ucloudapi.Sleep(ctx, wait) {
			break
		}
	}
	if ctx.Err() != nil {
		last = gaveUp(last, failure, pol.Retry.Deadline)
	}
	err = last
	if op.Rollback != nil {
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), pol.CleanupTimeout)
		err = op.Rollback(cctx, last)
		ccancel()
	}
	log.Error(op.Name+" failed", "error", err)
	return zero, err
}

// attemptOnce is one observe, decide, act.
func attemptOnce[S any, P Plan, R any](ctx context.Context, op Op[S, P, R]) (R, error) {
	var zero R
	s, err := op.Observe(ctx)
	if err != nil {
		return zero, err
	}
	p := op.Decide(s)
	if err := p.Err(); err != nil {
		return zero, err
	}
	return op.Act(ctx, p)
}

// gaveUp is the error of an operation its deadline ended, possibly in the
// middle of a call (which the API client reports as not retryable): a
// timeout, worth another try later, not a permanent failure.
func gaveUp(last, failure error, deadline time.Duration) error {
	last = ucloudapi.Transient(last)
	if ucloudapi.IsPermanent(last) {
		return last
	}
	if failure != nil && failure != last {
		return fmt.Errorf("%w (gave up after %s; last failure: %v)", last, deadline, failure)
	}
	return fmt.Errorf("%w (gave up after %s)", last, deadline)
}

// outcome classifies an operation's end for Policy.Report.
func outcome(changed bool, err error) string {
	switch {
	case errors.Is(err, ucloudapi.ErrRefused) || errors.Is(err, ucloudapi.ErrNotOwner):
		return "refused"
	case err != nil:
		return "error"
	case changed:
		return "changed"
	}
	return "unchanged"
}

func report(fn func(action, outcome string, d time.Duration), action string, changed bool, err error, d time.Duration) {
	if fn != nil {
		fn(action, outcome(changed, err), d)
	}
}

// IsNil reports whether v is nil or a nil pointer held in an interface,
// such as a nil *ownership.Store passed as a binder's owner records: the
// binders take either as "none".
func IsNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}
