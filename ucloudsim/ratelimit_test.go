package ucloudsim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// limited starts a simulator with a rate limit on a clock the test moves.
func limited(t *testing.T, rl RateLimit, extra ...Keypair) (*Server, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	srv := startSim(t, Config{Faults: Faults{RateLimit: &rl}, Now: clock.Now, Keypairs: extra})
	return srv, clock
}

// waitRecorded waits until the simulator has recorded n API requests in
// all (a request is recorded just after its reply is written).
func waitRecorded(t *testing.T, srv *Server, n int64) map[string]Counter {
	t.Helper()
	var cs map[string]Counter
	waitFor(t, func() bool {
		cs = srv.Counters()
		var total int64
		for _, c := range cs {
			total += c.Requests
		}
		return total == n
	}, func() string { return fmtCounters(srv) })
	return cs
}

// outcomes makes n DescribeEIP calls and returns how many succeeded and
// how many were throttled; any other outcome fails the test.
func outcomes(t *testing.T, c clients, n int) (ok, throttled int) {
	t.Helper()
	for range n {
		err := describeEIPErr(c)
		switch retCode(err) {
		case RetCodeOK:
			ok++
		case RetCodeRateLimited:
			throttled++
		default:
			t.Fatalf("want success or RetCode %d, got %v", RetCodeRateLimited, err)
		}
	}
	return ok, throttled
}

// TestRateLimitHolds: with the clock standing still, the burst passes and
// every further call is refused with UCloud's throttling answer, counted as
// such, and not carried out.
func TestRateLimitHolds(t *testing.T) {
	srv, _ := limited(t, RateLimit{CallsPerSecond: 5, Burst: 3})
	c := newClients(srv)
	ok, throttled := outcomes(t, c, 10)
	if ok != 3 || throttled != 7 {
		t.Fatalf("%d ok, %d throttled; want 3 and 7", ok, throttled)
	}

	// The exact answer, through the SDK: a RetCode error with the message.
	err := c.bind("eip-free", "uhost-a")
	wantCode(t, err, RetCodeRateLimited)
	if !strings.Contains(err.Error(), DefaultRateLimitMessage) {
		t.Fatalf("error %q lacks the message %q", err, DefaultRateLimitMessage)
	}
	// Refused calls are not carried out.
	if e, _ := srv.Snapshot().EIP("eip-free"); e.ResourceID != "" {
		t.Fatalf("a throttled BindEIP bound the EIP to %s", e.ResourceID)
	}

	cs := waitRecorded(t, srv, 11)
	if d := cs["DescribeEIP"]; d.Requests != 10 || d.Succeeded != 3 || d.Failed != 7 || d.Throttled != 7 || d.Faults != 7 {
		t.Fatalf("DescribeEIP counter = %+v", d)
	}
	if b := cs["BindEIP"]; b.Throttled != 1 || b.Failed != 1 {
		t.Fatalf("BindEIP counter = %+v", b)
	}
	var logged int
	for _, e := range srv.Requests() {
		if e.RetCode == RetCodeRateLimited {
			logged++
			if e.Fault != "rate_limit" || e.HTTPStatus != http.StatusOK || e.Message != DefaultRateLimitMessage {
				t.Fatalf("request log entry of a throttled call = %+v", e)
			}
		}
	}
	if logged != 8 {
		t.Fatalf("%d throttled calls in the request log, want 8", logged)
	}
}

// TestRateLimitWire: on the wire a throttled call is HTTP 200 with the
// ordinary envelope, RetCode 153, the message and a request UUID.
func TestRateLimitWire(t *testing.T) {
	srv, _ := limited(t, RateLimit{CallsPerSecond: 1, Burst: 1, Message: "slow down"})
	call := func() (int, http.Header, map[string]any) {
		p := map[string]string{"Action": "DescribeEIP", "Region": testRegion, "ProjectId": testProject, "PublicKey": testPub}
		p["Signature"] = Sign(p, testPriv)
		form := url.Values{}
		for k, v := range p {
			form.Set(k, v)
		}
		resp, err := http.Post(srv.URL()+"/?Action=DescribeEIP", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, body
	}
	if _, _, body := call(); body["RetCode"] != float64(0) {
		t.Fatalf("first call: %v", body)
	}
	status, hdr, body := call()
	if status != http.StatusOK {
		t.Fatalf("HTTP status %d, want 200", status)
	}
	if body["RetCode"] != float64(RetCodeRateLimited) || body["Message"] != "slow down" || body["Action"] != "DescribeEIPResponse" {
		t.Fatalf("throttled reply = %v", body)
	}
	if uuid, _ := body["Request_uuid"].(string); uuid == "" || hdr.Get("X-UCLOUD-REQUEST-UUID") != uuid {
		t.Fatalf("request uuid: body %v, header %q", body["Request_uuid"], hdr.Get("X-UCLOUD-REQUEST-UUID"))
	}
	if _, ok := body["EIPSet"]; ok {
		t.Fatalf("a throttled reply carries a payload: %v", body)
	}
}

// TestRateLimitRefills: tokens come back at the configured rate, never above
// the burst.
func TestRateLimitRefills(t *testing.T) {
	srv, clock := limited(t, RateLimit{CallsPerSecond: 5, Burst: 3})
	c := newClients(srv)
	if ok, _ := outcomes(t, c, 4); ok != 3 {
		t.Fatalf("%d ok from a full bucket of 3", ok)
	}
	clock.Advance(100 * time.Millisecond) // half a token
	if ok, _ := outcomes(t, c, 1); ok != 0 {
		t.Fatal("half a token let a call through")
	}
	clock.Advance(100 * time.Millisecond) // one token in all
	if ok, th := outcomes(t, c, 2); ok != 1 || th != 1 {
		t.Fatalf("after 200ms at 5/s: %d ok, %d throttled; want 1 and 1", ok, th)
	}
	clock.Advance(600 * time.Millisecond) // three tokens
	if ok, th := outcomes(t, c, 4); ok != 3 || th != 1 {
		t.Fatalf("after 600ms at 5/s: %d ok, %d throttled; want 3 and 1", ok, th)
	}
	clock.Advance(time.Hour) // refills to the burst, not to 18000
	if ok, th := outcomes(t, c, 5); ok != 3 || th != 2 {
		t.Fatalf("after an hour: %d ok, %d throttled; want the burst (3) and 2", ok, th)
	}
}

// TestRateLimitBurst: the burst is the bucket's size; 0 means one second's
// worth of calls.
func TestRateLimitBurst(t *testing.T) {
	for _, tt := range []struct {
		rl   RateLimit
		want int
	}{
		{RateLimit{CallsPerSecond: 10, Burst: 25}, 25},
		{RateLimit{CallsPerSecond: 10}, 10},
		{RateLimit{CallsPerSecond: 2.5}, 3},
		{RateLimit{CallsPerSecond: 0.5}, 1},
		{RateLimit{CallsPerSecond: 100, Burst: 1}, 1},
	} {
		srv, clock := limited(t, tt.rl)
		c := newClients(srv)
		if ok, _ := outcomes(t, c, tt.want+3); ok != tt.want {
			t.Fatalf("%+v: %d calls passed at once, want %d", tt.rl, ok, tt.want)
		}
		// A quiet spell long enough refills it whole again.
		clock.Advance(time.Minute)
		if ok, _ := outcomes(t, c, tt.want+3); ok != tt.want {
			t.Fatalf("%+v after a minute: %d calls passed at once, want %d", tt.rl, ok, tt.want)
		}
	}
}

// TestRateLimitAccountWide: one bucket for every action, keypair, project
// and region of the account.
func TestRateLimitAccountWide(t *testing.T) {
	other := Keypair{PublicKey: "other-public-key", PrivateKey: "other-private-key-77"}
	srv, _ := limited(t, RateLimit{CallsPerSecond: 1, Burst: 6}, other)
	c := newClients(srv)
	calls := []func() error{
		func() error { return describeEIPErr(c) },
		func() error { return c.bind("eip-free", "uhost-a") },
		func() error {
			_, err := c.uhost.DescribeUHostInstance(c.uhost.NewDescribeUHostInstanceRequest())
			return err
		},
		func() error {
			req := c.ulb.NewDescribeVServerRequest()
			req.ULBId = ptr("ulb-t")
			_, err := c.ulb.DescribeVServer(req)
			return err
		},
		func() error { return describeEIPErr(newClients(srv, withKeys(other.PublicKey, other.PrivateKey))) },
		func() error { return describeEIPErr(newClients(srv, withProject("org-other"))) },
	}
	for i, call := range calls {
		if err := call(); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	// The six calls above emptied the one bucket: now everyone is refused.
	for name, err := range map[string]error{
		"ReleaseBackend": func() error {
			req := c.ulb.NewReleaseBackendRequest()
			req.ULBId, req.BackendId = ptr("ulb-t"), ptr("backend-seed")
			_, err := c.ulb.ReleaseBackend(req)
			return err
		}(),
		"other keypair": describeEIPErr(newClients(srv, withKeys(other.PublicKey, other.PrivateKey))),
		"other project": describeEIPErr(newClients(srv, withProject("org-other"))),
		"other region":  describeEIPErr(newClients(srv, withRegion("cn-sh2"))),
	} {
		if retCode(err) != RetCodeRateLimited {
			t.Errorf("%s: %v, want RetCode %d", name, err, RetCodeRateLimited)
		}
	}
	if n := len(srv.Snapshot().ULBs[0].VServers[0].Backends); n != 1 {
		t.Fatalf("a throttled ReleaseBackend released the backend (%d left)", n)
	}
}

// TestRateLimitOff is the negative control: without a limit nothing is
// throttled, however fast the calls come.
func TestRateLimitOff(t *testing.T) {
	srv := startSim(t, Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A client each: one shared by racing goroutines may dial a
			// spare connection that never sends a request, which holds up
			// the server's graceful shutdown.
			c := newClients(srv)
			for range 50 {
				errs <- describeEIPErr(c)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		mustOK(t, err)
	}
	if d := waitRecorded(t, srv, 200)["DescribeEIP"]; d.Succeeded != 200 || d.Throttled != 0 || d.Faults != 0 {
		t.Fatalf("DescribeEIP counter = %+v", d)
	}
}

// TestRateLimitRealClock: on the real clock, calls made as fast as possible
// for a while pass at the configured rate (never more than burst + rate x
// elapsed) and the excess is throttled.
func TestRateLimitRealClock(t *testing.T) {
	const rate, burst = 20.0, 5
	srv := startSim(t, Config{Faults: Faults{RateLimit: &RateLimit{CallsPerSecond: rate, Burst: burst}}})
	c := newClients(srv)
	start := time.Now()
	ok, throttled := 0, 0
	for time.Since(start) < time.Second {
		o, th := outcomes(t, c, 1)
		ok, throttled = ok+o, throttled+th
	}
	elapsed := time.Since(start).Seconds()
	if max := burst + rate*elapsed + 1; float64(ok) > max {
		t.Fatalf("%d calls passed in %.2fs, more than the limit allows (%.0f)", ok, elapsed, max)
	}
	// Loose lower bound: a busy machine makes fewer calls, not fewer passes
	// per call made, as long as calls keep coming faster than the rate.
	if ok < burst+int(rate*elapsed/2) || throttled == 0 {
		t.Fatalf("%d calls passed and %d were throttled in %.2fs at %v/s, burst %d", ok, throttled, elapsed, rate, burst)
	}
	t.Logf("%.2fs: %d passed, %d throttled", elapsed, ok, throttled)
}

// TestRateLimitScope: calls refused before authentication take no token;
// a throttled call takes none either, and never reaches the fault rules.
func TestRateLimitScope(t *testing.T) {
	clock := newFakeClock()
	rl := RateLimit{CallsPerSecond: 1, Burst: 1}
	srv := startSim(t, Config{Now: clock.Now, Faults: Faults{
		RateLimit: &rl,
		Rules:     []FaultRule{{Action: "DescribeEIP", RetCode: 5000, Count: 1}},
	}})
	good, bad := newClients(srv), newClients(srv, withKeys(testPub, "wrong-private-key"))
	for range 5 {
		wantCode(t, describeEIPErr(bad), RetCodeSignatureError)
	}
	// The one token is still there; the fault rule takes this call.
	wantCode(t, describeEIPErr(good), 5000)
	// Throttled: the rule's Count is spent already, but this is the bucket.
	wantCode(t, describeEIPErr(good), RetCodeRateLimited)
	clock.Advance(time.Second)
	mustOK(t, describeEIPErr(good))

	// The rule sees only calls that got past the bucket: a throttled call
	// does not count towards its Skip.
	clock2 := newFakeClock()
	srv2 := startSim(t, Config{Now: clock2.Now, Faults: Faults{
		RateLimit: &rl,
		Rules:     []FaultRule{{Action: "DescribeEIP", RetCode: 5000, Skip: 2, Count: 1}},
	}})
	c2 := newClients(srv2)
	mustOK(t, describeEIPErr(c2)) // skipped by the rule (1 of 2)
	wantCode(t, describeEIPErr(c2), RetCodeRateLimited)
	clock2.Advance(time.Second)
	mustOK(t, describeEIPErr(c2)) // skipped by the rule (2 of 2)
	clock2.Advance(time.Second)
	wantCode(t, describeEIPErr(c2), 5000) // the rule's first hit
}

// TestRateLimitSDKRetries: the SDK does not retry RetCode 153 (it retries
// RetCodes >= 2000 only), so MaxRetries does not help against throttling:
// the caller has to wait and call again.
func TestRateLimitSDKRetries(t *testing.T) {
	srv, _ := limited(t, RateLimit{CallsPerSecond: 1, Burst: 1})
	c := newClients(srv, withRetries(3))
	mustOK(t, describeEIPErr(c))
	wantCode(t, describeEIPErr(c), RetCodeRateLimited)
	if d := waitRecorded(t, srv, 2)["DescribeEIP"]; d.Requests != 2 {
		t.Fatalf("the SDK retried a throttled call: %+v", d)
	}
}

// TestRateLimitConfig: JSON, validation, SetFaults and Reset start a full
// bucket, and the admin API sets and shows the limit.
func TestRateLimitConfig(t *testing.T) {
	f, err := ParseFaults([]byte(`{"rate_limit":{"calls_per_second":2.5,"burst":4,"message":"m"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if rl := f.RateLimit; rl == nil || rl.CallsPerSecond != 2.5 || rl.Burst != 4 || rl.Message != "m" {
		t.Fatalf("parsed %+v", f.RateLimit)
	}
	for _, bad := range []string{
		`{"rate_limit":{}}`,
		`{"rate_limit":{"calls_per_second":0}}`,
		`{"rate_limit":{"calls_per_second":-1}}`,
		`{"rate_limit":{"calls_per_second":10,"burst":-1}}`,
		`{"rate_limit":{"calls_per_second":10,"per":"project"}}`,
		`{"rate_limit":{"calls_per_second":"fast"}}`,
	} {
		if _, err := ParseFaults([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	// The -faults FILE of the command takes the same JSON.
	path := filepath.Join(t.TempDir(), "faults.json")
	if err := os.WriteFile(path, []byte(`{"rate_limit":{"calls_per_second":10}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if f, err := LoadFaults(path); err != nil || f.RateLimit == nil || f.RateLimit.CallsPerSecond != 10 || f.RateLimit.burst() != 10 {
		t.Fatalf("LoadFaults: %+v %v", f.RateLimit, err)
	}
	if _, err := New(Config{Faults: Faults{RateLimit: &RateLimit{}}}); err == nil {
		t.Error("New accepted a rate limit of 0 calls per second")
	}

	clock := newFakeClock()
	srv := startSim(t, Config{Now: clock.Now})
	c := newClients(srv)
	code, body := do(t, http.MethodPut, srv.URL()+"/_sim/faults", `{"rate_limit":{"calls_per_second":1,"burst":2}}`)
	if code != http.StatusOK || !strings.Contains(body, `"calls_per_second": 1`) {
		t.Fatalf("PUT faults: %d %s", code, body)
	}
	if _, body := get(t, srv.URL()+"/_sim/faults"); !strings.Contains(body, `"burst": 2`) {
		t.Fatalf("GET faults: %s", body)
	}
	if ok, _ := outcomes(t, c, 3); ok != 2 {
		t.Fatalf("%d passed after PUT, want the burst of 2", ok)
	}
	if _, body := get(t, srv.URL()+"/_sim/counters"); !strings.Contains(body, `"throttled": 1`) {
		t.Fatalf("counters: %s", body)
	}
	if err := srv.Reset(); err != nil {
		t.Fatal(err)
	}
	if ok, _ := outcomes(t, c, 3); ok != 2 {
		t.Fatalf("%d passed after Reset, want a full bucket of 2", ok)
	}
	mustOK(t, srv.SetFaults(srv.Faults()))
	if ok, _ := outcomes(t, c, 3); ok != 2 {
		t.Fatalf("%d passed after SetFaults, want a full bucket of 2", ok)
	}
	if code, _ := do(t, http.MethodDelete, srv.URL()+"/_sim/faults", ""); code != http.StatusOK {
		t.Fatalf("DELETE faults: %d", code)
	}
	if ok, _ := outcomes(t, c, 20); ok != 20 {
		t.Fatalf("%d of 20 passed with the limit removed", ok)
	}
	if code, _ := do(t, http.MethodPut, srv.URL()+"/_sim/faults", `{"rate_limit":{"calls_per_second":0}}`); code != http.StatusBadRequest {
		t.Fatalf("PUT of an invalid limit: %d", code)
	}
}
