package nsaddr

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Handler-level cost of an answer, without the network: the endpoint's hot
// path against the seed's constant-string handler. The end-to-end
// comparison is bench/nsaddr (make bench).

// discardRW is a ResponseWriter that keeps only how much was written.
type discardRW struct {
	h http.Header
	n int
}

func (d *discardRW) Header() http.Header         { return d.h }
func (d *discardRW) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }
func (d *discardRW) WriteHeader(int)             {}

func BenchmarkHandlerList(b *testing.B) {
	srv, _ := New(nil, Config{DefaultCluster: "A", Consul: ConsulConfig{Address: "127.0.0.1:1"}})
	defer srv.Close()
	seedCluster(srv, "A", "10.0.0.1:9876;10.0.0.2:9876;10.0.0.3:9876")
	r := httptest.NewRequest("GET", "/rocketmq/nsaddr", nil)
	w := &discardRW{h: http.Header{}}
	srv.ServeHTTP(w, r)
	if w.n == 0 {
		b.Fatal("no answer")
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardRW{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			srv.ServeHTTP(w, r)
		}
	})
}

func BenchmarkHandlerConstant(b *testing.B) {
	h := func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "10.0.0.1:9876;10.0.0.2:9876;10.0.0.3:9876")
	}
	r := httptest.NewRequest("GET", "/rocketmq/nsaddr", nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardRW{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			h(w, r)
		}
	})
}
