package eipbind_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/rmqnomad/rocketmq-nomad-driver/eipbind"
	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi/simtest"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// fastRetry keeps tests quick; the attempts are many so that 30% faults
// converge.
func fastRetry() eipbind.RetryPolicy {
	return eipbind.RetryPolicy{Initial: time.Millisecond, Max: 10 * time.Millisecond, MaxAttempts: 60, Deadline: 60 * time.Second}
}

// broker is the owner for an allocation of slot orders/broker/<index>.
func broker(alloc string, index int, uhost string) ownership.Owner {
	return ownership.Owner{AllocID: alloc, NodeID: "node-" + uhost, UHostID: uhost, Job: "rmq-orders",
		Cluster: "orders", Role: "broker", AllocIndex: index}
}

func req(eip, uhost, alloc string, index int) eipbind.Request {
	return eipbind.Request{EIPID: eip, UHostID: uhost, Owner: broker(alloc, index, uhost)}
}

// fixture is a simulator, an owner store on a shared Consul agent under a
// prefix of its own, and a binder using both.
type fixture struct {
	env    *simtest.Env
	store  *ownership.Store
	binder *eipbind.Binder
}

type fixtureOpts struct {
	sim      ucloudsim.Config
	guard    eipbind.Guard
	noConsul bool
	api      func(eipbind.API) eipbind.API // wraps the real client
	liveness ownership.Liveness
	retry    *eipbind.RetryPolicy
}

var prefixRE = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func newFixture(t *testing.T, consul *testutil.ConsulAgent, o fixtureOpts) *fixture {
	t.Helper()
	env := simtest.Start(t, o.sim, simtest.Options{CallTimeout: 2 * time.Second})
	f := &fixture{env: env}
	var owners eipbind.Owners
	if !o.noConsul {
		f.store = ownership.New(consul.Client, "test/"+prefixRE.ReplaceAllString(t.Name(), "_"))
		owners = f.store
	}
	var api eipbind.API = env.API
	if o.api != nil {
		api = o.api(api)
	}
	retry := fastRetry()
	if o.retry != nil {
		retry = *o.retry
	}
	f.binder = eipbind.New(api, owners, o.guard, eipbind.Options{
		Logger: hclog.New(&hclog.LoggerOptions{Name: "eipbind", Level: hclog.Warn, Output: testWriter{t}}),
		Retry:  retry, PollInterval: time.Millisecond, Liveness: o.liveness,
	})
	return f
}

// testWriter sends logs to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// seedOwner writes an owner record as an earlier allocation would have.
func (f *fixture) seedOwner(t *testing.T, eip string, o ownership.Owner) {
	t.Helper()
	o.Resource = eip
	_, idx, err := f.store.Get(context.Background(), ownership.KindEIP, eip)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := f.store.Claim(context.Background(), ownership.KindEIP, eip, o, idx); !ok || err != nil {
		t.Fatalf("seed owner of %s: %v %v", eip, ok, err)
	}
}

// owner returns the owner record's alloc id ("" when none).
func (f *fixture) owner(t *testing.T, eip string) string {
	t.Helper()
	if f.store == nil {
		return ""
	}
	o, _, err := f.store.Get(context.Background(), ownership.KindEIP, eip)
	if err != nil {
		t.Fatal(err)
	}
	if o == nil {
		return ""
	}
	return o.AllocID
}

// boundTo is the host the EIP is truly bound to ("" when free).
func (f *fixture) boundTo(t *testing.T, eip string) string {
	t.Helper()
	return f.env.EIP(t, eip).ResourceID
}

// frozen makes DescribeEIP report one EIP as frozen (the simulator has no
// frozen EIPs); everything else goes to the real client.
type frozen struct {
	eipbind.API
	id string
}

func (f frozen) DescribeEIP(ctx context.Context, id string) (*ucloudapi.EIP, error) {
	e, err := f.API.DescribeEIP(ctx, id)
	if err == nil && id == f.id {
		e.Status = "freeze"
	}
	return e, err
}
