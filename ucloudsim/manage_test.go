package ucloudsim

import (
	"testing"

	"github.com/ucloud/ucloud-sdk-go/services/unet"
)

func TestDescribeFirewall(t *testing.T) {
	srv := startSim(t, Config{})
	c := newClients(srv)
	q := func(mod func(*unet.DescribeFirewallRequest)) (*unet.DescribeFirewallResponse, error) {
		r := c.unet.NewDescribeFirewallRequest()
		mod(r)
		return c.unet.DescribeFirewall(r)
	}
	// What ucloud_lb and ucloud_instance read: the firewall of a resource.
	for _, res := range [][2]string{{"ulb", "ulb-t"}, {"uhost", "uhost-a"}, {"ulb", "ulb-unknown"}} {
		resp, err := q(func(r *unet.DescribeFirewallRequest) { r.ResourceType, r.ResourceId = ptr(res[0]), ptr(res[1]) })
		mustOK(t, err)
		if resp.TotalCount != 0 || resp.DataSet == nil || len(resp.DataSet) != 0 {
			t.Fatalf("firewall of %s %s: %+v", res[0], res[1], resp)
		}
	}
	resp, err := q(func(*unet.DescribeFirewallRequest) {})
	mustOK(t, err)
	if len(resp.DataSet) != 0 {
		t.Fatalf("all firewalls: %+v", resp.DataSet)
	}
	_, err = q(func(r *unet.DescribeFirewallRequest) { r.FWId = ptr("firewall-abc") })
	wantCode(t, err, RetCodeFirewallNotFound)
	_, err = q(func(r *unet.DescribeFirewallRequest) { r.ResourceType, r.ResourceId = ptr("ULB"), ptr("ulb-t") })
	wantCode(t, err, RetCodeParamsNotAvailable)
	_, err = q(func(r *unet.DescribeFirewallRequest) { r.ResourceId = ptr("ulb-t") })
	wantCode(t, err, RetCodeParamsNotAvailable)
	_, err = q(func(r *unet.DescribeFirewallRequest) { r.Limit = ptr(-1) })
	wantCode(t, err, RetCodeParamsNotAvailable)
}

func TestEIPUpdates(t *testing.T) {
	srv := startSim(t, Config{})
	c := newClients(srv)
	modify := func(id string, bw *int) error {
		r := c.unet.NewModifyEIPBandwidthRequest()
		r.EIPId, r.Bandwidth = ptr(id), bw
		_, err := c.unet.ModifyEIPBandwidth(r)
		return err
	}
	wantCode(t, modify("eip-nope", ptr(5)), RetCodeEIPOperationFailed)
	wantCode(t, modify("eip-other", ptr(5)), RetCodeEIPOperationFailed) // another project's
	wantCode(t, modify("eip-free", nil), RetCodeParamsNotAvailable)
	wantCode(t, modify("eip-free", ptr(0)), RetCodeParamsNotAvailable)
	wantCode(t, modify("eip-free", ptr(801)), RetCodeParamsNotAvailable)
	mustOK(t, modify("eip-bound", ptr(800)))
	// A bound EIP's new bandwidth shows on its host too.
	for _, ip := range c.host(t, "uhost-c").IPSet {
		if ip.IPId == "eip-bound" && ip.Bandwidth != 800 {
			t.Fatalf("host IPSet bandwidth %d after ModifyEIPBandwidth", ip.Bandwidth)
		}
	}

	pay := func(mode string, bw int) error {
		r := c.unet.NewSetEIPPayModeRequest()
		r.EIPId, r.PayMode, r.Bandwidth = ptr("eip-free"), ptr(mode), ptr(bw)
		_, err := c.unet.SetEIPPayMode(r)
		return err
	}
	wantCode(t, pay("ShareBandwidth", 1), RetCodeParamsNotAvailable)
	wantCode(t, pay("Traffic", 201), RetCodeParamsNotAvailable)
	mustOK(t, pay("Traffic", 200))
	wantCode(t, modify("eip-free", ptr(201)), RetCodeParamsNotAvailable) // Traffic: 1-200
	if e := c.eipRead(t, "eip-free"); e.PayMode != "Traffic" || e.Bandwidth != 200 {
		t.Fatalf("after SetEIPPayMode: %s %d", e.PayMode, e.Bandwidth)
	}

	attr := func(name, tag, remark *string) error {
		r := c.unet.NewUpdateEIPAttributeRequest()
		r.EIPId, r.Name, r.Tag, r.Remark = ptr("eip-free"), name, tag, remark
		_, err := c.unet.UpdateEIPAttribute(r)
		return err
	}
	wantCode(t, attr(nil, nil, nil), RetCodeParamsNotAvailable) // "Name Tag Remark都为空则报错"
	wantCode(t, attr(ptr(""), ptr(""), ptr("")), RetCodeParamsNotAvailable)
	mustOK(t, attr(nil, nil, ptr("rmq:orders")))
	mustOK(t, attr(nil, ptr("rocketmq"), nil))
	if e := c.eipRead(t, "eip-free"); e.Name != "EIP" || e.Tag != "rocketmq" || e.Remark != "rmq:orders" {
		t.Fatalf("after UpdateEIPAttribute: %q %q %q", e.Name, e.Tag, e.Remark)
	}
}

func TestDeleteULB(t *testing.T) {
	srv := startSim(t, Config{})
	c := newClients(srv)
	create := func() string {
		r := c.ulb.NewCreateULBRequest()
		r.ChargeType = ptr("Month")
		resp, err := c.ulb.CreateULB(r)
		mustOK(t, err)
		return resp.ULBId
	}
	bindULB := func(eip, lb string) {
		r := c.unet.NewBindEIPRequest()
		r.EIPId, r.ResourceType, r.ResourceId = ptr(eip), ptr("ulb"), ptr(lb)
		_, err := c.unet.BindEIP(r)
		mustOK(t, err)
	}
	del := func(id string, release *bool) error {
		r := c.ulb.NewDeleteULBRequest()
		r.ULBId, r.ReleaseEip = ptr(id), release
		_, err := c.ulb.DeleteULB(r)
		return err
	}

	// Default: the ULB goes with its VServers and backends, its EIP is
	// unbound and kept.
	keep := create()
	if lb, ok := findULB(srv.Snapshot(), keep); !ok || lb.ChargeType != "Month" {
		t.Fatalf("CreateULB ChargeType not stored: %+v", lb)
	}
	vs := c.createVServer(t, keep, map[string]any{"Protocol": "TCP", "FrontendPort": 9876})
	r := c.ulb.NewAllocateBackendRequest()
	r.ULBId, r.VServerId, r.ResourceType, r.ResourceId, r.Port = ptr(keep), ptr(vs), ptr("UHost"), ptr("uhost-a"), ptr(30000)
	_, err := c.ulb.AllocateBackend(r)
	mustOK(t, err)
	bindULB("eip-free", keep)
	mustOK(t, del(keep, nil))
	if e := c.eipRead(t, "eip-free"); e.Status != "free" || e.Resource.ResourceID != "" {
		t.Fatalf("eip after DeleteULB: %+v", e)
	}
	if _, ok := findULB(srv.Snapshot(), keep); ok {
		t.Fatal("ulb still in the account")
	}
	wantCode(t, del(keep, nil), RetCodeULBNotFound)
	q := c.ulb.NewDescribeVServerRequest()
	q.ULBId, q.VServerId = ptr(keep), ptr(vs)
	_, err = c.ulb.DescribeVServer(q)
	wantCode(t, err, RetCodeULBNotFound)

	// ReleaseEip=true: the EIP is released with it.
	gone := create()
	bindULB("eip-free", gone)
	mustOK(t, del(gone, ptr(true)))
	if d := c.describeEIP(t, "eip-free"); len(d.EIPSet) != 0 {
		t.Fatalf("eip after DeleteULB ReleaseEip=true: %+v", d.EIPSet)
	}

	// Another project's ULB does not exist for this one.
	wantCode(t, newClients(srv, withProject("org-other")).deleteULB("ulb-t"), RetCodeULBNotFound)
	if _, ok := findULB(srv.Snapshot(), "ulb-t"); !ok {
		t.Fatal("another project deleted ulb-t")
	}
	mustOK(t, c.deleteULB("ulb-t")) // with its seeded VServer and backend
}

func (c clients) deleteULB(id string) error {
	r := c.ulb.NewDeleteULBRequest()
	r.ULBId = ptr(id)
	_, err := c.ulb.DeleteULB(r)
	return err
}

func findULB(st State, id string) (ULB, bool) {
	for _, lb := range st.ULBs {
		if lb.ID == id {
			return lb, true
		}
	}
	return ULB{}, false
}
