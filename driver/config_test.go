package driver

import (
	"context"
	"strings"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	goversion "github.com/hashicorp/go-version"
	"github.com/hashicorp/nomad/drivers/docker"
	"github.com/hashicorp/nomad/helper/pluginutils/hclspecutils"
	"github.com/hashicorp/nomad/helper/pluginutils/hclutils"
	"github.com/hashicorp/nomad/nomad/structs"
	"github.com/hashicorp/nomad/plugins/base"
	"github.com/hashicorp/nomad/plugins/drivers"
	"github.com/hashicorp/nomad/plugins/shared/hclspec"
	pstructs "github.com/hashicorp/nomad/plugins/shared/structs"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"
)

func TestRocketMQConfigValidate(t *testing.T) {
	ok := RocketMQConfig{Cluster: "c1", Role: RoleBroker, Mode: ModePrivate, Port: "rmq"}
	cases := []struct {
		name string
		mod  func(c *RocketMQConfig)
		want []string // substrings of the error; none = valid
	}{
		{"valid private broker", func(c *RocketMQConfig) {}, nil},
		{"valid public broker with eip id", func(c *RocketMQConfig) { c.Mode = ModePublic; c.EIP = &EIPConfig{ID: "eip-1"} }, nil},
		{"valid test namesrv with ulb", func(c *RocketMQConfig) {
			c.Mode, c.Role, c.ULB = ModeTest, RoleNameServer, &ULBConfig{ULBID: "ulb-1", VServerID: "vs-1"}
		}, nil},
		{"empty cluster", func(c *RocketMQConfig) { c.Cluster = "" }, []string{"rocketmq.cluster"}},
		{"cluster with slash", func(c *RocketMQConfig) { c.Cluster = "a/b" }, []string{"rocketmq.cluster", `"a/b"`}},
		{"cluster with dots inside", func(c *RocketMQConfig) { c.Cluster = "orders.prod" }, nil},
		{"cluster .. (not a consul key segment)", func(c *RocketMQConfig) { c.Cluster = ".." }, []string{"rocketmq.cluster", `".."`, "starting with a letter or digit"}},
		{"cluster starting with a dash", func(c *RocketMQConfig) { c.Cluster = "-orders" }, []string{"rocketmq.cluster", `"-orders"`}},
		{"cluster longer than 128", func(c *RocketMQConfig) { c.Cluster = strings.Repeat("o", 129) }, []string{"rocketmq.cluster", "1-128"}},
		{"bad role", func(c *RocketMQConfig) { c.Role = "gateway" }, []string{"rocketmq.role", `"gateway"`, `"proxy"`}},
		{"bad mode", func(c *RocketMQConfig) { c.Mode = "internet" }, []string{"rocketmq.mode", `"internet"`}},
		{"empty port", func(c *RocketMQConfig) { c.Port = "" }, []string{"rocketmq.port"}},
		{"host name advertise", func(c *RocketMQConfig) { c.AdvertiseIP = "broker.example" }, []string{"rocketmq.advertise_ip"}},
		{"public broker without eip", func(c *RocketMQConfig) { c.Mode = ModePublic }, []string{"rocketmq.eip", "public mode"}},
		{"public namesrv without ulb", func(c *RocketMQConfig) { c.Mode, c.Role = ModePublic, RoleNameServer }, []string{"rocketmq.ulb"}},
		{"two eip choices", func(c *RocketMQConfig) {
			c.Mode, c.EIP = ModePublic, &EIPConfig{ID: "eip-1", ConsulKey: true}
		}, []string{"rocketmq.eip", "exactly one"}},
		{"empty eip id in list", func(c *RocketMQConfig) { c.Mode, c.EIP = ModePublic, &EIPConfig{IDs: []string{"eip-1", " "}} }, []string{"rocketmq.eip.ids[1]"}},
		{"eip on namesrv", func(c *RocketMQConfig) {
			c.Mode, c.Role, c.EIP, c.ULB = ModePublic, RoleNameServer, &EIPConfig{ID: "e"}, &ULBConfig{ULBID: "u", VServerID: "v"}
		}, []string{"only brokers bind an EIP"}},
		{"ulb on broker", func(c *RocketMQConfig) {
			c.Mode, c.EIP, c.ULB = ModePublic, &EIPConfig{ID: "e"}, &ULBConfig{ULBID: "u", VServerID: "v"}
		}, []string{"only name servers and proxies register"}},
		{"ulb without vserver", func(c *RocketMQConfig) {
			c.Mode, c.Role, c.ULB = ModePublic, RoleNameServer, &ULBConfig{ULBID: "u"}
		}, []string{"rocketmq.ulb.vserver_id"}},
		{"eip in private mode", func(c *RocketMQConfig) { c.EIP = &EIPConfig{ID: "e"} }, []string{"private mode uses no public IPs"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			assertMentions(t, c.Validate(), tc.want)
		})
	}
}

// assertMentions checks a validation result: no error when want is empty,
// else an error that mentions every part of want.
func assertMentions(t *testing.T, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("want valid, got %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("want an error mentioning %q, got none", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not mention %q", err, w)
		}
	}
}

// parse decodes an HCL body against spec the way the Nomad client does and
// returns the msgpack the plugin receives.
func parse(t *testing.T, spec *hclspec.Spec, body string) []byte {
	t.Helper()
	dec, diags := hclspecutils.Convert(spec)
	if diags.HasErrors() {
		t.Fatalf("convert spec: %v", diags)
	}
	val, diags, errs := hclutils.ParseHclInterface(hclutils.HclConfigToInterface(t, "config {\n"+body+"\n}"), dec, nil)
	if diags.HasErrors() || len(errs) > 0 {
		t.Fatalf("parse: %v %v", diags, errs)
	}
	data, err := ctymsgpack.Marshal(val, val.Type())
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return data
}

func TestSplitPluginConfig(t *testing.T) {
	d := New(context.Background(), hclog.NewNullLogger())
	spec, err := d.ConfigSchema()
	if err != nil {
		t.Fatal(err)
	}
	dspec, _ := d.Driver.ConfigSchema()

	cases := []struct {
		name       string
		body       string
		wantErr    string
		wantReaper reaperConfig
		check      func(t *testing.T, ours *PluginConfig, dc docker.DriverConfig)
	}{
		{
			name:       "no docker block gets docker defaults",
			body:       ``,
			wantReaper: reaperConfig{Enabled: true, Period: 5 * time.Minute, CreationGrace: 5 * time.Minute},
			check: func(t *testing.T, _ *PluginConfig, dc docker.DriverConfig) {
				if !dc.GC.Image || dc.PullActivityTimeout == "" || dc.InfraImage == "" {
					t.Fatalf("docker defaults missing: gc.image=%v pull_activity_timeout=%q infra_image=%q", dc.GC.Image, dc.PullActivityTimeout, dc.InfraImage)
				}
			},
		},
		{
			name: "docker block passes through, reaper settings become ours",
			body: `
docker {
  endpoint = "unix:///run/other.sock"
  allow_privileged = true
  gc {
    image = false
    dangling_containers {
      enabled        = true
      period         = "2s"
      creation_grace = "10s"
    }
  }
}
ucloud {
  region      = "cn-bj2"
  private_key = "s3cret"
}`,
			wantReaper: reaperConfig{Enabled: true, Period: 2 * time.Second, CreationGrace: 10 * time.Second},
			check: func(t *testing.T, ours *PluginConfig, dc docker.DriverConfig) {
				if dc.Endpoint != "unix:///run/other.sock" || !dc.AllowPrivileged || dc.GC.Image {
					t.Fatalf("docker settings not passed through: %+v", dc)
				}
				if dc.GC.DanglingContainers.Enabled {
					t.Fatalf("docker's own reaper must be off")
				}
				if ours.UCloud == nil || ours.UCloud.Region != "cn-bj2" || ours.UCloud.PrivateKey != "s3cret" {
					t.Fatalf("ucloud block not decoded: %+v", ours.UCloud)
				}
			},
		},
		{
			name:       "reaper disabled",
			body:       `docker { gc { dangling_containers { enabled = false } } }`,
			wantReaper: reaperConfig{Enabled: false, Period: 5 * time.Minute, CreationGrace: 5 * time.Minute},
		},
		{
			name:    "grace below minimum",
			body:    `docker { gc { dangling_containers { creation_grace = "1s" } } }`,
			wantErr: "docker.gc.dangling_containers.creation_grace",
		},
		{
			name:    "bad period",
			body:    `docker { gc { dangling_containers { period = "soon" } } }`,
			wantErr: "docker.gc.dangling_containers.period",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := parse(t, spec, tc.body)
			ours, dockerRaw, rc, err := splitPluginConfig(raw, dspec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want error mentioning %q, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rc != tc.wantReaper {
				t.Fatalf("reaper = %+v, want %+v", rc, tc.wantReaper)
			}
			var dc docker.DriverConfig
			if err := base.MsgPackDecode(dockerRaw, &dc); err != nil {
				t.Fatal(err)
			}
			if dc.GC.DanglingContainers.Enabled {
				t.Fatalf("docker's own reaper must always be off")
			}
			if tc.check != nil {
				tc.check(t, ours, dc)
			}
		})
	}
}

func TestTaskConfigSchemaIsDockerPlusRocketMQ(t *testing.T) {
	d := New(context.Background(), hclog.NewNullLogger())
	ours, err := d.TaskConfigSchema()
	if err != nil {
		t.Fatal(err)
	}
	theirs, _ := d.Driver.TaskConfigSchema()
	for k := range theirs.GetObject().Attributes {
		if _, ok := ours.GetObject().Attributes[k]; !ok {
			t.Errorf("docker task option %q missing from our schema", k)
		}
	}
	if _, ok := ours.GetObject().Attributes["rocketmq"]; !ok {
		t.Fatalf("rocketmq block missing")
	}
	if _, ok := theirs.GetObject().Attributes["rocketmq"]; ok {
		t.Fatalf("docker's package-level schema was mutated")
	}

	raw := parse(t, ours, `
image = "img:1"
args  = ["serve"]
labels { team = "mq" }
rocketmq {
  cluster = "c1"
  role    = "broker"
  port    = "rmq"
}`)
	cfg := &drivers.TaskConfig{ID: "t1"}
	if err := cfg.EncodeDriverConfig(mustUnmarshal(t, ours, raw)); err != nil {
		t.Fatal(err)
	}
	var tc TaskConfig
	if err := cfg.DecodeDriverConfig(&tc); err != nil {
		t.Fatal(err)
	}
	if tc.RocketMQ.Mode != ModePrivate || tc.RocketMQ.Cluster != "c1" {
		t.Fatalf("rocketmq block = %+v, want mode defaulted to private", tc.RocketMQ)
	}

	// Our labels are added without losing the user's or docker's options.
	if err := addLabels(cfg, map[string]string{labelDriver: PluginName}); err != nil {
		t.Fatal(err)
	}
	var dtc docker.TaskConfig
	if err := cfg.DecodeDriverConfig(&dtc); err != nil {
		t.Fatal(err)
	}
	if dtc.Image != "img:1" || len(dtc.Args) != 1 || dtc.Labels["team"] != "mq" || dtc.Labels[labelDriver] != PluginName {
		t.Fatalf("docker sees %+v after addLabels", dtc)
	}
}

func mustUnmarshal(t *testing.T, spec *hclspec.Spec, raw []byte) ctyValue {
	t.Helper()
	dec, _ := hclspecutils.Convert(spec)
	ty := hcldecImpliedType(dec)
	v, err := ctymsgpack.Unmarshal(raw, ty)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestListenPort(t *testing.T) {
	ports := structs.AllocatedPorts{{Label: "rmq", Value: 23000}, {Label: "mapped", Value: 23001, To: 10911}}
	cfg := &drivers.TaskConfig{Resources: &drivers.Resources{Ports: &ports}}
	cases := []struct {
		name    string
		rmq     RocketMQConfig
		want    int
		wantErr string
	}{
		{"broker on its host port", RocketMQConfig{Role: RoleBroker, Port: "rmq"}, 23000, ""},
		{"broker with to", RocketMQConfig{Role: RoleBroker, Port: "mapped"}, 0, "remove `to`"},
		{"namesrv with to", RocketMQConfig{Role: RoleNameServer, Port: "mapped"}, 23001, ""},
		{"unknown label", RocketMQConfig{Role: RoleBroker, Port: "nope"}, 0, `port label "nope"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := listenPort(cfg, &tc.rmq)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "rocketmq.port") {
					t.Fatalf("want error with %q naming rocketmq.port, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil || m.Value != tc.want {
				t.Fatalf("got %+v, %v; want port %d", m, err, tc.want)
			}
		})
	}
}

func TestTranslateFingerprint(t *testing.T) {
	healthy := &drivers.Fingerprint{
		Health: drivers.HealthStateHealthy,
		Attributes: map[string]*pstructs.Attribute{
			"driver.docker":         pstructs.NewBoolAttribute(true),
			"driver.docker.version": pstructs.NewStringAttribute("20.10"),
			"driver.docker.os_type": pstructs.NewStringAttribute("linux"),
		},
	}
	out := translateFingerprint(healthy)
	for k := range out.Attributes {
		if strings.HasPrefix(k, "driver.docker") {
			t.Fatalf("attribute %q leaked under driver.docker", k)
		}
	}
	for _, k := range []string{"driver.rocketmq", "driver.rocketmq.version", "driver.rocketmq.docker.version", "driver.rocketmq.docker.os_type"} {
		if _, ok := out.Attributes[k]; !ok {
			t.Fatalf("attribute %q missing: %v", k, out.Attributes)
		}
	}

	down := translateFingerprint(&drivers.Fingerprint{Health: drivers.HealthStateUnhealthy, HealthDescription: "Failed to connect to docker daemon"})
	if down.Health != drivers.HealthStateUnhealthy || !strings.Contains(down.HealthDescription, "docker engine unavailable") {
		t.Fatalf("unhealthy fingerprint = %+v", down)
	}
	if _, ok := down.Attributes["driver.rocketmq"]; ok {
		t.Fatalf("an unhealthy driver must not advertise driver.rocketmq")
	}
}

// Nomad refuses to load a plugin whose version is not semver.
func TestPluginVersionIsSemver(t *testing.T) {
	d := New(context.Background(), hclog.NewNullLogger())
	info, err := d.PluginInfo()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{info.PluginVersion, "0.1.0+a7a8e93"} {
		if _, err := goversion.NewVersion(v); err != nil {
			t.Fatalf("plugin version %q is not semver: %v", v, err)
		}
	}
}
