package ucloudsim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ucloud/ucloud-sdk-go/ucloud/metadata"
)

// TestMetadataV1JSON: v1.json decodes into the SDK's own metadata model,
// which is how a driver reading http://100.80.80.80 would see it.
func TestMetadataV1JSON(t *testing.T) {
	srv := startSim(t, Config{})
	mustOK(t, newClients(srv).bind("eip-free", "uhost-a"))

	code, body := get(t, srv.MetadataURL("uhost-a")+"/meta-data/v1.json")
	if code != http.StatusOK {
		t.Fatalf("GET v1.json: %d %s", code, body)
	}
	var md metadata.Metadata
	if err := json.Unmarshal([]byte(body), &md); err != nil {
		t.Fatalf("decode with the SDK's model: %v", err)
	}
	u := md.UHost
	if md.InstanceId != "uhost-a" || md.Region != testRegion || md.AvailabilityZone != "cn-bj2-01" ||
		md.CloudName != "ucloud" || md.Platform != "uhost" || md.LocalHostname != "10-9-0-11" {
		t.Fatalf("top level: %+v", md)
	}
	if u.UHostId != "uhost-a" || u.ProjectId != testProject || u.Region != testRegion || u.Zone != "cn-bj2-01" {
		t.Fatalf("uhost: %+v", u)
	}
	if len(u.NetworkInterfaces) != 1 || len(u.NetworkInterfaces[0].IPs) != 2 {
		t.Fatalf("interfaces: %+v", u.NetworkInterfaces)
	}
	ips := u.NetworkInterfaces[0].IPs
	if ips[0].IPAddress != "10.9.0.11" || ips[0].Type != "Private" {
		t.Fatalf("private ip: %+v", ips[0])
	}
	if ips[1].IPAddress != "203.0.113.10" || ips[1].IPId != "eip-free" || ips[1].Type != "Bgp" || ips[1].Bandwidth != 10 {
		t.Fatalf("eip: %+v", ips[1])
	}
	eth0 := md.NetworkConfig.Ethernets["eth0"]
	if len(eth0.Addresses) != 1 || eth0.Addresses[0] != "10.9.0.11/16" || eth0.Gateway4 != "10.9.0.1" {
		t.Fatalf("eth0: %+v", eth0)
	}
}

func TestMetadataPaths(t *testing.T) {
	st := testState()
	st.Hosts[0].UserData = "#cloud-config\n"
	srv := startSim(t, Config{State: st})
	mustOK(t, newClients(srv).bind("eip-free", "uhost-a"))
	base := srv.MetadataURL("uhost-a")
	tests := []struct {
		path     string
		code     int
		body     string // exact, or a line the listing must hold when prefixed with "~"
		wantType string
	}{
		{"/meta-data/latest/uhost/uhost-id", 200, "uhost-a", "text/plain"},
		{"/meta-data/latest/uhost/region", 200, testRegion, ""},
		{"/meta-data/latest/uhost/zone", 200, "cn-bj2-01", ""},
		{"/meta-data/latest/uhost/project-id", 200, testProject, ""},
		{"/meta-data/latest/uhost/cpu", 200, "2", ""},
		{"/meta-data/latest/uhost/network-interfaces/0/ips/0/ip-address", 200, "10.9.0.11", ""},
		{"/meta-data/latest/uhost/network-interfaces/0/ips/1/ip-id", 200, "eip-free", ""},
		{"/meta-data/latest/uhost/network-interfaces/0/ips/1/width", 200, "10", ""},
		{"/meta-data/latest/uhost/", 200, "~network-interfaces/", ""},
		{"/meta-data/latest/uhost", 200, "~uhost-id", ""},
		{"/meta-data/latest/", 200, "uhost/", ""},
		{"/meta-data/latest/uhost/network-interfaces/0/ips", 200, "0/\n1/", ""},
		{"/meta-data/v1/instance-id", 200, "uhost-a", ""},
		{"/meta-data/v1/uhost/uhost-id", 200, "uhost-a", ""},
		{"/meta-data/v1/network-config/ethernets/eth0/addresses/0", 200, "10.9.0.11/16", ""},
		{"/meta-data/", 200, "~v1.json", ""},
		{"/user-data", 200, "#cloud-config\n", ""},
		{"/meta-data/latest/uhost/nope", 404, "", ""},
		{"/meta-data/latest/uhost/network-interfaces/7", 404, "", ""},
		{"/meta-data/latest/uhost/uhost-id/deeper", 404, "", ""},
		{"/meta-data/v2.json", 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(base + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			body := string(data)
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d (%q)", resp.StatusCode, tt.code, body)
			}
			if tt.code != 200 {
				return
			}
			if want, ok := strings.CutPrefix(tt.body, "~"); ok {
				if !strings.Contains("\n"+body+"\n", "\n"+want+"\n") {
					t.Fatalf("listing %q lacks %q", body, want)
				}
			} else if body != tt.body {
				t.Fatalf("body %q, want %q", body, tt.body)
			}
			if tt.wantType != "" && !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.wantType) {
				t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
			}
		})
	}

	if code, _ := get(t, srv.MetadataURL("uhost-nope")+"/meta-data/v1.json"); code != http.StatusNotFound {
		t.Fatalf("unknown host: %d", code)
	}
	if code, _ := do(t, http.MethodPost, base+"/meta-data/v1.json", ""); code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", code)
	}
	if got := srv.MetadataURL("uhost-a"); got != srv.URL()+"/metadata/uhost-a" {
		t.Fatalf("MetadataURL = %s", got)
	}
}
