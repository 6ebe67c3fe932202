package eipbind

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// The decision tables of docs/binding.md ("EIPs": Bind, Verify, Release),
// row by row: pure, no Consul, no simulator.

var now = time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)

func owner(alloc string, index int, uhost string) ownership.Owner {
	return ownership.Owner{AllocID: alloc, UHostID: uhost, Namespace: "default", JobID: "rmq-orders", Group: "broker",
		Cluster: "orders", Role: "broker", AllocIndex: index, Resource: "eip-t"}
}

// The request: allocation alloc-me of slot orders/broker/0 on uhost-me.
var me = Request{EIPID: "eip-t", UHostID: "uhost-me", Owner: owner("alloc-me", 0, "uhost-me")}

// EIP states.
type eipState string

const (
	here      eipState = "bound here"
	free      eipState = "free"
	elsewhere eipState = "bound to uhost-h"
	onULB     eipState = "bound to a ulb"
)

func (st eipState) eip() ucloudapi.EIP {
	e := ucloudapi.EIP{ID: "eip-t", IPs: []string{"203.0.113.9"}, Status: "used"}
	switch st {
	case here:
		e.BoundType, e.BoundID = "uhost", "uhost-me"
	case elsewhere:
		e.BoundType, e.BoundID = "uhost", "uhost-h"
	case onULB:
		e.BoundType, e.BoundID = "ulb", "ulb-x"
	default:
		e.Status = "free"
	}
	return e
}

// Owner records, and what the scheduler says of their allocation.
type recState string

const (
	noRecord      recState = "no record"
	ours          recState = "ours"
	prevGone      recState = "earlier alloc of the slot, on uhost-h, gone"
	prevLive      recState = "earlier alloc of the slot, on uhost-h, running"
	prevReleasing recState = "earlier alloc of the slot, on uhost-h, releasing"
	prevUnknown   recState = "earlier alloc of the slot, on uhost-h, liveness unknown"
	prevOtherHost recState = "earlier alloc of the slot, on uhost-z, gone"
	otherSlot     recState = "alloc of slot orders/broker/1"
	noConsul      recState = "no consul"
)

var recStates = []recState{noRecord, ours, prevGone, prevLive, prevReleasing, prevUnknown, prevOtherHost, otherSlot, noConsul}

func (rs recState) record() *ownership.Owner {
	var o ownership.Owner
	switch rs {
	case noRecord, noConsul:
		return nil
	case ours:
		o = me.Owner
	case prevGone, prevLive, prevUnknown:
		o = owner("alloc-old", 0, "uhost-h")
	case prevReleasing:
		o = owner("alloc-old", 0, "uhost-h")
		until := now.Add(time.Minute)
		o.ReleasingUntil = &until
	case prevOtherHost:
		o = owner("alloc-old", 0, "uhost-z")
	case otherSlot:
		o = owner("alloc-x", 1, "uhost-h")
	}
	return &o
}

// livenessFor answers as Nomad would for the records above.
func livenessFor(rs recState) ownership.Liveness {
	return ownership.LivenessFunc(func(_ context.Context, o ownership.Owner) (bool, string, error) {
		switch rs {
		case prevLive:
			return false, "allocation alloc-old is running", nil
		case prevUnknown:
			return false, "", errors.New("nomad unreachable")
		}
		return true, "allocation alloc-old is complete", nil
	})
}

// observe builds what an attempt would have observed, asking liveness
// exactly when the binder does (asksLiveness).
func observe(t *testing.T, st eipState, rs recState, m mode) observed {
	t.Helper()
	s := observed{eip: st.eip(), records: rs != noConsul, rec: rs.record(), idx: 7}
	if asksLiveness(me, m, s.rec) {
		s.held, s.why, s.heldErr = ownership.Held(context.Background(), livenessFor(rs), *s.rec, now)
	}
	return s
}

type want struct {
	kind    planKind
	claim   bool
	from    string
	drift   bool
	unbound bool
	is      error  // errors.Is target of the plan's error
	says    string // substring of the plan's error
}

var (
	wDone          = want{kind: planDone}
	wClaim         = want{kind: planClaim, claim: true}
	wBind          = want{kind: planBind}
	wClaimBind     = want{kind: planBind, claim: true}
	wTakeover      = want{kind: planTakeover, claim: true, from: "uhost-h"}
	wWaitLive      = want{kind: planWait, says: "held by allocation alloc-old of this slot (allocation alloc-old is running): waiting for it to let go"}
	wWaitReleasing = want{kind: planWait, says: "held by allocation alloc-old of this slot (allocation alloc-old is releasing it"}
	wWaitUnknown   = want{kind: planWait, says: "for allocation alloc-old of this slot: learn whether allocation alloc-old"}
	wRefuseSlot    = want{kind: planRefuse, is: ErrRefused, says: "each slot needs its own EIP"}
	wRefuseOwner   = want{kind: planRefuse, is: ErrNotOwner, says: "is now owned by allocation alloc-old of this slot"}
	wNoRecord      = want{kind: planConflict, is: ErrRefused, says: "has no owner record"}
	wNotFighting   = want{kind: planConflict, is: ErrRefused, says: "not fighting over it"}
	wOtherHost     = want{kind: planConflict, is: ErrRefused, says: "says uhost uhost-z"}
	wOtherSlot     = want{kind: planConflict, is: ErrRefused, says: "for slot default/rmq-orders/broker/orders/broker/1"}
	wNoConsul      = want{kind: planConflict, is: ErrRefused, says: "without consul"}
	wNotUHost      = want{kind: planConflict, is: ErrRefused, says: "not to a uhost"}
	wDrift         = want{kind: planTakeover, from: "uhost-h", drift: true}
	wNotOwnerThere = want{kind: planConflict, is: ErrNotOwner, says: "is now owned by allocation"}
	wNoMove        = want{kind: planConflict, is: ErrRefused, says: "recovery does not move it"}
)

// table is docs/binding.md's decision table, for Bind and Verify: every
// EIP state × every record state.
var table = map[mode]map[eipState]map[recState]want{
	modeBind: {
		here: {noRecord: wClaim, ours: wDone, prevGone: wClaim, prevLive: wWaitLive, prevReleasing: wWaitReleasing,
			prevUnknown: wWaitUnknown, prevOtherHost: wClaim, otherSlot: wRefuseSlot, noConsul: wDone},
		free: {noRecord: wClaimBind, ours: wBind, prevGone: wClaimBind, prevLive: wWaitLive, prevReleasing: wWaitReleasing,
			prevUnknown: wWaitUnknown, prevOtherHost: wClaimBind, otherSlot: wRefuseSlot, noConsul: wBind},
		elsewhere: {noRecord: wNoRecord, ours: wNotFighting, prevGone: wTakeover, prevLive: wWaitLive, prevReleasing: wWaitReleasing,
			prevUnknown: wWaitUnknown, prevOtherHost: wOtherHost, otherSlot: wOtherSlot, noConsul: wNoConsul},
		onULB: {noRecord: wNotUHost, ours: wNotUHost, prevGone: wNotUHost, prevLive: wNotUHost, prevReleasing: wNotUHost,
			prevUnknown: wNotUHost, prevOtherHost: wNotUHost, otherSlot: wNotUHost, noConsul: wNoConsul},
	},
	modeVerify: {
		here: {noRecord: wClaim, ours: wDone, prevGone: wRefuseOwner, prevLive: wRefuseOwner, prevReleasing: wRefuseOwner,
			prevUnknown: wRefuseOwner, prevOtherHost: wRefuseOwner, otherSlot: wRefuseSlot, noConsul: wDone},
		free: {noRecord: wClaimBind, ours: wBind, prevGone: wRefuseOwner, prevLive: wRefuseOwner, prevReleasing: wRefuseOwner,
			prevUnknown: wRefuseOwner, prevOtherHost: wRefuseOwner, otherSlot: wRefuseSlot, noConsul: wBind},
		elsewhere: {noRecord: wNoMove, ours: wDrift, prevGone: wNotOwnerThere, prevLive: wNotOwnerThere, prevReleasing: wNotOwnerThere,
			prevUnknown: wNotOwnerThere, prevOtherHost: wNotOwnerThere, otherSlot: wNotOwnerThere, noConsul: wNoMove},
		onULB: {noRecord: wNoMove, ours: wNotUHost, prevGone: wNotOwnerThere, prevLive: wNotOwnerThere, prevReleasing: wNotOwnerThere,
			prevUnknown: wNotOwnerThere, prevOtherHost: wNotOwnerThere, otherSlot: wNotOwnerThere, noConsul: wNoMove},
	},
}

func TestDecideTable(t *testing.T) {
	n := 0
	for _, m := range []mode{modeBind, modeVerify} {
		for _, st := range []eipState{here, free, elsewhere, onULB} {
			for _, rs := range recStates {
				w, ok := table[m][st][rs]
				if !ok {
					t.Errorf("%s, %s, %s: no row in the table", modeName(m), st, rs)
					continue
				}
				n++
				t.Run(fmt.Sprintf("%s/%s/%s", modeName(m), st, rs), func(t *testing.T) {
					check(t, decide(me, m, progress{}, observe(t, st, rs, m)), w)
				})
			}
		}
	}
	t.Logf("%d rows", n)
}

// TestDecideProgress: rows that depend on what earlier attempts did.
func TestDecideProgress(t *testing.T) {
	tests := []struct {
		name string
		m    mode
		st   eipState
		rs   recState
		pr   progress
		want want
	}{
		{"our takeover from uhost-h continues", modeBind, elsewhere, ours, progress{takeoverFrom: "uhost-h"},
			want{kind: planTakeover, from: "uhost-h"}},
		{"our takeover was from another host: someone moved it", modeBind, elsewhere, ours, progress{takeoverFrom: "uhost-z"}, wNotFighting},
		{"verify: moving back continues, not a new drift", modeVerify, elsewhere, ours, progress{takeoverFrom: "uhost-h"},
			want{kind: planTakeover, from: "uhost-h"}},
		{"verify: moved back from one host, now on another", modeVerify, elsewhere, ours, progress{takeoverFrom: "uhost-z"}, wNotFighting},
		{"free during our takeover: the unbind went through", modeBind, free, ours, progress{takeoverFrom: "uhost-h"},
			want{kind: planBind, unbound: true}},
		{"free after our unbind", modeBind, free, ours, progress{takeoverFrom: "uhost-h", unboundFrom: "uhost-h"}, wBind},
		{"bound here after our takeover", modeBind, here, ours, progress{takeoverFrom: "uhost-h", unboundFrom: "uhost-h"}, wDone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check(t, decide(me, tc.m, tc.pr, observe(t, tc.st, tc.rs, tc.m)), tc.want)
		})
	}
}

func check(t *testing.T, p plan, w want) {
	t.Helper()
	if p.kind != w.kind || p.claim != w.claim || p.from != w.from || p.drift != w.drift || p.unbound != w.unbound {
		t.Fatalf("plan %s claim=%v from=%q drift=%v unbound=%v (%v), want %s claim=%v from=%q drift=%v unbound=%v",
			p.kind, p.claim, p.from, p.drift, p.unbound, p.err, w.kind, w.claim, w.from, w.drift, w.unbound)
	}
	err := p.Err()
	switch w.kind {
	case planDone, planClaim, planBind, planTakeover:
		if err != nil {
			t.Fatalf("plan to act has an error: %v", err)
		}
		return
	case planWait:
		if err == nil || IsPermanent(err) {
			t.Fatalf("wait: %v, want a retryable error", err)
		}
	case planRefuse:
		if !IsPermanent(err) {
			t.Fatalf("refusal %v is not permanent", err)
		}
	case planConflict:
		if IsPermanent(err) {
			t.Fatalf("conflict %v is final before it was confirmed", err)
		}
	}
	if w.is != nil && !errors.Is(err, w.is) {
		t.Errorf("error %v is not %v", err, w.is)
	}
	if msg := err.Error(); !strings.Contains(msg, w.says) || !strings.Contains(msg, "eip-t") || msg[:1] != strings.ToLower(msg[:1]) {
		t.Errorf("error %q: want it lower case, naming eip-t and saying %q", msg, w.says)
	}
	if p.claim && p.prev != nil && p.idx != 7 {
		t.Errorf("claim over index %d, want the observed 7", p.idx)
	}
}

// TestDecideClaimsOverWhatWasRead: a claim replaces exactly the record
// observed (check-and-set on its index), and says why its owner is gone.
func TestDecideClaimsOverWhatWasRead(t *testing.T) {
	p := decide(me, modeBind, progress{}, observe(t, elsewhere, prevGone, modeBind))
	if p.prev == nil || p.prev.AllocID != "alloc-old" || p.idx != 7 || p.ended != "allocation alloc-old is complete" {
		t.Fatalf("plan %+v", p)
	}
	if p = decide(me, modeBind, progress{}, observe(t, free, noRecord, modeBind)); p.prev != nil || p.idx != 7 {
		t.Fatalf("plan %+v", p)
	}
}

func modeName(m mode) string { return map[mode]string{modeBind: "bind", modeVerify: "verify"}[m] }

func TestDecideRelease(t *testing.T) {
	bound := func(st eipState) *ucloudapi.EIP { e := st.eip(); return &e }
	releasing := me.Owner
	until := now.Add(time.Minute)
	releasing.ReleasingUntil = &until
	other := owner("alloc-new", 0, "uhost-me")
	tests := []struct {
		name string
		s    releaseObserved
		kind releaseKind
		mark bool
	}{
		{"no record: not ours", releaseObserved{records: true}, releaseNothing, false},
		{"another allocation owns it", releaseObserved{records: true, rec: &other}, releaseNothing, false},
		{"ours, bound here: mark, unbind", releaseObserved{records: true, rec: &me.Owner, eip: bound(here)}, releaseUnbind, true},
		{"ours, already marked: unbind", releaseObserved{records: true, rec: &releasing, eip: bound(here)}, releaseUnbind, false},
		{"ours, moved away: record dropped, not unbound", releaseObserved{records: true, rec: &me.Owner, eip: bound(elsewhere)}, releaseDrop, false},
		{"ours, free: record dropped", releaseObserved{records: true, rec: &me.Owner, eip: bound(free)}, releaseDrop, false},
		{"ours, eip gone: record dropped", releaseObserved{records: true, rec: &me.Owner}, releaseDrop, false},
		{"no consul, bound here: unbind", releaseObserved{eip: bound(here)}, releaseUnbind, false},
		{"no consul, bound elsewhere: left", releaseObserved{eip: bound(elsewhere)}, releaseDrop, false},
		{"no consul, on a ulb: left", releaseObserved{eip: bound(onULB)}, releaseDrop, false},
		{"no consul, eip gone", releaseObserved{}, releaseDrop, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.now, tc.s.idx = now, 9
			p := decideRelease(me, tc.s)
			if p.kind != tc.kind || p.mark != tc.mark || p.Err() != nil {
				t.Fatalf("plan %s mark=%v, want %s mark=%v", p.kind, p.mark, tc.kind, tc.mark)
			}
			if p.mark && (p.idx != 9 || p.rec.AllocID != "alloc-me") {
				t.Fatalf("mark %+v at %d", p.rec, p.idx)
			}
		})
	}
}
