package testutil

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// RocketMQ is a NameServer and a broker in containers on the host network,
// listening on loopback ports of their own, removed on t.Cleanup.
type RocketMQ struct {
	// NameServer and Broker are their host:port addresses.
	NameServer string
	Broker     string
	// BrokerName is the broker's name (its group).
	BrokerName string
	// DataDir is the broker's data dir on the host (its store is in
	// DataDir/store).
	DataDir string
	names   []string
}

// RocketMQOptions configures StartRocketMQ.
type RocketMQOptions struct {
	// BrokerEnv is added to the broker container's environment.
	BrokerEnv map[string]string
	// BrokerConf, when set, is the broker's user config file (layer 2).
	BrokerConf string
	// TaskDir, when set, is mounted as the broker's NOMAD_TASK_DIR, so
	// the entrypoint reads the driver's files in TaskDir/rocketmq/.
	TaskDir string
	// DataDir, when set, is the broker's data dir (default: a new temp
	// dir).
	DataDir string
	// NoNameServerAddr leaves NAMESRV_ADDR unset (the test sets up the
	// lookup itself through BrokerEnv or TaskDir).
	NoNameServerAddr bool
}

// StartRocketMQ starts a NameServer, then a broker registered with it,
// and waits until the broker's port answers.
func StartRocketMQ(t testing.TB, image string, opts RocketMQOptions) *RocketMQ {
	t.Helper()
	r := &RocketMQ{BrokerName: "broker-t", DataDir: opts.DataDir}
	if r.DataDir == "" {
		r.DataDir = t.TempDir()
	}
	suffix := fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	t.Cleanup(r.remove)

	nsPort := FreeTCPPort(t)
	r.NameServer = fmt.Sprintf("127.0.0.1:%d", nsPort)
	ns := "rmqtest-ns-" + suffix
	if _, err := Docker("run", "-d", "--name", ns, "--network", "host",
		"-e", fmt.Sprintf("ROCKETMQ_LISTEN_PORT=%d", nsPort), image, "namesrv"); err != nil {
		t.Fatal(err)
	}
	r.names = append(r.names, ns)

	port := freeBrokerPort(t)
	r.Broker = fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"run", "-d", "--name", "rmqtest-broker-" + suffix, "--network", "host",
		"-v", r.DataDir + ":/data", "-e", "ROCKETMQ_DATA_DIR=/data",
		"-e", "ROCKETMQ_BROKER_NAME=" + r.BrokerName, "-e", "ROCKETMQ_CLUSTER=TestCluster",
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
		args = append(args, "-v", opts.TaskDir+":/local:ro", "-e", "NOMAD_TASK_DIR=/local")
	}
	args = append(args, image, "broker")
	if _, err := Docker(args...); err != nil {
		t.Fatal(err)
	}
	r.names = append(r.names, "rmqtest-broker-"+suffix)
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", r.Broker, time.Second); err == nil {
			c.Close()
			return r
		}
		time.Sleep(200 * time.Millisecond)
	}
	logs, _ := exec.Command("docker", "logs", "--tail", "40", "rmqtest-broker-"+suffix).CombinedOutput()
	t.Fatalf("broker %s not listening after 90 s:\n%s", r.Broker, logs)
	return nil
}

// Logs returns the broker container's output.
func (r *RocketMQ) Logs() string {
	out, _ := exec.Command("docker", "logs", r.names[len(r.names)-1]).CombinedOutput()
	return string(out)
}

// StopBroker stops the broker container (SIGTERM, 20 s grace), keeping
// its data dir.
func (r *RocketMQ) StopBroker(ctx context.Context) error {
	_, err := Docker("stop", "-t", "20", r.names[len(r.names)-1])
	return err
}

func (r *RocketMQ) remove() {
	for _, n := range r.names {
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
