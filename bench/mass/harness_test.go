package mass

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	hclog "github.com/hashicorp/go-hclog"

	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi/simtest"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// Hosts is the size of the simulated fleet: a task's old host is uhost-<i>,
// its replacement's is uhost-<i+Hosts/2>.
const Hosts = 100

// ULBs spread the NameServer backends: UCloud allows 50 backends per
// classic ULB, so 100 tasks need at least two; four leave room.
const ULBs = 4

// oldPort and newPort are the tasks' ports on the old and the new host;
// distinct, so a replacement's backend never clashes with the backend of
// another task still on that host.
const oldPort, newPort = 30000, 30001

// Scenario is one mass reschedule: Tasks bound tasks, all replaced at once
// by allocations of the same slots on other hosts, while the account is
// limited to Rate API calls per second (Burst at once).
type Scenario struct {
	Kind   string // "eip" (broker EIP takeovers) or "ulb" (NameServer backends)
	Tasks  int
	Rate   float64
	Burst  int
	Policy ucloudapi.RetryPolicy
	// InPlace, when set, is the API client's ThrottleWait: it retries
	// throttled calls in place, first after InPlace to 2 x InPlace,
	// doubling up to 2s. Zero turns that off.
	InPlace time.Duration
}

// Failure is a task whose Bind or Register returned an error.
type Failure struct {
	Task      int
	Permanent bool
	// Reason: "deadline" (the operation's deadline ran out) or "attempts"
	// (MaxAttempts exhausted), or "other".
	Reason string
	Err    error
}

// Outcome is what a run measured.
type Outcome struct {
	Elapsed time.Duration // start of the first operation to the end of the last
	// API calls the simulator counted during the run: all, carried out
	// (not throttled), and throttled (RetCode 153).
	Calls, Served, Throttled int64
	PerAction                map[string]ucloudsim.Counter
	Failures                 []Failure
	// Durations of the operations that succeeded, sorted.
	Durations []time.Duration
	// Attempts of the operations that succeeded (from the binders' logs),
	// and what made attempts fail (by kind, from the retry warnings).
	Attempts     []int
	RetryReasons map[string]int
}

// MinTime is the least time the served calls need at the scenario's rate:
// (served - burst) / rate.
func (o Outcome) MinTime(s Scenario) time.Duration {
	return time.Duration(math.Max(0, float64(o.Served)-float64(s.Burst)) / s.Rate * float64(time.Second))
}

// Percentile returns the p-th percentile (0-100) of sorted durations.
func Percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(d)))) - 1
	return d[min(max(i, 0), len(d)-1)]
}

// MaxAttempts is the most attempts a successful operation needed.
func (o Outcome) MaxAttempts() int {
	if len(o.Attempts) == 0 {
		return 0
	}
	return slices.Max(o.Attempts)
}

func host(i int) string    { return fmt.Sprintf("uhost-%03d", i%Hosts) }
func newHost(i int) string { return host(i + Hosts/2) }
func eipID(i int) string   { return fmt.Sprintf("eip-%03d", i) }
func ulbID(i int) string   { return fmt.Sprintf("ulb-%d", i%ULBs) }
func vsID(i int) string    { return fmt.Sprintf("vserver-%d", i%ULBs) }
func oldAlloc(i int) string {
	return fmt.Sprintf("old-%03d", i)
}
func newAlloc(i int) string { return fmt.Sprintf("new-%03d", i) }

// state is the account: Hosts hosts; for "eip", EIP i bound to host i; for
// "ulb", ULBs load balancers with one VServer each, task i's backend on
// host i port oldPort in ULB i%ULBs.
func state(s Scenario) *ucloudsim.State {
	st := &ucloudsim.State{
		Region: simtest.Region, ProjectID: simtest.Project,
		Keypairs: []ucloudsim.Keypair{{PublicKey: simtest.PublicKey, PrivateKey: simtest.PrivateKey}},
	}
	for i := range Hosts {
		st.Hosts = append(st.Hosts, ucloudsim.Host{ID: host(i), PrivateIP: fmt.Sprintf("10.9.%d.%d", i/200, 10+i%200)})
	}
	switch s.Kind {
	case "eip":
		for i := range s.Tasks {
			st.EIPs = append(st.EIPs, ucloudsim.EIP{ID: eipID(i), IP: fmt.Sprintf("198.51.%d.%d", 100+i/250, 1+i%250),
				ResourceType: "uhost", ResourceID: host(i)})
		}
	case "ulb":
		for k := range ULBs {
			st.ULBs = append(st.ULBs, ucloudsim.ULB{ID: ulbID(k), VServers: []ucloudsim.VServer{{ID: vsID(k), FrontendPort: 9876}}})
		}
		for i := range s.Tasks {
			vs := &st.ULBs[i%ULBs].VServers[0]
			vs.Backends = append(vs.Backends, ucloudsim.Backend{ID: fmt.Sprintf("backend-%03d", i), ResourceID: host(i), Port: oldPort})
		}
	}
	return st
}

// owner is the owner record of task i's allocation (old or new).
func owner(s Scenario, i int, alloc, uhost string) ownership.Owner {
	role := "broker"
	if s.Kind == "ulb" {
		role = "namesrv"
	}
	return ownership.Owner{AllocID: alloc, NodeID: "node-" + uhost, UHostID: uhost, Job: "rmq-mass",
		Cluster: "mass", Role: role, AllocIndex: i}
}

// World is a seeded account and its owner records, ready for reschedules.
type World struct {
	s     Scenario
	sim   *ucloudsim.Server
	store *ownership.Store
}

// NewWorld seeds a simulator (stopped on t.Cleanup) and Consul (under a
// prefix of its own) with Tasks bound tasks, and turns the rate limit on.
func NewWorld(t testing.TB, consul *testutil.ConsulAgent, s Scenario) *World {
	t.Helper()
	sim, err := ucloudsim.New(ucloudsim.Config{State: state(s), Seed: 1, RequestLogLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := sim.Start(ctx, "127.0.0.1:0"); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = sim.Close()
	})
	w := &World{s: s, sim: sim, store: ownership.New(consul.Client, fmt.Sprintf("mass/%s/%d", s.Kind, time.Now().UnixNano()))}
	w.seedOwners(t)
	if err := sim.SetFaults(ucloudsim.Faults{RateLimit: &ucloudsim.RateLimit{CallsPerSecond: s.Rate, Burst: s.Burst}}); err != nil {
		t.Fatal(err)
	}
	return w
}

// AllTasks lists every task of the scenario.
func (w *World) AllTasks() []int {
	out := make([]int, w.s.Tasks)
	for i := range out {
		out[i] = i
	}
	return out
}

// Reschedule starts the replacement allocation of every given task at the
// same moment, each through its own binder and API client (as each Nomad
// client runs its own driver), waits for all, and measures. The bucket
// starts full and the counters at zero.
func (w *World) Reschedule(t testing.TB, tasks []int) Outcome {
	t.Helper()
	if err := w.sim.SetFaults(w.sim.Faults()); err != nil { // a full bucket
		t.Fatal(err)
	}
	w.sim.ResetStats()
	logs := &logSink{attempts: map[int]int{}, reasons: map[string]int{}}
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Info, JSONFormat: true, Output: logs})

	type result struct {
		err error
		d   time.Duration
	}
	results := make([]result, len(tasks))
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for n, i := range tasks {
		// The client retries throttled calls in place (its default) only
		// in the scenarios that ask for it, so the others show the
		// policies without it.
		throttle := time.Duration(-1)
		if w.s.InPlace > 0 {
			throttle = w.s.InPlace
		}
		api, err := ucloudapi.New(ucloudapi.Config{Region: simtest.Region, ProjectID: simtest.Project,
			PublicKey: simtest.PublicKey, PrivateKey: simtest.PrivateKey, BaseURL: w.sim.URL(), CallTimeout: 5 * time.Second,
			ThrottleWait: throttle})
		if err != nil {
			t.Fatal(err)
		}
		op := w.operation(i, api, logger.With("task", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			start := time.Now()
			err := op(context.Background())
			results[n] = result{err, time.Since(start)}
		}()
	}
	start := time.Now()
	close(gate)
	wg.Wait()

	o := Outcome{Elapsed: time.Since(start), PerAction: w.sim.Counters(), RetryReasons: logs.reasons}
	for _, c := range o.PerAction {
		o.Calls += c.Requests
		o.Throttled += c.Throttled
	}
	o.Served = o.Calls - o.Throttled
	for n, r := range results {
		i := tasks[n]
		if r.err != nil {
			o.Failures = append(o.Failures, Failure{Task: i, Permanent: ucloudapi.IsPermanent(r.err), Reason: reason(r.err), Err: r.err})
			continue
		}
		o.Durations = append(o.Durations, r.d)
		if a, ok := logs.attempt(i); ok {
			o.Attempts = append(o.Attempts, a)
		}
	}
	slices.Sort(o.Durations)
	return o
}

// Tasks lists the tasks of the failures.
func Tasks(fs []Failure) []int {
	out := make([]int, len(fs))
	for n, f := range fs {
		out[n] = f.Task
	}
	return out
}

// reason tells why an operation gave up.
func reason(err error) string {
	switch msg := err.Error(); {
	case strings.Contains(msg, "(gave up after"):
		return "deadline"
	case ucloudapi.IsThrottled(err) || ucloudapi.IsRetryable(err) || strings.Contains(msg, "still shows") || strings.Contains(msg, "does not list it yet"):
		return "attempts"
	default:
		return "other"
	}
}

// seedOwners writes the old allocations' owner records, as they would have
// written them when they bound.
func (w *World) seedOwners(t testing.TB) {
	t.Helper()
	sim, store, s := w.sim, w.store, w.s
	ctx := context.Background()
	backends := map[string]string{} // uhost -> backend id, for the ulb case
	for _, lb := range sim.Snapshot().ULBs {
		for _, vs := range lb.VServers {
			for _, b := range vs.Backends {
				backends[b.ResourceID] = b.ID
			}
		}
	}
	for i := range s.Tasks {
		o := owner(s, i, oldAlloc(i), host(i))
		kind, key := ownership.KindEIP, eipID(i)
		if s.Kind == "ulb" {
			kind, key = ownership.KindBackend, w.backendKey(i)
			o.Resource, o.Port = backends[host(i)], oldPort
		} else {
			o.Resource = eipID(i)
		}
		if ok, err := store.Claim(ctx, kind, key, o, 0); err != nil || !ok {
			t.Fatalf("seed owner record %s %s: %v %v", kind, key, ok, err)
		}
	}
}

// logSink reads the binders' JSON logs: the attempts each successful
// operation took, and what made attempts fail.
type logSink struct {
	mu       sync.Mutex
	attempts map[int]int
	reasons  map[string]int
}

func (l *logSink) attempt(task int) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, ok := l.attempts[task]
	return n, ok
}

func (l *logSink) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		var e struct {
			Message  string `json:"@message"`
			Task     *int   `json:"task"`
			Attempts int    `json:"attempts"`
			Error    string `json:"error"`
		}
		if json.Unmarshal([]byte(line), &e) != nil || e.Task == nil {
			continue
		}
		l.mu.Lock()
		switch {
		case e.Attempts > 0:
			l.attempts[*e.Task] = e.Attempts
		case strings.HasSuffix(e.Message, "attempt failed, retrying"):
			l.reasons[retryKind(e.Error)]++
		}
		l.mu.Unlock()
	}
	return len(p), nil
}

// retryKind sorts the errors of failed attempts.
func retryKind(msg string) string {
	switch {
	case strings.Contains(msg, fmt.Sprintf("RetCode %d", ucloudsim.RetCodeRateLimited)):
		return "throttled"
	case strings.Contains(msg, "still shows"), strings.Contains(msg, "does not list it yet"):
		return "change not visible (confirming describes throttled)"
	case strings.Contains(msg, "call timeout"):
		return "call timeout"
	default:
		return "other: " + msg
	}
}
