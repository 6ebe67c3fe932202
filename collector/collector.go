// Package collector removes cloud bindings whose owner is gone: releases
// that failed at stop, allocations of lost nodes, scaled-down groups and
// purged jobs. It acts only on resources that carry one of our owner
// records, only when the scheduler says the record's allocation has ended,
// and through the binders' own Release (allow-lists, releasing mark,
// check-and-set), at a bounded call rate. One collector runs per Consul
// cluster at a time (a Consul lock); see docs/binding.md.
package collector

import (
	"context"
	"errors"
	"fmt"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"golang.org/x/time/rate"

	"github.com/rmqnomad/rocketmq-nomad-driver/eipbind"
	"github.com/rmqnomad/rocketmq-nomad-driver/ownership"
	"github.com/rmqnomad/rocketmq-nomad-driver/ulbbind"
)

// Records lists and reads owner and cluster records; *ownership.Store has it.
type Records interface {
	List(ctx context.Context) ([]ownership.Entry, int, error)
	Clusters(ctx context.Context) (map[string]ownership.Tenant, map[string]uint64, error)
	DropCluster(ctx context.Context, cluster string, idx uint64) (bool, error)
}

// EIPReleaser is eipbind.Binder's Release.
type EIPReleaser interface {
	Release(ctx context.Context, req eipbind.Request) error
}

// BackendReleaser is ulbbind.Binder's Release.
type BackendReleaser interface {
	Release(ctx context.Context, req ulbbind.Request) error
}

// Config wires a Collector.
type Config struct {
	Records   Records
	Liveness  ownership.Liveness
	JobExists ownership.JobExists
	EIPs      EIPReleaser     // nil: EIP records are kept
	Backends  BackendReleaser // nil: backend records are kept
	// CallsPerSecond bounds collections per second (each is a few cloud
	// calls); 0 means 2.
	CallsPerSecond float64
	// MaxPerPass bounds collections per pass; 0 means 20.
	MaxPerPass int
	// Timeout bounds one collection; 0 means 60s.
	Timeout time.Duration
	Logger  hclog.Logger
	// Observe, when set, is told each collection's kind ("eip",
	// "backend", "cluster") and outcome ("collected", "error", "orphan").
	Observe func(kind, outcome string)
	Now     func() time.Time
}

// Collector collects bindings of gone owners.
type Collector struct {
	cfg     Config
	limiter *rate.Limiter
	log     hclog.Logger
}

// New returns a collector; Records and Liveness are required.
func New(cfg Config) (*Collector, error) {
	if cfg.Records == nil || cfg.Liveness == nil {
		return nil, errors.New("collector needs owner records (consul) and liveness (nomad)")
	}
	if cfg.CallsPerSecond <= 0 {
		cfg.CallsPerSecond = 2
	}
	if cfg.MaxPerPass <= 0 {
		cfg.MaxPerPass = 20
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Collector{cfg: cfg, limiter: rate.NewLimiter(rate.Limit(cfg.CallsPerSecond), 1), log: cfg.Logger}, nil
}

// Report says what one pass did.
type Report struct {
	Records   int
	Collected []ownership.Entry
	Failed    int
	Orphans   int
	Clusters  []string // cluster records dropped
}

// Observe reads every owner record and asks the scheduler about its owner.
func (c *Collector) Observe(ctx context.Context) ([]Observed, int, error) {
	entries, bad, err := c.cfg.Records.List(ctx)
	if err != nil {
		return nil, 0, err
	}
	obs := make([]Observed, 0, len(entries))
	for _, e := range entries {
		gone, why, err := c.cfg.Liveness.Gone(ctx, e.Owner)
		obs = append(obs, Observed{Entry: e, Gone: gone, Why: why, LivenessErr: err})
	}
	return obs, bad, nil
}

// Once runs one pass: observe, decide, act.
func (c *Collector) Once(ctx context.Context) (Report, error) {
	obs, bad, err := c.Observe(ctx)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Records: len(obs), Orphans: bad}
	live := map[string]bool{} // clusters with records left
	for _, st := range Decide(obs, c.cfg.Now(), c.cfg.MaxPerPass) {
		e := st.Entry
		switch st.Verb {
		case Keep:
			live[e.Owner.Cluster] = true
			c.log.Debug("keeping binding", "kind", e.Kind, "key", e.Key, "alloc_id", e.Owner.AllocID, "reason", st.Reason)
		case Drop:
			live[e.Owner.Cluster] = true
			rep.Orphans++
			c.observe(e.Kind, "orphan")
			c.log.Warn("owner record cannot be collected", "kind", e.Kind, "key", e.Key, "reason", st.Reason)
		case Collect:
			if err := c.collect(ctx, e); err != nil {
				live[e.Owner.Cluster] = true
				rep.Failed++
				c.observe(e.Kind, "error")
				c.log.Warn("failed to collect binding of a gone owner", "kind", e.Kind, "key", e.Key, "alloc_id", e.Owner.AllocID, "error", err)
				continue
			}
			rep.Collected = append(rep.Collected, e)
			c.observe(e.Kind, "collected")
			c.log.Info("collected binding of a gone owner", "kind", e.Kind, "key", e.Key, "alloc_id", e.Owner.AllocID,
				"uhost_id", e.Owner.UHostID, "reason", st.Reason)
		}
	}
	rep.Clusters = c.collectClusters(ctx, live)
	return rep, nil
}

// collect releases one record's resource as its gone owner.
func (c *Collector) collect(ctx context.Context, e ownership.Entry) error {
	if err := c.limiter.Wait(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	o := e.Owner
	switch e.Kind {
	case ownership.KindEIP:
		if c.cfg.EIPs == nil {
			return errors.New("no eip binder configured")
		}
		return c.cfg.EIPs.Release(ctx, eipbind.Request{EIPID: e.Key, UHostID: o.UHostID, Owner: o})
	case ownership.KindBackend:
		if c.cfg.Backends == nil {
			return errors.New("no ulb binder configured")
		}
		ulb, vs := backendTarget(e.Key)
		return c.cfg.Backends.Release(ctx, ulbbind.Request{ULBID: ulb, VServerID: vs, UHostID: o.UHostID, Port: o.Port, Owner: o})
	}
	return fmt.Errorf("unknown record kind %q", e.Kind)
}

// collectClusters drops the tenant records of clusters whose job Nomad no
// longer knows and that hold no bindings.
func (c *Collector) collectClusters(ctx context.Context, live map[string]bool) []string {
	if c.cfg.JobExists == nil {
		return nil
	}
	tenants, idx, err := c.cfg.Records.Clusters(ctx)
	if err != nil {
		c.log.Warn("failed to list cluster records", "error", err)
		return nil
	}
	var dropped []string
	for cluster, t := range tenants {
		if live[cluster] {
			continue
		}
		gone, err := ownership.TenantGone(ctx, c.cfg.JobExists, t)
		if err != nil || !gone {
			continue
		}
		if done, err := c.cfg.Records.DropCluster(ctx, cluster, idx[cluster]); err == nil && done {
			dropped = append(dropped, cluster)
			c.observe("cluster", "collected")
			c.log.Info("released cluster id: none of its jobs exists any more", "cluster", cluster, "namespace", t.Namespace, "jobs", t.Jobs)
		}
	}
	return dropped
}

func (c *Collector) observe(kind, outcome string) {
	if c.cfg.Observe != nil {
		c.cfg.Observe(kind, outcome)
	}
}
