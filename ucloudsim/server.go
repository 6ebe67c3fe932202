package ucloudsim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config configures a simulator.
type Config struct {
	// State is the seed account; nil starts from an empty one (then any
	// region and project are accepted, and only keypairs from Keypairs exist).
	State *State
	// Keypairs are accepted in addition to State.Keypairs.
	Keypairs []Keypair
	// Faults is the initial fault configuration.
	Faults Faults
	// Seed seeds every random choice: fault dice and generated ids. Two
	// simulators with the same seed, state and request sequence answer alike.
	// 0 means 1.
	Seed int64
	// Logger receives structured logs; nil discards them.
	Logger hclog.Logger
	// RequestLogLimit is how many requests the request log keeps (the oldest
	// are dropped first); 0 means 10000, negative keeps none.
	RequestLogLimit int
	// MaxHang bounds a timeout fault: a request the client does not abandon
	// is answered HTTP 504 after MaxHang. 0 means 2 minutes.
	MaxHang time.Duration
	// MaxBackendsPerULB is UCloud's quota of backends per classic ULB; 0 means 50.
	MaxBackendsPerULB int
	// Now is the clock for CreateTime fields and for the rate limit's token
	// bucket; nil means time.Now.
	Now func() time.Time
}

// Counter counts the requests of one action (or of the metadata paths, under
// "Metadata").
type Counter struct {
	Requests   int64 `json:"requests"`
	Succeeded  int64 `json:"succeeded"`   // HTTP 200 and RetCode 0
	Failed     int64 `json:"failed"`      // HTTP 200 and RetCode != 0
	HTTPErrors int64 `json:"http_errors"` // HTTP status >= 400
	Timeouts   int64 `json:"timeouts"`    // hung by a timeout fault
	Faults     int64 `json:"faults"`      // hit by any fault rule or throttled
	Throttled  int64 `json:"throttled"`   // refused by the rate limit (RetCode 153)
}

// RequestLogEntry is one request as the simulator saw it. Params never hold a
// signature or a private key: such values read REDACTED.
type RequestLogEntry struct {
	Seq         int64             `json:"seq"`
	Time        time.Time         `json:"time"`
	RequestUUID string            `json:"request_uuid"`
	Action      string            `json:"action"`
	Path        string            `json:"path,omitempty"` // metadata requests
	Region      string            `json:"region,omitempty"`
	ProjectID   string            `json:"project_id,omitempty"`
	PublicKey   string            `json:"public_key,omitempty"`
	Params      map[string]string `json:"params,omitempty"`
	RetCode     int               `json:"ret_code"`
	Message     string            `json:"message,omitempty"`
	HTTPStatus  int               `json:"http_status"` // 0 when the client gave up first
	Fault       string            `json:"fault,omitempty"`
	Duration    time.Duration     `json:"duration_ns"`
}

// Server is a UCloud API simulator. It is safe for concurrent use.
type Server struct {
	logger      hclog.Logger
	now         func() time.Time
	maxHang     time.Duration
	logLimit    int
	maxBackends int
	seedState   *State
	extraKeys   []Keypair
	idSeed      uint64
	handler     http.Handler
	closing     chan struct{}
	closeOnce   sync.Once

	mu         sync.Mutex
	w          *world
	faults     Faults
	ruleStates []ruleState
	bucket     *bucket // nil without Faults.RateLimit
	dice       *rand.Rand
	pending    map[string]*pendingView
	counters   map[string]*Counter
	reqLog     []RequestLogEntry
	seq        int64

	lnMu sync.Mutex
	srv  *http.Server
	url  string
}

// New builds a simulator from its configuration. It does not listen: call
// Start, or mount Handler yourself.
func New(cfg Config) (*Server, error) {
	seedState := cfg.State
	if seedState == nil {
		seedState = &State{}
	}
	seedState = seedState.clone()
	if err := seedState.normalize(); err != nil {
		return nil, fmt.Errorf("seed state: %w", err)
	}
	if err := cfg.Faults.Validate(); err != nil {
		return nil, fmt.Errorf("faults: %w", err)
	}
	seed := uint64(cfg.Seed)
	if cfg.Seed == 0 {
		seed = 1
	}
	s := &Server{
		logger:      cfg.Logger,
		now:         cfg.Now,
		maxHang:     cfg.MaxHang,
		logLimit:    cfg.RequestLogLimit,
		maxBackends: cfg.MaxBackendsPerULB,
		seedState:   seedState,
		extraKeys:   append([]Keypair(nil), cfg.Keypairs...),
		idSeed:      seed,
		closing:     make(chan struct{}),
		dice:        rand.New(rand.NewPCG(seed, 0xfa017)),
		pending:     map[string]*pendingView{},
		counters:    map[string]*Counter{},
	}
	if s.logger == nil {
		s.logger = hclog.NewNullLogger()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxHang <= 0 {
		s.maxHang = 2 * time.Minute
	}
	if s.logLimit == 0 {
		s.logLimit = 10000
	}
	if s.maxBackends <= 0 {
		s.maxBackends = 50
	}
	w, err := newWorld(seedState, s.extraKeys, seed, s.now())
	if err != nil {
		return nil, err
	}
	s.w = w
	s.faults = cfg.Faults.clone()
	s.ruleStates = make([]ruleState, len(s.faults.Rules))
	s.bucket = newBucket(s.faults.RateLimit, s.now())

	mux := http.NewServeMux()
	mux.HandleFunc("/_sim/", s.serveAdmin)
	mux.HandleFunc("/metadata/", s.serveMetadata)
	mux.HandleFunc("/", s.serveAPI)
	s.handler = mux
	return s, nil
}

// Handler serves the UCloud API (any path but the two below), the instance
// metadata (/metadata/<uhost-id>/...) and the admin API (/_sim/...).
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves in the
// background until ctx is done or Close is called.
func (s *Server) Start(ctx context.Context, addr string) error {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if s.srv != nil {
		return errors.New("ucloudsim: already started")
	}
	select {
	case <-s.closing:
		return errors.New("ucloudsim: closed")
	default:
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          s.logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	s.srv = srv
	s.url = "http://" + ln.Addr().String()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("serve failed", "error", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			if err := s.Close(); err != nil {
				s.logger.Warn("close after context end", "error", err)
			}
		case <-s.closing:
		}
	}()
	s.logger.Info("listening", "url", s.url)
	return nil
}

// URL is the base URL to put in the SDK's Config.BaseUrl ("" before Start).
func (s *Server) URL() string {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	return s.url
}

// MetadataURL is what a driver uses instead of http://100.80.80.80 to be the
// given host: {URL}/metadata/<uhostID>.
func (s *Server) MetadataURL(uhostID string) string {
	return s.URL() + "/metadata/" + uhostID
}

// Close stops serving. Requests hung by a timeout fault are released.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closing)
		s.lnMu.Lock()
		srv := s.srv
		s.lnMu.Unlock()
		if srv == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if e := srv.Shutdown(ctx); e != nil {
			err = fmt.Errorf("shutdown: %w", errors.Join(e, srv.Close()))
		}
	})
	return err
}

// Snapshot returns a deep copy of the account, with derived fields (host
// IPSet, EIP Status, backend PrivateIP) filled in and no private keys. It
// shows the true state, never a pending (stale) view.
func (s *Server) Snapshot() StateSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.w.snapshot()
}

// SetFaults replaces the fault configuration and restarts the rules' Skip
// and Count bookkeeping; a rate limit starts with a full bucket. Pending
// views already recorded are kept.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f.clone()
	s.ruleStates = make([]ruleState, len(f.Rules))
	s.bucket = newBucket(s.faults.RateLimit, s.now())
	if f.PendingDescribes == 0 {
		clear(s.pending)
	}
	rate := 0.0
	if f.RateLimit != nil {
		rate = f.RateLimit.CallsPerSecond
	}
	s.logger.Info("faults set", "rules", len(f.Rules), "pending_describes", f.PendingDescribes, "rate_limit", rate)
	return nil
}

// Faults returns the current fault configuration.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.clone()
}

// Counters returns the per-action counters ("Metadata" for metadata paths).
func (s *Server) Counters() map[string]Counter {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Counter, len(s.counters))
	for k, v := range s.counters {
		out[k] = *v
	}
	return out
}

// Requests returns the request log, oldest first.
func (s *Server) Requests() []RequestLogEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RequestLogEntry, len(s.reqLog))
	for i, e := range s.reqLog {
		e.Params = cloneParams(e.Params)
		out[i] = e
	}
	return out
}

// ResetStats clears the counters and the request log.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counters)
	s.reqLog = nil
}

// Reset puts the account back to its seed, clears pending views, counters and
// the request log, and restarts the fault rules' bookkeeping, the rate
// limit's bucket (full) and the random sequences. The fault configuration
// itself is kept.
func (s *Server) Reset() error {
	w, err := newWorld(s.seedState, s.extraKeys, s.idSeed, s.now())
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.w = w
	s.dice = rand.New(rand.NewPCG(s.idSeed, 0xfa017))
	s.ruleStates = make([]ruleState, len(s.faults.Rules))
	s.bucket = newBucket(s.faults.RateLimit, s.now())
	clear(s.pending)
	clear(s.counters)
	s.reqLog = nil
	s.logger.Info("state reset to seed")
	return nil
}

// counter returns the counter of an action. Server.mu is held.
func (s *Server) counter(action string) *Counter {
	c := s.counters[action]
	if c == nil {
		c = &Counter{}
		s.counters[action] = c
	}
	return c
}

// record counts and logs a finished request. Server.mu is held.
func (s *Server) record(e RequestLogEntry, hit, throttled, timedOut bool) {
	name := e.Action
	if name == "" {
		name = "(none)"
	}
	c := s.counter(name)
	c.Requests++
	switch {
	case timedOut:
		c.Timeouts++
	case e.HTTPStatus >= 400:
		c.HTTPErrors++
	case e.RetCode != 0:
		c.Failed++
	default:
		c.Succeeded++
	}
	if hit || throttled {
		c.Faults++
	}
	if throttled {
		c.Throttled++
	}
	if s.logLimit < 0 {
		return
	}
	s.reqLog = append(s.reqLog, e)
	if over := len(s.reqLog) - s.logLimit; over > 0 {
		s.reqLog = append(s.reqLog[:0:0], s.reqLog[over:]...)
	}
}

// nextSeq numbers a request. Server.mu is held.
func (s *Server) nextSeq() (int64, string) {
	s.seq++
	return s.seq, fmt.Sprintf("00000000-0000-4000-8000-%012d", s.seq)
}

// sleep waits d, or less if the request or the server ends first.
func (s *Server) sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-s.closing:
	}
}

// hang holds a request hit by a timeout fault until the client gives up
// (true), or answers 504 after MaxHang or at Close (false).
func (s *Server) hang(ctx context.Context, w http.ResponseWriter) bool {
	t := time.NewTimer(s.maxHang)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return true
	case <-t.C:
	case <-s.closing:
	}
	http.Error(w, "504 Gateway Time-out", http.StatusGatewayTimeout)
	return false
}
