package ucloudsim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadDemoSeed(t *testing.T) {
	st, err := LoadState(filepath.Join("..", "examples", "ucloudsim", "demo.json"))
	mustOK(t, err)
	if st.Region != "cn-bj2" || st.ProjectID != "org-demo" || len(st.Keypairs) != 1 {
		t.Fatalf("scope/keys: %s %s %d", st.Region, st.ProjectID, len(st.Keypairs))
	}
	wantIPs := map[string]string{"uhost-demo-1": "10.9.0.11", "uhost-demo-2": "10.9.0.12", "uhost-demo-3": "10.9.0.13"}
	if len(st.Hosts) != 3 {
		t.Fatalf("%d hosts", len(st.Hosts))
	}
	for _, h := range st.Hosts {
		if wantIPs[h.ID] != h.PrivateIP || h.Region != "cn-bj2" || h.ProjectID != "org-demo" {
			t.Fatalf("host %+v", h)
		}
	}
	free := 0
	for _, e := range st.EIPs {
		if e.ResourceID == "" {
			free++
		}
	}
	if free != 3 {
		t.Fatalf("%d free EIPs for the brokers, want 3", free)
	}
	// The NameServers' listener and the gRPC proxies' (docs/proxy.md).
	if len(st.ULBs) != 1 || len(st.ULBs[0].VServers) != 2 || st.ULBs[0].VServers[0].FrontendPort != 9876 ||
		st.ULBs[0].VServers[1].ID != "vserver-demo-proxy" || st.ULBs[0].VServers[1].FrontendPort != 8081 {
		t.Fatalf("ulbs %+v", st.ULBs)
	}

	// The demo seed works with the SDK and its own keypair.
	srv := startSim(t, Config{State: st})
	c := newClients(srv, withKeys(st.Keypairs[0].PublicKey, st.Keypairs[0].PrivateKey), withProject("org-demo"))
	if n := c.describeEIP(t).TotalCount; n != 4 {
		t.Fatalf("demo account has %d EIPs", n)
	}
}

func TestParseStateErrors(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"unknown field", `{"region":"r","hostz":[]}`, "unknown field"},
		{"trailing data", `{"region":"r"} {}`, "trailing"},
		{"no region", `{"uhosts":[{"id":"uhost-1","private_ip":"10.0.0.1"}]}`, "region is required"},
		{"bad private ip", `{"region":"r","uhosts":[{"id":"uhost-1","private_ip":"ten"}]}`, "not an IPv4"},
		{"duplicate id", `{"region":"r","uhosts":[{"id":"x","private_ip":"10.0.0.1"}],"eips":[{"id":"x","ip":"203.0.113.1"}]}`, "already used"},
		{"duplicate private ip", `{"region":"r","uhosts":[{"id":"a","private_ip":"10.0.0.1"},{"id":"b","private_ip":"10.0.0.1"}]}`, "also the address"},
		{"eip bound to nothing", `{"region":"r","eips":[{"id":"e","ip":"203.0.113.1","resource_type":"uhost","resource_id":"uhost-x"}]}`, "does not exist"},
		{"eip half bound", `{"region":"r","eips":[{"id":"e","ip":"203.0.113.1","resource_id":"uhost-x"}]}`, "both or neither"},
		{"duplicate eip ip", `{"region":"r","eips":[{"id":"e1","ip":"203.0.113.1"},{"id":"e2","ip":"203.0.113.1"}]}`, "also the address"},
		{"backend on unknown host", `{"region":"r","ulbs":[{"id":"u","vservers":[{"id":"v","frontend_port":80,"backends":[{"id":"b","resource_id":"uhost-x","port":1}]}]}]}`, "does not exist"},
		{"duplicate backend", `{"region":"r","uhosts":[{"id":"h","private_ip":"10.0.0.1"}],"ulbs":[{"id":"u","vservers":[{"id":"v","frontend_port":80,"backends":[{"id":"b1","resource_id":"h","port":1},{"id":"b2","resource_id":"h","port":1}]}]}]}`, "duplicate"},
		{"duplicate backend id in a ulb", `{"region":"r","uhosts":[{"id":"h","private_ip":"10.0.0.1"}],"ulbs":[{"id":"u","vservers":[{"id":"v","frontend_port":80,"backends":[{"id":"b","resource_id":"h","port":1}]},{"id":"v2","frontend_port":81,"backends":[{"id":"b","resource_id":"h","port":2}]}]}]}`, "already used in this ULB"},
		{"vserver port clash", `{"region":"r","ulbs":[{"id":"u","vservers":[{"id":"v","frontend_port":80},{"id":"v2","frontend_port":80}]}]}`, "also used"},
		{"keypair without private key", `{"region":"r","keypairs":[{"public_key":"p","private_key":""}]}`, "required"},
		{"bad mode", `{"region":"r","ulbs":[{"id":"u","mode":"Sideways"}]}`, "neither OuterMode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseState([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	if _, err := LoadState(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("missing file accepted")
	}
}

// TestDumpReloads: a state dump is a valid seed (its keypairs, which carry no
// private key, are dropped), and the reloaded account is the same.
func TestDumpReloads(t *testing.T) {
	srv := startSim(t, Config{})
	c := newClients(srv)
	mustOK(t, c.bind("eip-free", "uhost-a"))
	_, err := c.allocateBackend("vserver-t", "uhost-b", 31000)
	mustOK(t, err)

	dump, err := json.Marshal(srv.Snapshot())
	mustOK(t, err)
	path := filepath.Join(t.TempDir(), "dump.json")
	mustOK(t, os.WriteFile(path, dump, 0o600))
	st, err := LoadState(path)
	mustOK(t, err)
	if len(st.Keypairs) != 0 {
		t.Fatalf("redacted keypairs kept: %v", st.Keypairs)
	}
	again := startSim(t, Config{State: st, Keypairs: []Keypair{{PublicKey: testPub, PrivateKey: testPriv}}})
	redump, err := json.Marshal(again.Snapshot())
	mustOK(t, err)
	if string(redump) != string(dump) {
		t.Fatalf("reloaded dump differs:\n%s\n%s", dump, redump)
	}
}

func TestEmptyAccount(t *testing.T) {
	// No seed: any region and project, keys from Config only.
	srv := startSim(t, Config{State: &State{}, Keypairs: []Keypair{{PublicKey: testPub, PrivateKey: testPriv}}})
	c := newClients(srv, withRegion("hk"), withProject("org-any"))
	req := c.ulb.NewCreateULBRequest()
	resp, err := c.ulb.CreateULB(req)
	mustOK(t, err)
	if !strings.HasPrefix(resp.ULBId, "ulb-") {
		t.Fatalf("ULBId %q", resp.ULBId)
	}
}

// TestIDsAreSeeded: generated ids depend on the seed only.
func TestIDsAreSeeded(t *testing.T) {
	ids := func(seed int64) []string {
		srv := startSim(t, Config{Seed: seed})
		c := newClients(srv)
		req := c.unet.NewAllocateEIPRequest()
		req.Bandwidth, req.OperatorName, req.Count = ptr(1), ptr("Bgp"), ptr(3)
		resp, err := c.unet.AllocateEIP(req)
		mustOK(t, err)
		var out []string
		for _, e := range resp.EIPSet {
			out = append(out, e.EIPId+"="+e.EIPAddr[0].IP)
		}
		return out
	}
	a, b := ids(42), ids(42)
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Fatalf("same seed, different ids: %v %v", a, b)
	}
	if strings.Join(a, ",") == strings.Join(ids(43), ",") {
		t.Fatal("different seeds, same ids")
	}
}

func TestSnapshotLookups(t *testing.T) {
	srv := startSim(t, Config{})
	mustOK(t, newClients(srv).bind("eip-free", "uhost-b"))
	snap := srv.Snapshot()
	if e, ok := snap.EIP("eip-free"); !ok || e.ResourceID != "uhost-b" || e.Status != "used" {
		t.Fatalf("EIP lookup: %+v %v", e, ok)
	}
	if h, ok := snap.Host("uhost-b"); !ok || len(h.IPSet) != 2 {
		t.Fatalf("Host lookup: %+v %v", h, ok)
	}
	if vs, ok := snap.VServer("ulb-t", "vserver-t"); !ok || len(vs.Backends) != 1 || vs.Backends[0].PrivateIP != "10.9.0.13" {
		t.Fatalf("VServer lookup: %+v %v", vs, ok)
	}
	if _, ok := snap.EIP("eip-nope"); ok {
		t.Fatal("found a missing EIP")
	}
	if _, ok := snap.Host("uhost-nope"); ok {
		t.Fatal("found a missing host")
	}
	if _, ok := snap.VServer("ulb-t", "vserver-nope"); ok {
		t.Fatal("found a missing vserver")
	}
}

func TestExampleFaultsFile(t *testing.T) {
	f, err := LoadFaults(filepath.Join("..", "examples", "ucloudsim", "faults-flaky.json"))
	mustOK(t, err)
	if len(f.Rules) != 6 || f.PendingDescribes != 1 {
		t.Fatalf("faults %+v", f)
	}
	if _, err := LoadFaults(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("missing file accepted")
	}
}
