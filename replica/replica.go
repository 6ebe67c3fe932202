// Package replica says what a replica of a replicated (controller mode)
// broker group is: master or slave, its broker id, and whether it is in
// the group's SyncStateSet. The driver's broker keeper observes each
// running replica (its HA service, and the controllers' view of its
// group), derives a State here (pure), emits a task event when it
// changes, and records it in Consul KV; `rmq-driver status` reads the
// records. See docs/replication.md, "Watching a group".
package replica

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/rmqadmin"
)

// Roles.
const (
	RoleMaster = "master"
	RoleSlave  = "slave"
)

// State is one replica as last observed. Role "" means not known.
type State struct {
	BrokerName string `json:"broker_name"`
	// Role is master or slave: the controllers' view when they know this
	// replica, else the broker's own.
	Role string `json:"role"`
	// BrokerID is the id the controllers gave the replica (1, 2, ...;
	// 0 while unknown). RocketMQ registers a master under id 0 with the
	// NameServers; this is the controllers' id, which does not change
	// when the replica's role does.
	BrokerID int64 `json:"broker_id"`
	// MasterID and MasterAddr are the group's master (its
	// brokerIP1:listenPort), as the controllers hold it.
	MasterID   int64  `json:"master_id"`
	MasterAddr string `json:"master_addr"`
	// HAMasterAddr is where a slave's HA client replicates from (the
	// master's brokerIP2:haListenPort); "" for a master or while unknown.
	HAMasterAddr string `json:"ha_master_addr"`
	// SyncKnown says whether the controllers answered: only then do
	// InSync, SyncSetSize and Replicas mean anything.
	SyncKnown bool `json:"sync_known"`
	// InSync says whether the replica is in the group's SyncStateSet.
	InSync bool `json:"in_sync"`
	// SyncSetSize is the SyncStateSet's size; Replicas the group's
	// replicas the controllers count: the alive ones and the members of
	// the SyncStateSet (a replica lost for good stays in the controllers'
	// table, not alive: it is not counted).
	SyncSetSize int `json:"sync_set_size"`
	Replicas    int `json:"replicas"`
	MasterEpoch int `json:"master_epoch"`
	// Problem says why something is not known ("" when all is).
	Problem string `json:"problem,omitempty"`
}

// Observation is what the keeper read for one pass: the broker's config
// and HA status, and the controllers' view of its group.
type Observation struct {
	// Self is the replica's brokerIP1:listenPort, the address the
	// controllers know it by.
	Self string
	// Conf is the broker's running config (brokerName, brokerId,
	// brokerRole).
	Conf map[string]string
	// HA is the broker's HA status (nil when the call failed: HAErr).
	HA    *rmqadmin.HAStatus
	HAErr error
	// Group is the controllers' view of the broker name; nil when they
	// did not answer (SyncErr) or do not know the name yet.
	Group   *rmqadmin.ReplicasInfo
	SyncErr error
}

// Derive turns an observation into the replica's state.
func Derive(o Observation) State {
	s := State{BrokerName: o.Conf["brokerName"]}
	var problems []string
	switch {
	case o.HA != nil && o.HA.Master:
		s.Role = RoleMaster
	case o.HA != nil:
		s.Role, s.HAMasterAddr = RoleSlave, o.HA.Client.MasterAddr
	default:
		switch o.Conf["brokerRole"] {
		case "SYNC_MASTER", "ASYNC_MASTER":
			s.Role = RoleMaster
		case "SLAVE":
			s.Role = RoleSlave
		}
		if o.HAErr != nil {
			problems = append(problems, "broker HA status: "+o.HAErr.Error())
		}
	}
	switch g := o.Group; {
	case o.SyncErr != nil:
		problems = append(problems, "controllers: "+o.SyncErr.Error())
	case g == nil:
		problems = append(problems, "the controllers do not know broker "+s.BrokerName+" yet")
	default:
		s.MasterID, s.MasterAddr, s.MasterEpoch = g.MasterBrokerID, g.MasterAddress, g.MasterEpoch
		self, in, found := find(g, o.Self, confID(o.Conf))
		if !found {
			problems = append(problems, "the controllers do not know "+o.Self+" yet")
			break
		}
		s.BrokerID, s.SyncKnown, s.InSync, s.SyncSetSize = self.BrokerID, true, in, len(g.InSync)
		s.Replicas = len(g.InSync)
		for _, r := range g.NotInSync {
			if r.Alive {
				s.Replicas++
			}
		}
		switch {
		case g.MasterBrokerID == 0:
			problems = append(problems, "no master elected yet")
		case g.MasterBrokerID == self.BrokerID:
			s.Role, s.HAMasterAddr = RoleMaster, ""
		default:
			s.Role = RoleSlave
		}
	}
	s.Problem = strings.Join(problems, "; ")
	return s
}

// confID is the broker's own brokerId when it is a controller-assigned
// one (a slave's); a master runs with 0, a replica not registered yet
// with -1.
func confID(conf map[string]string) int64 {
	id, err := strconv.ParseInt(conf["brokerId"], 10, 64)
	if err != nil || id < 1 {
		return 0
	}
	return id
}

// find picks this replica among the group's: by its own id when it has
// one, else by address, an alive entry before a dead one and the newest
// (highest) id first: a replica replaced on the same host and ports
// leaves its predecessor's entry at the same address.
func find(g *rmqadmin.ReplicasInfo, addr string, id int64) (rmqadmin.Replica, bool, bool) {
	var best rmqadmin.Replica
	bestIn, found := false, false
	consider := func(r rmqadmin.Replica, in bool) {
		if id != 0 {
			if r.BrokerID == id && r.Address == addr {
				best, bestIn, found = r, in, true
			}
			return
		}
		if r.Address != addr {
			return
		}
		if !found || (r.Alive && !best.Alive) || (r.Alive == best.Alive && r.BrokerID > best.BrokerID) {
			best, bestIn, found = r, in, true
		}
	}
	for _, r := range g.InSync {
		consider(r, true)
	}
	for _, r := range g.NotInSync {
		consider(r, false)
	}
	if !found && id != 0 {
		return find(g, addr, 0)
	}
	return best, bestIn, found
}

// Known reports whether the state is complete: role, id and sync state.
func (s State) Known() bool { return s.Role != "" && s.BrokerID != 0 && s.SyncKnown }

// SyncText is the sync state as words: "in sync set (2 of 3)", "not in
// sync set (1 of 3)", "sync state unknown".
func (s State) SyncText() string {
	if !s.SyncKnown {
		return "sync state unknown"
	}
	in := "in sync set"
	if !s.InSync {
		in = "not in sync set"
	}
	return fmt.Sprintf("%s (%d of %d)", in, s.SyncSetSize, s.Replicas)
}

// Summary is the state in one line, the text of the task event:
// "master, broker id 1, in sync set (2 of 3)" or "slave of
// 203.0.113.10:30911 (replicates from 10.9.0.11:30912), broker id 2, in
// sync set (2 of 3)".
func (s State) Summary() string {
	var b strings.Builder
	switch s.Role {
	case RoleMaster:
		b.WriteString("master")
	case RoleSlave:
		b.WriteString("slave")
		if s.MasterAddr != "" {
			b.WriteString(" of " + s.MasterAddr)
		}
		if s.HAMasterAddr != "" {
			b.WriteString(" (replicates from " + s.HAMasterAddr + ")")
		}
	default:
		b.WriteString("role unknown")
	}
	if s.BrokerID != 0 {
		fmt.Fprintf(&b, ", broker id %d", s.BrokerID)
	} else {
		b.WriteString(", broker id unknown")
	}
	b.WriteString(", " + s.SyncText())
	return b.String()
}

// Annotations are the state as task event details.
func (s State) Annotations() map[string]string {
	m := map[string]string{"role": s.Role, "broker_id": strconv.FormatInt(s.BrokerID, 10), "broker_name": s.BrokerName}
	if s.SyncKnown {
		m["in_sync"] = strconv.FormatBool(s.InSync)
		m["sync_set"] = fmt.Sprintf("%d/%d", s.SyncSetSize, s.Replicas)
	}
	if s.MasterAddr != "" {
		m["master"] = s.MasterAddr
	}
	if s.HAMasterAddr != "" {
		m["ha_master"] = s.HAMasterAddr
	}
	return m
}

// Same reports whether two states say the same thing to an operator
// (the epoch and problem texts aside).
func Same(a, b State) bool {
	a.MasterEpoch, b.MasterEpoch, a.Problem, b.Problem = 0, 0, "", ""
	return a == b
}

// RecordRefresh is how often a replica's record is rewritten while its
// state stays the same, so that its age tells a live keeper from a gone
// one.
const RecordRefresh = time.Minute

// Plan is what the keeper does after a pass.
type Plan struct {
	// Event: the state is complete and differs from the last one
	// announced; announce it (and remember it as announced).
	Event bool
	// Write: record the state in Consul (it changed, or the record is
	// due for its refresh).
	Write bool
}

// Decide says what to do with the state of a pass, given the last state
// announced (nil: none yet), the last state written and when.
// Incomplete states (the controllers did not answer, no id yet) are never
// announced, so a controller restart does not flood the task's events;
// they are recorded, so status shows what is not known and why.
func Decide(announced, written *State, writtenAt time.Time, cur State, now time.Time) Plan {
	var p Plan
	if cur.Known() && (announced == nil || !Same(*announced, cur)) {
		p.Event = true
	}
	if written == nil || !Same(*written, cur) || written.Problem != cur.Problem || now.Sub(writtenAt) >= RecordRefresh {
		p.Write = true
	}
	return p
}
