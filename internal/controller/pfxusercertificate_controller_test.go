package controller

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/pfx"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

func pfxUserReady(h *harness, obj *intunev1alpha1.PfxUserCertificate, status metav1.ConditionStatus, reason string) metav1.Condition {
	h.t.Helper()
	return h.waitReady(obj, func() []metav1.Condition { return obj.Status.Conditions }, status, reason)
}

// seedPfxUserRecord puts an existing record into graphsim (Graph has no create for it) and returns its id.
func (h *harness) seedPfxUserRecord() string {
	id := newGUID()
	h.sim.PutPfxUserCertificate(h.tenantID, graphsim.PfxUserCertificate{
		ID: id, TenantID: h.tenantID, UserID: h.users["alice@contoso.com"], Thumbprint: strings.Repeat("0", 40),
		UserUpn: "alice@contoso.com", EncryptedPfxBlob: "AA==", PaddingScheme: 5, ETag: `W/"seeded"`,
		CreatedTime: time.Now().Add(-24 * time.Hour).UTC().Truncate(time.Second),
	})
	return id
}

func (h *harness) pfxUserRecord(id string) (graphsim.PfxUserCertificate, bool) {
	for _, r := range h.sim.PfxUserCertificates(h.tenantID) {
		if r.ID == id {
			return r, true
		}
	}
	return graphsim.PfxUserCertificate{}, false
}

// pfxUser returns a PfxUserCertificate for record id, reading the PFX Secret secretName.
func (h *harness) pfxUser(name, id, secretName string) *intunev1alpha1.PfxUserCertificate {
	return &intunev1alpha1.PfxUserCertificate{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: intunev1alpha1.PfxUserCertificateSpec{
			ConnectionRef:   &intunev1alpha1.ConnectionReference{Kind: "ClusterGraphConnection", Name: h.connection},
			ID:              id,
			UserID:          h.users["alice@contoso.com"],
			Source:          intunev1alpha1.CertificateSource{Pfx: &intunev1alpha1.PfxSecretSource{SecretRef: intunev1alpha1.SecretKeyReference{Name: secretName}}},
			Status:          ptr(int32(2)),
			IntendedPurpose: 1,
		},
	}
}

// pushedPfxUser creates a resource for a seeded record and waits for its first push; it returns the
// resource and the record as then stored.
func (h *harness) pushedPfxUser() (*intunev1alpha1.PfxUserCertificate, graphsim.PfxUserCertificate) {
	h.t.Helper()
	h.pfxSecret(h.ns, "alice-pfx", h.newUser("alice@contoso.com"), "pw")
	obj := h.pfxUser("alice", h.seedPfxUserRecord(), "alice-pfx")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		h.t.Fatal(err)
	}
	pfxUserReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonUpdated)
	rec, _ := h.pfxUserRecord(obj.Spec.ID)
	return obj, rec
}

func TestPfxUserCertificateUpdatesTheExistingRecordAndRerunsWriteNothing(t *testing.T) {
	h := newHarness(t, harnessOptions{resync: 2 * time.Second})
	id := h.seedPfxUserRecord()
	alice := h.newUser("alice@contoso.com")
	h.pfxSecret(h.ns, "alice-pfx", alice, "Pa55-word!")
	mark := h.journalMark()
	obj := h.pfxUser("alice", id, "alice-pfx")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	cond := pfxUserReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonUpdated)
	// The user is looked up first: spec.userId must be the user the access rules were applied to.
	assertCalls(t, h.graphCalls(mark), "GET /users/alice@contoso.com 200", "PATCH /pfxUserCertificates/"+id+" 200")
	if !strings.Contains(cond.Message, id) {
		t.Errorf("Ready message %q does not name the record", cond.Message)
	}

	rec, _ := h.pfxUserRecord(id)
	secret := &corev1.Secret{}
	h.get(secretRef(h.ns, "alice-pfx", secret))
	if rec.EncryptedPfxBlob != base64.StdEncoding.EncodeToString(secret.Data["pfx"]) {
		t.Error("encryptedPfxBlob is not the base64 of the PFX in the Secret")
	}
	password, err := pfx.DecryptPassword(h.connectorKey, pfx.PaddingOAEPSHA512, rec.EncryptedPfxPassword)
	if err != nil || password != "Pa55-word!" {
		t.Errorf("the connector key does not recover the password: %v", err)
	}
	if rec.PaddingScheme != 5 || rec.Status != 2 || rec.IntendedPurpose != 1 || rec.IsDeleted {
		t.Errorf("Int32 fields: paddingScheme %d status %d intendedPurpose %d isDeleted %v", rec.PaddingScheme, rec.Status, rec.IntendedPurpose, rec.IsDeleted)
	}
	if rec.TenantID != h.tenantID || rec.UserID != h.users["alice@contoso.com"] || rec.UserUpn != "alice@contoso.com" ||
		rec.ProviderName != "Microsoft Software Key Storage Provider" || rec.EncryptionKeyName != "PFXEncryptionKey" {
		t.Errorf("identity and key fields = tenant %s user %s upn %s provider %q key %q", rec.TenantID, rec.UserID, rec.UserUpn, rec.ProviderName, rec.EncryptionKeyName)
	}
	if rec.Thumbprint != thumbprintOf(alice) || !rec.CertStartDate.Equal(alice.Cert.NotBefore) || !rec.CertExpirationDate.Equal(alice.Cert.NotAfter) {
		t.Errorf("certificate fields = %s %v..%v", rec.Thumbprint, rec.CertStartDate, rec.CertExpirationDate)
	}
	if f := h.sim.CheckFailures(); len(f) > 0 {
		t.Errorf("connector check failures: %v", f)
	}
	st := obj.Status
	if st.ETag != rec.ETag || st.ETag == `W/"seeded"` || !st.LastModifiedTime.Time.Equal(rec.LastModifiedTime.Truncate(time.Second)) ||
		!st.CreatedTime.Time.Equal(rec.CreatedTime) {
		t.Errorf("status %+v does not hold what Graph answered (eTag %s)", st, rec.ETag)
	}
	if st.Thumbprint != thumbprintOf(alice) || !st.CertStartDate.Time.Equal(alice.Cert.NotBefore) || !st.CertExpirationDate.Time.Equal(alice.Cert.NotAfter) ||
		st.SourceHash == "" || st.LastSyncTime == nil {
		t.Errorf("status certificate bookkeeping = %+v", st)
	}
	h.waitEvent(obj, kindPfxUserCertificate, "Updated")

	// In sync, every re-run (the resyncs) reads the record and writes nothing.
	mark = h.journalMark()
	h.eventually("two resyncs", func() error {
		if n := strings.Count(strings.Join(h.graphCalls(mark), "\n"), "GET /pfxUserCertificates/"+id+" 200"); n < 2 {
			return fmt.Errorf("%d resync reads so far", n)
		}
		return nil
	})
	if n := h.graphWrites(mark); n != 0 {
		t.Fatalf("%d writes while in sync: %v", n, h.graphCalls(mark))
	}
	pfxUserReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonInSync)
	if after, _ := h.pfxUserRecord(id); after.ETag != rec.ETag {
		t.Errorf("eTag moved from %s to %s without a change", rec.ETag, after.ETag)
	}

	// A spec change is pushed.
	h.update(obj, func() {
		obj.Spec.Status = ptr(int32(3))
	})
	pfxUserReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonUpdated)
	if rec, _ := h.pfxUserRecord(id); rec.Status != 3 {
		t.Errorf("record status %d after the spec change", rec.Status)
	}
}

func TestPfxUserCertificatePatchesWhenTheSecretChanges(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	id := h.seedPfxUserRecord()
	first := h.newUser("alice.smith@contoso.com")
	h.tlsSecret("alice-tls", first)
	obj := h.pfxUser("alice", id, "")
	obj.Spec.Source = intunev1alpha1.CertificateSource{TLS: &intunev1alpha1.TLSSecretSource{SecretRef: intunev1alpha1.LocalSecretReference{Name: "alice-tls"}}}
	// A userUpn other than the certificate's needs a connection that does not require them to match.
	noMatch := false
	obj.Spec.ConnectionRef.Name = h.accessConnection(&intunev1alpha1.ConnectionAccess{Namespaces: []string{h.ns},
		Kinds: []intunev1alpha1.AccessKind{"PfxUserCertificate"}, RequireCertificateMatch: &noMatch}).Name
	obj.Spec.UserUPN = "Alice@Contoso.com" // the user of spec.userId, spelt as the spec likes
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	pfxUserReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonUpdated)
	if rec, _ := h.pfxUserRecord(id); rec.UserUpn != "Alice@Contoso.com" {
		t.Errorf("userUpn %q, want the spec's", rec.UserUpn)
	}

	renewed := h.newUser("alice.smith@contoso.com")
	mark := h.journalMark()
	h.tlsSecret("alice-tls", renewed)
	h.eventually("status follows the renewed certificate", func() error {
		h.get(obj)
		if obj.Status.Thumbprint != thumbprintOf(renewed) {
			return fmt.Errorf("status thumbprint %s", obj.Status.Thumbprint)
		}
		return nil
	})
	assertCalls(t, h.graphCalls(mark), "PATCH /pfxUserCertificates/"+id+" 200")
	recs := h.sim.PfxUserCertificates(h.tenantID)
	if len(recs) != 1 || recs[0].Thumbprint != thumbprintOf(renewed) || !recs[0].CertExpirationDate.Equal(renewed.Cert.NotAfter) {
		t.Errorf("records after the renewal: %d, %+v", len(recs), recs)
	}
	if f := h.sim.CheckFailures(); len(f) > 0 {
		t.Errorf("connector check failures: %v", f)
	}
}

// A pass that PATCHed and stopped before its status write leaves the resource believing nothing was pushed:
// the next pass sends the same PATCH again, which changes nothing but the record's eTag.
func TestPfxUserCertificateRepeatsAnUnrecordedPatchHarmlessly(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	obj, before := h.pushedPfxUser()
	id := obj.Spec.ID

	mark := h.journalMark()
	base := obj.DeepCopy()
	obj.Status.SourceHash = ""
	if err := k8sClient.Status().Patch(h.ctx, obj, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	touchSecret(h, "alice-pfx") // wakes the resource
	h.eventually("the push is recorded again", func() error {
		h.get(obj)
		if obj.Status.SourceHash != base.Status.SourceHash {
			return fmt.Errorf("sourceHash %q", obj.Status.SourceHash)
		}
		return nil
	})
	assertCalls(t, h.graphCalls(mark), "PATCH /pfxUserCertificates/"+id+" 200")
	after, _ := h.pfxUserRecord(id)
	if n := len(h.sim.PfxUserCertificates(h.tenantID)); n != 1 || after.Thumbprint != before.Thumbprint ||
		after.EncryptedPfxBlob != before.EncryptedPfxBlob || after.Status != before.Status || after.UserUpn != before.UserUpn {
		t.Errorf("%d records; the repeated PATCH changed the record: %+v -> %+v", n, before, after)
	}
}

// touchSecret changes a Secret's labels only, which wakes the resources reading it.
func touchSecret(h *harness, name string) {
	h.t.Helper()
	secret := &corev1.Secret{}
	h.get(secretRef(h.ns, name, secret))
	secret.Labels = map[string]string{"touched": time.Now().Format("150405.000000")}
	if err := k8sClient.Update(h.ctx, secret); err != nil {
		h.t.Fatal(err)
	}
}

func TestPfxUserCertificateReportsBadInputAndUnknownRecords(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	mark := h.journalMark()
	missing := h.pfxUser("missing-secret", h.seedPfxUserRecord(), "no-such-secret")
	if err := k8sClient.Create(h.ctx, missing); err != nil {
		t.Fatal(err)
	}
	if cond := pfxUserReady(h, missing, metav1.ConditionFalse, intunev1alpha1.ReasonSecretNotFound); !strings.Contains(cond.Message, `"no-such-secret"`) {
		t.Errorf("message %q does not name the Secret", cond.Message)
	}
	if calls := h.graphCalls(mark); len(calls) != 0 {
		t.Errorf("Graph calls without a Secret: %v", calls)
	}

	// An id Intune does not have: Graph answers 404 and the resource says it only updates.
	h.pfxSecret(h.ns, "alice-pfx", h.newUser("alice@contoso.com"), "pw")
	unknown := newGUID()
	obj := h.pfxUser("unknown", unknown, "alice-pfx")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	cond := pfxUserReady(h, obj, metav1.ConditionFalse, intunev1alpha1.ReasonRecordNotFound)
	if !strings.Contains(cond.Message, unknown) || !strings.Contains(cond.Message, "spec.id") {
		t.Errorf("message %q does not name the record and the field to check", cond.Message)
	}
	calls := h.graphCalls(mark)
	if len(calls) == 0 || calls[0] != "GET /users/alice@contoso.com 200" {
		t.Fatalf("Graph calls %q: want the user's lookup first", calls)
	}
	assertRepeatsOf(t, calls[1:], "PATCH /pfxUserCertificates/"+unknown+" 404")
	if n := len(h.sim.PfxUserCertificates(h.tenantID)); n != 1 {
		t.Errorf("%d records, want only the seeded one", n)
	}
	h.waitEvent(obj, kindPfxUserCertificate, "Failed")
}

// A record named by spec.id existed before the resource: deleting the resource never deletes it.
func TestPfxUserCertificateDeletionLeavesTheRecord(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	obj, before := h.pushedPfxUser()
	id := obj.Spec.ID

	mark, logMark := h.journalMark(), h.logMark()
	h.deleteAndWait(obj)
	h.waitPass(obj, logMark) // the pass the deletion woke
	if calls := h.graphCalls(mark); len(calls) != 0 {
		t.Errorf("Graph calls on deletion: %v", calls)
	}
	if after, ok := h.pfxUserRecord(id); !ok || after.ETag != before.ETag {
		t.Errorf("the record changed or went with the resource (found %v)", ok)
	}
}

// Without spec.id the resource creates the record (Graph assigns the id), keeps it (a new certificate goes
// into the same record), and deletes it with the resource.
func TestPfxUserCertificateCreatesOwnsAndDeletesItsRecord(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.pfxSecret(h.ns, "alice-pfx", h.newUser("alice@contoso.com"), "pw")
	mark := h.journalMark()
	obj := h.pfxUser("owned", "", "alice-pfx")
	obj.Spec.Status = nil // the connector's to keep: not sent
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	cond := pfxUserReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonCreated)
	id := obj.Status.ID
	if id == "" || !strings.Contains(cond.Message, id) || obj.Status.CreateStartedTime != nil {
		t.Fatalf("status id %q, createStartedTime %v, message %q", id, obj.Status.CreateStartedTime, cond.Message)
	}
	// The list is read before the create: a record made by a lost create would be found there.
	assertCalls(t, h.graphCalls(mark), "GET /users/alice@contoso.com 200", "GET /pfxUserCertificates 200", "POST /pfxUserCertificates 201")
	rec, ok := h.pfxUserRecord(id)
	if !ok || rec.UserID != h.users["alice@contoso.com"] || rec.EncryptedPfxBlob == "" {
		t.Fatalf("record %+v (found %v)", rec, ok)
	}
	if !slices.Contains(obj.Finalizers, Finalizer) {
		t.Errorf("finalizers %v: a created record must be deleted with the resource", obj.Finalizers)
	}

	// A new certificate in the Secret goes into the same record.
	alice2 := h.newUser("alice@contoso.com")
	mark = h.journalMark()
	h.pfxSecret(h.ns, "alice-pfx", alice2, "pw2")
	h.eventually("the new certificate in the record", func() error {
		if rec, _ := h.pfxUserRecord(id); rec.Thumbprint != thumbprintOf(alice2) {
			return fmt.Errorf("record thumbprint %s", rec.Thumbprint)
		}
		return nil
	})
	assertCalls(t, h.graphCalls(mark), "GET /pfxUserCertificates/"+id+" 200", "PATCH /pfxUserCertificates/"+id+" 200")
	if n := len(h.sim.PfxUserCertificates(h.tenantID)); n != 1 {
		t.Errorf("%d records, want the one", n)
	}

	mark = h.journalMark()
	h.deleteAndWait(obj)
	assertCalls(t, h.graphCalls(mark), "DELETE /pfxUserCertificates/"+id+" 204")
	if _, ok := h.pfxUserRecord(id); ok {
		t.Error("the created record outlived its resource")
	}
}

// The create took effect and its answer was lost: the next pass finds the record in the list and takes it,
// and no second record is made.
func TestPfxUserCertificateCreateWhoseAnswerWasLostIsFoundNotRepeated(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.pfxSecret(h.ns, "alice-pfx", h.newUser("alice@contoso.com"), "pw")
	h.waitConnectionReady()
	h.sim.SetFaults(graphsim.Faults{ActThenFailScript: []int{500}})
	obj := h.pfxUser("lost", "", "alice-pfx")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	pfxUserReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonCreated)
	if recs := h.sim.PfxUserCertificates(h.tenantID); len(recs) != 1 || recs[0].ID != obj.Status.ID {
		t.Errorf("records %+v, want exactly the one the resource holds (%s)", recs, obj.Status.ID)
	}
}

// A resource creating its record finds in the list the one another resource names by spec.id (same user and
// certificate): it is that resource's, so this one reports RecordClaimed and writes nothing to it.
func TestPfxUserCertificateNeverTakesARecordAnotherResourceNames(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	named, rec := h.pushedPfxUser()
	mark := h.journalMark()
	owned := h.pfxUser("owned-same", "", "alice-pfx")
	if err := k8sClient.Create(h.ctx, owned); err != nil {
		t.Fatal(err)
	}
	pfxUserReady(h, owned, metav1.ConditionFalse, intunev1alpha1.ReasonRecordClaimed)
	if n := h.graphWrites(mark); n != 0 {
		t.Errorf("%d writes to a record %s names: %v", n, named.Name, h.graphCalls(mark))
	}
	if after, _ := h.pfxUserRecord(named.Spec.ID); after.ETag != rec.ETag {
		t.Error("the named record changed")
	}
}

// The access rules judge a record's user by name (spec.userUpn, or the certificate's UPN); the record names the
// user by id. A spec.userId of another user is refused before any write: a namespace allowed alice's records
// cannot write bob's by naming his id.
func TestPfxUserCertificateRefusesAUserIDThatIsNotItsUser(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.pfxSecret(h.ns, "alice-pfx", h.newUser("alice@contoso.com"), "pw")
	mark := h.journalMark()
	obj := h.pfxUser("other-user", "", "alice-pfx")
	obj.Spec.UserID = h.users["bob@contoso.com"]
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	cond := pfxUserReady(h, obj, metav1.ConditionFalse, intunev1alpha1.ReasonAccessDenied)
	if !strings.Contains(cond.Message, "spec.userId") {
		t.Errorf("message %q does not name the field", cond.Message)
	}
	if n := h.graphWrites(mark); n != 0 {
		t.Errorf("%d writes: %v", n, h.graphCalls(mark))
	}
}
