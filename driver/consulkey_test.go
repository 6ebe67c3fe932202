package driver

import (
	"net"
	"strings"
	"testing"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/nomad/nomad/structs"

	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// A broker whose EIP id comes from Consul: an unreachable Consul (or a
// transient UCloud failure) is worth a restart of the task; a missing or
// malformed key is not, and the message names the key and the fix.
func TestStartTaskConsulKeyErrors(t *testing.T) {
	rmq := RocketMQConfig{Cluster: "orders", Role: RoleBroker, Mode: ModePublic, Port: "rmq", EIP: &EIPConfig{ConsulKey: true}}
	const key = "brokerEip/orders/eipId/0"
	start := func(t *testing.T, h *harness, rmq RocketMQConfig) error {
		t.Helper()
		task := newTask(t, "rmq-nomad/not-pulled:never", rmq)
		_, _, err := h.StartTask(task)
		if err == nil {
			h.DestroyTask(task.ID, true)
			t.Fatal("StartTask succeeded")
		}
		t.Logf("StartTask: %v", err)
		return err
	}
	t.Run("consul unreachable", func(t *testing.T) {
		env := newSimEnv(t)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := l.Addr().String()
		l.Close()
		h := newHarness(t, env.pluginConfig(pluginOpts{ConsulAddr: closed}))
		err = start(t, h, rmq)
		if !structs.IsRecoverable(err) {
			t.Errorf("an unreachable consul failed the task for good (not recoverable): %v", err)
		}
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name the consul key %s: %v", key, err)
		}
	})
	t.Run("ucloud failing", func(t *testing.T) {
		env := newSimEnv(t)
		if err := env.sim.Sim.SetFaults(ucloudsim.Faults{Rules: []ucloudsim.FaultRule{{Action: "BindEIP", HTTPStatus: 503}}}); err != nil {
			t.Fatal(err)
		}
		h := newHarness(t, env.pluginConfig(pluginOpts{BindTimeout: "1s"}))
		err := start(t, h, brokerRMQ("eip-a"))
		if !structs.IsRecoverable(err) {
			t.Errorf("a transient UCloud failure failed the task for good (not recoverable): %v", err)
		}
		if on := env.eipBoundTo(t, "eip-a"); on != "" {
			t.Errorf("eip-a bound to %s after the failed bind", on)
		}
	})
	for _, tc := range []struct {
		name  string
		value *string
	}{
		{"key missing", nil},
		{"key malformed", ptr("not an eip id")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newCloudEnv(t)
			if tc.value != nil {
				if _, err := env.consul.Client.KV().Put(&consulapi.KVPair{Key: key, Value: []byte(*tc.value)}, nil); err != nil {
					t.Fatal(err)
				}
			}
			h := newHarness(t, env.pluginConfig(pluginOpts{}))
			err := start(t, h, rmq)
			if structs.IsRecoverable(err) {
				t.Errorf("a %s is recoverable; restarting cannot fix it: %v", tc.name, err)
			}
			for _, want := range []string{key, "consul kv put " + key} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q: %v", want, err)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
