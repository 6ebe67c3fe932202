package nsaddr

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Routes, for the request counter's "route" label.
const (
	routeRocketMQ = iota
	routeHealthz
	routeMetrics
	routeClusters
	routeOther
	numRoutes
)

func routeName(route int) string {
	switch route {
	case routeRocketMQ:
		return "rocketmq"
	case routeHealthz:
		return "healthz"
	case routeMetrics:
		return "metrics"
	case routeClusters:
		return "clusters"
	default:
		return "other"
	}
}

// The status codes the handler answers with; their counters are resolved
// once, so counting a request is one atomic add.
const numCodes = 7

func codeIndex(code int) int {
	switch code {
	case 200:
		return 0
	case 400:
		return 1
	case 404:
		return 2
	case 405:
		return 3
	case 413:
		return 4
	case 500:
		return 5
	case 503:
		return 6
	}
	return -1
}

// metrics are one Server's Prometheus metrics, in the Server's own registry.
type metrics struct {
	reg *prometheus.Registry

	requests   *prometheus.CounterVec
	fast       [numRoutes][numCodes]prometheus.Counter
	watchers   prometheus.Gauge
	consulReqs *prometheus.CounterVec

	nameServers *prometheus.GaugeVec
	excluded    *prometheus.GaugeVec
	stale       *prometheus.GaugeVec
	lastChange  *prometheus.GaugeVec
	changes     *prometheus.CounterVec
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nsaddr_http_requests_total",
			Help: "HTTP requests answered, by route and status code.",
		}, []string{"route", "code"}),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nsaddr_watchers",
			Help: "Clusters whose NameServer service is being watched in Consul.",
		}),
		consulReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nsaddr_consul_queries_total",
			Help: "Consul queries (blocking health and catalog queries), by kind and result.",
		}, []string{"query", "result"}),
		nameServers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nsaddr_cluster_nameservers",
			Help: "NameServer addresses served for a watched cluster.",
		}, []string{"cluster"}),
		excluded: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nsaddr_cluster_excluded_instances",
			Help: "Passing NameServer instances left out of a cluster's list (not an IP address, IPv6, bad port).",
		}, []string{"cluster"}),
		stale: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nsaddr_cluster_stale",
			Help: "1 while a cluster's list is served from the last known good state because Consul is unreachable.",
		}, []string{"cluster"}),
		lastChange: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nsaddr_cluster_last_change_timestamp_seconds",
			Help: "When a cluster's served list last changed (Unix time).",
		}, []string{"cluster"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nsaddr_cluster_list_changes_total",
			Help: "Changes of a cluster's served list.",
		}, []string{"cluster"}),
	}
	reg.MustRegister(m.requests, m.watchers, m.consulReqs, m.nameServers, m.excluded, m.stale, m.lastChange, m.changes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for r := range numRoutes {
		for _, code := range []int{200, 400, 404, 405, 413, 500, 503} {
			m.fast[r][codeIndex(code)] = m.requests.WithLabelValues(routeName(r), strconv.Itoa(code))
		}
	}
	return m
}

// count records one answered request.
func (m *metrics) count(route, code int) {
	if i := codeIndex(code); i >= 0 {
		m.fast[route][i].Inc()
		return
	}
	m.requests.WithLabelValues(routeName(route), strconv.Itoa(code)).Inc()
}

// forget drops a cluster's series when its watcher stops.
func (m *metrics) forget(cluster string) {
	m.nameServers.DeleteLabelValues(cluster)
	m.excluded.DeleteLabelValues(cluster)
	m.stale.DeleteLabelValues(cluster)
	m.lastChange.DeleteLabelValues(cluster)
	m.changes.DeleteLabelValues(cluster)
}
