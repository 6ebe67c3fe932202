//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// TestBenchProxy (make bench SECTIONS=proxy): on one cluster (a NameServer,
// a broker, two proxies under the driver), the time from `nomad job run` of
// the proxies to the first message sent through the proxies' stable
// address, and produce/consume throughput of the same client program over
// the remoting path (NameServer + broker) and over gRPC through a proxy,
// directly at its host port and through the stable address (the
// forwarder standing in for the ULB), in one run.
func TestBenchProxy(t *testing.T) {
	if os.Getenv("RMQ_BENCH") != "1" {
		t.Skip("benchmark: run with RMQ_BENCH=1 (make bench SECTIONS=proxy)")
	}
	count := "5000"
	if v := os.Getenv("RMQ_BENCH_PROXY_COUNT"); v != "" {
		count = v
	}
	e := startRocketMQEnv(t)
	nsaddrHost := fmt.Sprintf("%s:%d", e.bridgeIP, e.nsaddrPort)
	launcher := e.grpcClient(t)
	const cluster, job = "px", "rocketmq-pub-proxy"

	e.nomad.RunJobFile(t, e.job("private-namesrv.nomad.hcl"), map[string]string{"image": e.image, "cluster": cluster, "count": "1"})
	ns := e.nsList(t, cluster, 1)
	e.nomad.RunJobFile(t, e.job("private-broker.nomad.hcl"), map[string]string{"image": e.image, "cluster": cluster, "nsaddr": nsaddrHost})
	broker := e.brokerAlloc(t, "rocketmq-broker")
	bport, _ := broker.PortOf("rmq")
	e.waitBroker(t, ns, cluster, "rocketmq-broker", fmt.Sprintf("%s:%d", e.bridgeIP, bport))
	// A fresh topic per path and pass: a remoting consumer of a new group
	// starts at the first offset and would read earlier passes too.
	for _, topic := range []string{"BenchRemoting", "BenchGrpc", "BenchGrpcLB"} {
		e.createTopic(t, ns, cluster, topic+"warmup")
		e.createTopic(t, ns, cluster, topic+"measured")
	}
	e.createTopic(t, ns, cluster, "BenchFirst")

	lb := testutil.StartULBForwarder(t, func() []string {
		var out []string
		for _, b := range e.proxyBackends(t) {
			_, port, _ := strings.Cut(b, ":")
			out = append(out, e.bridgeIP+":"+port)
		}
		return out
	})
	started := time.Now()
	e.nomad.RunJobFile(t, e.job("public-proxy.nomad.hcl"), map[string]string{
		"image": e.image, "cluster": cluster, "nsaddr": nsaddrHost, "vserver_id": demoProxyVServer, "count": "2"})
	first, _ := runGrpc(t, launcher, false, "first-send", "--endpoints", lb.Addr, "--topic", "BenchFirst", "--timeout", "180")
	var ms int64
	fmt.Sscan(first["first_send_unix_ms"], &ms)
	fmt.Printf("BENCH proxy job_run_to_first_message_s=%.1f attempts=%s\n", time.UnixMilli(ms).Sub(started).Seconds(), first["attempts"])
	live := e.waitVServerHoldsLive(t, job, 2)
	_, direct, _ := strings.Cut(live[0], ":")

	runs := []struct {
		name string
		args []string
	}{
		{"remoting", []string{"--path", "remoting", "--namesrv", ns, "--topic", "BenchRemoting"}},
		{"grpc_proxy_port", []string{"--path", "grpc", "--endpoints", e.bridgeIP + ":" + direct, "--topic", "BenchGrpc"}},
		{"grpc_stable_address", []string{"--path", "grpc", "--endpoints", lb.Addr, "--topic", "BenchGrpcLB"}},
	}
	// A cold proxy (its JIT) is several times slower than a warm one:
	// every path gets one warm-up pass first, reported as such, then the
	// measured pass.
	rates := map[string]string{}
	for _, pass := range []struct{ name, count string }{{"warmup", "2000"}, {"measured", count}} {
		for _, r := range runs {
			args := append([]string{"bench"}, r.args...)
			args[len(args)-1] += pass.name
			args = append(args, "--count", pass.count, "--size", "1024", "--inflight", "64", "--timeout", "300")
			res, _ := runGrpc(t, launcher, false, args...)
			if pass.name == "measured" {
				rates[r.name] = res["produce_msgs_per_s"]
			}
			fmt.Printf("BENCH proxy pass=%s path=%s messages=%s size=1024 inflight=64 produce_msgs_per_s=%s consume_msgs_per_s=%s end_to_end_s=%s\n",
				pass.name, r.name, pass.count, res["produce_msgs_per_s"], res["consume_msgs_per_s"], res["end_to_end_s"])
		}
	}
	var rem, grpc float64
	fmt.Sscan(rates["remoting"], &rem)
	fmt.Sscan(rates["grpc_proxy_port"], &grpc)
	if rem > 0 {
		fmt.Printf("BENCH proxy produce_ratio_grpc_to_remoting=%.2f\n", grpc/rem)
	}
	out, _ := testutil.Docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}")
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "proxy-") || strings.HasPrefix(line, "broker-") {
			fmt.Printf("BENCH proxy memory %s\n", line)
		}
	}
}
