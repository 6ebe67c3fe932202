package replica

import (
	"fmt"
	"sort"

	"github.com/rmqnomad/rocketmq-nomad-driver/rmqadmin"
)

// The master handoff before a replica stops (docs/replication.md, "The
// master handoff"): when the driver stops the group's master and another
// replica is in the SyncStateSet, it asks the controllers to elect that
// one first, so the group has a master again at once, not only after the
// controllers noticed the old one gone. DecideHandoff is the decision,
// pure; the driver observes and acts.

// HandoffObservation is what the driver read of a replica that is about
// to stop.
type HandoffObservation struct {
	// ControllerMode says whether the task is a replica of a controller
	// mode group (rocketmq.controllers set).
	ControllerMode bool
	// Self is the replica's brokerIP1:listenPort.
	Self string
	// Conf is the broker's running config; nil when it did not answer
	// (ConfErr).
	Conf    map[string]string
	ConfErr error
	// Group is the controllers' view of the broker name; nil when they
	// did not answer (SyncErr) or do not know the name.
	Group   *rmqadmin.ReplicasInfo
	SyncErr error
}

// Handoff is the decision.
type Handoff struct {
	// Elect says to ask the controllers for an election of Candidates[0]
	// (then the next one if the controllers refuse it).
	Elect      bool
	BrokerName string
	// SelfID is the stopping replica's controller id (0 when unknown).
	SelfID int64
	// Candidates are the other alive replicas of the SyncStateSet, lowest
	// broker id first.
	Candidates []rmqadmin.Replica
	// Skip says why there is no handoff when one could have been wanted
	// (the replica may be the master, but it cannot be told or there is
	// nobody to hand to); "" when there is nothing to hand off (not a
	// controller-mode replica, or a slave). A Skip is worth a warning and
	// an event; a silent no-handoff is not.
	Skip string
}

// DecideHandoff says whether to hand the master role over before the
// replica stops, and to whom. It is idempotent: once another replica is
// master, the stopping one is a slave and the answer is "nothing to do".
func DecideHandoff(o HandoffObservation) Handoff {
	if !o.ControllerMode {
		return Handoff{}
	}
	if o.Conf == nil {
		reason := "the broker does not answer"
		if o.ConfErr != nil {
			reason += ": " + o.ConfErr.Error()
		}
		return Handoff{Skip: reason}
	}
	h := Handoff{BrokerName: o.Conf["brokerName"]}
	switch {
	case h.BrokerName == "":
		h.Skip = "the broker reports no brokerName"
		return h
	case o.SyncErr != nil:
		h.Skip = "the controllers cannot be reached: " + o.SyncErr.Error()
		return h
	case o.Group == nil:
		h.Skip = "the controllers do not know broker " + h.BrokerName
		return h
	}
	g := o.Group
	self, _, found := find(g, o.Self, confID(o.Conf))
	if !found {
		h.Skip = fmt.Sprintf("the controllers do not know %s in %s", o.Self, h.BrokerName)
		return h
	}
	h.SelfID = self.BrokerID
	if g.MasterBrokerID != self.BrokerID {
		return h // a slave (or no master at all): nothing to hand over
	}
	for _, r := range g.InSync {
		if r.BrokerID != self.BrokerID && r.Alive {
			h.Candidates = append(h.Candidates, r)
		}
	}
	sort.Slice(h.Candidates, func(i, j int) bool { return h.Candidates[i].BrokerID < h.Candidates[j].BrokerID })
	if len(h.Candidates) == 0 {
		replicas := len(g.InSync)
		for _, r := range g.NotInSync {
			if r.Alive {
				replicas++
			}
		}
		h.Skip = fmt.Sprintf("no other alive replica is in the SyncStateSet (%d in the set, of %d replicas)", len(g.InSync), replicas)
		return h
	}
	h.Elect = true
	return h
}
