package driver

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the plugin's Prometheus metrics, on their own registry.
type metrics struct {
	reg      *prometheus.Registry
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	tasks    *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rmq_driver", Name: "cloud_actions_total",
			Help: "Cloud binding actions (bind_eip, unbind_eip, register_backend, ...) by outcome.",
		}, []string{"action", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "rmq_driver", Name: "cloud_action_duration_seconds",
			Help:    "Duration of cloud binding actions, retries included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"action", "outcome"}),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "rmq_driver", Name: "task_starts_total",
			Help: "Task starts by role and outcome.",
		}, []string{"role", "outcome"}),
	}
	m.reg.MustRegister(m.calls, m.duration, m.tasks, prometheus.NewGoCollector())
	return m
}

// Observe records one cloud action; it is the binders' metrics hook.
func (m *metrics) Observe(action, outcome string, d time.Duration) {
	m.calls.WithLabelValues(action, outcome).Inc()
	m.duration.WithLabelValues(action, outcome).Observe(d.Seconds())
}

// serve serves /metrics on addr until ctx is done.
func (m *metrics) serve(ctx context.Context, logger hclog.Logger, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("metrics server stopped", "addr", addr, "error", err)
		}
	}()
	logger.Info("serving metrics", "addr", ln.Addr().String())
	return nil
}
