package driver

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/rmqnomad/rocketmq-nomad-driver/rmqadmin"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// startNameServer runs a real NameServer on the host network, reachable
// from containers at the bridge IP, and registers it in Consul as one of
// the cluster's NameServers. It returns its address.
func startNameServer(t *testing.T, image, bridge string, consul *consulapi.Client, cluster string) string {
	t.Helper()
	port := testutil.FreeTCPPort(t)
	name := fmt.Sprintf("rmqtest-ns-%d-%d", os.Getpid(), port)
	if _, err := testutil.Docker("run", "-d", "--name", name, "--network", "host",
		"-e", fmt.Sprintf("ROCKETMQ_LISTEN_PORT=%d", port), image, "namesrv"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = testutil.Docker("rm", "-f", name) })
	addr := net.JoinHostPort(bridge, strconv.Itoa(port))
	testutil.WaitListening(t, "NameServer", addr, name)
	if err := consul.Agent().ServiceRegister(&consulapi.AgentServiceRegistration{
		ID: name, Name: "nameServer" + cluster, Address: bridge, Port: port,
	}); err != nil {
		t.Fatal(err)
	}
	return addr
}

// A broker started by the driver with a real RocketMQ image registers
// with the cluster's NameServers (from Consul) right after its port opens,
// with the job's and the KV's topics and groups on it, created by no one;
// it follows a new NameServer, a topic added to KV, and a topic deleted
// from it behind the driver's back.
func TestHarnessBrokerDesiredState(t *testing.T) {
	image := testutil.RocketMQImage(t)
	bridge := testutil.BridgeIP(t)
	consul := testutil.StartConsul(t)
	const cluster = "keep"
	kv := consul.Client.KV()
	for key, val := range map[string]string{
		"rocketmq/keep/topics/KvTopic":  `{"queues": 2}`,
		"rocketmq/keep/groups/kv-group": "",
	} {
		if _, err := kv.Put(&consulapi.KVPair{Key: key, Value: []byte(val)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	ns1 := startNameServer(t, image, bridge, consul.Client, cluster)

	h := newHarness(t, map[string]any{
		"docker": map[string]any{
			"disable_log_collection": true,
			"gc":                     map[string]any{"image": false, "dangling_containers": map[string]any{"enabled": false}},
		},
		"consul": map[string]any{"address": consul.HTTPAddr},
	})
	rmq := RocketMQConfig{Cluster: cluster, Role: RoleBroker, Mode: ModePrivate, Port: "rmq"}
	task := newTask(t, image, rmq)
	block := rmqBlock(rmq)
	block["topics"] = []string{"JobTopic"}
	block["subscription_groups"] = []string{"job-group"}
	setTaskConfig(t, task, map[string]any{"image": image, "args": []string{"broker"}, "ports": []string{"rmq"}, "rocketmq": block})
	task.Env["ROCKETMQ_BROKER_NAME"] = "broker-h"
	task.Env["ROCKETMQ_JAVA_HEAP_OPTS"] = "-Xms64m -Xmx128m -XX:MaxDirectMemorySize=64m"
	task.Resources.NomadResources.Memory.MemoryMB = 768
	task.Resources.LinuxResources.MemoryLimitBytes = 768 << 20
	t.Cleanup(h.MkAllocDir(task, false))
	if _, _, err := h.StartTask(task); err != nil {
		t.Fatalf("StartTask: %v", err)
	}
	broker := fmt.Sprintf("127.0.0.1:%d", listenPortOf(task))

	conf, err := os.ReadFile(filepath.Join(task.TaskDir().LocalDir, brokerConfPath))
	if err != nil || !strings.Contains(string(conf), "namesrvAddr="+ns1+"\n") {
		t.Fatalf("broker.conf has no namesrvAddr=%s: %q %v", ns1, conf, err)
	}

	t.Cleanup(func() {
		if t.Failed() {
			out, _ := testutil.Docker("logs", "--tail", "60", containerOfTask(t, task.AllocID))
			t.Logf("broker container log:\n%s", out)
		}
	})
	// The broker answers once its JVM has started (the port itself opens
	// at once: Docker's proxy listens for the container).
	ctx := context.Background()
	var ready time.Time
	waitFor(t, 120*time.Second, "broker answering", func() bool {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := rmqadmin.BrokerConfig(cctx, broker)
		ready = time.Now()
		return err == nil
	})
	registered := func(ns, topic string) bool {
		r, err := rmqadmin.TopicRoute(ctx, ns, topic)
		return err == nil && routesTo(r, "broker-h", broker)
	}
	waitFor(t, 30*time.Second, "broker registered on "+ns1, func() bool { return registered(ns1, "broker-h") })
	after := time.Since(ready)
	t.Logf("registered %s after the broker first answered", after)
	if after > 1500*time.Millisecond {
		t.Errorf("registered %s after the broker first answered, want about 1 s at most", after)
	}
	for _, topic := range []string{"JobTopic", "KvTopic"} {
		if !registered(ns1, topic) {
			t.Errorf("topic %s not routed right after the broker registered", topic)
		}
	}
	groups, err := rmqadmin.Groups(ctx, broker)
	if err != nil || !groups["job-group"] || !groups["kv-group"] {
		t.Fatalf("groups %v (%v), want job-group and kv-group", groups, err)
	}
	topics, err := rmqadmin.Topics(ctx, broker)
	if err != nil || topics["KvTopic"].WriteQueueNums != 2 || topics["JobTopic"].WriteQueueNums != defaultTopicQueues {
		t.Fatalf("topics %+v (%v)", topics, err)
	}

	// A second NameServer: the driver tells the broker. (The broker first
	// re-reads namesrvAddr 10 s after its start, then every second.)
	ns2 := startNameServer(t, image, bridge, consul.Client, cluster)
	start := time.Now()
	t.Logf("%s second name server in consul", start.UTC().Format(time.RFC3339Nano))
	waitFor(t, 30*time.Second, "broker registered on the new name server "+ns2, func() bool { return registered(ns2, "JobTopic") })
	t.Logf("registered with a new name server %s after it joined Consul", time.Since(start).Round(100*time.Millisecond))
	for _, l := range h.logs.lines() {
		if m := fmt.Sprint(l["@message"]); strings.Contains(m, "NameServer") {
			t.Logf("%s %s %v %v", l["@timestamp"], m, l["after"], l["missing"])
		}
	}

	// A topic added to KV while the broker runs.
	if _, err := kv.Put(&consulapi.KVPair{Key: "rocketmq/keep/topics/LateTopic"}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*keepInterval+5*time.Second, "LateTopic routed on both name servers", func() bool {
		return registered(ns1, "LateTopic") && registered(ns2, "LateTopic")
	})

	// A declared topic deleted on the broker is created again.
	if _, err := rmqadmin.Invoke(ctx, broker, 215, map[string]string{"topic": "JobTopic"}, nil); err != nil { // DELETE_TOPIC_IN_BROKER
		t.Fatal(err)
	}
	if topics, _ := rmqadmin.Topics(ctx, broker); topics["JobTopic"].Name != "" {
		t.Fatal("JobTopic still on the broker after its deletion: the test does not test anything")
	}
	waitFor(t, 2*keepInterval+5*time.Second, "JobTopic back on the broker", func() bool {
		topics, err := rmqadmin.Topics(ctx, broker)
		return err == nil && topics["JobTopic"].Name == "JobTopic"
	})
	// The keeper logs once its pass has applied everything, a moment after
	// the topic is back.
	waitFor(t, 5*time.Second, "a log line for the re-created topic", func() bool {
		for _, l := range h.logs.lines() {
			if l["@message"] == "applied the broker's desired state" && strings.Contains(fmt.Sprint(l["changes"]), "created topic JobTopic") {
				return true
			}
		}
		return false
	})
}

// containerOfTask returns the id of the container of an allocation.
func containerOfTask(t *testing.T, allocID string) string {
	t.Helper()
	id, _ := testutil.Docker("ps", "-aq", "--filter", "label=com.hashicorp.nomad.alloc_id="+allocID)
	return strings.TrimSpace(strings.Split(id, "\n")[0])
}
