package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

// setReady sets the Ready condition and reports whether it changed (reason, status or message).
func setReady(conditions *[]metav1.Condition, generation int64, ready bool, reason, message string) bool {
	status := metav1.ConditionFalse
	if ready {
		status = metav1.ConditionTrue
	}
	before := meta.FindStatusCondition(*conditions, intunev1alpha1.ConditionReady)
	changed := before == nil || before.Status != status || before.Reason != reason || before.Message != message
	meta.SetStatusCondition(conditions, metav1.Condition{
		Type: intunev1alpha1.ConditionReady, Status: status, Reason: reason, Message: message, ObservedGeneration: generation,
	})
	return changed
}

// Metrics in the style of cert-manager's certmanager_certificate_* series.
var (
	certificateExpiration = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "intune_certificate_expiration_timestamp_seconds",
		Help: "The notAfter of the certificate a resource keeps in Intune, as a Unix timestamp.",
	}, []string{"kind", "namespace", "name"})
	certificateReady = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "intune_certificate_ready_status",
		Help: "The Ready condition of a resource: 1 for the condition status it has, 0 for the others.",
	}, []string{"kind", "namespace", "name", "condition"})
)

func init() {
	metrics.Registry.MustRegister(certificateExpiration, certificateReady)
}

// recordMetrics publishes a resource's Ready status and, when known, its certificate's expiry.
func recordMetrics(kind, namespace, name string, conditions []metav1.Condition, expiry *metav1.Time) {
	status := string(metav1.ConditionUnknown)
	if c := meta.FindStatusCondition(conditions, intunev1alpha1.ConditionReady); c != nil {
		status = string(c.Status)
	}
	for _, s := range []string{string(metav1.ConditionTrue), string(metav1.ConditionFalse), string(metav1.ConditionUnknown)} {
		v := 0.0
		if s == status {
			v = 1
		}
		certificateReady.WithLabelValues(kind, namespace, name, s).Set(v)
	}
	if expiry != nil {
		certificateExpiration.WithLabelValues(kind, namespace, name).Set(float64(expiry.Unix()))
	}
}

// forgetMetrics drops a deleted resource's series.
func forgetMetrics(kind, namespace, name string) {
	certificateExpiration.DeleteLabelValues(kind, namespace, name)
	for _, s := range []string{string(metav1.ConditionTrue), string(metav1.ConditionFalse), string(metav1.ConditionUnknown)} {
		certificateReady.DeleteLabelValues(kind, namespace, name, s)
	}
}
