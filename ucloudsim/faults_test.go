package ucloudsim

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func describeEIPErr(c clients) error {
	_, err := c.unet.DescribeEIP(c.unet.NewDescribeEIPRequest())
	return err
}

// TestFaultKinds drives every fault kind through the SDK, with its retries off
// and on. The SDK retries RetCode >= 2000, HTTP 429/502/503/504 and network
// errors when MaxRetries > 0, except for the actions it marks non-retryable
// (AllocateEIP, AllocateBackend, CreateULB, CreateVServer).
func TestFaultKinds(t *testing.T) {
	tests := []struct {
		name     string
		rule     FaultRule
		retries  int
		timeout  time.Duration
		call     func(c clients) error
		wantCode int // RetCode of the SDK error, -1 for non-API errors
		wantHTTP int // HTTP status of the SDK error, when wantCode is -1
		requests int64
		timeouts int64
	}{
		{name: "retryable retcode, retries off",
			rule: FaultRule{Action: "DescribeEIP", RetCode: 5000, Count: 1}, call: describeEIPErr,
			wantCode: 5000, requests: 1},
		{name: "retryable retcode, retries on",
			rule: FaultRule{Action: "DescribeEIP", RetCode: 5000, Count: 1}, retries: 2, call: describeEIPErr,
			wantCode: 0, requests: 2},
		{name: "non-retryable retcode, retries on",
			rule: FaultRule{Action: "DescribeEIP", RetCode: RetCodeServiceUnavailable, Count: 1}, retries: 2, call: describeEIPErr,
			wantCode: RetCodeServiceUnavailable, requests: 1},
		{name: "http 503, retries off",
			rule: FaultRule{Action: "DescribeEIP", HTTPStatus: 503, Count: 1}, call: describeEIPErr,
			wantCode: -1, wantHTTP: 503, requests: 1},
		{name: "http 503, retries on",
			rule: FaultRule{Action: "DescribeEIP", HTTPStatus: 503, Count: 1}, retries: 2, call: describeEIPErr,
			wantCode: 0, requests: 2},
		{name: "http 503 on a create action, retries on (the SDK never retries creates)",
			rule: FaultRule{Action: "AllocateBackend", HTTPStatus: 503, Count: 1}, retries: 3,
			call: func(c clients) error {
				_, err := c.allocateBackend("vserver-t", "uhost-a", 30001)
				return err
			},
			wantCode: -1, wantHTTP: 503, requests: 1},
		{name: "http 429 on every call, retries on",
			rule: FaultRule{Action: "*", HTTPStatus: 429}, retries: 2, call: describeEIPErr,
			wantCode: -1, wantHTTP: 429, requests: 3},
		{name: "timeout, retries off",
			rule: FaultRule{Action: "DescribeEIP", Timeout: true, Count: 1}, timeout: 300 * time.Millisecond, call: describeEIPErr,
			wantCode: -1, requests: 1, timeouts: 1},
		{name: "timeout, retries on",
			rule: FaultRule{Action: "DescribeEIP", Timeout: true, Count: 1}, retries: 1, timeout: 300 * time.Millisecond, call: describeEIPErr,
			wantCode: 0, requests: 2, timeouts: 1},
		{name: "latency within the client timeout",
			rule: FaultRule{Action: "DescribeEIP", Latency: Duration(20 * time.Millisecond)}, call: describeEIPErr,
			wantCode: 0, requests: 1},
		{name: "latency beyond the client timeout, retries off",
			rule: FaultRule{Action: "DescribeEIP", Latency: Duration(5 * time.Second), Count: 1}, timeout: 200 * time.Millisecond, call: describeEIPErr,
			wantCode: -1, requests: 1},
		{name: "latency beyond the client timeout, retries on",
			rule: FaultRule{Action: "DescribeEIP", Latency: Duration(5 * time.Second), Count: 1}, retries: 1, timeout: 200 * time.Millisecond, call: describeEIPErr,
			wantCode: 0, requests: 2},
		{name: "skip lets the first calls through",
			rule: FaultRule{Action: "DescribeEIP", RetCode: 5000, Skip: 1}, call: func(c clients) error {
				if err := describeEIPErr(c); err != nil {
					return err
				}
				return describeEIPErr(c)
			},
			wantCode: 5000, requests: 2},
		{name: "rate 0 never fires",
			rule: FaultRule{Action: "DescribeEIP", RetCode: 5000, Rate: Rate(0)}, call: describeEIPErr,
			wantCode: 0, requests: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startSim(t, Config{Faults: Faults{Rules: []FaultRule{tt.rule}}})
			opts := []clientOpt{withRetries(tt.retries)}
			if tt.timeout > 0 {
				opts = append(opts, withTimeout(tt.timeout))
			}
			err := tt.call(newClients(srv, opts...))
			if got := retCode(err); got != tt.wantCode {
				t.Fatalf("RetCode = %d, want %d (err %v)", got, tt.wantCode, err)
			}
			if tt.wantHTTP != 0 && statusCode(err) != tt.wantHTTP {
				t.Fatalf("HTTP status = %d, want %d (err %v)", statusCode(err), tt.wantHTTP, err)
			}
			var total Counter
			// A timed-out request is counted when the server notices the
			// client left, which may be just after the SDK returned.
			waitFor(t, func() bool {
				total = Counter{}
				for _, c := range srv.Counters() {
					total.Requests += c.Requests
					total.Timeouts += c.Timeouts
				}
				return total.Requests == tt.requests && total.Timeouts == tt.timeouts
			}, func() string {
				return fmt.Sprintf("want %d requests and %d timeouts; counters %s", tt.requests, tt.timeouts, fmtCounters(srv))
			})
		})
	}
}

func fmtCounters(srv *Server) string {
	var b strings.Builder
	for k, v := range srv.Counters() {
		fmt.Fprintf(&b, "%s: %+v; ", k, v)
	}
	return b.String()
}

// waitFor polls a condition that becomes true shortly, without asserting on
// how long it takes (bounded so a broken test ends).
func waitFor(t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("condition never held: %s", what())
}

// TestFaultAfterApply: the bind happens but its reply is lost; a retry then
// finds the EIP already bound. This is what a driver's reconcile must handle.
func TestFaultAfterApply(t *testing.T) {
	for _, retries := range []int{0, 2} {
		srv := startSim(t, Config{Faults: Faults{Rules: []FaultRule{
			{Action: "BindEIP", HTTPStatus: 503, AfterApply: true, Count: 1},
		}}})
		err := newClients(srv, withRetries(retries)).bind("eip-free", "uhost-a")
		want := -1
		if retries > 0 {
			want = RetCodeEIPOperationFailed
		}
		if got := retCode(err); got != want {
			t.Fatalf("retries %d: RetCode %d, want %d (%v)", retries, got, want, err)
		}
		if e := srv.Snapshot().EIPs[0]; e.ResourceID != "uhost-a" {
			t.Fatalf("retries %d: the bind was not applied: %+v", retries, e)
		}
		if log := srv.Requests(); log[0].Fault != "http_503+after_apply" {
			t.Fatalf("fault label %q", log[0].Fault)
		}
	}
}

// TestFaultDiceAreSeeded: same seed, same requests, same failures.
func TestFaultDiceAreSeeded(t *testing.T) {
	run := func(seed int64) []bool {
		srv := startSim(t, Config{Seed: seed, Faults: Faults{Rules: []FaultRule{
			{Action: "DescribeEIP", RetCode: 5000, Rate: Rate(0.5)},
		}}})
		c := newClients(srv)
		out := make([]bool, 40)
		for i := range out {
			out[i] = describeEIPErr(c) != nil
		}
		return out
	}
	a, b := run(7), run(7)
	failures := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("call %d differs between two runs with the same seed", i)
		}
		if a[i] {
			failures++
		}
	}
	if failures == 0 || failures == len(a) {
		t.Fatalf("rate 0.5 gave %d failures of %d", failures, len(a))
	}
}

func TestPendingDescribes(t *testing.T) {
	srv := startSim(t, Config{Faults: Faults{PendingDescribes: 2}})
	c := newClients(srv)
	mustOK(t, c.bind("eip-free", "uhost-a"))

	for i, want := range []string{"free", "free", "used", "used"} {
		if got := c.describeEIP(t, "eip-free").EIPSet[0].Status; got != want {
			t.Fatalf("describe %d: status %q, want %q", i, got, want)
		}
	}
	for i, want := range []int{0, 0, 1} {
		if got := len(hostEIPs(c.host(t, "uhost-a"))); got != want {
			t.Fatalf("host describe %d: %d EIPs, want %d", i, got, want)
		}
	}
	if srv.Snapshot().EIPs[0].Status != "used" {
		t.Fatal("Snapshot must show the true state")
	}
	// Mutations see the truth: binding again is refused at once.
	wantCode(t, c.bind("eip-free", "uhost-b"), RetCodeEIPOperationFailed)

	_, err := c.allocateBackend("vserver-t", "uhost-a", 30001)
	mustOK(t, err)
	for i, want := range []int{1, 1, 2} {
		if got := len(c.vserver(t, "vserver-t").BackendSet); got != want {
			t.Fatalf("vserver describe %d: %d backends, want %d", i, got, want)
		}
	}
}

func TestMetadataFaults(t *testing.T) {
	srv := startSim(t, Config{Faults: Faults{Rules: []FaultRule{
		{Action: metadataAction, HTTPStatus: 503, Count: 1},
		{Action: "*", RetCode: 5000}, // API actions only
	}}})
	url := srv.MetadataURL("uhost-a") + "/meta-data/latest/uhost/uhost-id"
	if code, _ := get(t, url); code != http.StatusServiceUnavailable {
		t.Fatalf("first metadata GET: %d", code)
	}
	if code, body := get(t, url); code != http.StatusOK || body != "uhost-a" {
		t.Fatalf("second metadata GET: %d %q", code, body)
	}
	if c := srv.Counters()[metadataAction]; c.Requests != 2 || c.HTTPErrors != 1 || c.Faults != 1 {
		t.Fatalf("metadata counters %+v", c)
	}
}

func TestFaultValidation(t *testing.T) {
	tests := []struct {
		name string
		f    Faults
	}{
		{"unknown action", Faults{Rules: []FaultRule{{Action: "BindEIPP", RetCode: 1}}}},
		{"rate above 1", Faults{Rules: []FaultRule{{Action: "*", RetCode: 1, Rate: Rate(1.5)}}}},
		{"does nothing", Faults{Rules: []FaultRule{{Action: "*"}}}},
		{"not an error status", Faults{Rules: []FaultRule{{Action: "*", HTTPStatus: 200}}}},
		{"retcode on metadata", Faults{Rules: []FaultRule{{Action: metadataAction, RetCode: 5000}}}},
		{"negative pending", Faults{PendingDescribes: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSim(t, Config{})
			if err := srv.SetFaults(tt.f); err == nil {
				t.Fatal("SetFaults accepted it")
			}
			if _, err := New(Config{Faults: tt.f}); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	f, err := ParseFaults([]byte(`{"rules":[{"action":"BindEIP","latency":"1.5s"},{"action":"*","latency":250}]}`))
	mustOK(t, err)
	if f.Rules[0].Latency != Duration(1500*time.Millisecond) || f.Rules[1].Latency != Duration(250*time.Millisecond) {
		t.Fatalf("latencies %v %v", f.Rules[0].Latency, f.Rules[1].Latency)
	}
	if _, err := ParseFaults([]byte(`{"rules":[{"action":"*","latency":"soon"}]}`)); err == nil {
		t.Fatal("bad duration accepted")
	}
	if _, err := ParseFaults([]byte(`{"rulez":[]}`)); err == nil {
		t.Fatal("unknown field accepted")
	}
}

// TestTimeoutFaultMaxHang: a hung request the client does not abandon is
// answered 504 after MaxHang, which the SDK sees as a retryable HTTP error.
func TestTimeoutFaultMaxHang(t *testing.T) {
	srv := startSim(t, Config{MaxHang: 20 * time.Millisecond, Faults: Faults{Rules: []FaultRule{
		{Action: "DescribeUHostInstance", Timeout: true, Count: 1},
	}}})
	for _, retries := range []int{0, 1} {
		c := newClients(srv, withRetries(retries))
		_, err := c.uhost.DescribeUHostInstance(c.uhost.NewDescribeUHostInstanceRequest())
		if retries == 0 {
			if statusCode(err) != http.StatusGatewayTimeout {
				t.Fatalf("retries off: %v", err)
			}
			mustOK(t, srv.SetFaults(srv.Faults())) // re-arm the rule
		} else {
			mustOK(t, err)
		}
	}
	if c := srv.Counters()["DescribeUHostInstance"]; c.Timeouts != 2 || c.Requests != 3 || c.Succeeded != 1 {
		t.Fatalf("counters %+v", c)
	}
}
