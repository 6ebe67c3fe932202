package collector

import (
	"fmt"
	"strings"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
)

// Observed is one owner record and what was learned about its owner.
type Observed struct {
	Entry ownership.Entry
	// Gone: the scheduler says the owner's allocation has ended (or does
	// not know it); Why says what it saw. LivenessErr: it could not be
	// asked.
	Gone        bool
	Why         string
	LivenessErr error
}

// Verb is what to do with one record.
type Verb string

// Verbs of a plan.
const (
	// Keep: the owner is alive, releasing, or could not be asked.
	Keep Verb = "keep"
	// Collect: release the resource as its gone owner would have, then
	// delete the record.
	Collect Verb = "collect"
	// Drop: the record cannot be acted on (unparseable key); left for an
	// operator, reported as an orphan.
	Drop Verb = "orphan"
)

// Step is one decision.
type Step struct {
	Verb   Verb
	Entry  ownership.Entry
	Reason string
}

// Decide is the collector's pure decision: for each observed record, keep it
// or collect it. A record is collected only when the scheduler says its
// owner has ended and nobody is releasing it; every doubt keeps it. At most
// max records are collected per pass (0: no limit), oldest first as listed.
func Decide(obs []Observed, now time.Time, max int) []Step {
	steps := make([]Step, 0, len(obs))
	collected := 0
	for _, o := range obs {
		e := o.Entry
		switch {
		case e.Kind == ownership.KindBackend && !validBackendKey(e.Key):
			steps = append(steps, Step{Verb: Drop, Entry: e, Reason: fmt.Sprintf("backend record key %q is not <ulb>/<vserver>/<cluster>/<role>/<index>", e.Key)})
		case e.Owner.Releasing(now):
			steps = append(steps, Step{Verb: Keep, Entry: e, Reason: "its owner is releasing it"})
		case o.LivenessErr != nil:
			steps = append(steps, Step{Verb: Keep, Entry: e, Reason: "cannot learn whether its owner lives: " + o.LivenessErr.Error()})
		case !o.Gone:
			steps = append(steps, Step{Verb: Keep, Entry: e, Reason: o.Why})
		case max > 0 && collected >= max:
			steps = append(steps, Step{Verb: Keep, Entry: e, Reason: "owner gone; left for the next pass (per-pass limit)"})
		default:
			collected++
			steps = append(steps, Step{Verb: Collect, Entry: e, Reason: o.Why})
		}
	}
	return steps
}

// validBackendKey checks <ulb>/<vserver>/<cluster>/<role>/<index>.
func validBackendKey(key string) bool {
	parts := strings.Split(key, "/")
	return len(parts) == 5 && parts[0] != "" && parts[1] != ""
}

// backendTarget splits a backend record key into its ULB and VServer.
func backendTarget(key string) (ulb, vserver string) {
	parts := strings.Split(key, "/")
	return parts[0], parts[1]
}
