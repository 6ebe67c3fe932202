package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// StartController starts a DLedger controller (one peer, group "test")
// on the host network, on a loopback port of its own, adds it to r (it is
// removed with r's containers) and waits until its port answers. Brokers
// started with ControllerBrokerConf(addr) then run in controller mode.
func (r *RocketMQ) StartController(t testing.TB) string {
	t.Helper()
	port := FreeTCPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	conf := filepath.Join(t.TempDir(), "controller.conf")
	body := fmt.Sprintf("controllerDLegerGroup=test\ncontrollerDLegerPeers=n0-%s\ncontrollerDLegerSelfId=n0\n", addr)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	name := containerName("controller")
	if _, err := Docker("run", "-d", "--name", name, "--network", "host", "-v", conf+":/conf/controller.conf:ro",
		"-e", "ROCKETMQ_CONTROLLER_CONF=/conf/controller.conf", r.image, "mqcontroller"); err != nil {
		t.Fatal(err)
	}
	r.names = append(r.names, name)
	WaitListening(t, "controller", addr, name)
	return addr
}

// ControllerBrokerConf is a broker config that makes a replica of a
// controller-mode group, as the driver writes it (docs/replication.md):
// the controller assigns the id and elects the master; an ack waits for
// minISR replicas. brokerIP2 and haListenPort are the image's defaults
// (the advertised IP, listenPort+1).
func ControllerBrokerConf(controller string, minISR int) string {
	return fmt.Sprintf("enableControllerMode=true\ncontrollerAddr=%s\nbrokerId=-1\nbrokerRole=SLAVE\nallAckInSyncStateSet=true\nminInSyncReplicas=%d\n", controller, minISR)
}
