package driver

import (
	"testing"
	"time"
)

// A container that fails to start leaves nothing bound: the EIP is free
// again (or the backend gone) and no owner record remains.
func TestHarnessFailedStartReleasesBinding(t *testing.T) {
	image := dockerImage(t)
	for _, tc := range []struct {
		name string
		rmq  RocketMQConfig
	}{
		{"broker", brokerRMQ("eip-a")},
		{"namesrv", nameServerRMQ()},
	} {
		t.Run(tc.name+"/entrypoint missing", func(t *testing.T) {
			env := newCloudEnv(t)
			h := newHarness(t, env.pluginConfig(pluginOpts{}))
			task := newTask(t, image, tc.rmq)
			setTaskConfig(t, task, map[string]any{
				"image": image, "entrypoint": []string{"/no-such-entrypoint"}, "rocketmq": rmqBlock(tc.rmq),
			})
			cleanup := h.MkAllocDir(task, false)
			defer cleanup()

			_, _, err := h.StartTask(task)
			if err == nil {
				t.Fatal("StartTask succeeded with an entrypoint that does not exist")
			}
			t.Logf("StartTask failed as expected: %v", err)
			if env.sim.Requests("BindEIP")+env.sim.Requests("AllocateBackend") == 0 {
				t.Fatal("nothing was bound before the container start: the test does not test the rollback")
			}
			env.requireReleased(t, "eip-a")
			if got := env.backendsOf(t, testUHost, listenPortOf(task)); len(got) != 0 {
				t.Errorf("backends of the failed start left on the vserver: %+v", got)
			}
		})
	}
}

// A name server's backend leaves the VServer before its container is
// signalled; a broker's EIP is released only after its container stopped.
func TestHarnessStopOrdering(t *testing.T) {
	image := dockerImage(t)
	t.Run("namesrv", func(t *testing.T) {
		env := newCloudEnv(t)
		h := newHarness(t, env.pluginConfig(pluginOpts{}))
		task := newTask(t, image, nameServerRMQ())
		cleanup := h.MkAllocDir(task, false)
		defer cleanup()
		handle, _, err := h.StartTask(task)
		if err != nil {
			t.Fatalf("StartTask: %v", err)
		}
		if err := h.WaitUntilStarted(task.ID, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		port := listenPortOf(task)
		if got := env.backendsOf(t, testUHost, port); len(got) != 1 {
			t.Fatalf("backends of %s:%d on the vserver after start: %+v, want one", testUHost, port, got)
		}
		seq, start := env.sim.LastSeq(), time.Now()
		if err := h.StopTask(task.ID, 10*time.Second, "SIGTERM"); err != nil {
			t.Fatalf("StopTask: %v", err)
		}
		if err := h.DestroyTask(task.ID, true); err != nil {
			t.Fatalf("DestroyTask: %v", err)
		}
		rel := env.actionsSince("ReleaseBackend", seq)
		if len(rel) == 0 {
			t.Fatal("the backend was never released")
		}
		released := rel[0].Time.Add(rel[0].Duration)
		killed := firstEvent(t, containerEvents(t, containerOf(t, handle), start), "kill")
		t.Logf("backend released at %s, container signalled at %s", released.Format(time.StampMicro), killed.Format(time.StampMicro))
		if released.After(killed) {
			t.Errorf("the backend was released %s after the container was signalled: clients were sent to a stopping name server", released.Sub(killed))
		}
		if got := env.backendsOf(t, testUHost, port); len(got) != 0 {
			t.Errorf("backends left after stop: %+v", got)
		}
		env.requireReleased(t, "eip-a")
	})
	t.Run("broker", func(t *testing.T) {
		env := newCloudEnv(t)
		h := newHarness(t, env.pluginConfig(pluginOpts{}))
		task := newTask(t, image, brokerRMQ("eip-a"))
		cleanup := h.MkAllocDir(task, false)
		defer cleanup()
		handle, _, err := h.StartTask(task)
		if err != nil {
			t.Fatalf("StartTask: %v", err)
		}
		if err := h.WaitUntilStarted(task.ID, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if on := env.eipBoundTo(t, "eip-a"); on != testUHost {
			t.Fatalf("eip-a is bound to %q after start, want %s", on, testUHost)
		}
		seq, start := env.sim.LastSeq(), time.Now()
		if err := h.StopTask(task.ID, 10*time.Second, "SIGTERM"); err != nil {
			t.Fatalf("StopTask: %v", err)
		}
		if err := h.DestroyTask(task.ID, true); err != nil {
			t.Fatalf("DestroyTask: %v", err)
		}
		unbind := env.actionsSince("UnBindEIP", seq)
		if len(unbind) == 0 {
			t.Fatal("the EIP was never unbound")
		}
		died := firstEvent(t, containerEvents(t, containerOf(t, handle), start), "die")
		t.Logf("container died at %s, eip unbind sent at %s", died.Format(time.StampMicro), unbind[0].Time.Format(time.StampMicro))
		if unbind[0].Time.Before(died) {
			t.Errorf("the EIP was unbound %s before the broker's container stopped", died.Sub(unbind[0].Time))
		}
		env.requireReleased(t, "eip-a")
	})
}
