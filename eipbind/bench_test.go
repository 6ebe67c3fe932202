package eipbind_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/eipbind"
	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi/simtest"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// timedAPI times the client side of every API call.
type timedAPI struct {
	api eipbind.API
	sw  *simtest.Stopwatch
}

func (t timedAPI) DescribeEIP(ctx context.Context, id string) (e *ucloudapi.EIP, err error) {
	t.sw.Time(func() { e, err = t.api.DescribeEIP(ctx, id) })
	return e, err
}

func (t timedAPI) BindEIP(ctx context.Context, eip, host string) (err error) {
	t.sw.Time(func() { err = t.api.BindEIP(ctx, eip, host) })
	return err
}

func (t timedAPI) UnBindEIP(ctx context.Context, eip, host string) (err error) {
	t.sw.Time(func() { err = t.api.UnBindEIP(ctx, eip, host) })
	return err
}

// timedOwners times every Consul call.
type timedOwners struct {
	o  eipbind.Owners
	sw *simtest.Stopwatch
}

func (t timedOwners) Get(ctx context.Context, kind, key string) (o *ownership.Owner, idx uint64, err error) {
	t.sw.Time(func() { o, idx, err = t.o.Get(ctx, kind, key) })
	return o, idx, err
}

func (t timedOwners) Claim(ctx context.Context, kind, key string, o ownership.Owner, idx uint64) (ok bool, err error) {
	t.sw.Time(func() { ok, err = t.o.Claim(ctx, kind, key, o, idx) })
	return ok, err
}

func (t timedOwners) Release(ctx context.Context, kind, key, alloc string) (err error) {
	t.sw.Time(func() { err = t.o.Release(ctx, kind, key, alloc) })
	return err
}

// BenchmarkBind measures one Bind against the simulator (real SDK, real
// Consul for owner records) with 0 and 50 ms of added latency per API call,
// for a free EIP ("free": describe, claim, bind, confirm) and for a move from
// the previous allocation's host ("move": describe, claim, unbind, bind,
// confirm). Besides ns/op (which includes the untimed setup of each op)
// it reports per bind:
//
//	bind-ms      wall time of Bind
//	api-ms       time the simulator spent serving the calls (incl. latency)
//	consul-ms    time in Consul KV calls
//	overhead-ms  bind-ms - api-ms: everything but the simulator's own time
//	             (our code, the SDK and HTTP client, Consul)
//	own-ms       bind-ms - client-side API time - consul-ms: our code only
//	calls        API calls per bind
func BenchmarkBind(b *testing.B) {
	consul := testutil.StartConsul(b)
	for _, lat := range []time.Duration{0, 50 * time.Millisecond} {
		for _, scenario := range []string{"free", "move"} {
			b.Run(fmt.Sprintf("latency=%dms/%s", lat.Milliseconds(), scenario), func(b *testing.B) {
				benchBind(b, consul, lat, scenario)
			})
		}
	}
}

func benchBind(b *testing.B, consul *testutil.ConsulAgent, lat time.Duration, scenario string) {
	var faults ucloudsim.Faults
	if lat > 0 {
		faults.Rules = []ucloudsim.FaultRule{{Action: "*", Latency: ucloudsim.Duration(lat)}}
	}
	env := simtest.Start(b, ucloudsim.Config{Faults: faults, RequestLogLimit: 1 << 20})
	store := ownership.New(consul.Client, fmt.Sprintf("bench/%s/%d/%d", scenario, lat.Milliseconds(), b.N))
	var apiSW, consulSW simtest.Stopwatch
	binder := eipbind.New(timedAPI{env.API, &apiSW}, timedOwners{store, &consulSW}, eipbind.Guard{}, eipbind.Options{})
	ctx := context.Background()
	hosts := []string{"uhost-a", "uhost-b"}
	if scenario == "move" {
		if _, err := binder.Bind(ctx, req("eip-a", hosts[1], "alloc-start", 0)); err != nil {
			b.Fatal(err)
		}
	}
	var sumBind, sumAPI, sumConsul, sumOwn, maxOver time.Duration
	calls := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := req("eip-a", hosts[i%2], fmt.Sprintf("alloc-%d", i), 0)
		apiSW.Take()
		consulSW.Take()
		seq := env.LastSeq()
		start := time.Now()
		res, err := binder.Bind(ctx, r)
		total := time.Since(start)
		if err != nil || !res.Changed {
			b.Fatalf("bind %d: %+v %v", i, res, err)
		}
		b.StopTimer()
		clientAPI, n := apiSW.Take()
		consulT, _ := consulSW.Take()
		env.WaitLogged(seq, n)
		serverAPI, logged, _ := env.APIDuration(seq)
		if logged != n {
			b.Fatalf("simulator logged %d calls, the client made %d", logged, n)
		}
		sumBind += total
		sumAPI += serverAPI
		sumConsul += consulT
		sumOwn += total - clientAPI - consulT
		maxOver = max(maxOver, total-serverAPI)
		calls += n
		if scenario == "free" {
			if err := binder.Release(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N) }
	b.ReportMetric(ms(sumBind), "bind-ms")
	b.ReportMetric(ms(sumAPI), "api-ms")
	b.ReportMetric(ms(sumConsul), "consul-ms")
	b.ReportMetric(ms(sumBind-sumAPI), "overhead-ms")
	b.ReportMetric(float64(maxOver)/float64(time.Millisecond), "overhead-max-ms")
	b.ReportMetric(ms(sumOwn), "own-ms")
	b.ReportMetric(float64(calls)/float64(b.N), "calls")
}
