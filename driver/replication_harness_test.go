package driver

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/nomad/structs"
	"github.com/hashicorp/nomad/plugins/drivers"
)

// freeTriple returns a port p with p-2, p and p+1 free on loopback.
func freeTriple(t *testing.T) int {
	t.Helper()
	free := func(p int) bool {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		l.Close()
		return true
	}
	for p := 27002 + 4*(os.Getpid()%500); p < 32000; p += 4 {
		if free(p-2) && free(p) && free(p+1) {
			return p
		}
	}
	t.Fatal("no free port triple")
	return 0
}

func readTaskFile(t *testing.T, task *drivers.TaskConfig, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(task.TaskDir().LocalDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A replicated broker in public mode advertises its EIP to clients
// (brokerIP1) and its host's private address to its slaves (brokerIP2, the
// HA port's host IP), with the controller keys; a controller finds its id
// among its peers by its host address, and one whose address is none of
// them does not start.
func TestHarnessReplicationConf(t *testing.T) {
	image := dockerImage(t)
	env := newCloudEnv(t)
	h := newHarness(t, env.pluginConfig(pluginOpts{}))
	p := freeTriple(t)
	controllers := []string{"127.0.0.1:19001", "127.0.0.1:19002", "127.0.0.1:19003"}

	broker := newTask(t, image, brokerRMQ("eip-a"))
	broker.Resources.Ports = &structs.AllocatedPorts{
		{Label: "rmq", Value: p, HostIP: "127.0.0.1"},
		{Label: "fast", Value: p - 2, HostIP: "127.0.0.1"},
		{Label: "ha", Value: p + 1, HostIP: "127.0.0.1"},
	}
	block := rmqBlock(brokerRMQ("eip-a"))
	block["fast_port"], block["ha_port"], block["controllers"] = "fast", "ha", controllers
	setTaskConfig(t, broker, map[string]any{"image": image, "args": []string{"serve"}, "ports": []string{"rmq", "fast", "ha"}, "rocketmq": block})
	defer h.MkAllocDir(broker, false)()
	if _, _, err := h.StartTask(broker); err != nil {
		t.Fatalf("StartTask broker: %v", err)
	}
	defer h.DestroyTask(broker.ID, true)
	conf := readTaskFile(t, broker, brokerConfPath)
	for _, want := range []string{
		"brokerIP1=203.0.113.10\n", fmt.Sprintf("listenPort=%d\n", p),
		"brokerIP2=127.0.0.1\n", fmt.Sprintf("haListenPort=%d\n", p+1),
		"enableControllerMode=true\n", "controllerAddr=" + strings.Join(controllers, ";") + "\n",
		"brokerId=-1\n", "brokerRole=SLAVE\n", "allAckInSyncStateSet=true\n", "minInSyncReplicas=2\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("broker.conf lacks %q:\n%s", want, conf)
		}
	}

	ctl := newTask(t, image, RocketMQConfig{})
	cport := ctl.Resources.Ports
	self := fmt.Sprintf("127.0.0.1:%d", (*cport)[0].Value)
	peers := []string{"127.0.0.1:19001", self, "127.0.0.1:19003"}
	setTaskConfig(t, ctl, map[string]any{"image": image, "args": []string{"serve"}, "ports": []string{"rmq"},
		"rocketmq": map[string]any{"cluster": "orders", "role": "controller", "port": "rmq", "peers": peers}})
	defer h.MkAllocDir(ctl, false)()
	if _, _, err := h.StartTask(ctl); err != nil {
		t.Fatalf("StartTask controller: %v", err)
	}
	defer h.DestroyTask(ctl.ID, true)
	cconf := readTaskFile(t, ctl, controllerConfPath)
	for _, want := range []string{
		"controllerDLegerGroup=orders\n", "controllerDLegerSelfId=n1\n",
		"controllerDLegerPeers=n0-127.0.0.1:19001;n1-" + self + ";n2-127.0.0.1:19003\n",
	} {
		if !strings.Contains(cconf, want) {
			t.Errorf("controller.conf lacks %q:\n%s", want, cconf)
		}
	}

	stray := newTask(t, image, RocketMQConfig{})
	setTaskConfig(t, stray, map[string]any{"image": image, "args": []string{"serve"}, "ports": []string{"rmq"},
		"rocketmq": map[string]any{"cluster": "orders", "role": "controller", "port": "rmq", "peers": controllers}})
	defer h.MkAllocDir(stray, false)()
	_, _, err := h.StartTask(stray)
	if err == nil {
		h.DestroyTask(stray.ID, true)
		t.Fatal("a controller whose address is none of its peers started")
	}
	if !strings.Contains(err.Error(), "rocketmq.peers: this controller listens at") {
		t.Fatalf("want an error naming rocketmq.peers, got %v", err)
	}
}
