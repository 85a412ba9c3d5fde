package controller

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/graph"
	"github.com/certops/intune-cert-operator/internal/pfx"
	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

func thumbprintOf(u *testutil.UserCertificate) string {
	sum := sha1.Sum(u.Cert.Raw)
	return hex.EncodeToString(sum[:])
}

// recordID is the id Intune gives: {userObjectIdWithoutDashes}-{thumbprint}.
func (h *harness) recordID(upn string, u *testutil.UserCertificate) string {
	return strings.ReplaceAll(h.users[upn], "-", "") + "-" + thumbprintOf(u)
}

func (h *harness) records(tenantID string) map[string]graphsim.UserPFXCertificate {
	out := map[string]graphsim.UserPFXCertificate{}
	for _, r := range h.sim.UserPFXCertificates(tenantID) {
		out[r.ID] = r
	}
	return out
}

func upfxReady(h *harness, obj *intunev1alpha1.UserPfxCertificate, status metav1.ConditionStatus, reason string) metav1.Condition {
	h.t.Helper()
	return h.waitReady(obj, func() []metav1.Condition { return obj.Status.Conditions }, status, reason)
}

// assertRepeatsOf checks that the only Graph call made, once or more, is want. A terminal failure's call may
// be repeated when a watch event of a Secret created just before the resource arrives after the resource's.
func assertRepeatsOf(t *testing.T, got []string, want string) {
	t.Helper()
	if len(got) == 0 || slices.ContainsFunc(got, func(c string) bool { return c != want }) {
		t.Fatalf("Graph calls:\n  got  %q\n  want only %q, once or more", got, want)
	}
}

func assertCalls(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("Graph calls:\n  got  %q\n  want %q", got, want)
	}
}

func TestUserPfxImportsFromPfxSecret(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice := h.newUser("alice@contoso.com")
	h.pfxSecret(h.ns, "alice-pfx", alice, "Pa55-word!")
	mark := h.journalMark()
	obj := h.userPfx("alice-smime", "alice-pfx")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	cond := upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)

	id := h.recordID("alice@contoso.com", alice)
	assertCalls(t, h.graphCalls(mark),
		"GET /users/alice@contoso.com 200",
		"GET /deviceManagement/userPfxCertificates/"+id+" 404",
		"POST /deviceManagement/userPfxCertificates 201")
	st := obj.Status
	if st.ID != id || st.UserID != h.users["alice@contoso.com"] || st.UserPrincipalName != "alice@contoso.com" || st.Thumbprint != thumbprintOf(alice) {
		t.Errorf("status identity = %+v", st)
	}
	if !st.ExpirationDateTime.Time.Equal(alice.Cert.NotAfter) || !st.StartDateTime.Time.Equal(alice.Cert.NotBefore) {
		t.Errorf("status dates %v..%v, certificate %v..%v", st.StartDateTime, st.ExpirationDateTime, alice.Cert.NotBefore, alice.Cert.NotAfter)
	}
	if st.CreatedDateTime == nil || st.LastModifiedDateTime == nil || st.LastSyncTime == nil || st.SourceHash == "" || st.ObservedGeneration != obj.Generation {
		t.Errorf("status bookkeeping incomplete: %+v", st)
	}
	if !strings.Contains(cond.Message, id) {
		t.Errorf("Ready message %q does not name the record", cond.Message)
	}
	if !controllerutil.ContainsFinalizer(obj, Finalizer) {
		t.Error("no finalizer")
	}

	recs := h.records(h.tenantID)
	rec, ok := recs[id]
	if len(recs) != 1 || !ok {
		t.Fatalf("graphsim holds %d records, want exactly %s", len(recs), id)
	}
	secret := &corev1.Secret{}
	if err := k8sClient.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: "alice-pfx"}, secret); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.EncryptedPfxBlob, secret.Data["pfx"]) {
		t.Error("encryptedPfxBlob is not the raw PFX from the Secret")
	}
	if rec.PaddingScheme != "oaepSha512" || rec.IntendedPurpose != "smimeEncryption" || rec.KeyName != "PFXEncryptionKey" {
		t.Errorf("record = %+v", rec)
	}
	password, err := pfx.DecryptPassword(h.connectorKey, pfx.PaddingOAEPSHA512, rec.EncryptedPfxPassword)
	if err != nil || password != "Pa55-word!" {
		t.Errorf("the connector key does not recover the password: %v", err)
	}
	if f := h.sim.CheckFailures(); len(f) > 0 {
		t.Errorf("connector check failures: %v", f)
	}
	h.waitEvent(obj, kindUserPfxCertificate, "Imported")
}

func TestUserPfxImportsFromTLSSecretWithUPNFromCertificate(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	bob := h.newUser("bob@contoso.com")
	h.tlsSecret("bob-tls", bob)
	obj := h.userPfx("bob-wifi", "")
	obj.Spec.IntendedPurpose = "wifi"
	obj.Spec.Source = intunev1alpha1.CertificateSource{TLS: &intunev1alpha1.TLSSecretSource{SecretRef: intunev1alpha1.LocalSecretReference{Name: "bob-tls"}}}
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
	id := h.recordID("bob@contoso.com", bob)
	rec, ok := h.records(h.tenantID)[id]
	if !ok || rec.UserPrincipalName != "bob@contoso.com" || rec.IntendedPurpose != "wifi" {
		t.Fatalf("record %s = %+v (found %v)", id, rec, ok)
	}
	if f := h.sim.CheckFailures(); len(f) > 0 {
		t.Errorf("connector check failures: %v", f)
	}

	// Nothing changed: a second pass (forced by touching the Secret's labels) writes nothing.
	mark, logMark := h.journalMark(), h.logMark()
	secret := &corev1.Secret{}
	h.get(secretRef(h.ns, "bob-tls", secret))
	secret.Labels = map[string]string{"touched": "yes"}
	if err := k8sClient.Update(h.ctx, secret); err != nil {
		t.Fatal(err)
	}
	h.waitPass(obj, logMark)
	if n := h.graphWrites(mark); n != 0 {
		t.Errorf("%d Graph writes after an unchanged Secret was touched, want 0: %v", n, h.graphCalls(mark))
	}
}

func secretRef(ns, name string, s *corev1.Secret) *corev1.Secret {
	s.Namespace, s.Name = ns, name
	return s
}

func TestUserPfxWaitsForSecretAndRecoversFromWrongPassword(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice := h.newUser("alice@contoso.com")
	mark := h.journalMark()
	obj := h.userPfx("alice", "alice-pfx")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	cond := upfxReady(h, obj, metav1.ConditionFalse, intunev1alpha1.ReasonSecretNotFound)
	if !strings.Contains(cond.Message, `"alice-pfx"`) {
		t.Errorf("message %q does not name the Secret", cond.Message)
	}

	// The Secret arrives with the wrong password.
	data, _ := alice.PFX("right-password")
	h.apply(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "alice-pfx", Namespace: h.ns},
		Data: map[string][]byte{"pfx": data, "password": []byte("wrong-password")}})
	cond = upfxReady(h, obj, metav1.ConditionFalse, string(pfx.ReasonWrongPassword))
	if strings.Contains(cond.Message, "wrong-password") || strings.Contains(cond.Message, "right-password") {
		t.Errorf("the condition message leaks the password: %q", cond.Message)
	}
	h.waitEvent(obj, kindUserPfxCertificate, "Failed")
	if n := h.graphWrites(mark); n != 0 {
		t.Errorf("%d Graph writes with bad input, want 0", n)
	}

	// Fixed: imported.
	h.apply(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "alice-pfx", Namespace: h.ns},
		Data: map[string][]byte{"pfx": data, "password": []byte("right-password")}})
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
	if _, ok := h.records(h.tenantID)[h.recordID("alice@contoso.com", alice)]; !ok {
		t.Fatal("record missing after the fix")
	}
}

// An S/MIME encryption certificate's rotation keeps the previous record (the default retention): the
// user's devices still need its key to read older mail.
func TestUserPfxRotatesWhenTheSecretChanges(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	first, obj := h.importAlice("first-pass")
	oldID := h.recordID("alice@contoso.com", first)

	second := h.newUser("alice@contoso.com")
	newID := h.recordID("alice@contoso.com", second)
	mark := h.journalMark()
	h.pfxSecret(h.ns, "alice-pfx", second, "second-pass")
	h.eventually("status moves to the new certificate", func() error {
		h.get(obj)
		if obj.Status.ID != newID || len(obj.Status.History) != 1 || obj.Status.History[0].ID != oldID {
			return fmt.Errorf("status id %s history %+v", obj.Status.ID, obj.Status.History)
		}
		return nil
	})
	assertCalls(t, h.graphCalls(mark),
		"GET /deviceManagement/userPfxCertificates/"+newID+" 404",
		"POST /deviceManagement/userPfxCertificates 201")
	recs := h.records(h.tenantID)
	if _, ok := recs[newID]; !ok || len(recs) != 2 {
		t.Fatalf("records after rotation: %v, want %s and the kept %s", keys(recs), newID, oldID)
	}
	if obj.Status.Thumbprint != thumbprintOf(second) {
		t.Errorf("status thumbprint %s", obj.Status.Thumbprint)
	}
	h.waitEvent(obj, kindUserPfxCertificate, "Rotated")
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestUserPfxPatchesOnPurposeChange(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	_, obj := h.importAlice("pw")
	id := obj.Status.ID

	mark := h.journalMark()
	h.update(obj, func() {
		obj.Spec.IntendedPurpose = "smimeSigning"
	})
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonUpdated)
	assertCalls(t, h.graphCalls(mark),
		"GET /deviceManagement/userPfxCertificates/"+id+" 200",
		"PATCH /deviceManagement/userPfxCertificates/"+id+" 200")
	if rec := h.records(h.tenantID)[id]; rec.IntendedPurpose != "smimeSigning" {
		t.Errorf("record purpose %q", rec.IntendedPurpose)
	}
	h.waitEvent(obj, kindUserPfxCertificate, "Updated")
}

// A crash between the POST and the status write leaves a record the resource does not know; the next
// reconcile must adopt it, with no second create.
func TestUserPfxAdoptsTheRecordACrashLeftBehind(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice := h.newUser("alice@contoso.com")
	h.pfxSecret(h.ns, "alice-pfx", alice, "pw")
	data, _ := alice.PFX("pw")
	m, err := pfx.FromPFX(data, "pw")
	if err != nil {
		t.Fatal(err)
	}
	encrypted, err := pfx.EncryptPassword(&h.connectorKey.PublicKey, pfx.PaddingOAEPSHA512, "pw")
	if err != nil {
		t.Fatal(err)
	}
	gc := h.graphClient()
	if _, err := gc.CreateUserPFXCertificate(h.ctx, &graph.UserPFXCertificate{
		Thumbprint: m.Facts.Thumbprint, IntendedPurpose: "smimeEncryption", UserPrincipalName: "alice@contoso.com",
		StartDateTime: m.Facts.NotBefore, ExpirationDateTime: m.Facts.NotAfter,
		ProviderName: "Microsoft Software Key Storage Provider", KeyName: "PFXEncryptionKey", PaddingScheme: "oaepSha512",
		EncryptedPfxBlob: data, EncryptedPfxPassword: encrypted,
	}); err != nil {
		t.Fatal(err)
	}

	mark := h.journalMark()
	obj := h.userPfx("alice", "alice-pfx")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonAdopted)
	id := h.recordID("alice@contoso.com", alice)
	assertCalls(t, h.graphCalls(mark),
		"GET /users/alice@contoso.com 200",
		"GET /deviceManagement/userPfxCertificates/"+id+" 200")
	if obj.Status.ID != id || len(h.records(h.tenantID)) != 1 {
		t.Fatalf("status id %s, records %v", obj.Status.ID, keys(h.records(h.tenantID)))
	}
	h.waitEvent(obj, kindUserPfxCertificate, "Adopted")
}

// importAlice imports a fresh certificate of alice from the PFX Secret "alice-pfx" as the resource "alice"
// and waits until it is Ready.
func (h *harness) importAlice(password string) (*testutil.UserCertificate, *intunev1alpha1.UserPfxCertificate) {
	h.t.Helper()
	alice := h.newUser("alice@contoso.com")
	h.pfxSecret(h.ns, "alice-pfx", alice, password)
	obj := h.userPfx("alice", "alice-pfx")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		h.t.Fatal(err)
	}
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
	return alice, obj
}

// graphClient is a client of the harness tenant, as another tool (or an earlier operator run) would use.
func (h *harness) graphClient() *graph.Client {
	h.t.Helper()
	cred, err := graph.NewCredential(graph.CredentialConfig{Type: graph.CredentialClientSecret, TenantID: h.tenantID,
		ClientID: h.clientID, ClientSecret: "s3cr3t-client-value", AuthorityHost: h.sim.URL(), Transport: h.sim.Client()})
	if err != nil {
		h.t.Fatal(err)
	}
	gc, err := graph.New(graph.Options{GraphRoot: h.sim.URL(), Scope: "https://graph.microsoft.com/.default", Credential: cred, HTTPClient: h.sim.Client()})
	if err != nil {
		h.t.Fatal(err)
	}
	return gc
}

func TestUserPfxReimportsARecordDeletedInIntune(t *testing.T) {
	h := newHarness(t, harnessOptions{resync: 2 * time.Second})
	_, obj := h.importAlice("pw")
	id := obj.Status.ID

	// Resyncs of a record in sync read the tenant's listing, once per period for all resources, never the
	// record itself, and write nothing.
	mark := h.journalMark()
	h.eventually("two resyncs", func() error {
		if n := strings.Count(strings.Join(h.graphCalls(mark), "\n"), "GET /deviceManagement/userPfxCertificates 200"); n < 2 {
			return fmt.Errorf("%d listings so far", n)
		}
		return nil
	})
	if n := h.graphWrites(mark); n != 0 {
		t.Fatalf("%d writes during steady state: %v", n, h.graphCalls(mark))
	}
	if n := strings.Count(strings.Join(h.graphCalls(mark), "\n"), "GET /deviceManagement/userPfxCertificates/"); n != 0 {
		t.Fatalf("%d reads of the record itself while the listing shows it as wanted: %v", n, h.graphCalls(mark))
	}

	if !h.sim.DeleteUserPFXCertificate(h.tenantID, id) {
		t.Fatal("graphsim did not hold the record")
	}
	h.waitEvent(obj, kindUserPfxCertificate, "Reimported")
	h.eventually("record back in Intune", func() error {
		if _, ok := h.records(h.tenantID)[id]; !ok {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if n := len(h.records(h.tenantID)); n != 1 {
		t.Errorf("%d records, want 1", n)
	}
}

func TestUserPfxDeletionHonoursDeletionPolicy(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice, bob := h.newUser("alice@contoso.com"), h.newUser("bob@contoso.com")
	h.pfxSecret(h.ns, "alice-pfx", alice, "pw")
	h.pfxSecret(h.ns, "bob-pfx", bob, "pw")
	deleted, orphaned := h.userPfx("alice", "alice-pfx"), h.userPfx("bob", "bob-pfx")
	orphaned.Spec.DeletionPolicy = intunev1alpha1.DeletionPolicyOrphan
	for _, obj := range []*intunev1alpha1.UserPfxCertificate{deleted, orphaned} {
		if err := k8sClient.Create(h.ctx, obj); err != nil {
			t.Fatal(err)
		}
		upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
	}
	aliceID, bobID := deleted.Status.ID, orphaned.Status.ID

	mark := h.journalMark()
	for _, obj := range []*intunev1alpha1.UserPfxCertificate{deleted, orphaned} {
		if err := k8sClient.Delete(h.ctx, obj); err != nil {
			t.Fatal(err)
		}
		h.eventually(obj.Name+" gone", func() error {
			err := k8sClient.Get(h.ctx, client.ObjectKeyFromObject(obj), &intunev1alpha1.UserPfxCertificate{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("still there (%v)", err)
		})
	}
	assertCalls(t, h.graphCalls(mark),
		"DELETE /deviceManagement/userPfxCertificates/"+aliceID+" 204",
		"GET /deviceManagement/userPfxCertificates 200") // the filtered list, no longer showing it
	recs := h.records(h.tenantID)
	if _, ok := recs[aliceID]; ok {
		t.Error("the Delete policy left the record")
	}
	if _, ok := recs[bobID]; !ok {
		t.Error("the Orphan policy deleted the record")
	}
}

func TestUserPfxSuspendMakesNoGraphCalls(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice := h.newUser("alice@contoso.com")
	h.pfxSecret(h.ns, "alice-pfx", alice, "pw")
	mark, logMark := h.journalMark(), h.logMark()
	obj := h.userPfx("alice", "alice-pfx")
	obj.Spec.Suspend = true
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonSuspended)
	h.waitPass(obj, logMark)
	if calls := h.graphCalls(mark); len(calls) != 0 {
		t.Fatalf("suspended resource made Graph calls: %v", calls)
	}
	if controllerutil.ContainsFinalizer(obj, Finalizer) {
		t.Error("a suspended resource that never wrote to Graph needs no finalizer")
	}

	h.update(obj, func() {
		obj.Spec.Suspend = false
	})
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
}

func TestUserPfxThrottlingStormEndsReadyWithoutDuplicates(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.sim.SetFaults(graphsim.Faults{ThrottleRate: 0.5, RetryAfter: time.Second})
	var objs []*intunev1alpha1.UserPfxCertificate
	for i, upn := range []string{"alice@contoso.com", "bob@contoso.com"} {
		for j := 0; j < 2; j++ {
			name := fmt.Sprintf("cert-%d-%d", i, j)
			h.pfxSecret(h.ns, name, h.newUser(upn), "pw")
			obj := h.userPfx(name, name)
			if err := k8sClient.Create(h.ctx, obj); err != nil {
				t.Fatal(err)
			}
			objs = append(objs, obj)
		}
	}
	for _, obj := range objs {
		h.waitReady(obj, func() []metav1.Condition { return obj.Status.Conditions }, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
	}
	throttled, posts := 0, 0
	for _, e := range h.sim.Journal() {
		if e.Status == 429 {
			throttled++
		}
		if e.Method == "POST" && e.Status == 201 {
			posts++
		}
	}
	if throttled == 0 {
		t.Fatal("graphsim throttled nothing: the test proves nothing")
	}
	recs := h.records(h.tenantID)
	if len(recs) != len(objs) || posts != len(objs) {
		t.Fatalf("%d records from %d successful POSTs for %d resources", len(recs), posts, len(objs))
	}
	for _, obj := range objs {
		if _, ok := recs[obj.Status.ID]; !ok {
			t.Errorf("%s: status id %s not in Intune", obj.Name, obj.Status.ID)
		}
	}
}

func TestUserPfxResourcesInTwoNamespacesUseTheirOwnConnections(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice, bob := h.newUser("alice@contoso.com"), h.newUser("bob@contoso.com")
	h.pfxSecret(h.ns, "alice-pfx", alice, "pw")
	h.pfxSecret(h.ns2, "bob-pfx", bob, "pw")
	inA := h.userPfx("alice", "alice-pfx")
	inB := h.userPfx("bob", "bob-pfx")
	inB.Namespace = h.ns2
	inB.Spec.ConnectionRef = &intunev1alpha1.ConnectionReference{Kind: "GraphConnection", Name: "tenant-b"}
	for _, obj := range []*intunev1alpha1.UserPfxCertificate{inA, inB} {
		if err := k8sClient.Create(h.ctx, obj); err != nil {
			t.Fatal(err)
		}
		upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
	}
	if recs := h.records(h.tenantID); len(recs) != 1 || recs[inA.Status.ID].UserPrincipalName != "alice@contoso.com" {
		t.Errorf("tenant A holds %v", keys(recs))
	}
	if recs := h.records(h.tenantB); len(recs) != 1 || recs[inB.Status.ID].UserPrincipalName != "bob@contoso.com" {
		t.Errorf("tenant B holds %v", keys(recs))
	}

	// A GraphConnection of another namespace is not found from here.
	cross := h.userPfx("cross", "alice-pfx")
	cross.Spec.ConnectionRef = &intunev1alpha1.ConnectionReference{Kind: "GraphConnection", Name: "tenant-b"}
	if err := k8sClient.Create(h.ctx, cross); err != nil {
		t.Fatal(err)
	}
	upfxReady(h, cross, metav1.ConditionFalse, intunev1alpha1.ReasonConnectionNotFound)
}

// A create that took effect and lost its answer leaves a record no status names; the resource is deleted
// before a pass finds it (the fault suite's seed 4001, scenario h). The claim taken before the create names
// the record, and the deletion deletes it. Here the lost answer is made by hand: the record is imported, the
// resource suspended so no pass adopts it again, and the id removed from status.
func TestUserPfxDeletionRemovesTheClaimedRecordStatusDoesNotName(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.pfxSecret(h.ns, "alice-pfx", h.newUser("alice@contoso.com"), "pw")
	obj := h.userPfx("lost-answer", "alice-pfx")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
	record := obj.Status.ID
	h.update(obj, func() {
		obj.Spec.Suspend = true
	})
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonSuspended)
	base := obj.DeepCopy()
	obj.Status.ID, obj.Status.Thumbprint = "", ""
	if err := k8sClient.Status().Patch(h.ctx, obj, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}

	if err := k8sClient.Delete(h.ctx, obj); err != nil { // waits while suspended
		t.Fatal(err)
	}
	mark := h.journalMark()
	h.update(obj, func() {
		obj.Spec.Suspend = false
	})
	h.eventually("resource gone", func() error {
		if err := k8sClient.Get(h.ctx, client.ObjectKeyFromObject(obj), obj); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
	// The delete, then the list that checks the service no longer shows the record.
	assertCalls(t, h.graphCalls(mark), "DELETE /deviceManagement/userPfxCertificates/"+record+" 204", "GET /deviceManagement/userPfxCertificates 200")
	if recs := h.sim.UserPFXCertificates(h.tenantID); len(recs) != 0 {
		t.Errorf("records left in Intune: %+v", recs)
	}
}
