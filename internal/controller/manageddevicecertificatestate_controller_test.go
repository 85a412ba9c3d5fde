package controller

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/graph"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

func mdcsReady(h *harness, obj *intunev1alpha1.ManagedDeviceCertificateState, status metav1.ConditionStatus, reason string) metav1.Condition {
	h.t.Helper()
	return h.waitReady(obj, func() []metav1.Condition { return obj.Status.Conditions }, status, reason)
}

// iosProfile adds an iosScep certificate profile to the harness tenant and returns its id.
func (h *harness) iosProfile() string {
	id := newGUID()
	h.sim.AddDeviceConfiguration(h.tenantID, id, "iosScep")
	return id
}

// statesPath is the Graph collection of an iosScep profile's device states (seed 004's first URL form).
func statesPath(profileID string) string {
	return "/deviceManagement/deviceConfigurations/" + profileID + "/microsoft.graph.iosScepCertificateProfile/managedDeviceCertificateStates"
}

func (h *harness) deviceStates() map[string]graphsim.ManagedDeviceCertificateState {
	out := map[string]graphsim.ManagedDeviceCertificateState{}
	for _, s := range h.sim.ManagedDeviceCertificateStates(h.tenantID) {
		out[s.ID] = s
	}
	return out
}

// deviceState returns a resource for an iOS device whose certificate is the tls.crt of secretName.
func (h *harness) deviceState(name, profileID, secretName string) *intunev1alpha1.ManagedDeviceCertificateState {
	return &intunev1alpha1.ManagedDeviceCertificateState{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: intunev1alpha1.ManagedDeviceCertificateStateSpec{
			ConnectionRef:         &intunev1alpha1.ConnectionReference{Kind: "ClusterGraphConnection", Name: h.connection},
			DeviceConfigurationID: profileID,
			ProfileType:           "iosScep",
			DevicePlatform:        "iOS",
			DeviceDisplayName:     "Alice's iPhone",
			UserDisplayName:       "Alice",
			CertificateSecretRef:  &intunev1alpha1.CertificateSecretReference{Name: secretName},
		},
	}
}

// sameSerialNumber compares a hex serial with the certificate's, as numbers.
func sameSerialNumber(hexSerial string, want *big.Int) bool {
	got, ok := new(big.Int).SetString(hexSerial, 16)
	return ok && got.Cmp(want) == 0
}

func TestDeviceStateCreatesFromTheCertificateSecretAndKeepsItInSync(t *testing.T) {
	h := newHarness(t, harnessOptions{resync: 2 * time.Second})
	profile := h.iosProfile()
	alice := h.newUser("alice@contoso.com")
	h.tlsSecret("alice-device", alice)
	mark := h.journalMark()
	obj := h.deviceState("alice-iphone", profile, "alice-device")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	cond := mdcsReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonCreated)

	assertCalls(t, h.graphCalls(mark),
		"GET "+statesPath(profile)+" 200", // looked for a record of this certificate first
		"POST "+statesPath(profile)+" 201")
	recs := h.deviceStates()
	rec, ok := recs[obj.Status.ID]
	if len(recs) != 1 || !ok {
		t.Fatalf("graphsim holds %v, status id %q", keys(recs), obj.Status.ID)
	}
	if !strings.Contains(cond.Message, obj.Status.ID) {
		t.Errorf("Ready message %q does not name the record", cond.Message)
	}
	// What Intune holds, against facts read from the certificate here.
	if rec.DeviceConfigurationID != profile || rec.ProfileType != "iosScep" || rec.DevicePlatform != "iOS" ||
		rec.DeviceDisplayName != "Alice's iPhone" || rec.UserDisplayName != "Alice" {
		t.Errorf("record placement and names = %+v", rec)
	}
	if rec.CertificateThumbprint != thumbprintOf(alice) || !sameSerialNumber(rec.CertificateSerialNumber, alice.Cert.SerialNumber) ||
		rec.CertificateKeyLength != int32(alice.Key.N.BitLen()) || rec.CertificateIssuer != alice.Cert.Issuer.String() ||
		!rec.CertificateExpirationDateTime.Equal(alice.Cert.NotAfter) {
		t.Errorf("record certificate facts = %+v", rec)
	}
	if rec.CertificateEnhancedKeyUsage != "emailProtection, clientAuth" {
		t.Errorf("enhancedKeyUsage %q, want the certificate's two usages", rec.CertificateEnhancedKeyUsage)
	}
	if rec.CertificateKeyUsage != "keyEncipherment" {
		t.Errorf("certificateKeyUsage %q: the certificate allows keyEncipherment", rec.CertificateKeyUsage)
	}
	// The status says what was pushed.
	st := obj.Status
	if st.Certificate == nil || st.Certificate.Thumbprint != rec.CertificateThumbprint || st.Certificate.SerialNumber != rec.CertificateSerialNumber ||
		st.Certificate.Issuer != rec.CertificateIssuer || st.Certificate.KeyLength != rec.CertificateKeyLength ||
		st.Certificate.EnhancedKeyUsage != rec.CertificateEnhancedKeyUsage || !st.Certificate.ExpirationDateTime.Time.Equal(alice.Cert.NotAfter) {
		t.Errorf("status.certificate = %+v, record %+v", st.Certificate, rec)
	}
	if st.CertificateKeyUsage != "keyEncipherment" || st.SourceHash == "" || st.LastSyncTime == nil || st.ObservedGeneration != obj.Generation {
		t.Errorf("status bookkeeping = %+v", st)
	}
	if !controllerutil.ContainsFinalizer(obj, Finalizer) {
		t.Error("no finalizer")
	}
	h.waitEvent(obj, kindManagedDeviceCertificateState, "Created")

	// Resyncs of a record in sync read the profile's listing (once per period for all its resources), not
	// the record, and write nothing.
	id := obj.Status.ID
	mark = h.journalMark()
	h.eventually("two resyncs", func() error {
		if n := strings.Count(strings.Join(h.graphCalls(mark), "\n"), "GET "+statesPath(profile)+" 200"); n < 2 {
			return fmt.Errorf("%d listings so far", n)
		}
		return nil
	})
	if n := h.graphWrites(mark); n != 0 {
		t.Fatalf("%d writes during steady state: %v", n, h.graphCalls(mark))
	}
	if n := strings.Count(strings.Join(h.graphCalls(mark), "\n"), "GET "+statesPath(profile)+"/"); n != 0 {
		t.Fatalf("%d reads of the record itself while the listing shows it as wanted: %v", n, h.graphCalls(mark))
	}

	// Deleted in Intune: recreated, once.
	if err := h.graphClient().DeleteManagedDeviceCertificateState(h.ctx, graph.CertificateProfile{DeviceConfigurationID: profile, Type: "iosScep"}, id); err != nil {
		t.Fatal(err)
	}
	h.waitEvent(obj, kindManagedDeviceCertificateState, "Recreated")
	h.eventually("status names the new record", func() error {
		h.get(obj)
		if _, ok := h.deviceStates()[obj.Status.ID]; !ok || obj.Status.ID == id {
			return fmt.Errorf("status id %s, records %v", obj.Status.ID, keys(h.deviceStates()))
		}
		return nil
	})
	if n := len(h.deviceStates()); n != 1 {
		t.Errorf("%d records after the recreate, want 1", n)
	}
}

// deviceCertificate issues a self-signed device certificate with only the digitalSignature key usage, on
// an ECDSA key, as a PFX protected by password.
func deviceCertificate(t *testing.T, password string) (*x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "device-42", Organization: []string{"Contoso Devices"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	data, err := pkcs12.Modern.Encode(key, cert, nil, password)
	if err != nil {
		t.Fatal(err)
	}
	return cert, data
}

func TestDeviceStateReadsAPfxAndExplicitFactsWin(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	profile := h.iosProfile()
	cert, data := deviceCertificate(t, "device-pw")
	h.apply(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "device", Namespace: h.ns},
		Data: map[string][]byte{"device.pfx": data, "pw": []byte("device-pw")}})
	obj := h.deviceState("device-42", profile, "device")
	obj.Spec.CertificateSecretRef = &intunev1alpha1.CertificateSecretReference{Name: "device", Key: "device.pfx", PasswordKey: "pw"}
	obj.Spec.Certificate = &intunev1alpha1.CertificateFacts{Issuer: "CN=Contoso Device CA", KeyLength: 384}
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	mdcsReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonCreated)
	rec := h.deviceStates()[obj.Status.ID]
	sum := thumbprintOfDER(cert.Raw)
	if rec.CertificateIssuer != "CN=Contoso Device CA" || rec.CertificateKeyLength != 384 {
		t.Errorf("explicit values lost: issuer %q, key length %d", rec.CertificateIssuer, rec.CertificateKeyLength)
	}
	if rec.CertificateThumbprint != sum || !sameSerialNumber(rec.CertificateSerialNumber, cert.SerialNumber) ||
		rec.CertificateEnhancedKeyUsage != "clientAuth" || !rec.CertificateExpirationDateTime.Equal(cert.NotAfter) {
		t.Errorf("derived values wrong: %+v", rec)
	}
	if rec.CertificateKeyUsage != "digitalSignature" || obj.Status.CertificateKeyUsage != "digitalSignature" {
		t.Errorf("certificateKeyUsage %q/%q: the certificate allows only digitalSignature", rec.CertificateKeyUsage, obj.Status.CertificateKeyUsage)
	}
	if obj.Status.Certificate.Issuer != "CN=Contoso Device CA" || obj.Status.Certificate.Thumbprint != sum {
		t.Errorf("status.certificate = %+v", obj.Status.Certificate)
	}
}

func TestDeviceStatePatchesWhenTheSpecOrTheCertificateChanges(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	profile := h.iosProfile()
	h.tlsSecret("alice-device", h.newUser("alice@contoso.com"))
	obj := h.deviceState("alice-iphone", profile, "alice-device")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	mdcsReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonCreated)
	id := obj.Status.ID
	item := statesPath(profile) + "/" + id

	mark := h.journalMark()
	h.update(obj, func() {
		obj.Spec.DeviceDisplayName = "Alice's new iPhone"
		obj.Spec.CertificateKeyUsage = "digitalSignature"
	})
	mdcsReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonUpdated)
	assertCalls(t, h.graphCalls(mark), "GET "+item+" 200", "PATCH "+item+" 200")
	if rec := h.deviceStates()[id]; rec.DeviceDisplayName != "Alice's new iPhone" || rec.CertificateKeyUsage != "digitalSignature" {
		t.Errorf("record after the spec change = %+v", rec)
	}
	h.waitEvent(obj, kindManagedDeviceCertificateState, "Updated")

	renewed := h.newUser("alice@contoso.com")
	mark = h.journalMark()
	h.tlsSecret("alice-device", renewed)
	h.eventually("status follows the renewed certificate", func() error {
		h.get(obj)
		if c := obj.Status.Certificate; c == nil || c.Thumbprint != thumbprintOf(renewed) {
			return fmt.Errorf("status.certificate %+v", c)
		}
		return nil
	})
	assertCalls(t, h.graphCalls(mark), "GET "+item+" 200", "PATCH "+item+" 200")
	recs := h.deviceStates()
	if rec := recs[id]; len(recs) != 1 || rec.CertificateThumbprint != thumbprintOf(renewed) ||
		!sameSerialNumber(rec.CertificateSerialNumber, renewed.Cert.SerialNumber) || !rec.CertificateExpirationDateTime.Equal(renewed.Cert.NotAfter) {
		t.Errorf("records after the renewal: %+v", recs)
	}
}

func TestDeviceStateDeletionHonoursDeletionPolicy(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	profile := h.iosProfile()
	h.tlsSecret("alice-device", h.newUser("alice@contoso.com"))
	h.tlsSecret("bob-device", h.newUser("bob@contoso.com"))
	deleted, orphaned := h.deviceState("alice", profile, "alice-device"), h.deviceState("bob", profile, "bob-device")
	orphaned.Spec.DeletionPolicy = intunev1alpha1.DeletionPolicyOrphan
	for _, obj := range []*intunev1alpha1.ManagedDeviceCertificateState{deleted, orphaned} {
		if err := k8sClient.Create(h.ctx, obj); err != nil {
			t.Fatal(err)
		}
		mdcsReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonCreated)
	}

	mark := h.journalMark()
	for _, obj := range []*intunev1alpha1.ManagedDeviceCertificateState{deleted, orphaned} {
		h.deleteAndWait(obj)
	}
	assertCalls(t, h.graphCalls(mark), "DELETE "+statesPath(profile)+"/"+deleted.Status.ID+" 204")
	recs := h.deviceStates()
	if _, ok := recs[deleted.Status.ID]; ok {
		t.Error("the Delete policy left the record")
	}
	if _, ok := recs[orphaned.Status.ID]; !ok {
		t.Error("the Orphan policy deleted the record")
	}
}

// deleteAndWait deletes obj and waits until the API server no longer has it.
func (h *harness) deleteAndWait(obj client.Object) {
	h.t.Helper()
	if err := k8sClient.Delete(h.ctx, obj); err != nil {
		h.t.Fatal(err)
	}
	h.eventually(obj.GetName()+" gone", func() error {
		err := k8sClient.Get(h.ctx, client.ObjectKeyFromObject(obj), obj.DeepCopyObject().(client.Object))
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
}

func TestDeviceStateReportsBadInputWithoutWriting(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	profile := h.iosProfile()
	mark := h.journalMark()

	missing := h.deviceState("missing-secret", profile, "no-such-secret")
	garbage := h.deviceState("garbage", profile, "garbage")
	h.apply(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "garbage", Namespace: h.ns},
		Data: map[string][]byte{"tls.crt": []byte("this is not a certificate")}})
	for _, obj := range []*intunev1alpha1.ManagedDeviceCertificateState{missing, garbage} {
		if err := k8sClient.Create(h.ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	if cond := mdcsReady(h, missing, metav1.ConditionFalse, intunev1alpha1.ReasonSecretNotFound); !strings.Contains(cond.Message, `"no-such-secret"`) {
		t.Errorf("message %q does not name the Secret", cond.Message)
	}
	mdcsReady(h, garbage, metav1.ConditionFalse, "InvalidCertificate")
	if calls := h.graphCalls(mark); len(calls) != 0 {
		t.Errorf("Graph calls with unreadable input: %v", calls)
	}

	// A profile Intune does not have: Graph answers 404 to the lookup, and nothing is created.
	unknownProfile := newGUID()
	h.tlsSecret("alice-device", h.newUser("alice@contoso.com"))
	obj := h.deviceState("unknown-profile", unknownProfile, "alice-device")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	cond := mdcsReady(h, obj, metav1.ConditionFalse, intunev1alpha1.ReasonProfileNotFound)
	if !strings.Contains(cond.Message, unknownProfile) {
		t.Errorf("message %q does not name the profile", cond.Message)
	}
	assertRepeatsOf(t, h.graphCalls(mark), "GET "+statesPath(unknownProfile)+" 404") // nothing is created
	h.waitEvent(obj, kindManagedDeviceCertificateState, "Failed")
}

// A crash between the POST and the status write leaves a record the resource does not know: Graph's ids
// are random, so only the certificate finds it. Here another tool (or an earlier run) posted it.
func TestDeviceStateAdoptsARecordPostedBeforeItExisted(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	profile := h.iosProfile()
	alice := h.newUser("alice@contoso.com")
	h.tlsSecret("alice-device", alice)
	notAfter := alice.Cert.NotAfter
	posted, err := h.graphClient().CreateManagedDeviceCertificateState(h.ctx, graph.CertificateProfile{DeviceConfigurationID: profile, Type: "iosScep"},
		&graph.ManagedDeviceCertificateState{
			DevicePlatform: "iOS", CertificateKeyUsage: "keyEncipherment", DeviceDisplayName: "an older name",
			CertificateThumbprint: strings.ToUpper(thumbprintOf(alice)),
			// Another tool's spelling of the same serial: lower case, no sign byte.
			CertificateSerialNumber:       fmt.Sprintf("%x", alice.Cert.SerialNumber),
			CertificateExpirationDateTime: &notAfter,
		})
	if err != nil {
		t.Fatal(err)
	}
	// A record of another certificate in the same profile is left alone.
	other := h.newUser("bob@contoso.com")
	if _, err := h.graphClient().CreateManagedDeviceCertificateState(h.ctx, graph.CertificateProfile{DeviceConfigurationID: profile, Type: "iosScep"},
		&graph.ManagedDeviceCertificateState{DevicePlatform: "iOS", CertificateThumbprint: thumbprintOf(other),
			CertificateSerialNumber: fmt.Sprintf("%X", other.Cert.SerialNumber)}); err != nil {
		t.Fatal(err)
	}

	mark := h.journalMark()
	obj := h.deviceState("alice-iphone", profile, "alice-device")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	mdcsReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonAdopted)
	assertCalls(t, h.graphCalls(mark),
		"GET "+statesPath(profile)+" 200",
		"PATCH "+statesPath(profile)+"/"+posted.ID+" 200") // adopted, then made equal to the spec
	recs := h.deviceStates()
	if obj.Status.ID != posted.ID || len(recs) != 2 {
		t.Fatalf("status id %s (posted %s), records %v", obj.Status.ID, posted.ID, keys(recs))
	}
	if rec := recs[posted.ID]; rec.DeviceDisplayName != "Alice's iPhone" || rec.CertificateIssuer != alice.Cert.Issuer.String() {
		t.Errorf("adopted record = %+v", rec)
	}
	h.waitEvent(obj, kindManagedDeviceCertificateState, "Adopted")
}

func thumbprintOfDER(der []byte) string {
	sum := sha1.Sum(der)
	return hex.EncodeToString(sum[:])
}
