package controller

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/certops/intune-cert-operator/internal/graph"
	"github.com/certops/intune-cert-operator/internal/pfx"
)

// countingList lists the records of want (id → value) and counts its calls; fail makes it fail.
func countingList(calls *atomic.Int32, records map[string]uint64, fail *atomic.Bool) listFunc[uint64] {
	return func(_ context.Context, add func(string, uint64)) error {
		calls.Add(1)
		if fail != nil && fail.Load() {
			return errors.New("listing failed")
		}
		for id, v := range records {
			add(id, v)
		}
		return nil
	}
}

func TestDriftSnapshotListsOncePerPeriodForEveryCaller(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Now())
	s := newDriftSnapshots[uint64](time.Hour, clk)
	var calls atomic.Int32
	list := countingList(&calls, map[string]uint64{"ABC-1": 7}, nil)

	var wg sync.WaitGroup
	for range 16 { // workers asking at once share one listing
		wg.Add(1)
		go func() {
			defer wg.Done()
			snap := s.get(context.Background(), "conn\x00tenant", list)
			if v, ok := snap.lookup("abc-1"); !ok || v != 7 { // ids compare without case
				t.Errorf("lookup = %d, %t", v, ok)
			}
		}()
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d listings for 16 callers in one period, want 1", n)
	}
	if _, ok := s.get(context.Background(), "conn\x00tenant", list).lookup("other"); ok {
		t.Error("a record the listing did not show was found")
	}
	clk.SetTime(clk.Now().Add(59 * time.Minute))
	s.get(context.Background(), "conn\x00tenant", list)
	s.get(context.Background(), "conn\x00other-tenant", list)
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d listings, want 2: the period's listing serves until it is a period old, another tenant has its own", n)
	}
	clk.SetTime(clk.Now().Add(time.Minute))
	s.get(context.Background(), "conn\x00tenant", list)
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d listings, want 3: a listing a period old is taken again", n)
	}
}

func TestDriftSnapshotFailureFallsBackToReadsForAWhile(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Now())
	s := newDriftSnapshots[uint64](time.Hour, clk)
	var calls atomic.Int32
	var fail atomic.Bool
	fail.Store(true)
	list := countingList(&calls, map[string]uint64{"a": 1}, &fail)
	if snap := s.get(context.Background(), "k", list); snap != nil {
		t.Fatal("a failed listing gave a snapshot")
	}
	if snap := s.get(context.Background(), "k", list); snap != nil || calls.Load() != 1 {
		t.Fatalf("right after a failure: snapshot %v, %d listings; want none and no second listing", snap, calls.Load())
	}
	fail.Store(false)
	clk.SetTime(clk.Now().Add(snapshotRetryAfter))
	if snap := s.get(context.Background(), "k", list); snap == nil || calls.Load() != 2 {
		t.Fatalf("after the retry delay: snapshot %v, %d listings; want one from a second listing", snap, calls.Load())
	}
	var nilSnapshots *driftSnapshots[uint64]
	if nilSnapshots.get(context.Background(), "k", list) != nil {
		t.Error("a nil driftSnapshots gave a snapshot")
	}
}

func TestDriftSnapshotWaiterGivesUpWithItsContext(t *testing.T) {
	s := newDriftSnapshots[uint64](time.Hour, clocktesting.NewFakePassiveClock(time.Now()))
	release := make(chan struct{})
	slow := func(ctx context.Context, add func(string, uint64)) error {
		<-release
		add("a", 1)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if snap := s.get(ctx, "k", slow); snap != nil {
		t.Fatal("a pass whose context ended got a snapshot")
	}
	close(release) // the listing goes on apart from the pass, and serves the next one
	if snap := s.get(context.Background(), "k", slow); snap == nil {
		t.Fatal("no snapshot after the listing finished")
	}
}

// The listing's fingerprints decide "in sync" exactly where matchesRecord does.
func TestUserPfxFingerprintAgreesWithMatchesRecord(t *testing.T) {
	start, end := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	want := &desiredUserPfx{
		material:   &material{Material: &pfx.Material{Facts: pfx.Facts{Thumbprint: "abcd", NotBefore: start, NotAfter: end}}},
		encryption: &encryption{providerName: "Microsoft Software Key Storage Provider", keyName: "PFXEncryptionKey", padding: pfx.PaddingOAEPSHA512},
		upn:        "alice@contoso.com", purpose: "smimeEncryption",
	}
	same := graph.UserPFXCertificate{Thumbprint: "ABCD", IntendedPurpose: "SmimeEncryption", UserPrincipalName: "Alice@Contoso.com",
		ProviderName: "Microsoft Software Key Storage Provider", KeyName: "PFXEncryptionKey", PaddingScheme: "OaepSha512",
		StartDateTime: start.In(time.FixedZone("x", 3600)), ExpirationDateTime: end}
	for name, change := range map[string]func(*graph.UserPFXCertificate){
		"as wanted (enums and names in other case, a time in another zone)": func(*graph.UserPFXCertificate) {},
		"thumbprint":     func(r *graph.UserPFXCertificate) { r.Thumbprint = "abce" },
		"purpose":        func(r *graph.UserPFXCertificate) { r.IntendedPurpose = "smimeSigning" },
		"user":           func(r *graph.UserPFXCertificate) { r.UserPrincipalName = "bob@contoso.com" },
		"provider":       func(r *graph.UserPFXCertificate) { r.ProviderName = "other" },
		"key name":       func(r *graph.UserPFXCertificate) { r.KeyName = "pfxencryptionkey" },
		"padding":        func(r *graph.UserPFXCertificate) { r.PaddingScheme = "oaepSha256" },
		"start":          func(r *graph.UserPFXCertificate) { r.StartDateTime = start.Add(time.Second) },
		"expiration":     func(r *graph.UserPFXCertificate) { r.ExpirationDateTime = end.Add(-time.Nanosecond) },
		"listed without": func(r *graph.UserPFXCertificate) { r.KeyName = "" },
	} {
		rec := same
		change(&rec)
		if matches, fp := matchesRecord(&rec, want), recordFingerprint(&rec) == wantFingerprint(want); matches != fp {
			t.Errorf("%s: matchesRecord %t, fingerprints equal %t", name, matches, fp)
		}
	}
	if recordFingerprint(&same) != wantFingerprint(want) {
		t.Error("the record as wanted does not fingerprint as wanted")
	}
}
