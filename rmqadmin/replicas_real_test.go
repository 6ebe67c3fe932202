package rmqadmin_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/replica"
	"github.com/rmqnomad/rocketmq-nomad-driver/rmqadmin"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// TestReplicasAgainstRocketMQ reads a real controller-mode group of two
// replicas (RocketMQ 5.3.3: a NameServer, one DLedger controller, two
// brokers of one name) through the calls the broker keeper makes, and
// derives each replica's state from them: one master and one slave with
// the controllers' ids, both in the SyncStateSet, the slave replicating
// from the master's brokerIP2:haListenPort.
func TestReplicasAgainstRocketMQ(t *testing.T) {
	image := testutil.RocketMQImage(t)
	r := testutil.StartNameServer(t, image)
	controller := r.StartController(t)
	conf := testutil.ControllerBrokerConf(controller, 2)
	const name = "broker-r"
	var brokers []*testutil.Broker
	for i := 0; i < 2; i++ {
		brokers = append(brokers, r.StartBroker(t, testutil.RocketMQOptions{BrokerName: name, BrokerConf: conf}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	started := time.Now()

	var group rmqadmin.ReplicasInfo
	for {
		info, ok, _, err := rmqadmin.SyncStateFrom(ctx, []string{controller}, "", name, 2*time.Second)
		if err == nil && ok && info.MasterBrokerID != 0 && len(info.InSync) == 2 {
			group = info
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no master with both replicas in sync: %+v ok %v err %v\nbroker 0:\n%s\nbroker 1:\n%s", info, ok, err,
				tailLines(brokers[0].Logs(), 30), tailLines(brokers[1].Logs(), 30))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("SyncStateSet of 2 after %.1f s: %+v", time.Since(started).Seconds(), group)
	md, err := rmqadmin.GetControllerMetadata(ctx, controller)
	if err != nil || !md.IsLeader || md.LeaderAddr != controller {
		t.Fatalf("controller metadata %+v (%v), want it the leader at %s", md, err, controller)
	}

	var master, slave *testutil.Broker
	for _, b := range brokers {
		if b.Addr == group.MasterAddress {
			master = b
		} else {
			slave = b
		}
	}
	if master == nil {
		t.Fatalf("master %s is none of the brokers", group.MasterAddress)
	}
	host, port, _ := net.SplitHostPort(master.Addr)
	p, _ := strconv.Atoi(port)
	masterHA := net.JoinHostPort(host, strconv.Itoa(p+1))

	// The NameServer routes the master under id 0 and the slave under its
	// controller id, once both registered with their roles.
	var slaveID int64
	for _, rep := range group.InSync {
		if rep.Address == slave.Addr {
			slaveID = rep.BrokerID
		}
	}
	for {
		ci, err := rmqadmin.GetClusterInfo(ctx, r.NameServer)
		if err == nil && ci.Brokers[name].Addr(0) == master.Addr && ci.Brokers[name].Addr(slaveID) == slave.Addr {
			t.Logf("cluster info: %+v", ci.Brokers[name])
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("cluster info %+v (%v): want %s under id 0 and %s under %d", ci, err, master.Addr, slave.Addr, slaveID)
		}
		time.Sleep(500 * time.Millisecond)
	}

	want := map[*testutil.Broker]string{
		master: fmt.Sprintf("master, broker id %d, in sync set (2 of 2)", group.MasterBrokerID),
		slave:  fmt.Sprintf("slave of %s (replicates from %s), broker id %d, in sync set (2 of 2)", master.Addr, masterHA, slaveID),
	}
	for b, summary := range want {
		var s replica.State
		for {
			cfg, err := rmqadmin.BrokerConfig(ctx, b.Addr)
			if err != nil {
				t.Fatal(err)
			}
			ha, haErr := rmqadmin.GetHAStatus(ctx, b.Addr)
			info, ok, _, syncErr := rmqadmin.SyncStateFrom(ctx, []string{controller}, "", name, 2*time.Second)
			obs := replica.Observation{Self: b.Addr, Conf: cfg, HA: ha, HAErr: haErr, SyncErr: syncErr}
			if ok {
				obs.Group = &info
			}
			s = replica.Derive(obs)
			if s.Summary() == summary && s.Problem == "" {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("replica %s: %q (problem %q), want %q", b.Addr, s.Summary(), s.Problem, summary)
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Logf("%s: %s", b.Addr, s.Summary())
	}
	fmt.Printf("BENCH replica state (controller mode, 2 replicas, real RocketMQ 5.3.3): both replicas' role, id and sync state known %.1f s after the second broker listened\n",
		time.Since(started).Seconds())
}

func tailLines(s string, n int) string {
	lines := 0
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			lines++
			if lines > n {
				return s[i+1:]
			}
		}
	}
	return s
}
