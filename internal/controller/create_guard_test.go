package controller

import (
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

func TestCreateSettlingWaitsOnlyWhileAMarkIsYoung(t *testing.T) {
	r := &kindReconciler[*intunev1alpha1.ManagedDeviceCertificateState]{resourceDeps: resourceDeps{CreateSettle: 2 * time.Minute}}
	started := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	mark := &metav1.Time{Time: started}
	tests := []struct {
		name      string
		mark      *metav1.Time
		now       time.Time
		wait      bool
		retryWant time.Duration
	}{
		{"no create pending", nil, started, false, 0},
		{"just marked", mark, started, true, 15 * time.Second},
		{"near the end: look again at its end", mark, started.Add(2*time.Minute - 4*time.Second), true, 4 * time.Second},
		{"settled: nothing was made", mark, started.Add(2 * time.Minute), false, 0},
		{"long ago", mark, started.Add(time.Hour), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.createSettling(tt.mark, tt.now)
			if (err != nil) != tt.wait {
				t.Fatalf("createSettling = %v, want waiting %v", err, tt.wait)
			}
			var c *conditionError
			if err != nil && (!errors.As(err, &c) || c.reason != intunev1alpha1.ReasonProgressing || c.terminal || c.retryAfter != tt.retryWant) {
				t.Errorf("%+v, want Progressing, not terminal, again in %s", err, tt.retryWant)
			}
		})
	}
}
