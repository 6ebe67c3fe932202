package ucloudsim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestAdminAPI is what an e2e test in another process does with curl.
func TestAdminAPI(t *testing.T) {
	srv := startSim(t, Config{})
	c := newClients(srv)
	admin := srv.URL() + "/_sim"

	if code, body := get(t, admin+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("healthz: %d %s", code, body)
	}

	// Faults: PUT, GET, then the calls fail.
	code, body := do(t, http.MethodPut, admin+"/faults",
		`{"rules":[{"action":"BindEIP","ret_code":5000,"message":"try later","count":1}],"pending_describes":0}`)
	if code != 200 {
		t.Fatalf("PUT faults: %d %s", code, body)
	}
	if _, body = get(t, admin+"/faults"); !strings.Contains(body, `"ret_code": 5000`) {
		t.Fatalf("GET faults: %s", body)
	}
	wantCode(t, c.bind("eip-free", "uhost-a"), 5000)
	mustOK(t, c.bind("eip-free", "uhost-a"))

	// Invalid faults are refused and leave the old ones.
	if code, _ = do(t, http.MethodPost, admin+"/faults", `{"rules":[{"action":"Nope","ret_code":1}]}`); code != http.StatusBadRequest {
		t.Fatalf("bad faults: %d", code)
	}
	if code, _ = do(t, http.MethodPost, admin+"/faults", `not json`); code != http.StatusBadRequest {
		t.Fatalf("garbage faults: %d", code)
	}
	if len(srv.Faults().Rules) != 1 {
		t.Fatal("a refused PUT changed the faults")
	}
	if code, _ = do(t, http.MethodDelete, admin+"/faults", ""); code != 200 || len(srv.Faults().Rules) != 0 {
		t.Fatalf("DELETE faults: %d", code)
	}

	// Counters.
	var counters map[string]Counter
	_, body = get(t, admin+"/counters")
	mustOK(t, json.Unmarshal([]byte(body), &counters))
	if b := counters["BindEIP"]; b.Requests != 2 || b.Failed != 1 || b.Succeeded != 1 || b.Faults != 1 {
		t.Fatalf("BindEIP counters %+v", b)
	}

	// Request log, filtered.
	var reqs []RequestLogEntry
	_, body = get(t, admin+"/requests?action=BindEIP")
	mustOK(t, json.Unmarshal([]byte(body), &reqs))
	if len(reqs) != 2 || reqs[0].RetCode != 5000 || reqs[0].Fault != "ret_code_5000" || reqs[1].RetCode != 0 ||
		reqs[1].Params["EIPId"] != "eip-free" || reqs[1].Params["Signature"] != redacted || reqs[1].ProjectID != testProject {
		t.Fatalf("request log %+v", reqs)
	}
	_, body = get(t, admin+"/requests?since="+itoa64(reqs[0].Seq)+"&limit=1")
	mustOK(t, json.Unmarshal([]byte(body), &reqs))
	if len(reqs) != 1 || reqs[0].RetCode != 0 {
		t.Fatalf("since/limit: %+v", reqs)
	}
	if code, _ = get(t, admin+"/requests?since=x"); code != http.StatusBadRequest {
		t.Fatalf("bad since: %d", code)
	}

	// State dump.
	var st State
	_, body = get(t, admin+"/state")
	mustOK(t, json.Unmarshal([]byte(body), &st))
	if st.EIPs[0].ResourceID != "uhost-a" || st.EIPs[0].Status != "used" || len(st.Hosts[0].IPSet) != 2 {
		t.Fatalf("state dump %+v", st.EIPs[0])
	}

	// Reset puts the seed back and clears the stats.
	if code, _ = do(t, http.MethodPost, admin+"/reset", ""); code != 200 {
		t.Fatalf("reset: %d", code)
	}
	if e := srv.Snapshot().EIPs[0]; e.ResourceID != "" {
		t.Fatalf("after reset eip-free is bound to %s", e.ResourceID)
	}
	if len(srv.Requests()) != 0 || len(srv.Counters()) != 0 {
		t.Fatal("reset kept stats")
	}
	mustOK(t, c.bind("eip-free", "uhost-a"))
	if code, _ = do(t, http.MethodDelete, admin+"/requests", ""); code != 200 || len(srv.Requests()) != 0 {
		t.Fatal("DELETE requests")
	}
	if code, _ = do(t, http.MethodDelete, admin+"/counters", ""); code != 200 || len(srv.Counters()) != 0 {
		t.Fatal("DELETE counters")
	}

	for _, tt := range []struct{ method, path string }{
		{http.MethodGet, "/nope"}, {http.MethodPost, "/state"}, {http.MethodGet, "/reset"}, {http.MethodPatch, "/faults"},
	} {
		if code, _ = do(t, tt.method, admin+tt.path, ""); code < 400 {
			t.Fatalf("%s %s: %d", tt.method, tt.path, code)
		}
	}
	if _, body = get(t, admin+"/actions"); !strings.Contains(body, "UpdateBackendAttribute") {
		t.Fatalf("actions: %s", body)
	}
}

func TestRequestLogLimit(t *testing.T) {
	srv := startSim(t, Config{RequestLogLimit: 3})
	c := newClients(srv)
	for range 5 {
		mustOK(t, describeEIPErr(c))
	}
	log := srv.Requests()
	if len(log) != 3 || log[0].Seq != 3 || log[2].Seq != 5 {
		t.Fatalf("log %+v", log)
	}
	if srv.Counters()["DescribeEIP"].Requests != 5 {
		t.Fatal("counters must count what the log dropped")
	}
}

func itoa64(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
