package ucloudsim

import (
	"fmt"
	"slices"
	"testing"
)

func TestDescribeUHostInstance(t *testing.T) {
	srv := startSim(t, Config{})
	c := newClients(srv)

	ids := func(opts []clientOpt, hostIDs []string, tag string, offset, limit *int) ([]string, int) {
		cl := newClients(srv, opts...)
		req := cl.uhost.NewDescribeUHostInstanceRequest()
		req.UHostIds = hostIDs
		if tag != "" {
			req.Tag = ptr(tag)
		}
		req.Offset, req.Limit = offset, limit
		resp, err := cl.uhost.DescribeUHostInstance(req)
		mustOK(t, err)
		var out []string
		for _, h := range resp.UHostSet {
			out = append(out, h.UHostId)
		}
		return out, resp.TotalCount
	}
	tests := []struct {
		name          string
		opts          []clientOpt
		hostIDs       []string
		tag           string
		offset, limit *int
		want          []string
		total         int
	}{
		{"all in scope", nil, nil, "", nil, nil, []string{"uhost-a", "uhost-b", "uhost-c"}, 3},
		{"by id", nil, []string{"uhost-b"}, "", nil, nil, []string{"uhost-b"}, 1},
		{"unknown id is no error", nil, []string{"uhost-nope"}, "", nil, nil, nil, 0},
		{"other region's host is invisible", nil, []string{"uhost-sh"}, "", nil, nil, nil, 0},
		{"other project's host is invisible", nil, []string{"uhost-other"}, "", nil, nil, nil, 0},
		{"by tag", nil, nil, "rmq", nil, nil, []string{"uhost-a", "uhost-b"}, 2},
		{"page", nil, nil, "", ptr(1), ptr(1), []string{"uhost-b"}, 3},
		{"other region", []clientOpt{withRegion("cn-sh2")}, nil, "", nil, nil, []string{"uhost-sh"}, 1},
		{"other project", []clientOpt{withProject("org-other")}, nil, "", nil, nil, []string{"uhost-other"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, total := ids(tt.opts, tt.hostIDs, tt.tag, tt.offset, tt.limit)
			if !slices.Equal(got, tt.want) || total != tt.total {
				t.Fatalf("got %v (total %d), want %v (total %d)", got, total, tt.want, tt.total)
			}
		})
	}

	h := c.host(t, "uhost-c")
	if h.Name != "uhost-c" || h.State != "Running" || h.Zone != "cn-bj2-01" || len(h.IPSet) != 2 {
		t.Fatalf("uhost-c = %+v", h)
	}
	if p := h.IPSet[0]; p.Type != "Private" || p.IP != "10.9.0.13" || p.VPCId != "uvnet-t" || p.SubnetId != "subnet-t" {
		t.Fatalf("private IP entry = %+v", p)
	}
	if e := h.IPSet[1]; e.Type != "Bgp" || e.IP != "203.0.113.11" || e.IPId != "eip-bound" || e.Bandwidth != 5 {
		t.Fatalf("EIP entry = %+v", e)
	}
}

// TestDescribeUHostInstanceLimit: UCloud caps Limit at 100.
func TestDescribeUHostInstanceLimit(t *testing.T) {
	st := testState()
	for i := range 120 {
		st.Hosts = append(st.Hosts, Host{ID: fmt.Sprintf("uhost-bulk-%03d", i), PrivateIP: fmt.Sprintf("10.10.%d.%d", i/200, i%200+1)})
	}
	srv := startSim(t, Config{State: st})
	c := newClients(srv)
	req := c.uhost.NewDescribeUHostInstanceRequest()
	req.Limit = ptr(1000)
	resp, err := c.uhost.DescribeUHostInstance(req)
	mustOK(t, err)
	if len(resp.UHostSet) != 100 || resp.TotalCount != 123 {
		t.Fatalf("got %d of %d, want 100 of 123", len(resp.UHostSet), resp.TotalCount)
	}
}
