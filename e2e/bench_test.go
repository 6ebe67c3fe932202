//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// TestBenchStartup is the issue-2 benchmark, run by `make bench` (it is
// skipped unless RMQ_BENCH=1): time from `nomad job run` (the job's submit
// time) to the task's Started event, driver = "rocketmq" vs driver =
// "docker" (Nomad's docker driver built as an external plugin, so both run
// out of process the same way), same image, alternated; and both plugin
// processes' idle RSS.
func TestBenchStartup(t *testing.T) {
	if os.Getenv("RMQ_BENCH") != "1" {
		t.Skip("benchmark: run with RMQ_BENCH=1 (make bench)")
	}
	runs := 10
	if v, err := strconv.Atoi(os.Getenv("RMQ_BENCH_RUNS")); err == nil && v > 0 {
		runs = v
	}
	e := setup(t)
	// Nomad's own docker driver as an external plugin in the same dir.
	build := exec.Command("go", "build", "-o", filepath.Join(e.pluginDir, "docker"), "github.com/hashicorp/nomad/drivers/docker/cmd")
	build.Dir = testutil.RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build external docker plugin: %v\n%s", err, out)
	}
	c := testutil.StartNomad(t, testutil.NomadOptions{PluginDir: e.pluginDir, ClientHCL: func(int) string { return reaperHCL }})

	var ours, theirs []time.Duration
	for i := 0; i < runs; i++ {
		for _, drv := range []string{"rocketmq", "docker"} {
			job := fmt.Sprintf("bench-%s-%d", drv, i)
			spec := jobSpec(job, e.image, brokerBlock)
			if drv == "docker" {
				spec = dockerJobSpec(job, e.image)
			}
			c.RunJob(t, spec)
			a := c.WaitRunning(t, job, 1, 60*time.Second)[0]
			d := startLatency(t, c, job, a.ID)
			if drv == "rocketmq" {
				ours = append(ours, d)
			} else {
				theirs = append(theirs, d)
			}
			nomadOK(t, c, "job", "stop", "-purge", "-detach", job)
		}
	}
	// Idle RSS: let the stopped tasks go, then read both plugin processes.
	time.Sleep(5 * time.Second)
	rssOurs := rssOf(t, filepath.Join(c.Clients[0].PluginDir, "rmq-driver"))
	rssDocker := rssOf(t, filepath.Join(c.Clients[0].PluginDir, "docker"))

	mo, md := median(ours), median(theirs)
	fmt.Printf("BENCH startup runs=%d rocketmq_median_ms=%.1f docker_median_ms=%.1f ratio=%.3f\n",
		runs, ms(mo), ms(md), float64(mo)/float64(md))
	fmt.Printf("BENCH startup rocketmq_ms=%s\n", list(ours))
	fmt.Printf("BENCH startup docker_ms=%s\n", list(theirs))
	fmt.Printf("BENCH idle_rss rocketmq_plugin_mib=%.1f docker_plugin_mib=%.1f\n", rssOurs, rssDocker)
}

// startLatency is the time from the job's submission to the task's Started
// event, both stamped by the Nomad agents on this machine.
func startLatency(t *testing.T, c *testutil.NomadCluster, job, allocID string) time.Duration {
	t.Helper()
	var j struct{ SubmitTime int64 }
	if err := c.GetJSON("/v1/job/"+job, &j); err != nil {
		t.Fatal(err)
	}
	var a struct {
		TaskStates map[string]struct {
			Events []struct {
				Type string
				Time int64
			}
		}
	}
	if err := c.GetJSON("/v1/allocation/"+allocID, &a); err != nil {
		t.Fatal(err)
	}
	for _, ev := range a.TaskStates["app"].Events {
		if ev.Type == "Started" {
			return time.Duration(ev.Time - j.SubmitTime)
		}
	}
	t.Fatalf("alloc %s has no Started event", allocID)
	return 0
}

func rssOf(t *testing.T, exe string) float64 {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(string(cmd), "\x00")
		if argv[0] != exe || (len(argv) > 1 && argv[1] != "") {
			continue // the plugin itself, not its docker_logger children
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(st), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				kb, _ := strconv.Atoi(strings.Fields(line)[1])
				return float64(kb) / 1024
			}
		}
	}
	t.Fatalf("no process running %s", exe)
	return 0
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func list(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.0f", ms(d))
	}
	return strings.Join(parts, ",")
}
