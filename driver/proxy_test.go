package driver

import (
	"strings"
	"testing"

	"github.com/hashicorp/nomad/nomad/structs"
	"github.com/hashicorp/nomad/plugins/drivers"
)

func TestProxyConfigValidate(t *testing.T) {
	ulb := &ULBConfig{ULBID: "ulb-1", VServerID: "vs-grpc"}
	cases := []struct {
		name string
		c    RocketMQConfig
		want []string // substrings of the error; none = valid
	}{
		{"private proxy", RocketMQConfig{Mode: ModePrivate}, nil},
		{"private proxy behind an internal ULB", RocketMQConfig{Mode: ModePrivate, ULB: ulb}, nil},
		{"public proxy with ulb", RocketMQConfig{Mode: ModePublic, ULB: ulb}, nil},
		{"test proxy with ulb", RocketMQConfig{Mode: ModeTest, ULB: ulb}, nil},
		{"public proxy without ulb", RocketMQConfig{Mode: ModePublic}, []string{"rocketmq.ulb", "public mode", "vserver_id"}},
		{"proxy with an eip", RocketMQConfig{Mode: ModePublic, ULB: ulb, EIP: &EIPConfig{ID: "eip-1"}}, []string{"rocketmq.eip", "not an EIP"}},
		{"proxy with peers", RocketMQConfig{Mode: ModePrivate, Peers: []string{"127.0.0.1:9878"}}, []string{"rocketmq.peers"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.Cluster, c.Role, c.Port = "orders", RoleProxy, "grpc"
			assertMentions(t, c.Validate(), tc.want)
		})
	}
}

func TestProxyBindsBackend(t *testing.T) {
	ulb := &ULBConfig{ULBID: "u", VServerID: "v"}
	for _, tc := range []struct {
		c         RocketMQConfig
		backend   bool
		cloudBind bool
	}{
		{RocketMQConfig{Role: RoleProxy, Mode: ModePublic, ULB: ulb}, true, true},
		{RocketMQConfig{Role: RoleProxy, Mode: ModePrivate, ULB: ulb}, true, true},
		{RocketMQConfig{Role: RoleProxy, Mode: ModePrivate}, false, false},
		{RocketMQConfig{Role: RoleNameServer, Mode: ModeTest, ULB: ulb}, true, true},
		{RocketMQConfig{Role: RoleNameServer, Mode: ModePrivate}, false, false},
		{RocketMQConfig{Role: RoleBroker, Mode: ModePublic, EIP: &EIPConfig{ID: "e"}}, false, true},
		{RocketMQConfig{Role: RoleBroker, Mode: ModePrivate}, false, false},
		{RocketMQConfig{Role: RoleController, Mode: ModePrivate}, false, false},
	} {
		if got := tc.c.bindsBackend(); got != tc.backend {
			t.Errorf("%s/%s ulb=%v: bindsBackend = %v, want %v", tc.c.Role, tc.c.Mode, tc.c.ULB != nil, got, tc.backend)
		}
		if got := tc.c.bindsCloud(); got != tc.cloudBind {
			t.Errorf("%s/%s: bindsCloud = %v, want %v", tc.c.Role, tc.c.Mode, got, tc.cloudBind)
		}
	}
}

func TestProxyNamesrv(t *testing.T) {
	rmq := &RocketMQConfig{Cluster: "orders", Role: RoleProxy}
	for _, tc := range []struct {
		name         string
		env          map[string]string
		domain, sub  string
		wantErrParts []string
	}{
		{"domain, subgroup defaults to the cluster", map[string]string{EnvNamesrvDomain: "10.0.0.5:8080"}, "10.0.0.5:8080", "orders", nil},
		{"domain without port", map[string]string{EnvNamesrvDomain: "nsaddr.internal"}, "nsaddr.internal", "orders", nil},
		{"explicit subgroup", map[string]string{EnvNamesrvDomain: "10.0.0.5:8080", EnvNamesrvSubgroup: "other"}, "10.0.0.5:8080", "other", nil},
		{"no domain", map[string]string{}, "", "", []string{"env.ROCKETMQ_NAMESRV_DOMAIN", "set ROCKETMQ_NAMESRV_DOMAIN"}},
		{"fixed list", map[string]string{EnvNamesrvDomain: "10.0.0.5:8080", EnvNamesrvAddr: "10.0.0.1:9876"}, "", "", []string{"env.NAMESRV_ADDR", "remove NAMESRV_ADDR"}},
		{"url instead of host:port", map[string]string{EnvNamesrvDomain: "http://10.0.0.5:8080/rocketmq/orders"}, "", "", []string{"env.ROCKETMQ_NAMESRV_DOMAIN", "only the host and port"}},
		{"bad port", map[string]string{EnvNamesrvDomain: "10.0.0.5:99999"}, "", "", []string{"env.ROCKETMQ_NAMESRV_DOMAIN", "valid host and port"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, s, err := proxyNamesrv(&drivers.TaskConfig{Env: tc.env}, rmq)
			if len(tc.wantErrParts) > 0 {
				if err == nil {
					t.Fatalf("want an error, got %q %q", d, s)
				}
				for _, w := range tc.wantErrParts {
					if !strings.Contains(err.Error(), w) {
						t.Fatalf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil || d != tc.domain || s != tc.sub {
				t.Fatalf("got %q %q %v, want %q %q", d, s, err, tc.domain, tc.sub)
			}
		})
	}
}

func TestProxyConf(t *testing.T) {
	got := proxyConf(&RocketMQConfig{Cluster: "orders"}, 8081, "10.0.0.5:8080", "orders")
	for _, want := range []string{
		"proxyMode=cluster\n", "rocketMQClusterName=orders\n", "grpcServerPort=8081\n",
		"useEndpointPortFromRequest=true\n", "namesrvDomain=10.0.0.5:8080\n", "namesrvDomainSubgroup=orders\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("proxy.conf lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "namesrvAddr") {
		t.Errorf("proxy.conf sets namesrvAddr, which turns the address-server lookup off:\n%s", got)
	}
}

// A proxy may map its port (`to`): it advertises nothing, routes carry the
// port the client dialled, and the proxy is told the container port.
func TestProxyListenPortMapped(t *testing.T) {
	ports := structs.AllocatedPorts{{Label: "grpc", Value: 23001, To: 8081}}
	cfg := &drivers.TaskConfig{Resources: &drivers.Resources{Ports: &ports}}
	m, err := listenPort(cfg, &RocketMQConfig{Role: RoleProxy, Port: "grpc"})
	if err != nil || m.Value != 23001 || containerPort(m) != 8081 {
		t.Fatalf("got %+v (container port %d), %v; want host port 23001 and container port 8081", m, containerPort(m), err)
	}
	if !strings.Contains(proxyConf(&RocketMQConfig{Cluster: "orders"}, containerPort(m), "h:1", "orders"), "grpcServerPort=8081\n") {
		t.Fatal("the proxy is not told to listen on the container port")
	}
}
