package driver

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/nomad/plugins/drivers"

	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// After a plugin restart, the re-check of a drifted binding is still trying
// to repair it (its bind calls fail, or hang) when Nomad stops and destroys
// the task. Once the faults clear, nothing may bind again for the stopped
// task: the EIP stays free (the backend gone) and no owner record is left.
func TestHarnessRecoverVerifyRacesStop(t *testing.T) {
	image := dockerImage(t)
	unbindEIP := func(t *testing.T, env *cloudEnv, _ *drivers.TaskConfig) {
		if err := env.sim.API.UnBindEIP(context.Background(), "eip-a", testUHost); err != nil {
			t.Fatal(err)
		}
	}
	eipBound := func(t *testing.T, env *cloudEnv, _ *drivers.TaskConfig) bool { return env.eipBoundTo(t, "eip-a") != "" }
	for _, tc := range []struct {
		name   string
		rmq    RocketMQConfig
		action string // the bind call the fault hits
		hang   bool   // the fault hangs the call instead of failing it
		drift  func(t *testing.T, env *cloudEnv, task *drivers.TaskConfig)
		bound  func(t *testing.T, env *cloudEnv, task *drivers.TaskConfig) bool
	}{
		{name: "broker/bind failing", rmq: brokerRMQ("eip-a"), action: "BindEIP", drift: unbindEIP, bound: eipBound},
		{name: "broker/bind hanging", rmq: brokerRMQ("eip-a"), action: "BindEIP", hang: true, drift: unbindEIP, bound: eipBound},
		{
			name: "namesrv/allocate failing", rmq: nameServerRMQ(), action: "AllocateBackend",
			drift: func(t *testing.T, env *cloudEnv, task *drivers.TaskConfig) {
				for _, b := range env.backendsOf(t, testUHost, listenPortOf(task)) {
					if err := env.sim.API.ReleaseBackend(context.Background(), "ulb-ns", b.ID); err != nil {
						t.Fatal(err)
					}
				}
			},
			bound: func(t *testing.T, env *cloudEnv, task *drivers.TaskConfig) bool {
				return len(env.backendsOf(t, testUHost, listenPortOf(task))) != 0
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newCloudEnv(t)
			// A hanging call is given up by the client after call_timeout:
			// long, so that only a cancellation ends it early.
			opts := pluginOpts{}
			if tc.hang {
				opts = pluginOpts{CallTimeout: "30s", BindTimeout: "60s"}
			}
			cfg := env.pluginConfig(opts)
			first := newHarness(t, cfg)
			task := newTask(t, image, tc.rmq)
			cleanup := first.MkAllocDir(task, false)
			defer cleanup()
			handle, _, err := first.StartTask(task)
			if err != nil {
				t.Fatalf("StartTask: %v", err)
			}
			if !tc.bound(t, env, task) || len(env.ownerRecords(t)) != 1 {
				t.Fatalf("not bound after start (owner records %v)", env.ownerRecords(t))
			}
			first.crash()

			// While the plugin is down the binding drifts, and the cloud
			// starts failing (or hanging) the calls that would repair it.
			tc.drift(t, env, task)
			rule := ucloudsim.FaultRule{Action: tc.action, HTTPStatus: 503}
			if tc.hang {
				rule = ucloudsim.FaultRule{Action: tc.action, Timeout: true}
			}
			if err := env.sim.Sim.SetFaults(ucloudsim.Faults{Rules: []ucloudsim.FaultRule{rule}}); err != nil {
				t.Fatal(err)
			}
			seq := env.sim.LastSeq()
			second := newHarness(t, cfg)
			defer second.DestroyTask(task.ID, true)
			if err := second.RecoverTask(handle); err != nil {
				t.Fatalf("RecoverTask: %v", err)
			}
			if tc.hang {
				// The hanging call is logged only when it ends; its
				// describe comes just before it.
				waitFor(t, 20*time.Second, "the re-check to read the EIP", func() bool {
					return len(env.actionsSince("DescribeEIP", seq)) >= 1
				})
				time.Sleep(500 * time.Millisecond)
			} else {
				waitFor(t, 20*time.Second, "the re-check to retry its bind", func() bool {
					return len(env.actionsSince(tc.action, seq)) >= 2
				})
			}

			stopped := time.Now()
			if err := second.StopTask(task.ID, 10*time.Second, "SIGTERM"); err != nil {
				t.Fatalf("StopTask: %v", err)
			}
			if err := second.DestroyTask(task.ID, true); err != nil {
				t.Fatalf("DestroyTask: %v", err)
			}
			if tc.hang {
				calls := env.actionsSince(tc.action, seq)
				if len(calls) != 1 || calls[0].HTTPStatus != 0 || calls[0].Time.Add(calls[0].Duration).After(stopped.Add(10*time.Second)) {
					t.Errorf("the hanging %s of the re-check was not cut short by the stop: %+v", tc.action, calls)
				}
			}

			// The re-check's retries are at most ~2.4s apart: after 3s
			// without a bind call it has stopped trying.
			seq = env.sim.LastSeq()
			time.Sleep(3 * time.Second)
			if n := len(env.actionsSince(tc.action, seq)); n != 0 {
				t.Errorf("%d %s calls after the task was destroyed: the re-check kept going", n, tc.action)
			}
			if err := env.sim.Sim.SetFaults(ucloudsim.Faults{}); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) && !tc.bound(t, env, task) {
				time.Sleep(50 * time.Millisecond)
			}
			if tc.bound(t, env, task) {
				t.Errorf("bound again after the task was destroyed (owner records %v)", env.ownerRecords(t))
			}
			if keys := env.ownerRecords(t); len(keys) != 0 {
				t.Errorf("owner records left after the task was destroyed: %v", keys)
			}
		})
	}
}
