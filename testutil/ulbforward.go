package testutil

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ULBForwarder stands in for a load balancer's data plane in tests: the
// UCloud simulator keeps VServers and their backends but carries no
// traffic. Each accepted connection goes to the next of the backends
// Backends returns at that moment (round robin), so what clients reach is
// exactly what is registered with the VServer. Like a ULB's port health
// check, a backend that refuses the connection (a process not listening
// yet, or gone) is skipped for the next one; with no backend accepting,
// the connection is closed at once.
type ULBForwarder struct {
	Addr     string // 127.0.0.1:PORT, the stable address clients dial
	backends func() []string
	ln       net.Listener
	next     atomic.Uint64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

// StartULBForwarder listens on a free loopback port until the test ends.
// backends returns the reachable host:port of each live backend.
func StartULBForwarder(t testing.TB, backends func() []string) *ULBForwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &ULBForwarder{Addr: ln.Addr().String(), backends: backends, ln: ln, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(f.Close)
	return f
}

func (f *ULBForwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go f.forward(c)
	}
}

func (f *ULBForwarder) track(c net.Conn, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if on {
		f.conns[c] = struct{}{}
	} else {
		delete(f.conns, c)
	}
}

func (f *ULBForwarder) forward(c net.Conn) {
	defer f.wg.Done()
	defer c.Close()
	list := f.backends()
	if len(list) == 0 {
		return
	}
	first := int(f.next.Add(1) - 1)
	var b net.Conn
	for i := range list {
		var err error
		if b, err = net.DialTimeout("tcp", list[(first+i)%len(list)], 3*time.Second); err == nil {
			break
		}
	}
	if b == nil {
		return
	}
	defer b.Close()
	f.track(c, true)
	f.track(b, true)
	defer f.track(c, false)
	defer f.track(b, false)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(b, c)
	go pipe(c, b)
	<-done
	<-done
}

// Close stops listening and cuts every forwarded connection.
func (f *ULBForwarder) Close() {
	_ = f.ln.Close()
	f.mu.Lock()
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
