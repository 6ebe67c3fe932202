package nsaddr

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// listFormat is exactly what RocketMQ clients accept: ip:port;ip:port.
var listFormat = regexp.MustCompile(`^\d{1,3}(\.\d{1,3}){3}:\d{1,5}(;\d{1,3}(\.\d{1,3}){3}:\d{1,5})*$`)

func TestEachClusterServesItsOwnList(t *testing.T) {
	e := startEnv(t, nil)
	// Registered out of order, with a duplicate address of A.
	e.register("A", "a3", "10.0.0.3", 9876)
	e.register("A", "a1", "10.0.0.1", 9876)
	e.register("A", "a2", "10.0.0.2", 9877)
	e.register("A", "a2-dup", "10.0.0.2", 9877)
	e.register("B", "b2", "10.1.0.20", 9876)
	e.register("B", "b1", "10.1.0.3", 9876)

	const wantA = "10.0.0.1:9876;10.0.0.2:9877;10.0.0.3:9876"
	const wantB = "10.1.0.3:9876;10.1.0.20:9876" // sorted as addresses, not strings
	for _, tc := range []struct{ path, want string }{
		{"/rocketmq/A", wantA},
		{"/rocketmq/B", wantB},
		{"/rocketmq/nsaddr", wantA}, // default subgroup -> default cluster
		{"/rocketmq/A?nofix=1", wantA},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := e.eventuallyList(tc.path, tc.want)
			if !listFormat.MatchString(r.body) {
				t.Errorf("body %q is not ip:port;ip:port", r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type = %q, want text/plain", ct)
			}
			if cl := r.header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(tc.want)) {
				t.Errorf("Content-Length = %s, want %d", cl, len(tc.want))
			}
		})
	}

	t.Run("HEAD", func(t *testing.T) {
		r := e.do(http.MethodHead, "/rocketmq/B")
		if r.err != nil || r.status != http.StatusOK || r.body != "" {
			t.Fatalf("HEAD /rocketmq/B = %s, want 200 without body", r)
		}
		if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len(wantB)) {
			t.Errorf("HEAD Content-Length = %q, want %d", cl, len(wantB))
		}
	})

	t.Run("HEAD on the wire has no body", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(converge))
		if _, err := io.WriteString(conn, "HEAD /rocketmq/B HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(conn)
		if err != nil {
			t.Fatal(err)
		}
		head, body, _ := strings.Cut(string(raw), "\r\n\r\n")
		if body != "" || !strings.Contains(head, "\r\nContent-Length: "+strconv.Itoa(len(wantB))+"\r\n") {
			t.Errorf("HEAD answer on the wire: %q", raw)
		}
	})

	t.Run("unknown cluster", func(t *testing.T) {
		if r := e.get("/rocketmq/C"); r.status != http.StatusNotFound {
			t.Errorf("GET /rocketmq/C = %s, want 404", r)
		}
	})
}

func TestListFollowsConsul(t *testing.T) {
	e := startEnv(t, nil)
	e.register("A", "a1", "10.0.0.1", 9876)
	e.register("A", "a2", "10.0.0.2", 9876)
	e.register("A", "a3", "10.0.0.3", 9876)
	e.register("B", "b1", "10.1.0.1", 9876)
	e.register("B", "b2", "10.1.0.2", 9876)
	e.eventuallyList("/rocketmq/A", "10.0.0.1:9876;10.0.0.2:9876;10.0.0.3:9876")
	e.eventuallyList("/rocketmq/B", "10.1.0.1:9876;10.1.0.2:9876")
	c := e.consul.Client

	// Steps run in order; each waits for the endpoint to converge.
	steps := []struct {
		name   string
		change func()
		path   string
		status int
		want   string
	}{
		{"failing check removes an instance", func() { setCheck(t, c, "a2", api.HealthCritical) }, "/rocketmq/A", 200, "10.0.0.1:9876;10.0.0.3:9876"},
		{"warning check removes an instance", func() { setCheck(t, c, "a3", api.HealthWarning) }, "/rocketmq/A", 200, "10.0.0.1:9876"},
		{"passing again brings it back", func() { setCheck(t, c, "a2", api.HealthPassing) }, "/rocketmq/A", 200, "10.0.0.1:9876;10.0.0.2:9876"},
		{"deregistration removes an instance", func() { deregister(t, c, "a1") }, "/rocketmq/A", 200, "10.0.0.2:9876"},
		{"other cluster unaffected", func() {}, "/rocketmq/B", 200, "10.1.0.1:9876;10.1.0.2:9876"},
		{"new instance is added", func() { registerNS(t, c, "nameServerA", "a4", "10.0.0.4", 9000) }, "/rocketmq/A", 200, "10.0.0.2:9876;10.0.0.4:9000"},
		{"moved instance (same id, new address)", func() { registerNS(t, c, "nameServerA", "a4", "10.0.0.5", 9001) }, "/rocketmq/A", 200, "10.0.0.2:9876;10.0.0.5:9001"},
		{"maintenance mode removes an instance", func() {
			if err := c.Agent().EnableServiceMaintenance("a2", "test"); err != nil {
				t.Fatal(err)
			}
		}, "/rocketmq/A", 200, "10.0.0.5:9001"},
		{"no passing instance is 503, never an empty 200", func() { setCheck(t, c, "a4", api.HealthCritical) }, "/rocketmq/A", 503, ""},
		{"default subgroup follows too", func() {}, "/rocketmq/nsaddr", 503, ""},
		{"all deregistered while watched is still 503", func() {
			deregister(t, c, "b1")
			deregister(t, c, "b2")
		}, "/rocketmq/B", 503, ""},
		{"recovery", func() { setCheck(t, c, "a4", api.HealthPassing) }, "/rocketmq/nsaddr", 200, "10.0.0.5:9001"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.change()
			if st.status == http.StatusOK {
				e.eventuallyList(st.path, st.want)
				return
			}
			r := e.eventuallyStatus(st.path, st.status)
			if r.body == "" || listFormat.MatchString(r.body) {
				t.Errorf("%d body %q: want an explanation, not a list", st.status, r.body)
			}
		})
	}
}

func deregister(t *testing.T, c *api.Client, id string) {
	t.Helper()
	if err := c.Agent().ServiceDeregister(id); err != nil {
		t.Fatalf("deregister %s: %v", id, err)
	}
}

func TestOnlyIPAddressesAreServed(t *testing.T) {
	for _, tc := range []struct {
		name string
		ipv6 bool
		want string
	}{
		{"ipv6 off", false, "10.0.0.1:9876;127.0.0.1:9878"},
		{"ipv6 on", true, "10.0.0.1:9876;127.0.0.1:9878;[2001:db8::1]:9877"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEnv(t, func(c *Config) { c.IncludeIPv6 = tc.ipv6 })
			e.register("A", "ip", "10.0.0.1", 9876)
			e.register("A", "host", "ns1.example.com", 9876)
			e.register("A", "v6", "2001:db8::1", 9877)
			e.register("A", "mapped", "::ffff:10.0.0.1", 9876) // same as "ip"
			e.register("A", "node-addr", "", 9878)             // falls back to the node's address
			e.eventuallyList("/rocketmq/A", tc.want)

			// The host name is logged once, not on every Consul answer.
			e.register("A", "later", "10.0.0.9", 1)
			e.eventuallyList("/rocketmq/A", strings.Replace(tc.want, "10.0.0.1:9876", "10.0.0.1:9876;10.0.0.9:1", 1))
			if n := strings.Count(e.logs.String(), "address=ns1.example.com"); n != 1 {
				t.Errorf("host name exclusion logged %d times, want once", n)
			}
			var st Status
			r := e.get("/clusters")
			if err := json.Unmarshal([]byte(r.body), &st); err != nil {
				t.Fatalf("GET /clusters: %v (%s)", err, r)
			}
			var excluded []string
			for _, cs := range st.Clusters {
				if cs.Cluster == "A" {
					for _, x := range cs.Excluded {
						excluded = append(excluded, x.Address)
					}
				}
			}
			wantExcl := "ns1.example.com"
			if !tc.ipv6 {
				wantExcl = "2001:db8::1,ns1.example.com"
			}
			if got := strings.Join(slices.Sorted(slices.Values(excluded)), ","); got != wantExcl {
				t.Errorf("excluded = %s, want %s", got, wantExcl)
			}
		})
	}
}

func TestConsulStoppedServesLastKnownGoodThenFresh(t *testing.T) {
	const staleAfter = 5 * time.Second
	e := startEnv(t, func(c *Config) { c.StaleAfter = staleAfter })
	e.register("A", "a1", "10.0.0.1", 9876)
	e.register("A", "a2", "10.0.0.2", 9876)
	const want = "10.0.0.1:9876;10.0.0.2:9876"
	e.eventuallyList("/rocketmq/A", want)

	e.consul.Stop()
	r := e.eventually("/rocketmq/A", "stale answer", func(r response) bool {
		return r.err == nil && r.header.Get(HeaderStale) == "true"
	})
	if r.status != http.StatusOK || r.body != want {
		t.Fatalf("while Consul is down: %s, want 200 %q flagged stale", r, want)
	}
	if _, err := time.Parse(time.RFC3339, r.header.Get(HeaderStaleSince)); err != nil {
		t.Errorf("%s = %q: %v", HeaderStaleSince, r.header.Get(HeaderStaleSince), err)
	}
	// A cluster never requested before cannot be answered at all.
	if r := e.get("/rocketmq/B"); r.status != http.StatusServiceUnavailable && r.status != http.StatusNotFound {
		t.Errorf("unwatched cluster while Consul is down: %s, want 503 or 404", r)
	}
	// Once the list is older than StaleAfter: 503, still flagged.
	r = e.eventuallyStatus("/rocketmq/A", http.StatusServiceUnavailable)
	if r.header.Get(HeaderStale) != "true" || listFormat.MatchString(r.body) {
		t.Errorf("expired answer %s: want 503 flagged stale without a list", r)
	}
	if st := e.srv.Status(t.Context()); clusterState(st, "A") != "expired" {
		t.Errorf("status of A = %q, want expired", clusterState(st, "A"))
	}

	e.consul.Restart()
	e.eventuallyList("/rocketmq/A", want) // fresh again: no stale header
	// And it follows changes again (Consul's indexes started over).
	deregister(t, e.consul.Client, "a1")
	e.eventuallyList("/rocketmq/A", "10.0.0.2:9876")
	if st := e.srv.Status(t.Context()); clusterState(st, "A") != "ok" {
		t.Errorf("status of A = %q, want ok", clusterState(st, "A"))
	}
}

func TestConsulUnreachableFromTheStart(t *testing.T) {
	e := startEnv(t, nil)
	e.consul.Stop()
	for _, path := range []string{"/rocketmq/A", "/rocketmq/nsaddr"} {
		if r := e.get(path); r.status != http.StatusServiceUnavailable {
			t.Errorf("GET %s with Consul down: %s, want 503", path, r)
		}
	}
	e.consul.Restart()
	e.register("A", "a1", "10.0.0.1", 9876)
	e.eventuallyList("/rocketmq/A", "10.0.0.1:9876")
}

func TestIdleWatcherStopsAndRestarts(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
	e.register("A", "a1", "10.0.0.1", 9876)
	e.eventuallyList("/rocketmq/A", "10.0.0.1:9876")
	if n := len(*e.srv.clusters.Load()); n != 1 {
		t.Fatalf("%d watchers after a request, want 1", n)
	}
	deadline := time.Now().Add(converge)
	for len(*e.srv.clusters.Load()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle watcher not stopped within %s", converge)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v := metricValue(e.get("/metrics").body, "nsaddr_watchers"); v != "0" {
		t.Errorf("nsaddr_watchers = %q, want 0", v)
	}
	// The next request starts a new watcher and sees the current state.
	e.register("A", "a2", "10.0.0.2", 9876)
	if r := e.get("/rocketmq/A"); r.status != http.StatusOK || r.body != "10.0.0.1:9876;10.0.0.2:9876" {
		t.Errorf("first request after idle stop: %s", r)
	}
}

func TestMetricsAndClustersView(t *testing.T) {
	e := startEnv(t, nil)
	e.register("A", "a1", "10.0.0.1", 9876)
	e.register("B", "b1", "10.1.0.1", 9876)
	e.eventuallyList("/rocketmq/A", "10.0.0.1:9876")
	e.get("/rocketmq/nope")

	m := e.get("/metrics")
	if m.status != http.StatusOK {
		t.Fatalf("GET /metrics: %s", m)
	}
	for _, tc := range []struct{ sample, want string }{
		{`nsaddr_cluster_nameservers{cluster="A"}`, "1"},
		{`nsaddr_cluster_stale{cluster="A"}`, "0"},
		{`nsaddr_watchers`, "1"},
		{`nsaddr_http_requests_total{code="404",route="rocketmq"}`, "1"},
	} {
		if got := metricValue(m.body, tc.sample); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.sample, got, tc.want)
		}
	}
	if metricValue(m.body, `nsaddr_http_requests_total{code="200",route="rocketmq"}`) == "0" {
		t.Error("200 answers not counted")
	}

	r := e.get("/clusters")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /clusters: %s %s", r, r.header.Get("Content-Type"))
	}
	var st Status
	if err := json.Unmarshal([]byte(r.body), &st); err != nil {
		t.Fatalf("decode /clusters: %v", err)
	}
	got := map[string]ClusterStatus{}
	for _, cs := range st.Clusters {
		got[cs.Cluster] = cs
	}
	if a := got["A"]; !a.Watched || !a.InCatalog || a.State != "ok" || a.List != "10.0.0.1:9876" || !a.Default {
		t.Errorf("A in /clusters = %+v", a)
	}
	if b := got["B"]; b.Watched || !b.InCatalog || b.State != "not_watched" {
		t.Errorf("B in /clusters = %+v", b)
	}
	if _, ok := got["consul"]; ok {
		t.Error("the consul service is listed as a cluster")
	}
	if h := e.get("/healthz"); h.status != http.StatusOK || h.body != "ok\n" {
		t.Errorf("GET /healthz: %s", h)
	}
}

func TestTwoServersInOneProcess(t *testing.T) {
	// Each Server has its own Prometheus registry: no duplicate
	// registration panics, no shared counters.
	for range 2 {
		s, err := New(nil, Config{Consul: ConsulConfig{Address: "127.0.0.1:1"}})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}

func clusterState(st Status, id string) string {
	for _, cs := range st.Clusters {
		if cs.Cluster == id {
			return cs.State
		}
	}
	return ""
}

// TestListAnswerHeaders: a list answer's headers on the wire. The usual
// one leaves them to net/http (serveList); they must be exactly what an
// explicit answer gives, for short, IPv6 and long lists, GET and HEAD.
func TestListAnswerHeaders(t *testing.T) {
	long := make([]string, 60)
	for i := range long {
		long[i] = "10.0.1." + strconv.Itoa(i+1) + ":9876"
	}
	for _, list := range []string{
		"10.0.0.1:9876;10.0.0.2:9876",
		"[2001:db8::1]:9876;10.0.0.2:9876",
		strings.Join(long, ";"),
	} {
		srv, err := New(nil, Config{DefaultCluster: "A", Consul: ConsulConfig{Address: "127.0.0.1:1"}})
		if err != nil {
			t.Fatal(err)
		}
		seedCluster(srv, "A", list)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: srv.Handler()}
		go func() { _ = hs.Serve(ln) }()
		for _, method := range []string{"GET", "HEAD"} {
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.WriteString(conn, method+" /rocketmq/A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			raw, err := io.ReadAll(conn)
			conn.Close()
			if err != nil {
				t.Fatal(err)
			}
			head, body, _ := strings.Cut(string(raw), "\r\n\r\n")
			for _, want := range []string{"HTTP/1.1 200 OK\r\n", "\r\nContent-Type: text/plain; charset=utf-8\r\n", "\r\nContent-Length: " + strconv.Itoa(len(list)) + "\r\n"} {
				if !strings.Contains(head+"\r\n", want) {
					t.Errorf("%s of a %d-byte list: no %q in %q", method, len(list), want, head)
				}
			}
			if strings.Contains(head, "Cache-Control") {
				t.Errorf("%s of a list: a 200 list answer may be cached, got %q", method, head)
			}
			if wantBody := map[string]string{"GET": list, "HEAD": ""}[method]; body != wantBody {
				t.Errorf("%s body = %q, want %q", method, body, wantBody)
			}
		}
		_ = hs.Close()
		srv.Close()
	}
}
