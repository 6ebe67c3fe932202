package ucloudsim

import (
	"strings"
	"testing"
	"time"

	"github.com/ucloud/ucloud-sdk-go/services/ulb"
)

// A request field the simulator does not model is refused (230, naming the
// field), and nothing changes: never accepted and dropped.
func TestRefusesUnmodelledParameters(t *testing.T) {
	srv := startSim(t, Config{})
	c := newClients(srv)
	before := srv.Snapshot()

	cases := []struct {
		field string
		call  func() error
	}{
		{"CouponId", func() error {
			r := c.unet.NewAllocateEIPRequest()
			r.Bandwidth, r.OperatorName, r.CouponId = ptr(1), ptr("Bgp"), ptr("coupon-1")
			_, err := c.unet.AllocateEIP(r)
			return err
		}},
		{"ShareBandwidthId", func() error {
			r := c.unet.NewAllocateEIPRequest()
			r.Bandwidth, r.OperatorName, r.ShareBandwidthId = ptr(0), ptr("Bgp"), ptr("bwshare-1")
			_, err := c.unet.AllocateEIP(r)
			return err
		}},
		{"PayMode", func() error {
			r := c.unet.NewAllocateEIPRequest()
			r.Bandwidth, r.OperatorName, r.PayMode = ptr(1), ptr("Bgp"), ptr("ShareBandwidth")
			_, err := c.unet.AllocateEIP(r)
			return err
		}},
		{"PrivateIP", func() error {
			r := c.unet.NewBindEIPRequest()
			r.EIPId, r.ResourceType, r.ResourceId, r.PrivateIP = ptr("eip-free"), ptr("uhost"), ptr("uhost-a"), ptr("10.9.0.11")
			_, err := c.unet.BindEIP(r)
			return err
		}},
		{"FirewallId", func() error {
			r := c.ulb.NewCreateULBRequest()
			r.FirewallId = ptr("firewall-1")
			_, err := c.ulb.CreateULB(r)
			return err
		}},
		{"SecurityPolicyId", func() error {
			r := c.ulb.NewCreateVServerRequest()
			r.ULBId, r.Protocol, r.FrontendPort, r.SecurityPolicyId = ptr("ulb-t"), ptr("HTTPS"), ptr(443), ptr("Default")
			_, err := c.ulb.CreateVServer(r)
			return err
		}},
		{"ResourceIP", func() error {
			r := c.ulb.NewAllocateBackendRequest()
			r.ULBId, r.VServerId, r.ResourceType, r.ResourceId, r.ResourceIP = ptr("ulb-t"), ptr("vserver-t"), ptr("UHost"), ptr("uhost-a"), ptr("10.9.0.11")
			_, err := c.ulb.AllocateBackend(r)
			return err
		}},
		{"BucketName", func() error {
			r := c.ulb.NewUpdateULBAttributeRequest()
			r.ULBId, r.Name, r.BucketName = ptr("ulb-t"), ptr("renamed"), ptr("logs")
			_, err := c.ulb.UpdateULBAttribute(r)
			return err
		}},
		{"EnableLog", func() error {
			r := c.ulb.NewUpdateULBAttributeRequest()
			r.ULBId, r.Name, r.EnableLog = ptr("ulb-t"), ptr("renamed"), ptr(1)
			_, err := c.ulb.UpdateULBAttribute(r)
			return err
		}},
		{"IsWAFOn", func() error {
			r := c.ulb.NewUpdateULBAttributeRequest()
			r.ULBId, r.Name, r.IsWAFOn = ptr("ulb-t"), ptr("renamed"), ptr("Yes")
			_, err := c.ulb.UpdateULBAttribute(r)
			return err
		}},
		{"IsolationGroup", func() error {
			r := c.uhost.NewDescribeUHostInstanceRequest()
			r.IsolationGroup = ptr("ig-1")
			_, err := c.uhost.DescribeUHostInstance(r)
			return err
		}},
	}
	for _, tc := range cases {
		err := tc.call()
		wantCode(t, err, RetCodeParamsNotAvailable)
		if !strings.Contains(err.Error(), "["+tc.field+"]") {
			t.Errorf("%s: error does not name the field: %v", tc.field, err)
		}
	}
	after := srv.Snapshot()
	if len(after.EIPs) != len(before.EIPs) || len(after.ULBs) != len(before.ULBs) ||
		after.ULBs[0].Name != before.ULBs[0].Name || after.EIPs[0].ResourceID != "" {
		t.Fatalf("a refused call changed the account: %+v", after)
	}
	// The values that keep logging and the WAF off are what the simulator
	// models, and are accepted.
	r := c.ulb.NewUpdateULBAttributeRequest()
	r.ULBId, r.Remark, r.EnableLog, r.IsWAFOn = ptr("ulb-t"), ptr("no log, no waf"), ptr(0), ptr("No")
	_, err := c.ulb.UpdateULBAttribute(r)
	mustOK(t, err)
}

func TestVServerAttributeRules(t *testing.T) {
	srv := startSim(t, Config{})
	c := newClients(srv)
	refused := []struct {
		field string
		f     map[string]any
	}{
		{"MonitorType", map[string]any{"Protocol": "TCP", "FrontendPort": 1000, "MonitorType": "Path", "Path": "/healthz"}},
		{"MonitorType", map[string]any{"Protocol": "UDP", "ListenType": "PacketsTransmit", "FrontendPort": 1001, "MonitorType": "Path"}},
		{"MonitorType", map[string]any{"Protocol": "HTTP", "FrontendPort": 1002, "MonitorType": "Ping"}},
		{"Method", map[string]any{"Protocol": "TCP", "ListenType": "PacketsTransmit", "FrontendPort": 1003, "Method": "Leastconn"}},
		{"Method", map[string]any{"Protocol": "TCP", "FrontendPort": 1004, "Method": "ConsistentHash"}},
		{"ForwardPort", map[string]any{"Protocol": "TCP", "FrontendPort": 1005, "ForwardPort": 443}},
		{"PersistenceInfo", map[string]any{"Protocol": "HTTP", "FrontendPort": 1006, "PersistenceType": "UserDefined"}},
		{"PersistenceType", map[string]any{"Protocol": "HTTP", "FrontendPort": 1007, "PersistenceType": "Cookie"}},
		{"ClientTimeout", map[string]any{"Protocol": "TCP", "ListenType": "PacketsTransmit", "FrontendPort": 1008, "ClientTimeout": 30}},
		{"ClientTimeout", map[string]any{"Protocol": "TCP", "FrontendPort": 1009, "ClientTimeout": 0}},
		{"EnableHTTP2", map[string]any{"Protocol": "HTTPS", "FrontendPort": 1010, "EnableHTTP2": 2}},
	}
	for _, tc := range refused {
		err := c.tryCreateVServer("ulb-t", tc.f)
		wantCode(t, err, RetCodeParamsNotAvailable)
		if !strings.Contains(err.Error(), "["+tc.field+"]") {
			t.Errorf("%v: error does not name %s: %v", tc.f, tc.field, err)
		}
	}
	if vs, _ := srv.Snapshot().VServer("ulb-t", "vserver-t"); len(srv.Snapshot().ULBs[0].VServers) != 1 || vs.ID == "" {
		t.Fatalf("refused CreateVServer calls left VServers: %+v", srv.Snapshot().ULBs[0].VServers)
	}

	// Defaults that depend on protocol and listen type.
	udp := c.createVServer(t, "ulb-t", map[string]any{"Protocol": "UDP", "ListenType": "PacketsTransmit", "FrontendPort": 53, "ClientTimeout": 0})
	if vs := c.vserverRead(t, "ulb-t", udp); vs.MonitorType != "Ping" || vs.ClientTimeout != 0 || vs.PersistenceType != "None" || vs.VServerName != "VServer" {
		t.Fatalf("udp defaults: %+v", vs)
	}
	http := c.createVServer(t, "ulb-t", map[string]any{"Protocol": "HTTP", "FrontendPort": 80, "MonitorType": "Path"})
	if vs := c.vserverRead(t, "ulb-t", http); vs.Path != "/" || vs.Domain != "" || vs.Method != "Roundrobin" {
		t.Fatalf("path check without a path: %+v", vs)
	}
	custom := c.createVServer(t, "ulb-t", map[string]any{"Protocol": "UDP", "ListenType": "PacketsTransmit", "FrontendPort": 54,
		"MonitorType": "Customize", "RequestMsg": "ping", "ResponseMsg": "pong", "PersistenceType": "UserDefined", "PersistenceInfo": "k"})
	if vs := c.vserverRead(t, "ulb-t", custom); vs.RequestMsg != "ping" || vs.ResponseMsg != "pong" || vs.PersistenceInfo != "k" {
		t.Fatalf("udp custom check: %+v", vs)
	}

	// UpdateVServerAttribute: the deprecated Protocol may only repeat the
	// VServer's own; a refused update changes nothing; unknown ids are 4103.
	up := func(mod func(*ulb.UpdateVServerAttributeRequest)) error {
		r := c.ulb.NewUpdateVServerAttributeRequest()
		r.ULBId, r.VServerId = ptr("ulb-t"), ptr(http)
		mod(r)
		_, err := c.ulb.UpdateVServerAttribute(r)
		return err
	}
	wantCode(t, up(func(r *ulb.UpdateVServerAttributeRequest) { r.Protocol = ptr("TCP") }), RetCodeParamsNotAvailable)
	mustOK(t, up(func(r *ulb.UpdateVServerAttributeRequest) { r.Protocol, r.VServerName = ptr("HTTP"), ptr("web") }))
	wantCode(t, up(func(r *ulb.UpdateVServerAttributeRequest) {
		r.VServerName, r.MonitorType = ptr("bad"), ptr("Customize")
	}), RetCodeParamsNotAvailable)
	if vs := c.vserverRead(t, "ulb-t", http); vs.VServerName != "web" || vs.MonitorType != "Path" {
		t.Fatalf("a refused update changed the vserver: %+v", vs)
	}
	wantCode(t, up(func(r *ulb.UpdateVServerAttributeRequest) { r.VServerId = ptr("vserver-nope") }), RetCodeULBNotFound)
	wantCode(t, up(func(r *ulb.UpdateVServerAttributeRequest) { r.ULBId = ptr("ulb-nope") }), RetCodeULBNotFound)

	// DeleteVServer takes its backends along, and frees their quota.
	if _, err := c.allocateBackend(http, "uhost-a", 30001); err != nil {
		t.Fatal(err)
	}
	dv := c.ulb.NewDeleteVServerRequest()
	dv.ULBId, dv.VServerId = ptr("ulb-t"), ptr(http)
	_, err := c.ulb.DeleteVServer(dv)
	mustOK(t, err)
	if _, ok := srv.Snapshot().VServer("ulb-t", http); ok {
		t.Fatal("vserver still there after DeleteVServer")
	}
	_, err = c.ulb.DeleteVServer(dv)
	wantCode(t, err, RetCodeULBNotFound)
}

func TestEIPBillingTimes(t *testing.T) {
	now := tenantClock()
	srv := startSim(t, Config{Now: func() time.Time { return now }})
	c := newClients(srv)
	alloc := func(charge string, quantity int) (int, bool, error) {
		r := c.unet.NewAllocateEIPRequest()
		r.Bandwidth, r.OperatorName, r.ChargeType, r.Quantity = ptr(1), ptr("Bgp"), ptr(charge), ptr(quantity)
		resp, err := c.unet.AllocateEIP(r)
		if err != nil {
			return 0, false, err
		}
		e := c.eipRead(t, resp.EIPSet[0].EIPId)
		return e.ExpireTime, e.Expire, nil
	}
	z := billingZone()
	for _, tc := range []struct {
		charge   string
		quantity int
		want     time.Time
	}{
		{"Month", 1, time.Date(2026, 2, 28, 10, 30, 0, 0, z)},
		{"Month", 3, time.Date(2026, 4, 30, 10, 30, 0, 0, z)},
		{"Month", 0, time.Date(2026, 2, 1, 0, 0, 0, 0, z)}, // to the end of the month
		{"Year", 2, time.Date(2028, 1, 31, 10, 30, 0, 0, z)},
		{"Dynamic", 1, time.Unix(0, 0)},
	} {
		got, expired, err := alloc(tc.charge, tc.quantity)
		mustOK(t, err)
		want := int(tc.want.Unix())
		if tc.charge == "Dynamic" {
			want = 0
		}
		if got != want || expired {
			t.Errorf("%s x%d: ExpireTime %s (expired %v), want %s", tc.charge, tc.quantity, time.Unix(int64(got), 0).In(z), expired, tc.want)
		}
	}
	_, _, err := alloc("Year", 0)
	wantCode(t, err, RetCodeParamsNotAvailable)
}

// Seeded resources without times get sensible ones: created when the
// simulator loads the seed, and an EIP paid up to the end of the current
// billing period.
func TestSeededTimes(t *testing.T) {
	loaded := tenantClock()
	z := billingZone()
	st := testState()
	st.EIPs = append(st.EIPs,
		EIP{ID: "eip-old-month", IP: "203.0.113.50", CreateTime: time.Date(2025, 3, 15, 9, 0, 0, 0, z).Unix()},
		EIP{ID: "eip-old-year", IP: "203.0.113.51", ChargeType: "Year", CreateTime: time.Date(2024, 6, 1, 0, 0, 0, 0, z).Unix()},
		EIP{ID: "eip-dynamic", IP: "203.0.113.52", ChargeType: "Dynamic"},
		EIP{ID: "eip-paid", IP: "203.0.113.53", CreateTime: 1735689600, ExpireTime: 1767225600},
	)
	srv := startSim(t, Config{State: st, Now: func() time.Time { return loaded }})
	c := newClients(srv)
	want := map[string][2]int64{
		"eip-free":      {loaded.Unix(), time.Date(2026, 2, 28, 10, 30, 0, 0, z).Unix()},
		"eip-old-month": {time.Date(2025, 3, 15, 9, 0, 0, 0, z).Unix(), time.Date(2026, 2, 15, 9, 0, 0, 0, z).Unix()},
		"eip-old-year":  {time.Date(2024, 6, 1, 0, 0, 0, 0, z).Unix(), time.Date(2026, 6, 1, 0, 0, 0, 0, z).Unix()},
		"eip-dynamic":   {loaded.Unix(), 0},
		"eip-paid":      {1735689600, 1767225600},
	}
	for id, w := range want {
		e := c.eipRead(t, id)
		if int64(e.CreateTime) != w[0] || int64(e.ExpireTime) != w[1] {
			t.Errorf("%s: CreateTime %s ExpireTime %s, want %s %s", id,
				time.Unix(int64(e.CreateTime), 0).In(z), time.Unix(int64(e.ExpireTime), 0).In(z),
				time.Unix(w[0], 0).In(z), time.Unix(w[1], 0).In(z))
		}
		if e.Expire != (w[1] != 0 && w[1] <= loaded.Unix()) {
			t.Errorf("%s: Expire = %v", id, e.Expire)
		}
	}
	if h := c.host(t, "uhost-a"); int64(h.CreateTime) != loaded.Unix() {
		t.Errorf("seeded host CreateTime %d, want %d", h.CreateTime, loaded.Unix())
	}
	if lb := c.lbRead(t, "ulb-t"); int64(lb.CreateTime) != loaded.Unix() {
		t.Errorf("seeded ulb CreateTime %d, want %d", lb.CreateTime, loaded.Unix())
	}
	// A dump is a seed that loads to the same times.
	if e, _ := srv.Snapshot().EIP("eip-free"); e.CreateTime != loaded.Unix() || e.ExpireTime != want["eip-free"][1] {
		t.Errorf("snapshot of eip-free: create %d expire %d", e.CreateTime, e.ExpireTime)
	}
}

// tryCreateVServer is createVServer returning the error.
func (c clients) tryCreateVServer(lbID string, f map[string]any) error {
	r := c.ulb.NewCreateVServerRequest()
	r.ULBId = ptr(lbID)
	for k, v := range f {
		switch k {
		case "Protocol":
			r.Protocol = ptr(v.(string))
		case "ListenType":
			r.ListenType = ptr(v.(string))
		case "Method":
			r.Method = ptr(v.(string))
		case "MonitorType":
			r.MonitorType = ptr(v.(string))
		case "Path":
			r.Path = ptr(v.(string))
		case "PersistenceType":
			r.PersistenceType = ptr(v.(string))
		case "FrontendPort":
			r.FrontendPort = ptr(v.(int))
		case "ForwardPort":
			r.ForwardPort = ptr(v.(int))
		case "ClientTimeout":
			r.ClientTimeout = ptr(v.(int))
		case "EnableHTTP2":
			r.EnableHTTP2 = ptr(v.(int))
		default:
			panic("tryCreateVServer: unknown field " + k)
		}
	}
	_, err := c.ulb.CreateVServer(r)
	return err
}
