package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// RocketMQImage builds (or reuses) the RocketMQ image with
// images/rocketmq/build.sh and returns its tag ($RMQ_IMAGE_TAG when set).
func RocketMQImage(t testing.TB) string {
	t.Helper()
	EnsureDocker(t)
	script := filepath.Join(RepoRoot(t), "images", "rocketmq", "build.sh")
	if out, err := exec.Command("bash", script).CombinedOutput(); err != nil {
		t.Fatalf("build rocketmq image: %v\n%s", err, out)
	}
	tag, err := exec.Command("bash", script, "--print-tag").Output()
	if err != nil {
		t.Fatalf("rocketmq image tag: %v", err)
	}
	return strings.TrimSpace(string(tag))
}

// RocketMQ is a NameServer and brokers in containers on the host network,
// listening on loopback ports of their own, removed on t.Cleanup.
type RocketMQ struct {
	// NameServer is its host:port address.
	NameServer string
	// Broker, BrokerName and DataDir are First's.
	Broker     string
	BrokerName string
	DataDir    string
	// First is the broker StartRocketMQ started; StartBroker adds more.
	First *Broker
	image string
	// nsContainer is the NameServer's container; names are all of r's.
	nsContainer string
	names       []string
}

// Broker is one broker container.
type Broker struct {
	// Addr is its host:port address.
	Addr string
	// BrokerName is the broker's name (its group).
	BrokerName string
	// DataDir is the broker's data dir on the host (its store is in
	// DataDir/store).
	DataDir   string
	container string
}

// RocketMQOptions configures a broker.
type RocketMQOptions struct {
	// BrokerName defaults to "broker-t".
	BrokerName string
	// BrokerEnv is added to the broker container's environment.
	BrokerEnv map[string]string
	// BrokerConf, when set, is the broker's user config file (layer 2).
	BrokerConf string
	// TaskDir, when set, is mounted as the broker's NOMAD_TASK_DIR, so
	// the entrypoint reads (and writes) the driver's files in
	// TaskDir/rocketmq/.
	TaskDir string
	// DataDir, when set, is the broker's data dir (default: a new temp
	// dir).
	DataDir string
	// NoNameServerAddr leaves NAMESRV_ADDR unset (the test sets up the
	// lookup itself through BrokerEnv or TaskDir).
	NoNameServerAddr bool
}

var containerSeq atomic.Int64

func containerName(kind string) string {
	return fmt.Sprintf("rmqtest-%s-%d-%d", kind, os.Getpid(), containerSeq.Add(1))
}

// StartRocketMQ starts a NameServer, then a broker registered with it,
// and waits until the broker's port answers.
func StartRocketMQ(t testing.TB, image string, opts RocketMQOptions) *RocketMQ {
	t.Helper()
	r := StartNameServer(t, image)
	r.First = r.StartBroker(t, opts)
	r.Broker, r.BrokerName, r.DataDir = r.First.Addr, r.First.BrokerName, r.First.DataDir
	return r
}

// StartNameServer starts a NameServer only; StartBroker and
// StartController add the rest (First stays nil).
func StartNameServer(t testing.TB, image string) *RocketMQ {
	t.Helper()
	r := &RocketMQ{image: image}
	t.Cleanup(r.remove)
	nsPort := FreeTCPPort(t)
	r.NameServer = fmt.Sprintf("127.0.0.1:%d", nsPort)
	ns := containerName("ns")
	if _, err := Docker("run", "-d", "--name", ns, "--network", "host",
		"-e", fmt.Sprintf("ROCKETMQ_LISTEN_PORT=%d", nsPort), image, "namesrv"); err != nil {
		t.Fatal(err)
	}
	r.nsContainer = ns
	r.names = append(r.names, ns)
	return r
}

// Logs returns the first broker's output.
func (r *RocketMQ) Logs() string { return r.First.Logs() }

// StopBroker stops the first broker, keeping its data dir.
func (r *RocketMQ) StopBroker() error { return r.First.StopBroker() }

// StartBroker starts a broker registered with r's NameServer and waits
// until its port answers.
func (r *RocketMQ) StartBroker(t testing.TB, opts RocketMQOptions) *Broker {
	t.Helper()
	b := &Broker{BrokerName: opts.BrokerName, DataDir: opts.DataDir, container: containerName("broker")}
	if b.BrokerName == "" {
		b.BrokerName = "broker-t"
	}
	if b.DataDir == "" {
		b.DataDir = t.TempDir()
	}
	port := freeBrokerPort(t)
	b.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"run", "-d", "--name", b.container, "--network", "host",
		"-v", b.DataDir + ":/data", "-e", "ROCKETMQ_DATA_DIR=/data",
		"-e", "ROCKETMQ_BROKER_NAME=" + b.BrokerName, "-e", "ROCKETMQ_CLUSTER=TestCluster",
		"-e", "ROCKETMQ_ADVERTISED_IP=127.0.0.1", "-e", fmt.Sprintf("ROCKETMQ_ADVERTISED_PORT=%d", port)}
	if !opts.NoNameServerAddr {
		args = append(args, "-e", "NAMESRV_ADDR="+r.NameServer)
	}
	for k, v := range opts.BrokerEnv {
		args = append(args, "-e", k+"="+v)
	}
	if opts.BrokerConf != "" {
		f := filepath.Join(t.TempDir(), "broker.properties")
		if err := os.WriteFile(f, []byte(opts.BrokerConf), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-v", f+":/conf/broker.properties:ro", "-e", "ROCKETMQ_BROKER_CONF=/conf/broker.properties")
	}
	if opts.TaskDir != "" {
		args = append(args, "-v", opts.TaskDir+":/local", "-e", "NOMAD_TASK_DIR=/local")
	}
	args = append(args, r.image, "broker")
	if _, err := Docker(args...); err != nil {
		t.Fatal(err)
	}
	r.names = append(r.names, b.container)
	WaitListening(t, "broker", b.Addr, b.container)
	// The NameServer's JVM started first but shares the cores with the
	// broker's: a test's first NameServer call must not race it.
	WaitListening(t, "NameServer", r.NameServer, r.nsContainer)
	return b
}

// listenTimeout bounds a JVM start on a loaded 2-core machine.
const listenTimeout = 180 * time.Second

// WaitListening waits until addr accepts a TCP connection and fails t
// with the container's output when it does not within listenTimeout.
func WaitListening(t testing.TB, what, addr, container string) {
	t.Helper()
	deadline := time.Now().Add(listenTimeout)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, _ := exec.Command("docker", "logs", container).CombinedOutput()
	t.Fatalf("%s %s not listening after %v (a JVM start on a loaded machine):\n%s", what, addr, listenTimeout, out)
}

// ContainerName is the name of the broker's container.
func (b *Broker) ContainerName() string { return b.container }

// Logs returns the broker container's output.
func (b *Broker) Logs() string {
	out, _ := exec.Command("docker", "logs", b.container).CombinedOutput()
	return string(out)
}

// StopBroker stops the broker container (SIGTERM, 20 s grace), keeping
// its data dir.
func (b *Broker) StopBroker() error {
	_, err := Docker("stop", "-t", "20", b.container)
	return err
}

// KillBroker kills the broker container (SIGKILL: as its host died).
func (b *Broker) KillBroker() error {
	_, err := Docker("kill", b.container)
	return err
}

func (r *RocketMQ) remove() {
	for _, n := range r.names {
		_, _ = Docker("unpause", n) // a test may have frozen it
		_, _ = Docker("rm", "-f", "-v", n)
	}
}

// freeBrokerPort returns a port P with P-2 and P+1 free too (a broker
// binds all three).
func freeBrokerPort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		p := FreeTCPPort(t)
		if p < 1026 || p > 65534 {
			continue
		}
		ok := true
		for _, q := range []int{p - 2, p + 1} {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", q))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free broker port (P-2, P, P+1)")
	return 0
}
