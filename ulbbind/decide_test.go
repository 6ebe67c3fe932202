package ulbbind

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

// The decisions of docs/binding.md ("ULB backends": Register, Verify,
// Release), row by row: pure, no Consul, no simulator.

var now = time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)

func owner(alloc string, index int, uhost string, port int, backend string) ownership.Owner {
	return ownership.Owner{AllocID: alloc, UHostID: uhost, Namespace: "default", JobID: "rmq-orders", Group: "namesrv",
		Cluster: "orders", Role: "namesrv", AllocIndex: index, Port: port, Resource: backend}
}

// The request: allocation alloc-me of slot orders/namesrv/0, uhost-me port 31000.
var me = Request{ULBID: "ulb-t", VServerID: "vs-t", UHostID: "uhost-me", Port: 31000, Owner: owner("alloc-me", 0, "uhost-me", 31000, "")}

var key = RecordKey(me)

var (
	bMine = ucloudapi.Backend{ID: "b-mine", ResourceID: "uhost-me", Port: 31000, Enabled: true}
	bOld  = ucloudapi.Backend{ID: "b-old", ResourceID: "uhost-h", Port: 32000, Enabled: true}
	bSeed = ucloudapi.Backend{ID: "b-seed", ResourceID: "uhost-c", Port: 30000, Enabled: true}
)

// Our backend: listed (exists) or not (missing).
type backendState string

const (
	exists  backendState = "our backend exists"
	missing backendState = "no backend of ours"
)

// The slot's owner record, and what the scheduler says of its allocation.
type recState string

const (
	noRecord         recState = "no record"
	oursNamed        recState = "ours, naming our backend"
	oursUnnamed      recState = "ours, claimed before the backend existed"
	oursStale        recState = "ours, naming a backend that is gone"
	prevByID         recState = "earlier alloc, gone, its backend by id"
	prevByHostPort   recState = "earlier alloc, gone, its backend by host and port"
	prevBackendGone  recState = "earlier alloc, gone, its backend gone too"
	prevSameHostPort recState = "earlier alloc, gone, on our very host and port"
	prevLive         recState = "earlier alloc, running"
	prevReleasing    recState = "earlier alloc, releasing"
	prevUnknown      recState = "earlier alloc, liveness unknown"
	otherSlot        recState = "alloc of slot orders/namesrv/1"
	noConsul         recState = "no consul"
)

var recStates = []recState{noRecord, oursNamed, oursUnnamed, oursStale, prevByID, prevByHostPort, prevBackendGone,
	prevSameHostPort, prevLive, prevReleasing, prevUnknown, otherSlot, noConsul}

func (rs recState) record() *ownership.Owner {
	var o ownership.Owner
	switch rs {
	case noRecord, noConsul:
		return nil
	case oursNamed:
		o = owner("alloc-me", 0, "uhost-me", 31000, "b-mine")
	case oursUnnamed:
		o = owner("alloc-me", 0, "uhost-me", 31000, "")
	case oursStale:
		o = owner("alloc-me", 0, "uhost-me", 31000, "b-lost")
	case prevByID, prevLive, prevUnknown:
		o = owner("alloc-old", 0, "uhost-h", 32000, "b-old")
	case prevReleasing:
		o = owner("alloc-old", 0, "uhost-h", 32000, "b-old")
		until := now.Add(time.Minute)
		o.ReleasingUntil = &until
	case prevByHostPort:
		o = owner("alloc-old", 0, "uhost-h", 32000, "")
	case prevBackendGone:
		o = owner("alloc-old", 0, "uhost-h", 32000, "b-vanished")
	case prevSameHostPort:
		o = owner("alloc-old", 0, "uhost-me", 31000, "b-mine")
	case otherSlot:
		o = owner("alloc-x", 1, "uhost-h", 32000, "b-old")
	}
	return &o
}

func livenessFor(rs recState) ownership.Liveness {
	return ownership.LivenessFunc(func(_ context.Context, o ownership.Owner) (bool, string, error) {
		switch rs {
		case prevLive:
			return false, "allocation alloc-old is running", nil
		case prevUnknown:
			return false, "", errors.New("nomad unreachable")
		}
		return true, "allocation alloc-old is lost", nil
	})
}

// observe builds what an attempt would have observed, asking liveness
// exactly when the binder does (asksLiveness).
func observe(t *testing.T, bst backendState, rs recState, m mode) observed {
	t.Helper()
	s := observed{backends: []ucloudapi.Backend{bSeed, bOld}, records: rs != noConsul, rec: rs.record(), idx: 7}
	if bst == exists {
		s.backends = append(s.backends, bMine)
		s.mine = &s.backends[2]
	}
	if asksLiveness(me, m, s.rec) {
		s.held, s.why, s.heldErr = ownership.Held(context.Background(), livenessFor(rs), *s.rec, now)
	}
	return s
}

type want struct {
	kind     planKind
	release  string
	gone     string
	released bool
	claim    bool
	resource string
	allocate bool
	reuse    string
	record   bool
	is       error
	says     string
}

var (
	wDone        = want{kind: planDone, reuse: "b-mine"}
	wClaim       = want{kind: planClaim, claim: true, resource: "b-mine", reuse: "b-mine"}
	wRecord      = want{kind: planRecord, reuse: "b-mine", record: true}
	wReplace     = want{kind: planReplace, release: "b-old", claim: true, resource: "b-mine", reuse: "b-mine"}
	wClaimGone   = want{kind: planClaim, gone: "b-vanished", claim: true, resource: "b-mine", reuse: "b-mine"}
	wCreate      = want{kind: planCreate, allocate: true, record: true}
	wClaimCreate = want{kind: planCreate, claim: true, allocate: true, record: true}
	wNoConsulNew = want{kind: planCreate, allocate: true}
	wReplaceNew  = want{kind: planReplace, release: "b-old", claim: true, allocate: true, record: true}
	wCreateGone  = want{kind: planCreate, gone: "b-vanished", claim: true, allocate: true, record: true}
	wCreateOver  = want{kind: planCreate, gone: "b-mine", claim: true, allocate: true, record: true}
	wWaitLive    = want{kind: planWait, says: "held by allocation alloc-old (uhost uhost-h port 32000; allocation alloc-old is running): waiting for it to let go"}
	wWaitRel     = want{kind: planWait, says: "held by allocation alloc-old (uhost uhost-h port 32000; allocation alloc-old is releasing it"}
	wWaitUnknown = want{kind: planWait, says: "learn whether allocation alloc-old"}
	wOtherSlot   = want{kind: planRefuse, is: ErrRefused, says: "names allocation alloc-x of slot default/rmq-orders/namesrv/orders/namesrv/1"}
	wNotOwner    = want{kind: planRefuse, is: ErrNotOwner, says: "is now owned by allocation alloc-old"}
)

// table: every state of our backend × every record state, per mode.
var table = map[mode]map[backendState]map[recState]want{
	modeRegister: {
		exists: {noRecord: wClaim, oursNamed: wDone, oursUnnamed: wRecord, oursStale: wRecord, prevByID: wReplace,
			prevByHostPort: wReplace, prevBackendGone: wClaimGone, prevSameHostPort: wClaim, prevLive: wWaitLive,
			prevReleasing: wWaitRel, prevUnknown: wWaitUnknown, otherSlot: wOtherSlot, noConsul: wDone},
		missing: {noRecord: wClaimCreate, oursNamed: wCreate, oursUnnamed: wCreate, oursStale: wCreate, prevByID: wReplaceNew,
			prevByHostPort: wReplaceNew, prevBackendGone: wCreateGone, prevSameHostPort: wCreateOver, prevLive: wWaitLive,
			prevReleasing: wWaitRel, prevUnknown: wWaitUnknown, otherSlot: wOtherSlot, noConsul: wNoConsulNew},
	},
	modeVerify: {
		exists: {noRecord: wClaim, oursNamed: wDone, oursUnnamed: wRecord, oursStale: wRecord, prevByID: wNotOwner,
			prevByHostPort: wNotOwner, prevBackendGone: wNotOwner, prevSameHostPort: wNotOwner, prevLive: wNotOwner,
			prevReleasing: wNotOwner, prevUnknown: wNotOwner, otherSlot: wOtherSlot, noConsul: wDone},
		missing: {noRecord: wClaimCreate, oursNamed: wCreate, oursUnnamed: wCreate, oursStale: wCreate, prevByID: wNotOwner,
			prevByHostPort: wNotOwner, prevBackendGone: wNotOwner, prevSameHostPort: wNotOwner, prevLive: wNotOwner,
			prevReleasing: wNotOwner, prevUnknown: wNotOwner, otherSlot: wOtherSlot, noConsul: wNoConsulNew},
	},
}

func modeName(m mode) string {
	return map[mode]string{modeRegister: "register", modeVerify: "verify"}[m]
}

func TestDecideTable(t *testing.T) {
	n := 0
	for _, m := range []mode{modeRegister, modeVerify} {
		for _, bst := range []backendState{exists, missing} {
			for _, rs := range recStates {
				w, ok := table[m][bst][rs]
				if !ok {
					t.Errorf("%s, %s, %s: no row in the table", modeName(m), bst, rs)
					continue
				}
				n++
				t.Run(fmt.Sprintf("%s/%s/%s", modeName(m), bst, rs), func(t *testing.T) {
					check(t, decide(me, m, key, progress{}, observe(t, bst, rs, m)), w)
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
		bst  backendState
		rs   recState
		pr   progress
		want want
	}{
		{"predecessor's backend gone after our release whose reply was lost: counted as released", exists, prevBackendGone,
			progress{releasing: map[string]bool{"b-vanished": true}},
			want{kind: planClaim, gone: "b-vanished", released: true, claim: true, resource: "b-mine", reuse: "b-mine"}},
		{"predecessor's backend released already: not again", exists, prevByID, progress{released: []string{"b-old"}}, wClaim},
		{"our created backend listed at last: recorded", exists, oursUnnamed, progress{allocated: "b-mine"}, wRecord},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check(t, decide(me, modeRegister, key, tc.pr, observe(t, tc.bst, tc.rs, modeRegister)), tc.want)
		})
	}
}

func check(t *testing.T, p plan, w want) {
	t.Helper()
	got := want{kind: p.kind, release: p.release, gone: p.gone, released: p.released, claim: p.claim, resource: p.resource,
		allocate: p.allocate, reuse: p.reuse, record: p.record, is: w.is, says: w.says}
	if got != w {
		t.Fatalf("plan %+v (%v)\nwant %+v", got, p.err, w)
	}
	err := p.Err()
	switch w.kind {
	case planWait:
		if err == nil || IsPermanent(err) {
			t.Fatalf("wait: %v, want a retryable error", err)
		}
	case planRefuse:
		if !IsPermanent(err) {
			t.Fatalf("refusal %v is not permanent", err)
		}
	default:
		if err != nil {
			t.Fatalf("plan to act has an error: %v", err)
		}
		if p.claim && p.idx != 7 {
			t.Fatalf("claim over index %d, want the observed 7", p.idx)
		}
		return
	}
	if w.is != nil && !errors.Is(err, w.is) {
		t.Errorf("error %v is not %v", err, w.is)
	}
	if msg := err.Error(); !strings.Contains(msg, w.says) || msg[:1] != strings.ToLower(msg[:1]) {
		t.Errorf("error %q: want it lower case and saying %q", msg, w.says)
	}
}

func TestDecideRelease(t *testing.T) {
	rec := func(o ownership.Owner) *ownership.Owner { return &o }
	releasing := owner("alloc-me", 0, "uhost-me", 31000, "b-mine")
	until := now.Add(time.Minute)
	releasing.ReleasingUntil = &until
	listed := []ucloudapi.Backend{bSeed, bMine}
	tests := []struct {
		name string
		s    releaseObserved
		kind releaseKind
		id   string
		mark bool
	}{
		{"no record: not ours", releaseObserved{records: true}, releaseNothing, "", false},
		{"the replacement owns the slot", releaseObserved{records: true, rec: rec(owner("alloc-new", 0, "uhost-me", 31000, "b-mine"))}, releaseNothing, "", false},
		{"ours: mark, release by id", releaseObserved{records: true, rec: rec(owner("alloc-me", 0, "uhost-me", 31000, "b-mine")), backends: listed}, releaseBackend, "b-mine", true},
		{"ours, already marked: release", releaseObserved{records: true, rec: &releasing, backends: listed}, releaseBackend, "b-mine", false},
		{"ours, claimed before its id was known: by host and port", releaseObserved{records: true, rec: rec(owner("alloc-me", 0, "uhost-me", 31000, "")), backends: listed}, releaseBackend, "b-mine", true},
		{"ours, backend gone: record dropped", releaseObserved{records: true, rec: rec(owner("alloc-me", 0, "uhost-me", 31000, "b-mine")), backends: []ucloudapi.Backend{bSeed}}, releaseDrop, "", false},
		{"ours, unnamed and gone: record dropped", releaseObserved{records: true, rec: rec(owner("alloc-me", 0, "uhost-me", 31000, "")), backends: []ucloudapi.Backend{bSeed}}, releaseDrop, "", false},
		{"ours, vserver gone: record dropped", releaseObserved{records: true, rec: rec(owner("alloc-me", 0, "uhost-me", 31000, "b-mine")), vserverGone: true}, releaseDrop, "", false},
		{"no consul: this host and port's backend", releaseObserved{backends: listed}, releaseBackend, "b-mine", false},
		{"no consul: nothing of this host and port", releaseObserved{backends: []ucloudapi.Backend{bSeed, bOld}}, releaseDrop, "", false},
		{"no consul: vserver gone", releaseObserved{vserverGone: true}, releaseDrop, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.now, tc.s.idx = now, 9
			p := decideRelease(me, tc.s)
			if p.kind != tc.kind || p.id != tc.id || p.mark != tc.mark || p.Err() != nil {
				t.Fatalf("plan %s id=%q mark=%v, want %s id=%q mark=%v", p.kind, p.id, p.mark, tc.kind, tc.id, tc.mark)
			}
			if p.mark && (p.idx != 9 || p.rec.AllocID != "alloc-me") {
				t.Fatalf("mark %+v at %d", p.rec, p.idx)
			}
		})
	}
}

// TestDecideDisabled: our backend, disabled by hand, is enabled again by a
// Verify (drift) or a Register, whatever else the plan does; a backend of
// another slot is never enabled by us.
func TestDecideDisabled(t *testing.T) {
	off := bMine
	off.Enabled = false
	mine := owner("alloc-me", 0, "uhost-me", 31000, "b-mine")
	for _, m := range []mode{modeRegister, modeVerify} {
		p := decide(me, m, key, progress{}, observed{backends: []ucloudapi.Backend{off}, mine: &off, records: true, rec: &mine, idx: 7})
		if p.kind != planEnable || !p.enable || p.reuse != "b-mine" || p.Err() != nil {
			t.Errorf("mode %d, ours disabled: plan %+v", m, p)
		}
		p = decide(me, m, key, progress{}, observed{backends: []ucloudapi.Backend{off}, mine: &off, records: true})
		if p.kind != planClaim || !p.enable {
			t.Errorf("mode %d, disabled without record: plan %+v (want claim and enable)", m, p)
		}
	}
	other := owner("alloc-x", 1, "uhost-me", 31000, "b-mine")
	p := decide(me, modeVerify, key, progress{}, observed{backends: []ucloudapi.Backend{off}, mine: &off, records: true, rec: &other})
	if p.kind != planRefuse {
		t.Errorf("another slot's record: plan %+v, want refuse", p)
	}
}
