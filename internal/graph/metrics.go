package graph

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Label values are fixed operation names and status codes only: ids and UPNs would make the
// series unbounded and leak who has certificates.
// labelOperation names the Graph call (e.g. "userPfxCertificates.get") on every metric.
const labelOperation = "operation"

var (
	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "intune_graph_requests_total",
		Help: "Graph HTTP requests by operation and status code (\"error\" when no answer came).",
	}, []string{labelOperation, "code"})
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "intune_graph_request_duration_seconds",
		Help:    "Duration of Graph HTTP requests, one observation per attempt.",
		Buckets: prometheus.ExponentialBuckets(0.025, 2, 10),
	}, []string{labelOperation})
	throttledTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "intune_graph_throttled_total",
		Help: "Graph answers with status 429.",
	}, []string{labelOperation})
	retriesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "intune_graph_retries_total",
		Help: "Graph requests sent again after a throttled, transient or network failure.",
	}, []string{labelOperation})
)

func init() {
	metrics.Registry.MustRegister(requestsTotal, requestDuration, throttledTotal, retriesTotal)
}
