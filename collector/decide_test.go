package collector

import (
	"errors"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	later, earlier := now.Add(time.Minute), now.Add(-time.Minute)
	eip := func(alloc string) ownership.Entry {
		return ownership.Entry{Kind: ownership.KindEIP, Key: "eip-" + alloc, Owner: ownership.Owner{AllocID: alloc, Cluster: "c", Role: "broker"}}
	}
	backend := func(key string) ownership.Entry {
		return ownership.Entry{Kind: ownership.KindBackend, Key: key, Owner: ownership.Owner{AllocID: "a", Cluster: "c", Role: "namesrv"}}
	}
	releasing := func(e ownership.Entry, until time.Time) ownership.Entry {
		e.Owner.ReleasingUntil = &until
		return e
	}
	tests := []struct {
		name string
		obs  Observed
		want Verb
	}{
		{"live owner is kept", Observed{Entry: eip("a1"), Gone: false, Why: "running"}, Keep},
		{"gone owner is collected", Observed{Entry: eip("a1"), Gone: true, Why: "lost"}, Collect},
		{"unknown liveness is kept", Observed{Entry: eip("a1"), Gone: true, LivenessErr: errors.New("nomad down")}, Keep},
		{"releasing owner is kept even if gone", Observed{Entry: releasing(eip("a1"), later), Gone: true}, Keep},
		{"expired releasing mark of a gone owner is collected", Observed{Entry: releasing(eip("a1"), earlier), Gone: true}, Collect},
		{"expired releasing mark of a live owner is kept", Observed{Entry: releasing(eip("a1"), earlier), Gone: false}, Keep},
		{"gone backend is collected", Observed{Entry: backend("ulb-1/vs-1/c/namesrv/0"), Gone: true}, Collect},
		{"malformed backend key is an orphan", Observed{Entry: backend("ulb-1/c/0"), Gone: true}, Drop},
		{"malformed backend key of a live owner is an orphan too", Observed{Entry: backend("ulb-1//c/namesrv/0"), Gone: false}, Drop},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			steps := Decide([]Observed{tc.obs}, now, 0)
			if len(steps) != 1 || steps[0].Verb != tc.want {
				t.Fatalf("Decide = %+v, want %s", steps, tc.want)
			}
		})
	}
}

func TestDecidePerPassLimit(t *testing.T) {
	var obs []Observed
	for i := 0; i < 5; i++ {
		obs = append(obs, Observed{Entry: ownership.Entry{Kind: ownership.KindEIP, Key: "e", Owner: ownership.Owner{AllocID: "a"}}, Gone: true})
	}
	n := 0
	for _, s := range Decide(obs, time.Now(), 2) {
		if s.Verb == Collect {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("collected %d with a limit of 2", n)
	}
}
