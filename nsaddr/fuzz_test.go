package nsaddr

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/clusterid"
)

// FuzzRequestPath throws arbitrary request targets and methods at the
// handler. The seed corpus runs in every `go test`; fuzz with
// `go test -fuzz FuzzRequestPath ./nsaddr`.
//
// Consul is unreachable here (nothing listens on port 1), and cluster "A"
// is given a list directly, so the fuzzer reaches every answer: 200 for
// "A" and the default subgroup, 503 for clusters that would need Consul,
// and the 400/404/405 answers of the path and method checks.
func FuzzRequestPath(f *testing.F) {
	for _, seed := range []struct {
		method, target string
	}{
		{"GET", "/rocketmq/A"}, {"HEAD", "/rocketmq/A"}, {"GET", "/rocketmq/nsaddr"},
		{"GET", "/rocketmq/B"}, {"GET", "/rocketmq/"}, {"GET", "/rocketmq"}, {"GET", "/rocketmq/A/"},
		{"GET", "/rocketmq/../etc/passwd"}, {"GET", "/rocketmq/%2e%2e"}, {"GET", "/rocketmq/A%2FB"},
		{"GET", "/rocketmq/A?nofix=1"}, {"GET", "/rocketmq/%41"}, {"GET", "/rocketmq/A%00"},
		{"GET", "/rocketmq/" + strings.Repeat("a", 129)}, {"GET", "/rocketmq/a.b"}, {"GET", "//rocketmq/A"}, {"GET", "/healthz"},
		{"GET", "/metrics"}, {"GET", "/clusters"}, {"GET", "/"}, {"GET", "*"},
		{"POST", "/rocketmq/A"}, {"OPTIONS", "*"}, {"get", "/rocketmq/A"}, {"", "/rocketmq/A"},
		{"GET", "http://host/rocketmq/A"}, {"GET", "/rocketmq/é"}, {"GET", "/rocketmq/a b"},
	} {
		f.Add(seed.method, seed.target)
	}

	srv, err := New(nil, Config{
		DefaultCluster: "A",
		Consul:         ConsulConfig{Address: "127.0.0.1:1"},
		StartTimeout:   100 * time.Millisecond,
		IdleTimeout:    1000 * time.Hour, // the seeded cluster must stay
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	const list = "10.0.0.1:9876;10.0.0.2:9876"
	seedCluster(srv, "A", list)

	f.Fuzz(func(t *testing.T, method, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return // net/http answers 400 before the handler
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Method, r.URL, r.RequestURI = method, u, target
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		code, body := w.Code, w.Body.String()

		sub, isList := strings.CutPrefix(u.Path, rocketmqPrefix)
		getOrHead := method == http.MethodGet || method == http.MethodHead
		want := map[int]bool{}
		switch {
		case !getOrHead:
			want[405] = true
		case !isList:
			want[200] = u.Path == "/healthz" || u.Path == "/metrics" || u.Path == "/clusters"
			want[404] = !want[200]
		case !clusterid.Valid(sub):
			want[400] = true
		case sub == "A" || sub == DefaultSubgroup:
			want[200] = true
		default:
			want[503] = true // unknown to Consul, which is unreachable
		}
		if !want[code] {
			t.Fatalf("%s %q (path %q): status %d %q, want one of %v", method, target, u.Path, code, body, want)
		}
		if cl := w.Header().Get("Content-Length"); cl != "" && body != "" && cl != strconv.Itoa(len(body)) {
			t.Errorf("Content-Length %s for a %d-byte body", cl, len(body))
		}
		if !isList || code != 200 {
			if isList && strings.Contains(body, "10.0.0.1") {
				t.Errorf("%d answer contains the list: %q", code, body)
			}
			return
		}
		// For HEAD the handler may write the body: net/http counts it for
		// Content-Length and discards it (TestEachClusterServesItsOwnList
		// checks that on the wire).
		if body != list && (method != http.MethodHead || body != "") {
			t.Errorf("200 body %q, want %q", body, list)
		}
	})
}

// seedCluster gives srv a watched-looking cluster with a fixed list and no
// watcher goroutine (so the fuzz test needs no Consul and never changes it).
func seedCluster(srv *Server, id, list string) {
	c := &cluster{id: id, service: srv.pattern.service(id), ready: make(chan struct{}), done: make(chan struct{}), cancel: func() {}}
	c.markReady()
	close(c.done)
	c.used.Store(true)
	c.idleSince = time.Now()
	v := &clusterView{ok: true, status: 200}
	v.setBody([]byte(list))
	c.view.Store(v)
	m := map[string]*cluster{id: c}
	srv.clusters.Store(&m)
}
