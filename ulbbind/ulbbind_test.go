package ulbbind_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi/simtest"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
	"github.com/rmqnomad/rocketmq-nomad-driver/ulbbind"
)

func fastRetry() ulbbind.RetryPolicy {
	return ulbbind.RetryPolicy{Initial: time.Millisecond, Max: 10 * time.Millisecond, MaxAttempts: 60, Deadline: 60 * time.Second}
}

func namesrv(alloc string, index int, uhost string) ownership.Owner {
	return ownership.Owner{AllocID: alloc, NodeID: "node-" + uhost, UHostID: uhost, Job: "rmq-orders",
		Cluster: "orders", Role: "namesrv", AllocIndex: index}
}

var hostIPs = map[string]string{"uhost-a": "10.9.0.11", "uhost-b": "10.9.0.12", "uhost-c": "10.9.0.13"}

func req(uhost string, port int, alloc string, index int) ulbbind.Request {
	return ulbbind.Request{ULBID: "ulb-ns", VServerID: "vserver-ns", UHostID: uhost, PrivateIP: hostIPs[uhost],
		Port: port, Owner: namesrv(alloc, index, uhost)}
}

type fixture struct {
	env    *simtest.Env
	store  *ownership.Store
	binder *ulbbind.Binder
}

type fixtureOpts struct {
	sim      ucloudsim.Config
	guard    ulbbind.Guard
	noConsul bool
	owners   func(ulbbind.Owners) ulbbind.Owners
	liveness ownership.Liveness
	retry    *ulbbind.RetryPolicy
}

var prefixRE = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func newFixture(t *testing.T, consul *testutil.ConsulAgent, o fixtureOpts) *fixture {
	t.Helper()
	env := simtest.Start(t, o.sim, simtest.Options{CallTimeout: 2 * time.Second})
	f := &fixture{env: env}
	var owners ulbbind.Owners
	if !o.noConsul {
		f.store = ownership.New(consul.Client, "test/"+prefixRE.ReplaceAllString(t.Name(), "_"))
		owners = f.store
		if o.owners != nil {
			owners = o.owners(owners)
		}
	}
	retry := fastRetry()
	if o.retry != nil {
		retry = *o.retry
	}
	f.binder = ulbbind.New(env.API, owners, o.guard, ulbbind.Options{
		Logger: hclog.New(&hclog.LoggerOptions{Name: "ulbbind", Level: hclog.Warn, Output: testWriter{t}}),
		Retry:  retry, PollInterval: time.Millisecond, Liveness: o.liveness,
	})
	return f
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// backends lists the VServer's true backends as "uhost:port".
func (f *fixture) backends(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, b := range f.env.Backends(t, "ulb-ns", "vserver-ns") {
		out = append(out, fmt.Sprintf("%s:%d", b.ResourceID, b.Port))
	}
	slices.Sort(out)
	return out
}

func (f *fixture) backendID(t *testing.T, uhost string, port int) string {
	t.Helper()
	for _, b := range f.env.Backends(t, "ulb-ns", "vserver-ns") {
		if b.ResourceID == uhost && b.Port == port {
			return b.ID
		}
	}
	return ""
}

// record returns the slot's owner record (nil when none).
func (f *fixture) record(t *testing.T, r ulbbind.Request) *ownership.Owner {
	t.Helper()
	if f.store == nil {
		return nil
	}
	o, _, err := f.store.Get(context.Background(), ownership.KindBackend, ulbbind.RecordKey(r))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (f *fixture) mustRegister(t *testing.T, r ulbbind.Request) ulbbind.Result {
	t.Helper()
	res, err := f.binder.Register(context.Background(), r)
	if err != nil {
		t.Fatalf("Register(%+v): %v", r, err)
	}
	f.env.Sim.ResetStats()
	return res
}

func TestRegister(t *testing.T) {
	consul := testutil.StartConsul(t)
	tests := []struct {
		name  string
		opts  fixtureOpts
		setup func(t *testing.T, f *fixture) map[string]string // named backend ids
		req   ulbbind.Request

		wantErr      error
		errHas       string
		changed      bool
		wantID       string // "new", or a name from setup, or a literal id
		wantReleased []string
		wantBackends []string // uhost:port of the VServer afterwards
		wantRecord   string   // alloc of the slot's record ("" none)
		wantWrites   int
		noCalls      bool
	}{
		{
			name: "new backend is registered", req: req("uhost-a", 31000, "alloc-1", 0),
			changed: true, wantID: "new", wantBackends: []string{"uhost-a:31000", "uhost-c:30000"},
			wantRecord: "alloc-1", wantWrites: 1,
		},
		{
			name: "registering twice reuses the backend",
			setup: func(t *testing.T, f *fixture) map[string]string {
				return map[string]string{"first": f.mustRegister(t, req("uhost-a", 31000, "alloc-1", 0)).BackendID}
			},
			req: req("uhost-a", 31000, "alloc-1", 0), wantID: "first",
			wantBackends: []string{"uhost-a:31000", "uhost-c:30000"}, wantRecord: "alloc-1", wantWrites: 0,
		},
		{
			name: "existing backend for the host and port is reused",
			req:  req("uhost-c", 30000, "alloc-1", 0), wantID: "backend-seed",
			wantBackends: []string{"uhost-c:30000"}, wantRecord: "alloc-1", wantWrites: 0,
		},
		{
			name: "backend of an earlier allocation of the slot is released",
			setup: func(t *testing.T, f *fixture) map[string]string {
				return map[string]string{"old": f.mustRegister(t, req("uhost-a", 31000, "alloc-old", 0)).BackendID}
			},
			req: req("uhost-b", 32000, "alloc-new", 0), changed: true, wantID: "new", wantReleased: []string{"old"},
			wantBackends: []string{"uhost-b:32000", "uhost-c:30000"}, wantRecord: "alloc-new", wantWrites: 2,
		},
		{
			name: "earlier allocation on the same host and port: reused, not released",
			setup: func(t *testing.T, f *fixture) map[string]string {
				return map[string]string{"old": f.mustRegister(t, req("uhost-a", 31000, "alloc-old", 0)).BackendID}
			},
			req: req("uhost-a", 31000, "alloc-new", 0), wantID: "old",
			wantBackends: []string{"uhost-a:31000", "uhost-c:30000"}, wantRecord: "alloc-new", wantWrites: 0,
		},
		{
			name: "earlier allocation recorded before its backend id was known: found by host and port",
			setup: func(t *testing.T, f *fixture) map[string]string {
				r := req("uhost-c", 30000, "alloc-old", 0)
				o := r.Owner
				o.Port = 30000
				if ok, err := f.store.Claim(context.Background(), ownership.KindBackend, ulbbind.RecordKey(r), o, 0); !ok || err != nil {
					t.Fatalf("seed record: %v %v", ok, err)
				}
				return nil
			},
			req: req("uhost-a", 31000, "alloc-new", 0), changed: true, wantID: "new", wantReleased: []string{"backend-seed"},
			wantBackends: []string{"uhost-a:31000"}, wantRecord: "alloc-new", wantWrites: 2,
		},
		{
			name: "backends of other slots are never released",
			setup: func(t *testing.T, f *fixture) map[string]string {
				f.mustRegister(t, req("uhost-a", 31001, "alloc-x", 1))
				f.mustRegister(t, req("uhost-b", 31002, "alloc-y", 2))
				return nil
			},
			req: req("uhost-b", 32000, "alloc-new", 0), changed: true, wantID: "new",
			wantBackends: []string{"uhost-a:31001", "uhost-b:31002", "uhost-b:32000", "uhost-c:30000"}, wantRecord: "alloc-new", wantWrites: 1,
		},
		{
			name: "ulb outside the allow-list is refused before any call",
			opts: fixtureOpts{guard: ulbbind.Guard{AllowedULBIDs: []string{"ulb-other"}}},
			req:  req("uhost-a", 31000, "alloc-1", 0), wantErr: ulbbind.ErrRefused, errHas: "ulb ulb-ns is not in the allowed",
			wantBackends: []string{"uhost-c:30000"}, noCalls: true,
		},
		{
			name: "ulb in the allow-list is used",
			opts: fixtureOpts{guard: ulbbind.Guard{AllowedULBIDs: []string{"ulb-other", "ulb-ns"}}},
			req:  req("uhost-a", 31000, "alloc-1", 0), changed: true, wantID: "new",
			wantBackends: []string{"uhost-a:31000", "uhost-c:30000"}, wantRecord: "alloc-1", wantWrites: 1,
		},
		{
			name: "missing vserver is a permanent error naming it",
			req: func() ulbbind.Request {
				r := req("uhost-a", 31000, "alloc-1", 0)
				r.VServerID = "vserver-nope"
				return r
			}(),
			wantErr: ulbbind.ErrUnusable, errHas: "vserver vserver-nope of ulb ulb-ns does not exist",
			wantBackends: []string{"uhost-c:30000"},
		},
		{
			name: "unknown host: refused by ucloud, record rolled back",
			req:  req("uhost-nope", 31000, "alloc-1", 0), errHas: "ucloud RetCode 230",
			wantBackends: []string{"uhost-c:30000"}, wantWrites: 1,
		},
		{
			name: "without consul: registered", opts: fixtureOpts{noConsul: true},
			req: req("uhost-a", 31000, "alloc-1", 0), changed: true, wantID: "new",
			wantBackends: []string{"uhost-a:31000", "uhost-c:30000"}, wantWrites: 1,
		},
		{
			name: "bad port is refused", req: req("uhost-a", 0, "alloc-1", 0), wantErr: ulbbind.ErrUnusable, errHas: "port out of range",
			wantBackends: []string{"uhost-c:30000"}, noCalls: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, consul, tc.opts)
			var names map[string]string
			if tc.setup != nil {
				names = tc.setup(t, f)
			}
			f.env.Sim.ResetStats()
			res, err := f.binder.Register(context.Background(), tc.req)
			if tc.wantErr != nil || tc.errHas != "" {
				if err == nil {
					t.Fatalf("Register succeeded: %+v", res)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("error %v is not %v", err, tc.wantErr)
				}
				if !ulbbind.IsPermanent(err) {
					t.Errorf("error %v is not permanent", err)
				}
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Errorf("error %q does not say %q", err, tc.errHas)
				}
			} else {
				if err != nil {
					t.Fatalf("Register: %v", err)
				}
				wantID := tc.wantID
				if id, ok := names[wantID]; ok {
					wantID = id
				}
				if wantID == "new" {
					wantID = f.backendID(t, tc.req.UHostID, tc.req.Port)
					if names != nil && slices.Contains(mapValues(names), wantID) {
						t.Errorf("backend %s is not new", wantID)
					}
				}
				if res.BackendID != wantID || res.Changed != tc.changed {
					t.Errorf("result %+v, want id %s changed %v", res, wantID, tc.changed)
				}
				var released []string
				for _, r := range tc.wantReleased {
					if id, ok := names[r]; ok {
						r = id
					}
					released = append(released, r)
				}
				if !slices.Equal(res.Released, released) {
					t.Errorf("released %v, want %v", res.Released, released)
				}
				if rec := f.record(t, tc.req); f.store != nil && (rec == nil || rec.Resource != res.BackendID || rec.Port != tc.req.Port) {
					t.Errorf("record %+v does not name backend %s port %d", rec, res.BackendID, tc.req.Port)
				}
			}
			if got := f.backends(t); !slices.Equal(got, tc.wantBackends) {
				t.Errorf("backends %v, want %v", got, tc.wantBackends)
			}
			if f.store != nil {
				got := ""
				if rec := f.record(t, tc.req); rec != nil {
					got = rec.AllocID
				}
				if got != tc.wantRecord {
					t.Errorf("record of %s, want %q", got, tc.wantRecord)
				}
			}
			if got := f.env.Writes(); got != tc.wantWrites {
				t.Errorf("write calls %d, want %d (%v)", got, tc.wantWrites, f.env.Sim.Counters())
			}
			if tc.noCalls && len(f.env.Sim.Requests()) != 0 {
				t.Errorf("calls were made: %+v", f.env.Sim.Requests())
			}
		})
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestDuplicateIsReuse: the simulator refuses a second backend for the same
// host and port; when a lagging describe hides the existing one, or a lost
// reply hid its creation, Register ends up reusing it.
func TestDuplicateIsReuse(t *testing.T) {
	consul := testutil.StartConsul(t)
	t.Run("lagging describe", func(t *testing.T) {
		f := newFixture(t, consul, fixtureOpts{sim: ucloudsim.Config{Faults: ucloudsim.Faults{PendingDescribes: 2}}})
		id, err := f.env.API.AllocateBackend(context.Background(), "ulb-ns", "vserver-ns", "uhost-a", 31000)
		if err != nil {
			t.Fatal(err)
		}
		f.env.Sim.ResetStats()
		res, err := f.binder.Register(context.Background(), req("uhost-a", 31000, "alloc-1", 0))
		if err != nil || res.BackendID != id {
			t.Fatalf("Register = %+v, %v; want backend %s", res, err, id)
		}
		if n := f.env.Requests("AllocateBackend"); n < 1 {
			t.Errorf("AllocateBackend calls %d: the lag was not exercised", n)
		}
		if got := f.backends(t); !slices.Equal(got, []string{"uhost-a:31000", "uhost-c:30000"}) {
			t.Errorf("backends %v", got)
		}
	})
	t.Run("lost reply", func(t *testing.T) {
		f := newFixture(t, consul, fixtureOpts{sim: ucloudsim.Config{Faults: ucloudsim.Faults{Rules: []ucloudsim.FaultRule{
			{Action: "AllocateBackend", HTTPStatus: 502, AfterApply: true, Count: 1}}}}})
		res, err := f.binder.Register(context.Background(), req("uhost-a", 31000, "alloc-1", 0))
		if err != nil || !res.Changed || res.BackendID != f.backendID(t, "uhost-a", 31000) {
			t.Fatalf("Register = %+v, %v", res, err)
		}
		if n := f.env.Requests("AllocateBackend"); n != 1 {
			t.Errorf("AllocateBackend calls %d, want 1", n)
		}
		if got := f.backends(t); !slices.Equal(got, []string{"uhost-a:31000", "uhost-c:30000"}) {
			t.Errorf("backends %v", got)
		}
	})
}

func TestRelease(t *testing.T) {
	consul := testutil.StartConsul(t)
	tests := []struct {
		name         string
		opts         fixtureOpts
		setup        func(t *testing.T, f *fixture)
		req          ulbbind.Request
		wantBackends []string
		wantRecord   string
		wantWrites   int
	}{
		{
			name:  "owner releases its backend",
			setup: func(t *testing.T, f *fixture) { f.mustRegister(t, req("uhost-a", 31000, "alloc-1", 0)) },
			req:   req("uhost-a", 31000, "alloc-1", 0), wantBackends: []string{"uhost-c:30000"}, wantWrites: 1,
		},
		{
			name: "release twice is a no-op",
			setup: func(t *testing.T, f *fixture) {
				f.mustRegister(t, req("uhost-a", 31000, "alloc-1", 0))
				if err := f.binder.Release(context.Background(), req("uhost-a", 31000, "alloc-1", 0)); err != nil {
					t.Fatal(err)
				}
			},
			req: req("uhost-a", 31000, "alloc-1", 0), wantBackends: []string{"uhost-c:30000"}, wantWrites: 0,
		},
		{
			name: "old allocation leaves its replacement's backend alone",
			setup: func(t *testing.T, f *fixture) {
				f.mustRegister(t, req("uhost-a", 31000, "alloc-old", 0))
				f.mustRegister(t, req("uhost-b", 32000, "alloc-new", 0))
			},
			req:          req("uhost-a", 31000, "alloc-old", 0),
			wantBackends: []string{"uhost-b:32000", "uhost-c:30000"}, wantRecord: "alloc-new", wantWrites: 0,
		},
		{
			name: "old allocation leaves its replacement alone on the same host and port",
			setup: func(t *testing.T, f *fixture) {
				f.mustRegister(t, req("uhost-a", 31000, "alloc-old", 0))
				f.mustRegister(t, req("uhost-a", 31000, "alloc-new", 0))
			},
			req:          req("uhost-a", 31000, "alloc-old", 0),
			wantBackends: []string{"uhost-a:31000", "uhost-c:30000"}, wantRecord: "alloc-new", wantWrites: 0,
		},
		{
			name: "backend already gone counts as released",
			setup: func(t *testing.T, f *fixture) {
				id := f.mustRegister(t, req("uhost-a", 31000, "alloc-1", 0)).BackendID
				if err := f.env.API.ReleaseBackend(context.Background(), "ulb-ns", id); err != nil {
					t.Fatal(err)
				}
			},
			req: req("uhost-a", 31000, "alloc-1", 0), wantBackends: []string{"uhost-c:30000"}, wantWrites: 0,
		},
		{
			name: "no owner record: nothing released",
			req:  req("uhost-c", 30000, "alloc-1", 0), wantBackends: []string{"uhost-c:30000"}, wantWrites: 0,
		},
		{
			name: "without consul: the host and port's backend is released", opts: fixtureOpts{noConsul: true},
			req: req("uhost-c", 30000, "alloc-1", 0), wantBackends: nil, wantWrites: 1,
		},
		{
			name: "without consul: other backends are left", opts: fixtureOpts{noConsul: true},
			req: req("uhost-c", 30001, "alloc-1", 0), wantBackends: []string{"uhost-c:30000"}, wantWrites: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, consul, tc.opts)
			if tc.setup != nil {
				tc.setup(t, f)
			}
			f.env.Sim.ResetStats()
			if err := f.binder.Release(context.Background(), tc.req); err != nil {
				t.Fatalf("Release: %v", err)
			}
			if got := f.backends(t); !slices.Equal(got, tc.wantBackends) {
				t.Errorf("backends %v, want %v", got, tc.wantBackends)
			}
			if f.store != nil {
				got := ""
				if rec := f.record(t, tc.req); rec != nil {
					got = rec.AllocID
				}
				if got != tc.wantRecord {
					t.Errorf("record of %q, want %q", got, tc.wantRecord)
				}
			}
			if got := f.env.Writes(); got != tc.wantWrites {
				t.Errorf("write calls %d, want %d", got, tc.wantWrites)
			}
		})
	}
}

func TestReleaseGuard(t *testing.T) {
	f := newFixture(t, nil, fixtureOpts{noConsul: true, guard: ulbbind.Guard{AllowedULBIDs: []string{"ulb-other"}}})
	err := f.binder.Release(context.Background(), req("uhost-c", 30000, "alloc-1", 0))
	if !errors.Is(err, ulbbind.ErrRefused) || !ulbbind.IsPermanent(err) {
		t.Fatalf("Release: %v", err)
	}
	if n := len(f.env.Sim.Requests()); n != 0 {
		t.Fatalf("%d calls made", n)
	}
}

func TestVerify(t *testing.T) {
	consul := testutil.StartConsul(t)

	t.Run("still registered", func(t *testing.T) {
		f := newFixture(t, consul, fixtureOpts{})
		id := f.mustRegister(t, req("uhost-a", 31000, "alloc-1", 0)).BackendID
		res, err := f.binder.Verify(context.Background(), req("uhost-a", 31000, "alloc-1", 0))
		if err != nil || res.Changed || res.BackendID != id || f.env.Writes() != 0 {
			t.Fatalf("Verify = %+v, %v, writes %d", res, err, f.env.Writes())
		}
	})
	t.Run("gone: re-created and recorded", func(t *testing.T) {
		f := newFixture(t, consul, fixtureOpts{})
		id := f.mustRegister(t, req("uhost-a", 31000, "alloc-1", 0)).BackendID
		if err := f.env.API.ReleaseBackend(context.Background(), "ulb-ns", id); err != nil {
			t.Fatal(err)
		}
		f.env.Sim.ResetStats()
		res, err := f.binder.Verify(context.Background(), req("uhost-a", 31000, "alloc-1", 0))
		if err != nil || !res.Changed || res.BackendID == id || f.env.Writes() != 1 {
			t.Fatalf("Verify = %+v, %v, writes %d", res, err, f.env.Writes())
		}
		if rec := f.record(t, req("uhost-a", 31000, "alloc-1", 0)); rec == nil || rec.Resource != res.BackendID {
			t.Fatalf("record %+v", rec)
		}
	})
	t.Run("replaced: not the owner, nothing touched", func(t *testing.T) {
		f := newFixture(t, consul, fixtureOpts{})
		f.mustRegister(t, req("uhost-a", 31000, "alloc-old", 0))
		f.mustRegister(t, req("uhost-b", 32000, "alloc-new", 0))
		_, err := f.binder.Verify(context.Background(), req("uhost-a", 31000, "alloc-old", 0))
		if !errors.Is(err, ulbbind.ErrNotOwner) || !ulbbind.IsPermanent(err) || f.env.Writes() != 0 {
			t.Fatalf("Verify: %v, writes %d", err, f.env.Writes())
		}
		if got := f.backends(t); !slices.Equal(got, []string{"uhost-b:32000", "uhost-c:30000"}) {
			t.Fatalf("backends %v", got)
		}
	})
}

// failingClaims makes every Claim after the first n fail.
type failingClaims struct {
	ulbbind.Owners
	mu sync.Mutex
	n  int
}

func (f *failingClaims) Claim(ctx context.Context, kind, key string, o ownership.Owner, idx uint64) (bool, error) {
	f.mu.Lock()
	f.n--
	n := f.n
	f.mu.Unlock()
	if n < 0 {
		return false, errors.New("consul unavailable (injected)")
	}
	return f.Owners.Claim(ctx, kind, key, o, idx)
}

// TestRollback: when the owner record cannot be updated after the backend
// was created, Register fails and releases the backend and its claim.
func TestRollback(t *testing.T) {
	consul := testutil.StartConsul(t)
	f := newFixture(t, consul, fixtureOpts{owners: func(o ulbbind.Owners) ulbbind.Owners { return &failingClaims{Owners: o, n: 1} }})
	_, err := f.binder.Register(context.Background(), req("uhost-a", 31000, "alloc-1", 0))
	if err == nil || ulbbind.IsPermanent(err) || !strings.Contains(err.Error(), "consul unavailable") {
		t.Fatalf("Register: %v", err)
	}
	if got := f.backends(t); !slices.Equal(got, []string{"uhost-c:30000"}) {
		t.Fatalf("leaked backends %v", got)
	}
	if rec := f.record(t, req("uhost-a", 31000, "alloc-1", 0)); rec != nil {
		t.Fatalf("leaked record %+v", rec)
	}
}

func faults30() ucloudsim.Faults {
	lat := ucloudsim.Duration(2 * time.Millisecond)
	return ucloudsim.Faults{Rules: []ucloudsim.FaultRule{
		{Action: "AllocateBackend", Rate: ucloudsim.Rate(0.1), RetCode: 5000, AfterApply: true, Latency: lat},
		{Action: "ReleaseBackend", Rate: ucloudsim.Rate(0.1), HTTPStatus: 503, AfterApply: true, Latency: lat},
		{Action: "*", Rate: ucloudsim.Rate(0.12), RetCode: 5000, Latency: lat},
		{Action: "*", Rate: ucloudsim.Rate(0.12), HTTPStatus: 503, Latency: lat},
		{Action: "*", Latency: ucloudsim.Duration(time.Millisecond)},
	}}
}

// TestTransientFaults: with ~30% of calls failing (some after taking
// effect) and, for even seeds, lagging describes, registration, replacement
// and release converge and leave no backend or record behind.
func TestTransientFaults(t *testing.T) {
	consul := testutil.StartConsul(t)
	for seed := int64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			faults := faults30()
			if seed%2 == 0 {
				faults.PendingDescribes = 2
			}
			f := newFixture(t, consul, fixtureOpts{sim: ucloudsim.Config{Seed: seed, Faults: faults}})
			ctx := context.Background()
			for cycle := range 3 {
				ra := req("uhost-a", 31000+cycle, fmt.Sprintf("alloc-%d-a", cycle), 0)
				rb := req("uhost-b", 32000+cycle, fmt.Sprintf("alloc-%d-b", cycle), 0)
				a, err := f.binder.Register(ctx, ra)
				if err != nil {
					t.Fatalf("cycle %d register: %v", cycle, err)
				}
				if got := f.backendID(t, "uhost-a", ra.Port); got != a.BackendID {
					t.Fatalf("cycle %d: backend of uhost-a is %q, result %q", cycle, got, a.BackendID)
				}
				bres, err := f.binder.Register(ctx, rb)
				if err != nil || !slices.Equal(bres.Released, []string{a.BackendID}) {
					t.Fatalf("cycle %d replace: %+v %v", cycle, bres, err)
				}
				if got := f.backends(t); !slices.Equal(got, []string{fmt.Sprintf("uhost-b:%d", rb.Port), "uhost-c:30000"}) {
					t.Fatalf("cycle %d after replace: %v", cycle, got)
				}
				if err := f.binder.Release(ctx, ra); err != nil {
					t.Fatalf("cycle %d old release: %v", cycle, err)
				}
				if err := f.binder.Release(ctx, rb); err != nil {
					t.Fatalf("cycle %d release: %v", cycle, err)
				}
				if got, rec := f.backends(t), f.record(t, rb); !slices.Equal(got, []string{"uhost-c:30000"}) || rec != nil {
					t.Fatalf("cycle %d leaked: backends %v record %+v", cycle, got, rec)
				}
			}
			failed, total := 0, 0
			for _, v := range f.env.Sim.Counters() {
				failed += int(v.Failed + v.HTTPErrors)
				total += int(v.Requests)
			}
			if failed == 0 {
				t.Fatal("no call failed: the faults did not apply")
			}
			t.Logf("seed %d: %d of %d calls failed", seed, failed, total)
		})
	}
}

// TestConcurrentRegister: the same request twice at once ends with one
// backend; two slots at once get one each.
func TestConcurrentRegister(t *testing.T) {
	consul := testutil.StartConsul(t)
	for round := range 4 {
		t.Run(fmt.Sprintf("round=%d", round), func(t *testing.T) {
			f := newFixture(t, consul, fixtureOpts{})
			reqs := []ulbbind.Request{
				req("uhost-a", 31000, "alloc-1", 0), req("uhost-a", 31000, "alloc-1", 0),
				req("uhost-b", 32000, "alloc-2", 1), req("uhost-b", 32000, "alloc-2", 1),
			}
			res := make([]ulbbind.Result, len(reqs))
			errs := make([]error, len(reqs))
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, r := range reqs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					res[i], errs[i] = f.binder.Register(context.Background(), r)
				}()
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("register %d: %v", i, err)
				}
			}
			if res[0].BackendID != res[1].BackendID || res[2].BackendID != res[3].BackendID || res[0].BackendID == res[2].BackendID {
				t.Fatalf("results %+v", res)
			}
			if got := f.backends(t); !slices.Equal(got, []string{"uhost-a:31000", "uhost-b:32000", "uhost-c:30000"}) {
				t.Fatalf("backends %v", got)
			}
		})
	}
}
