package main

import (
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/certops/intune-cert-operator/test/graphsim"
	"github.com/certops/intune-cert-operator/test/stack"
)

func TestQuantileInterpolatesInsideTheBucketLikeHistogramQuantile(t *testing.T) {
	// 10 observations: 4 in (0, 0.1], 4 in (0.1, 0.5], 2 in (0.5, 1].
	h := histogram{count: 10, bounds: []float64{0.1, 0.5, 1, math.Inf(1)}, cum: []uint64{4, 8, 10, 10}}
	for _, c := range []struct{ q, want float64 }{
		{0.2, 0.05},   // rank 2 of the 4 in the first bucket: halfway to 0.1
		{0.5, 0.2},    // rank 5: first of 4 in (0.1, 0.5]
		{0.99, 0.975}, // rank 9.9: (9.9-8)/2 = 0.95 of the way through (0.5, 1]
	} {
		if got := h.quantile(c.q); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
}

func TestSinceSubtractsTheEarlierScrape(t *testing.T) {
	before := histogram{count: 3, bounds: []float64{1, math.Inf(1)}, cum: []uint64{3, 3}}
	after := histogram{count: 5, bounds: []float64{1, math.Inf(1)}, cum: []uint64{3, 5}}
	d := after.since(before)
	if d.count != 2 || d.cum[0] != 0 || d.cum[1] != 2 {
		t.Fatalf("since = %+v, want 2 observations, both above 1", d)
	}
}

func TestAttributeReadsChargesEachReadToThePassThatMadeIt(t *testing.T) {
	base := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return base.Add(time.Duration(s * float64(time.Second))) }
	st := &observed{recordIDs: map[string]bool{"aa-11": true}, upn: "u@contoso.com",
		passes: []time.Time{at(0), at(10), at(20), at(30)}}
	tr := &tracker{objects: map[string]*observed{"ns/a": st}}
	get := func(s float64, path string) graphsim.Entry {
		return graphsim.Entry{Time: at(s), Method: "GET", Path: path}
	}
	entries := []graphsim.Entry{
		get(0.2, "/beta/deviceManagement/userPfxCertificates/aa-11"),  // pass 0: before the window
		get(10.1, "/beta/deviceManagement/userPfxCertificates/aa-11"), // pass 10
		get(20.1, "/beta/users/u%40contoso.com?$select=id"),           // pass 20, twice
		get(20.2, "/beta/deviceManagement/userPfxCertificates/AA-11"),
		get(30.1, "/beta/deviceManagement/userPfxCertificates/aa-11"), // pass 30: after the window
		get(15, "/beta/deviceManagement/userPfxCertificates/zz-99"),   // nobody's
		{Time: at(15), Method: "POST", Path: "/beta/deviceManagement/userPfxCertificates"},
	}
	got := tr.attributeReads(entries, at(5), at(25))
	if got.Passes != 2 || got.Reads != 3 || got.MaxPerPass != 2 || got.Unattributed != 1 || len(got.Extra) != 1 {
		t.Fatalf("attributeReads = %+v, want 2 passes, 3 reads, at most 2 in one pass, 1 read of nobody", got)
	}
}

func TestOperationNamesGraphRequestsWithoutIds(t *testing.T) {
	counts := countJournal([]graphsim.Entry{
		{Method: "GET", Path: "/beta/users/a%40contoso.com?$select=id", Status: 200},
		{Method: "POST", Path: "/beta/deviceManagement/userPfxCertificates", Status: 429},
		{Method: "GET", Path: "/beta/deviceManagement/userPfxCertificates?$top=1&$select=id", Status: 200},
		{Method: "DELETE", Path: "/beta/deviceManagement/userPfxCertificates/x-1", Status: 204},
		{Method: "POST", Path: "/tenant/oauth2/v2.0/token", Status: 200},
	})
	want := map[string]int{"GET users/{upn}": 1, "POST userPfxCertificates": 1, "DELETE userPfxCertificates/{id}": 1,
		"GET userPfxCertificates?$top=1 (connection check)": 1}
	for op, n := range want {
		if counts.ByOperation[op] != n {
			t.Errorf("%s counted %d times, want %d (all: %v)", op, counts.ByOperation[op], n, counts.ByOperation)
		}
	}
	if counts.Requests != 4 || counts.Writes != 2 || counts.Throttled != 1 || counts.SignIn != 1 || counts.CertificateReads != 1 {
		t.Errorf("counts = %+v, want 4 Graph requests, 2 writes, 1 throttled, 1 sign-in, 1 certificate read", counts)
	}
}

func TestResyncRequestCountsTheResourcesKindsButNotTheConnectionsOrCaches(t *testing.T) {
	for op, want := range map[string]bool{
		"GET userpfxcertificates (intune.certops.dev)":          true,
		"PATCH userpfxcertificates/status (intune.certops.dev)": true,
		"GET secrets": true,
		"POST events": true,
		"GET clustergraphconnections (intune.certops.dev)":          false,
		"PATCH clustergraphconnections/status (intune.certops.dev)": false,
		"WATCH userpfxcertificates (intune.certops.dev)":            false,
		"LIST secrets":  false,
		"PUT leases":    false,
		"GET endpoints": false,
	} {
		if got := resyncRequest(op); got != want {
			t.Errorf("resyncRequest(%q) = %t, want %t", op, got, want)
		}
	}
}

func TestMetricsTimeoutGrowsWithTheCluster(t *testing.T) {
	for n, want := range map[int]time.Duration{0: 30 * time.Second, 999: 30 * time.Second, 10000: 50 * time.Second, 100000: 230 * time.Second} {
		if got := metricsTimeout(n); got != want {
			t.Errorf("metricsTimeout(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestScrapeMetricsAsksTheOperatorForTheBenchFamiliesOnly(t *testing.T) {
	// The operator's handler: promhttp over a registry with a family the benchmark reads and per-certificate
	// series it does not.
	reg := prometheus.NewRegistry()
	heap := prometheus.NewGauge(prometheus.GaugeOpts{Name: "go_memstats_heap_inuse_bytes"})
	heap.Set(1 << 20)
	perCert := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "certificate_expiry_seconds"}, []string{"name"})
	for _, name := range []string{"a", "b", "c"} {
		perCert.WithLabelValues(name).Set(1)
	}
	reg.MustRegister(heap, perCert)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	families, err := stack.ScrapeMetrics(srv.URL+"/metrics", 10*time.Second, benchFamilies...)
	if err != nil {
		t.Fatal(err)
	}
	if gauge(families, "go_memstats_heap_inuse_bytes") != 1<<20 || families["certificate_expiry_seconds"] != nil {
		t.Fatalf("scraped %d families, want go_memstats_heap_inuse_bytes alone", len(families))
	}
}

func TestScrapeMetricsGivesUpAtItsTimeout(t *testing.T) {
	// An operator too busy to finish its response: headers sent, the body never ends.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("# TYPE go_memstats_heap_inuse_bytes gauge\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	start := time.Now()
	if _, err := stack.ScrapeMetrics(srv.URL, 200*time.Millisecond, benchFamilies...); err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("ScrapeMetrics = %v, want the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("ScrapeMetrics took %s with a 200 ms timeout", d)
	}
}

func TestAFailedScrapeIsReportedAsNotObtainedAndMeetsNoTarget(t *testing.T) {
	failed := errors.New("parsing the operator's metrics: context deadline exceeded")
	before := snapshot{reconcile: histogram{count: 1, bounds: []float64{1}, cum: []uint64{1}}, kube: map[string]float64{"GET": 1}}
	after := snapshot{metricsErr: failed}
	u, rec := usageSince(before, after), reconcileSince(before, after)
	if u.MetricsNotObtained == "" || u.KubeRequests != nil || rec.NotObtained == "" || rec.Count != 0 {
		t.Fatalf("usage %+v, reconcile %+v: want both not obtained", u, rec)
	}

	// A steady scenario without a single Graph write, whose resyncs were not obtained: no target met.
	r := &results{Config: &config{N: 100000},
		Import: &importResult{N: 1, Seconds: 1, Ratio: 1, LowerBoundSeconds: 1, Operator: u, Reconcile: rec,
			Graph: graphCounts{Requests: 1, Writes: 1, ByOperation: map[string]int{"POST userPfxCertificates": 1}}},
		Steady: &steadyResult{ResyncPeriod: time.Minute, Resources: 1, ReadBound: 2, WindowSeconds: 60, Operator: u, Reconcile: rec}}
	for _, tg := range r.targets() {
		if strings.HasPrefix(tg.Name, "steady state") && (tg.Met != "not measured" || !strings.Contains(tg.Measured, "not obtained: at the end: parsing")) {
			t.Errorf("target %q = %q (%s), want not measured, saying why", tg.Name, tg.Met, tg.Measured)
		}
	}
	md := r.markdown()
	for _, want := range []string{
		"| 1 import | reconcile p50 / p99 | not obtained: at the end: parsing the operator's metrics: context deadline exceeded |",
		"| 1 import | Kubernetes API requests per certificate | not obtained: ",
		"| 2 steady | window; resyncs | 60 s; resyncs not obtained: ",
		"| exactly 1 Graph write per new certificate | 1 writes (1 POST) for 1 certificates | met |", // from graphsim: stands
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
}
