package controller

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
	"github.com/certops/intune-cert-operator/internal/testutil"
)

// The tests drive a Certificate's status as cert-manager documents it (cert-manager.io/docs/usage/certificate):
// a new Certificate is Ready=False (DoesNotExist) and Issuing=True; issuing writes the Secret, then the
// status (Ready=True, notBefore, notAfter, renewalTime, revision); a renewal keeps Ready=True while Issuing
// is True, writes the Secret, then moves notAfter and revision on.

// certificate creates a cert-manager Certificate writing into secretName, not issued yet.
func (h *harness) certificate(name, secretName string, labels map[string]string) *unstructured.Unstructured {
	h.t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{"secretName": secretName, "commonName": name,
			"issuerRef": map[string]any{"name": "corporate-ca", "kind": "Issuer", "group": "cert-manager.io"}},
	}}
	u.SetGroupVersionKind(certificateGVK)
	u.SetName(name)
	u.SetNamespace(h.ns)
	u.SetLabels(labels)
	if err := k8sClient.Create(h.ctx, u); err != nil {
		h.t.Fatal(err)
	}
	h.setCertificateStatus(u, map[string]any{"conditions": []any{
		certCondition(u, "Ready", "False", "DoesNotExist", "Issuing certificate as Secret does not exist"),
		certCondition(u, "Issuing", "True", "DoesNotExist", "Issuing certificate as Secret does not exist"),
	}})
	return u
}

func certCondition(u *unstructured.Unstructured, typ, status, reason, message string) map[string]any {
	return map[string]any{"type": typ, "status": status, "reason": reason, "message": message,
		"observedGeneration": u.GetGeneration(), "lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}
}

func (h *harness) setCertificateStatus(u *unstructured.Unstructured, status map[string]any) {
	h.t.Helper()
	if err := k8sClient.Get(h.ctx, client.ObjectKeyFromObject(u), u); err != nil {
		h.t.Fatal(err)
	}
	u.Object["status"] = status
	if err := k8sClient.Status().Update(h.ctx, u); err != nil {
		h.t.Fatal(err)
	}
}

// issueSecret writes the certificate into the Certificate's Secret, as cert-manager's issuing controller does.
func (h *harness) issueSecret(cert *unstructured.Unstructured, u *testutil.UserCertificate) {
	h.t.Helper()
	secretName, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	h.apply(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secretName, Namespace: h.ns, Annotations: map[string]string{
			"cert-manager.io/certificate-name": cert.GetName(), "cert-manager.io/issuer-name": "corporate-ca", "cert-manager.io/issuer-kind": "Issuer"}},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: u.CertPEM(), corev1.TLSPrivateKeyKey: u.KeyPEM(), "ca.crt": u.CertPEM()},
	})
}

// markIssued records revision as issued for u in the Certificate's status: Ready=True, dates, revision.
func (h *harness) markIssued(cert *unstructured.Unstructured, u *testutil.UserCertificate, revision int64) {
	h.t.Helper()
	h.setCertificateStatus(cert, map[string]any{
		"conditions": []any{certCondition(cert, "Ready", "True", "Ready", "Certificate is up to date and has not expired")},
		"notBefore":  u.Cert.NotBefore.UTC().Format(time.RFC3339), "notAfter": u.Cert.NotAfter.UTC().Format(time.RFC3339),
		"renewalTime": u.Cert.NotAfter.Add(-30 * 24 * time.Hour).UTC().Format(time.RFC3339), "revision": revision,
	})
}

func (h *harness) userPfxFromCertificate(name, certificate string) *intunev1alpha1.UserPfxCertificate {
	obj := h.userPfx(name, "unused")
	obj.Spec.Source = intunev1alpha1.CertificateSource{CertificateRef: &intunev1alpha1.CertificateReference{Name: certificate}}
	return obj
}

// A Certificate not issued yet makes no Graph call; its issuance imports it, woken by the Certificate's watch.
func TestCertificateRefWaitsForIssuanceThenImports(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	cert := h.certificate("alice-smime", "alice-smime-tls", nil)
	mark := h.journalMark()
	obj := h.userPfxFromCertificate("alice-smime", "alice-smime")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	cond := upfxReady(h, obj, metav1.ConditionFalse, intunev1alpha1.ReasonCertificateNotIssued)
	if !strings.Contains(cond.Message, "DoesNotExist") {
		t.Errorf("message should carry cert-manager's reason: %s", cond.Message)
	}

	// cert-manager writes the Secret first: the status still says not Ready, so still nothing is imported.
	alice := h.newUser("alice@contoso.com")
	logMark := h.logMark()
	h.issueSecret(cert, alice)
	h.setCertificateStatus(cert, map[string]any{"conditions": []any{
		certCondition(cert, "Ready", "False", "DoesNotExist", "Issuing certificate as Secret does not exist"),
		certCondition(cert, "Issuing", "True", "Issuing", "Issued temporary certificate"),
	}})
	h.waitPass(obj, logMark)
	if calls := h.graphCalls(mark); len(calls) != 0 {
		t.Fatalf("Graph calls before the Certificate is Ready: %q", calls)
	}

	h.markIssued(cert, alice, 1)
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
	if got, want := obj.Status.ID, h.recordID("alice@contoso.com", alice); got != want {
		t.Errorf("status.id = %s, want %s", got, want)
	}
	if _, ok := h.records(h.tenantID)[obj.Status.ID]; !ok {
		t.Error("the record is not in Intune")
	}
}

// A renewal is imported only once the Secret and the Certificate's status agree: a Secret holding the new
// certificate while the status still describes the old one (half rotated) never imports; the re-issue then
// rotates, keeping the previous record (smimeEncryption's default retention).
func TestCertificateRefRotatesOnlyWhenSecretAndStatusAgree(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	cert := h.certificate("alice-smime", "alice-smime-tls", nil)
	first := h.newUser("alice@contoso.com")
	h.issueSecret(cert, first)
	h.markIssued(cert, first, 1)
	obj := h.userPfxFromCertificate("alice-smime", "alice-smime")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
	firstID := obj.Status.ID

	// Renewal under way: Issuing=True, Ready stays True, the Secret holds the new certificate, the status the old.
	second, err := testutil.NewUserCertificate("alice@contoso.com", time.Now().Add(-time.Minute), time.Now().Add(400*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	mark := h.journalMark()
	status := map[string]any{
		"conditions": []any{certCondition(cert, "Ready", "True", "Ready", "Certificate is up to date and has not expired"),
			certCondition(cert, "Issuing", "True", "Renewing", "Renewing certificate as renewal was scheduled")},
		"notBefore": first.Cert.NotBefore.UTC().Format(time.RFC3339), "notAfter": first.Cert.NotAfter.UTC().Format(time.RFC3339), "revision": int64(1),
	}
	h.setCertificateStatus(cert, status)
	h.issueSecret(cert, second)
	// Any status write wakes the resource; a pass after logMark reads the Secret as written above.
	logMark := h.logMark()
	status["renewalTime"] = time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	h.setCertificateStatus(cert, status)
	h.waitPass(obj, logMark)
	cond := upfxReady(h, obj, metav1.ConditionFalse, intunev1alpha1.ReasonCertificateNotIssued)
	if !strings.Contains(cond.Message, "revision 1") {
		t.Errorf("message should name the Certificate's revision: %s", cond.Message)
	}
	if n := h.graphWrites(mark); n != 0 {
		t.Fatalf("%d Graph writes for a half-rotated Secret: %q", n, h.graphCalls(mark))
	}

	h.markIssued(cert, second, 2)
	h.eventually("rotation to the second certificate", func() error {
		upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
		if obj.Status.ID != h.recordID("alice@contoso.com", second) {
			return errNotYet("status.id " + obj.Status.ID)
		}
		return nil
	})
	if len(obj.Status.History) != 1 || obj.Status.History[0].ID != firstID {
		t.Errorf("history = %+v, want the first record %s kept", obj.Status.History, firstID)
	}
	records := h.records(h.tenantID)
	if _, ok := records[firstID]; !ok {
		t.Error("the superseded record was removed, but smimeEncryption keeps it")
	}
}

type errNotYet string

func (e errNotYet) Error() string { return string(e) }

// Without cert-manager's CRD, a certificateRef waits with a message saying so (and the operator starts).
func TestCertificateRefWithoutCertManager(t *testing.T) {
	_, err := readIssuedCertificate(context.Background(), noMatchReader{}, "pki", "alice")
	f := classify(err)
	if f.reason != intunev1alpha1.ReasonCertificateNotIssued || !strings.Contains(f.message, "cert-manager is not installed") || f.terminal {
		t.Fatalf("got %+v", f)
	}
	var connErr *connection.Error
	if _, err := selectSources(context.Background(), noMatchReader{}, certificateSet()); !errors.As(err, &connErr) || connErr.Reason != intunev1alpha1.ReasonCertificateNotIssued {
		t.Fatalf("a set of Certificates: %v", err)
	}
}

func certificateSet() *intunev1alpha1.UserPfxCertificateSet {
	return &intunev1alpha1.UserPfxCertificateSet{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "pki"},
		Spec: intunev1alpha1.UserPfxCertificateSetSpec{SourceKind: intunev1alpha1.SetSourceCertificate}}
}

// noMatchReader is an API server that serves no cert-manager kinds.
type noMatchReader struct{ client.Reader }

func (noMatchReader) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	return &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "cert-manager.io", Kind: "Certificate"}, SearchedVersions: []string{"v1"}}
}

func (noMatchReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "cert-manager.io", Kind: "CertificateList"}, SearchedVersions: []string{"v1"}}
}

// config/samples/cert-manager is valid against cert-manager's CRD and the operator's.
func TestCertManagerSampleIsAdmitted(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "config", "samples", "cert-manager", "staff-smime.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t)
	created := 0
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		u.SetNamespace(ns)
		if err := k8sClient.Create(context.Background(), u); err != nil {
			t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
		}
		created++
	}
	if created != 4 {
		t.Errorf("created %d objects, want 4", created)
	}
}
