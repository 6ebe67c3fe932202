//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// Memory at scale (`make bench`, section "plugin memory at scale"): the
// plugin process's RSS and goroutines (go_goroutines of its /metrics) with
// no task, with 10 and with 100 small FROM-scratch tasks on one client, in
// private mode (beside the docker driver's plugin running the same tasks)
// and with bindings (brokers each binding an EIP of the simulator).
// RSS is VmRSS of the plugin process alone: the per-task docker_logger
// processes (this binary re-executed) and Nomad's logmon are counted
// apart, as they are the same for both drivers.

// scaleJob is a service job of count small tasks.
func scaleJob(job, image, driver, rocketmqBlock string, count int) string {
	return fmt.Sprintf(`
job %[1]q {
  datacenters = ["dc1"]
  group "g" {
    count = %[5]d
    network {
      port "rmq" {}
    }
    task "app" {
      driver = %[3]q
      config {
        image = %[2]q
        args  = ["serve"]
        ports = ["rmq"]
        %[4]s
      }
      env {
        PORT = "${NOMAD_PORT_rmq}"
      }
      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
`, job, image, driver, rocketmqBlock, count)
}

// scaleSizes are the task counts measured; RMQ_BENCH_SCALE overrides them
// ("10,100").
func scaleSizes() []int {
	out := []int{10, 100}
	if v := os.Getenv("RMQ_BENCH_SCALE"); v != "" {
		out = nil
		for _, f := range strings.Split(v, ",") {
			if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
				out = append(out, n)
			}
		}
	}
	return out
}

// goroutines reads go_goroutines from a /metrics URL.
func goroutines(t *testing.T, metricsURL string) int {
	t.Helper()
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatalf("GET %s: %v", metricsURL, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	t.Fatalf("no go_goroutines in %s", metricsURL)
	return 0
}

// runScaled runs count tasks of one job, waits until all run and settles,
// calls measure, then stops the job and waits until every container is
// gone.
func runScaled(t *testing.T, c *testutil.NomadCluster, spec, job string, count int, settle time.Duration, measure func()) {
	t.Helper()
	c.RunJob(t, spec)
	allocs := c.WaitRunning(t, job, count, 10*time.Minute)
	time.Sleep(settle)
	measure()
	nomadOK(t, c, "job", "stop", "-purge", "-detach", job)
	ids := map[string]bool{}
	for _, a := range allocs {
		ids[a.ID] = true
	}
	waitFor(t, 5*time.Minute, fmt.Sprintf("%d containers of %s removed", count, job), func() bool {
		out, err := testutil.Docker("ps", "-a", "--format", `{{.Label "com.hashicorp.nomad.alloc_id"}}`)
		if err != nil {
			return false
		}
		for _, id := range strings.Fields(out) {
			if ids[id] {
				return false
			}
		}
		return true
	})
}

// TestBenchMemory: private mode, rocketmq and docker.
func TestBenchMemory(t *testing.T) {
	if os.Getenv("RMQ_BENCH") != "1" {
		t.Skip("benchmark: run with RMQ_BENCH=1 (make bench)")
	}
	e := setup(t)
	buildDockerPlugin(t, e.pluginDir)
	port := testutil.FreeTCPPort(t)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	hcl := fmt.Sprintf("plugin \"rmq-driver\" {\n  config {\n    metrics_listen = \"127.0.0.1:%d\"\n  }\n}\n%s", port, benchStartHCL)
	c := testutil.StartNomad(t, testutil.NomadOptions{PluginDir: e.pluginDir, ClientHCL: func(int) string { return hcl }})
	ours := func() string { return c.Clients[0].PluginDir + "/rmq-driver" }
	theirs := func() string { return c.Clients[0].PluginDir + "/docker" }

	time.Sleep(10 * time.Second)
	g0 := goroutines(t, metricsURL)
	fmt.Printf("BENCH memory mode=private tasks=0 rocketmq_plugin_rss_mib=%.1f docker_plugin_rss_mib=%.1f rocketmq_goroutines=%d\n",
		rssOf(t, ours()), rssOf(t, theirs()), g0)
	for _, n := range scaleSizes() {
		var rss float64
		var g int
		runScaled(t, c, scaleJob("mem-rmq", e.image, "rocketmq", brokerBlock, n), "mem-rmq", n, 10*time.Second, func() {
			rss, g = rssOf(t, ours()), goroutines(t, metricsURL)
		})
		var rssDocker float64
		runScaled(t, c, scaleJob("mem-docker", e.image, "docker", "", n), "mem-docker", n, 10*time.Second, func() {
			rssDocker = rssOf(t, theirs())
		})
		fmt.Printf("BENCH memory mode=private tasks=%d rocketmq_plugin_rss_mib=%.1f docker_plugin_rss_mib=%.1f rocketmq_goroutines=%d goroutines_per_task=%.1f\n",
			n, rss, rssDocker, g, float64(g-g0)/float64(n))
	}
	time.Sleep(10 * time.Second)
	fmt.Printf("BENCH memory mode=private tasks=0_after rocketmq_plugin_rss_mib=%.1f docker_plugin_rss_mib=%.1f rocketmq_goroutines=%d\n",
		rssOf(t, ours()), rssOf(t, theirs()), goroutines(t, metricsURL))
}

// scaleState is the demo account with 100 more EIPs, eip-bench-000 to
// eip-bench-099.
func scaleState(t *testing.T) (*ucloudsim.State, []string) {
	t.Helper()
	st := loadDemoState(t)
	var ids []string
	for i := 0; i < 100; i++ {
		id := fmt.Sprintf("eip-bench-%03d", i)
		ids = append(ids, id)
		st.EIPs = append(st.EIPs, ucloudsim.EIP{ID: id, IP: fmt.Sprintf("198.51.100.%d", i+1), Name: id, Tag: "rocketmq", Bandwidth: 1})
	}
	return st, ids
}

// TestBenchMemoryBound: brokers in public mode, each binding its EIP; the
// settle time covers one periodic re-check of every binding (30 s).
func TestBenchMemoryBound(t *testing.T) {
	if os.Getenv("RMQ_BENCH") != "1" {
		t.Skip("benchmark: run with RMQ_BENCH=1 (make bench)")
	}
	st, ids := scaleState(t)
	port := testutil.FreeTCPPort(t)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	pe := startPublicEnv(t, st, port)
	ours := func() string { return pe.nomad.Clients[0].PluginDir + "/rmq-driver" }
	ce := &cloudEnv{sim: pe.sim}

	time.Sleep(10 * time.Second)
	g0 := goroutines(t, metricsURL)
	fmt.Printf("BENCH memory mode=public tasks=0 rocketmq_plugin_rss_mib=%.1f rocketmq_goroutines=%d\n", rssOf(t, ours()), g0)
	for _, n := range scaleSizes() {
		block := fmt.Sprintf(`rocketmq {
          cluster = "c1"
          role    = "broker"
          mode    = "public"
          port    = "rmq"
          eip {
            ids = ["%s"]
          }
        }`, strings.Join(ids[:n], `", "`))
		var rss float64
		var g, bound int
		runScaled(t, pe.nomad, scaleJob("mem-bound", pe.image, "rocketmq", block, n), "mem-bound", n, 35*time.Second, func() {
			rss, g = rssOf(t, ours()), goroutines(t, metricsURL)
			b := ce.eipBindings()
			for _, id := range ids[:n] {
				if b[id] != "" {
					bound++
				}
			}
		})
		if bound != n {
			t.Fatalf("%d of %d EIPs bound while the brokers ran", bound, n)
		}
		waitFor(t, 2*time.Minute, "EIPs released", func() bool {
			b := ce.eipBindings()
			for _, id := range ids[:n] {
				if b[id] != "" {
					return false
				}
			}
			return true
		})
		fmt.Printf("BENCH memory mode=public tasks=%d eips_bound=%d rocketmq_plugin_rss_mib=%.1f rocketmq_goroutines=%d goroutines_per_task=%.1f\n",
			n, bound, rss, g, float64(g-g0)/float64(n))
	}
}
