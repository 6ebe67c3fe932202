package replica

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/rmqnomad/rocketmq-nomad-driver/rmqadmin"
)

func TestDecideHandoff(t *testing.T) {
	conf := func(id, role string) map[string]string {
		return map[string]string{"brokerName": "broker-0", "brokerId": id, "brokerRole": role}
	}
	three := []rmqadmin.Replica{rep(3, eipC, true), rep(1, eipA, true), rep(2, eipB, true)}
	for _, tc := range []struct {
		name       string
		obs        HandoffObservation
		elect      bool
		candidates []int64
		skip       string // a substring; "" means no skip
	}{
		{"not controller mode", HandoffObservation{Self: eipA, Conf: conf("0", "SYNC_MASTER")}, false, nil, ""},
		{"a slave", HandoffObservation{ControllerMode: true, Self: eipB, Conf: conf("2", "SLAVE"), Group: group(1, three)}, false, nil, ""},
		{"the master with in-sync slaves: the lowest id first",
			HandoffObservation{ControllerMode: true, Self: eipA, Conf: conf("0", "SYNC_MASTER"), Group: group(1, three)}, true, []int64{2, 3}, ""},
		{"the master with one in-sync slave; a dead one and one out of the set are no candidates",
			HandoffObservation{ControllerMode: true, Self: eipB, Conf: conf("0", "SYNC_MASTER"),
				Group: group(2, []rmqadmin.Replica{rep(2, eipB, true), rep(1, eipA, false), rep(4, eipA, true)}, rep(3, eipC, true))}, true, []int64{4}, ""},
		{"the master alone in the set", HandoffObservation{ControllerMode: true, Self: eipA, Conf: conf("0", "SYNC_MASTER"),
			Group: group(1, []rmqadmin.Replica{rep(1, eipA, true)}, rep(2, eipB, true), rep(3, eipC, false))}, false, nil,
			"no other alive replica is in the SyncStateSet (1 in the set, of 2 replicas)"},
		{"controllers unreachable", HandoffObservation{ControllerMode: true, Self: eipA, Conf: conf("0", "SYNC_MASTER"),
			SyncErr: errors.New("no controller answered")}, false, nil, "the controllers cannot be reached: no controller answered"},
		{"the broker does not answer", HandoffObservation{ControllerMode: true, Self: eipA, ConfErr: errors.New("connection refused")},
			false, nil, "the broker does not answer: connection refused"},
		{"the controllers do not know the name", HandoffObservation{ControllerMode: true, Self: eipA, Conf: conf("-1", "SLAVE")},
			false, nil, "the controllers do not know broker broker-0"},
		{"the controllers do not know this replica", HandoffObservation{ControllerMode: true, Self: eipC, Conf: conf("-1", "SLAVE"),
			Group: group(1, three[1:])}, false, nil, "do not know " + eipC},
		{"after a handoff the old master is a slave: nothing more to do", HandoffObservation{ControllerMode: true, Self: eipA,
			Conf: conf("0", "SYNC_MASTER"), Group: group(2, three)}, false, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := DecideHandoff(tc.obs)
			var ids []int64
			for _, c := range h.Candidates {
				ids = append(ids, c.BrokerID)
			}
			if h.Elect != tc.elect || !reflect.DeepEqual(ids, tc.candidates) {
				t.Errorf("elect %v candidates %v, want %v %v (%+v)", h.Elect, ids, tc.elect, tc.candidates, h)
			}
			if (tc.skip == "") != (h.Skip == "") || !strings.Contains(h.Skip, tc.skip) {
				t.Errorf("skip %q, want %q", h.Skip, tc.skip)
			}
			if h.Elect && h.SelfID == 0 {
				t.Errorf("an election without the replica's own id: %+v", h)
			}
		})
	}
}
