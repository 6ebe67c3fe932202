package status

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/replica"
)

func replicaRec(group, alloc string, s replica.State, seen time.Duration) replica.Record {
	return replica.Record{State: s, Cluster: "orders", Namespace: "default", JobID: "rmq-repl", Group: group, AllocID: alloc,
		NodeName: "node-" + group, Address: s.MasterAddr, ObservedAt: now.Add(-seen), ChangedAt: now.Add(-time.Hour)}
}

var (
	replMaster = replica.State{BrokerName: "broker-0", Role: replica.RoleMaster, BrokerID: 1, MasterID: 1, MasterAddr: "203.0.113.10:30911",
		SyncKnown: true, InSync: true, SyncSetSize: 2, Replicas: 2}
	replSlave = replica.State{BrokerName: "broker-0", Role: replica.RoleSlave, BrokerID: 2, MasterID: 1, MasterAddr: "203.0.113.10:30911",
		HAMasterAddr: "10.9.0.11:30912", SyncKnown: true, InSync: true, SyncSetSize: 2, Replicas: 2}
)

func TestDecideReplica(t *testing.T) {
	unknown := replica.State{BrokerName: "broker-0", Role: replica.RoleSlave, Problem: "controllers: timeout"}
	for _, tc := range []struct {
		name    string
		obs     ReplicaObs
		current bool
		note    string
		sync    string
	}{
		{"master, fresh", ReplicaObs{replicaRec("replica-0", "a1", replMaster, 10*time.Second), running()}, true, "", "in sync set (2 of 2)"},
		{"slave, fresh", ReplicaObs{replicaRec("replica-1", "a2", replSlave, 50*time.Second), running()}, true, "", "in sync set (2 of 2)"},
		{"allocation lost", ReplicaObs{replicaRec("replica-1", "a2", replSlave, 5*time.Minute), status("lost")}, false, "allocation a2 is lost: the record is what its keeper saw 5m0s ago", "in sync set (2 of 2)"},
		{"unknown to nomad", ReplicaObs{replicaRec("replica-1", "a2", replSlave, time.Minute), AllocObs{}}, false, "is unknown to nomad", ""},
		{"keeper silent", ReplicaObs{replicaRec("replica-0", "a1", replMaster, StaleAfter+time.Second), running()}, false, "not refreshed for 3m1s", ""},
		{"partly known", ReplicaObs{replicaRec("replica-2", "a3", unknown, time.Second), running()}, true, "controllers: timeout", "sync state unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := decideReplica(now, "p", tc.obs)
			if r.Current != tc.current || !strings.Contains(r.Note, tc.note) || (tc.note == "" && r.Note != "") {
				t.Errorf("current %v note %q, want %v %q", r.Current, r.Note, tc.current, tc.note)
			}
			if tc.sync != "" && r.Sync != tc.sync {
				t.Errorf("sync %q, want %q", r.Sync, tc.sync)
			}
			if r.Key != "p/replicas/orders/broker-0/default/rmq-repl/"+tc.obs.Record.Group+"/0" || r.Slot != "default/rmq-repl/"+tc.obs.Record.Group+"/0" {
				t.Errorf("key %s slot %s", r.Key, r.Slot)
			}
		})
	}
}

// Replicas show in their cluster's section (a private cluster has no
// other records), sorted, and leave the exit status alone.
func TestRenderReplicas(t *testing.T) {
	s := world()
	s.Replicas = []ReplicaObs{
		{replicaRec("replica-1", "a2bbbbbbbbbb", replSlave, 4*time.Second), running()},
		{replicaRec("replica-0", "a1aaaaaaaaaa", replMaster, 3*time.Second), running()},
		{replicaRec("replica-2", "a3cccccccccc", replSlave, 10*time.Minute), status("lost")},
	}
	for i := range s.Replicas {
		s.Replicas[i].Record.Cluster = "private"
	}
	rep := Decide(s)
	if !rep.Converged || ExitCode(rep) != 0 {
		t.Fatalf("replicas changed the verdict: converged %v exit %d", rep.Converged, ExitCode(rep))
	}
	if len(rep.Clusters) != 2 || rep.Clusters[1].Name != "private" || len(rep.Clusters[1].Replicas) != 3 || rep.Clusters[1].Replicas[0].Slot != "default/rmq-repl/replica-0/0" {
		t.Fatalf("clusters %+v", rep.Clusters)
	}
	var buf bytes.Buffer
	if err := Render(&buf, rep); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Logf("\n%s", out)
	for _, want := range []string{
		"cluster private: no tenant record",
		"  replicas of broker-0:\n",
		"ALLOC     NOMAD    NODE",
		"a1aaaaaa  running  node-replica-0  203.0.113.10:30911  master  1   in sync set (2 of 2)  -                3s ago",
		"a2bbbbbb  running  node-replica-1  203.0.113.10:30911  slave   2   in sync set (2 of 2)  10.9.0.11:30912  4s ago",
		"not current: broker-0 default/rmq-repl/replica-2/0: allocation a3cccccc is lost",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	var js bytes.Buffer
	if err := RenderJSON(&js, rep); err != nil || !strings.Contains(js.String(), `"replicas": []`) || !strings.Contains(js.String(), `"ha_master": "10.9.0.11:30912"`) {
		t.Fatalf("json: %v\n%s", err, js.String())
	}
}

type fakeReplicas struct {
	recs []replica.Record
	bad  []Unreadable
	err  error
}

func (f fakeReplicas) Replicas(context.Context) ([]replica.Record, []Unreadable, error) {
	return f.recs, f.bad, f.err
}

func TestObserveReplicas(t *testing.T) {
	kv := &fakeKV{prefix: "p", kv: map[string]string{}}
	nomad := &fakeNomad{allocs: map[string]string{"a1": "running"}, jobs: map[string]bool{}, asked: map[string]int{}}
	other := replicaRec("replica-0", "z9", replMaster, 0)
	other.Cluster = "payments"
	deps := Deps{Records: kv, Keys: kv, Allocs: nomad, JobExists: nomad.JobExists, Cluster: "orders",
		Replicas: fakeReplicas{recs: []replica.Record{replicaRec("replica-0", "a1", replMaster, 0), replicaRec("replica-1", "a2", replSlave, 0), other},
			bad: []Unreadable{{Key: "p/replicas/x", Reason: "bad json"}}}}
	s, err := Observe(context.Background(), deps)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Replicas) != 2 || !s.Replicas[0].Alloc.Found || s.Replicas[1].Alloc.Found || nomad.asked["z9"] != 0 {
		t.Fatalf("replicas %+v, nomad asked %v", s.Replicas, nomad.asked)
	}
	rep := Decide(s)
	if len(rep.Errors) != 1 || rep.Errors[0].Source != SourceConsul || !strings.Contains(rep.Errors[0].Message, "p/replicas/x") {
		t.Fatalf("errors %+v", rep.Errors)
	}
	deps.Replicas = fakeReplicas{err: errors.New("consul down")}
	if s, err = Observe(context.Background(), deps); err != nil || len(Decide(s).Errors) != 1 {
		t.Fatalf("a failed list: %v %+v", err, s.ReplicaErrs)
	}
}
