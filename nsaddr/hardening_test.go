package nsaddr

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestMalformedRequests(t *testing.T) {
	e := startEnv(t, nil)
	e.register("A", "a1", "10.0.0.1", 9876)
	const list = "10.0.0.1:9876"
	e.eventuallyList("/rocketmq/A", list)
	addr := strings.TrimPrefix(e.base, "http://")

	req := func(method, target string, headers ...string) string {
		return method + " " + target + " HTTP/1.1\r\nHost: nsaddr\r\n" + strings.Join(headers, "") + "Connection: close\r\n\r\n"
	}
	big := strings.Repeat("x", 20<<10)
	manyHeaders := strings.Repeat("X-Filler: "+strings.Repeat("y", 100)+"\r\n", 200) // 22 KiB in small headers

	for _, tc := range []struct {
		name   string
		raw    string
		status int
	}{
		// Paths answered by the endpoint.
		{"list", req("GET", "/rocketmq/A"), 200},
		{"default subgroup", req("GET", "/rocketmq/nsaddr"), 200},
		{"query ignored (Go client unit suffix)", req("GET", "/rocketmq/A?nofix=1&x=%zz"), 200},
		{"absolute-form target", req("GET", "http://evil.example/rocketmq/A"), 200},
		{"escaped letter is the same path", req("GET", "/rocketmq/%41"), 200},
		{"HTTP/1.0 without Host", "GET /rocketmq/A HTTP/1.0\r\n\r\n", 200},
		// Bad subgroups.
		{"empty subgroup", req("GET", "/rocketmq/"), 400},
		{"trailing slash", req("GET", "/rocketmq/A/"), 400},
		{"extra segment", req("GET", "/rocketmq/A/B"), 400},
		{"traversal", req("GET", "/rocketmq/../etc/passwd"), 400},
		{"traversal after default", req("GET", "/rocketmq/nsaddr/../A"), 400},
		{"encoded traversal", req("GET", "/rocketmq/%2e%2e/%2e%2e/etc/passwd"), 400},
		{"encoded slash", req("GET", "/rocketmq/A%2FB"), 400},
		{"dot", req("GET", "/rocketmq/."), 400},
		{"dotdot", req("GET", "/rocketmq/.."), 400},
		{"leading dash", req("GET", "/rocketmq/-A"), 400},
		{"NUL byte", req("GET", "/rocketmq/A%00"), 400},
		{"newline", req("GET", "/rocketmq/A%0d%0aX-Injected:%201"), 400},
		{"non-ASCII", req("GET", "/rocketmq/%C3%A9"), 400},
		{"too long", req("GET", "/rocketmq/"+strings.Repeat("a", 129)), 400},
		{"leading dot", req("GET", "/rocketmq/.A"), 400},
		{"bad escape", req("GET", "/rocketmq/%zz"), 400},
		{"space in target", "GET /rocketmq/A B HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		// Other paths.
		{"unknown cluster", req("GET", "/rocketmq/Z"), 404},
		{"unknown cluster with dots", req("GET", "/rocketmq/Z.prod"), 404},
		{"cluster ids are case-sensitive", req("GET", "/rocketmq/a"), 404},
		{"root", req("GET", "/"), 404},
		{"no subgroup", req("GET", "/rocketmq"), 404},
		{"double slash", req("GET", "//rocketmq/A"), 404},
		{"upper-case prefix", req("GET", "/ROCKETMQ/A"), 404},
		{"file traversal", req("GET", "/../../etc/passwd"), 404},
		{"metrics subpath", req("GET", "/metrics/x"), 404},
		// Methods: read-only.
		{"POST", req("POST", "/rocketmq/A", "Content-Length: 0\r\n"), 405},
		{"PUT", req("PUT", "/rocketmq/A", "Content-Length: 0\r\n"), 405},
		{"DELETE", req("DELETE", "/rocketmq/A"), 405},
		{"PATCH", req("PATCH", "/rocketmq/A"), 405},
		{"OPTIONS", req("OPTIONS", "/rocketmq/A"), 405},
		{"OPTIONS *", req("OPTIONS", "*"), 405},
		{"TRACE", req("TRACE", "/rocketmq/A"), 405},
		{"CONNECT", req("CONNECT", "nsaddr:443"), 405},
		{"lower-case get", req("get", "/rocketmq/A"), 405},
		{"unknown method", req("BREW", "/rocketmq/A"), 405},
		// Sizes.
		{"GET with a body", req("GET", "/rocketmq/A", "Content-Length: 5\r\n") + "hello", 413},
		{"GET with a chunked body", req("GET", "/rocketmq/A", "Transfer-Encoding: chunked\r\n") + "5\r\nhello\r\n0\r\n\r\n", 413},
		{"huge header", req("GET", "/rocketmq/A", "X-Big: "+big+"\r\n"), 431},
		{"many headers", req("GET", "/rocketmq/A", manyHeaders), 431},
		{"huge target", req("GET", "/rocketmq/"+big), 431},
		{"missing Host", "GET /rocketmq/A HTTP/1.1\r\n\r\n", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body, err := rawRequest(t, addr, tc.raw)
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tc.status)
			}
			if tc.status == http.StatusOK {
				if body != list {
					t.Errorf("body %q, want %q", body, list)
				}
				return
			}
			if listFormat.MatchString(body) || strings.Contains(body, "10.0.0.1") {
				t.Errorf("%d answer leaks the list: %q", tc.status, body)
			}
			if tc.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q, want \"GET, HEAD\"", resp.Header.Get("Allow"))
			}
			if resp.Header.Get("X-Injected") != "" {
				t.Error("header injected")
			}
		})
	}
}

func TestSlowClientsAreDisconnected(t *testing.T) {
	e := startEnv(t, func(c *Config) {
		c.ReadHeaderTimeout = 300 * time.Millisecond
		c.WriteTimeout = 600 * time.Millisecond
	})
	e.register("A", "a1", "10.0.0.1", 9876)
	e.eventuallyList("/rocketmq/A", "10.0.0.1:9876")
	addr := strings.TrimPrefix(e.base, "http://")

	for _, tc := range []struct {
		name string
		send string
	}{
		{"never sends anything", ""},
		{"stops in the request line", "GET /rocketmq/A HT"},
		{"never ends the header", "GET /rocketmq/A HTTP/1.1\r\nHost: x\r\n"},
		// A finished request on a keep-alive connection, then silence.
		{"idle keep-alive", "GET /rocketmq/A HTTP/1.1\r\nHost: x\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tc.send); err != nil {
				t.Fatal(err)
			}
			// Generous deadline: only to not hang if the server never
			// closes the connection.
			_ = conn.SetReadDeadline(time.Now().Add(converge))
			_, err = io.Copy(io.Discard, conn)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("server kept the connection open for %s", converge)
			}
		})
	}
}

func TestClientsThatDoNotReadAreDisconnected(t *testing.T) {
	const writeTimeout = 300 * time.Millisecond
	e := startEnv(t, func(c *Config) { c.WriteTimeout = writeTimeout })
	e.register("A", "a1", "10.0.0.1", 9876)
	e.eventuallyList("/rocketmq/A", "10.0.0.1:9876")

	conn, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Pipeline far more requests than the socket buffers hold answers
	// for, and read nothing: the server blocks writing an answer.
	const n = 200_000
	go func() {
		req := strings.Repeat("GET /rocketmq/A HTTP/1.1\r\nHost: x\r\n\r\n", 1000)
		for range n / 1000 {
			if _, err := io.WriteString(conn, req); err != nil {
				return // the server closed the connection
			}
		}
	}()
	time.Sleep(10 * writeTimeout)
	_ = conn.SetReadDeadline(time.Now().Add(converge))
	data, err := io.ReadAll(conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after %s", converge)
	}
	if got := strings.Count(string(data), "HTTP/1.1 200 OK"); got >= n {
		t.Fatalf("all %d pipelined requests answered: the stuck connection was not closed", got)
	} else {
		t.Logf("%d of %d pipelined requests answered before the server closed the connection", got, n)
	}
}

func TestNoSecretsInResponsesOrLogs(t *testing.T) {
	const token = "5ec2e7-70ken-d0-n07-1eak"
	e := startEnv(t, func(c *Config) {
		c.Consul.Token = token // Consul without ACLs ignores it
		c.StaleAfter = 500 * time.Millisecond
	})
	e.register("A", "a1", "10.0.0.1", 9876)
	e.eventuallyList("/rocketmq/A", "10.0.0.1:9876")
	check := func(r response, what string) {
		t.Helper()
		if strings.Contains(r.body, token) {
			t.Errorf("%s: token in the body", what)
		}
		for k, vs := range r.header {
			for _, v := range vs {
				if strings.Contains(v, token) {
					t.Errorf("%s: token in header %s", what, k)
				}
			}
		}
	}
	paths := []string{"/rocketmq/A", "/rocketmq/nsaddr", "/rocketmq/B", "/rocketmq/..", "/clusters", "/metrics", "/healthz", "/nope"}
	for _, p := range paths {
		check(e.get(p), "GET "+p)
	}
	// Errors while Consul is down end up in logs and in /clusters.
	e.consul.Stop()
	e.eventuallyStatus("/rocketmq/A", http.StatusServiceUnavailable)
	for _, p := range paths {
		check(e.get(p), "Consul down: GET "+p)
	}
	if cfg := e.srv.Config(); strings.Contains(cfg.Consul.Token, token) {
		t.Error("Config() exposes the token")
	}
	e.consul.Restart()
	e.eventuallyList("/rocketmq/A", "10.0.0.1:9876")
	if strings.Contains(e.logs.String(), token) {
		t.Error("token in the log")
	}
	if !strings.Contains(e.logs.String(), "consul_token_set=true") {
		t.Error("log does not say a token is set")
	}
}

func TestServeShutsDownGracefully(t *testing.T) {
	srv, err := New(nil, Config{Consul: ConsulConfig{Address: "127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("still listening after Serve returned")
	}
}
