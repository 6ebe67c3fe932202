package ulbbind_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi/simtest"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
	"github.com/rmqnomad/rocketmq-nomad-driver/ulbbind"
)

type timedAPI struct {
	api ulbbind.API
	sw  *simtest.Stopwatch
}

func (t timedAPI) DescribeVServer(ctx context.Context, ulbID, vsID string) (bs []ucloudapi.Backend, err error) {
	t.sw.Time(func() { bs, err = t.api.DescribeVServer(ctx, ulbID, vsID) })
	return bs, err
}

func (t timedAPI) AllocateBackend(ctx context.Context, ulbID, vsID, host string, port int) (id string, err error) {
	t.sw.Time(func() { id, err = t.api.AllocateBackend(ctx, ulbID, vsID, host, port) })
	return id, err
}

func (t timedAPI) ReleaseBackend(ctx context.Context, ulbID, id string) (err error) {
	t.sw.Time(func() { err = t.api.ReleaseBackend(ctx, ulbID, id) })
	return err
}

func (t timedAPI) SetBackendEnabled(ctx context.Context, ulbID, id string, enabled bool) (err error) {
	t.sw.Time(func() { err = t.api.SetBackendEnabled(ctx, ulbID, id, enabled) })
	return err
}

type timedOwners struct {
	o  ulbbind.Owners
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

// BenchmarkRegister measures one Register against the simulator (real SDK,
// real Consul) with 0 and 50 ms of added latency per API call: a new backend
// ("new": describe, claim, allocate, confirm, record), the replacement of
// the previous allocation's backend ("replace": describe, release the old
// one, claim, allocate, confirm, record) and an idempotent repeat ("reuse":
// describe, read the record). Metrics as in eipbind's BenchmarkBind
// (register-ms instead of bind-ms).
func BenchmarkRegister(b *testing.B) {
	consul := testutil.StartConsul(b)
	for _, lat := range []time.Duration{0, 50 * time.Millisecond} {
		for _, scenario := range []string{"new", "replace", "reuse"} {
			b.Run(fmt.Sprintf("latency=%dms/%s", lat.Milliseconds(), scenario), func(b *testing.B) {
				benchRegister(b, consul, lat, scenario)
			})
		}
	}
}

func benchRegister(b *testing.B, consul *testutil.ConsulAgent, lat time.Duration, scenario string) {
	var faults ucloudsim.Faults
	if lat > 0 {
		faults.Rules = []ucloudsim.FaultRule{{Action: "*", Latency: ucloudsim.Duration(lat)}}
	}
	env := simtest.Start(b, ucloudsim.Config{Faults: faults, RequestLogLimit: 1 << 20})
	store := ownership.New(consul.Client, fmt.Sprintf("bench/%s/%d/%d", scenario, lat.Milliseconds(), b.N))
	var apiSW, consulSW simtest.Stopwatch
	binder := ulbbind.New(timedAPI{env.API, &apiSW}, timedOwners{store, &consulSW}, ulbbind.Guard{}, ulbbind.Options{})
	ctx := context.Background()
	hosts := []string{"uhost-a", "uhost-b"}
	request := func(i int) ulbbind.Request {
		switch scenario {
		case "reuse":
			return req("uhost-a", 31000, "alloc-1", 0)
		default:
			return req(hosts[i%2], 31000+i%2, fmt.Sprintf("alloc-%d", i), 0)
		}
	}
	if scenario != "new" {
		first := req("uhost-a", 31000, "alloc-1", 0) // reuse
		if scenario == "replace" {
			first = req("uhost-b", 31001, "alloc-start", 0)
		}
		if _, err := binder.Register(ctx, first); err != nil {
			b.Fatal(err)
		}
	}
	var sumReg, sumAPI, sumConsul, sumOwn, maxOver time.Duration
	calls := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := request(i)
		apiSW.Take()
		consulSW.Take()
		seq := env.LastSeq()
		start := time.Now()
		res, err := binder.Register(ctx, r)
		total := time.Since(start)
		if err != nil || res.Changed == (scenario == "reuse") {
			b.Fatalf("register %d: %+v %v", i, res, err)
		}
		b.StopTimer()
		clientAPI, n := apiSW.Take()
		consulT, _ := consulSW.Take()
		env.WaitLogged(seq, n)
		serverAPI, logged, _ := env.APIDuration(seq)
		if logged != n {
			b.Fatalf("simulator logged %d calls, the client made %d", logged, n)
		}
		sumReg += total
		sumAPI += serverAPI
		sumConsul += consulT
		sumOwn += total - clientAPI - consulT
		maxOver = max(maxOver, total-serverAPI)
		calls += n
		if scenario == "new" {
			if err := binder.Release(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(b.N) }
	b.ReportMetric(ms(sumReg), "register-ms")
	b.ReportMetric(ms(sumAPI), "api-ms")
	b.ReportMetric(ms(sumConsul), "consul-ms")
	b.ReportMetric(ms(sumReg-sumAPI), "overhead-ms")
	b.ReportMetric(float64(maxOver)/float64(time.Millisecond), "overhead-max-ms")
	b.ReportMetric(ms(sumOwn), "own-ms")
	b.ReportMetric(float64(calls)/float64(b.N), "calls")
}
