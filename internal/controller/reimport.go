package controller

import (
	corev1 "k8s.io/api/core/v1"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

// takeReimportRequest honours the annotation intune.certops.dev/reimport (kubectl certops reimport): a value
// not yet in status.reimportRequested forgets status.sourceHash for this pass, so the pass neither waits for
// the next drift check nor trusts that Intune holds what was last pushed, and writes the record once more. The
// value is recorded at once: should the pass fail, the cleared hash alone makes the next pass push, and once a
// push succeeded the hash is back and the same value never forces another.
func (r *UserPfxCertificateReconciler) takeReimportRequest(obj *intunev1alpha1.UserPfxCertificate) {
	requested := obj.Annotations[intunev1alpha1.AnnotationReimport]
	if requested == "" || requested == obj.Status.ReimportRequested {
		return
	}
	obj.Status.ReimportRequested = requested
	obj.Status.SourceHash = ""
	r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "ReimportRequested", "Sync",
		"Annotation %s=%s: pushing the record to Intune again", intunev1alpha1.AnnotationReimport, requested)
}
