package status

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
)

// mixed is a world with one binding in each interesting state.
func mixed() Snapshot {
	s := world()
	s.Records = []RecordObs{
		eipRec("eip-a", "a1b2c3d4-0000", "uhost-a", running()),
		backendRec(vsKey, "backend-1", "n1", "uhost-a", 30001, running()),
		backendRec("ulb-ns/vserver-ns/orders/namesrv/1", "backend-2", "n2", "uhost-b", 30002, status("lost")),
	}
	s.Records[0].Entry.Owner.AllocIndex = 1
	s.Records[2].Entry.Owner.AllocIndex = 1
	s.EIPs["eip-a"] = free("eip-a")
	s.VServers["ulb-ns/vserver-ns"] = vserver(be("backend-1", "uhost-a", 30001, true), be("backend-2", "uhost-b", 30002, true),
		ucloudapi.Backend{ID: "backend-seed", ResourceID: "uhost-c", Port: 30000, Enabled: true, Status: "healthy"})
	s.AskedVServers = []VServerRef{{ULB: "ulb-ns", VServer: "vserver-ns"}}
	s.NameServers = map[string]ServiceObs{"orders": {Service: "nameServerorders", Instances: []Instance{{Address: "10.9.0.11", Port: 30001, Status: "passing"}}}}
	return s
}

func TestRender(t *testing.T) {
	var buf bytes.Buffer
	if err := Render(&buf, Decide(mixed())); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Logf("\n%s", out)
	for _, want := range []string{
		"cluster orders: namespace default, jobs rmq-namesrv (exists), rmq-broker (exists)\n",
		"nameservers: consul service nameServerorders: 10.9.0.11:30001 passing",
		"drift: default/rmq-broker/broker/orders/broker/1 eip eip-a: allocation a1b2c3d4-0000 is running (desired run); record says uhost uhost-a, the eip is free",
		"-> " + RepairAction,
		"collect: default/rmq-namesrv/namesrv/orders/namesrv/1 backend backend-2",
		"orphan: backend backend-seed in ulb-ns/vserver-ns",
		"not converged",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// A tenant's jobs as nomad sees them; one job is "job".
	s := world()
	s.Tenants["orders"] = tenant("team-a", job("rmq-namesrv", false), JobObs{ID: "rmq-broker", Err: "connection refused"})
	s.Tenants["payments"] = tenant("default", job("rmq-payments", false))
	buf.Reset()
	if err := Render(&buf, Decide(s)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"cluster orders: namespace team-a, jobs rmq-namesrv (unknown to nomad), rmq-broker (could not ask nomad)\n  unknown claim: none until nomad answers\n",
		"cluster payments: namespace default, job rmq-payments (unknown to nomad)\n  collect claim: the collector deletes the claim",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, buf.String())
		}
	}

	// The table is aligned: every row of a table starts its STATE column
	// at the same offset.
	lines := strings.Split(out, "\n")
	var col = -1
	for _, l := range lines {
		if strings.HasPrefix(l, "  ROLE") {
			col = strings.Index(l, "STATE")
			continue
		}
		if col < 0 || l == "" || !strings.HasPrefix(l, "  ") || strings.HasPrefix(l, "    ") || strings.Contains(l, ": ") {
			col = -1
			continue
		}
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("row not aligned at column %d: %q", col, l)
		}
	}
}

func TestRenderJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderJSON(&buf, Decide(mixed())); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("not json: %v\n%s", err, buf.String())
	}
	for _, k := range []string{"schema", "generated_at", "kv_prefix", "cluster_filter", "cloud_access", "converged", "counts", "clusters", "unowned", "errors"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("document lacks %q", k)
		}
	}
	// A cluster's tenant: namespace, jobs in the record's order, each with
	// exists or error (never both).
	clusters, _ := doc["clusters"].([]any)
	if len(clusters) != 1 {
		t.Fatalf("clusters = %v", doc["clusters"])
	}
	c, _ := clusters[0].(map[string]any)
	for _, k := range []string{"name", "tenant", "nameservers", "bindings"} {
		if _, ok := c[k]; !ok {
			t.Errorf("cluster lacks %q", k)
		}
	}
	ten, _ := c["tenant"].(map[string]any)
	for _, k := range []string{"namespace", "jobs", "claimed_at", "state", "action"} {
		if _, ok := ten[k]; !ok {
			t.Errorf("tenant lacks %q", k)
		}
	}
	if got, _ := json.Marshal(ten["jobs"]); string(got) != `[{"exists":true,"job_id":"rmq-namesrv"},{"exists":true,"job_id":"rmq-broker"}]` {
		t.Errorf("tenant jobs = %s", got)
	}
	s := world()
	s.Tenants["orders"] = tenant("default", job("rmq-namesrv", false), JobObs{ID: "rmq-broker", Err: "connection refused"})
	var one bytes.Buffer
	_ = RenderJSON(&one, Decide(s))
	if !strings.Contains(one.String(), `"jobs": [
          {
            "job_id": "rmq-namesrv",
            "exists": false
          },
          {
            "job_id": "rmq-broker",
            "error": "connection refused"
          }
        ]`) {
		t.Errorf("jobs of a purged and an unknown job:\n%s", one.String())
	}

	var r Report
	if err := json.Unmarshal(buf.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if r.Schema != SchemaVersion || r.Counts.Drift != 1 || r.Counts.Collect != 1 || r.Counts.Orphan != 1 || r.Counts.OK != 1 {
		t.Errorf("counts = %+v", r.Counts)
	}
	// Stable: the same snapshot renders byte for byte the same.
	var again bytes.Buffer
	_ = RenderJSON(&again, Decide(mixed()))
	if again.String() != buf.String() {
		t.Error("two renderings of one snapshot differ")
	}
	// Empty lists are [], never null.
	buf.Reset()
	_ = RenderJSON(&buf, Decide(Snapshot{Prefix: "p"}))
	if !strings.Contains(buf.String(), `"clusters": []`) || !strings.Contains(buf.String(), `"errors": []`) {
		t.Errorf("empty report:\n%s", buf.String())
	}
}
