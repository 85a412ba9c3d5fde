package controller

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

// Tests of the paths where today's Graph differs from the seed pages or fails in ways a gentle emulator
// hides: URL forms and schema of managedDeviceCertificateState, writes that act and then fail, lists that
// lag, PATCH answered 204, enums in PascalCase, 403.

// Every profile type is addressed by its own type cast; the Wi-Fi nesting only when asked for, with the
// Wi-Fi configuration's id. Only properties today's type has are sent (spec.serverUrl is not).
func TestDeviceStateUsesTheRoutedURLFormsAndTodaysSchema(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice := h.newUser("alice@contoso.com")
	h.tlsSecret("alice-device", alice)

	profile, wifi := newGUID(), newGUID()
	h.sim.AddDeviceConfiguration(h.tenantID, profile, "windows10Pkcs")
	h.sim.AddConfiguration(h.tenantID, graphsim.DeviceConfiguration{ID: wifi,
		ProfileType: "windowsWifiEnterpriseEAPConfiguration", IdentityCertificateID: profile})
	mark := h.journalMark()
	direct := h.deviceState("direct", profile, "alice-device")
	direct.Spec.ProfileType, direct.Spec.DevicePlatform = "windows10Pkcs", "windows10AndLater"
	direct.Spec.ServerURL = "https://scep.example/" // deprecated: kept in the spec, never sent
	direct.Spec.CertificateIssuanceState = "issued"
	direct.Spec.CertificateRevokeStatus = "none"
	if err := k8sClient.Create(h.ctx, direct); err != nil {
		t.Fatal(err)
	}
	mdcsReady(h, direct, metav1.ConditionTrue, intunev1alpha1.ReasonCreated)
	cast := "/deviceManagement/deviceConfigurations/" + profile + "/microsoft.graph.windows10PkcsCertificateProfile/managedDeviceCertificateStates"
	assertCalls(t, h.graphCalls(mark), "GET "+cast+" 200", "POST "+cast+" 201")
	rec := h.deviceStates()[direct.Status.ID]
	if rec.CertificateEnhancedKeyUsage == "" || rec.CertificateIssuanceState != "issued" || rec.CertificateRevokeStatus != "none" ||
		rec.CertificateIssuanceDateTime.IsZero() || !rec.CertificateIssuanceDateTime.Equal(alice.Cert.NotBefore) {
		t.Errorf("record %+v: want the EKU, issuance state, revoke status and issuance date sent", rec)
	}

	// The same profile reached through the Wi-Fi configuration that uses it: the same records.
	h.deleteAndWait(direct)
	mark = h.journalMark()
	nested := h.deviceState("nested", wifi, "alice-device")
	nested.Spec.ProfileType, nested.Spec.DevicePlatform = "windows10Pkcs", "windows10AndLater"
	nested.Spec.ReachedThrough = intunev1alpha1.ReachedThrough("WindowsWifiEnterpriseEAP")
	if err := k8sClient.Create(h.ctx, nested); err != nil {
		t.Fatal(err)
	}
	mdcsReady(h, nested, metav1.ConditionTrue, intunev1alpha1.ReasonCreated)
	through := "/deviceManagement/deviceConfigurations/" + wifi + "/microsoft.graph.windowsWifiEnterpriseEAPConfiguration" +
		"/identityCertificateForClientAuthentication/microsoft.graph.windows10PkcsCertificateProfile/managedDeviceCertificateStates"
	assertCalls(t, h.graphCalls(mark), "GET "+through+" 200", "POST "+through+" 201")
	if rec := h.deviceStates()[nested.Status.ID]; rec.DeviceConfigurationID != profile {
		t.Errorf("record under configuration %s, want the profile %s the Wi-Fi configuration uses", rec.DeviceConfigurationID, profile)
	}

	// A nesting that does not fit the profile type is refused at admission.
	bad := h.deviceState("bad-nesting", wifi, "alice-device")
	bad.Spec.ReachedThrough = intunev1alpha1.ReachedThrough("WindowsWifiEnterpriseEAP") // with iosScep
	if err := k8sClient.Create(h.ctx, bad); err == nil || !strings.Contains(err.Error(), "reachedThrough") {
		t.Errorf("create with a nesting iosScep lacks: %v", err)
	}
}

// The create acted and its answer was lost (500, 504 or a dropped connection), while the service lists new
// records late: the resource keeps looking for the record and never posts a second one.
func TestDeviceStateCreateThatActedThenFailedIsNeverRepeated(t *testing.T) {
	for _, fault := range []int{500, 504, graphsim.DropConnection} {
		t.Run(fmt.Sprint(fault), func(t *testing.T) {
			// The settle time outlasts the list lag, as the default (2m) outlasts the service's.
			h := newHarness(t, harnessOptions{createSettle: 30 * time.Second})
			profile := h.iosProfile()
			h.tlsSecret("alice-device", h.newUser("alice@contoso.com"))
			h.waitConnectionReady()
			h.sim.SetFaults(graphsim.Faults{ActThenFailScript: []int{fault}, CreateListLag: 3 * time.Second})
			mark := h.journalMark()
			obj := h.deviceState("acted", profile, "alice-device")
			if err := k8sClient.Create(h.ctx, obj); err != nil {
				t.Fatal(err)
			}
			mdcsReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonCreated)
			states := h.deviceStates()
			if _, ok := states[obj.Status.ID]; len(states) != 1 || !ok || obj.Status.CreateStartedTime != nil {
				t.Errorf("records %v, status id %s, mark %v: want the one record, recorded", keys(states), obj.Status.ID, obj.Status.CreateStartedTime)
			}
			if n := strings.Count(strings.Join(h.graphCalls(mark), "\n"), "POST "); n != 1 {
				t.Errorf("%d POSTs, want 1: %v", n, h.graphCalls(mark))
			}
		})
	}
}

// A PATCH answered 204 without a body is success; the record is read back for the status.
func TestDeviceStatePatchAnsweredNoContent(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	profile := h.iosProfile()
	h.tlsSecret("alice-device", h.newUser("alice@contoso.com"))
	obj := h.deviceState("no-content", profile, "alice-device")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	mdcsReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonCreated)
	h.sim.SetFaults(graphsim.Faults{PatchNoContent: true})
	mark := h.journalMark()
	h.update(obj, func() {
		obj.Spec.DeviceDisplayName = "Alice's other iPhone"
	})
	mdcsReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonUpdated)
	item := statesPath(profile) + "/" + obj.Status.ID
	assertCalls(t, h.graphCalls(mark), "GET "+item+" 200", "PATCH "+item+" 204", "GET "+item+" 200")
	if rec := h.deviceStates()[obj.Status.ID]; rec.DeviceDisplayName != "Alice's other iPhone" {
		t.Errorf("record display name %q", rec.DeviceDisplayName)
	}
}

// Graph answers enums in PascalCase: the record still matches the spec, and a resync writes nothing.
func TestPascalCaseEnumAnswersMatchTheSpec(t *testing.T) {
	h := newHarness(t, harnessOptions{resync: 2 * time.Second})
	h.sim.SetFaults(graphsim.Faults{PascalCaseEnums: true})
	profile := h.iosProfile()
	alice := h.newUser("alice@contoso.com")
	h.tlsSecret("alice-device", alice)
	h.pfxSecret(h.ns, "alice-pfx", alice, "pw")
	device := h.deviceState("pascal", profile, "alice-device")
	user := h.userPfx("pascal", "alice-pfx")
	if err := k8sClient.Create(h.ctx, device); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Create(h.ctx, user); err != nil {
		t.Fatal(err)
	}
	mdcsReady(h, device, metav1.ConditionTrue, intunev1alpha1.ReasonCreated)
	upfxReady(h, user, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
	mark := h.journalMark()
	mdcsReady(h, device, metav1.ConditionTrue, intunev1alpha1.ReasonInSync)
	upfxReady(h, user, metav1.ConditionTrue, intunev1alpha1.ReasonInSync)
	if n := h.graphWrites(mark); n != 0 {
		t.Errorf("%d writes on resyncs of records Graph reads back in PascalCase: %v", n, h.graphCalls(mark))
	}
}

// A 403 (the application lacks a permission) is Graph refusing what was asked: GraphRejected, not retried
// as a transient error.
func TestGraphForbiddenIsGraphRejected(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.pfxSecret(h.ns, "alice-pfx", h.newUser("alice@contoso.com"), "pw")
	h.waitConnectionReady()
	h.sim.SetFaults(graphsim.Faults{Script: []int{403}})
	obj := h.userPfx("forbidden", "alice-pfx")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	cond := upfxReady(h, obj, metav1.ConditionFalse, intunev1alpha1.ReasonGraphRejected)
	if !strings.Contains(cond.Message, "DeviceManagementConfiguration.ReadWrite.All") {
		t.Errorf("message %q does not name the permission to grant", cond.Message)
	}
}

// The record was created between this pass's look and its POST (the service answers 409): the pass makes
// it its own with an update, and there is one record.
func TestUserPfxConflictOnCreateAdoptsTheRecord(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice := h.newUser("alice@contoso.com")
	h.pfxSecret(h.ns, "alice-pfx", alice, "pw")
	h.waitConnectionReady()
	h.importOutsideTheOperator(alice, "pw")
	id := h.recordID("alice@contoso.com", alice)
	// The user lookup is answered; the look for the record is told 404, as a lagging replica would.
	h.sim.SetFaults(graphsim.Faults{Script: []int{0, 404}})
	mark := h.journalMark()
	obj := h.userPfx("conflict", "alice-pfx")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
	record := "/deviceManagement/userPfxCertificates/" + id
	assertCalls(t, h.graphCalls(mark)[:4], "GET /users/alice@contoso.com 200", "GET "+record+" 404",
		"POST /deviceManagement/userPfxCertificates 409", "PATCH "+record+" 200")
	if recs := h.records(h.tenantID); len(recs) != 1 || obj.Status.ID != id {
		t.Errorf("records %v, status id %s", keys(recs), obj.Status.ID)
	}
}

// The service keeps listing a deleted record for a while: deletion waits (Deleting) until the list, which is
// what Microsoft's tool and an admin look at, no longer shows it.
func TestUserPfxDeletionWaitsUntilTheListNoLongerShowsTheRecord(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice := h.newUser("alice@contoso.com")
	h.pfxSecret(h.ns, "alice-pfx", alice, "pw")
	obj := h.userPfx("lingering", "alice-pfx")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
	h.sim.SetFaults(graphsim.Faults{DeleteListLag: 4 * time.Second})
	if err := k8sClient.Delete(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	cond := upfxReady(h, obj, metav1.ConditionFalse, intunev1alpha1.ReasonDeleting)
	if !strings.Contains(cond.Message, "still lists") {
		t.Errorf("Deleting message %q", cond.Message)
	}
	h.deleteAndWait(obj) // gone once the list stopped showing the record
	if recs := h.records(h.tenantID); len(recs) != 0 {
		t.Errorf("records %v left", keys(recs))
	}
}

// The import acted and its answer was lost: the record's id is deterministic, so the next pass reads it,
// adopts it as its own import, and posts nothing more. A later PATCH answered 204 is success too.
func TestUserPfxCreateThatActedThenFailedIsAdoptedAndPatchNoContentIsSuccess(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice := h.newUser("alice@contoso.com")
	h.pfxSecret(h.ns, "alice-pfx", alice, "pw")
	h.waitConnectionReady()
	h.sim.SetFaults(graphsim.Faults{ActThenFailScript: []int{504}})
	mark := h.journalMark()
	obj := h.userPfx("acted", "alice-pfx")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonAdopted)
	id := h.recordID("alice@contoso.com", alice)
	if n := strings.Count(strings.Join(h.graphCalls(mark), "\n"), "POST "); n != 1 || obj.Status.ID != id {
		t.Errorf("%d POSTs, status id %s: %v", n, obj.Status.ID, h.graphCalls(mark))
	}
	if recs := h.records(h.tenantID); len(recs) != 1 {
		t.Errorf("records %v", keys(recs))
	}

	h.sim.SetFaults(graphsim.Faults{PatchNoContent: true})
	mark = h.journalMark()
	h.update(obj, func() {
		obj.Spec.IntendedPurpose = "smimeSigning"
	})
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonUpdated)
	if !slices.Contains(h.graphCalls(mark), "PATCH /deviceManagement/userPfxCertificates/"+id+" 204") {
		t.Errorf("calls %v, want the PATCH answered 204", h.graphCalls(mark))
	}
	if rec := h.records(h.tenantID)[id]; rec.IntendedPurpose != "smimeSigning" {
		t.Errorf("record purpose %q", rec.IntendedPurpose)
	}
}

// A resource is deleted while its create acted, lost its answer and its record is not listed yet: status has
// the create's mark but no id. The deletion waits for the list to show the record and deletes it, for every
// kind whose id Graph assigns; none is left in Intune without a resource (finding 8 of docs/reliability.md).
func TestDeletionRemovesTheRecordOfACreateWhoseAnswerWasLost(t *testing.T) {
	for _, kind := range []string{kindManagedDeviceCertificateState, kindPfxUserCertificate, kindPfxRecryptionRequest} {
		t.Run(kind, func(t *testing.T) {
			h := newHarness(t, harnessOptions{createSettle: time.Minute})
			var obj client.Object
			var records func() int
			switch kind {
			case kindManagedDeviceCertificateState:
				h.tlsSecret("alice-device", h.newUser("alice@contoso.com"))
				obj, records = h.deviceState("lost", h.iosProfile(), "alice-device"), func() int { return len(h.deviceStates()) }
			case kindPfxUserCertificate:
				h.pfxSecret(h.ns, "alice-pfx", h.newUser("alice@contoso.com"), "pw")
				obj, records = h.pfxUser("lost", "", "alice-pfx"), func() int { return len(h.sim.PfxUserCertificates(h.tenantID)) }
			case kindPfxRecryptionRequest:
				obj, records = h.recryption("lost"), func() int { return len(h.recryptionRecords()) }
			}
			h.waitConnectionReady()
			// Listed 8 s after the create: a pass that does not find it waits up to 15 s before looking again,
			// so the deletion below starts while status holds the mark and no id.
			h.sim.SetFaults(graphsim.Faults{ActThenFailScript: []int{500}, CreateListLag: 8 * time.Second})
			if err := k8sClient.Create(h.ctx, obj); err != nil {
				t.Fatal(err)
			}
			h.eventually("the create acted and its answer was lost", func() error {
				if n := records(); n != 1 {
					return fmt.Errorf("%d records", n)
				}
				h.get(obj)
				if mark, id := markAndID(obj); mark == nil || id != "" {
					return fmt.Errorf("status mark %v, id %q", mark, id)
				}
				return nil
			})
			mark := h.journalMark()
			h.deleteAndWait(obj)
			if n := records(); n != 0 {
				t.Errorf("%d records left in Intune after the deletion, want 0; calls %v", n, h.graphCalls(mark))
			}
			if !slices.ContainsFunc(h.graphCalls(mark), func(c string) bool { return strings.HasPrefix(c, "DELETE ") && strings.HasSuffix(c, " 204") }) {
				t.Errorf("no DELETE answered 204 among %v", h.graphCalls(mark))
			}
		})
	}
}

// markAndID is a resource's create mark and record id.
func markAndID(obj client.Object) (*metav1.Time, string) {
	switch o := obj.(type) {
	case *intunev1alpha1.ManagedDeviceCertificateState:
		return o.Status.CreateStartedTime, o.Status.ID
	case *intunev1alpha1.PfxUserCertificate:
		return o.Status.CreateStartedTime, o.Status.ID
	case *intunev1alpha1.PfxRecryptionRequest:
		return o.Status.CreateStartedTime, o.Status.ID
	}
	panic(fmt.Sprintf("%T has no create mark", obj))
}
