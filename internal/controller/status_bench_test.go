package controller

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BenchmarkCertificateMetricsScrape is one scrape of the certificate series of 100,000 resources (issue
// #20's largest run), gathered the way the metrics endpoint gathers them; B/op is what a scrape allocates.
func BenchmarkCertificateMetricsScrape(b *testing.B) {
	m := &certificateMetrics{byResource: map[resourceKey]certificateState{}}
	expiry := time.Now().Add(365 * 24 * time.Hour).Unix()
	for i := range 100_000 {
		key := resourceKey{"UserPfxCertificate", fmt.Sprintf("team-%d", i%50), fmt.Sprintf("user-%06d", i)}
		m.byResource[key] = certificateState{ready: metav1.ConditionTrue, expiry: expiry}
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(m)
	b.ReportAllocs()
	for b.Loop() {
		families, err := registry.Gather()
		if err != nil {
			b.Fatal(err)
		}
		if n := len(families[0].Metric) + len(families[1].Metric); n != 400_000 {
			b.Fatalf("%d series", n)
		}
	}
}
