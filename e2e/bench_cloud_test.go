//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// TestBenchFailover (`make bench`, section failover): time from `nomad node drain`
// of the broker's client to its EIP bound on another host, with the
// simulator answering at once and with 50 ms of added latency per call.
func TestBenchFailover(t *testing.T) {
	if os.Getenv("RMQ_BENCH") != "1" {
		t.Skip("benchmark: run with RMQ_BENCH=1 (make bench)")
	}
	runs := 5
	if v, err := strconv.Atoi(os.Getenv("RMQ_BENCH_RUNS")); err == nil && v > 0 {
		runs = v
	}
	for _, latency := range []time.Duration{0, 50 * time.Millisecond} {
		var faults ucloudsim.Faults
		if latency > 0 {
			faults.Rules = []ucloudsim.FaultRule{{Action: "*", Latency: ucloudsim.Duration(latency)}}
		}
		c := startCloudEnv(t, faults)
		c.nomad.RunJob(t, brokerJob("brokers", c.image, demoEIPs[:1]))
		c.assertConverged(t, 0, 1)
		var took, onClient []time.Duration
		for i := 0; i < runs; i++ {
			a := c.nomad.WaitRunning(t, "brokers", 1, 60*time.Second)[0]
			from := c.nodeHosts(t)[a.NodeID]
			start := time.Now()
			nomadOK(t, c.nomad, "node", "drain", "-enable", "-yes", "-detach", "-deadline", "30s", a.NodeID)
			for {
				if eip, ok := c.sim.Snapshot().EIP(demoEIPs[0]); ok && eip.ResourceID != "" && eip.ResourceID != from {
					break
				}
				if time.Since(start) > 2*time.Minute {
					t.Fatalf("eip did not move off %s", from)
				}
				time.Sleep(10 * time.Millisecond)
			}
			took = append(took, time.Since(start))
			c.assertConverged(t, 0, 1)
			recv, bound := c.bindTimes(t, "brokers", a.ID)
			onClient = append(onClient, bound-recv)
			nomadOK(t, c.nomad, "node", "drain", "-disable", "-yes", a.NodeID)
		}
		fmt.Printf("BENCH failover sim_latency_ms=%d runs=%d drain_to_eip_bound_median_ms=%.0f all_ms=%s\n",
			latency.Milliseconds(), runs, ms(median(took)), list(took))
		fmt.Printf("BENCH failover sim_latency_ms=%d runs=%d new_alloc_received_to_eip_bound_median_ms=%.0f all_ms=%s\n",
			latency.Milliseconds(), runs, ms(median(onClient)), list(onClient))
	}
}

// bindTimes returns, for the running alloc of job that replaced old, the
// times its client received it and its driver reported the EIP bound.
func (c *cloudEnv) bindTimes(t *testing.T, job, old string) (time.Duration, time.Duration) {
	t.Helper()
	for _, a := range c.nomad.WaitRunning(t, job, 1, 60*time.Second) {
		if a.ID == old {
			continue
		}
		var full struct {
			TaskStates map[string]struct {
				Events []struct {
					Type           string
					Time           int64
					DisplayMessage string
				}
			}
		}
		if err := c.nomad.GetJSON("/v1/allocation/"+a.ID, &full); err != nil {
			t.Fatal(err)
		}
		var recv, bound int64
		for _, ev := range full.TaskStates["app"].Events {
			switch {
			case ev.Type == "Received":
				recv = ev.Time
			case strings.Contains(ev.DisplayMessage, "bound EIP"):
				bound = ev.Time
			}
		}
		if recv != 0 && bound != 0 {
			return time.Duration(recv), time.Duration(bound)
		}
	}
	t.Fatalf("no replacement alloc of %s with a bind event", job)
	return 0, 0
}

// TestBenchRocketMQ (`make bench`, section rocketmq): time from `nomad job run` of
// the example private cluster (2 NameServers, then 1 Broker) to the first
// message consumed by a Go client through the address endpoint, and the
// memory of the whole setup (containers + agents + plugin).
func TestBenchRocketMQ(t *testing.T) {
	if os.Getenv("RMQ_BENCH") != "1" {
		t.Skip("benchmark: run with RMQ_BENCH=1 (make bench)")
	}
	e := startRocketMQEnv(t)
	nsaddr := fmt.Sprintf("%s:%d", e.bridgeIP, e.nsaddrPort)
	start := time.Now()
	e.nomad.RunJobFile(t, e.job("private-namesrv.nomad.hcl"), map[string]string{"image": e.image, "cluster": "demo"})
	ns := e.nsList(t, "demo", 2)
	nsReady := time.Since(start)
	e.nomad.RunJobFile(t, e.job("private-broker.nomad.hcl"), map[string]string{"image": e.image, "cluster": "demo", "nsaddr": nsaddr, "count": "1"})
	broker := e.brokerAlloc(t, "rocketmq-broker")
	port, _ := broker.PortOf("rmq")
	first := strings.Split(ns, ";")[0]
	e.waitBroker(t, first, "demo", "rocketmq-broker", fmt.Sprintf("%s:%d", e.bridgeIP, port))
	registered := time.Since(start)
	e.createTopic(t, first, "demo", "BenchTopic")
	p := e.goProducer(t, "demo", "bench-producer")
	goSend(t, p, "BenchTopic", "bench", 1)
	e.goConsume(t, "demo", "BenchTopic", "bench", 1)
	consumed := time.Since(start)

	containers, _ := testutil.Docker("ps", "-q", "--filter", "label=com.github.rmqnomad.driver=rocketmq")
	var containerMiB float64
	if ids := strings.Fields(containers); len(ids) > 0 {
		out, _ := testutil.Docker(append([]string{"stats", "--no-stream", "--format", "{{.MemUsage}}"}, ids...)...)
		for _, line := range strings.Split(out, "\n") {
			containerMiB += parseMiB(strings.TrimSpace(strings.Split(line, "/")[0]))
		}
	}
	agentsMiB := 0.0
	for _, pat := range []string{"nomad-1.6.3 agent", "consul-1.15.6 agent", "/plugins/rmq-driver"} {
		out, _ := exec.CommandContext(context.Background(), "pgrep", "-f", pat).Output()
		for _, pid := range strings.Fields(string(out)) {
			agentsMiB += rssMiB(pid)
		}
	}
	fmt.Printf("BENCH rocketmq job_run_to_namesrv_listed_s=%.1f job_run_to_broker_registered_s=%.1f job_run_to_first_message_consumed_s=%.1f\n",
		nsReady.Seconds(), registered.Seconds(), consumed.Seconds())
	fmt.Printf("BENCH rocketmq memory_containers_mib=%.0f memory_agents_and_plugin_mib=%.0f total_mib=%.0f (2 NameServers + 1 Broker, 1 Nomad server + 2 clients, Consul)\n",
		containerMiB, agentsMiB, containerMiB+agentsMiB)
}

// parseMiB reads docker's "123.4MiB" / "1.2GiB" / "800KiB".
func parseMiB(s string) float64 {
	for _, u := range []struct {
		suffix string
		f      float64
	}{{"GiB", 1024}, {"MiB", 1}, {"KiB", 1.0 / 1024}, {"B", 1.0 / 1024 / 1024}} {
		if strings.HasSuffix(s, u.suffix) {
			v, _ := strconv.ParseFloat(strings.TrimSuffix(s, u.suffix), 64)
			return v * u.f
		}
	}
	return 0
}

func rssMiB(pid string) float64 {
	st, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return float64(kb) / 1024
		}
	}
	return 0
}
