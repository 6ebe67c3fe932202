package eipbind_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/eipbind"
	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

func TestBind(t *testing.T) {
	consul := testutil.StartConsul(t)
	tests := []struct {
		name  string
		opts  fixtureOpts
		setup func(t *testing.T, f *fixture)
		req   eipbind.Request

		wantErr    error  // errors.Is target; nil: success
		errHas     string // substring of the error
		permanent  bool   // the error must be permanent
		changed    bool
		previous   string
		wantBound  string // host the EIP is bound to afterwards ("" free)
		wantOwner  string // owner record's alloc afterwards
		wantWrites int    // write calls the simulator saw
		noCalls    bool   // not even a describe
	}{
		{
			name: "free eip is bound", req: req("eip-a", "uhost-a", "alloc-1", 0),
			changed: true, wantBound: "uhost-a", wantOwner: "alloc-1", wantWrites: 1,
		},
		{
			name: "already bound here and owned is a no-op",
			setup: func(t *testing.T, f *fixture) {
				f.seedOwner(t, "eip-c", broker("alloc-1", 0, "uhost-c"))
			},
			req:       req("eip-c", "uhost-c", "alloc-1", 0),
			wantBound: "uhost-c", wantOwner: "alloc-1", wantWrites: 0,
		},
		{
			name: "already bound here without a record is claimed without a write call",
			req:  req("eip-c", "uhost-c", "alloc-1", 0), wantBound: "uhost-c", wantOwner: "alloc-1", wantWrites: 0,
		},
		{
			name: "replacement on the same host takes the record over without a write call",
			setup: func(t *testing.T, f *fixture) {
				f.seedOwner(t, "eip-c", broker("alloc-old", 0, "uhost-c"))
			},
			req:       req("eip-c", "uhost-c", "alloc-new", 0),
			wantBound: "uhost-c", wantOwner: "alloc-new", wantWrites: 0,
		},
		{
			name: "stale binding of an earlier allocation of the same slot is moved",
			setup: func(t *testing.T, f *fixture) {
				f.seedOwner(t, "eip-c", broker("alloc-old", 0, "uhost-c"))
			},
			req:     req("eip-c", "uhost-a", "alloc-new", 0),
			changed: true, previous: "uhost-c", wantBound: "uhost-a", wantOwner: "alloc-new", wantWrites: 2,
		},
		{
			name: "foreign binding without owner record is refused",
			req:  req("eip-c", "uhost-a", "alloc-1", 0), wantErr: eipbind.ErrRefused, errHas: "has no owner record",
			wantBound: "uhost-c", wantOwner: "", wantWrites: 0,
		},
		{
			name: "binding of another slot is refused",
			setup: func(t *testing.T, f *fixture) {
				f.seedOwner(t, "eip-c", broker("alloc-x", 1, "uhost-c"))
			},
			req: req("eip-c", "uhost-a", "alloc-1", 0), wantErr: eipbind.ErrRefused, errHas: "for slot orders/broker/1",
			wantBound: "uhost-c", wantOwner: "alloc-x", wantWrites: 0,
		},
		{
			name: "binding whose record names another host is refused",
			setup: func(t *testing.T, f *fixture) {
				f.seedOwner(t, "eip-c", broker("alloc-old", 0, "uhost-b"))
			},
			req: req("eip-c", "uhost-a", "alloc-new", 0), wantErr: eipbind.ErrRefused, errHas: "says uhost uhost-b",
			wantBound: "uhost-c", wantOwner: "alloc-old", wantWrites: 0,
		},
		{
			name: "free eip claimed by another slot is refused",
			setup: func(t *testing.T, f *fixture) {
				f.seedOwner(t, "eip-a", broker("alloc-x", 2, "uhost-b"))
			},
			req: req("eip-a", "uhost-a", "alloc-1", 0), wantErr: eipbind.ErrRefused, errHas: "claimed for slot orders/broker/2",
			wantBound: "", wantOwner: "alloc-x", wantWrites: 0,
		},
		{
			name: "without consul a free eip is bound", opts: fixtureOpts{noConsul: true},
			req: req("eip-a", "uhost-a", "alloc-1", 0), changed: true, wantBound: "uhost-a", wantWrites: 1,
		},
		{
			name: "without consul a binding elsewhere is refused", opts: fixtureOpts{noConsul: true},
			req: req("eip-c", "uhost-a", "alloc-1", 0), wantErr: eipbind.ErrRefused, errHas: "without consul",
			wantBound: "uhost-c", wantWrites: 0,
		},
		{
			name: "eip outside the allow-list is refused before any call",
			opts: fixtureOpts{guard: eipbind.Guard{AllowedEIPIDs: []string{"eip-b"}}},
			req:  req("eip-a", "uhost-a", "alloc-1", 0), wantErr: eipbind.ErrRefused, errHas: "not in the allowed EIP ids",
			wantBound: "", noCalls: true,
		},
		{
			name: "eip in the allow-list is bound",
			opts: fixtureOpts{guard: eipbind.Guard{AllowedEIPIDs: []string{"eip-b", "eip-a"}}},
			req:  req("eip-a", "uhost-a", "alloc-1", 0), changed: true, wantBound: "uhost-a", wantOwner: "alloc-1", wantWrites: 1,
		},
		{
			name: "eip without the remark is refused",
			opts: fixtureOpts{guard: eipbind.Guard{RemarkPrefix: "rmq:"}},
			req:  req("eip-plain", "uhost-a", "alloc-1", 0), wantErr: eipbind.ErrRefused, errHas: `"rmq:orders"`,
		},
		{
			name: "eip marked for another cluster is refused",
			opts: fixtureOpts{guard: eipbind.Guard{RemarkPrefix: "rmq:"}},
			req:  req("eip-x", "uhost-a", "alloc-1", 0), wantErr: eipbind.ErrRefused, errHas: "rmq:payments",
		},
		{
			name: "remark prefix must end at a separator",
			opts: fixtureOpts{guard: eipbind.Guard{RemarkPrefix: "rmq:order"}},
			req:  req("eip-a", "uhost-a", "alloc-1", 0), wantErr: eipbind.ErrRefused,
		},
		{
			name: "eip with the cluster's remark and more is bound",
			opts: fixtureOpts{guard: eipbind.Guard{RemarkPrefix: "rmq:"}},
			req:  req("eip-b", "uhost-a", "alloc-1", 0), changed: true, wantBound: "uhost-a", wantOwner: "alloc-1", wantWrites: 1,
		},
		{
			name: "missing eip is a permanent error naming it",
			req:  req("eip-nope", "uhost-a", "alloc-1", 0), wantErr: ucloudapi.ErrNotFound, errHas: "eip eip-nope does not exist",
		},
		{
			name: "frozen eip is a permanent error naming it",
			opts: fixtureOpts{api: func(a eipbind.API) eipbind.API { return frozen{a, "eip-a"} }},
			req:  req("eip-a", "uhost-a", "alloc-1", 0), wantErr: eipbind.ErrUnusable, errHas: "eip eip-a is frozen",
		},
		{
			name: "unknown host: bind refused by ucloud, claim rolled back",
			req:  req("eip-a", "uhost-nope", "alloc-1", 0), permanent: true, errHas: "ucloud RetCode 230",
			wantOwner: "", wantWrites: 1,
		},
		{
			name: "unknown host after a takeover claim: predecessor's record restored",
			setup: func(t *testing.T, f *fixture) {
				f.seedOwner(t, "eip-c", broker("alloc-old", 0, "uhost-c"))
				// Unbinding works but binding to the new host does not.
			},
			req: req("eip-c", "uhost-nope", "alloc-new", 0), permanent: true, errHas: "could not be bound to uhost uhost-nope",
			wantBound: "", wantOwner: "alloc-new", wantWrites: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, consul, tc.opts)
			if tc.setup != nil {
				tc.setup(t, f)
			}
			res, err := f.binder.Bind(context.Background(), tc.req)
			switch {
			case tc.wantErr == nil && tc.errHas == "":
				if err != nil {
					t.Fatalf("Bind: %v", err)
				}
				if res.Changed != tc.changed || res.PreviousUHost != tc.previous || res.UHostID != tc.req.UHostID || res.EIPID != tc.req.EIPID {
					t.Errorf("result %+v, want changed=%v previous=%q", res, tc.changed, tc.previous)
				}
				if want := f.env.EIP(t, tc.req.EIPID).IP; res.IP != want {
					t.Errorf("IP %q, want %q", res.IP, want)
				}
			default:
				if err == nil {
					t.Fatalf("Bind succeeded: %+v", res)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("error %v is not %v", err, tc.wantErr)
				}
				if (tc.wantErr != nil || tc.permanent) && !eipbind.IsPermanent(err) {
					t.Errorf("error %v is not permanent", err)
				}
				if !strings.Contains(err.Error(), tc.errHas) || !strings.Contains(err.Error(), tc.req.EIPID) {
					t.Errorf("error %q does not name %s and say %q", err, tc.req.EIPID, tc.errHas)
				}
				if err.Error() != strings.ToLower(err.Error()[:1])+err.Error()[1:] {
					t.Errorf("error %q starts upper case", err)
				}
			}
			if tc.req.EIPID != "eip-nope" {
				if got := f.boundTo(t, tc.req.EIPID); got != tc.wantBound {
					t.Errorf("eip bound to %q, want %q", got, tc.wantBound)
				}
			}
			if got := f.owner(t, tc.req.EIPID); got != tc.wantOwner {
				t.Errorf("owner %q, want %q", got, tc.wantOwner)
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

// TestTakeoverRollback: a move whose bind is refused restores the
// predecessor's record when nothing moved, and keeps the claim (saying so)
// when the EIP was already unbound from the old host.
func TestTakeoverRollback(t *testing.T) {
	consul := testutil.StartConsul(t)

	t.Run("unbind refused: record restored", func(t *testing.T) {
		f := newFixture(t, consul, fixtureOpts{})
		f.seedOwner(t, "eip-c", broker("alloc-old", 0, "uhost-c"))
		if err := f.env.Sim.SetFaults(ucloudsim.Faults{Rules: []ucloudsim.FaultRule{{Action: "UnBindEIP", RetCode: 171}}}); err != nil {
			t.Fatal(err)
		}
		_, err := f.binder.Bind(context.Background(), req("eip-c", "uhost-a", "alloc-new", 0))
		if err == nil || !eipbind.IsPermanent(err) || !strings.Contains(err.Error(), "RetCode 171") {
			t.Fatalf("Bind: %v", err)
		}
		if got := f.owner(t, "eip-c"); got != "alloc-old" {
			t.Fatalf("owner %q, want the predecessor's record back", got)
		}
		if got := f.boundTo(t, "eip-c"); got != "uhost-c" {
			t.Fatalf("eip moved to %q", got)
		}
	})

	t.Run("bind keeps failing after unbind: claim kept, next attempt finishes", func(t *testing.T) {
		f := newFixture(t, consul, fixtureOpts{})
		f.seedOwner(t, "eip-c", broker("alloc-old", 0, "uhost-c"))
		if err := f.env.Sim.SetFaults(ucloudsim.Faults{Rules: []ucloudsim.FaultRule{{Action: "BindEIP", HTTPStatus: 503}}}); err != nil {
			t.Fatal(err)
		}
		_, err := f.binder.Bind(context.Background(), req("eip-c", "uhost-a", "alloc-new", 0))
		if err == nil || eipbind.IsPermanent(err) || !strings.Contains(err.Error(), "was unbound from uhost uhost-c") {
			t.Fatalf("Bind: %v", err)
		}
		if got := f.owner(t, "eip-c"); got != "alloc-new" {
			t.Fatalf("owner %q, want the claim kept", got)
		}
		if got := f.boundTo(t, "eip-c"); got != "" {
			t.Fatalf("eip bound to %q, want free", got)
		}
		// The old allocation's release now leaves it alone.
		if err := f.binder.Release(context.Background(), req("eip-c", "uhost-c", "alloc-old", 0)); err != nil {
			t.Fatal(err)
		}
		if err := f.env.Sim.SetFaults(ucloudsim.Faults{}); err != nil {
			t.Fatal(err)
		}
		res, err := f.binder.Bind(context.Background(), req("eip-c", "uhost-a", "alloc-new", 0))
		if err != nil || !res.Changed {
			t.Fatalf("second Bind: %+v %v", res, err)
		}
		if got := f.boundTo(t, "eip-c"); got != "uhost-a" {
			t.Fatalf("eip bound to %q", got)
		}
	})
}

func TestRelease(t *testing.T) {
	consul := testutil.StartConsul(t)
	tests := []struct {
		name       string
		opts       fixtureOpts
		setup      func(t *testing.T, f *fixture)
		req        eipbind.Request
		wantBound  string
		wantOwner  string
		wantWrites int
	}{
		{
			name: "owner releases its binding",
			setup: func(t *testing.T, f *fixture) {
				mustBind(t, f, req("eip-a", "uhost-a", "alloc-1", 0))
			},
			req: req("eip-a", "uhost-a", "alloc-1", 0), wantBound: "", wantOwner: "", wantWrites: 1,
		},
		{
			name: "release twice is a no-op",
			setup: func(t *testing.T, f *fixture) {
				mustBind(t, f, req("eip-a", "uhost-a", "alloc-1", 0))
				mustRelease(t, f, req("eip-a", "uhost-a", "alloc-1", 0))
			},
			req: req("eip-a", "uhost-a", "alloc-1", 0), wantBound: "", wantOwner: "", wantWrites: 0,
		},
		{
			name: "old allocation does not yank the eip from its replacement on another host",
			setup: func(t *testing.T, f *fixture) {
				mustBind(t, f, req("eip-a", "uhost-a", "alloc-old", 0))
				mustBind(t, f, req("eip-a", "uhost-b", "alloc-new", 0))
			},
			req: req("eip-a", "uhost-a", "alloc-old", 0), wantBound: "uhost-b", wantOwner: "alloc-new", wantWrites: 0,
		},
		{
			name: "old allocation does not yank the eip from its replacement on the same host",
			setup: func(t *testing.T, f *fixture) {
				mustBind(t, f, req("eip-a", "uhost-a", "alloc-old", 0))
				mustBind(t, f, req("eip-a", "uhost-a", "alloc-new", 0))
			},
			req: req("eip-a", "uhost-a", "alloc-old", 0), wantBound: "uhost-a", wantOwner: "alloc-new", wantWrites: 0,
		},
		{
			name: "owner does not unbind from a host it is no longer on",
			setup: func(t *testing.T, f *fixture) {
				mustBind(t, f, req("eip-a", "uhost-a", "alloc-1", 0))
				// Someone moves it by hand.
				if err := f.env.API.UnBindEIP(context.Background(), "eip-a", "uhost-a"); err != nil {
					t.Fatal(err)
				}
				if err := f.env.API.BindEIP(context.Background(), "eip-a", "uhost-b"); err != nil {
					t.Fatal(err)
				}
				f.env.Sim.ResetStats()
			},
			req: req("eip-a", "uhost-a", "alloc-1", 0), wantBound: "uhost-b", wantOwner: "", wantWrites: 0,
		},
		{
			name: "no owner record: not ours, not unbound",
			req:  req("eip-c", "uhost-c", "alloc-1", 0), wantBound: "uhost-c", wantOwner: "", wantWrites: 0,
		},
		{
			name: "without consul: unbinds from this host", opts: fixtureOpts{noConsul: true},
			req: req("eip-c", "uhost-c", "alloc-1", 0), wantBound: "", wantWrites: 1,
		},
		{
			name: "without consul: leaves a binding elsewhere", opts: fixtureOpts{noConsul: true},
			req: req("eip-c", "uhost-a", "alloc-1", 0), wantBound: "uhost-c", wantWrites: 0,
		},
		{
			name: "missing eip: record dropped",
			setup: func(t *testing.T, f *fixture) {
				f.seedOwner(t, "eip-gone", broker("alloc-1", 0, "uhost-a"))
			},
			req: req("eip-gone", "uhost-a", "alloc-1", 0), wantWrites: 0,
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
			if tc.req.EIPID != "eip-gone" {
				if got := f.boundTo(t, tc.req.EIPID); got != tc.wantBound {
					t.Errorf("eip bound to %q, want %q", got, tc.wantBound)
				}
			}
			if got := f.owner(t, tc.req.EIPID); got != tc.wantOwner {
				t.Errorf("owner %q, want %q", got, tc.wantOwner)
			}
			if got := f.env.Writes(); got != tc.wantWrites {
				t.Errorf("write calls %d, want %d", got, tc.wantWrites)
			}
		})
	}
}

func TestReleaseGuard(t *testing.T) {
	f := newFixture(t, nil, fixtureOpts{noConsul: true, guard: eipbind.Guard{AllowedEIPIDs: []string{"eip-a"}}})
	err := f.binder.Release(context.Background(), req("eip-c", "uhost-c", "alloc-1", 0))
	if !errors.Is(err, eipbind.ErrRefused) || !eipbind.IsPermanent(err) {
		t.Fatalf("Release outside the allow-list: %v", err)
	}
	if n := len(f.env.Sim.Requests()); n != 0 {
		t.Fatalf("%d calls made", n)
	}
}

func TestVerify(t *testing.T) {
	consul := testutil.StartConsul(t)
	tests := []struct {
		name       string
		setup      func(t *testing.T, f *fixture)
		req        eipbind.Request
		wantErr    error
		changed    bool
		wantBound  string
		wantWrites int
	}{
		{
			name:  "still bound and owned: nothing to do",
			setup: func(t *testing.T, f *fixture) { mustBind(t, f, req("eip-a", "uhost-a", "alloc-1", 0)) },
			req:   req("eip-a", "uhost-a", "alloc-1", 0), wantBound: "uhost-a", wantWrites: 0,
		},
		{
			name: "owned but unbound: repaired",
			setup: func(t *testing.T, f *fixture) {
				mustBind(t, f, req("eip-a", "uhost-a", "alloc-1", 0))
				if err := f.env.API.UnBindEIP(context.Background(), "eip-a", "uhost-a"); err != nil {
					t.Fatal(err)
				}
				f.env.Sim.ResetStats()
			},
			req: req("eip-a", "uhost-a", "alloc-1", 0), changed: true, wantBound: "uhost-a", wantWrites: 1,
		},
		{
			name: "a replacement owns it now",
			setup: func(t *testing.T, f *fixture) {
				mustBind(t, f, req("eip-a", "uhost-a", "alloc-old", 0))
				mustBind(t, f, req("eip-a", "uhost-b", "alloc-new", 0))
			},
			req: req("eip-a", "uhost-a", "alloc-old", 0), wantErr: eipbind.ErrNotOwner, wantBound: "uhost-b", wantWrites: 0,
		},
		{
			name: "a replacement owns it now, eip free: not re-bound",
			setup: func(t *testing.T, f *fixture) {
				f.seedOwner(t, "eip-a", broker("alloc-new", 0, "uhost-b"))
			},
			req: req("eip-a", "uhost-a", "alloc-old", 0), wantErr: eipbind.ErrNotOwner, wantBound: "", wantWrites: 0,
		},
		{
			name: "owned but moved to another host by hand: moved back",
			setup: func(t *testing.T, f *fixture) {
				f.seedOwner(t, "eip-c", broker("alloc-1", 0, "uhost-a"))
			},
			req: req("eip-c", "uhost-a", "alloc-1", 0), changed: true, wantBound: "uhost-a", wantWrites: 2,
		},
		{
			name: "bound elsewhere without an owner record: not moved",
			req:  req("eip-c", "uhost-a", "alloc-1", 0), wantErr: eipbind.ErrRefused, wantBound: "uhost-c", wantWrites: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, consul, fixtureOpts{})
			if tc.setup != nil {
				tc.setup(t, f)
			}
			f.env.Sim.ResetStats()
			res, err := f.binder.Verify(context.Background(), tc.req)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !eipbind.IsPermanent(err) {
					t.Fatalf("Verify: %v, want %v (permanent)", err, tc.wantErr)
				}
			} else if err != nil || res.Changed != tc.changed {
				t.Fatalf("Verify = %+v, %v; want changed=%v", res, err, tc.changed)
			}
			if got := f.boundTo(t, tc.req.EIPID); got != tc.wantBound {
				t.Errorf("eip bound to %q, want %q", got, tc.wantBound)
			}
			if got := f.env.Writes(); got != tc.wantWrites {
				t.Errorf("write calls %d, want %d", got, tc.wantWrites)
			}
		})
	}
}

// TestPendingBind: DescribeEIP keeps showing the old state for a few calls
// after a change; Bind waits for the change to show, without binding twice.
func TestPendingBind(t *testing.T) {
	consul := testutil.StartConsul(t)
	for _, pending := range []int{1, 3, 8} {
		t.Run(fmt.Sprintf("pending=%d", pending), func(t *testing.T) {
			f := newFixture(t, consul, fixtureOpts{sim: ucloudsim.Config{Faults: ucloudsim.Faults{PendingDescribes: pending}}})
			res, err := f.binder.Bind(context.Background(), req("eip-a", "uhost-a", "alloc-1", 0))
			if err != nil || !res.Changed || res.IP != "203.0.113.10" {
				t.Fatalf("Bind = %+v, %v", res, err)
			}
			if n := f.env.Requests("BindEIP"); n != 1 {
				t.Errorf("BindEIP calls %d, want 1", n)
			}
			if n := f.env.Requests("DescribeEIP"); n < pending+2 {
				t.Errorf("DescribeEIP calls %d: the bind was not waited for", n)
			}
			// A move with pending views of both the unbind and the bind.
			res, err = f.binder.Bind(context.Background(), req("eip-a", "uhost-b", "alloc-2", 0))
			if err != nil || res.PreviousUHost != "uhost-a" {
				t.Fatalf("move = %+v, %v", res, err)
			}
			if got := f.boundTo(t, "eip-a"); got != "uhost-b" {
				t.Fatalf("bound to %q", got)
			}
			if n := f.env.Requests("BindEIP") + f.env.Requests("UnBindEIP"); n != 3 {
				t.Errorf("bind+unbind calls %d, want 3", n)
			}
			// Release, then a new allocation on the same host binds at
			// once: it must not take a stale "bound here" for a no-op.
			mustRelease(t, f, req("eip-a", "uhost-b", "alloc-2", 0))
			if res, err = f.binder.Bind(context.Background(), req("eip-a", "uhost-b", "alloc-3", 0)); err != nil || !res.Changed {
				t.Fatalf("bind after release = %+v, %v", res, err)
			}
			if got := f.boundTo(t, "eip-a"); got != "uhost-b" {
				t.Fatalf("after release and bind: bound to %q", got)
			}
			// Someone else unbinds a foreign EIP just before our bind: the
			// stale "bound elsewhere" is read again, not refused at once.
			if err := f.env.API.UnBindEIP(context.Background(), "eip-c", "uhost-c"); err != nil {
				t.Fatal(err)
			}
			if res, err = f.binder.Bind(context.Background(), req("eip-c", "uhost-a", "alloc-9", 1)); pending <= 3 && (err != nil || !res.Changed) {
				t.Fatalf("bind after a foreign unbind = %+v, %v", res, err)
			} else if pending > 3 && !errors.Is(err, eipbind.ErrRefused) && err != nil {
				t.Fatalf("bind after a foreign unbind, long lag = %+v, %v", res, err)
			}
		})
	}
}

// faults30 fails about 30% of all API calls (RetCode 5000 or HTTP 503, some
// after the action took effect) and slows every call a little.
func faults30() ucloudsim.Faults {
	lat := ucloudsim.Duration(2 * time.Millisecond)
	return ucloudsim.Faults{Rules: []ucloudsim.FaultRule{
		{Action: "BindEIP", Rate: ucloudsim.Rate(0.1), RetCode: 5000, AfterApply: true, Latency: lat},
		{Action: "UnBindEIP", Rate: ucloudsim.Rate(0.1), HTTPStatus: 503, AfterApply: true, Latency: lat},
		{Action: "*", Rate: ucloudsim.Rate(0.12), RetCode: 5000, Latency: lat},
		{Action: "*", Rate: ucloudsim.Rate(0.12), HTTPStatus: 503, Latency: lat},
		{Action: "*", Latency: ucloudsim.Duration(time.Millisecond)},
	}}
}

// TestTransientFaults: with ~30% of calls failing (some after taking
// effect), and, for even seeds, describes lagging behind changes, bind, move
// and release all converge, and nothing is left bound or recorded after.
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
				first, second := fmt.Sprintf("alloc-%d-a", cycle), fmt.Sprintf("alloc-%d-b", cycle)
				if _, err := f.binder.Bind(ctx, req("eip-a", "uhost-a", first, 0)); err != nil {
					t.Fatalf("cycle %d bind: %v", cycle, err)
				}
				if got := f.boundTo(t, "eip-a"); got != "uhost-a" {
					t.Fatalf("cycle %d after bind: bound to %q", cycle, got)
				}
				res, err := f.binder.Bind(ctx, req("eip-a", "uhost-b", second, 0))
				if err != nil || res.PreviousUHost != "uhost-a" || !res.Changed {
					t.Fatalf("cycle %d move: %+v %v", cycle, res, err)
				}
				if got, o := f.boundTo(t, "eip-a"), f.owner(t, "eip-a"); got != "uhost-b" || o != second {
					t.Fatalf("cycle %d after move: bound to %q owner %q", cycle, got, o)
				}
				if err := f.binder.Release(ctx, req("eip-a", "uhost-a", first, 0)); err != nil {
					t.Fatalf("cycle %d old release: %v", cycle, err)
				}
				if got := f.boundTo(t, "eip-a"); got != "uhost-b" {
					t.Fatalf("cycle %d: the old allocation's release moved it: %q", cycle, got)
				}
				if err := f.binder.Release(ctx, req("eip-a", "uhost-b", second, 0)); err != nil {
					t.Fatalf("cycle %d release: %v", cycle, err)
				}
				if got, o := f.boundTo(t, "eip-a"), f.owner(t, "eip-a"); got != "" || o != "" {
					t.Fatalf("cycle %d leaked: bound to %q owner %q", cycle, got, o)
				}
			}
			failed, total := 0, 0
			for _, v := range f.env.Sim.Counters() {
				failed += int(v.Failed + v.HTTPErrors)
				total += int(v.Requests)
			}
			if failed == 0 {
				t.Fatalf("no call failed: the faults did not apply")
			}
			t.Logf("seed %d: %d of %d calls failed", seed, failed, total)
		})
	}
}

// TestTimeoutThenSuccess: a bind whose reply never comes (the bind
// happened) is reconciled, not repeated blindly.
func TestTimeoutThenSuccess(t *testing.T) {
	consul := testutil.StartConsul(t)
	f := newFixture(t, consul, fixtureOpts{sim: ucloudsim.Config{MaxHang: 10 * time.Second}})
	f.env.API, _ = ucloudapi.New(ucloudapi.Config{Region: "cn-bj2", ProjectID: "org-rmq", PublicKey: "x", PrivateKey: "y", BaseURL: f.env.Sim.URL()})
	if err := f.env.Sim.SetFaults(ucloudsim.Faults{Rules: []ucloudsim.FaultRule{{Action: "BindEIP", Timeout: true, AfterApply: true, Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	short, err := ucloudapi.New(ucloudapi.Config{Region: "cn-bj2", ProjectID: "org-rmq", PublicKey: "simtest-public-key",
		PrivateKey: "simtest-private-key-9b2e", BaseURL: f.env.Sim.URL(), CallTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b := eipbind.New(short, f.store, eipbind.Guard{}, eipbind.Options{Retry: fastRetry(), PollInterval: time.Millisecond})
	res, err := b.Bind(context.Background(), req("eip-a", "uhost-a", "alloc-1", 0))
	if err != nil || !res.Changed {
		t.Fatalf("Bind = %+v, %v", res, err)
	}
	if got := f.boundTo(t, "eip-a"); got != "uhost-a" {
		t.Fatalf("bound to %q", got)
	}
	if n := f.env.Requests("BindEIP"); n != 1 {
		t.Errorf("BindEIP calls %d, want 1: the timed-out bind had worked", n)
	}
}

// TestConcurrentClaims: allocations of two different slots race for the same
// free EIP; exactly one gets it, the other is refused.
func TestConcurrentClaims(t *testing.T) {
	consul := testutil.StartConsul(t)
	for round := range 5 {
		t.Run(fmt.Sprintf("round=%d", round), func(t *testing.T) {
			f := newFixture(t, consul, fixtureOpts{})
			reqs := []eipbind.Request{req("eip-a", "uhost-a", "alloc-1", 0), req("eip-a", "uhost-b", "alloc-2", 1)}
			errs := make([]error, len(reqs))
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, r := range reqs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[i] = f.binder.Bind(context.Background(), r)
				}()
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("both won")
				case err == nil:
					winner = i
				case !errors.Is(err, eipbind.ErrRefused):
					t.Fatalf("loser %d: %v, want a refusal", i, err)
				}
			}
			if winner < 0 {
				t.Fatalf("nobody won: %v", errs)
			}
			if got, o := f.boundTo(t, "eip-a"), f.owner(t, "eip-a"); got != reqs[winner].UHostID || o != reqs[winner].Owner.AllocID {
				t.Fatalf("bound to %q owner %q, winner %+v", got, o, reqs[winner])
			}
		})
	}
}

// TestObserve: the metrics hook gets one call per operation.
func TestObserve(t *testing.T) {
	env := newFixture(t, nil, fixtureOpts{noConsul: true}).env
	var got []string
	b := eipbind.New(env.API, nil, eipbind.Guard{AllowedEIPIDs: []string{"eip-a", "eip-c"}}, eipbind.Options{
		Retry:   fastRetry(),
		Observe: func(action, outcome string, d time.Duration) { got = append(got, action+"/"+outcome) },
	})
	ctx := context.Background()
	_, _ = b.Bind(ctx, req("eip-a", "uhost-a", "a", 0))
	_, _ = b.Bind(ctx, req("eip-a", "uhost-a", "a", 0))
	_, _ = b.Bind(ctx, req("eip-x", "uhost-a", "a", 0))
	_, _ = b.Verify(ctx, req("eip-c", "uhost-a", "a", 0))
	_ = b.Release(ctx, req("eip-a", "uhost-a", "a", 0))
	want := []string{"eip_bind/changed", "eip_bind/unchanged", "eip_bind/refused", "eip_verify/refused", "eip_release/changed"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("observed %v, want %v", got, want)
	}
}

// TestTypedNilOwners: a nil *ownership.Store passed as Owners means none.
func TestTypedNilOwners(t *testing.T) {
	env := newFixture(t, nil, fixtureOpts{noConsul: true}).env
	var store *ownership.Store
	b := eipbind.New(env.API, store, eipbind.Guard{}, eipbind.Options{Retry: fastRetry()})
	if _, err := b.Bind(context.Background(), eipbind.Request{EIPID: "eip-a", UHostID: "uhost-a"}); err != nil {
		t.Fatal(err)
	}
}

// TestDeadline: the whole Bind is bounded by the retry deadline.
func TestDeadline(t *testing.T) {
	f := newFixture(t, nil, fixtureOpts{noConsul: true})
	if err := f.env.Sim.SetFaults(ucloudsim.Faults{Rules: []ucloudsim.FaultRule{{Action: "*", HTTPStatus: 503}}}); err != nil {
		t.Fatal(err)
	}
	b := eipbind.New(f.env.API, nil, eipbind.Guard{}, eipbind.Options{Retry: eipbind.RetryPolicy{
		Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, MaxAttempts: 1000, Deadline: 300 * time.Millisecond}})
	_, err := b.Bind(context.Background(), req("eip-a", "uhost-a", "alloc-1", 0))
	if err == nil || eipbind.IsPermanent(err) || !strings.Contains(err.Error(), "gave up after 300ms") || !strings.Contains(err.Error(), "HTTP status 503") {
		t.Fatalf("Bind: %v", err)
	}
	if n := f.env.Writes(); n != 0 {
		t.Fatalf("%d writes", n)
	}
}

func mustBind(t *testing.T, f *fixture, r eipbind.Request) {
	t.Helper()
	if _, err := f.binder.Bind(context.Background(), r); err != nil {
		t.Fatalf("Bind(%+v): %v", r, err)
	}
	f.env.Sim.ResetStats()
}

func mustRelease(t *testing.T, f *fixture, r eipbind.Request) {
	t.Helper()
	if err := f.binder.Release(context.Background(), r); err != nil {
		t.Fatalf("Release(%+v): %v", r, err)
	}
	f.env.Sim.ResetStats()
}
