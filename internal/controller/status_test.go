package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

// The certificate series as Prometheus scrapes them: one Ready series per condition status, the expiry once
// known (and kept when a later pass does not know it), nothing left after a resource is forgotten.
func TestCertificateMetrics(t *testing.T) {
	ready := func(s metav1.ConditionStatus) []metav1.Condition {
		return []metav1.Condition{{Type: intunev1alpha1.ConditionReady, Status: s}}
	}
	expiry := metav1.NewTime(time.Unix(1893456000, 0))
	recordMetrics("Metrics", "ns-a", "pending", nil, nil)
	recordMetrics("Metrics", "ns-a", "alice", ready(metav1.ConditionTrue), &expiry)
	recordMetrics("Metrics", "ns-a", "alice", ready(metav1.ConditionFalse), nil)
	recordMetrics("Metrics", "ns-b", "gone", ready(metav1.ConditionTrue), &expiry)
	forgetMetrics("Metrics", "ns-b", "gone")

	want := `
# HELP intune_certificate_expiration_timestamp_seconds The notAfter of the certificate a resource keeps in Intune, as a Unix timestamp.
# TYPE intune_certificate_expiration_timestamp_seconds gauge
intune_certificate_expiration_timestamp_seconds{kind="Metrics",name="alice",namespace="ns-a"} 1.893456e+09
# HELP intune_certificate_ready_status The Ready condition of a resource: 1 for the condition status it has, 0 for the others.
# TYPE intune_certificate_ready_status gauge
intune_certificate_ready_status{condition="False",kind="Metrics",name="alice",namespace="ns-a"} 1
intune_certificate_ready_status{condition="True",kind="Metrics",name="alice",namespace="ns-a"} 0
intune_certificate_ready_status{condition="Unknown",kind="Metrics",name="alice",namespace="ns-a"} 0
intune_certificate_ready_status{condition="False",kind="Metrics",name="pending",namespace="ns-a"} 0
intune_certificate_ready_status{condition="True",kind="Metrics",name="pending",namespace="ns-a"} 0
intune_certificate_ready_status{condition="Unknown",kind="Metrics",name="pending",namespace="ns-a"} 1
`
	// Other tests of the package record their own resources; compare this test's kind only.
	only := &certificateMetrics{byResource: map[resourceKey]certificateState{}}
	certificates.mu.RLock()
	for k, s := range certificates.byResource {
		if k.kind == "Metrics" {
			only.byResource[k] = s
		}
	}
	certificates.mu.RUnlock()
	if err := testutil.CollectAndCompare(only, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(only); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	forgetMetrics("Metrics", "ns-a", "alice")
	forgetMetrics("Metrics", "ns-a", "pending")
}
