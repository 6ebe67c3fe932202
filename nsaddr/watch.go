package nsaddr

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
)

// minQueryInterval spaces the queries of one watcher, so a burst of changes
// (or a Consul that answers blocking queries at once) cannot make it spin.
const minQueryInterval = 20 * time.Millisecond

// Backoff between failed Consul queries.
const (
	backoffMin = 100 * time.Millisecond
	backoffMax = 2 * time.Second
)

// clusterView is one cluster's answer, rendered once per change and swapped
// atomically; the request path only loads it. Never modified once stored.
type clusterView struct {
	ok     bool     // Consul answered at least once
	status int      // 200 with the list, or 503
	body   []byte   // the list "ip:port;ip:port", or why there is none
	clen   []string // Content-Length header value of body
	// sniffed: net/http's own sniffing of body gives textPlain, so a 200
	// answer may leave Content-Type to it (see serveList).
	sniffed    bool
	list       []string // the list's entries (JSON view)
	excluded   []Exclusion
	changed    time.Time // when the served list last changed
	staleSince time.Time // first failed Consul query since the last success; zero while fresh
	lastErr    string    // last Consul error, token scrubbed
}

// textPlain is the Content-Type of every answer of the list route.
const textPlain = "text/plain; charset=utf-8"

// setBody sets the answer's body and what the request path needs of it.
func (v *clusterView) setBody(b []byte) {
	v.body = b
	v.clen = []string{strconv.Itoa(len(b))}
	v.sniffed = http.DetectContentType(b) == textPlain
}

// cluster is a watched cluster: its current view and its Consul watcher.
type cluster struct {
	id, service string

	view        atomic.Pointer[clusterView]
	used        atomic.Bool   // requested since the janitor last looked
	idleSince   time.Time     // when the janitor first saw it unused; guarded by Server.mu
	lastContact atomic.Int64  // Unix ns of the last successful Consul answer
	index       atomic.Uint64 // Consul index of the last answer

	ready     chan struct{} // closed after the first query, success or not
	readyOnce sync.Once
	cancel    context.CancelFunc
	done      chan struct{} // closed when the watcher has stopped

	logged map[string]struct{} // exclusions already logged; watcher goroutine only
}

func (c *cluster) markReady() { c.readyOnce.Do(func() { close(c.ready) }) }

// markUsed records a request. It reads the time of nothing and writes the
// shared flag only when the janitor has cleared it, so concurrent requests
// do not keep bouncing its cache line.
func markUsed(used *atomic.Bool) {
	if !used.Load() {
		used.Store(true)
	}
}

// catalogView is the set of clusters known from Consul's service catalog.
type catalogView struct {
	ok         bool
	clusters   map[string]struct{}
	staleSince time.Time
	lastErr    string
}

// catalogWatcher watches Consul's service catalog to tell known clusters
// (404 otherwise) without starting a watcher for every requested id.
type catalogWatcher struct {
	view        atomic.Pointer[catalogView]
	used        atomic.Bool
	idleSince   time.Time // guarded by Server.mu
	lastContact atomic.Int64
	index       atomic.Uint64
	ready       chan struct{}
	readyOnce   sync.Once
	cancel      context.CancelFunc
	done        chan struct{}
}

func (cw *catalogWatcher) markReady() { cw.readyOnce.Do(func() { close(cw.ready) }) }

// watch runs blocking queries until ctx is done. query performs one query
// with the given options and publishes the result, returning Consul's index;
// failed is told about each failed query. Between failures it backs off.
func (s *Server) watch(ctx context.Context, kind string, query func(*api.QueryOptions) (uint64, error), failed func(error)) {
	okCount := s.metrics.consulReqs.WithLabelValues(kind, "ok")
	errCount := s.metrics.consulReqs.WithLabelValues(kind, "error")
	var index uint64
	var failures int
	var lastStart time.Time
	for {
		if !sleepCtx(ctx, minQueryInterval-time.Since(lastStart)) {
			return
		}
		lastStart = time.Now()
		qctx, cancel := context.WithTimeout(ctx, s.queryTimeout)
		opts := (&api.QueryOptions{
			Datacenter: s.cfg.Consul.Datacenter,
			WaitIndex:  index,
			WaitTime:   s.cfg.ConsulWaitTime,
		}).WithContext(qctx)
		last, err := query(opts)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			errCount.Inc()
			failures++
			failed(err)
			// Read everything afresh once Consul answers again: it may
			// have been rebuilt, its indexes starting over.
			index = 0
			if !sleepCtx(ctx, backoff(failures)) {
				return
			}
			continue
		}
		okCount.Inc()
		failures = 0
		switch {
		case last < index:
			// The index went backwards (Consul restored or rebuilt): do a
			// non-blocking read next, as Consul's documentation advises.
			index = 0
		case last == 0:
			index = 1
		default:
			index = last
		}
	}
}

// backoff returns the pause after n consecutive failures: 100ms doubling up
// to 2s, with 20% jitter.
func backoff(n int) time.Duration {
	d := backoffMax
	if n < 6 {
		d = min(backoffMin<<(n-1), backoffMax)
	}
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// sleepCtx sleeps for d, or until ctx is done; it reports whether ctx is
// still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// runCluster is a cluster's watcher goroutine.
func (s *Server) runCluster(ctx context.Context, c *cluster) {
	defer close(c.done)
	defer c.markReady()
	s.watch(ctx, "health", func(opts *api.QueryOptions) (uint64, error) {
		entries, meta, err := s.consul.Health().Service(c.service, "", true, opts)
		if err != nil {
			return 0, fmt.Errorf("query passing instances of consul service %s: %w", c.service, err)
		}
		s.publishCluster(c, entries, meta.LastIndex)
		return meta.LastIndex, nil
	}, func(err error) { s.clusterFailed(c, err) })
}

// publishCluster renders a fresh answer from Consul, swapping the view only
// when something changed.
func (s *Server) publishCluster(c *cluster, entries []*api.ServiceEntry, index uint64) {
	now := time.Now()
	c.lastContact.Store(now.UnixNano())
	c.index.Store(index)
	defer c.markReady()

	list, excluded := nameServers(entries, s.cfg.IncludeIPv6)
	s.logExclusions(c, excluded)

	old := c.view.Load()
	v := &clusterView{ok: true, list: listStrings(list), excluded: excluded}
	if len(list) == 0 {
		v.status = 503
		v.body = fmt.Appendf(nil, "no passing NameServer for cluster %s\n", c.id)
	} else {
		v.status = 200
		v.body = joinList(list)
	}
	v.setBody(v.body)

	listChanged := old == nil || !old.ok || old.status != v.status || !bytes.Equal(old.body, v.body)
	wasStale := old != nil && !old.staleSince.IsZero()
	if !listChanged && !wasStale && slices.Equal(old.excluded, v.excluded) {
		return
	}
	if listChanged {
		v.changed = now
	} else {
		v.changed = old.changed
	}
	c.view.Store(v)

	s.metrics.nameServers.WithLabelValues(c.id).Set(float64(len(list)))
	s.metrics.excluded.WithLabelValues(c.id).Set(float64(len(excluded)))
	s.metrics.stale.WithLabelValues(c.id).Set(0)
	if wasStale {
		s.log.Info("consul reachable again; list is fresh", "cluster", c.id, "stale_for", now.Sub(old.staleSince).Round(time.Millisecond).String())
	}
	if listChanged {
		s.metrics.lastChange.WithLabelValues(c.id).Set(float64(now.UnixNano()) / 1e9)
		s.metrics.changes.WithLabelValues(c.id).Inc()
		if v.status == 200 {
			s.log.Info("nameserver list changed", "cluster", c.id, "service", c.service, "list", string(v.body), "count", len(list), "consul_index", index)
		} else {
			s.log.Warn("no passing nameserver; answering 503", "cluster", c.id, "service", c.service, "consul_index", index)
		}
	}
}

// clusterFailed flags a cluster's view stale after a failed Consul query.
func (s *Server) clusterFailed(c *cluster, err error) {
	defer c.markReady()
	msg := s.scrub(err.Error())
	v := &clusterView{}
	if old := c.view.Load(); old != nil {
		*v = *old
	}
	first := v.staleSince.IsZero()
	if first {
		v.staleSince = time.Now()
	}
	v.lastErr = msg
	if !v.ok {
		v.status = 503
		v.setBody(fmt.Appendf(nil, "consul unreachable: no NameServer list for cluster %s yet\n", c.id))
	}
	c.view.Store(v)
	s.metrics.stale.WithLabelValues(c.id).Set(1)
	if first {
		s.log.Warn("consul query failed; serving the last known list flagged stale", "cluster", c.id,
			"have_list", v.ok, "stale_after", s.cfg.StaleAfter.String(), "error", msg)
	} else {
		s.log.Debug("consul query failed again", "cluster", c.id, "error", msg)
	}
}

// logExclusions logs each left-out instance once (again only after it was
// gone from an answer and came back).
func (s *Server) logExclusions(c *cluster, excluded []Exclusion) {
	seen := make(map[string]struct{}, len(excluded))
	for _, x := range excluded {
		k := exclusionKey(x)
		seen[k] = struct{}{}
		if _, done := c.logged[k]; !done {
			s.log.Warn("nameserver instance left out of the list", "cluster", c.id, "node", x.Node,
				"service_id", x.ServiceID, "address", x.Address, "port", x.Port, "reason", x.Reason)
		}
	}
	c.logged = seen
}

// runCatalog is the catalog watcher goroutine.
func (s *Server) runCatalog(ctx context.Context, cw *catalogWatcher) {
	defer close(cw.done)
	defer cw.markReady()
	s.watch(ctx, "catalog", func(opts *api.QueryOptions) (uint64, error) {
		services, meta, err := s.consul.Catalog().Services(opts)
		if err != nil {
			return 0, fmt.Errorf("list consul services: %w", err)
		}
		cw.lastContact.Store(time.Now().UnixNano())
		cw.index.Store(meta.LastIndex)
		known := make(map[string]struct{})
		for name := range services {
			if id, ok := s.pattern.cluster(name); ok {
				known[id] = struct{}{}
			}
		}
		old := cw.view.Load()
		if old != nil && old.ok && old.staleSince.IsZero() && sameKeys(old.clusters, known) {
			cw.markReady()
			return meta.LastIndex, nil
		}
		if old != nil && !old.staleSince.IsZero() {
			s.log.Info("consul catalog reachable again")
		}
		cw.view.Store(&catalogView{ok: true, clusters: known})
		cw.markReady()
		s.log.Debug("clusters in consul catalog", "count", len(known), "consul_index", meta.LastIndex)
		return meta.LastIndex, nil
	}, func(err error) {
		defer cw.markReady()
		msg := s.scrub(err.Error())
		v := &catalogView{}
		if old := cw.view.Load(); old != nil {
			*v = *old
		}
		if v.staleSince.IsZero() {
			v.staleSince = time.Now()
			s.log.Warn("consul catalog query failed", "error", msg)
		}
		v.lastErr = msg
		cw.view.Store(v)
	})
}

func sameKeys(a, b map[string]struct{}) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}
