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
// from the master's brokerIP2:haListenPort. Then the master hands its role
// to the slave, as a stopping master's driver does (handOver).
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

	handOver(ctx, t, r.NameServer, controller, name, master, slave, slaveID)
}

// handOver is the master handoff a stopping master's driver makes: the
// decision on what the master and the controllers say, the admin
// election of the slave, and then the roles swapped, per the controllers,
// the NameServer (broker id 0) and both brokers' HA status.
func handOver(ctx context.Context, t *testing.T, namesrv, controller, name string, master, slave *testutil.Broker, slaveID int64) {
	t.Helper()
	decide := func(b *testutil.Broker) replica.Handoff {
		cfg, err := rmqadmin.BrokerConfig(ctx, b.Addr)
		if err != nil {
			t.Fatal(err)
		}
		info, ok, _, syncErr := rmqadmin.SyncStateFrom(ctx, []string{controller}, "", name, 2*time.Second)
		obs := replica.HandoffObservation{ControllerMode: true, Self: b.Addr, Conf: cfg, SyncErr: syncErr}
		if ok {
			obs.Group = &info
		}
		return replica.DecideHandoff(obs)
	}
	plan := decide(master)
	if !plan.Elect || len(plan.Candidates) != 1 || plan.Candidates[0].BrokerID != slaveID || plan.Candidates[0].Address != slave.Addr {
		t.Fatalf("the master's handoff decision %+v, want an election of broker id %d (%s)", plan, slaveID, slave.Addr)
	}
	if p := decide(slave); p.Elect || p.Skip != "" {
		t.Fatalf("the slave's handoff decision %+v, want nothing to do", p)
	}
	cfg, err := rmqadmin.BrokerConfig(ctx, master.Addr)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	el, from, err := rmqadmin.ElectMasterFrom(ctx, []string{controller}, "", cfg["brokerClusterName"], name, slaveID, 3*time.Second)
	if err != nil || from != controller || el.MasterBrokerID != slaveID || el.MasterAddress != slave.Addr {
		t.Fatalf("election of broker id %d: %+v from %s: %v", slaveID, el, from, err)
	}
	elected := time.Since(begin)
	// The controllers committed it before they answered.
	info, ok, _, err := rmqadmin.SyncStateFrom(ctx, []string{controller}, "", name, 2*time.Second)
	if err != nil || !ok || info.MasterBrokerID != slaveID || info.MasterAddress != slave.Addr {
		t.Fatalf("after the election the controllers report %+v (%v), want broker id %d at %s master", info, err, slaveID, slave.Addr)
	}
	// The same election again changes nothing: the slave is master.
	if _, _, err := rmqadmin.ElectMasterFrom(ctx, []string{controller}, "", cfg["brokerClusterName"], name, slaveID, 3*time.Second); !rmqadmin.IsCode(err, rmqadmin.CodeControllerMasterStillExist) {
		t.Fatalf("the election repeated: %v, want code %d", err, rmqadmin.CodeControllerMasterStillExist)
	}
	if p := decide(master); p.Elect || p.Skip != "" {
		t.Fatalf("the old master's handoff decision after the election %+v, want nothing to do", p)
	}
	var routed time.Duration
	for {
		ci, err := rmqadmin.GetClusterInfo(ctx, namesrv)
		if err == nil && ci.Brokers[name].Addr(0) == slave.Addr {
			routed = time.Since(begin)
			t.Logf("cluster info after the handoff: %+v", ci.Brokers[name])
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("cluster info %+v (%v): want the new master %s under id 0", ci, err, slave.Addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for {
		newHA, err1 := rmqadmin.GetHAStatus(ctx, slave.Addr)
		oldHA, err2 := rmqadmin.GetHAStatus(ctx, master.Addr)
		if err1 == nil && err2 == nil && newHA.Master && !oldHA.Master {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("HA status after the handoff: new master %+v (%v), old master %+v (%v)", newHA, err1, oldHA, err2)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("BENCH master handoff (real RocketMQ 5.3.3, 2 replicas): the controllers elected broker id %d in %.0f ms; the NameServer routed it as id 0 after %.2f s; both brokers changed roles after %.2f s\n",
		slaveID, float64(elected.Microseconds())/1000, routed.Seconds(), time.Since(begin).Seconds())
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
