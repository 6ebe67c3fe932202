//go:build e2e

package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// TestDriverLifecycle: a rocketmq job runs, its port answers, logs and exec
// work, the advertised address reaches the process, and stopping the job
// removes the container.
func TestDriverLifecycle(t *testing.T) {
	e := setup(t)
	c := testutil.StartNomad(t, testutil.NomadOptions{PluginDir: e.pluginDir, ClientHCL: func(int) string { return reaperHCL }})

	c.RunJob(t, jobSpec("life", e.image, brokerBlock))
	allocs := c.WaitRunning(t, "life", 1, 90*time.Second)
	a := allocs[0]
	port, ok := a.PortOf("rmq")
	if !ok {
		t.Fatalf("alloc %s has no rmq port", a.ID)
	}

	body := testutil.WaitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 30*time.Second)
	if want := fmt.Sprintf("advertised=127.0.0.1:%d", port); !strings.Contains(body, want) {
		t.Fatalf("app answered %q, want it to contain %q", body, want)
	}

	logs := nomadOK(t, c, "alloc", "logs", a.ID, "app")
	if !strings.Contains(logs, "testapp listening on :"+strconv.Itoa(port)) {
		t.Fatalf("alloc logs = %q, want the app's start line", logs)
	}

	out := nomadOK(t, c, "alloc", "exec", "-task", "app", a.ID, "/testapp", "env", "ROCKETMQ_ADVERTISED_PORT")
	if strings.TrimSpace(out) != strconv.Itoa(port) {
		t.Fatalf("alloc exec env ROCKETMQ_ADVERTISED_PORT = %q, want %d", out, port)
	}
	conf := nomadOK(t, c, "alloc", "exec", "-task", "app", a.ID, "/testapp", "cat", "/local/rocketmq/broker.conf")
	for _, want := range []string{"brokerIP1=127.0.0.1", "listenPort=" + strconv.Itoa(port), "brokerClusterName=c1"} {
		if !strings.Contains(conf, want) {
			t.Fatalf("broker.conf = %q, want a line %q", conf, want)
		}
	}

	if !hasEvent(t, c, "life", "advertises 127.0.0.1:"+strconv.Itoa(port)) {
		t.Fatalf("no task event saying what the task advertises")
	}

	id := containerOf(t, a.ID)
	nomadOK(t, c, "job", "stop", "-detach", "life")
	waitFor(t, 60*time.Second, "container removed after job stop", func() bool {
		out, err := testutil.Docker("ps", "-aq", "--no-trunc", "--filter", "id="+id)
		return err == nil && out == ""
	})
}

// TestRecoverAfterPluginKill: the plugin is killed with SIGKILL while the
// task runs; Nomad relaunches it and the same container is recovered, still
// running and still stoppable.
func TestRecoverAfterPluginKill(t *testing.T) {
	e := setup(t)
	c := testutil.StartNomad(t, testutil.NomadOptions{PluginDir: e.pluginDir, ClientHCL: func(int) string { return reaperHCL }})
	c.RunJob(t, jobSpec("pkill", e.image, brokerBlock))
	a := c.WaitRunning(t, "pkill", 1, 90*time.Second)[0]
	id := containerOf(t, a.ID)

	pid := c.PluginPID(c.Clients[0])
	if pid == 0 {
		t.Fatalf("no rmq-driver plugin process found")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill plugin: %v", err)
	}
	waitFor(t, 60*time.Second, "plugin relaunched", func() bool {
		p := c.PluginPID(c.Clients[0])
		return p != 0 && p != pid
	})
	assertRecovered(t, c, "pkill", a.ID, id)
}

// TestRecoverAfterClientRestart: the client agent restarts (with a data_dir)
// while the task runs; the task is recovered from our driver state alone.
func TestRecoverAfterClientRestart(t *testing.T) {
	e := setup(t)
	c := testutil.StartNomad(t, testutil.NomadOptions{PluginDir: e.pluginDir, ClientHCL: func(int) string { return reaperHCL }})
	c.RunJob(t, jobSpec("crestart", e.image, brokerBlock))
	a := c.WaitRunning(t, "crestart", 1, 90*time.Second)[0]
	id := containerOf(t, a.ID)

	c.Clients[0].Restart()
	c.WaitNodesReady(t, 1, 90*time.Second)
	waitFor(t, 60*time.Second, "client log shows the task recovered", func() bool {
		return strings.Contains(c.Clients[0].LogTail(400), "recovered rocketmq task")
	})
	assertRecovered(t, c, "crestart", a.ID, id)
}

// assertRecovered checks the alloc still runs the same container, stays so
// past the reaper's grace, and that stopping the job removes it.
func assertRecovered(t *testing.T, c *testutil.NomadCluster, job, allocID, containerID string) {
	t.Helper()
	// Past our reaper's creation grace (5s) and several periods.
	time.Sleep(8 * time.Second)
	allocs := c.WaitRunning(t, job, 1, 30*time.Second)
	if allocs[0].ID != allocID {
		t.Fatalf("alloc replaced: was %s, now %s", allocID, allocs[0].ID)
	}
	if got := containerOf(t, allocID); got != containerID {
		t.Fatalf("container replaced: was %s, now %s", containerID, got)
	}
	port, _ := allocs[0].PortOf("rmq")
	testutil.WaitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 10*time.Second)
	nomadOK(t, c, "job", "stop", "-detach", job)
	waitFor(t, 60*time.Second, "container removed after job stop", func() bool {
		out, err := testutil.Docker("ps", "-aq", "--no-trunc", "--filter", "id="+containerID)
		return err == nil && out == ""
	})
}

// TestInvalidTaskConfig: bad rocketmq blocks fail the task with a message
// naming the field.
func TestInvalidTaskConfig(t *testing.T) {
	e := setup(t)
	c := testutil.StartNomad(t, testutil.NomadOptions{PluginDir: e.pluginDir, ClientHCL: func(int) string { return reaperHCL }})

	cases := []struct {
		name  string
		block string
		want  []string
	}{
		{"unknown-key", `rocketmq {
          cluster = "c1"
          role    = "broker"
          port    = "rmq"
          colour  = "blue"
        }`, []string{`"colour"`}},
		{"bad-role", `rocketmq {
          cluster = "c1"
          role    = "gateway"
          port    = "rmq"
        }`, []string{"rocketmq.role", `"gateway"`, `set role = "namesrv", "broker", "controller" or "proxy"`}},
		{"missing-port-label", `rocketmq {
          cluster = "c1"
          role    = "namesrv"
          port    = "nope"
        }`, []string{"rocketmq.port", `"nope"`}},
		{"missing-cluster", `rocketmq {
          role = "namesrv"
          port = "rmq"
        }`, []string{`"cluster"`}},
		{"bad-mode", `rocketmq {
          cluster = "c1"
          role    = "broker"
          port    = "rmq"
          mode    = "internet"
        }`, []string{"rocketmq.mode", `"internet"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			job := "bad-" + tc.name
			c.RunJob(t, jobSpec(job, e.image, tc.block))
			var msg string
			waitFor(t, 60*time.Second, "task failed with a validation message", func() bool {
				allocs, err := c.JobAllocs(job)
				if err != nil || len(allocs) == 0 {
					return false
				}
				for _, ts := range allocs[0].TaskStates {
					if !ts.Failed {
						return false
					}
					for _, ev := range ts.Events {
						msg += ev.DisplayMessage + " | " + ev.ValidationError + " | " + ev.DriverError + "\n"
					}
					return true
				}
				return false
			})
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Fatalf("task events do not mention %q:\n%s", w, msg)
				}
			}
			if out, _ := testutil.Docker("ps", "-aq", "--filter", "label=com.hashicorp.nomad.job_name="+job); out != "" {
				t.Fatalf("a container exists for invalid job %s: %s", job, out)
			}
			nomadOK(t, c, "job", "stop", "-detach", "-purge", job)
		})
	}
}

// hasEvent reports whether any task event of the job's allocs contains s.
func hasEvent(t *testing.T, c *testutil.NomadCluster, job, s string) bool {
	t.Helper()
	allocs, err := c.JobAllocs(job)
	if err != nil {
		t.Fatalf("%v", err)
	}
	for _, a := range allocs {
		for _, ts := range a.TaskStates {
			for _, ev := range ts.Events {
				if strings.Contains(ev.DisplayMessage, s) || strings.Contains(ev.Message, s) {
					return true
				}
			}
		}
	}
	return false
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for: %s", timeout, what)
}
