package nsaddr

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/rmqnomad/rocketmq-nomad-driver/testutil"
)

// TestGoClientResolvesThroughEndpoint points the real rocketmq-client-go
// HTTP resolver at the endpoint. The resolver's snapshot files go to the
// real home directory (see testutil.GoResolverSnapshot) and are removed.
func TestGoClientResolvesThroughEndpoint(t *testing.T) {
	rlog.SetLogLevel("error")
	e := startEnv(t, nil)
	e.register("A", "a1", "10.0.0.1", 9876)
	e.register("A", "a2", "10.0.0.2", 9876)
	e.register("A", "a3", "[::1]", 1) // brackets: not a bare IP address, left out
	e.register("B", "b1", "10.1.0.1", 9876)
	e.eventuallyList("/rocketmq/A", "10.0.0.1:9876;10.0.0.2:9876")

	for _, tc := range []struct {
		name, url string
		want      []string
	}{
		{"cluster A", e.base + "/rocketmq/A", []string{"10.0.0.1:9876", "10.0.0.2:9876"}},
		{"cluster B", e.base + "/rocketmq/B", []string{"10.1.0.1:9876"}},
		{"default subgroup", e.base + "/rocketmq/nsaddr", []string{"10.0.0.1:9876", "10.0.0.2:9876"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.GoResolverSnapshot(t, tc.url)
			r := primitive.NewHttpResolver("nsaddr-test", tc.url)
			got := r.Resolve()
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Resolve() = %q, want %q (endpoint: %s)", got, tc.want, e.get(strings.TrimPrefix(tc.url, e.base)))
			}
			// The client's own validation of what it resolved.
			if err := primitive.NamesrvAddr(got).Check(); err != nil {
				t.Errorf("client rejects %q: %v", got, err)
			}
			// A producer built on the resolver accepts the list (it
			// resolves and validates at construction; not started). The
			// client keeps instances in a process-wide map: the name is
			// unique to this server so `go test -count=N` does not meet
			// the previous run's instance.
			name := "nsaddr-test-" + strings.ReplaceAll(tc.name, " ", "-") + "-" + strings.ReplaceAll(strings.TrimPrefix(e.base, "http://"), ":", "-")
			p, err := producer.NewDefaultProducer(
				producer.WithNsResolver(r),
				producer.WithGroupName(name),
				producer.WithInstanceName(name),
			)
			if err != nil || p == nil {
				t.Errorf("NewDefaultProducer with the resolver: %v", err)
			} else {
				t.Cleanup(func() { _ = p.Shutdown() })
			}
		})
	}

	t.Run("follows changes", func(t *testing.T) {
		url := e.base + "/rocketmq/A"
		testutil.GoResolverSnapshot(t, url)
		r := primitive.NewHttpResolver("nsaddr-test", url)
		deregister(t, e.consul.Client, "a1")
		// Resolve falls back to its snapshot on a non-200 answer, so
		// seeing the new list proves it came from the endpoint.
		want := []string{"10.0.0.2:9876"}
		deadline := time.Now().Add(converge)
		for got := r.Resolve(); !slices.Equal(got, want); got = r.Resolve() {
			if time.Now().After(deadline) {
				t.Fatalf("Resolve() = %q, want %q", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
