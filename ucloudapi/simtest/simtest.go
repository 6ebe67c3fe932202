// Package simtest runs the UCloud simulator (ucloudsim) for tests of the
// packages built on ucloudapi: it starts a simulator on a free loopback port
// and points a real ucloudapi.Client (the real SDK) at it.
package simtest

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudapi"
	"github.com/rmqnomad/rocketmq-nomad-driver/ucloudsim"
)

// The account every Env uses.
const (
	Region     = "cn-bj2"
	Project    = "org-rmq"
	PublicKey  = "simtest-public-key"
	PrivateKey = "simtest-private-key-9b2e"
)

// State is a small account: hosts uhost-a/b/c; EIPs eip-a (free, remark
// "rmq:orders"), eip-b (free, remark "rmq:orders broker-1"), eip-c (bound to
// uhost-c, remark "rmq:orders"), eip-x (free, remark "rmq:payments"),
// eip-plain (free, no remark); ULB ulb-ns with VServer vserver-ns (port
// 9876, one backend backend-seed for uhost-c:30000) and ULB ulb-other with
// vserver-other.
func State() *ucloudsim.State {
	return &ucloudsim.State{
		Region:    Region,
		ProjectID: Project,
		Keypairs:  []ucloudsim.Keypair{{PublicKey: PublicKey, PrivateKey: PrivateKey}},
		Hosts: []ucloudsim.Host{
			{ID: "uhost-a", PrivateIP: "10.9.0.11"},
			{ID: "uhost-b", PrivateIP: "10.9.0.12"},
			{ID: "uhost-c", PrivateIP: "10.9.0.13"},
		},
		EIPs: []ucloudsim.EIP{
			{ID: "eip-a", IP: "203.0.113.10", Remark: "rmq:orders"},
			{ID: "eip-b", IP: "203.0.113.11", Remark: "rmq:orders broker-1"},
			{ID: "eip-c", IP: "203.0.113.12", Remark: "rmq:orders", ResourceType: "uhost", ResourceID: "uhost-c"},
			{ID: "eip-x", IP: "203.0.113.13", Remark: "rmq:payments"},
			{ID: "eip-plain", IP: "203.0.113.14"},
		},
		ULBs: []ucloudsim.ULB{
			{ID: "ulb-ns", VServers: []ucloudsim.VServer{{
				ID: "vserver-ns", FrontendPort: 9876,
				Backends: []ucloudsim.Backend{{ID: "backend-seed", ResourceID: "uhost-c", Port: 30000}},
			}}},
			{ID: "ulb-other", VServers: []ucloudsim.VServer{{ID: "vserver-other", FrontendPort: 9876}}},
		},
	}
}

// Env is a running simulator and a client pointed at it.
type Env struct {
	Sim *ucloudsim.Server
	API *ucloudapi.Client
}

// Options tune Start.
type Options struct {
	// CallTimeout of the client; 0 means 5s.
	CallTimeout time.Duration
	// ThrottleWait of the client (ucloudapi.Config); negative returns
	// throttled calls as errors instead of sending them again.
	ThrottleWait time.Duration
}

// Start starts a simulator with cfg (State defaults to State(), Seed to 1)
// and returns it with a client. Both stop on t.Cleanup.
func Start(t testing.TB, cfg ucloudsim.Config, opts ...Options) *Env {
	t.Helper()
	if cfg.State == nil {
		cfg.State = State()
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	sim, err := ucloudsim.New(cfg)
	if err != nil {
		t.Fatalf("ucloudsim.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := sim.Start(ctx, "127.0.0.1:0"); err != nil {
		cancel()
		t.Fatalf("ucloudsim.Start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = sim.Close()
	})
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = 5 * time.Second
	}
	api, err := ucloudapi.New(ucloudapi.Config{
		Region: Region, ProjectID: Project, PublicKey: PublicKey, PrivateKey: PrivateKey,
		BaseURL: sim.URL(), CallTimeout: o.CallTimeout, ThrottleWait: o.ThrottleWait,
	})
	if err != nil {
		t.Fatalf("ucloudapi.New: %v", err)
	}
	return &Env{Sim: sim, API: api}
}

// IsWrite reports whether an action changes the account.
func IsWrite(action string) bool {
	return slices.Contains([]string{
		"AllocateEIP", "ReleaseEIP", "BindEIP", "UnBindEIP", "CreateULB", "CreateVServer",
		"AllocateBackend", "ReleaseBackend", "UpdateBackendAttribute",
	}, action)
}

// Writes counts the write requests the simulator received (whatever their
// outcome).
func (e *Env) Writes() int {
	n := 0
	for action, c := range e.Sim.Counters() {
		if IsWrite(action) {
			n += int(c.Requests)
		}
	}
	return n
}

// Requests counts the requests of one action.
func (e *Env) Requests(action string) int {
	return int(e.Sim.Counters()[action].Requests)
}

// EIP returns the true state of an EIP (never a pending view).
func (e *Env) EIP(t testing.TB, id string) ucloudsim.EIP {
	t.Helper()
	for _, x := range e.Sim.Snapshot().EIPs {
		if x.ID == id {
			return x
		}
	}
	t.Fatalf("eip %s not in the simulator", id)
	return ucloudsim.EIP{}
}

// Backends returns the true backends of a VServer.
func (e *Env) Backends(t testing.TB, ulbID, vserverID string) []ucloudsim.Backend {
	t.Helper()
	for _, lb := range e.Sim.Snapshot().ULBs {
		if lb.ID != ulbID {
			continue
		}
		for _, vs := range lb.VServers {
			if vs.ID == vserverID {
				return vs.Backends
			}
		}
	}
	t.Fatalf("vserver %s of ulb %s not in the simulator", vserverID, ulbID)
	return nil
}

// APIDuration sums the simulator-side duration of the requests with Seq >
// since, and returns the last Seq seen.
func (e *Env) APIDuration(since int64) (time.Duration, int, int64) {
	var d time.Duration
	n := 0
	last := since
	for _, r := range e.Sim.Requests() {
		if r.Seq <= since {
			continue
		}
		d += r.Duration
		n++
		last = max(last, r.Seq)
	}
	return d, n, last
}

// LastSeq is the Seq of the newest logged request (0 if none).
func (e *Env) LastSeq() int64 {
	reqs := e.Sim.Requests()
	if len(reqs) == 0 {
		return 0
	}
	return reqs[len(reqs)-1].Seq
}

// WaitLogged waits until the simulator has logged n requests after Seq
// since (a request is logged just after its reply is written, so a caller
// can be a little ahead of the log), for at most two seconds.
func (e *Env) WaitLogged(since int64, n int) {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if _, got, _ := e.APIDuration(since); got >= n {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// Stopwatch adds up the time spent in timed calls and counts them. It is
// safe for concurrent use.
type Stopwatch struct {
	mu    sync.Mutex
	total time.Duration
	calls int
}

// Time runs fn and adds its duration.
func (s *Stopwatch) Time(fn func()) {
	start := time.Now()
	fn()
	d := time.Since(start)
	s.mu.Lock()
	s.total += d
	s.calls++
	s.mu.Unlock()
}

// Take returns the total and the count so far and resets them.
func (s *Stopwatch) Take() (time.Duration, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, n := s.total, s.calls
	s.total, s.calls = 0, 0
	return d, n
}
