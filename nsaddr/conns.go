package nsaddr

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// connTracker bounds how long a client may hold a connection, without the
// per-request deadline bookkeeping of http.Server's own timeouts (three
// timer updates and two clock reads per request, about 10% of the
// endpoint's throughput). http.Server tells it each connection's state
// through ConnState; one sweeper goroutine, which also keeps a coarse clock,
// closes connections that overstay:
//
//   - waiting for a request header (after accept, or after the previous
//     answer: net/http reports both as not active) for longer than
//     headerTimeout: silent, slow or idle clients;
//   - active (header read, answer not yet fully written) for longer than
//     activeTimeout: clients that do not read their answers.
//
// A limit is enforced to within one sweep interval (a tenth of the shorter
// limit, at least 10 ms).
type connTracker struct {
	headerTimeout time.Duration
	activeTimeout time.Duration
	every         time.Duration

	clock atomic.Int64 // coarse Unix ns, advanced by the sweeper

	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func newConnTracker(headerTimeout, activeTimeout time.Duration) *connTracker {
	t := &connTracker{
		headerTimeout: headerTimeout,
		activeTimeout: activeTimeout,
		every:         max(min(headerTimeout, activeTimeout)/10, 10*time.Millisecond),
		conns:         map[*trackedConn]struct{}{},
	}
	t.clock.Store(time.Now().UnixNano())
	return t
}

// trackedConn is an accepted connection with its state: the coarse time of
// its last state change shifted left by one, the low bit set while active.
// One word, so the sweeper never sees a state with another state's time.
type trackedConn struct {
	net.Conn
	state atomic.Int64
}

// CloseWrite lets net/http half-close TCP connections as it does unwrapped.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

type trackingListener struct {
	net.Listener
	t *connTracker
}

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c}
	tc.state.Store(l.t.clock.Load() << 1)
	l.t.mu.Lock()
	l.t.conns[tc] = struct{}{}
	l.t.mu.Unlock()
	return tc, nil
}

// connState is the http.Server ConnState hook: two calls per request, each
// one atomic store.
func (t *connTracker) connState(c net.Conn, st http.ConnState) {
	tc, ok := c.(*trackedConn)
	if !ok {
		return
	}
	switch st {
	case http.StateActive:
		tc.state.Store(t.clock.Load()<<1 | 1)
	case http.StateIdle:
		tc.state.Store(t.clock.Load() << 1)
	case http.StateClosed, http.StateHijacked:
		t.mu.Lock()
		delete(t.conns, tc)
		t.mu.Unlock()
	}
}

// run advances the clock and sweeps until ctx is done.
func (t *connTracker) run(ctx context.Context) {
	tick := time.NewTicker(t.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			ns := now.UnixNano()
			t.clock.Store(ns)
			t.sweep(ns)
		}
	}
}

// sweep closes the connections past their limit.
func (t *connTracker) sweep(now int64) {
	var expired []*trackedConn
	t.mu.Lock()
	for tc := range t.conns {
		st := tc.state.Load()
		limit := t.headerTimeout
		if st&1 == 1 {
			limit = t.activeTimeout
		}
		if now-st>>1 > int64(limit) {
			expired = append(expired, tc)
			delete(t.conns, tc)
		}
	}
	t.mu.Unlock()
	for _, tc := range expired {
		_ = tc.Conn.Close()
	}
}
