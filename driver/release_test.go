package driver

import (
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// A release that fails at stop is retried within the bind timeout; when it
// keeps failing, the failure is logged at Error with the ids and the owner
// record stays, for a garbage collector to find.
func TestHarnessReleaseRetriedAtStop(t *testing.T) {
	image := dockerImage(t)
	t.Run("recovers within the budget", func(t *testing.T) {
		env := newCloudEnv(t)
		// 3 attempts per release call: StopTask's and DestroyTask's
		// single calls make 6, fewer than the 10 failures.
		h := newHarness(t, env.pluginConfig(pluginOpts{BindTimeout: "10s", MaxAttempts: 3}))
		task := newTask(t, image, brokerRMQ("eip-a"))
		cleanup := h.MkAllocDir(task, false)
		defer cleanup()
		if _, _, err := h.StartTask(task); err != nil {
			t.Fatalf("StartTask: %v", err)
		}
		if err := env.sim.Sim.SetFaults(ucloudsim.Faults{Rules: []ucloudsim.FaultRule{{Action: "UnBindEIP", HTTPStatus: 503, Count: 10}}}); err != nil {
			t.Fatal(err)
		}
		if err := h.StopTask(task.ID, 10*time.Second, "SIGTERM"); err != nil {
			t.Fatalf("StopTask: %v", err)
		}
		if err := h.DestroyTask(task.ID, true); err != nil {
			t.Errorf("DestroyTask: %v", err)
		}
		env.requireReleased(t, "eip-a")
	})
	t.Run("gives up, keeps the owner record", func(t *testing.T) {
		env := newCloudEnv(t)
		h := newHarness(t, env.pluginConfig(pluginOpts{BindTimeout: "1s", MaxAttempts: 3}))
		task := newTask(t, image, brokerRMQ("eip-a"))
		cleanup := h.MkAllocDir(task, false)
		defer cleanup()
		if _, _, err := h.StartTask(task); err != nil {
			t.Fatalf("StartTask: %v", err)
		}
		if err := env.sim.Sim.SetFaults(ucloudsim.Faults{Rules: []ucloudsim.FaultRule{{Action: "UnBindEIP", HTTPStatus: 503}}}); err != nil {
			t.Fatal(err)
		}
		if err := h.StopTask(task.ID, 10*time.Second, "SIGTERM"); err != nil {
			t.Fatalf("StopTask: %v", err)
		}
		if err := h.DestroyTask(task.ID, true); err == nil {
			t.Error("DestroyTask reported success though the EIP could not be released")
		}
		if on := env.eipBoundTo(t, "eip-a"); on != testUHost {
			t.Errorf("eip-a bound to %q; the failed release should have left it on %s", on, testUHost)
		}
		rec, _, err := env.consul.Client.KV().Get(kvPrefix+"/owners/eip/eip-a", nil)
		if err != nil || rec == nil || !strings.Contains(string(rec.Value), task.AllocID) {
			t.Errorf("owner record of the unreleased EIP = %v (%v); want it kept, naming allocation %s", rec, err, task.AllocID)
		}
		found := false
		for _, l := range h.logs.lines() {
			if l["@level"] == "error" && l["task_id"] == task.ID && l["eip_id"] == "eip-a" && l["alloc_id"] == task.AllocID {
				found = true
			}
		}
		if !found {
			t.Errorf("no error log line naming task %s, alloc %s and eip-a:\n%s", task.ID, task.AllocID, h.logs.tail(30))
		}
	})
}
