package nsaddr

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// converge is the generous deadline for a Consul change to show; the actual
// propagation time is measured by the benchmark (bench/nsaddr), not here.
const converge = 15 * time.Second

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testEnv is a real Consul agent and a Server serving on a loopback port.
type testEnv struct {
	t      *testing.T
	consul *testutil.ConsulAgent
	srv    *Server
	base   string // http://127.0.0.1:PORT
	logs   *syncBuffer
	client *http.Client
}

// startEnv starts Consul and a Server (DefaultCluster "A") configured by
// mutate, stopped on cleanup.
func startEnv(t *testing.T, mutate func(*Config)) *testEnv {
	t.Helper()
	agent := testutil.StartConsul(t)
	cfg := Config{
		DefaultCluster: "A",
		Consul:         ConsulConfig{Address: agent.HTTPAddr},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	e := &testEnv{t: t, consul: agent, logs: &syncBuffer{}, client: &http.Client{Timeout: 10 * time.Second}}
	logger := hclog.New(&hclog.LoggerOptions{Name: "nsaddr", Level: hclog.Debug, Output: e.logs})
	srv, err := New(logger, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	e.base = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		e.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("nsaddr log:\n%s", e.logs)
		}
	})
	return e
}

// register registers a NameServer instance of cluster with a passing TTL
// check (updated once, so its state survives a Consul restart).
func (e *testEnv) register(cluster, id, addr string, port int) {
	e.t.Helper()
	registerNS(e.t, e.consul.Client, "nameServer"+cluster, id, addr, port)
}

func registerNS(t testing.TB, c *api.Client, service, id, addr string, port int) {
	t.Helper()
	err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: id, Name: service, Address: addr, Port: port,
		Check: &api.AgentServiceCheck{CheckID: "check-" + id, TTL: "1h", Status: api.HealthPassing},
	})
	if err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
	setCheck(t, c, id, api.HealthPassing)
}

func setCheck(t testing.TB, c *api.Client, id, status string) {
	t.Helper()
	if err := c.Agent().UpdateTTL("check-"+id, "test sets "+status, status); err != nil {
		t.Fatalf("set check of %s %s: %v", id, status, err)
	}
}

// response is what a request got.
type response struct {
	status int
	header http.Header
	body   string
	err    error
}

func (r response) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return fmt.Sprintf("%d %q (stale=%q)", r.status, r.body, r.header.Get(HeaderStale))
}

func (e *testEnv) do(method, path string) response {
	req, err := http.NewRequest(method, e.base+path, nil)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return response{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b), err: err}
}

func (e *testEnv) get(path string) response { return e.do(http.MethodGet, path) }

// eventually polls path until ok accepts the response, failing the test at
// the converge deadline.
func (e *testEnv) eventually(path, what string, ok func(response) bool) response {
	e.t.Helper()
	deadline := time.Now().Add(converge)
	var last response
	for {
		last = e.get(path)
		if ok(last) {
			return last
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("GET %s: %s not reached within %s; last answer: %s", path, what, converge, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventuallyList waits until path answers 200 with exactly want, fresh.
func (e *testEnv) eventuallyList(path, want string) response {
	e.t.Helper()
	return e.eventually(path, fmt.Sprintf("200 %q", want), func(r response) bool {
		return r.err == nil && r.status == http.StatusOK && r.body == want && r.header.Get(HeaderStale) == ""
	})
}

// eventuallyStatus waits until path answers code.
func (e *testEnv) eventuallyStatus(path string, code int) response {
	e.t.Helper()
	return e.eventually(path, fmt.Sprintf("status %d", code), func(r response) bool {
		return r.err == nil && r.status == code
	})
}

// rawRequest sends raw bytes on a new connection and reads one response.
func rawRequest(t *testing.T, addr string, raw string) (*http.Response, string, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		return nil, "", fmt.Errorf("write request: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, "", fmt.Errorf("read response: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return resp, string(b), err
	}
	return resp, string(b), nil
}

// metricValue returns the value of the sample whose line starts with
// prefix (name and labels), or "" when absent.
func metricValue(metrics, prefix string) string {
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, prefix+" ") {
			return strings.TrimSpace(strings.TrimPrefix(line, prefix))
		}
	}
	return ""
}
