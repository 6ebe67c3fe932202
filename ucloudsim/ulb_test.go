package ucloudsim

import (
	"fmt"
	"testing"

	"github.com/ucloud/ucloud-sdk-go/services/ulb"
)

func TestULBLifecycle(t *testing.T) {
	srv := startSim(t, Config{})
	c := newClients(srv)

	cr := c.ulb.NewCreateULBRequest()
	cr.ULBName, cr.Tag = ptr("nameserver"), ptr("rmq")
	cres, err := c.ulb.CreateULB(cr)
	mustOK(t, err)
	ulbID := cres.ULBId

	vr := c.ulb.NewCreateVServerRequest()
	vr.ULBId, vr.Protocol, vr.FrontendPort, vr.VServerName = ptr(ulbID), ptr("TCP"), ptr(9876), ptr("ns")
	vres, err := c.ulb.CreateVServer(vr)
	mustOK(t, err)
	vsID := vres.VServerId

	ab := c.ulb.NewAllocateBackendRequest()
	ab.ULBId, ab.VServerId, ab.ResourceType, ab.ResourceId, ab.Port = ptr(ulbID), ptr(vsID), ptr("UHost"), ptr("uhost-a"), ptr(31001)
	abres, err := c.ulb.AllocateBackend(ab)
	mustOK(t, err)
	beID := abres.BackendId

	dv := c.ulb.NewDescribeVServerRequest()
	dv.ULBId, dv.VServerId = ptr(ulbID), ptr(vsID)
	dvres, err := c.ulb.DescribeVServer(dv)
	mustOK(t, err)
	if dvres.TotalCount != 1 || len(dvres.DataSet[0].BackendSet) != 1 {
		t.Fatalf("DescribeVServer = %+v", dvres)
	}
	vs := dvres.DataSet[0]
	be := vs.BackendSet[0]
	if vs.Protocol != "TCP" || vs.FrontendPort != 9876 || vs.VServerName != "ns" || vs.ULBId != ulbID {
		t.Fatalf("vserver = %+v", vs)
	}
	if be.BackendId != beID || be.ResourceId != "uhost-a" || be.PrivateIP != "10.9.0.11" || be.Port != 31001 ||
		be.Enabled != 1 || be.Weight != 1 || be.ResourceType != "UHost" {
		t.Fatalf("backend = %+v", be)
	}

	up := c.ulb.NewUpdateBackendAttributeRequest()
	up.ULBId, up.BackendId, up.Enabled, up.Port, up.Weight = ptr(ulbID), ptr(beID), ptr(0), ptr(31002), ptr(7)
	_, err = c.ulb.UpdateBackendAttribute(up)
	mustOK(t, err)

	du := c.ulb.NewDescribeULBRequest()
	du.ULBId = ptr(ulbID)
	dures, err := c.ulb.DescribeULB(du)
	mustOK(t, err)
	if dures.TotalCount != 1 || len(dures.DataSet) != 1 {
		t.Fatalf("DescribeULB = %+v", dures)
	}
	lb := dures.DataSet[0]
	if lb.Name != "nameserver" || lb.Tag != "rmq" || lb.ULBType != "OuterMode" || len(lb.VServerSet) != 1 {
		t.Fatalf("ulb = %+v", lb)
	}
	nested := lb.VServerSet[0].BackendSet
	if len(nested) != 1 || nested[0].Enabled != 0 || nested[0].Port != 31002 || nested[0].Weight != 7 {
		t.Fatalf("nested backends = %+v", nested)
	}

	rb := c.ulb.NewReleaseBackendRequest()
	rb.ULBId, rb.BackendId = ptr(ulbID), ptr(beID)
	_, err = c.ulb.ReleaseBackend(rb)
	mustOK(t, err)
	dvres, err = c.ulb.DescribeVServer(dv)
	mustOK(t, err)
	if n := len(dvres.DataSet[0].BackendSet); n != 0 {
		t.Fatalf("%d backends left after release", n)
	}
}

// TestSameHostTwoPorts: two NameServers on one host are two backends.
func TestSameHostTwoPorts(t *testing.T) {
	srv := startSim(t, Config{})
	c := newClients(srv)
	a, err := c.allocateBackend("vserver-t", "uhost-a", 30001)
	mustOK(t, err)
	b, err := c.allocateBackend("vserver-t", "uhost-a", 30002)
	mustOK(t, err)
	if a == b {
		t.Fatalf("same backend id %s twice", a)
	}
	if n := len(c.vserver(t, "vserver-t").BackendSet); n != 3 {
		t.Fatalf("%d backends, want 3", n)
	}
}

func TestULBErrors(t *testing.T) {
	tests := []struct {
		name string
		opts []clientOpt
		call func(c clients) error
		code int
	}{
		{"duplicate host and port", nil, func(c clients) error {
			_, err := c.allocateBackend("vserver-t", "uhost-c", 30000)
			return err
		}, RetCodeParamsNotAvailable},
		{"backend on unknown host", nil, func(c clients) error {
			_, err := c.allocateBackend("vserver-t", "uhost-nope", 30001)
			return err
		}, RetCodeParamsNotAvailable},
		{"backend on host of another project", nil, func(c clients) error {
			_, err := c.allocateBackend("vserver-t", "uhost-other", 30001)
			return err
		}, RetCodeParamsNotAvailable},
		{"backend on unknown vserver", nil, func(c clients) error {
			_, err := c.allocateBackend("vserver-nope", "uhost-a", 30001)
			return err
		}, RetCodeULBNotFound},
		{"backend on unknown ulb", nil, func(c clients) error {
			req := c.ulb.NewAllocateBackendRequest()
			req.ULBId, req.VServerId, req.ResourceType, req.ResourceId = ptr("ulb-nope"), ptr("vserver-t"), ptr("UHost"), ptr("uhost-a")
			_, err := c.ulb.AllocateBackend(req)
			return err
		}, RetCodeULBNotFound},
		{"backend with lower-case resource type", nil, func(c clients) error {
			req := c.ulb.NewAllocateBackendRequest()
			req.ULBId, req.VServerId, req.ResourceType, req.ResourceId = ptr("ulb-t"), ptr("vserver-t"), ptr("uhost"), ptr("uhost-a")
			_, err := c.ulb.AllocateBackend(req)
			return err
		}, RetCodeParamsNotAvailable},
		{"backend without resource type", nil, func(c clients) error {
			req := c.ulb.NewAllocateBackendRequest()
			req.ULBId, req.VServerId, req.ResourceId = ptr("ulb-t"), ptr("vserver-t"), ptr("uhost-a")
			_, err := c.ulb.AllocateBackend(req)
			return err
		}, RetCodeParamsNotAvailable},
		{"backend port out of range", nil, func(c clients) error {
			_, err := c.allocateBackend("vserver-t", "uhost-a", 70000)
			return err
		}, RetCodeParamsNotAvailable},
		{"ulb of another project is invisible", []clientOpt{withProject("org-other")}, func(c clients) error {
			_, err := c.allocateBackend("vserver-t", "uhost-other", 30001)
			return err
		}, RetCodeULBNotFound},
		{"release unknown backend", nil, func(c clients) error {
			req := c.ulb.NewReleaseBackendRequest()
			req.ULBId, req.BackendId = ptr("ulb-t"), ptr("backend-nope")
			_, err := c.ulb.ReleaseBackend(req)
			return err
		}, RetCodeULBNotFound},
		{"release backend without id", nil, func(c clients) error {
			req := c.ulb.NewReleaseBackendRequest()
			req.ULBId = ptr("ulb-t")
			_, err := c.ulb.ReleaseBackend(req)
			return err
		}, RetCodeParamsNotAvailable},
		{"update unknown backend", nil, func(c clients) error {
			req := c.ulb.NewUpdateBackendAttributeRequest()
			req.ULBId, req.BackendId, req.Enabled = ptr("ulb-t"), ptr("backend-nope"), ptr(0)
			_, err := c.ulb.UpdateBackendAttribute(req)
			return err
		}, RetCodeULBNotFound},
		{"update backend onto a taken port", nil, func(c clients) error {
			id, err := c.allocateBackend("vserver-t", "uhost-c", 30001)
			if err != nil {
				return err
			}
			req := c.ulb.NewUpdateBackendAttributeRequest()
			req.ULBId, req.BackendId, req.Port = ptr("ulb-t"), ptr(id), ptr(30000)
			_, err = c.ulb.UpdateBackendAttribute(req)
			return err
		}, RetCodeParamsNotAvailable},
		{"update backend weight out of range", nil, func(c clients) error {
			req := c.ulb.NewUpdateBackendAttributeRequest()
			req.ULBId, req.BackendId, req.Weight = ptr("ulb-t"), ptr("backend-seed"), ptr(101)
			_, err := c.ulb.UpdateBackendAttribute(req)
			return err
		}, RetCodeParamsNotAvailable},
		{"describe unknown ulb", nil, func(c clients) error {
			req := c.ulb.NewDescribeULBRequest()
			req.ULBId = ptr("ulb-nope")
			_, err := c.ulb.DescribeULB(req)
			return err
		}, RetCodeULBNotFound},
		{"describe unknown vserver", nil, func(c clients) error {
			req := c.ulb.NewDescribeVServerRequest()
			req.ULBId, req.VServerId = ptr("ulb-t"), ptr("vserver-nope")
			_, err := c.ulb.DescribeVServer(req)
			return err
		}, RetCodeULBNotFound},
		{"describe vserver of unknown ulb", nil, func(c clients) error {
			req := c.ulb.NewDescribeVServerRequest()
			req.ULBId = ptr("ulb-nope")
			_, err := c.ulb.DescribeVServer(req)
			return err
		}, RetCodeULBNotFound},
		{"create vserver on unknown ulb", nil, func(c clients) error {
			req := c.ulb.NewCreateVServerRequest()
			req.ULBId, req.FrontendPort = ptr("ulb-nope"), ptr(80)
			_, err := c.ulb.CreateVServer(req)
			return err
		}, RetCodeULBNotFound},
		{"create vserver on a taken port", nil, func(c clients) error {
			req := c.ulb.NewCreateVServerRequest()
			req.ULBId, req.FrontendPort, req.Protocol = ptr("ulb-t"), ptr(9876), ptr("HTTP")
			_, err := c.ulb.CreateVServer(req)
			return err
		}, RetCodeParamsNotAvailable},
		{"create vserver without ulb", nil, func(c clients) error {
			_, err := c.ulb.CreateVServer(c.ulb.NewCreateVServerRequest())
			return err
		}, RetCodeParamsNotAvailable},
		{"create vserver with unknown protocol", nil, func(c clients) error {
			req := c.ulb.NewCreateVServerRequest()
			req.ULBId, req.Protocol = ptr("ulb-t"), ptr("QUIC")
			_, err := c.ulb.CreateVServer(req)
			return err
		}, RetCodeParamsNotAvailable},
		{"create ulb both inner and outer", nil, func(c clients) error {
			req := c.ulb.NewCreateULBRequest()
			req.InnerMode, req.OuterMode = ptr("Yes"), ptr("Yes")
			_, err := c.ulb.CreateULB(req)
			return err
		}, RetCodeParamsNotAvailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSim(t, Config{})
			wantCode(t, tt.call(newClients(srv, tt.opts...)), tt.code)
		})
	}
}

func TestBackendQuotaAndIDs(t *testing.T) {
	srv := startSim(t, Config{MaxBackendsPerULB: 6})
	c := newClients(srv)
	ids := map[string]bool{"backend-seed": true}
	for port := 31000; port < 31005; port++ {
		id, err := c.allocateBackend("vserver-t", "uhost-a", port)
		mustOK(t, err)
		if ids[id] {
			t.Fatalf("backend id %s handed out twice", id)
		}
		ids[id] = true
	}
	_, err := c.allocateBackend("vserver-t", "uhost-b", 31000)
	wantCode(t, err, RetCodeParamsNotAvailable)
}

func TestDescribeULBAndVServerPaging(t *testing.T) {
	srv := startSim(t, Config{})
	c := newClients(srv)
	for i := range 22 {
		req := c.ulb.NewCreateULBRequest()
		req.ULBName = ptr(fmt.Sprintf("lb-%d", i))
		_, err := c.ulb.CreateULB(req)
		mustOK(t, err)
	}
	for port := 1; port <= 24; port++ {
		req := c.ulb.NewCreateVServerRequest()
		req.ULBId, req.FrontendPort, req.Protocol = ptr("ulb-t"), ptr(port), ptr("TCP")
		_, err := c.ulb.CreateVServer(req)
		mustOK(t, err)
	}

	ulbPage := func(offset, limit *int) (int, int) {
		req := c.ulb.NewDescribeULBRequest()
		req.Offset, req.Limit = offset, limit
		resp, err := c.ulb.DescribeULB(req)
		mustOK(t, err)
		return len(resp.DataSet), resp.TotalCount
	}
	vsPage := func(offset, limit *int) (int, int) {
		req := c.ulb.NewDescribeVServerRequest()
		req.ULBId, req.Offset, req.Limit = ptr("ulb-t"), offset, limit
		resp, err := c.ulb.DescribeVServer(req)
		mustOK(t, err)
		return len(resp.DataSet), resp.TotalCount
	}
	tests := []struct {
		name          string
		page          func(offset, limit *int) (int, int)
		offset, limit *int
		want, total   int
	}{
		{"ulb default limit", ulbPage, nil, nil, 20, 23},
		{"ulb last page", ulbPage, ptr(20), ptr(20), 3, 23},
		{"ulb small page", ulbPage, ptr(5), ptr(4), 4, 23},
		{"vserver default limit", vsPage, nil, nil, 20, 25},
		{"vserver last page", vsPage, ptr(20), ptr(10), 5, 25},
		{"vserver everything", vsPage, ptr(0), ptr(100), 25, 25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, total := tt.page(tt.offset, tt.limit)
			if got != tt.want || total != tt.total {
				t.Fatalf("got %d of %d, want %d of %d", got, total, tt.want, tt.total)
			}
		})
	}

	// DescribeULB nests every VServer and every backend.
	req := c.ulb.NewDescribeULBRequest()
	req.ULBId = ptr("ulb-t")
	resp, err := c.ulb.DescribeULB(req)
	mustOK(t, err)
	var seed *ulb.ULBVServerSet
	for i := range resp.DataSet[0].VServerSet {
		if resp.DataSet[0].VServerSet[i].VServerId == "vserver-t" {
			seed = &resp.DataSet[0].VServerSet[i]
		}
	}
	if len(resp.DataSet[0].VServerSet) != 25 || seed == nil || len(seed.BackendSet) != 1 || seed.BackendSet[0].BackendId != "backend-seed" {
		t.Fatalf("nested vservers: %d, seed vserver %+v", len(resp.DataSet[0].VServerSet), seed)
	}
}

func TestULBEIPInIPSet(t *testing.T) {
	srv := startSim(t, Config{})
	c := newClients(srv)
	req := c.unet.NewBindEIPRequest()
	req.EIPId, req.ResourceType, req.ResourceId = ptr("eip-free"), ptr("ulb"), ptr("ulb-t")
	_, err := c.unet.BindEIP(req)
	mustOK(t, err)
	dreq := c.ulb.NewDescribeULBRequest()
	dreq.ULBId = ptr("ulb-t")
	resp, err := c.ulb.DescribeULB(dreq)
	mustOK(t, err)
	ips := resp.DataSet[0].IPSet
	if len(ips) != 1 || ips[0].EIP != "203.0.113.10" || ips[0].EIPId != "eip-free" {
		t.Fatalf("ULB IPSet = %+v", ips)
	}
}
