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

// Driver start latency (`make bench`, section "driver start latency"; the
// tests skip unless RMQ_BENCH=1): the time from `nomad job run` (the job's
// submit time) to the task's Started event, driver = "rocketmq" against
// driver = "docker" (Nomad's docker driver built as an external plugin, so
// both run out of process the same way), the same image, job shape and
// client, RMQ_BENCH_RUNS (30) rounds with one start of each in turn, the
// order swapped every round. A run starts only once the previous one's
// allocation is stopped and its container gone, so no run shares the
// Docker engine with another's stop. Each start is traced through the
// client's log (bench_trace_test.go); the figures are the medians per
// driver, their ratio with a 95% bootstrap interval, and the per-phase
// medians.

// benchStartHCL is a production client config: our reaper at its defaults
// (docs/reference.md), the docker driver's reaper off, as documented for
// clients that run both drivers. The e2e config's 1 s reaper period would
// list containers during every run.
const benchStartHCL = `
plugin "docker" {
  config {
    gc {
      dangling_containers {
        enabled = false
      }
    }
  }
}
`

// startCase is one kind of start measured: a driver and its job's
// rocketmq block.
type startCase struct {
	name   string // as printed: rocketmq, docker, broker_eip, namesrv_ulb
	driver string
	block  string
	// after runs once the case's allocation is stopped and gone (public
	// mode: wait until the binding is released).
	after func(t *testing.T)
}

func benchRuns() int {
	if v, err := strconv.Atoi(os.Getenv("RMQ_BENCH_RUNS")); err == nil && v > 0 {
		return v
	}
	return 30
}

// buildDockerPlugin builds Nomad's docker driver as an external plugin into
// the plugin dir.
func buildDockerPlugin(t *testing.T, pluginDir string) {
	t.Helper()
	build := exec.Command("go", "build", "-o", filepath.Join(pluginDir, "docker"), "github.com/hashicorp/nomad/drivers/docker/cmd")
	build.Dir = testutil.RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build external docker plugin: %v\n%s", err, out)
	}
}

// TestBenchStartup: private mode (no cloud binding), rocketmq against docker.
func TestBenchStartup(t *testing.T) {
	if os.Getenv("RMQ_BENCH") != "1" {
		t.Skip("benchmark: run with RMQ_BENCH=1 (make bench)")
	}
	e := setup(t)
	buildDockerPlugin(t, e.pluginDir)
	c := testutil.StartNomad(t, testutil.NomadOptions{PluginDir: e.pluginDir, ClientHCL: func(int) string { return benchStartHCL }})
	cases := []startCase{{name: "rocketmq", driver: "rocketmq", block: brokerBlock}, {name: "docker", driver: "docker"}}
	runs := runStarts(t, c, e.image, cases, benchRuns())
	reportStarts(t, c, "private", runs, cases)

	// Idle RSS: let the stopped tasks go, then read both plugin processes.
	time.Sleep(5 * time.Second)
	rssOurs := rssOf(t, filepath.Join(c.Clients[0].PluginDir, "rmq-driver"))
	rssDocker := rssOf(t, filepath.Join(c.Clients[0].PluginDir, "docker"))
	fmt.Printf("BENCH idle_rss rocketmq_plugin_mib=%.1f docker_plugin_mib=%.1f\n", rssOurs, rssDocker)
}

// runStarts runs the rounds and returns each case's traced starts.
func runStarts(t *testing.T, c *testutil.NomadCluster, image string, cases []startCase, rounds int) map[string][]startRun {
	t.Helper()
	out := map[string][]startRun{}
	for i := 0; i < rounds; i++ {
		order := make([]startCase, len(cases))
		for k := range cases {
			order[k] = cases[(k+i)%len(cases)] // rotate: each case leads in turn
		}
		for _, sc := range order {
			job := fmt.Sprintf("bench-%s-%d", sc.name, i)
			c.RunJob(t, appJob(job, image, sc.driver, sc.block))
			a := c.WaitRunning(t, job, 1, 60*time.Second)[0]
			out[sc.name] = append(out[sc.name], startTimes(t, c, job, a.ID, sc.driver))
			nomadOK(t, c, "job", "stop", "-purge", "-detach", job)
			waitStopped(t, c, a.ID)
			if sc.after != nil {
				sc.after(t)
			}
		}
	}
	return out
}

// waitStopped waits until the allocation's container is gone and the
// client reports it terminal.
func waitStopped(t *testing.T, c *testutil.NomadCluster, allocID string) {
	t.Helper()
	waitFor(t, 60*time.Second, "allocation "+allocID+" stopped", func() bool {
		ids, err := testutil.Docker("ps", "-aq", "--filter", "label=com.hashicorp.nomad.alloc_id="+allocID)
		if err != nil || ids != "" {
			return false
		}
		var a struct{ ClientStatus string }
		if err := c.GetJSON("/v1/allocation/"+allocID, &a); err != nil {
			return strings.Contains(err.Error(), "404")
		}
		return a.ClientStatus == "complete" || a.ClientStatus == "failed"
	})
	time.Sleep(200 * time.Millisecond) // the client's own bookkeeping after the stop
}

// reportStarts prints the BENCH lines of one mode: each case against the
// last one (docker), and where the time went.
func reportStarts(t *testing.T, c *testutil.NomadCluster, mode string, runs map[string][]startRun, cases []startCase) {
	t.Helper()
	traceStarts(t, c.Clients[0].LogPath, runs)
	base := cases[len(cases)-1].name
	theirs := latencies(runs[base])
	for _, sc := range cases[:len(cases)-1] {
		ours := latencies(runs[sc.name])
		r, lo, hi := testutil.RatioOfMediansCI(ours, theirs)
		// Also the ratio within each round, whose two runs are seconds
		// apart: the machine's other load moves both alike.
		rr := make([]float64, len(ours))
		for i := range ours {
			rr[i] = ours[i] / theirs[i]
		}
		m, mlo, mhi := testutil.MedianCI(rr)
		fmt.Printf("BENCH startup mode=%s case=%s runs=%d %s_median_ms=%.1f %s_median_ms=%.1f ratio_of_medians=%.3f ci95=%.3f-%.3f median_round_ratio=%.3f ci95=%.3f-%.3f\n",
			mode, sc.name, len(ours), sc.name, testutil.Median(ours), base, testutil.Median(theirs), r, lo, hi, m, mlo, mhi)
	}
	for _, sc := range cases {
		fmt.Printf("BENCH startup_runs mode=%s case=%s ms=%s\n", mode, sc.name, msList(latencies(runs[sc.name])))
	}
	printPhases(mode, runs, cases)
}

// startTimes reads a started allocation's submit time and task events.
func startTimes(t *testing.T, c *testutil.NomadCluster, job, allocID, driver string) startRun {
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
	r := startRun{allocID: allocID, driver: driver, submit: time.Unix(0, j.SubmitTime)}
	for _, ev := range a.TaskStates["app"].Events {
		at := time.Unix(0, ev.Time)
		switch ev.Type {
		case "Received":
			r.received = at
		case "Task Setup":
			r.setup = at
		case "Started":
			r.started = at
		}
	}
	if r.started.IsZero() {
		t.Fatalf("alloc %s has no Started event", allocID)
	}
	return r
}

func latencies(runs []startRun) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		out[i] = ms(r.started.Sub(r.submit))
	}
	return out
}

func rssOf(t *testing.T, exe string) float64 {
	t.Helper()
	pid := pidOf(exe)
	if pid == 0 {
		t.Fatalf("no process running %s", exe)
	}
	return rssMiB(strconv.Itoa(pid))
}

// pidOf is the process running exe itself, not its docker_logger children
// (0 when none).
func pidOf(exe string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(string(cmd), "\x00")
		if argv[0] != exe || (len(argv) > 1 && argv[1] != "") {
			continue
		}
		pid, _ := strconv.Atoi(e.Name())
		return pid
	}
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

func msList(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(parts, ",")
}
