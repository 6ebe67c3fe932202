package driver

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// When the image pull outlasts the bind timeout, the rollback of the
// failed start must not run on the bind's (expired) context: the EIP is
// free again and no owner record remains.
func TestHarnessRollbackAfterSlowPull(t *testing.T) {
	dockerImage(t)
	env := newCloudEnv(t)
	// bind_timeout 1s: the bind's context ends after 6s.
	h := newHarness(t, env.pluginConfig(pluginOpts{BindTimeout: "1s"}))
	reg := slowRegistry(t, 8*time.Second)
	slowImage := reg + "/rmqtest/slow:v1"
	rmq := brokerRMQ("eip-a")
	task := newTask(t, slowImage, rmq)
	cleanup := h.MkAllocDir(task, false)
	defer cleanup()

	start := time.Now()
	_, _, err := h.StartTask(task)
	if err == nil {
		t.Fatal("StartTask succeeded pulling from a registry that has no images")
	}
	t.Logf("StartTask failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
	if env.sim.Requests("BindEIP") == 0 {
		t.Fatal("the EIP was never bound: the test does not test the rollback")
	}
	env.requireReleased(t, "eip-a")
}

// slowRegistry is an image registry on loopback (which Docker trusts over
// plain HTTP) that answers every request 404, but only once `delay` has
// passed since it started.
func slowRegistry(t *testing.T, delay time.Duration) string {
	t.Helper()
	until := time.Now().Add(delay)
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(time.Until(until)):
		case <-r.Context().Done():
		case <-done:
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return strings.TrimPrefix(srv.URL, "http://")
}
