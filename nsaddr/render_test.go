package nsaddr

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func entry(node, nodeAddr, id, addr string, port int) *api.ServiceEntry {
	return &api.ServiceEntry{
		Node:    &api.Node{Node: node, Address: nodeAddr},
		Service: &api.AgentService{ID: id, Address: addr, Port: port},
	}
}

func TestNameServers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		entries  []*api.ServiceEntry
		ipv6     bool
		want     string
		excluded []string // reasons
	}{
		{name: "none", want: ""},
		{
			name: "sorted by address then port, not as strings",
			entries: []*api.ServiceEntry{
				entry("n", "", "1", "10.0.0.10", 9876),
				entry("n", "", "2", "10.0.0.9", 9877),
				entry("n", "", "3", "10.0.0.9", 10000),
				entry("n", "", "4", "9.0.0.1", 1),
			},
			want: "9.0.0.1:1;10.0.0.9:9877;10.0.0.9:10000;10.0.0.10:9876",
		},
		{
			name: "duplicates and IPv4-mapped IPv6 collapse",
			entries: []*api.ServiceEntry{
				entry("n1", "", "1", "10.0.0.1", 9876),
				entry("n2", "", "2", "10.0.0.1", 9876),
				entry("n3", "", "3", "::ffff:10.0.0.1", 9876),
			},
			want: "10.0.0.1:9876",
		},
		{
			name:    "node address when the service has none",
			entries: []*api.ServiceEntry{entry("n", "192.168.1.5", "1", "", 9876)},
			want:    "192.168.1.5:9876",
		},
		{
			name: "host names, bad ports and missing addresses left out",
			entries: []*api.ServiceEntry{
				entry("n", "", "1", "ns1.example.com", 9876),
				entry("n", "ns.node", "2", "", 9876),
				entry("n", "", "3", "10.0.0.1", 0),
				entry("n", "", "4", "10.0.0.1", 70000),
				entry("n", "", "5", "", 9876),
				entry("n", "", "6", " 10.0.0.2", 9876),
				entry("n", "", "7", "10.0.0.3", 9876),
			},
			want:     "10.0.0.3:9876",
			excluded: []string{reasonNotIP, reasonNotIP, reasonPort, reasonPort, reasonNoAddr, reasonNotIP},
		},
		{
			name: "IPv6 left out by default",
			entries: []*api.ServiceEntry{
				entry("n", "", "1", "2001:db8::1", 9876),
				entry("n", "", "2", "10.0.0.1", 9876),
			},
			want:     "10.0.0.1:9876",
			excluded: []string{reasonIPv6},
		},
		{
			name: "IPv6 bracketed when enabled, after IPv4",
			ipv6: true,
			entries: []*api.ServiceEntry{
				entry("n", "", "1", "2001:DB8::1", 9876),
				entry("n", "", "2", "10.0.0.1", 9876),
				entry("n", "", "3", "fe80::1%eth0", 9876),
			},
			want:     "10.0.0.1:9876;[2001:db8::1]:9876",
			excluded: []string{reasonZone},
		},
		{
			name:    "nil entries skipped",
			entries: []*api.ServiceEntry{nil, {Node: &api.Node{}}, entry("n", "", "1", "10.0.0.1", 1)},
			want:    "10.0.0.1:1",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, excluded := nameServers(tc.entries, tc.ipv6)
			if got := string(joinList(list)); got != tc.want {
				t.Errorf("list %q, want %q", got, tc.want)
			}
			var reasons []string
			for _, x := range excluded {
				reasons = append(reasons, x.Reason)
			}
			if strings.Join(reasons, "|") != strings.Join(tc.excluded, "|") {
				t.Errorf("excluded %q, want %q", reasons, tc.excluded)
			}
		})
	}
}

func TestServiceNamePattern(t *testing.T) {
	for _, tc := range []struct {
		pattern, cluster, service string
		err                       bool
	}{
		{pattern: "nameServer{{cluster}}", cluster: "A", service: "nameServerA"},
		{pattern: "rmq-{{cluster}}-namesrv", cluster: "prod", service: "rmq-prod-namesrv"},
		{pattern: "{{cluster}}", cluster: "x", service: "x"},
		{pattern: "nameServer", err: true},
		{pattern: "{{cluster}}{{cluster}}", err: true},
		{pattern: "name.server.{{cluster}}", cluster: "a.b", service: "name.server.a.b"},
		{pattern: "name server {{cluster}}", err: true},
		{pattern: "name/{{cluster}}", err: true},
		{pattern: "nameServer%s", err: true},
	} {
		np, err := parsePattern(tc.pattern)
		if (err != nil) != tc.err {
			t.Errorf("parsePattern(%q) error = %v, want error %v", tc.pattern, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		if got := np.service(tc.cluster); got != tc.service {
			t.Errorf("%q: service(%q) = %q, want %q", tc.pattern, tc.cluster, got, tc.service)
		}
		if got, ok := np.cluster(tc.service); !ok || got != tc.cluster {
			t.Errorf("%q: cluster(%q) = %q, %v", tc.pattern, tc.service, got, ok)
		}
	}
	np, _ := parsePattern("nameServer{{cluster}}")
	for _, svc := range []string{"nameServer", "consul", "nameserverA", "nameServer.x", "nameServer-x", "xnameServerA"} {
		if id, ok := np.cluster(svc); ok {
			t.Errorf("cluster(%q) = %q, want no match", svc, id)
		}
	}
}

func TestConfigDefaultsAndValidation(t *testing.T) {
	cfg, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":8080" || cfg.ServiceNamePattern != "nameServer{{cluster}}" || cfg.StaleAfter != DefaultStaleAfter ||
		cfg.IdleTimeout != DefaultIdleTimeout || cfg.MaxHeaderBytes != DefaultMaxHeaderBytes {
		t.Errorf("defaults: %+v", cfg)
	}
	for _, bad := range []Config{
		{StaleAfter: -time.Second},
		{IdleTimeout: -1},
		{DefaultCluster: "a/b"},
		{ServiceNamePattern: "x"},
		{MaxHeaderBytes: -1},
		{Consul: ConsulConfig{Scheme: "ftp"}},
	} {
		if _, err := New(nil, bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
}

func TestExportedListAndServiceName(t *testing.T) {
	entries := []*api.ServiceEntry{
		{Node: &api.Node{Node: "n1", Address: "10.0.0.10"}, Service: &api.AgentService{ID: "a", Port: 9876}},
		{Node: &api.Node{Node: "n2"}, Service: &api.AgentService{ID: "b", Address: "10.0.0.9", Port: 9877}},
		{Node: &api.Node{Node: "n3"}, Service: &api.AgentService{ID: "c", Address: "ns.example", Port: 9876}},
	}
	if got, left := List(entries, false); got != "10.0.0.9:9877;10.0.0.10:9876" || left != 1 {
		t.Fatalf("List = %q, %d left out", got, left)
	}
	if got, left := List(nil, false); got != "" || left != 0 {
		t.Fatalf("List(nil) = %q, %d", got, left)
	}
	if s, err := ServiceName("", "orders"); err != nil || s != "nameServerorders" {
		t.Fatalf("ServiceName default = %q, %v", s, err)
	}
	if _, err := ServiceName("ns", "orders"); err == nil {
		t.Fatal("a pattern without {{cluster}} was accepted")
	}
}
