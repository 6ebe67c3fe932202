package ucloudapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi/simtest"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

func TestEIPCalls(t *testing.T) {
	env := simtest.Start(t, ucloudsim.Config{})
	ctx := context.Background()

	e, err := env.API.DescribeEIP(ctx, "eip-a")
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "eip-a" || e.Status != "free" || e.BoundID != "" || len(e.IPs) != 1 || e.IPs[0] != "203.0.113.10" || e.Remark != "rmq:orders" {
		t.Fatalf("describe eip-a = %+v", e)
	}
	if err := env.API.BindEIP(ctx, "eip-a", "uhost-a"); err != nil {
		t.Fatal(err)
	}
	e, err = env.API.DescribeEIP(ctx, "eip-a")
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != "used" || e.BoundType != "uhost" || e.BoundID != "uhost-a" {
		t.Fatalf("after bind: %+v", e)
	}
	// Binding an EIP bound elsewhere is a permanent state conflict (8039).
	err = env.API.BindEIP(ctx, "eip-a", "uhost-b")
	if ucloudapi.RetCode(err) != 8039 || ucloudapi.IsRetryable(err) {
		t.Fatalf("bind elsewhere: err=%v retcode=%d retryable=%v", err, ucloudapi.RetCode(err), ucloudapi.IsRetryable(err))
	}
	if want := "bind eip eip-a to uhost uhost-b: ucloud RetCode 8039: "; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error text %q, want prefix %q", err, want)
	}
	if err := env.API.UnBindEIP(ctx, "eip-a", "uhost-a"); err != nil {
		t.Fatal(err)
	}
	if got := env.EIP(t, "eip-a"); got.ResourceID != "" {
		t.Fatalf("after unbind, bound to %q", got.ResourceID)
	}

	_, err = env.API.DescribeEIP(ctx, "eip-nope")
	if !errors.Is(err, ucloudapi.ErrNotFound) || !ucloudapi.IsNotFound(err) || ucloudapi.IsRetryable(err) {
		t.Fatalf("describe unknown eip: %v", err)
	}
	if !strings.Contains(err.Error(), "eip-nope") {
		t.Fatalf("error %q does not name the eip", err)
	}
}

func TestULBCalls(t *testing.T) {
	env := simtest.Start(t, ucloudsim.Config{})
	ctx := context.Background()

	bs, err := env.API.DescribeVServer(ctx, "ulb-ns", "vserver-ns")
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 1 || bs[0].ID != "backend-seed" || bs[0].ResourceID != "uhost-c" || bs[0].Port != 30000 ||
		bs[0].PrivateIP != "10.9.0.13" || !bs[0].Enabled || bs[0].Status != "healthy" {
		t.Fatalf("backends = %+v", bs)
	}
	id, err := env.API.AllocateBackend(ctx, "ulb-ns", "vserver-ns", "uhost-a", 31000)
	if err != nil {
		t.Fatal(err)
	}
	if bs, _ = env.API.DescribeVServer(ctx, "ulb-ns", "vserver-ns"); len(bs) != 2 || bs[1].ID != id {
		t.Fatalf("after allocate: %+v", bs)
	}
	if err := env.API.ReleaseBackend(ctx, "ulb-ns", id); err != nil {
		t.Fatal(err)
	}
	if err := env.API.ReleaseBackend(ctx, "ulb-ns", id); !errors.Is(err, ucloudapi.ErrNotFound) {
		t.Fatalf("second release: %v, want not found", err)
	}

	for _, tc := range []struct{ ulb, vs string }{{"ulb-nope", "vserver-ns"}, {"ulb-ns", "vserver-nope"}} {
		_, err := env.API.DescribeVServer(ctx, tc.ulb, tc.vs)
		if !errors.Is(err, ucloudapi.ErrNotFound) || ucloudapi.IsRetryable(err) {
			t.Fatalf("describe %s/%s: %v", tc.ulb, tc.vs, err)
		}
		if !strings.Contains(err.Error(), tc.ulb) || !strings.Contains(err.Error(), tc.vs) {
			t.Fatalf("error %q does not name %s and %s", err, tc.ulb, tc.vs)
		}
	}
	_, err = env.API.AllocateBackend(ctx, "ulb-ns", "vserver-nope", "uhost-a", 31000)
	if !errors.Is(err, ucloudapi.ErrNotFound) {
		t.Fatalf("allocate in unknown vserver: %v", err)
	}
}

func TestDescribeUHost(t *testing.T) {
	env := simtest.Start(t, ucloudsim.Config{})
	ip, err := env.API.DescribeUHost(context.Background(), "uhost-b")
	if err != nil || ip != "10.9.0.12" {
		t.Fatalf("DescribeUHost = %q, %v", ip, err)
	}
	if _, err := env.API.DescribeUHost(context.Background(), "uhost-nope"); !errors.Is(err, ucloudapi.ErrNotFound) {
		t.Fatalf("unknown host: %v", err)
	}
}

// TestErrorClassification drives each kind of failure through the real SDK
// and checks what IsRetryable says, that the SDK did not retry on its own,
// and that no error text holds a key.
func TestErrorClassification(t *testing.T) {
	tests := []struct {
		name      string
		rule      ucloudsim.FaultRule
		cancel    bool // cancel the caller's context first
		retryable bool
		timeout   bool
		code      int
		contains  string
		account   bool // IsAccountError
	}{
		{name: "transient retcode", rule: ucloudsim.FaultRule{Action: "DescribeEIP", RetCode: 5000}, retryable: true, code: 5000, contains: "ucloud RetCode 5000"},
		{name: "service unavailable retcode", rule: ucloudsim.FaultRule{Action: "DescribeEIP", RetCode: 150}, retryable: true, code: 150},
		{name: "http 503", rule: ucloudsim.FaultRule{Action: "DescribeEIP", HTTPStatus: 503}, retryable: true, contains: "ucloud HTTP status 503"},
		{name: "http 429", rule: ucloudsim.FaultRule{Action: "DescribeEIP", HTTPStatus: 429}, retryable: true},
		{name: "http 403", rule: ucloudsim.FaultRule{Action: "DescribeEIP", HTTPStatus: 403}, retryable: false},
		{name: "invalid parameter", rule: ucloudsim.FaultRule{Action: "DescribeEIP", RetCode: 230}, retryable: false, code: 230},
		{name: "signature error", rule: ucloudsim.FaultRule{Action: "DescribeEIP", RetCode: 171}, retryable: false, code: 171, account: true},
		{name: "unknown key", rule: ucloudsim.FaultRule{Action: "DescribeEIP", RetCode: 172}, retryable: false, code: 172, account: true},
		{name: "unknown project", rule: ucloudsim.FaultRule{Action: "DescribeEIP", RetCode: 292}, retryable: false, code: 292, account: true},
		{name: "eip state conflict", rule: ucloudsim.FaultRule{Action: "DescribeEIP", RetCode: 8039}, retryable: false, code: 8039},
		{name: "call timeout", rule: ucloudsim.FaultRule{Action: "DescribeEIP", Timeout: true}, retryable: true, timeout: true, contains: "call timeout"},
		{name: "caller gave up", rule: ucloudsim.FaultRule{Action: "DescribeEIP", Latency: ucloudsim.Duration(time.Second)}, cancel: true, retryable: false},
		{name: "server echoes the keys", rule: ucloudsim.FaultRule{Action: "DescribeEIP", RetCode: 5000,
			Message: "bad key " + simtest.PrivateKey + " for " + simtest.PublicKey}, retryable: true, code: 5000, contains: "REDACTED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := simtest.Start(t, ucloudsim.Config{MaxHang: 5 * time.Second}, simtest.Options{CallTimeout: 300 * time.Millisecond, ThrottleWait: -1})
			if err := env.Sim.SetFaults(ucloudsim.Faults{Rules: []ucloudsim.FaultRule{tc.rule}}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			_, err := env.API.DescribeEIP(ctx, "eip-a")
			if err == nil {
				t.Fatal("no error")
			}
			var e *ucloudapi.Error
			if !errors.As(err, &e) {
				t.Fatalf("%T is not *ucloudapi.Error: %v", err, err)
			}
			if got := ucloudapi.IsRetryable(err); got != tc.retryable {
				t.Errorf("IsRetryable = %v, want %v (%v)", got, tc.retryable, err)
			}
			if got := ucloudapi.IsAccountError(err); got != tc.account {
				t.Errorf("IsAccountError = %v, want %v (%v)", got, tc.account, err)
			}
			if e.Timeout != tc.timeout {
				t.Errorf("Timeout = %v, want %v", e.Timeout, tc.timeout)
			}
			if got := ucloudapi.RetCode(err); got != tc.code {
				t.Errorf("RetCode = %d, want %d", got, tc.code)
			}
			if tc.cancel && !errors.Is(err, context.Canceled) {
				t.Errorf("%v does not wrap context.Canceled", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "describe eip eip-a: ") {
				t.Errorf("error %q does not start with the operation", msg)
			}
			if tc.contains != "" && !strings.Contains(msg, tc.contains) {
				t.Errorf("error %q does not contain %q", msg, tc.contains)
			}
			if strings.Contains(msg, simtest.PrivateKey) || strings.Contains(msg, simtest.PublicKey) {
				t.Errorf("error %q holds a key", msg)
			}
			if !tc.cancel {
				// The SDK's own retries are off: exactly one request.
				// (A hung request is logged once the server sees the client go.)
				deadline := time.Now().Add(5 * time.Second)
				for env.Requests("DescribeEIP") == 0 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(50 * time.Millisecond)
				if n := env.Requests("DescribeEIP"); n != 1 {
					t.Errorf("DescribeEIP requests = %d, want 1 (no SDK retries)", n)
				}
			}
		})
	}
}

// TestNothingOnStdout checks the SDK's logger is silenced: in a Nomad plugin
// stdout is the plugin handshake channel.
func TestNothingOnStdout(t *testing.T) {
	env := simtest.Start(t, ucloudsim.Config{})
	if err := env.Sim.SetFaults(ucloudsim.Faults{Rules: []ucloudsim.FaultRule{{Action: "*", HTTPStatus: 503}}}); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	_, err1 := env.API.DescribeEIP(context.Background(), "eip-a")
	err2 := env.API.BindEIP(context.Background(), "eip-a", "uhost-a")
	os.Stdout = saved
	w.Close()
	out, _ := io.ReadAll(r)
	if err1 == nil || err2 == nil {
		t.Fatalf("calls did not fail: %v %v", err1, err2)
	}
	if len(out) != 0 {
		t.Fatalf("the SDK wrote to stdout: %q", out)
	}
}

func TestConfigNeverShowsKeys(t *testing.T) {
	cfg := ucloudapi.Config{Region: "cn-bj2", PublicKey: "pub-key-123456", PrivateKey: "priv-key-abcdef", BaseURL: "http://127.0.0.1:1"}
	c, err := ucloudapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg), fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
		if strings.Contains(s, "pub-key-123456") || strings.Contains(s, "priv-key-abcdef") {
			t.Fatalf("formatted config shows a key: %s", s)
		}
	}
	for _, bad := range []ucloudapi.Config{{PublicKey: "p", PrivateKey: "k"}, {Region: "r", PrivateKey: "k"}, {Region: "r", PublicKey: "p"}} {
		if _, err := ucloudapi.New(bad); err == nil {
			t.Errorf("New(%v) accepted an incomplete config", bad)
		}
	}
	// A connection refused is retryable and names the operation.
	err = c.BindEIP(context.Background(), "eip-a", "uhost-a")
	if !ucloudapi.IsRetryable(err) || !strings.HasPrefix(err.Error(), "bind eip eip-a to uhost uhost-a: request to the ucloud api failed") {
		t.Fatalf("connection refused: retryable=%v %v", ucloudapi.IsRetryable(err), err)
	}
}

func TestRetryPolicy(t *testing.T) {
	p := ucloudapi.RetryPolicy{Initial: 10 * time.Millisecond, Max: 80 * time.Millisecond, Jitter: -1}.WithDefaults()
	want := []time.Duration{10, 20, 40, 80, 80}
	for i, w := range want {
		if got := p.Backoff(i + 1); got != w*time.Millisecond {
			t.Errorf("Backoff(%d) = %s, want %s", i+1, got, w*time.Millisecond)
		}
	}
	if p.MaxAttempts != ucloudapi.DefaultRetryPolicy().MaxAttempts || p.Deadline != ucloudapi.DefaultRetryPolicy().Deadline {
		t.Errorf("defaults not filled: %+v", p)
	}
	j := ucloudapi.RetryPolicy{Initial: 100 * time.Millisecond, Jitter: 0.2}.WithDefaults()
	for range 100 {
		if d := j.Backoff(1); d < 80*time.Millisecond || d > 120*time.Millisecond {
			t.Fatalf("jittered backoff %s outside ±20%% of 100ms", d)
		}
	}
}
