package controller

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

// linesAfter counts the operator's log lines after mark that hold msg and belong to obj.
func (h *harness) linesAfter(mark int, obj client.Object, msg string) int {
	self := fmt.Sprintf(`"namespace": %q, "name": %q`, obj.GetNamespace(), obj.GetName())
	n := 0
	for _, line := range strings.Split(testLogSink.String()[mark:], "\n") {
		if strings.Contains(line, msg) && strings.Contains(line, self) {
			n++
		}
	}
	return n
}

// A resync of an unchanged resource reads no Secret (the metadata cache's resourceVersions say nothing
// changed) and writes no status; a Secret change the data does not follow (a label) costs one full pass.
func TestUserPfxUnchangedResyncReadsNoSecretAndWritesNoStatus(t *testing.T) {
	h := newHarness(t, harnessOptions{resync: 2 * time.Second})
	_, obj := h.importAlice("pw")
	// The first check turns Ready from Imported to InSync: a change a user reads, so written once.
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonInSync)
	h.get(obj)
	version, lastSync := obj.ResourceVersion, obj.Status.LastSyncTime

	mark, journal := h.logMark(), h.journalMark()
	h.eventually("two resyncs without a Secret read", func() error {
		if n := h.linesAfter(mark, obj, "Inputs unchanged: no Secret read"); n < 2 {
			return fmt.Errorf("%d so far", n)
		}
		return nil
	})
	h.get(obj)
	if obj.ResourceVersion != version || !obj.Status.LastSyncTime.Equal(lastSync) {
		t.Fatalf("resyncs that changed nothing wrote the resource: resourceVersion %s → %s, lastSyncTime %v → %v",
			version, obj.ResourceVersion, lastSync, obj.Status.LastSyncTime)
	}

	// A label moves the Secret's resourceVersion: the next pass reads the Secret, finds the same certificate,
	// and the passes after it again read none.
	secret := &corev1.Secret{}
	if err := k8sClient.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: "alice-pfx"}, secret); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(secret.DeepCopy())
	secret.Labels = map[string]string{"touched": "yes"}
	if err := k8sClient.Patch(h.ctx, secret, patch); err != nil {
		t.Fatal(err)
	}
	mark = h.logMark()
	h.eventually("a resync without a Secret read after the label", func() error {
		if n := h.linesAfter(mark, obj, "Inputs unchanged: no Secret read"); n < 1 {
			return fmt.Errorf("%d so far", n)
		}
		return nil
	})
	if n := h.graphWrites(journal); n != 0 {
		t.Fatalf("%d Graph writes: %v", n, h.graphCalls(journal))
	}
	h.get(obj)
	if obj.ResourceVersion != version {
		t.Fatalf("the label change wrote the resource's status (resourceVersion %s → %s)", version, obj.ResourceVersion)
	}
}

// The service lists a new record only after a while, and keeps listing a deleted one for a while. A record
// the listing does not show yet is read on its own, never re-imported; one deleted in Intune is re-imported
// once the listing stops showing it.
func TestUserPfxListLagNeitherReimportsNorHidesADeletion(t *testing.T) {
	h := newHarness(t, harnessOptions{resync: 2 * time.Second})
	h.sim.SetFaults(graphsim.Faults{CreateListLag: time.Hour, DeleteListLag: 3 * time.Second})
	_, obj := h.importAlice("pw")
	id := obj.Status.ID

	mark := h.journalMark()
	h.eventually("two resyncs", func() error {
		calls := strings.Join(h.graphCalls(mark), "\n")
		if n := strings.Count(calls, "GET /deviceManagement/userPfxCertificates/"+id+" 200"); n < 2 {
			return fmt.Errorf("%d reads of the record so far", n)
		}
		if !strings.Contains(calls, "GET /deviceManagement/userPfxCertificates 200") {
			return fmt.Errorf("no listing yet")
		}
		return nil
	})
	if n := h.graphWrites(mark); n != 0 {
		t.Fatalf("%d writes for a record the listing does not show yet: %v", n, h.graphCalls(mark))
	}

	h.sim.SetFaults(graphsim.Faults{DeleteListLag: 3 * time.Second})
	// Listed now: wait until a resync went by the listing alone.
	mark = h.journalMark()
	h.eventually("a resync by the listing alone", func() error {
		calls := h.graphCalls(mark)
		if len(calls) < 2 || calls[len(calls)-1] != "GET /deviceManagement/userPfxCertificates 200" ||
			strings.Contains(strings.Join(calls, "\n"), "userPfxCertificates/"+id) {
			return fmt.Errorf("calls so far: %v", calls)
		}
		return nil
	})
	if !h.sim.DeleteUserPFXCertificate(h.tenantID, id) {
		t.Fatal("graphsim did not hold the record")
	}
	h.waitEvent(obj, kindUserPfxCertificate, "Reimported")
	if _, ok := h.records(h.tenantID)[id]; !ok {
		t.Fatal("the record deleted in Intune was not re-imported")
	}
}

// The user of a second certificate was seen before: its import is a GET of the record and the POST.
func TestUserPfxImportForAKnownUserSkipsTheUserLookup(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.importAlice("pw")
	second := h.newUser("alice@contoso.com")
	h.pfxSecret(h.ns, "alice-second-pfx", second, "pw")
	obj := h.userPfx("alice-second", "alice-second-pfx")
	mark := h.journalMark()
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
	want := []string{"GET /deviceManagement/userPfxCertificates/" + obj.Status.ID + " 404", "POST /deviceManagement/userPfxCertificates 201"}
	if got := h.graphCalls(mark); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Graph calls %v, want %v", got, want)
	}
}
