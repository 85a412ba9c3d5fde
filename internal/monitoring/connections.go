// Package monitoring exports what the controllers' own series do not: the Ready condition of every
// GraphConnection and ClusterGraphConnection, read from the manager's cache (which keeps connections whole)
// each time /metrics is scraped. The alerts in config/prometheus use it; a resource's own Ready condition is
// intune_certificate_ready_status, which its reconcile publishes.
package monitoring

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

// ConnectionReadyName is the series a connection's Ready condition is exported as.
const ConnectionReadyName = "intune_connection_ready_status"

var connectionReadyDesc = prometheus.NewDesc(ConnectionReadyName,
	"The Ready condition of a GraphConnection or ClusterGraphConnection: 1 for the condition status it has, 0 for the others.",
	[]string{"kind", "namespace", "name", "condition"}, nil)

var conditionStatuses = []metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown}

// listTimeout bounds a scrape's reads of the cache (which wait while it has not synced yet).
const listTimeout = 5 * time.Second

// ConnectionCollector renders intune_connection_ready_status from a cache reader when scraped.
type ConnectionCollector struct {
	Reader client.Reader
}

// NewConnectionCollector collects from reader, the manager's cache (mgr.GetCache()).
func NewConnectionCollector(reader client.Reader) *ConnectionCollector {
	return &ConnectionCollector{Reader: reader}
}

func (c *ConnectionCollector) Describe(ch chan<- *prometheus.Desc) { ch <- connectionReadyDesc }

func (c *ConnectionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), listTimeout)
	defer cancel()
	emit := func(kind, namespace, name string, conditions []metav1.Condition) {
		status := metav1.ConditionUnknown
		if ready := meta.FindStatusCondition(conditions, intunev1alpha1.ConditionReady); ready != nil {
			status = ready.Status
		}
		for _, s := range conditionStatuses {
			v := 0.0
			if s == status {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(connectionReadyDesc, prometheus.GaugeValue, v, kind, namespace, name, string(s))
		}
	}
	// A failed list (cache not synced within the timeout) leaves that kind out of this scrape: absent series,
	// not a false "not Ready".
	var namespaced intunev1alpha1.GraphConnectionList
	if err := c.Reader.List(ctx, &namespaced, client.UnsafeDisableDeepCopy); err == nil {
		for i := range namespaced.Items {
			conn := &namespaced.Items[i]
			emit("GraphConnection", conn.Namespace, conn.Name, conn.Status.Conditions)
		}
	}
	var cluster intunev1alpha1.ClusterGraphConnectionList
	if err := c.Reader.List(ctx, &cluster, client.UnsafeDisableDeepCopy); err == nil {
		for i := range cluster.Items {
			conn := &cluster.Items[i]
			emit("ClusterGraphConnection", "", conn.Name, conn.Status.Conditions)
		}
	}
}
