//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/rmqnomad/rocketmq-nomad-driver/nsaddr"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// The proxies' gRPC VServer of the demo account (frontend port 8081).
const demoProxyVServer = "vserver-demo-proxy"

// grpcClient builds the 5.x gRPC client (rocketmq-client-java) and returns
// its launcher.
func (e *rmqEnv) grpcClient(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("bash", filepath.Join(e.root, "images", "grpcclient", "build.sh")).Output()
	if err != nil {
		t.Fatalf("build grpc client: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// runGrpc runs the gRPC client with args and returns its stdout as
// key -> value, failing the test when it fails (unless mayFail).
func runGrpc(t *testing.T, launcher string, mayFail bool, args ...string) (map[string]string, error) {
	t.Helper()
	cmd := exec.Command(launcher, append([]string{"-Duser.home=" + t.TempDir()}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	res := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			res[k] = v
		}
	}
	if err != nil && !mayFail {
		t.Fatalf("grpc client %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, out, tail(stderr.String(), 30))
	}
	return res, err
}

// proxyBackends returns the VServer's backends as "uhost:port", sorted.
func (e *rmqEnv) proxyBackends(t *testing.T) []string {
	t.Helper()
	vs, ok := e.sim.Snapshot().VServer(demoULB, demoProxyVServer)
	if !ok {
		t.Fatalf("vserver %s missing from the simulator", demoProxyVServer)
	}
	var out []string
	for _, b := range vs.Backends {
		if !b.Disabled {
			out = append(out, fmt.Sprintf("%s:%d", b.ResourceID, b.Port))
		}
	}
	sort.Strings(out)
	return out
}

// liveProxies returns the running proxies of the job as "uhost:port", sorted.
func (e *rmqEnv) liveProxies(t *testing.T, job string) []string {
	t.Helper()
	allocs, err := e.nomad.JobAllocs(job)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range allocs {
		if a.ClientStatus == "running" && a.DesiredStatus == "run" {
			port, _ := a.PortOf("grpc")
			out = append(out, fmt.Sprintf("%s:%d", demoHosts[nodeIndex(t, e.nomad, a.NodeID)], port))
		}
	}
	sort.Strings(out)
	return out
}

// waitVServerHoldsLive waits until the VServer's backends are exactly the
// n running proxies.
func (e *rmqEnv) waitVServerHoldsLive(t *testing.T, job string, n int) []string {
	t.Helper()
	var live, backends []string
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		live, backends = e.liveProxies(t, job), e.proxyBackends(t)
		if len(live) == n && strings.Join(live, ",") == strings.Join(backends, ",") {
			return live
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("vserver %s backends %v, want exactly the %d running proxies %v", demoProxyVServer, backends, n, live)
	return nil
}

// TestProxyGRPC: two proxies under the driver in front of a NameServer and
// a broker; a real RocketMQ 5.x gRPC client (rocketmq-client-java) sends
// and receives through one stable address: the proxies' VServer (the
// simulator's backends, carried by a forwarder that stands in for the ULB's
// data plane), which holds exactly the running proxies. Draining a
// proxy's node removes its backend and registers its replacement while a
// producer keeps sending through the same address; with no proxy left the
// address serves nothing (negative control). The private path: the passing proxies listed from Consul by an
// address endpoint for the proxy service, used as the client's Endpoints.
func TestProxyGRPC(t *testing.T) {
	e := startRocketMQEnv(t)
	nsaddrHost := fmt.Sprintf("%s:%d", e.bridgeIP, e.nsaddrPort)
	launcher := e.grpcClient(t)
	const cluster, job = "px", "rocketmq-pub-proxy"

	// The NameServer and the broker on client 0, so that draining the
	// other client moves a proxy only.
	pin := map[string]string{"image": e.image, "cluster": cluster, "count": "1", "node_regexp": "^client-0$"}
	e.nomad.RunJobFile(t, e.job("private-namesrv.nomad.hcl"), pin)
	ns := e.nsList(t, cluster, 1)
	pin["nsaddr"] = nsaddrHost
	e.nomad.RunJobFile(t, e.job("private-broker.nomad.hcl"), pin)
	broker := e.brokerAlloc(t, "rocketmq-broker")
	bport, _ := broker.PortOf("rmq")
	e.waitBroker(t, ns, cluster, "rocketmq-broker", fmt.Sprintf("%s:%d", e.bridgeIP, bport))
	e.createTopic(t, ns, cluster, "GrpcTopic")

	// Proxies after the broker: a proxy exits at start while its cluster
	// has no broker.
	started := time.Now()
	e.nomad.RunJobFile(t, e.job("public-proxy.nomad.hcl"), map[string]string{
		"image": e.image, "cluster": cluster, "nsaddr": nsaddrHost, "vserver_id": demoProxyVServer, "count": "2"})
	e.nomad.WaitRunning(t, job, 2, 240*time.Second)
	live := e.waitVServerHoldsLive(t, job, 2)
	t.Logf("vserver %s holds the running proxies %v", demoProxyVServer, live)

	// The ULB's data plane: connections go to the VServer's backends, on
	// their host (every simulated host is this machine's bridge address).
	lb := testutil.StartULBForwarder(t, func() []string {
		var out []string
		for _, b := range e.proxyBackends(t) {
			_, port, _ := strings.Cut(b, ":")
			out = append(out, e.bridgeIP+":"+port)
		}
		return out
	})
	first, _ := runGrpc(t, launcher, false, "first-send", "--endpoints", lb.Addr, "--topic", "GrpcTopic", "--timeout", "120")
	if ms, err := strconv.ParseInt(first["first_send_unix_ms"], 10, 64); err == nil {
		t.Logf("job run to first message through the proxy address: %s", time.UnixMilli(ms).Sub(started).Round(100*time.Millisecond))
	}
	res, _ := runGrpc(t, launcher, false, "produce-consume", "--endpoints", lb.Addr, "--topic", "GrpcTopic", "--count", "20", "--timeout", "120")
	if res["received"] != "20" {
		t.Fatalf("grpc client through %s: %v", lb.Addr, res)
	}

	// Private mode: the passing proxies from Consul, at an address endpoint
	// for the proxy service, as the client's Endpoints.
	list := e.proxyList(t, cluster, 2)
	res, _ = runGrpc(t, launcher, false, "produce-consume", "--endpoints", list, "--topic", "GrpcTopic", "--count", "10", "--timeout", "120")
	if res["received"] != "10" {
		t.Fatalf("grpc client with endpoints %s: %v", list, res)
	}

	// Drain the client that runs a proxy but not the cluster: its proxy's
	// backend goes before the proxy stops, a replacement starts on client
	// 0, and a producer sends through the same address all along.
	allocs, err := e.nomad.JobAllocs(job)
	if err != nil {
		t.Fatal(err)
	}
	var drained, drainedBackend string
	for _, a := range allocs {
		if a.ClientStatus == "running" && nodeIndex(t, e.nomad, a.NodeID) == 1 {
			port, _ := a.PortOf("grpc")
			drained, drainedBackend = a.NodeID, fmt.Sprintf("%s:%d", demoHosts[1], port)
		}
	}
	if drained == "" {
		t.Fatalf("no proxy on client-1 (the job spreads its proxies): %v", live)
	}
	// The producer's connection goes to the proxy being drained: this
	// address lists that proxy's backend first while it is registered.
	drainLB := testutil.StartULBForwarder(t, func() []string {
		var first, rest []string
		for _, b := range e.proxyBackends(t) {
			_, port, _ := strings.Cut(b, ":")
			if b == drainedBackend {
				first = append(first, e.bridgeIP+":"+port)
			} else {
				rest = append(rest, e.bridgeIP+":"+port)
			}
		}
		return append(first, rest...)
	})
	type sendResult struct {
		res map[string]string
		err error
	}
	done := make(chan sendResult, 1)
	go func() {
		r, err := runGrpc(t, launcher, true, "keep-sending", "--endpoints", drainLB.Addr, "--topic", "GrpcTopic", "--seconds", "50", "--interval-ms", "100")
		done <- sendResult{r, err}
	}()
	time.Sleep(12 * time.Second)
	drainStart := time.Now()
	nomadOK(t, e.nomad, "node", "drain", "-enable", "-yes", "-detach", "-deadline", "60s", drained)
	waitFor(t, 60*time.Second, "the drained proxy's backend released", func() bool {
		for _, b := range e.proxyBackends(t) {
			if b == drainedBackend {
				return false
			}
		}
		return true
	})
	t.Logf("drain: backend %s released %s after the drain began", drainedBackend, time.Since(drainStart).Round(100*time.Millisecond))
	moved := e.waitVServerHoldsLive(t, job, 2)
	t.Logf("drain: the vserver holds %v %s after the drain began", moved, time.Since(drainStart).Round(100*time.Millisecond))
	for _, b := range moved {
		if !strings.HasPrefix(b, demoHosts[0]+":") {
			t.Fatalf("after the drain of client-1 the vserver holds %v", moved)
		}
	}
	sent := <-done
	// The same producer, through the same address, still sends in the last
	// 10 s of its 50 s, well after its proxy went away.
	if sent.err != nil || sent.res["ok_last_10s"] == "" || sent.res["ok_last_10s"] == "0" {
		t.Fatalf("keep-sending through %s during the drain: %v %v", drainLB.Addr, sent.res, sent.err)
	}
	t.Logf("during the drain: %s sent, %s failed, longest gap %s ms (first failure %s; last %s)", sent.res["ok"], sent.res["failed"],
		sent.res["longest_gap_ms"], sent.res["first_failure"], sent.res["last_failure"])

	// Negative control: with no proxy the stable address reaches nothing.
	nomadOK(t, e.nomad, "job", "stop", job)
	waitFor(t, 60*time.Second, "the vserver empty after the proxies stopped", func() bool { return len(e.proxyBackends(t)) == 0 })
	if r, err := runGrpc(t, launcher, true, "first-send", "--endpoints", lb.Addr, "--topic", "GrpcTopic", "--timeout", "10"); err == nil {
		t.Fatalf("a message was sent through %s with no proxy registered: %v", lb.Addr, r)
	}
}

// proxyList serves the passing instances of the Consul service
// proxy<cluster> with an address endpoint of its own (the service name
// pattern proxy{{cluster}}) and waits until it lists n proxies.
func (e *rmqEnv) proxyList(t *testing.T, cluster string, n int) string {
	t.Helper()
	srv, err := nsaddr.New(hclog.NewNullLogger(), nsaddr.Config{
		Listen:             "127.0.0.1:0",
		ServiceNamePattern: "proxy" + nsaddr.ClusterPlaceholder,
		Consul:             nsaddr.ConsulConfig{Address: e.consulAddr},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ctx, ln) }()
	url := fmt.Sprintf("http://%s/rocketmq/%s", ln.Addr(), cluster)
	var body string
	waitFor(t, 90*time.Second, "the proxy list of "+cluster, func() bool {
		body = strings.TrimSpace(testutil.WaitHTTP(t, url, 60*time.Second))
		return len(strings.Split(body, ";")) == n
	})
	return body
}
