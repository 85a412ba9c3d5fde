//go:build faults

package faults

import (
	"net/http"
	"testing"
	"time"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

// The checks the scenarios rely on must be able to fail: these feed them journals and ledgers with known
// defects, without a cluster.

func TestAnalyseThrottlingFlagsEarlyRetries(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const record = "/beta/deviceManagement/userPfxCertificates/abc-0123"
	entry := func(at time.Duration, method, path string, status int) graphsim.Entry {
		e := graphsim.Entry{Time: t0.Add(at), Method: method, Path: path, Status: status, TenantID: "t", ClientID: "c"}
		if status == http.StatusTooManyRequests {
			e.RetryAfter = 2 * time.Second
		}
		return e
	}
	journal := []graphsim.Entry{
		entry(0, http.MethodGet, record, http.StatusTooManyRequests),
		entry(50*time.Millisecond, http.MethodGet, "/beta/users/bob@contoso.com", http.StatusOK),    // in flight
		entry(500*time.Millisecond, http.MethodGet, "/beta/users/carol@contoso.com", http.StatusOK), // app window
		entry(time.Second, http.MethodGet, record, http.StatusOK),                                   // early retry
		entry(10*time.Second, http.MethodPost, "/beta/deviceManagement/userPfxCertificates", http.StatusTooManyRequests),
		entry(10100*time.Millisecond, http.MethodPost, "/beta/deviceManagement/userPfxCertificates", http.StatusCreated), // shared path: not judged
		entry(20*time.Second, http.MethodPatch, record, http.StatusTooManyRequests),
		entry(21*time.Second, http.MethodPatch, record, http.StatusOK), // after a restart: excused
		entry(30*time.Second, http.MethodDelete, record, http.StatusTooManyRequests),
		entry(32*time.Second, http.MethodDelete, record, http.StatusNoContent), // waited: fine
		{Time: t0.Add(31 * time.Second), Method: http.MethodPost, Path: "/tenant/oauth2/v2.0/token", Status: http.StatusOK},
		// A 429 answered 400 ms after its request arrived (it waited on graphsim's lock): a request arriving
		// 300 ms after that arrival was sent before the operator could know of the 429.
		{Time: t0.Add(40 * time.Second), Answered: t0.Add(40400 * time.Millisecond), Method: http.MethodGet,
			Path: "/beta/users/dave@contoso.com", Status: http.StatusTooManyRequests, TenantID: "t", ClientID: "c", RetryAfter: 2 * time.Second},
		entry(40300*time.Millisecond, http.MethodGet, "/beta/users/erin@contoso.com", http.StatusOK), // in flight
		entry(41*time.Second, http.MethodGet, "/beta/users/frank@contoso.com", http.StatusOK),        // app window
	}
	r := analyseThrottling(journal, []time.Time{t0.Add(20500 * time.Millisecond)})
	if r.requests != 13 || r.throttled != 5 {
		t.Errorf("requests %d, throttled %d; want 13 Graph requests, 5 throttled", r.requests, r.throttled)
	}
	if len(r.earlyRetries) != 1 || r.crossProcess != 1 {
		t.Errorf("early retries %v, cross-process %d; want the GET 1s after its 429, and the PATCH excused", r.earlyRetries, r.crossProcess)
	}
	// carol's GET, the record's early GET, the second POST (100 ms after the POST's 429), the PATCH 1 s after,
	// frank's GET (600 ms after dave's 429 was answered); not erin's (arrived before that 429 was answered).
	if r.appWindow != 5 {
		t.Errorf("requests in a same-app window: %d, want 5", r.appWindow)
	}
}

func TestReconcileLedgerFindsDuplicatesLossesAndOrphans(t *testing.T) {
	const userID = "f0000000-0000-4000-8000-000000000001"
	tp := "00112233445566778899aabbccddeeff00112233"
	id := recordID(userID, tp)
	upfx := func(name, statusID string) intunev1alpha1.UserPfxCertificate {
		o := intunev1alpha1.UserPfxCertificate{}
		o.Name, o.Status.ID, o.Status.Thumbprint = name, statusID, tp
		return o
	}
	want := map[string]expectation{"a": {userID, tp}, "b": {userID, "ffeeddccbbaa99887766554433221100ffeeddcc"}}
	res := &resources{userPfx: []intunev1alpha1.UserPfxCertificate{upfx("a", id), upfx("b", "")}}
	res.deviceState = []intunev1alpha1.ManagedDeviceCertificateState{{}}
	res.deviceState[0].Name, res.deviceState[0].Status.ID = "d", "s1"
	res.deviceState[0].Status.Certificate = &intunev1alpha1.CertificateFacts{Thumbprint: "AA"}
	recs := graphsim.AdminTenantRecords{
		UserPfxCertificates: []graphsim.AdminUserPFXCertificate{
			{UserPFXCertificate: graphsim.UserPFXCertificate{ID: id, Thumbprint: tp}},
			{UserPFXCertificate: graphsim.UserPFXCertificate{ID: "someone-else", Thumbprint: tp}},
		},
		ManagedDeviceCertificateStates: []graphsim.ManagedDeviceCertificateState{
			{ID: "s1", CertificateThumbprint: "aa"}, {ID: "s2", CertificateThumbprint: "aa"}, {ID: "s3", CertificateThumbprint: "bb"},
		},
	}
	l := reconcileLedger(res, recs, want)
	if len(l.duplicates) != 1 || len(l.orphans) != 2 || len(l.lost) != 2 {
		t.Errorf("duplicates %v, orphans %v, lost %v; want 1 (s2), 2 (someone-else, s3), 2 (b: no status id, no record)",
			l.duplicates, l.orphans, l.lost)
	}
}

// An S/MIME rotation keeps the earlier record (the default spec.retention.superseded for smimeEncryption):
// listed in status.history, it is the resource's, not an orphan; one still listed but no longer in Intune
// is no loss either (the next pass drops it). A kept record holding another certificate is.
func TestReconcileLedgerCountsKeptRecordsAsTheResources(t *testing.T) {
	const userID = "f0000000-0000-4000-8000-000000000001"
	tp, oldTP, olderTP := "00112233445566778899aabbccddeeff00112233", "aa112233445566778899aabbccddeeff00112233", "bb112233445566778899aabbccddeeff00112233"
	o := intunev1alpha1.UserPfxCertificate{}
	o.Name, o.Status.ID, o.Status.Thumbprint = "a", recordID(userID, tp), tp
	o.Status.History = []intunev1alpha1.SupersededRecord{{ID: recordID(userID, oldTP), Thumbprint: oldTP}, {ID: recordID(userID, olderTP), Thumbprint: olderTP}}
	res := &resources{userPfx: []intunev1alpha1.UserPfxCertificate{o}}
	recs := graphsim.AdminTenantRecords{UserPfxCertificates: []graphsim.AdminUserPFXCertificate{
		{UserPFXCertificate: graphsim.UserPFXCertificate{ID: recordID(userID, tp), Thumbprint: tp}},
		{UserPFXCertificate: graphsim.UserPFXCertificate{ID: recordID(userID, oldTP), Thumbprint: oldTP}}}}
	if l := reconcileLedger(res, recs, map[string]expectation{"a": {userID, tp}}); l.failed() {
		t.Errorf("duplicates %v, orphans %v, lost %v; want none", l.duplicates, l.orphans, l.lost)
	}
	recs.UserPfxCertificates[1].Thumbprint = tp
	if l := reconcileLedger(res, recs, map[string]expectation{"a": {userID, tp}}); len(l.lost) != 1 {
		t.Errorf("lost %v; want the kept record holding another certificate", l.lost)
	}
}

func TestReconcileLedgerFindsALostUpdate(t *testing.T) {
	const userID = "f0000000-0000-4000-8000-000000000001"
	tp := "00112233445566778899aabbccddeeff00112233"
	id := recordID(userID, tp)
	o := intunev1alpha1.UserPfxCertificate{}
	o.Name, o.Status.ID, o.Status.Thumbprint, o.Spec.IntendedPurpose = "a", id, tp, "smimeSigning"
	res := &resources{userPfx: []intunev1alpha1.UserPfxCertificate{o}}
	recs := graphsim.AdminTenantRecords{UserPfxCertificates: []graphsim.AdminUserPFXCertificate{
		{UserPFXCertificate: graphsim.UserPFXCertificate{ID: id, Thumbprint: tp, IntendedPurpose: "smimeEncryption"}}}}
	l := reconcileLedger(res, recs, map[string]expectation{"a": {userID, tp}})
	if len(l.lost) != 1 || len(l.duplicates)+len(l.orphans) != 0 {
		t.Errorf("lost %v, duplicates %v, orphans %v; want the record still holding the old intendedPurpose as lost", l.lost, l.duplicates, l.orphans)
	}
	recs.UserPfxCertificates[0].IntendedPurpose = "SmimeSigning" // any case
	if l := reconcileLedger(res, recs, map[string]expectation{"a": {userID, tp}}); l.failed() {
		t.Errorf("an up-to-date record failed: %+v", l)
	}
}

// A user lookup is shared by every resource of that user: its repeat after a 429 may be another resource's
// first call, so it is not judged as a retry; a record's repeat is.
func TestUserLookupsAreNotJudgedAsRetries(t *testing.T) {
	if perResourcePath("/beta/users/alice@contoso.com?$select=id") {
		t.Error("a user lookup was taken for one resource's call")
	}
	if !perResourcePath("/beta/deviceManagement/userPfxCertificates/abc-def") {
		t.Error("a record's path was not taken for one resource's call")
	}
}
