//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/rmqadmin"
	"github.com/rmqnomad/rocketmq-nomad-driver/status"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// TestPublicReplicatedGroup: a replicated broker group in public mode
// against the simulator. Each replica binds its own EIP, registers
// EIP:listenPort with the NameServer, and replicates over its host's
// private address (brokerIP2:haListenPort). The keeper of each replica
// announces its role, broker id and sync state in a task event, and
// `rmq-driver status` shows them from the records it keeps in Consul.
//
// Reaching the EIPs: RocketMQ also uses brokerIP1 between brokers (a
// slave reads the master's metadata at EIP:listenPort-2) and from the
// controllers. The simulated EIPs here are loopback addresses
// (127.0.83.x) and the replicas run on the host network, so EIP:port
// reaches the replica listening on that port, on this machine, the way a
// real EIP reaches its host; nothing is added to the machine's interfaces
// and no packet leaves it. The NameServer and the controller stay on the
// docker bridge.
func TestPublicReplicatedGroup(t *testing.T) {
	// eip-demo-broker-0 is the seed's EIP of cluster "pub" (Consul
	// brokerEip/pub/eipId/0): replica i binds eip-demo-broker-<i+1>.
	eipIDs, eips := demoEIPs[1:3], []string{"127.0.83.11", "127.0.83.12"}
	e := startRocketMQEnvWith(t, func(s *ucloudsim.State) {
		for i := range s.EIPs {
			for j, id := range eipIDs {
				if s.EIPs[i].ID == id {
					s.EIPs[i].IP = eips[j]
				}
			}
		}
	})
	const cluster, job, broker = "pubrepl", "rocketmq-pub-replicated", "broker-0"
	ctlPort := staticPorts(t, 1)[0]
	controllers := []string{fmt.Sprintf("%s:%d", e.bridgeIP, ctlPort)}
	e.nomad.RunJobFile(t, e.job("replicated-controller.nomad.hcl"), map[string]string{
		"image": e.image, "cluster": cluster, "peers": hclList(controllers), "nodes": hclList([]string{"client-0"}), "heap": controllerHeap,
	})
	e.nomad.RunJobFile(t, e.job("private-namesrv.nomad.hcl"), map[string]string{
		"image": e.image, "cluster": cluster, "count": "1", "node_regexp": "^client-0$",
	})
	ns := e.nsList(t, cluster, 1)

	listen := staticPorts(t, 2)
	started := time.Now()
	e.nomad.RunJob(t, publicReplicatedJob(job, e.image, cluster, broker, fmt.Sprintf("%s:%d", e.bridgeIP, e.nsaddrPort), controllers, eipIDs, listen))
	allocs := e.nomad.WaitRunning(t, job, 2, 240*time.Second)

	// Each replica's EIP is bound to its host, and it advertises it.
	type replicaInfo struct {
		alloc    testutil.Alloc
		eip, adv string // EIP id, EIP:listenPort
		admin    string // host (bridge) IP:listenPort, where this host reaches it
		ha       string // its brokerIP2:haListenPort
	}
	byAdv := map[string]replicaInfo{}
	snap := e.sim.Snapshot()
	for _, a := range allocs {
		i := groupIndex(t, a)
		eip, ok := snap.EIP(eipIDs[i])
		host := demoHosts[nodeIndex(t, e.nomad, a.NodeID)]
		if !ok || eip.ResourceID != host {
			t.Fatalf("%s of replica %s = %+v, want it bound to the replica's host %s", eipIDs[i], a.Name, eip, host)
		}
		port, _ := a.PortOf("rmq")
		ha, _ := a.PortOf("ha")
		r := replicaInfo{alloc: a, eip: eipIDs[i], adv: net.JoinHostPort(eip.IP, strconv.Itoa(port)),
			admin: net.JoinHostPort(e.bridgeIP, strconv.Itoa(port)), ha: net.JoinHostPort(e.bridgeIP, strconv.Itoa(ha))}
		byAdv[r.adv] = r
	}
	if len(byAdv) != 2 {
		t.Fatalf("replicas advertise %v: want two distinct EIP addresses", byAdv)
	}

	// The keepers' events: one master, one slave, both in the SyncStateSet.
	var master, slave replicaInfo
	var masterEv, slaveEv string
	var afterStart time.Duration // the later replica's, from its task's start
	waitFor(t, 180*time.Second, "a replica event saying master and one saying slave, both in sync", func() bool {
		masterEv, slaveEv, afterStart = "", "", 0
		for _, r := range byAdv {
			ev, at, start := lastReplicaEvent(t, e.nomad, r.alloc.ID)
			afterStart = max(afterStart, at.Sub(start))
			switch {
			case strings.Contains(ev, "replica: master,") && strings.HasSuffix(ev, "in sync set (2 of 2)"):
				master, masterEv = r, ev
			case strings.Contains(ev, "replica: slave of ") && strings.HasSuffix(ev, "in sync set (2 of 2)"):
				slave, slaveEv = r, ev
			}
		}
		return masterEv != "" && slaveEv != ""
	})
	known := time.Since(started)
	t.Logf("events after %.1f s (%.1f s after the later replica's task started):\n  %s: %s\n  %s: %s", known.Seconds(), afterStart.Seconds(), master.adv, masterEv, slave.adv, slaveEv)
	masterID, slaveID := eventID(t, masterEv), eventID(t, slaveEv)
	wantSlave := fmt.Sprintf("replica: slave of %s (replicates from %s), broker id %d, in sync set (2 of 2)", master.adv, master.ha, slaveID)
	if !strings.HasSuffix(slaveEv, wantSlave) || masterID == slaveID {
		t.Fatalf("slave event %q, want it to end in %q (master id %d)", slaveEv, wantSlave, masterID)
	}

	// The NameServer routes each broker id to its replica's own EIP.
	var ci *rmqadmin.ClusterInfo
	waitFor(t, 60*time.Second, "the NameServer routes the master under id 0 and the slave under its id", func() bool {
		got, err := rmqadmin.GetClusterInfo(context.Background(), ns)
		if err != nil {
			return false
		}
		ci = got
		b := ci.Brokers[broker]
		return b.Addr(0) == master.adv && b.Addr(slaveID) == slave.adv && len(b.Addrs) == 2
	})
	t.Logf("cluster info of %s: %v", broker, ci.Brokers[broker].Addrs)

	// The slave replicates from the master's private address, not its EIP.
	hs, err := rmqadmin.GetHAStatus(context.Background(), slave.admin)
	if err != nil {
		t.Fatal(err)
	}
	masterEIPHA := net.JoinHostPort(strings.Split(master.adv, ":")[0], strings.Split(master.ha, ":")[1])
	if err := checkHAPrivate(hs.Client.MasterAddr, master.ha, masterEIPHA); err != nil {
		t.Fatal(err)
	}
	// Negative control: the same check on an HA address that is the EIP.
	if err := checkHAPrivate(masterEIPHA, master.ha, masterEIPHA); err == nil {
		t.Fatalf("the check passed an HA connection to the EIP %s", masterEIPHA)
	}
	if ms, err := rmqadmin.GetHAStatus(context.Background(), master.admin); err != nil || !ms.Master || ms.InSyncSlaveNums != 1 {
		t.Fatalf("master HA status %+v (%v), want a master with one slave in sync", ms, err)
	}

	// rmq-driver status shows both replicas from the keepers' records.
	var rep status.Report
	waitFor(t, 60*time.Second, "rmq-driver status shows the master and the slave", func() bool {
		rep = runStatusJSON(t, e, cluster)
		if len(rep.Clusters) != 1 || len(rep.Clusters[0].Replicas) != 2 {
			return false
		}
		for _, r := range rep.Clusters[0].Replicas {
			want := map[string]int64{master.adv: masterID, slave.adv: slaveID}[r.Address]
			if !r.Current || r.BrokerID != want || r.Sync != "in sync set (2 of 2)" {
				return false
			}
			if (r.Address == master.adv) != (r.Role == "master") || (r.Role == "slave" && r.HAMaster != master.ha) {
				return false
			}
		}
		return true
	})
	// The replicas leave the verdict to the bindings: both EIPs are bound
	// where their records say, so status exits 0.
	out, err := runStatus(t, e, cluster)
	t.Logf("rmq-driver status:\n%s", out)
	if err != nil || !rep.Converged {
		t.Fatalf("rmq-driver status: %v (converged %v)", err, rep.Converged)
	}
	fmt.Printf("BENCH replication public mode: 2 replicas on their own EIPs, registered as EIP:port, slave replicating from the master's private %s; role, broker id and sync state announced %.1f s after the job was submitted, %.1f s after the later replica's task started\n",
		master.ha, known.Seconds(), afterStart.Seconds())
}

// checkHAPrivate fails unless the slave's HA connection goes to the
// master's private address (and so not to its EIP).
func checkHAPrivate(got, private, eip string) error {
	switch got {
	case private:
		return nil
	case eip:
		return fmt.Errorf("the slave replicates from the master's EIP %s, not its private address %s", got, private)
	}
	return fmt.Errorf("the slave replicates from %q, want the master's private address %s", got, private)
}

// lastReplicaEvent is the message and time of the allocation's last
// replica event, and when its task started.
func lastReplicaEvent(t *testing.T, n *testutil.NomadCluster, allocID string) (string, time.Time, time.Time) {
	t.Helper()
	var a testutil.Alloc
	if err := n.GetJSON("/v1/allocation/"+allocID, &a); err != nil {
		return "", time.Time{}, time.Time{}
	}
	last := ""
	var at, started time.Time
	for _, ts := range a.TaskStates {
		for _, ev := range ts.Events {
			if ev.Type == "Started" {
				started = time.Unix(0, ev.Time)
			}
			if msg := ev.DisplayMessage + ev.Message; strings.Contains(msg, "replica: ") {
				last, at = ev.Message, time.Unix(0, ev.Time)
				if last == "" {
					last = ev.DisplayMessage
				}
			}
		}
	}
	return last, at, started
}

// eventID reads "broker id N" from a replica event.
func eventID(t *testing.T, ev string) int64 {
	t.Helper()
	_, rest, ok := strings.Cut(ev, "broker id ")
	id, err := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
	if !ok || err != nil {
		t.Fatalf("no broker id in %q", ev)
	}
	return id
}

// groupIndex is i of the allocation's group replica-i.
func groupIndex(t *testing.T, a testutil.Alloc) int {
	t.Helper()
	var i int
	if _, err := fmt.Sscanf(a.Name[strings.Index(a.Name, ".")+1:], "replica-%d", &i); err != nil {
		t.Fatalf("allocation %s is of no replica group", a.Name)
	}
	return i
}

func runStatus(t *testing.T, e *rmqEnv, cluster string, extra ...string) (string, error) {
	t.Helper()
	args := append([]string{"status", "-cluster", cluster, "-consul-addr", e.consulAddr, "-nomad-addr", e.nomad.Addr}, extra...)
	cmd := exec.Command(e.pluginDir+"/rmq-driver", args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "UCLOUD_PUBLIC_KEY=demo-public-key", "UCLOUD_PRIVATE_KEY=" + demoPrivateKey,
		"UCLOUD_REGION=cn-bj2", "UCLOUD_PROJECT_ID=org-demo", "UCLOUD_API_BASE_URL=" + e.sim.URL()}
	out, err := cmd.Output()
	return string(out), err
}

func runStatusJSON(t *testing.T, e *rmqEnv, cluster string) status.Report {
	t.Helper()
	out, _ := runStatus(t, e, cluster, "-json") // exit 1/2 is fine: the report says why
	var rep status.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Logf("status -json: %v\n%s", err, out)
	}
	return rep
}

// publicReplicatedJob is examples/jobs/replicated-broker.nomad.hcl in
// public mode: replica i binds eips[i] and runs on the host network (see
// TestPublicReplicatedGroup).
func publicReplicatedJob(job, image, cluster, broker, nsaddr string, controllers, eips []string, listen []int) string {
	var groups strings.Builder
	for i, p := range listen {
		fmt.Fprintf(&groups, `
  group "replica-%d" {
    ephemeral_disk {
      sticky  = true
      migrate = true
      size    = 1024
    }
    network {
      port "rmq"  { static = %d }
      port "fast" { static = %d }
      port "ha"   { static = %d }
    }
    task "broker" {
      driver       = "rocketmq"
      kill_timeout = "15s"
      config {
        image        = %q
        args         = ["broker"]
        ports        = ["rmq", "fast", "ha"]
        network_mode = "host"
        rocketmq {
          cluster     = %q
          role        = "broker"
          mode        = "public"
          port        = "rmq"
          fast_port   = "fast"
          ha_port     = "ha"
          controllers = %s
          eip {
            id = %q
          }
        }
      }
      env {
        ROCKETMQ_BROKER_NAME      = %q
        ROCKETMQ_NAMESRV_DOMAIN   = %q
        ROCKETMQ_NAMESRV_SUBGROUP = %q
        ROCKETMQ_JAVA_HEAP_OPTS   = %q
      }
      resources {
        cpu    = 300
        memory = 600
      }
    }
  }
`, i, p, p-2, p+1, image, cluster, hclList(controllers), eips[i], broker, nsaddr, cluster, brokerHeap)
	}
	return fmt.Sprintf(`job %q {
  datacenters = ["dc1"]
  constraint {
    operator = "distinct_hosts"
    value    = "true"
  }
%s}
`, job, groups.String())
}
