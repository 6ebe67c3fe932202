package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// verdict is a test plan: act, or end the attempt with err.
type verdict struct{ err error }

func (v verdict) Err() error { return v.err }

// script runs a scripted op: each attempt takes the next step (the last
// one repeats).
type script struct {
	steps    []step
	n        int
	observed int
	acted    int
	rolled   []error
	rollCtx  error // the rollback context's error when it ran
}

// step is one attempt: observe fails with observeErr, else the plan ends
// the attempt with planErr, else act waits and returns actErr.
type step struct {
	observeErr, planErr, actErr error
	wait                        time.Duration
}

func (s *script) cur() step { return s.steps[min(s.n, len(s.steps)-1)] }

func (s *script) op() Op[step, verdict, string] {
	return Op[step, verdict, string]{
		Action: "test_op",
		Name:   "test op",
		Observe: func(ctx context.Context) (step, error) {
			s.observed++
			st := s.cur()
			if st.observeErr != nil {
				s.n++
			}
			return st, st.observeErr
		},
		Decide: func(st step) verdict {
			if st.planErr != nil {
				s.n++
			}
			return verdict{st.planErr}
		},
		Act: func(ctx context.Context, _ verdict) (string, error) {
			s.acted++
			st := s.cur()
			s.n++
			if st.wait > 0 && !ucloudapi.Sleep(ctx, st.wait) {
				// As the API client does: a call the caller's deadline cut
				// is not retryable, so the binders see it as permanent.
				return "", ucloudapi.Permanent(fmt.Errorf("cut short: %w", ctx.Err()))
			}
			if st.actErr != nil {
				return "", st.actErr
			}
			return "ok", nil
		},
		Rollback: func(ctx context.Context, cause error) error {
			s.rolled = append(s.rolled, cause)
			s.rollCtx = ctx.Err()
			return fmt.Errorf("%w; rolled back", cause)
		},
		Changed: func(r string) bool { return r == "ok" },
	}
}

func policy() Policy {
	return Policy{
		Retry:            ucloudapi.RetryPolicy{Initial: time.Millisecond, Max: 2 * time.Millisecond, MaxAttempts: 5, Deadline: 5 * time.Second, Jitter: -1},
		ConfirmConflicts: 2,
		ConfirmWait:      time.Millisecond,
	}.WithDefaults()
}

var (
	errFlaky   = errors.New("flaky")
	errCAS     = fmt.Errorf("record x: %w", ucloudapi.ErrCASLost)
	errRefused = fmt.Errorf("eip x is someone else's: %w", ucloudapi.ErrRefused)
)

func TestRun(t *testing.T) {
	tests := []struct {
		name          string
		policy        func(*Policy)
		steps         []step
		wantErr       string // suffix of the error; "" success
		permanent     bool
		wantObserved  int
		wantActed     int
		wantRollbacks int
		wantOutcome   string
	}{
		{name: "first attempt succeeds", steps: []step{{}},
			wantObserved: 1, wantActed: 1, wantOutcome: "changed"},
		{name: "transient failures are retried", steps: []step{{actErr: errFlaky}, {observeErr: errFlaky}, {}},
			wantObserved: 3, wantActed: 2, wantOutcome: "changed"},
		{name: "a wait plan is retried without acting", steps: []step{{planErr: errFlaky}, {planErr: errFlaky}, {}},
			wantObserved: 3, wantActed: 1, wantOutcome: "changed"},
		{name: "attempts run out", steps: []step{{actErr: errFlaky}},
			wantErr: "flaky; rolled back", wantObserved: 5, wantActed: 5, wantRollbacks: 1, wantOutcome: "error"},
		{name: "permanent stops at once", steps: []step{{actErr: ucloudapi.Permanent(errFlaky)}},
			wantErr: "flaky; rolled back", permanent: true, wantObserved: 1, wantActed: 1, wantRollbacks: 1, wantOutcome: "error"},
		{name: "refusal plan stops at once without acting", steps: []step{{planErr: ucloudapi.Permanent(errRefused)}},
			wantErr: "someone else's: refused; rolled back", permanent: true, wantObserved: 1, wantRollbacks: 1, wantOutcome: "refused"},
		{name: "cas lost is retried at once", steps: []step{{actErr: errCAS}, {actErr: errCAS}, {}},
			wantObserved: 3, wantActed: 3, wantOutcome: "changed"},
		{name: "a conflict that goes away is not a refusal, and does not use attempts",
			policy:       func(p *Policy) { p.Retry.MaxAttempts = 1 },
			steps:        []step{{planErr: Conflict(errRefused)}, {planErr: Conflict(errRefused)}, {}},
			wantObserved: 3, wantActed: 1, wantOutcome: "changed"},
		{name: "a conflict seen every time becomes a permanent refusal",
			steps:   []step{{planErr: Conflict(errRefused)}},
			wantErr: "someone else's: refused; rolled back", permanent: true, wantObserved: 3, wantRollbacks: 1, wantOutcome: "refused"},
		{name: "no confirmations: a conflict is final at once", policy: func(p *Policy) { p.ConfirmConflicts = 0 },
			steps:   []step{{planErr: Conflict(errRefused)}},
			wantErr: "someone else's: refused; rolled back", permanent: true, wantObserved: 1, wantRollbacks: 1, wantOutcome: "refused"},
		{name: "the deadline makes a cut call transient and names the last real failure",
			policy: func(p *Policy) {
				p.Retry.Deadline, p.Retry.MaxAttempts, p.Retry.Initial, p.Retry.Max = 100*time.Millisecond, 1000, 20*time.Millisecond, 20*time.Millisecond
			},
			steps:   []step{{actErr: errFlaky}, {actErr: errFlaky}, {wait: time.Hour, actErr: errFlaky}},
			wantErr: "(gave up after 100ms; last failure: flaky); rolled back", wantObserved: 3, wantActed: 3, wantRollbacks: 1, wantOutcome: "error"},
		{name: "the deadline keeps a refusal permanent",
			policy: func(p *Policy) {
				p.Retry.Deadline, p.ConfirmConflicts, p.ConfirmWait = 50*time.Millisecond, 1, time.Hour
			},
			steps:   []step{{planErr: Conflict(errRefused)}},
			wantErr: "someone else's: refused; rolled back", permanent: true, wantObserved: 1, wantRollbacks: 1, wantOutcome: "refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pol := policy()
			if tc.policy != nil {
				tc.policy(&pol)
			}
			var outcomes []string
			pol.Report = func(action, outcome string, _ time.Duration) { outcomes = append(outcomes, action+"/"+outcome) }
			s := &script{steps: tc.steps}
			res, err := Run(context.Background(), pol, s.op())
			switch {
			case tc.wantErr == "" && (err != nil || res != "ok"):
				t.Fatalf("Run = %q, %v", res, err)
			case tc.wantErr != "" && (err == nil || !strings.HasSuffix(err.Error(), tc.wantErr)):
				t.Fatalf("Run error %v, want it to end with %q", err, tc.wantErr)
			case tc.wantErr != "" && ucloudapi.IsPermanent(err) != tc.permanent:
				t.Fatalf("Run error %v: permanent %v, want %v", err, ucloudapi.IsPermanent(err), tc.permanent)
			}
			if s.observed != tc.wantObserved || s.acted != tc.wantActed || len(s.rolled) != tc.wantRollbacks {
				t.Errorf("observed %d acted %d rollbacks %d, want %d %d %d", s.observed, s.acted, len(s.rolled), tc.wantObserved, tc.wantActed, tc.wantRollbacks)
			}
			if len(s.rolled) > 0 && s.rollCtx != nil {
				t.Errorf("rollback ran on an ended context: %v", s.rollCtx)
			}
			if want := "test_op/" + tc.wantOutcome; len(outcomes) != 1 || outcomes[0] != want {
				t.Errorf("observed outcomes %v, want [%s]", outcomes, want)
			}
		})
	}
}

// TestRunPrepare: a request that fails its checks makes no attempt, is not
// rolled back, and is reported.
func TestRunPrepare(t *testing.T) {
	var outcomes []string
	pol := policy()
	pol.Report = func(action, outcome string, _ time.Duration) { outcomes = append(outcomes, outcome) }
	s := &script{steps: []step{{}}}
	op := s.op()
	op.Prepare = func() error { return ucloudapi.Permanent(errRefused) }
	if _, err := Run(context.Background(), pol, op); !errors.Is(err, ucloudapi.ErrRefused) || strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("Run: %v", err)
	}
	if s.observed != 0 || len(s.rolled) != 0 || len(outcomes) != 1 || outcomes[0] != "refused" {
		t.Fatalf("observed %d rollbacks %d outcomes %v", s.observed, len(s.rolled), outcomes)
	}
}

// TestRunCallerCancelled: the rollback runs on a fresh context even when
// the caller's has ended, and the error says the operation gave up.
func TestRunCallerCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &script{steps: []step{{actErr: errFlaky}}}
	op := s.op()
	act := op.Act
	op.Act = func(c context.Context, v verdict) (string, error) {
		cancel()
		return act(c, v)
	}
	_, err := Run(ctx, policy(), op)
	if err == nil || ucloudapi.IsPermanent(err) || !strings.Contains(err.Error(), "gave up after 5s") {
		t.Fatalf("Run: %v", err)
	}
	if len(s.rolled) != 1 || s.rollCtx != nil {
		t.Fatalf("rollbacks %d, rollback context error %v", len(s.rolled), s.rollCtx)
	}
}

func TestPollingUntil(t *testing.T) {
	p := Polling{Interval: time.Millisecond, Max: 4}.WithDefaults()
	calls := 0
	if err := p.Until(context.Background(), func(context.Context) (bool, error) { calls++; return calls == 3, nil }); err != nil || calls != 3 {
		t.Fatalf("Until = %v after %d calls", err, calls)
	}
	calls = 0
	if err := p.Until(context.Background(), func(context.Context) (bool, error) { calls++; return false, nil }); !errors.Is(err, ErrNotYet) || calls != 4 {
		t.Fatalf("Until = %v after %d calls", err, calls)
	}
	if err := p.Until(context.Background(), func(context.Context) (bool, error) { return false, errFlaky }); !errors.Is(err, errFlaky) {
		t.Fatalf("Until = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Until(ctx, func(context.Context) (bool, error) { return false, nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Until = %v", err)
	}
	if d := (Polling{}).WithDefaults(); d.Interval != DefaultPollInterval || d.Max != DefaultMaxPolls {
		t.Fatalf("defaults %+v", d)
	}
}

func TestPolicyDefaults(t *testing.T) {
	p := Policy{ConfirmConflicts: -1}.WithDefaults()
	if p.Retry != ucloudapi.DefaultRetryPolicy() || p.CleanupTimeout != DefaultCleanupTimeout || p.ConfirmWait != DefaultPollInterval || p.ConfirmConflicts != 0 {
		t.Fatalf("defaults %+v", p)
	}
}

func TestIsNil(t *testing.T) {
	var p *script
	var i any = p
	if !IsNil(nil) || !IsNil(i) || IsNil(&script{}) || IsNil(3) {
		t.Fatal("IsNil")
	}
}
