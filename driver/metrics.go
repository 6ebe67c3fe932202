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
	// bindings: this client's tasks' bindings by kind and state (ok,
	// drifted, not_owner, unknown) as of the last re-check.
	bindings *prometheus.GaugeVec
	// repairs: drift repaired by the re-check, by kind.
	repairs *prometheus.CounterVec
	// collected: the collector's work, by kind and outcome.
	collected *prometheus.CounterVec
	// desired: what the broker keeper applied (brokerstate.go).
	desired *prometheus.CounterVec
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
	m.bindings = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "rmq_driver", Name: "bindings",
		Help: "Bindings of this client's tasks by kind (eip, backend) and state (ok, not_owner, unknown) at the last re-check.",
	}, []string{"kind", "state"})
	m.repairs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "rmq_driver", Name: "drift_repaired_total",
		Help: "Bindings found changed in the cloud or in Consul and repaired by the periodic re-check, by kind.",
	}, []string{"kind"})
	m.collected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "rmq_driver", Name: "orphans_collected_total",
		Help: "Bindings of gone owners handled by the collector, by kind (eip, backend, cluster) and outcome (collected, error, orphan).",
	}, []string{"kind", "outcome"})
	m.desired = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "rmq_driver", Name: "broker_desired_state_total",
		Help: "Changes the driver made to running brokers to keep their desired state, by action (topic_created, topic_updated, group_created, namesrv_updated, register_nudged, read_only_ended, error).",
	}, []string{"action"})
	m.reg.MustRegister(m.calls, m.duration, m.tasks, m.bindings, m.repairs, m.collected, m.desired, prometheus.NewGoCollector())
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
