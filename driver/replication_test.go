package driver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/nomad/nomad/structs"
	"github.com/hashicorp/nomad/plugins/drivers"
)

var threeControllers = []string{"10.0.0.1:9878", "10.0.0.2:9878", "10.0.0.3:9878"}

func TestValidateReplication(t *testing.T) {
	broker := RocketMQConfig{Cluster: "c1", Role: RoleBroker, Mode: ModePrivate, Port: "rmq"}
	ctrl := RocketMQConfig{Cluster: "c1", Role: RoleController, Mode: ModePrivate, Port: "raft", Peers: threeControllers}
	cases := []struct {
		name string
		base RocketMQConfig
		mod  func(c *RocketMQConfig)
		want []string // substrings of the error; none = valid
	}{
		{"replicated broker", broker, func(c *RocketMQConfig) { c.HAPort, c.FastPort, c.Controllers = "ha", "fast", threeControllers }, nil},
		{"replicated public broker", broker, func(c *RocketMQConfig) {
			c.HAPort, c.FastPort, c.Controllers, c.Mode, c.EIP = "ha", "fast", threeControllers, ModePublic, &EIPConfig{ConsulKey: true}
		}, nil},
		{"ha port alone", broker, func(c *RocketMQConfig) { c.HAPort = "ha" }, nil},
		{"min in sync 3", broker, func(c *RocketMQConfig) {
			c.HAPort, c.FastPort, c.Controllers, c.MinInSyncReplicas = "ha", "fast", threeControllers, 3
		}, nil},
		{"controllers without fast port", broker, func(c *RocketMQConfig) { c.HAPort, c.Controllers = "ha", threeControllers },
			[]string{"rocketmq.fast_port", "listenPort-2", `fast_port = "fast"`}},
		{"fast port same as ha port", broker, func(c *RocketMQConfig) { c.HAPort, c.FastPort, c.Controllers = "ha", "ha", threeControllers },
			[]string{"rocketmq.fast_port", "port of its own"}},
		{"fast port on a controller", RocketMQConfig{Cluster: "c1", Role: RoleController, Mode: ModePrivate, Port: "raft", Peers: threeControllers},
			func(c *RocketMQConfig) { c.FastPort = "fast" }, []string{"rocketmq.fast_port", "only brokers"}},
		{"controllers without ha port", broker, func(c *RocketMQConfig) { c.Controllers = threeControllers },
			[]string{"rocketmq.ha_port", `ha_port = "ha"`}},
		{"ha port same as port", broker, func(c *RocketMQConfig) { c.HAPort, c.Controllers = "rmq", threeControllers },
			[]string{"rocketmq.ha_port", "port of its own"}},
		{"controller host name", broker, func(c *RocketMQConfig) { c.HAPort, c.Controllers = "ha", []string{"ctl.example:9878"} },
			[]string{"rocketmq.controllers[0]", "not a host name"}},
		{"controller without port", broker, func(c *RocketMQConfig) { c.HAPort, c.Controllers = "ha", []string{"10.0.0.1"} },
			[]string{"rocketmq.controllers[0]", "not ip:port"}},
		{"controller listed twice", broker, func(c *RocketMQConfig) {
			c.HAPort, c.Controllers = "ha", []string{"10.0.0.1:9878", " 10.0.0.1:9878"}
		}, []string{"rocketmq.controllers[1]", "also entry 0"}},
		{"min in sync without controllers", broker, func(c *RocketMQConfig) { c.HAPort, c.MinInSyncReplicas = "ha", 2 },
			[]string{"rocketmq.min_in_sync_replicas", "controller mode"}},
		{"negative min in sync", broker, func(c *RocketMQConfig) { c.HAPort, c.Controllers, c.MinInSyncReplicas = "ha", threeControllers, -1 },
			[]string{"rocketmq.min_in_sync_replicas", "-1"}},
		{"peers on a broker", broker, func(c *RocketMQConfig) { c.Peers = threeControllers }, []string{"rocketmq.peers", "only controllers"}},
		{"ha port on a name server", broker, func(c *RocketMQConfig) { c.Role, c.HAPort = RoleNameServer, "ha" }, []string{"rocketmq.ha_port", "namesrv"}},
		{"controller", ctrl, func(c *RocketMQConfig) {}, nil},
		{"single controller", ctrl, func(c *RocketMQConfig) { c.Peers = threeControllers[:1] }, nil},
		{"controller without peers", ctrl, func(c *RocketMQConfig) { c.Peers = nil }, []string{"rocketmq.peers", "every controller"}},
		{"even controllers", ctrl, func(c *RocketMQConfig) { c.Peers = threeControllers[:2] }, []string{"rocketmq.peers", "odd number"}},
		{"public controller", ctrl, func(c *RocketMQConfig) { c.Mode = ModePublic }, []string{"rocketmq.mode", `mode = "private"`}},
		{"controller with controllers", ctrl, func(c *RocketMQConfig) { c.Controllers = threeControllers }, []string{"rocketmq.controllers"}},
		{"controller bad peer", ctrl, func(c *RocketMQConfig) { c.Peers = []string{"10.0.0.1:0", "b:1", "10.0.0.3:1"} },
			[]string{"rocketmq.peers[0]", "rocketmq.peers[1]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.base
			tc.mod(&c)
			assertMentions(t, c.Validate(), tc.want)
		})
	}
}

func TestHAPort(t *testing.T) {
	ports := structs.AllocatedPorts{{Label: "ha", Value: 23002, HostIP: "10.0.0.7"}, {Label: "mapped", Value: 23003, To: 10912}}
	cfg := &drivers.TaskConfig{Resources: &drivers.Resources{Ports: &ports}}
	m, err := haPort(cfg, &RocketMQConfig{HAPort: "ha"})
	if err != nil || m.Value != 23002 {
		t.Fatalf("ha: got %+v, %v", m, err)
	}
	if _, err := haPort(cfg, &RocketMQConfig{HAPort: "mapped"}); err == nil || !strings.Contains(err.Error(), "rocketmq.ha_port") || !strings.Contains(err.Error(), "remove `to`") {
		t.Fatalf("mapped: want an error naming rocketmq.ha_port and the fix, got %v", err)
	}
	_, err = haPort(cfg, &RocketMQConfig{HAPort: "nope"})
	if err == nil || !strings.Contains(err.Error(), `rocketmq.ha_port: port label "nope" is not in the task's ports`) {
		t.Fatalf("unknown label: got %v", err)
	}
}

func TestFastPort(t *testing.T) {
	ports := structs.AllocatedPorts{{Label: "rmq", Value: 30911}, {Label: "fast", Value: 30909}, {Label: "dyn", Value: 23005}, {Label: "mapped", Value: 30909, To: 10909}}
	cfg := &drivers.TaskConfig{Resources: &drivers.Resources{Ports: &ports}}
	listen := structs.AllocatedPortMapping{Label: "rmq", Value: 30911}
	if err := fastPort(cfg, &RocketMQConfig{Port: "rmq", FastPort: "fast"}, listen); err != nil {
		t.Fatalf("static ports two apart: %v", err)
	}
	if err := fastPort(cfg, &RocketMQConfig{Port: "rmq"}, listen); err != nil {
		t.Fatalf("no fast_port: %v", err)
	}
	for label, want := range map[string]string{
		"dyn":    "is host port 23005 (container 23005), but RocketMQ serves its fast channel at listenPort-2 = 30909",
		"mapped": "container 10909",
		"nope":   `rocketmq.fast_port: port label "nope" is not in the task's ports; add ` + "`network { port \"nope\" { static = 30909 } }`",
	} {
		err := fastPort(cfg, &RocketMQConfig{Port: "rmq", FastPort: label}, listen)
		if err == nil || !strings.Contains(err.Error(), "rocketmq.fast_port") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: want an error naming rocketmq.fast_port with %q, got %v", label, want, err)
		}
	}
}

func TestBrokerReplicationConf(t *testing.T) {
	rmq := RocketMQConfig{Role: RoleBroker, HAPort: "ha", Controllers: threeControllers}
	got := brokerReplicationConf(&rmq, "10.0.0.7", 23002)
	for _, want := range []string{
		"brokerIP2=10.0.0.7\n", "haListenPort=23002\n", "enableControllerMode=true\n",
		"controllerAddr=10.0.0.1:9878;10.0.0.2:9878;10.0.0.3:9878\n", "brokerId=-1\n", "brokerRole=SLAVE\n",
		"allAckInSyncStateSet=true\n", "minInSyncReplicas=2\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("conf lacks %q:\n%s", want, got)
		}
	}
	rmq.MinInSyncReplicas = 3
	if got := brokerReplicationConf(&rmq, "10.0.0.7", 23002); !strings.Contains(got, "minInSyncReplicas=3\n") {
		t.Errorf("min_in_sync_replicas = 3 not written:\n%s", got)
	}
	// An HA port alone (classic slave): the HA address, no controller keys.
	classic := RocketMQConfig{Role: RoleBroker, HAPort: "ha"}
	if got := brokerReplicationConf(&classic, "10.0.0.7", 23002); got != "brokerIP2=10.0.0.7\nhaListenPort=23002\n" {
		t.Errorf("classic: got %q", got)
	}
	if got := brokerReplicationConf(&RocketMQConfig{Role: RoleBroker}, "10.0.0.7", 0); got != "" {
		t.Errorf("unreplicated: got %q", got)
	}
}

func TestControllerSelfAndConf(t *testing.T) {
	rmq := RocketMQConfig{Cluster: "c1", Role: RoleController, Peers: threeControllers}
	id, err := controllerSelf(&rmq, Address{IP: "10.0.0.2", Port: 9878})
	if err != nil || id != "n1" {
		t.Fatalf("self: got %q, %v; want n1", id, err)
	}
	if _, err := controllerSelf(&rmq, Address{IP: "10.0.0.2", Port: 9879}); err == nil ||
		!strings.Contains(err.Error(), "rocketmq.peers: this controller listens at 10.0.0.2:9879") {
		t.Fatalf("no match: got %v", err)
	}
	dir := t.TempDir()
	cfg := &drivers.TaskConfig{ID: "t1", AllocDir: dir, Name: "ctl"}
	if err := os.MkdirAll(cfg.TaskDir().LocalDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeControllerConf(cfg, &rmq, id, 9878); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(cfg.TaskDir().LocalDir, controllerConfPath))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"controllerType=DLedger\n", "controllerDLegerGroup=c1\n",
		"controllerDLegerPeers=n0-10.0.0.1:9878;n1-10.0.0.2:9878;n2-10.0.0.3:9878\n",
		"controllerDLegerSelfId=n1\n", "listenPort=9878\n", "enableElectUncleanMaster=false\n",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("controller.conf lacks %q:\n%s", want, b)
		}
	}
}

// TestReplicationSchema: the replication fields parse against the task
// schema the Nomad client validates jobs with, and decode into TaskConfig.
func TestReplicationSchema(t *testing.T) {
	d := New(context.Background(), hclog.NewNullLogger())
	spec, err := d.TaskConfigSchema()
	if err != nil {
		t.Fatal(err)
	}
	decode := func(block string) RocketMQConfig {
		raw := parse(t, spec, "image = \"img:1\"\nrocketmq {\n"+block+"\n}")
		cfg := &drivers.TaskConfig{ID: "t1"}
		if err := cfg.EncodeDriverConfig(mustUnmarshal(t, spec, raw)); err != nil {
			t.Fatal(err)
		}
		var tc TaskConfig
		if err := cfg.DecodeDriverConfig(&tc); err != nil {
			t.Fatal(err)
		}
		return tc.RocketMQ
	}
	b := decode(`cluster = "c1"
role = "broker"
port = "rmq"
fast_port = "fast"
ha_port = "ha"
controllers = ["10.0.0.1:9878", "10.0.0.2:9878", "10.0.0.3:9878"]
min_in_sync_replicas = 3`)
	if b.FastPort != "fast" || b.HAPort != "ha" || len(b.Controllers) != 3 || b.MinInSyncReplicas != 3 || b.Validate() != nil {
		t.Fatalf("broker = %+v (%v)", b, b.Validate())
	}
	c := decode(`cluster = "c1"
role = "controller"
port = "ctl"
peers = ["10.0.0.1:9878", "10.0.0.2:9878", "10.0.0.3:9878"]`)
	if len(c.Peers) != 3 || c.Validate() != nil {
		t.Fatalf("controller = %+v (%v)", c, c.Validate())
	}
}
