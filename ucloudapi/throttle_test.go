package ucloudapi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi/simtest"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// TestThrottledIsRetryable: a call refused by the account's rate limit
// (RetCode 153, as UCloud's gateway answers) is classified retryable and
// throttled, for reads and writes alike, and it was sent once: the SDK does
// not retry it on its own.
func TestThrottledIsRetryable(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // a clock that stands still
	env := simtest.Start(t, ucloudsim.Config{
		Now:    func() time.Time { return now },
		Faults: ucloudsim.Faults{RateLimit: &ucloudsim.RateLimit{CallsPerSecond: 1, Burst: 1}},
	}, simtest.Options{ThrottleWait: -1})
	ctx := context.Background()
	if _, err := env.API.DescribeEIP(ctx, "eip-a"); err != nil {
		t.Fatalf("first call, within the burst: %v", err)
	}
	calls := map[string]error{}
	_, calls["DescribeEIP"] = env.API.DescribeEIP(ctx, "eip-a")
	calls["BindEIP"] = env.API.BindEIP(ctx, "eip-a", "uhost-a")
	_, calls["AllocateBackend"] = env.API.AllocateBackend(ctx, "ulb-ns", "vserver-ns", "uhost-a", 30001)
	for action, err := range calls {
		if !ucloudapi.IsRetryable(err) || !ucloudapi.IsThrottled(err) || ucloudapi.IsNotFound(err) || ucloudapi.IsPermanent(err) {
			t.Errorf("%s: retryable=%v throttled=%v notfound=%v: %v", action, ucloudapi.IsRetryable(err),
				ucloudapi.IsThrottled(err), ucloudapi.IsNotFound(err), err)
		}
		if got := ucloudapi.RetCode(err); got != ucloudsim.RetCodeRateLimited {
			t.Errorf("%s: RetCode %d, want %d", action, got, ucloudsim.RetCodeRateLimited)
		}
		var e *ucloudapi.Error
		if !errors.As(err, &e) || e.Action != action {
			t.Errorf("%s: %T %+v", action, err, e)
		}
	}
	if got, want := calls["DescribeEIP"].Error(), "describe eip eip-a: ucloud RetCode 153: "+ucloudsim.DefaultRateLimitMessage; got != want {
		t.Errorf("error text %q, want %q", got, want)
	}
	// Not carried out, and each sent exactly once.
	if e := env.EIP(t, "eip-a"); e.ResourceID != "" {
		t.Errorf("a throttled BindEIP bound the EIP to %s", e.ResourceID)
	}
	deadline := time.Now().Add(2 * time.Second)
	for env.Requests("AllocateBackend") != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for action, want := range map[string]int{"DescribeEIP": 2, "BindEIP": 1, "AllocateBackend": 1} {
		if got := env.Requests(action); got != want {
			t.Errorf("%s: %d requests, want %d", action, got, want)
		}
	}
}

// TestIsThrottled: only the throttling answers count as throttled; other
// retryable failures do not.
func TestIsThrottled(t *testing.T) {
	for _, tc := range []struct {
		rule      ucloudsim.FaultRule
		throttled bool
	}{
		{ucloudsim.FaultRule{Action: "DescribeEIP", RetCode: ucloudsim.RetCodeRateLimited}, true},
		{ucloudsim.FaultRule{Action: "DescribeEIP", HTTPStatus: 429}, true},
		{ucloudsim.FaultRule{Action: "DescribeEIP", RetCode: ucloudsim.RetCodeServiceUnavailable}, false},
		{ucloudsim.FaultRule{Action: "DescribeEIP", RetCode: 5000}, false},
		{ucloudsim.FaultRule{Action: "DescribeEIP", HTTPStatus: 503}, false},
		{ucloudsim.FaultRule{Action: "DescribeEIP", RetCode: ucloudsim.RetCodeParamsNotAvailable}, false},
	} {
		env := simtest.Start(t, ucloudsim.Config{Faults: ucloudsim.Faults{Rules: []ucloudsim.FaultRule{tc.rule}}}, simtest.Options{ThrottleWait: -1})
		_, err := env.API.DescribeEIP(context.Background(), "eip-a")
		if err == nil {
			t.Fatalf("%+v: no error", tc.rule)
		}
		if got := ucloudapi.IsThrottled(err); got != tc.throttled {
			t.Errorf("%+v: IsThrottled = %v, want %v (%v)", tc.rule, got, tc.throttled, err)
		}
		if tc.throttled && !ucloudapi.IsRetryable(err) {
			t.Errorf("%+v: throttled but not retryable: %v", tc.rule, err)
		}
	}
	if ucloudapi.IsThrottled(nil) || ucloudapi.IsThrottled(errors.New("429")) {
		t.Error("IsThrottled holds for an error that is not the API's")
	}
}

// TestThrottledCallsAreSentAgain: by default the client sends a throttled
// call again, as it is, until the bucket lets it through: every call of a
// burst beyond the limit succeeds, each carried out once, and the
// simulator counted the refusals. Bounded by the caller's context: with a
// limit that never refills, the call returns the throttled error when the
// context ends.
func TestThrottledCallsAreSentAgain(t *testing.T) {
	env := simtest.Start(t, ucloudsim.Config{Faults: ucloudsim.Faults{RateLimit: &ucloudsim.RateLimit{CallsPerSecond: 20, Burst: 1}}},
		simtest.Options{ThrottleWait: 5 * time.Millisecond})
	ctx := context.Background()
	for i := 0; i < 6; i++ {
		if _, err := env.API.DescribeEIP(ctx, "eip-a"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if err := env.API.BindEIP(ctx, "eip-a", "uhost-a"); err != nil {
		t.Fatalf("bind: %v", err)
	}
	if e := env.EIP(t, "eip-a"); e.ResourceID != "uhost-a" {
		t.Fatalf("eip-a bound to %q", e.ResourceID)
	}
	var throttled int64
	for _, c := range env.Sim.Counters() {
		throttled += c.Throttled
	}
	if throttled == 0 {
		t.Fatal("no call was throttled: the test proves nothing")
	}

	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	frozen := simtest.Start(t, ucloudsim.Config{Now: func() time.Time { return now },
		Faults: ucloudsim.Faults{RateLimit: &ucloudsim.RateLimit{CallsPerSecond: 1, Burst: 1}}}, simtest.Options{ThrottleWait: 5 * time.Millisecond})
	if _, err := frozen.API.DescribeEIP(ctx, "eip-a"); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := frozen.API.DescribeEIP(cctx, "eip-a"); !ucloudapi.IsThrottled(err) {
		t.Fatalf("with a bucket that never refills: %v, want the throttled error when the context ends", err)
	}
}
