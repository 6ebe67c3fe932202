package driver

import (
	"errors"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

func TestInPlace(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	later := now.Add(time.Minute)
	own := ownership.Owner{AllocID: "a1", Cluster: "orders", Role: RoleBroker}
	eip := Binding{Kind: BindingEIP, EIPID: "eip-1", UHostID: "uhost-a", Owner: own}
	nsOwner := ownership.Owner{AllocID: "n1", Cluster: "orders", Role: RoleNameServer}
	be := Binding{Kind: BindingBackend, ULBID: "ulb", VServerID: "vs", UHostID: "uhost-a", Port: 31000, Owner: nsOwner}
	_, eipKey := ownershipKey(&eip)
	_, beKey := ownershipKey(&be)
	recs := func(m map[string]ownership.Owner) map[string]ownership.Owner { return m }
	withBackend := func(o ownership.Owner, id string) ownership.Owner { o.Resource = id; return o }
	releasing := own
	releasing.ReleasingUntil = &later
	bound := map[string]*ucloudapi.EIP{"eip-1": {ID: "eip-1", BoundType: "uhost", BoundID: "uhost-a"}}
	vs := map[vserverKey][]ucloudapi.Backend{{"ulb", "vs"}: {{ID: "b1", ResourceID: "uhost-a", Port: 31000, Enabled: true}}}
	for _, tc := range []struct {
		name      string
		b         Binding
		s         passSnapshot
		ok, known bool
	}{
		{"eip bound here, record ours", eip, passSnapshot{eips: bound, records: recs(map[string]ownership.Owner{"eip/" + eipKey: own})}, true, true},
		{"eip bound here, no consul", eip, passSnapshot{eips: bound}, true, true},
		{"eip free", eip, passSnapshot{eips: map[string]*ucloudapi.EIP{"eip-1": {ID: "eip-1"}}}, false, true},
		{"eip elsewhere", eip, passSnapshot{eips: map[string]*ucloudapi.EIP{"eip-1": {ID: "eip-1", BoundType: "uhost", BoundID: "uhost-b"}}}, false, true},
		{"eip on a ulb", eip, passSnapshot{eips: map[string]*ucloudapi.EIP{"eip-1": {ID: "eip-1", BoundType: "ulb", BoundID: "uhost-a"}}}, false, true},
		{"eip missing", eip, passSnapshot{eips: map[string]*ucloudapi.EIP{}}, false, true},
		{"eip unreadable", eip, passSnapshot{eipErr: errors.New("503")}, false, false},
		{"record deleted", eip, passSnapshot{eips: bound, records: recs(map[string]ownership.Owner{})}, false, true},
		{"record of another alloc", eip, passSnapshot{eips: bound, records: recs(map[string]ownership.Owner{"eip/" + eipKey: {AllocID: "a2"}})}, false, true},
		{"record releasing", eip, passSnapshot{eips: bound, records: recs(map[string]ownership.Owner{"eip/" + eipKey: releasing})}, false, true},
		{"records unreadable", eip, passSnapshot{eips: bound, recErr: errors.New("consul down")}, false, false},
		{"backend listed, enabled, recorded", be, passSnapshot{backends: vs, vsErr: map[vserverKey]error{}, records: recs(map[string]ownership.Owner{"backend/" + beKey: withBackend(nsOwner, "b1")})}, true, true},
		{"backend recorded without its id", be, passSnapshot{backends: vs, vsErr: map[vserverKey]error{}, records: recs(map[string]ownership.Owner{"backend/" + beKey: nsOwner})}, false, true},
		{"backend disabled", be, passSnapshot{backends: map[vserverKey][]ucloudapi.Backend{{"ulb", "vs"}: {{ID: "b1", ResourceID: "uhost-a", Port: 31000}}}, vsErr: map[vserverKey]error{}}, false, true},
		{"backend missing", be, passSnapshot{backends: map[vserverKey][]ucloudapi.Backend{{"ulb", "vs"}: nil}, vsErr: map[vserverKey]error{}}, false, true},
		{"vserver unreadable", be, passSnapshot{backends: map[vserverKey][]ucloudapi.Backend{}, vsErr: map[vserverKey]error{{"ulb", "vs"}: errors.New("503")}}, false, false},
	} {
		ok, known := inPlace(tc.b, tc.s, now)
		if ok != tc.ok || known != tc.known {
			t.Errorf("%s: inPlace = %v, %v; want %v, %v", tc.name, ok, known, tc.ok, tc.known)
		}
	}
}
