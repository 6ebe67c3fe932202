package ucloudsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ucloud/ucloud-sdk-go/services/uhost"
	"github.com/ucloud/ucloud-sdk-go/services/ulb"
	"github.com/ucloud/ucloud-sdk-go/services/unet"
	"github.com/ucloud/ucloud-sdk-go/ucloud"
	"github.com/ucloud/ucloud-sdk-go/ucloud/auth"
	uerr "github.com/ucloud/ucloud-sdk-go/ucloud/error"
	sdklog "github.com/ucloud/ucloud-sdk-go/ucloud/log"
)

const (
	testRegion  = "cn-bj2"
	testProject = "org-test"
	testPub     = "test-public-key"
	testPriv    = "test-private-key-4f8a"
)

// testState is a small account: three hosts, two EIPs (one bound), a ULB with
// one VServer and one backend in cn-bj2/org-test, plus a host and an EIP in
// another region and another project, which requests in cn-bj2/org-test
// must never see.
func testState() *State {
	return &State{
		Region:    testRegion,
		ProjectID: testProject,
		Projects:  []string{"org-other"},
		Keypairs:  []Keypair{{PublicKey: testPub, PrivateKey: testPriv}},
		Hosts: []Host{
			{ID: "uhost-a", PrivateIP: "10.9.0.11", VPCID: "uvnet-t", SubnetID: "subnet-t", Tag: "rmq"},
			{ID: "uhost-b", PrivateIP: "10.9.0.12", VPCID: "uvnet-t", SubnetID: "subnet-t", Tag: "rmq"},
			{ID: "uhost-c", PrivateIP: "10.9.0.13", VPCID: "uvnet-t", SubnetID: "subnet-t", Tag: "other"},
			{ID: "uhost-sh", Region: "cn-sh2", PrivateIP: "10.20.0.11"},
			{ID: "uhost-other", ProjectID: "org-other", PrivateIP: "10.30.0.11"},
		},
		EIPs: []EIP{
			{ID: "eip-free", IP: "203.0.113.10", Bandwidth: 10},
			{ID: "eip-bound", IP: "203.0.113.11", Bandwidth: 5, ResourceType: "uhost", ResourceID: "uhost-c"},
			{ID: "eip-other", IP: "203.0.113.12", ProjectID: "org-other"},
		},
		ULBs: []ULB{{
			ID: "ulb-t",
			VServers: []VServer{{
				ID: "vserver-t", FrontendPort: 9876,
				Backends: []Backend{{ID: "backend-seed", ResourceID: "uhost-c", Port: 30000}},
			}},
		}},
	}
}

// startSim starts a simulator on a free loopback port for the test.
func startSim(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.State == nil {
		cfg.State = testState()
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := srv.Start(ctx, "127.0.0.1:0"); err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return srv
}

// clients are the real SDK clients, pointed at a simulator.
type clients struct {
	unet  *unet.UNetClient
	ulb   *ulb.ULBClient
	uhost *uhost.UHostClient
}

type clientOpt func(*ucloud.Config, *auth.Credential)

func withRetries(n int) clientOpt {
	return func(c *ucloud.Config, _ *auth.Credential) { c.MaxRetries = n }
}

func withTimeout(d time.Duration) clientOpt {
	return func(c *ucloud.Config, _ *auth.Credential) { c.Timeout = d }
}

func withProject(p string) clientOpt {
	return func(c *ucloud.Config, _ *auth.Credential) { c.ProjectId = p }
}

func withRegion(r string) clientOpt {
	return func(c *ucloud.Config, _ *auth.Credential) { c.Region = r }
}

func withKeys(pub, priv string) clientOpt {
	return func(_ *ucloud.Config, cred *auth.Credential) { cred.PublicKey, cred.PrivateKey = pub, priv }
}

// newClients builds the SDK clients the way the driver does:
// ucloud.NewConfig with BaseUrl set to the simulator, auth.NewCredential.
func newClients(srv *Server, opts ...clientOpt) clients {
	cfg := ucloud.NewConfig()
	cfg.BaseUrl = srv.URL()
	cfg.Region = testRegion
	cfg.ProjectId = testProject
	cfg.Timeout = 10 * time.Second
	cfg.LogLevel = sdklog.PanicLevel // the SDK's own logrus warnings are noise here
	cred := auth.NewCredential()
	cred.PublicKey, cred.PrivateKey = testPub, testPriv
	for _, o := range opts {
		o(&cfg, &cred)
	}
	return clients{
		unet:  unet.NewClient(&cfg, &cred),
		ulb:   ulb.NewClient(&cfg, &cred),
		uhost: uhost.NewClient(&cfg, &cred),
	}
}

// retCode is the RetCode of an SDK error (0 for nil, -1 for non-API errors).
func retCode(err error) int {
	if err == nil {
		return 0
	}
	var e uerr.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return -1
}

// statusCode is the HTTP status of an SDK error.
func statusCode(err error) int {
	var e uerr.Error
	if errors.As(err, &e) {
		return e.StatusCode()
	}
	return 0
}

func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	if got := retCode(err); got != code {
		t.Fatalf("RetCode = %d, want %d (err: %v)", got, code, err)
	}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// get fetches a URL and returns status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	return do(t, http.MethodGet, url, "")
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(data)
}

func ptr[T any](v T) *T { return &v }

func (c clients) bind(eip, host string) error {
	req := c.unet.NewBindEIPRequest()
	req.EIPId, req.ResourceType, req.ResourceId = ptr(eip), ptr("uhost"), ptr(host)
	_, err := c.unet.BindEIP(req)
	return err
}

func (c clients) unbind(eip, host string) error {
	req := c.unet.NewUnBindEIPRequest()
	req.EIPId, req.ResourceType, req.ResourceId = ptr(eip), ptr("uhost"), ptr(host)
	_, err := c.unet.UnBindEIP(req)
	return err
}

func (c clients) describeEIP(t *testing.T, ids ...string) *unet.DescribeEIPResponse {
	t.Helper()
	req := c.unet.NewDescribeEIPRequest()
	req.EIPIds = ids
	resp, err := c.unet.DescribeEIP(req)
	mustOK(t, err)
	return resp
}

func (c clients) allocateBackend(vserver, host string, port int) (string, error) {
	req := c.ulb.NewAllocateBackendRequest()
	req.ULBId, req.VServerId = ptr("ulb-t"), ptr(vserver)
	req.ResourceType, req.ResourceId, req.Port = ptr("UHost"), ptr(host), ptr(port)
	resp, err := c.ulb.AllocateBackend(req)
	if err != nil {
		return "", err
	}
	return resp.BackendId, nil
}

func (c clients) vserver(t *testing.T, id string) ulb.ULBVServerSet {
	t.Helper()
	req := c.ulb.NewDescribeVServerRequest()
	req.ULBId, req.VServerId = ptr("ulb-t"), ptr(id)
	resp, err := c.ulb.DescribeVServer(req)
	mustOK(t, err)
	if len(resp.DataSet) != 1 {
		t.Fatalf("DescribeVServer %s: %d results", id, len(resp.DataSet))
	}
	return resp.DataSet[0]
}

func (c clients) host(t *testing.T, id string) uhost.UHostInstanceSet {
	t.Helper()
	req := c.uhost.NewDescribeUHostInstanceRequest()
	req.UHostIds = []string{id}
	resp, err := c.uhost.DescribeUHostInstance(req)
	mustOK(t, err)
	if len(resp.UHostSet) != 1 {
		t.Fatalf("DescribeUHostInstance %s: %d results", id, len(resp.UHostSet))
	}
	return resp.UHostSet[0]
}

func hostEIPs(h uhost.UHostInstanceSet) []string {
	var out []string
	for _, ip := range h.IPSet {
		if ip.Type != "Private" {
			out = append(out, fmt.Sprintf("%s=%s", ip.IPId, ip.IP))
		}
	}
	return out
}
