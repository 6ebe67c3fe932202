package nsaddr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rmqnomad/rocketmq-nomad-driver/clusterid"
)

// Response headers of a stale answer (Consul unreachable, last known good
// list served).
const (
	HeaderStale      = "X-Nsaddr-Stale"       // "true"
	HeaderStaleSince = "X-Nsaddr-Stale-Since" // RFC 3339 time of the first failed Consul query
)

const rocketmqPrefix = "/rocketmq/"

// Server serves the NameServer address lists of RocketMQ clusters, fed from
// Consul. It is safe for concurrent use. Create it with New.
type Server struct {
	log            hclog.Logger
	cfg            Config
	pattern        namePattern
	consul         *api.Client
	token          string // only to scrub it from errors
	metrics        *metrics
	metricsHandler http.Handler

	queryTimeout time.Duration // per blocking query

	// clusters maps cluster id to its watcher; the map is never modified
	// once stored (copy on write under mu), so requests read it lock-free.
	clusters atomic.Pointer[map[string]*cluster]
	catalog  atomic.Pointer[catalogWatcher]

	mu          sync.Mutex // serialises starting and stopping watchers
	closed      bool
	janitorOnce sync.Once

	ctx    context.Context // parent of all watchers; canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Shared, never modified header values.
	hdrText, hdrJSON, hdrNoStore, hdrNosniff, hdrAllow, hdrTrue, hdrClose []string
}

// New validates cfg, applies defaults and returns a Server. It does not
// contact Consul: watchers start with the first request for a cluster.
func New(logger hclog.Logger, cfg Config) (*Server, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("nsaddr config: %w", err)
	}
	pattern, err := parsePattern(cfg.ServiceNamePattern)
	if err != nil {
		return nil, fmt.Errorf("nsaddr config: %w", err)
	}

	cc := api.DefaultConfigWithLogger(logger.Named("consul-api"))
	if cc.Transport != nil {
		// One connection per concurrent blocking query: keep them pooled.
		cc.Transport.MaxIdleConnsPerHost = 64
	}
	cons := cfg.Consul
	for _, f := range []struct {
		dst *string
		v   string
	}{
		{&cc.Address, cons.Address}, {&cc.Token, cons.Token}, {&cc.TokenFile, cons.TokenFile},
		{&cc.Scheme, cons.Scheme}, {&cc.Datacenter, cons.Datacenter},
		{&cc.TLSConfig.CAFile, cons.CAFile}, {&cc.TLSConfig.CAPath, cons.CAPath},
		{&cc.TLSConfig.CertFile, cons.CertFile}, {&cc.TLSConfig.KeyFile, cons.KeyFile},
		{&cc.TLSConfig.Address, cons.TLSServerName},
	} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	if cons.TLSSkipVerify {
		cc.TLSConfig.InsecureSkipVerify = true
	}
	client, err := api.NewClient(cc)
	if err != nil {
		// The error names the token file, never the token.
		return nil, fmt.Errorf("create consul client: %w", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		log:          logger,
		cfg:          cfg,
		pattern:      pattern,
		consul:       client,
		token:        cc.Token,
		metrics:      newMetrics(),
		queryTimeout: cfg.ConsulWaitTime + cfg.ConsulWaitTime/16 + 10*time.Second,
		ctx:          ctx,
		cancel:       cancel,
		hdrText:      []string{"text/plain; charset=utf-8"},
		hdrJSON:      []string{"application/json"},
		hdrNoStore:   []string{"no-store"},
		hdrNosniff:   []string{"nosniff"},
		hdrAllow:     []string{"GET, HEAD"},
		hdrTrue:      []string{"true"},
		hdrClose:     []string{"close"},
	}
	s.metricsHandler = promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
	empty := map[string]*cluster{}
	s.clusters.Store(&empty)
	s.metrics.watchers.Set(0)
	logger.Info("nameserver address endpoint configured",
		"consul", cc.Address, "consul_scheme", cc.Scheme, "consul_token_set", cc.Token != "",
		"service_name_pattern", cfg.ServiceNamePattern, "default_cluster", cfg.DefaultCluster,
		"stale_after", cfg.StaleAfter.String(), "idle_timeout", cfg.IdleTimeout.String(), "ipv6", cfg.IncludeIPv6)
	return s, nil
}

// Config returns the configuration in effect (defaults applied). Its
// Consul.Token is blanked.
func (s *Server) Config() Config {
	c := s.cfg
	if c.Consul.Token != "" {
		c.Consul.Token = "redacted"
	}
	return c
}

// Handler returns the HTTP handler: GET/HEAD /rocketmq/<subgroup>,
// /healthz, /metrics and /clusters. Other methods get 405.
func (s *Server) Handler() http.Handler { return s }

// Serve serves HTTP on ln until ctx is done, then shuts down gracefully
// (in-flight requests get up to 5 s) and stops all Consul watchers. It
// returns nil after a shutdown caused by ctx, or the error that stopped it.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	conns := newConnTracker(s.cfg.ReadHeaderTimeout, s.cfg.WriteTimeout)
	hs := &http.Server{
		Handler: s,
		// Connection timeouts are enforced by conns (see connTracker), not
		// by http.Server's per-request deadlines.
		ConnState:      conns.connState,
		MaxHeaderBytes: s.cfg.MaxHeaderBytes,
		// "OPTIONS *" reaches the handler (405) instead of Go's default 200.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     s.log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
		// Requests in flight at shutdown finish normally (ctx's values, not
		// its cancellation).
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	defer stopSweep()
	go conns.run(sweepCtx)
	ln = trackingListener{Listener: ln, t: conns}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	var err error
	select {
	case err = <-errc:
		err = fmt.Errorf("serve nameserver addresses on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if serr := hs.Shutdown(sctx); serr != nil {
			s.log.Warn("graceful shutdown of the http server timed out; closing", "error", serr)
			_ = hs.Close()
		}
		cancel()
		if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			err = fmt.Errorf("serve nameserver addresses on %s: %w", ln.Addr(), serr)
		}
	}
	s.Close()
	return err
}

// Close stops all Consul watchers and waits for them. Requests answered
// after Close get 503. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	empty := map[string]*cluster{}
	old := s.clusters.Swap(&empty)
	s.catalog.Store(nil)
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	for id := range *old {
		s.metrics.forget(id)
	}
	s.metrics.watchers.Set(0)
	return nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header()["Allow"] = s.hdrAllow
		s.plain(w, r, routeOther, http.StatusMethodNotAllowed, "method not allowed: this endpoint is read-only (GET, HEAD)\n")
		return
	}
	if r.ContentLength != 0 {
		w.Header()["Connection"] = s.hdrClose
		s.plain(w, r, routeOther, http.StatusRequestEntityTooLarge, "request body not allowed\n")
		return
	}
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, rocketmqPrefix):
		s.serveList(w, r, path[len(rocketmqPrefix):])
	case path == "/healthz":
		s.plain(w, r, routeHealthz, http.StatusOK, "ok\n")
	case path == "/metrics":
		s.metrics.count(routeMetrics, http.StatusOK)
		s.metricsHandler.ServeHTTP(w, r)
	case path == "/clusters":
		s.serveClusters(w, r)
	default:
		s.plain(w, r, routeOther, http.StatusNotFound, "not found\n")
	}
}

// serveList answers GET /rocketmq/<subgroup>. This is the hot path: for a
// watched cluster it is a lock-free map read, an atomic load of the
// pre-rendered answer and a write.
func (s *Server) serveList(w http.ResponseWriter, r *http.Request, sub string) {
	if !clusterid.Valid(sub) {
		s.plain(w, r, routeRocketMQ, http.StatusBadRequest, "invalid subgroup: want /rocketmq/<cluster id> ("+clusterid.Rule+")\n")
		return
	}
	id := sub
	if sub == DefaultSubgroup {
		if s.cfg.DefaultCluster == "" {
			s.plain(w, r, routeRocketMQ, http.StatusNotFound, "no default cluster configured for subgroup nsaddr\n")
			return
		}
		id = s.cfg.DefaultCluster
	}
	c := (*s.clusters.Load())[id]
	if c == nil {
		var code int
		var msg string
		if c, code, msg = s.startCluster(r.Context(), id); c == nil {
			s.plain(w, r, routeRocketMQ, code, msg)
			return
		}
	}
	markUsed(&c.used)
	v := c.view.Load()
	if v == nil {
		s.plain(w, r, routeRocketMQ, http.StatusServiceUnavailable, "waiting for consul\n")
		return
	}
	if !v.staleSince.IsZero() && v.ok {
		s.serveStale(w, r, id, v)
		return
	}
	// The usual answer, a list that fits net/http's buffer, writes no
	// header at all: the first entry put in a response's header map costs
	// an allocation (about 5% of the endpoint's CPU per answer under load,
	// bench/nsaddr), and net/http fills in the same headers itself:
	// Content-Length (for HEAD it counts the body it then discards), Date,
	// and Content-Type, sniffed from the body, which for a list is
	// text/plain; charset=utf-8 (v.sniffed, checked when the view is
	// rendered).
	if v.status == http.StatusOK && v.sniffed && len(v.body) <= 1024 {
		_, _ = w.Write(v.body)
		s.metrics.count(routeRocketMQ, http.StatusOK)
		return
	}
	h := w.Header()
	h["Content-Type"] = s.hdrText
	if len(v.body) > 1024 {
		h["Content-Length"] = v.clen
	}
	if v.status != http.StatusOK {
		h["Cache-Control"] = s.hdrNoStore
		w.WriteHeader(v.status)
	}
	_, _ = w.Write(v.body)
	s.metrics.count(routeRocketMQ, v.status)
}

// serveStale answers from a view flagged stale: Consul failed since the list
// was last confirmed. The list is served, with the stale headers, for
// StaleAfter after the first failure; then 503.
func (s *Server) serveStale(w http.ResponseWriter, r *http.Request, id string, v *clusterView) {
	h := w.Header()
	h[HeaderStale] = s.hdrTrue
	h[HeaderStaleSince] = []string{v.staleSince.UTC().Format(time.RFC3339)}
	if v.status != http.StatusOK || time.Since(v.staleSince) > s.cfg.StaleAfter {
		msg := string(v.body)
		if v.status == http.StatusOK {
			msg = fmt.Sprintf("consul unreachable for more than %s: last known list of cluster %s expired\n", s.cfg.StaleAfter, id)
		}
		s.plain(w, r, routeRocketMQ, http.StatusServiceUnavailable, msg)
		return
	}
	h["Content-Type"] = s.hdrText
	h["Content-Length"] = v.clen
	h["Cache-Control"] = s.hdrNoStore
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(v.body)
	}
	s.metrics.count(routeRocketMQ, http.StatusOK)
}

// plain writes a short text answer.
func (s *Server) plain(w http.ResponseWriter, r *http.Request, route, code int, body string) {
	h := w.Header()
	h["Content-Type"] = s.hdrText
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["Cache-Control"] = s.hdrNoStore
	h["X-Content-Type-Options"] = s.hdrNosniff
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, body)
	}
	s.metrics.count(route, code)
}

// startCluster is the slow path of a request for a cluster without a
// watcher: check the cluster exists in Consul's catalog, start its watcher
// and wait (bounded) for its first answer. On failure it returns a nil
// cluster with the status and message to answer.
func (s *Server) startCluster(ctx context.Context, id string) (*cluster, int, string) {
	cw := s.catalogWatcher()
	if cw == nil {
		return nil, http.StatusServiceUnavailable, "shutting down\n"
	}
	if !s.waitReady(ctx, cw.ready) {
		return nil, http.StatusServiceUnavailable, "waiting for consul\n"
	}
	cv := cw.view.Load()
	if cv == nil || !cv.ok {
		return nil, http.StatusServiceUnavailable, "consul unreachable: cannot tell whether cluster " + id + " exists\n"
	}
	if _, known := cv.clusters[id]; !known {
		return nil, http.StatusNotFound, "unknown cluster " + id + ": no consul service " + s.pattern.service(id) + "\n"
	}
	c := s.clusterWatcher(id)
	if c == nil {
		return nil, http.StatusServiceUnavailable, "shutting down\n"
	}
	if !s.waitReady(ctx, c.ready) {
		return nil, http.StatusServiceUnavailable, "waiting for consul\n"
	}
	return c, 0, ""
}

// waitReady waits for ch to close, at most StartTimeout.
func (s *Server) waitReady(ctx context.Context, ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
	}
	t := time.NewTimer(s.cfg.StartTimeout)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	case <-t.C:
		return false
	}
}

// catalogWatcher returns the running catalog watcher, starting it if needed;
// nil once the server is closed.
func (s *Server) catalogWatcher() *catalogWatcher {
	if cw := s.catalog.Load(); cw != nil {
		markUsed(&cw.used)
		return cw
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if cw := s.catalog.Load(); cw != nil {
		return cw
	}
	ctx, cancel := context.WithCancel(s.ctx)
	cw := &catalogWatcher{ready: make(chan struct{}), cancel: cancel, done: make(chan struct{}), idleSince: time.Now()}
	cw.used.Store(true)
	s.catalog.Store(cw)
	s.startJanitor()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.runCatalog(ctx, cw)
	}()
	s.log.Debug("started consul catalog watcher")
	return cw
}

// clusterWatcher returns the cluster's watcher, starting it if needed; nil
// once the server is closed.
func (s *Server) clusterWatcher(id string) *cluster {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	old := *s.clusters.Load()
	if c := old[id]; c != nil {
		return c
	}
	ctx, cancel := context.WithCancel(s.ctx)
	c := &cluster{
		id:        id,
		service:   s.pattern.service(id),
		ready:     make(chan struct{}),
		cancel:    cancel,
		done:      make(chan struct{}),
		idleSince: time.Now(),
	}
	c.used.Store(true)
	m := make(map[string]*cluster, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[id] = c
	s.clusters.Store(&m)
	s.metrics.watchers.Set(float64(len(m)))
	s.startJanitor()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.runCluster(ctx, c)
	}()
	s.log.Info("started watching cluster", "cluster", id, "service", c.service)
	return c
}

// startJanitor starts the goroutine stopping idle watchers. s.mu is held.
func (s *Server) startJanitor() {
	s.janitorOnce.Do(func() {
		every := min(s.cfg.IdleTimeout/4, 30*time.Second)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-s.ctx.Done():
					return
				case now := <-t.C:
					s.stopIdle(now)
				}
			}
		}()
	})
}

// stopIdle stops the watchers not used for IdleTimeout. It runs every
// IdleTimeout/4, so a watcher stops between IdleTimeout and 1.25 times that
// after its last request.
func (s *Server) stopIdle(now time.Time) {
	idle := func(used *atomic.Bool, since *time.Time) bool {
		if used.Swap(false) {
			*since = now
			return false
		}
		return now.Sub(*since) >= s.cfg.IdleTimeout
	}
	var stopped []*cluster
	var stoppedCatalog *catalogWatcher

	s.mu.Lock()
	old := *s.clusters.Load()
	m := make(map[string]*cluster, len(old))
	for id, c := range old {
		if idle(&c.used, &c.idleSince) {
			stopped = append(stopped, c)
		} else {
			m[id] = c
		}
	}
	if len(stopped) > 0 {
		s.clusters.Store(&m)
		s.metrics.watchers.Set(float64(len(m)))
	}
	if cw := s.catalog.Load(); cw != nil && idle(&cw.used, &cw.idleSince) {
		s.catalog.Store(nil)
		stoppedCatalog = cw
	}
	s.mu.Unlock()

	for _, c := range stopped {
		c.cancel()
		<-c.done
		s.metrics.forget(c.id)
		s.log.Info("stopped watching idle cluster", "cluster", c.id, "idle_timeout", s.cfg.IdleTimeout.String())
	}
	if stoppedCatalog != nil {
		stoppedCatalog.cancel()
		<-stoppedCatalog.done
		s.log.Debug("stopped idle consul catalog watcher")
	}
}

// scrub removes the Consul token from a message.
func (s *Server) scrub(msg string) string {
	if s.token == "" {
		return msg
	}
	return strings.ReplaceAll(msg, s.token, "[redacted]")
}

// ClusterStatus is one cluster in the operators' JSON view (GET /clusters).
type ClusterStatus struct {
	Cluster     string      `json:"cluster"`
	Service     string      `json:"service"`
	Default     bool        `json:"default,omitempty"`
	InCatalog   bool        `json:"in_catalog"`
	Watched     bool        `json:"watched"`
	State       string      `json:"state"` // not_watched, starting, ok, no_passing, stale, expired, unavailable
	HTTPStatus  int         `json:"http_status,omitempty"`
	List        string      `json:"list,omitempty"`
	NameServers []string    `json:"nameservers,omitempty"`
	Excluded    []Exclusion `json:"excluded,omitempty"`
	LastChange  *time.Time  `json:"last_change,omitempty"`
	LastContact *time.Time  `json:"last_consul_contact,omitempty"`
	StaleSince  *time.Time  `json:"stale_since,omitempty"`
	LastError   string      `json:"last_error,omitempty"`
	ConsulIndex uint64      `json:"consul_index,omitempty"`
}

// Status is the operators' JSON view of all clusters (GET /clusters).
type Status struct {
	DefaultCluster     string          `json:"default_cluster,omitempty"`
	ServiceNamePattern string          `json:"service_name_pattern"`
	StaleAfter         string          `json:"stale_after"`
	IdleTimeout        string          `json:"idle_timeout"`
	Catalog            CatalogStatus   `json:"catalog"`
	Clusters           []ClusterStatus `json:"clusters"`
}

// CatalogStatus is the state of the Consul catalog watcher.
type CatalogStatus struct {
	Watched     bool       `json:"watched"`
	OK          bool       `json:"ok"`
	LastContact *time.Time `json:"last_consul_contact,omitempty"`
	StaleSince  *time.Time `json:"stale_since,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	ConsulIndex uint64     `json:"consul_index,omitempty"`
}

// Status returns the state of all clusters known from Consul's catalog or
// watched. It starts the catalog watcher if needed (waiting at most
// StartTimeout) but no cluster watcher, and does not keep any alive.
func (s *Server) Status(ctx context.Context) Status {
	st := Status{
		DefaultCluster:     s.cfg.DefaultCluster,
		ServiceNamePattern: s.cfg.ServiceNamePattern,
		StaleAfter:         s.cfg.StaleAfter.String(),
		IdleTimeout:        s.cfg.IdleTimeout.String(),
		Clusters:           []ClusterStatus{},
	}
	byID := map[string]*ClusterStatus{}
	get := func(id string) *ClusterStatus {
		if cs := byID[id]; cs != nil {
			return cs
		}
		cs := &ClusterStatus{Cluster: id, Service: s.pattern.service(id), Default: id == s.cfg.DefaultCluster, State: "not_watched"}
		byID[id] = cs
		return cs
	}
	if cw := s.catalogWatcherNoTouch(); cw != nil {
		s.waitReady(ctx, cw.ready)
		st.Catalog.Watched = true
		st.Catalog.LastContact = nsTime(cw.lastContact.Load())
		st.Catalog.ConsulIndex = cw.index.Load()
		if cv := cw.view.Load(); cv != nil {
			st.Catalog.OK = cv.ok
			st.Catalog.StaleSince = optTime(cv.staleSince)
			st.Catalog.LastError = cv.lastErr
			for id := range cv.clusters {
				get(id).InCatalog = true
			}
		}
	}
	now := time.Now()
	for id, c := range *s.clusters.Load() {
		cs := get(id)
		cs.Watched = true
		cs.LastContact = nsTime(c.lastContact.Load())
		cs.ConsulIndex = c.index.Load()
		v := c.view.Load()
		if v == nil {
			cs.State = "starting"
			continue
		}
		cs.HTTPStatus = v.status
		cs.NameServers = v.list
		cs.Excluded = v.excluded
		if v.status == http.StatusOK {
			cs.List = string(v.body)
		}
		cs.LastChange = optTime(v.changed)
		cs.StaleSince = optTime(v.staleSince)
		cs.LastError = v.lastErr
		switch {
		case !v.ok:
			cs.State = "unavailable"
		case v.status != http.StatusOK:
			cs.State = "no_passing"
		case v.staleSince.IsZero():
			cs.State = "ok"
		case now.Sub(v.staleSince) > s.cfg.StaleAfter:
			cs.State, cs.HTTPStatus = "expired", http.StatusServiceUnavailable
		default:
			cs.State = "stale"
		}
	}
	for _, cs := range byID {
		st.Clusters = append(st.Clusters, *cs)
	}
	sort.Slice(st.Clusters, func(i, j int) bool { return st.Clusters[i].Cluster < st.Clusters[j].Cluster })
	return st
}

// catalogWatcherNoTouch is catalogWatcher for the operators' view: it
// starts the watcher when needed but does not count as use.
func (s *Server) catalogWatcherNoTouch() *catalogWatcher {
	if cw := s.catalog.Load(); cw != nil {
		return cw
	}
	return s.catalogWatcher()
}

func (s *Server) serveClusters(w http.ResponseWriter, r *http.Request) {
	body, err := json.MarshalIndent(s.Status(r.Context()), "", "  ")
	if err != nil {
		s.plain(w, r, routeClusters, http.StatusInternalServerError, "cannot render status\n")
		return
	}
	body = append(body, '\n')
	h := w.Header()
	h["Content-Type"] = s.hdrJSON
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["Cache-Control"] = s.hdrNoStore
	h["X-Content-Type-Options"] = s.hdrNosniff
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
	s.metrics.count(routeClusters, http.StatusOK)
}

func nsTime(ns int64) *time.Time {
	if ns == 0 {
		return nil
	}
	t := time.Unix(0, ns).UTC()
	return &t
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
