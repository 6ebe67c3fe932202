//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"
	consulapi "github.com/hashicorp/consul/api"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi/simtest"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// rmqEnv is a real RocketMQ setup under the driver: a Consul server, the
// UCloud simulator, a Nomad server and two clients (simulated UHosts
// uhost-demo-1/2, each with its own Consul client agent) whose task ports
// are on the docker bridge, and the plugin's NameServer address endpoint on
// client 0, fed from the catalog through client 0's own agent.
type rmqEnv struct {
	nomad      *testutil.NomadCluster
	sim        *ucloudsim.Server
	image      string
	bridgeIP   string
	nsaddrPort int
	root       string
	consulAddr string // the Consul server's HTTP address
	pluginDir  string // holds the rmq-driver binary
}

func buildRocketMQImage(t *testing.T) string {
	t.Helper()
	testutil.EnsureDocker(t)
	script := filepath.Join(testutil.RepoRoot(t), "images", "rocketmq", "build.sh")
	if out, err := exec.Command("bash", script).CombinedOutput(); err != nil {
		t.Fatalf("build rocketmq image: %v\n%s", err, out)
	}
	// The tag of this very build: tests of other checkouts on the same
	// Docker engine may retag the plain one meanwhile.
	tag, err := exec.Command("bash", script, "--print-keyed-tag").Output()
	if err != nil {
		t.Fatalf("rocketmq image tag: %v", err)
	}
	return strings.TrimSpace(string(tag))
}

func startRocketMQEnv(t *testing.T) *rmqEnv { return startRocketMQEnvWith(t, nil) }

// startRocketMQEnvWith is startRocketMQEnv with the demo account changed
// by edit (when not nil) before the simulator loads it.
func startRocketMQEnvWith(t *testing.T, edit func(*ucloudsim.State)) *rmqEnv {
	t.Helper()
	image := buildRocketMQImage(t)
	pluginDir := testutil.BuildPlugin(t)
	root := testutil.RepoRoot(t)
	state, err := ucloudsim.LoadState(filepath.Join(root, "examples", "ucloudsim", "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(state)
	}
	sim := simtest.Start(t, ucloudsim.Config{State: state}).Sim
	consul := testutil.StartConsulCluster(t, 2)
	if _, err := consul.Server.Client.KV().Put(&consulapi.KVPair{Key: "brokerEip/pub/eipId/0", Value: []byte("eip-demo-broker-0")}, nil); err != nil {
		t.Fatal(err)
	}
	bridgeIP := testutil.BridgeIP(t)
	nsaddrPort := testutil.FreeTCPPort(t)
	keyFile := secretFile(t, "ucloud-private-key", demoPrivateKey)
	hcl := func(i int) string {
		nsaddr := ""
		if i == 0 {
			nsaddr = fmt.Sprintf(`
    nsaddr {
      enabled = true
      listen  = "0.0.0.0:%d"
    }`, nsaddrPort)
		}
		return fmt.Sprintf(`
plugin "rmq-driver" {
  config {
    ucloud {
      region            = "cn-bj2"
      project_id        = "org-demo"
      public_key        = "demo-public-key"
      private_key_file  = %q
      base_url          = %q
      metadata_endpoint = %q
      allowed_eip_ids   = ["eip-demo-broker-0", "eip-demo-broker-1", "eip-demo-broker-2"]
      allowed_ulb_ids   = ["ulb-demo"]
    }
    consul {
      address = %q
    }%s
  }
}
plugin "docker" {
  config {
    gc {
      dangling_containers {
        enabled = false
      }
    }
  }
}
`, keyFile, sim.URL(), sim.MetadataURL(demoHosts[i]), consul.Clients[i].HTTPAddr, nsaddr)
	}
	nomad := testutil.StartNomad(t, testutil.NomadOptions{
		PluginDir: pluginDir, Clients: 2, ClientHCL: hcl, Consul: consul, NetworkInterface: "docker0",
	})
	return &rmqEnv{nomad: nomad, sim: sim, image: image, bridgeIP: bridgeIP, nsaddrPort: nsaddrPort, root: root,
		consulAddr: consul.Server.HTTPAddr, pluginDir: pluginDir}
}

// nodeIndex returns i for the node named client-i.
func nodeIndex(t *testing.T, c *testutil.NomadCluster, nodeID string) int {
	t.Helper()
	var n struct{ Name string }
	if err := c.GetJSON("/v1/node/"+nodeID, &n); err != nil {
		t.Fatal(err)
	}
	var i int
	if _, err := fmt.Sscanf(n.Name, "client-%d", &i); err != nil {
		t.Fatalf("node %s is not a test client: %q", nodeID, n.Name)
	}
	return i
}

func (e *rmqEnv) job(name string) string { return filepath.Join(e.root, "examples", "jobs", name) }

// nsList waits until the address endpoint serves n NameServers for cluster
// (any number when n < 0).
func (e *rmqEnv) nsList(t *testing.T, cluster string, n int) string {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/rocketmq/%s", e.nsaddrPort, cluster)
	var body string
	waitFor(t, 180*time.Second, "address endpoint lists the name servers of "+cluster, func() bool {
		body = strings.TrimSpace(testutil.WaitHTTP(t, url, 120*time.Second))
		return n < 0 || len(strings.Split(body, ";")) == n
	})
	return body
}

var clusterListRe = regexp.MustCompile(`(?m)^(\S+)\s+(broker-\d+)\s+\d+\s+(\S+:\d+)`)

// brokerAddrs runs `mqadmin clusterList` against a NameServer and returns
// broker name -> registered address for cluster.
func (e *rmqEnv) brokerAddrs(t *testing.T, ns, cluster string) map[string]string {
	t.Helper()
	out, err := testutil.Docker("run", "--rm", "--network", "host", e.image, "mqadmin", "clusterList", "-n", ns)
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, match := range clusterListRe.FindAllStringSubmatch(out, -1) {
		if match[1] == cluster {
			m[match[2]] = match[3]
		}
	}
	return m
}

// waitBroker waits until broker-0 of cluster (the broker of job) is
// registered at want.
func (e *rmqEnv) waitBroker(t *testing.T, ns, cluster, job, want string) {
	t.Helper()
	deadline := time.Now().Add(180 * time.Second)
	for time.Now().Before(deadline) {
		if e.brokerAddrs(t, ns, cluster)["broker-0"] == want {
			return
		}
		time.Sleep(time.Second)
	}
	list, _ := testutil.Docker("run", "--rm", "--network", "host", e.image, "mqadmin", "clusterList", "-n", ns)
	logs, _ := e.nomad.Nomad(context.Background(), "alloc", "logs", "-job", job)
	errs, _ := e.nomad.Nomad(context.Background(), "alloc", "logs", "-stderr", "-job", job)
	t.Fatalf("broker-0 of %s not registered at %s on %s:\n%s\nbroker stdout:\n%s\nbroker stderr:\n%s", cluster, want, ns, list, tail(logs, 30), tail(errs, 30))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (e *rmqEnv) brokerAlloc(t *testing.T, job string) testutil.Alloc {
	t.Helper()
	return e.nomad.WaitRunning(t, job, 1, 240*time.Second)[0]
}

func (e *rmqEnv) createTopic(t *testing.T, ns, cluster, topic string) {
	t.Helper()
	waitFor(t, 120*time.Second, "topic "+topic+" created and routed", func() bool {
		if _, err := testutil.Docker("run", "--rm", "--network", "host", e.image, "mqadmin", "updateTopic", "-n", ns, "-c", cluster, "-t", topic); err != nil {
			t.Logf("updateTopic: %v", err)
			return false
		}
		return e.topicRouted(t, cluster, topic)
	})
}

// topicRouted reports whether every NameServer of cluster knows a route for
// topic (clients fail to start before that).
func (e *rmqEnv) topicRouted(t *testing.T, cluster, topic string) bool {
	t.Helper()
	for _, addr := range strings.Split(e.nsList(t, cluster, -1), ";") {
		route, err := testutil.Docker("run", "--rm", "--network", "host", e.image, "mqadmin", "topicRoute", "-n", addr, "-t", topic)
		if err != nil || !strings.Contains(route, "brokerName") {
			return false
		}
	}
	return true
}

// goProducer starts a real Go producer that resolves the NameServers
// through the address endpoint.
func (e *rmqEnv) goProducer(t *testing.T, cluster, group string) rocketmq.Producer {
	t.Helper()
	rlog.SetLogLevel("warn")
	url := fmt.Sprintf("http://127.0.0.1:%d/rocketmq/%s", e.nsaddrPort, cluster)
	testutil.GoResolverSnapshot(t, url) // written under the real home, removed after the test
	p, err := rocketmq.NewProducer(
		producer.WithNsResolver(primitive.NewHttpResolver(cluster, url)),
		producer.WithGroupName(group),
		producer.WithRetry(3),
		producer.WithSendMsgTimeout(5*time.Second),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// goSend sends n messages "<prefix>-<i>", retrying failed sends (a broker
// that just moved) for up to two minutes.
func goSend(t *testing.T, p rocketmq.Producer, topic, prefix string, n int) {
	t.Helper()
	sent := 0
	deadline := time.Now().Add(120 * time.Second)
	for sent < n && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(fmt.Sprintf("%s-%d", prefix, sent))))
		cancel()
		if err != nil || res.Status != primitive.SendOK {
			t.Logf("send %s-%d: %v %v (retrying)", prefix, sent, res, err)
			time.Sleep(time.Second)
			continue
		}
		sent++
	}
	if sent < n {
		t.Fatalf("go client sent %d of %d messages", sent, n)
	}
}

// goConsume consumes the messages "<prefix>-*" of topic with a real Go push
// consumer resolving through the address endpoint, until it has n.
func (e *rmqEnv) goConsume(t *testing.T, cluster, topic, prefix string, n int) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/rocketmq/%s", e.nsaddrPort, cluster)
	testutil.GoResolverSnapshot(t, url)
	var received atomic.Int64
	c, err := rocketmq.NewPushConsumer(
		consumer.WithNsResolver(primitive.NewHttpResolver(cluster, url)),
		consumer.WithGroupName(prefix+"-consumer"),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			if strings.HasPrefix(string(m.Body), prefix+"-") {
				received.Add(1)
			}
		}
		return consumer.ConsumeSuccess, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Shutdown() }()
	waitFor(t, 120*time.Second, fmt.Sprintf("go consumer receives %d messages %s-*", n, prefix), func() bool { return received.Load() >= int64(n) })
}

// javaProduceConsume runs the Java client (RocketMQ's own client jar) in
// address-server mode against the endpoint.
func (e *rmqEnv) javaProduceConsume(t *testing.T, cluster, topic string, n int) {
	t.Helper()
	launcher, err := exec.Command("bash", filepath.Join(e.root, "images", "javaclient", "build.sh")).Output()
	if err != nil {
		t.Fatalf("build java client: %v", err)
	}
	// The JVM takes user.home from the password database, not $HOME: the
	// property itself keeps whatever the client writes under its home
	// (~/logs/rocketmqlogs if its logging is not sent to stderr) in the
	// test's directory.
	cmd := exec.Command(strings.TrimSpace(string(launcher)),
		"-Duser.home="+t.TempDir(),
		fmt.Sprintf("-Drocketmq.namesrv.domain=127.0.0.1:%d", e.nsaddrPort),
		"-Drocketmq.namesrv.domain.subgroup="+cluster,
		"produce-consume", "--topic", topic, "--count", fmt.Sprint(n), "--timeout", "120")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("received %d", n)) {
		t.Fatalf("java client: %v\n%s", err, out)
	}
}

// TestRocketMQEndToEnd: real NameServers and Brokers under the driver;
// real Go and Java clients produce and consume through the address
// endpoint; brokers register the address the driver told them (host IP in
// private mode, the EIP in public mode); clients keep working after a
// broker moves to another client.
func TestRocketMQEndToEnd(t *testing.T) {
	e := startRocketMQEnv(t)
	nsaddr := fmt.Sprintf("%s:%d", e.bridgeIP, e.nsaddrPort)

	// Private mode: 2 NameServers + 1 Broker.
	// NameServers first, brokers once the endpoint lists them: a broker
	// that finds no NameServer at start only asks the address server
	// again at RocketMQ's own (slow) interval.
	e.nomad.RunJobFile(t, e.job("private-namesrv.nomad.hcl"), map[string]string{"image": e.image, "cluster": "demo"})
	e.nomad.RunJobFile(t, e.job("public-namesrv.nomad.hcl"), map[string]string{"image": e.image, "cluster": "pub", "count": "1"})
	nsDemo := e.nsList(t, "demo", 2)
	nsPub := e.nsList(t, "pub", 1)
	e.nomad.RunJobFile(t, e.job("private-broker.nomad.hcl"), map[string]string{"image": e.image, "cluster": "demo", "nsaddr": nsaddr,
		"count": "1", "topics": `["E2ETopic"]`})
	firstNS := strings.Split(nsDemo, ";")[0]
	broker := e.brokerAlloc(t, "rocketmq-broker")
	port, _ := broker.PortOf("rmq")
	e.waitBroker(t, firstNS, "demo", "rocketmq-broker", fmt.Sprintf("%s:%d", e.bridgeIP, port))

	e.createTopic(t, firstNS, "demo", "E2ETopic")
	p := e.goProducer(t, "demo", "e2e-producer")
	goSend(t, p, "E2ETopic", "before", 10)
	e.goConsume(t, "demo", "E2ETopic", "before", 10)
	e.javaProduceConsume(t, "demo", "E2ETopic", 10)

	// Public mode against the simulator: the broker registers its EIP.
	e.nomad.RunJobFile(t, e.job("public-broker.nomad.hcl"), map[string]string{"image": e.image, "cluster": "pub", "nsaddr": nsaddr, "count": "1"})
	pubBroker := e.brokerAlloc(t, "rocketmq-pub-broker")
	pubPort, _ := pubBroker.PortOf("rmq")
	e.waitBroker(t, nsPub, "pub", "rocketmq-pub-broker", fmt.Sprintf("203.0.113.10:%d", pubPort))
	snap := e.sim.Snapshot()
	if eip, ok := snap.EIP("eip-demo-broker-0"); !ok || eip.ResourceID != demoHosts[nodeIndex(t, e.nomad, pubBroker.NodeID)] {
		t.Fatalf("eip-demo-broker-0 = %+v, want it bound to the public broker's host", eip)
	}
	if vs, ok := snap.VServer(demoULB, demoVServer); !ok || len(vs.Backends) != 1 {
		t.Fatalf("vserver backends = %+v, want the one public name server", vs)
	}

	// Move the private broker to the other client.
	nomadOK(t, e.nomad, "node", "drain", "-enable", "-yes", "-detach", "-deadline", "90s", broker.NodeID)
	var moved testutil.Alloc
	waitFor(t, 240*time.Second, "broker running on the other client", func() bool {
		allocs, err := e.nomad.JobAllocs("rocketmq-broker")
		if err != nil {
			return false
		}
		for _, a := range allocs {
			if a.NodeID != broker.NodeID && a.ClientStatus == "running" && a.DesiredStatus == "run" {
				moved = a
				return true
			}
		}
		return false
	})
	nsDemo = e.nsList(t, "demo", 2)
	firstNS = strings.Split(nsDemo, ";")[0]
	newPort, _ := moved.PortOf("rmq")
	e.waitBroker(t, firstNS, "demo", "rocketmq-broker", fmt.Sprintf("%s:%d", e.bridgeIP, newPort))
	// The producer started before the move follows the route to the
	// broker's new address and keeps working, with nobody re-creating
	// anything: the broker brings its store along (the example job's
	// ephemeral_disk migrate), and where it did not, the topic is seeded
	// from the job's declaration (rocketmq.topics).
	goSend(t, p, "E2ETopic", "after", 10)
	waitFor(t, 60*time.Second, "the topic routed again after the move", func() bool { return e.topicRouted(t, "demo", "E2ETopic") })
	e.goConsume(t, "demo", "E2ETopic", "after", 10)
	e.javaProduceConsume(t, "demo", "E2ETopic", 10)
}
