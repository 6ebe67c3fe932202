package ucloudsim

import (
	"slices"
	"testing"

	"github.com/ucloud/ucloud-sdk-go/services/unet"
)

func TestEIPLifecycle(t *testing.T) {
	srv := startSim(t, Config{})
	c := newClients(srv)

	alloc := c.unet.NewAllocateEIPRequest()
	alloc.Bandwidth, alloc.OperatorName, alloc.Name = ptr(20), ptr("Bgp"), ptr("broker-0")
	ar, err := c.unet.AllocateEIP(alloc)
	mustOK(t, err)
	if len(ar.EIPSet) != 1 || len(ar.EIPSet[0].EIPAddr) != 1 {
		t.Fatalf("AllocateEIP EIPSet = %+v", ar.EIPSet)
	}
	id, ip := ar.EIPSet[0].EIPId, ar.EIPSet[0].EIPAddr[0].IP
	if ar.Action != "AllocateEIPResponse" || ar.RetCode != 0 {
		t.Fatalf("envelope = %q %d", ar.Action, ar.RetCode)
	}

	d := c.describeEIP(t, id)
	if d.TotalCount != 1 || d.EIPSet[0].Status != "free" || d.EIPSet[0].Name != "broker-0" || d.EIPSet[0].Bandwidth != 20 {
		t.Fatalf("after allocate: %+v", d)
	}

	mustOK(t, c.bind(id, "uhost-a"))
	d = c.describeEIP(t, id)
	e := d.EIPSet[0]
	if e.Status != "used" || e.Resource.ResourceID != "uhost-a" || e.Resource.ResourceType != "uhost" {
		t.Fatalf("after bind: status %q resource %+v", e.Status, e.Resource)
	}
	if got := hostEIPs(c.host(t, "uhost-a")); !slices.Equal(got, []string{id + "=" + ip}) {
		t.Fatalf("uhost-a IPSet EIPs = %v", got)
	}
	snap := srv.Snapshot()
	if h := snap.Hosts[0]; len(h.IPSet) != 2 || h.IPSet[1].EIPID != id {
		t.Fatalf("snapshot IPSet = %+v", h.IPSet)
	}

	mustOK(t, c.unbind(id, "uhost-a"))
	if got := hostEIPs(c.host(t, "uhost-a")); len(got) != 0 {
		t.Fatalf("after unbind, uhost-a EIPs = %v", got)
	}
	if d = c.describeEIP(t, id); d.EIPSet[0].Status != "free" || d.EIPSet[0].Resource.ResourceID != "" {
		t.Fatalf("after unbind: %+v", d.EIPSet[0])
	}

	rel := c.unet.NewReleaseEIPRequest()
	rel.EIPId = ptr(id)
	_, err = c.unet.ReleaseEIP(rel)
	mustOK(t, err)
	if d = c.describeEIP(t, id); d.TotalCount != 0 || len(d.EIPSet) != 0 {
		t.Fatalf("after release, describe = %+v", d)
	}
}

// TestEIPMove is the broker failover path: unbind from the old host, bind to
// the new one.
func TestEIPMove(t *testing.T) {
	srv := startSim(t, Config{})
	c := newClients(srv)
	wantCode(t, c.bind("eip-bound", "uhost-a"), RetCodeEIPOperationFailed)
	mustOK(t, c.unbind("eip-bound", "uhost-c"))
	mustOK(t, c.bind("eip-bound", "uhost-a"))
	if got := hostEIPs(c.host(t, "uhost-c")); len(got) != 0 {
		t.Fatalf("old host still has %v", got)
	}
	if got := hostEIPs(c.host(t, "uhost-a")); !slices.Equal(got, []string{"eip-bound=203.0.113.11"}) {
		t.Fatalf("new host has %v", got)
	}
}

func TestEIPErrors(t *testing.T) {
	tests := []struct {
		name string
		opts []clientOpt
		call func(c clients) error
		code int
	}{
		{"bind unknown eip", nil, func(c clients) error { return c.bind("eip-nope", "uhost-a") }, RetCodeEIPOperationFailed},
		{"bind eip bound elsewhere", nil, func(c clients) error { return c.bind("eip-bound", "uhost-a") }, RetCodeEIPOperationFailed},
		{"bind eip bound to the same host", nil, func(c clients) error { return c.bind("eip-bound", "uhost-c") }, RetCodeEIPOperationFailed},
		{"bind to unknown host", nil, func(c clients) error { return c.bind("eip-free", "uhost-nope") }, RetCodeParamsNotAvailable},
		{"bind to host of another region", nil, func(c clients) error { return c.bind("eip-free", "uhost-sh") }, RetCodeParamsNotAvailable},
		{"bind eip of another project", nil, func(c clients) error { return c.bind("eip-other", "uhost-a") }, RetCodeEIPOperationFailed},
		{"bind with upper-case resource type", nil, func(c clients) error {
			req := c.unet.NewBindEIPRequest()
			req.EIPId, req.ResourceType, req.ResourceId = ptr("eip-free"), ptr("UHost"), ptr("uhost-a")
			_, err := c.unet.BindEIP(req)
			return err
		}, RetCodeParamsNotAvailable},
		{"bind without ResourceId", nil, func(c clients) error {
			req := c.unet.NewBindEIPRequest()
			req.EIPId, req.ResourceType = ptr("eip-free"), ptr("uhost")
			_, err := c.unet.BindEIP(req)
			return err
		}, RetCodeParamsNotAvailable},
		{"bind without EIPId", nil, func(c clients) error {
			req := c.unet.NewBindEIPRequest()
			req.ResourceType, req.ResourceId = ptr("uhost"), ptr("uhost-a")
			_, err := c.unet.BindEIP(req)
			return err
		}, RetCodeParamsNotAvailable},
		{"unbind free eip", nil, func(c clients) error { return c.unbind("eip-free", "uhost-a") }, RetCodeEIPOperationFailed},
		{"unbind from the wrong host", nil, func(c clients) error { return c.unbind("eip-bound", "uhost-a") }, RetCodeEIPOperationFailed},
		{"unbind unknown eip", nil, func(c clients) error { return c.unbind("eip-nope", "uhost-a") }, RetCodeEIPOperationFailed},
		{"release bound eip", nil, func(c clients) error {
			req := c.unet.NewReleaseEIPRequest()
			req.EIPId = ptr("eip-bound")
			_, err := c.unet.ReleaseEIP(req)
			return err
		}, RetCodeEIPOperationFailed},
		{"release unknown eip", nil, func(c clients) error {
			req := c.unet.NewReleaseEIPRequest()
			req.EIPId = ptr("eip-nope")
			_, err := c.unet.ReleaseEIP(req)
			return err
		}, RetCodeEIPOperationFailed},
		{"allocate without Bandwidth", nil, func(c clients) error {
			req := c.unet.NewAllocateEIPRequest()
			req.OperatorName = ptr("Bgp")
			_, err := c.unet.AllocateEIP(req)
			return err
		}, RetCodeParamsNotAvailable},
		{"allocate with unknown operator", nil, func(c clients) error {
			req := c.unet.NewAllocateEIPRequest()
			req.Bandwidth, req.OperatorName = ptr(1), ptr("Mars")
			_, err := c.unet.AllocateEIP(req)
			return err
		}, RetCodeParamsNotAvailable},
		{"allocate with bandwidth out of range", nil, func(c clients) error {
			req := c.unet.NewAllocateEIPRequest()
			req.Bandwidth, req.OperatorName = ptr(20000), ptr("Bgp")
			_, err := c.unet.AllocateEIP(req)
			return err
		}, RetCodeParamsNotAvailable},
		{"unknown project", []clientOpt{withProject("org-nope")}, func(c clients) error {
			_, err := c.unet.DescribeEIP(c.unet.NewDescribeEIPRequest())
			return err
		}, RetCodeProjectNotExists},
		{"missing region", []clientOpt{withRegion("")}, func(c clients) error {
			_, err := c.unet.DescribeEIP(c.unet.NewDescribeEIPRequest())
			return err
		}, RetCodeParamsNotAvailable},
		{"unknown region", []clientOpt{withRegion("mars-1")}, func(c clients) error {
			_, err := c.unet.DescribeEIP(c.unet.NewDescribeEIPRequest())
			return err
		}, RetCodeParamsNotAvailable},
		{"bad paging", nil, func(c clients) error {
			req := c.unet.NewDescribeEIPRequest()
			req.Limit = ptr(-1)
			_, err := c.unet.DescribeEIP(req)
			return err
		}, RetCodeParamsNotAvailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSim(t, Config{})
			before := srv.Snapshot()
			err := tt.call(newClients(srv, tt.opts...))
			wantCode(t, err, tt.code)
			after := srv.Snapshot()
			for i := range before.EIPs {
				if before.EIPs[i] != after.EIPs[i] {
					t.Fatalf("a refused call changed %s: %+v -> %+v", before.EIPs[i].ID, before.EIPs[i], after.EIPs[i])
				}
			}
		})
	}
}

func TestDescribeEIPScopingAndFilters(t *testing.T) {
	srv := startSim(t, Config{})
	c := newClients(srv)

	all := c.describeEIP(t)
	var ids []string
	for _, e := range all.EIPSet {
		ids = append(ids, e.EIPId)
	}
	if !slices.Equal(ids, []string{"eip-free", "eip-bound"}) || all.TotalCount != 2 {
		t.Fatalf("org-test sees %v (total %d)", ids, all.TotalCount)
	}
	if all.UnbindCount != 1 || all.TotalBandwidth != 15 {
		t.Fatalf("UnbindCount %d TotalBandwidth %d", all.UnbindCount, all.TotalBandwidth)
	}

	other := newClients(srv, withProject("org-other")).describeEIP(t)
	if other.TotalCount != 1 || other.EIPSet[0].EIPId != "eip-other" {
		t.Fatalf("org-other sees %+v", other.EIPSet)
	}

	// Unknown ids are not an error: RetCode 0 and an empty set.
	if none := c.describeEIP(t, "eip-nope"); none.TotalCount != 0 || len(none.EIPSet) != 0 {
		t.Fatalf("unknown id: %+v", none)
	}

	// EIPIds and IPs are a union.
	req := c.unet.NewDescribeEIPRequest()
	req.EIPIds = []string{"eip-free"}
	req.IPs = []string{"203.0.113.11", "203.0.113.12"}
	resp, err := c.unet.DescribeEIP(req)
	mustOK(t, err)
	if resp.TotalCount != 2 {
		t.Fatalf("ids+ips union: %d results", resp.TotalCount)
	}
}

func TestDescribeEIPPaging(t *testing.T) {
	srv := startSim(t, Config{})
	c := newClients(srv)
	alloc := c.unet.NewAllocateEIPRequest()
	alloc.Bandwidth, alloc.OperatorName, alloc.Count = ptr(1), ptr("Bgp"), ptr(23)
	ar, err := c.unet.AllocateEIP(alloc)
	mustOK(t, err)
	if len(ar.EIPSet) != 23 {
		t.Fatalf("allocated %d", len(ar.EIPSet))
	}
	seen := map[string]bool{}
	for _, e := range ar.EIPSet {
		if seen[e.EIPId] || seen[e.EIPAddr[0].IP] {
			t.Fatalf("duplicate id or address %+v", e)
		}
		seen[e.EIPId], seen[e.EIPAddr[0].IP] = true, true
	}

	tests := []struct {
		name          string
		offset, limit *int
		want          int
	}{
		{"default limit is 20", nil, nil, 20},
		{"first page", ptr(0), ptr(10), 10},
		{"middle page", ptr(10), ptr(10), 10},
		{"last page", ptr(20), ptr(10), 5},
		{"past the end", ptr(30), ptr(10), 0},
		{"everything", ptr(0), ptr(100), 25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := c.unet.NewDescribeEIPRequest()
			req.Offset, req.Limit = tt.offset, tt.limit
			resp, err := c.unet.DescribeEIP(req)
			mustOK(t, err)
			if len(resp.EIPSet) != tt.want || resp.TotalCount != 25 {
				t.Fatalf("got %d (total %d), want %d (total 25)", len(resp.EIPSet), resp.TotalCount, tt.want)
			}
		})
	}

	// Walking the pages yields every EIP exactly once.
	var walked []string
	for off := 0; ; off += 7 {
		req := c.unet.NewDescribeEIPRequest()
		req.Offset, req.Limit = ptr(off), ptr(7)
		resp, err := c.unet.DescribeEIP(req)
		mustOK(t, err)
		for _, e := range resp.EIPSet {
			walked = append(walked, e.EIPId)
		}
		if len(resp.EIPSet) < 7 {
			break
		}
	}
	slices.Sort(walked)
	if len(slices.Compact(walked)) != 25 {
		t.Fatalf("walked %d distinct EIPs", len(walked))
	}
}

func TestAllocateEIPDefaults(t *testing.T) {
	srv := startSim(t, Config{})
	c := newClients(srv)
	req := c.unet.NewAllocateEIPRequest()
	req.Bandwidth, req.OperatorName = ptr(2), ptr("bgp")
	ar, err := c.unet.AllocateEIP(req)
	mustOK(t, err)
	e := c.describeEIP(t, ar.EIPSet[0].EIPId).EIPSet[0]
	want := unet.UnetEIPSet{Name: "EIP", Tag: "Default", PayMode: "Bandwidth", ChargeType: "Month", Bandwidth: 2}
	if e.Name != want.Name || e.Tag != want.Tag || e.PayMode != want.PayMode || e.ChargeType != want.ChargeType ||
		e.Bandwidth != want.Bandwidth || e.EIPAddr[0].OperatorName != "Bgp" {
		t.Fatalf("defaults: %+v", e)
	}
}
