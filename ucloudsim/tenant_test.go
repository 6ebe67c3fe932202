package ucloudsim

import (
	"testing"
	"time"

	"github.com/ucloud/ucloud-sdk-go/services/ulb"
	"github.com/ucloud/ucloud-sdk-go/services/unet"
)

// The tenant module (examples/terraform/tenant) applies, plans, changes and
// destroys with the official Terraform provider's ucloud_eip,
// ucloud_eip_association, ucloud_lb, ucloud_lb_listener and
// ucloud_lb_attachment. This test makes, with the real SDK, the calls those
// resources make (terraform-provider-ucloud v1.39.2, resource_ucloud_*.go and
// service_ucloud_*.go): each create, update and delete followed by the reads
// the provider does after it, asserting what the simulator stored and echoes.

// tenantClock is the test's clock: the 31st of a month, so that "one month
// later" must be clamped to the next month's last day.
func tenantClock() time.Time { return time.Date(2026, 1, 31, 10, 30, 0, 0, billingZone()) }

func TestTerraformTenantResources(t *testing.T) {
	now := tenantClock()
	srv := startSim(t, Config{Now: func() time.Time { return now }})
	c := newClients(srv)

	// ucloud_eip (create): AllocateEIP with what the provider sends, then
	// DescribeEIP until free/used, then the read.
	brokers := make([]string, 2)
	for i := range brokers {
		a := c.unet.NewAllocateEIPRequest()
		a.OperatorName, a.ChargeType, a.PayMode = ptr("Bgp"), ptr("Month"), ptr("Bandwidth")
		a.Bandwidth, a.Quantity = ptr(10), ptr(1)
		a.Name, a.Tag, a.Remark = ptr("rmq-orders-broker"), ptr("rocketmq"), ptr("rmq:orders broker")
		r, err := c.unet.AllocateEIP(a)
		mustOK(t, err)
		if len(r.EIPSet) != 1 {
			t.Fatalf("AllocateEIP: %d EIPs, the provider wants exactly one", len(r.EIPSet))
		}
		brokers[i] = r.EIPSet[0].EIPId
	}
	wantExpire := time.Date(2026, 2, 28, 10, 30, 0, 0, billingZone()).Unix()
	for _, id := range brokers {
		e := c.eipRead(t, id)
		if e.Status != "free" || e.Bandwidth != 10 || e.ChargeType != "Month" || e.PayMode != "Bandwidth" ||
			e.Name != "rmq-orders-broker" || e.Tag != "rocketmq" || e.Remark != "rmq:orders broker" ||
			len(e.EIPAddr) != 1 || e.EIPAddr[0].OperatorName != "Bgp" || e.EIPAddr[0].IP == "" ||
			e.Resource.ResourceId != "" || e.Resource.ResourceType != "" {
			t.Fatalf("eip %s after create: %+v", id, e)
		}
		if int64(e.CreateTime) != now.Unix() || int64(e.ExpireTime) != wantExpire || e.Expire {
			t.Fatalf("eip %s: CreateTime %d ExpireTime %d Expire %v, want %d %d false", id, e.CreateTime, e.ExpireTime, e.Expire, now.Unix(), wantExpire)
		}
	}

	// ucloud_eip (update): bandwidth, then charge mode, then name/tag/remark,
	// each followed by DescribeEIP (the wait) and the read.
	mb := c.unet.NewModifyEIPBandwidthRequest()
	mb.EIPId, mb.Bandwidth = ptr(brokers[0]), ptr(25)
	_, err := c.unet.ModifyEIPBandwidth(mb)
	mustOK(t, err)
	if e := c.eipRead(t, brokers[0]); e.Bandwidth != 25 || e.PayMode != "Bandwidth" {
		t.Fatalf("after ModifyEIPBandwidth: bandwidth %d pay mode %s", e.Bandwidth, e.PayMode)
	}
	pm := c.unet.NewSetEIPPayModeRequest()
	pm.EIPId, pm.PayMode, pm.Bandwidth = ptr(brokers[1]), ptr("Traffic"), ptr(5)
	_, err = c.unet.SetEIPPayMode(pm)
	mustOK(t, err)
	if e := c.eipRead(t, brokers[1]); e.PayMode != "Traffic" || e.Bandwidth != 5 {
		t.Fatalf("after SetEIPPayMode: pay mode %s bandwidth %d", e.PayMode, e.Bandwidth)
	}
	ua := c.unet.NewUpdateEIPAttributeRequest()
	ua.EIPId, ua.Name, ua.Tag, ua.Remark = ptr(brokers[1]), ptr("rmq-orders-broker-1"), ptr("tenants"), ptr("rmq:orders broker-1")
	_, err = c.unet.UpdateEIPAttribute(ua)
	mustOK(t, err)
	if e := c.eipRead(t, brokers[1]); e.Name != "rmq-orders-broker-1" || e.Tag != "tenants" || e.Remark != "rmq:orders broker-1" {
		t.Fatalf("after UpdateEIPAttribute: %q %q %q", e.Name, e.Tag, e.Remark)
	}

	// ucloud_lb (create): CreateULB, DescribeULB until it exists, then the
	// read: DescribeULB and DescribeFirewall of the ULB.
	cu := c.ulb.NewCreateULBRequest()
	cu.ULBName, cu.Tag, cu.Remark, cu.OuterMode = ptr("rmq-orders-ns"), ptr("rocketmq"), ptr("orders name servers"), ptr("Yes")
	cr, err := c.ulb.CreateULB(cu)
	mustOK(t, err)
	lbID := cr.ULBId
	lb := c.lbRead(t, lbID)
	if lb.Name != "rmq-orders-ns" || lb.Tag != "rocketmq" || lb.Remark != "orders name servers" ||
		lb.ULBType != "OuterMode" || lb.ListenType != "RequestProxy" || int64(lb.CreateTime) != now.Unix() ||
		len(lb.IPSet) != 0 || len(lb.VServerSet) != 0 || lb.PrivateIP != "" {
		t.Fatalf("ulb after create: %+v", lb)
	}

	// ucloud_lb (update): name and tag in one UpdateULBAttribute, then the read.
	uu := c.ulb.NewUpdateULBAttributeRequest()
	uu.ULBId, uu.Name, uu.Tag = ptr(lbID), ptr("rmq-orders-nameservers"), ptr("tenants")
	_, err = c.ulb.UpdateULBAttribute(uu)
	mustOK(t, err)
	if lb := c.lbRead(t, lbID); lb.Name != "rmq-orders-nameservers" || lb.Tag != "tenants" || lb.Remark != "orders name servers" {
		t.Fatalf("ulb after update: name %q tag %q remark %q", lb.Name, lb.Tag, lb.Remark)
	}

	// ucloud_eip (the ULB's) and ucloud_eip_association: BindEIP with
	// ResourceType ulb, DescribeEIP until used, then the association's read
	// (DescribeEIP, Resource.ResourceID) and the ULB's (IPSet).
	a := c.unet.NewAllocateEIPRequest()
	a.OperatorName, a.Bandwidth, a.ChargeType, a.Quantity = ptr("Bgp"), ptr(20), ptr("Dynamic"), ptr(1)
	ar, err := c.unet.AllocateEIP(a)
	mustOK(t, err)
	lbEIP := ar.EIPSet[0].EIPId
	if e := c.eipRead(t, lbEIP); e.ChargeType != "Dynamic" || e.ExpireTime != 0 || e.Expire {
		t.Fatalf("dynamic eip: charge %s expire time %d expire %v", e.ChargeType, e.ExpireTime, e.Expire)
	}
	be := c.unet.NewBindEIPRequest()
	be.EIPId, be.ResourceType, be.ResourceId = ptr(lbEIP), ptr("ulb"), ptr(lbID)
	_, err = c.unet.BindEIP(be)
	mustOK(t, err)
	if e := c.eipRead(t, lbEIP); e.Status != "used" || e.Resource.ResourceID != lbID || e.Resource.ResourceId != lbID || e.Resource.ResourceType != "ulb" {
		t.Fatalf("association read: status %s resource %+v", e.Status, e.Resource)
	}
	if lb := c.lbRead(t, lbID); len(lb.IPSet) != 1 || lb.IPSet[0].EIPId != lbEIP || lb.IPSet[0].OperatorName != "Bgp" || lb.IPSet[0].Bandwidth != 20 {
		t.Fatalf("ulb IPSet after association: %+v", lb.IPSet)
	}

	// ucloud_lb_listener (create): DescribeULB (listen type), CreateVServer,
	// DescribeVServer until it exists, then the read. The 9876 listener of
	// the module, and an HTTP one with the fields the simulator used to drop.
	c.lbRead(t, lbID)
	ns := c.createVServer(t, lbID, map[string]any{
		"Protocol": "TCP", "ListenType": "RequestProxy", "Method": "Roundrobin", "FrontendPort": 9876,
		"VServerName": "nameserver-9876", "ClientTimeout": 120, "PersistenceType": "None", "MonitorType": "Port",
	})
	vs := c.vserverRead(t, lbID, ns)
	if vs.Protocol != "TCP" || vs.ListenType != "RequestProxy" || vs.Method != "Roundrobin" || vs.FrontendPort != 9876 ||
		vs.VServerName != "nameserver-9876" || vs.ClientTimeout != 120 || vs.PersistenceType != "None" ||
		vs.PersistenceInfo != "" || vs.MonitorType != "Port" || vs.Status != 0 || vs.ULBId != lbID || len(vs.BackendSet) != 0 {
		t.Fatalf("9876 listener: %+v", vs)
	}
	web := c.createVServer(t, lbID, map[string]any{
		"Protocol": "HTTP", "Method": "Leastconn", "FrontendPort": 8080, "VServerName": "console",
		"PersistenceType": "ServerInsert", "MonitorType": "Path", "Domain": "console.example.com", "Path": "/healthz",
		"EnableCompression": 1, "EnableHTTP2": 1, "ForwardPort": 8443,
	})
	vs = c.vserverRead(t, lbID, web)
	if vs.PersistenceType != "ServerInsert" || vs.PersistenceInfo != "" || vs.MonitorType != "Path" ||
		vs.Domain != "console.example.com" || vs.Path != "/healthz" || vs.Method != "Leastconn" ||
		vs.EnableCompression != 1 || vs.EnableHTTP2 != 1 || vs.ForwardPort != 8443 || vs.ClientTimeout != 60 {
		t.Fatalf("http listener: %+v", vs)
	}

	// ucloud_lb_listener (update): everything it can change in one call.
	uv := c.ulb.NewUpdateVServerAttributeRequest()
	uv.ULBId, uv.VServerId = ptr(lbID), ptr(web)
	uv.VServerName, uv.Method, uv.ClientTimeout = ptr("console-v2"), ptr("Source"), ptr(300)
	uv.PersistenceType, uv.PersistenceInfo = ptr("UserDefined"), ptr("SESSIONID")
	uv.MonitorType, uv.Domain, uv.Path = ptr("Path"), ptr("ops.example.com"), ptr("/ready")
	_, err = c.ulb.UpdateVServerAttribute(uv)
	mustOK(t, err)
	vs = c.vserverRead(t, lbID, web)
	if vs.VServerName != "console-v2" || vs.Method != "Source" || vs.ClientTimeout != 300 ||
		vs.PersistenceType != "UserDefined" || vs.PersistenceInfo != "SESSIONID" ||
		vs.Domain != "ops.example.com" || vs.Path != "/ready" || vs.Protocol != "HTTP" || vs.FrontendPort != 8080 ||
		vs.EnableCompression != 1 || vs.ForwardPort != 8443 {
		t.Fatalf("http listener after update: %+v", vs)
	}
	// Back to ServerInsert: the user's key is gone ("None或ServerInsert，此字段为空").
	uv = c.ulb.NewUpdateVServerAttributeRequest()
	uv.ULBId, uv.VServerId, uv.PersistenceType = ptr(lbID), ptr(web), ptr("ServerInsert")
	_, err = c.ulb.UpdateVServerAttribute(uv)
	mustOK(t, err)
	if vs = c.vserverRead(t, lbID, web); vs.PersistenceType != "ServerInsert" || vs.PersistenceInfo != "" || vs.VServerName != "console-v2" {
		t.Fatalf("after ServerInsert: %+v", vs)
	}

	// ucloud_lb_attachment (create, update): AllocateBackend, DescribeVServer
	// until the backend shows, then the read; UpdateBackendAttribute (port).
	ab := c.ulb.NewAllocateBackendRequest()
	ab.ULBId, ab.VServerId, ab.ResourceType, ab.ResourceId, ab.Port = ptr(lbID), ptr(ns), ptr("UHost"), ptr("uhost-a"), ptr(31001)
	abr, err := c.ulb.AllocateBackend(ab)
	mustOK(t, err)
	b := c.backendRead(t, lbID, ns, abr.BackendId)
	if b.ResourceId != "uhost-a" || b.Port != 31001 || b.PrivateIP != "10.9.0.11" || b.Status != 0 || b.ResourceType != "UHost" {
		t.Fatalf("attachment read: %+v", b)
	}
	ub := c.ulb.NewUpdateBackendAttributeRequest()
	ub.ULBId, ub.BackendId, ub.Port = ptr(lbID), ptr(abr.BackendId), ptr(31002)
	_, err = c.ulb.UpdateBackendAttribute(ub)
	mustOK(t, err)
	if b := c.backendRead(t, lbID, ns, abr.BackendId); b.Port != 31002 {
		t.Fatalf("attachment after update: port %d", b.Port)
	}

	// Destroy, in Terraform's order (dependents first), each delete followed
	// by the provider's check that the object is gone.
	// ucloud_lb_attachment: read, ReleaseBackend, read.
	c.backendRead(t, lbID, ns, abr.BackendId)
	rb := c.ulb.NewReleaseBackendRequest()
	rb.ULBId, rb.BackendId = ptr(lbID), ptr(abr.BackendId)
	_, err = c.ulb.ReleaseBackend(rb)
	mustOK(t, err)
	if vs := c.vserverRead(t, lbID, ns); len(vs.BackendSet) != 0 {
		t.Fatalf("backends after release: %+v", vs.BackendSet)
	}
	// ucloud_lb_listener: DeleteVServer, then DescribeVServer answers 4103.
	for _, id := range []string{ns, web} {
		dv := c.ulb.NewDeleteVServerRequest()
		dv.ULBId, dv.VServerId = ptr(lbID), ptr(id)
		_, err = c.ulb.DeleteVServer(dv)
		mustOK(t, err)
		q := c.ulb.NewDescribeVServerRequest()
		q.ULBId, q.VServerId = ptr(lbID), ptr(id)
		_, err = c.ulb.DescribeVServer(q)
		wantCode(t, err, RetCodeULBNotFound)
	}
	// ucloud_eip_association: read, UnBindEIP, read (the EIP no longer
	// names the ULB).
	ue := c.unet.NewUnBindEIPRequest()
	ue.EIPId, ue.ResourceType, ue.ResourceId = ptr(lbEIP), ptr("ulb"), ptr(lbID)
	_, err = c.unet.UnBindEIP(ue)
	mustOK(t, err)
	if e := c.eipRead(t, lbEIP); e.Status != "free" || e.Resource.ResourceID != "" {
		t.Fatalf("after unbind: %+v", e)
	}
	// ucloud_lb: DeleteULB, then DescribeULB answers 4103.
	dl := c.ulb.NewDeleteULBRequest()
	dl.ULBId = ptr(lbID)
	_, err = c.ulb.DeleteULB(dl)
	mustOK(t, err)
	q := c.ulb.NewDescribeULBRequest()
	q.ULBId = ptr(lbID)
	_, err = c.ulb.DescribeULB(q)
	wantCode(t, err, RetCodeULBNotFound)
	// ucloud_eip: ReleaseEIP, then DescribeEIP answers an empty set.
	for _, id := range append(brokers, lbEIP) {
		r := c.unet.NewReleaseEIPRequest()
		r.EIPId = ptr(id)
		_, err = c.unet.ReleaseEIP(r)
		mustOK(t, err)
		if d := c.describeEIP(t, id); len(d.EIPSet) != 0 {
			t.Fatalf("eip %s after release: %+v", id, d.EIPSet)
		}
	}
	snap := srv.Snapshot()
	if len(snap.ULBs) != 1 || len(snap.EIPs) != 3 {
		t.Fatalf("the seed's ULB and EIPs only should be left: %d ULBs, %d EIPs", len(snap.ULBs), len(snap.EIPs))
	}
}

// eipRead is the provider's describeEIPById.
func (c clients) eipRead(t *testing.T, id string) unet.UnetEIPSet {
	t.Helper()
	d := c.describeEIP(t, id)
	if len(d.EIPSet) != 1 {
		t.Fatalf("DescribeEIP %s: %d results", id, len(d.EIPSet))
	}
	return d.EIPSet[0]
}

// lbRead is the provider's ucloud_lb read: describeLBById, then
// describeFirewallByIdAndType(id, "ulb"), where an empty DataSet (or 54002)
// means no firewall.
func (c clients) lbRead(t *testing.T, id string) ulb.ULBSet {
	t.Helper()
	q := c.ulb.NewDescribeULBRequest()
	q.ULBId = ptr(id)
	r, err := c.ulb.DescribeULB(q)
	mustOK(t, err)
	if len(r.DataSet) != 1 || r.TotalCount != 1 {
		t.Fatalf("DescribeULB %s: %d results, total %d", id, len(r.DataSet), r.TotalCount)
	}
	fq := c.unet.NewDescribeFirewallRequest()
	fq.ResourceId, fq.ResourceType = ptr(id), ptr("ulb")
	fr, err := c.unet.DescribeFirewall(fq)
	mustOK(t, err)
	if len(fr.DataSet) != 0 || fr.TotalCount != 0 {
		t.Fatalf("DescribeFirewall of %s: %+v", id, fr)
	}
	if len(r.DataSet[0].FirewallSet) != 0 {
		t.Fatalf("ulb %s FirewallSet = %+v", id, r.DataSet[0].FirewallSet)
	}
	return r.DataSet[0]
}

// vserverRead is the provider's describeVServerById; the same VServer nested
// in DescribeULB must read alike.
func (c clients) vserverRead(t *testing.T, lbID, id string) ulb.ULBVServerSet {
	t.Helper()
	q := c.ulb.NewDescribeVServerRequest()
	q.ULBId, q.VServerId = ptr(lbID), ptr(id)
	r, err := c.ulb.DescribeVServer(q)
	mustOK(t, err)
	if len(r.DataSet) != 1 {
		t.Fatalf("DescribeVServer %s: %d results", id, len(r.DataSet))
	}
	vs := r.DataSet[0]
	lb := c.lbRead(t, lbID)
	for _, n := range lb.VServerSet {
		if n.VServerId == id && (n.PersistenceType != vs.PersistenceType || n.Path != vs.Path || n.Domain != vs.Domain ||
			n.PersistenceInfo != vs.PersistenceInfo || n.VServerName != vs.VServerName || n.ClientTimeout != vs.ClientTimeout) {
			t.Fatalf("vserver %s in DescribeULB %+v differs from DescribeVServer %+v", id, n, vs)
		}
	}
	return vs
}

// backendRead is the provider's describeBackendById.
func (c clients) backendRead(t *testing.T, lbID, vsID, id string) ulb.ULBBackendSet {
	t.Helper()
	for _, b := range c.vserverRead(t, lbID, vsID).BackendSet {
		if b.BackendId == id {
			return b
		}
	}
	t.Fatalf("backend %s not in vserver %s", id, vsID)
	return ulb.ULBBackendSet{}
}

// createVServer sends CreateVServer with the given fields, through the SDK's
// request type.
func (c clients) createVServer(t *testing.T, lbID string, f map[string]any) string {
	t.Helper()
	r := c.ulb.NewCreateVServerRequest()
	r.ULBId = ptr(lbID)
	str := func(k string) *string {
		if v, ok := f[k]; ok {
			return ptr(v.(string))
		}
		return nil
	}
	num := func(k string) *int {
		if v, ok := f[k]; ok {
			return ptr(v.(int))
		}
		return nil
	}
	r.Protocol, r.ListenType, r.Method, r.VServerName = str("Protocol"), str("ListenType"), str("Method"), str("VServerName")
	r.PersistenceType, r.PersistenceInfo, r.MonitorType = str("PersistenceType"), str("PersistenceInfo"), str("MonitorType")
	r.Domain, r.Path, r.RequestMsg, r.ResponseMsg = str("Domain"), str("Path"), str("RequestMsg"), str("ResponseMsg")
	r.FrontendPort, r.ClientTimeout, r.ForwardPort = num("FrontendPort"), num("ClientTimeout"), num("ForwardPort")
	r.EnableCompression, r.EnableHTTP2 = num("EnableCompression"), num("EnableHTTP2")
	resp, err := c.ulb.CreateVServer(r)
	mustOK(t, err)
	return resp.VServerId
}
