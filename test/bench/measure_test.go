package main

import (
	"math"
	"testing"
	"time"

	"github.com/certops/intune-cert-operator/test/graphsim"
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
