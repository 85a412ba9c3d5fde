package controller

import (
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

// annotate merges annotations into obj's.
func (h *harness) annotate(obj client.Object, annotations string) {
	h.t.Helper()
	patch := client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"annotations":`+annotations+`}}`))
	if err := k8sClient.Patch(h.ctx, obj, patch); err != nil {
		h.t.Fatal(err)
	}
}

func TestUserPfxReimportAnnotationPushesOncePerValue(t *testing.T) {
	h := newHarness(t, harnessOptions{}) // resync 1h: nothing but the annotation makes a pass write
	_, obj := h.importAlice("pw")
	id := obj.Status.ID

	// A new value: one PATCH of the unchanged record, at once, and the value recorded.
	mark, logs := h.journalMark(), h.logMark()
	h.annotate(obj, `{"`+intunev1alpha1.AnnotationReimport+`":"2026-01-02T03:04:05Z"}`)
	h.waitEvent(obj, kindUserPfxCertificate, "ReimportRequested")
	upfxReady(h, obj, "True", intunev1alpha1.ReasonUpdated)
	h.waitPass(obj, logs)
	assertCalls(t, h.graphCalls(mark),
		"GET /deviceManagement/userPfxCertificates/"+id+" 200", "PATCH /deviceManagement/userPfxCertificates/"+id+" 200")
	h.get(obj)
	if obj.Status.ReimportRequested != "2026-01-02T03:04:05Z" || obj.Status.SourceHash == "" {
		t.Fatalf("status.reimportRequested %q, sourceHash %q", obj.Status.ReimportRequested, obj.Status.SourceHash)
	}

	// The same value, with a pass woken by another annotation: nothing is written (nor read: not resync time).
	mark, logs = h.journalMark(), h.logMark()
	h.annotate(obj, `{"example.com/unrelated":"x"}`)
	h.waitPass(obj, logs)
	assertCalls(t, h.graphCalls(mark))

	// A record deleted in Intune is created again by the next value.
	if !h.sim.DeleteUserPFXCertificate(h.tenantID, id) {
		t.Fatal("graphsim did not hold the record")
	}
	mark, logs = h.journalMark(), h.logMark()
	h.annotate(obj, `{"`+intunev1alpha1.AnnotationReimport+`":"second"}`)
	h.waitEvent(obj, kindUserPfxCertificate, "Reimported")
	h.waitPass(obj, logs)
	if n := h.graphWrites(mark); n != 1 {
		t.Fatalf("%d writes, want the one create: %q", n, h.graphCalls(mark))
	}
	if _, ok := h.records(h.tenantID)[id]; !ok {
		t.Fatal("the record is not back in Intune")
	}
}
