package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
)

// cert-manager's Certificates are read as unstructured objects (and watched as metadata): its Go API would
// bring its dependencies into the operator. The operator never writes them.
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificates,verbs=get;list;watch

var certificateGVK = schema.GroupVersionKind{Group: "cert-manager.io", Version: "v1", Kind: "Certificate"}

// indexCertificateNames maps a Certificate to the resources whose source.certificateRef names it.
const indexCertificateNames = "intune.certops.dev/certificateNames"

// certManagerMissing is what a resource reads when cert-manager's Certificate kind is not served.
const certManagerMissing = "cert-manager is not installed in this cluster (the API server serves no cert-manager.io/v1 Certificate): " +
	"install cert-manager and restart the operator, or read the Secret with source.tls instead"

// certManagerInstalled asks discovery whether the API server serves cert-manager.io/v1 Certificates. The
// operator watches them only then, and starts either way.
func certManagerInstalled(cfg *rest.Config) (bool, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return false, err
	}
	resources, err := dc.ServerResourcesForGroupVersion(certificateGVK.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to discover cert-manager.io/v1: %w", err)
	}
	for _, r := range resources.APIResources {
		if r.Kind == certificateGVK.Kind {
			return true, nil
		}
	}
	return false, nil
}

// notIssued is the failure of a Certificate source that has nothing to import yet. Not terminal: the
// Certificate's watch wakes the resource when cert-manager finishes, and it is looked at again meanwhile.
func notIssued(format string, args ...any) error {
	return &connection.Error{Reason: intunev1alpha1.ReasonCertificateNotIssued, Message: fmt.Sprintf(format, args...)}
}

// issuedCertificate is what a cert-manager Certificate says it issued.
type issuedCertificate struct {
	secretName          string
	notBefore, notAfter time.Time
	revision            int64
}

// readIssuedCertificate reads the Certificate live and returns what it issued, or CertificateNotIssued
// while it is not Ready for its current spec.
func readIssuedCertificate(ctx context.Context, live client.Reader, namespace, name string) (*issuedCertificate, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(certificateGVK)
	if err := live.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, u); err != nil {
		switch {
		case meta.IsNoMatchError(err):
			return nil, notIssued("%s", certManagerMissing)
		case apierrors.IsNotFound(err):
			return nil, notIssued("cert-manager Certificate %q does not exist in namespace %q", name, namespace)
		}
		return nil, fmt.Errorf("failed to read Certificate %s/%s: %w", namespace, name, err)
	}
	ready, found := certificateReady(u)
	switch {
	case !found:
		return nil, notIssued("cert-manager Certificate %q has no Ready condition yet: waiting for cert-manager to issue it", name)
	case ready.Status != string(metav1.ConditionTrue):
		return nil, notIssued("cert-manager Certificate %q is not Ready (%s: %s): waiting for cert-manager to issue it",
			name, ready.Reason, truncate(ready.Message, 256))
	case ready.ObservedGeneration < u.GetGeneration():
		return nil, notIssued("cert-manager Certificate %q changed (generation %d) and cert-manager has not issued it since: waiting",
			name, u.GetGeneration())
	}
	secretName, _, _ := unstructured.NestedString(u.Object, "spec", "secretName")
	notAfter := nestedTime(u, "status", "notAfter")
	if secretName == "" || notAfter.IsZero() {
		return nil, notIssued("cert-manager Certificate %q is Ready but names no spec.secretName or status.notAfter: waiting", name)
	}
	revision, _, _ := unstructured.NestedInt64(u.Object, "status", "revision")
	return &issuedCertificate{secretName: secretName, notBefore: nestedTime(u, "status", "notBefore"), notAfter: notAfter, revision: revision}, nil
}

// readCertificateRef reads a Certificate source: the Certificate's Secret, only when it holds the
// certificate the Certificate's status describes. Between cert-manager writing a renewed certificate into
// the Secret and recording it in the status (or the other way round) the two differ: nothing is imported then.
func (r *sourceReader) readCertificateRef(ctx context.Context, live client.Reader, namespace string, ref *intunev1alpha1.CertificateReference) (*material, error) {
	issued, err := readIssuedCertificate(ctx, live, namespace, ref.Name)
	if err != nil {
		return nil, err
	}
	m, err := r.readTLS(ctx, live, namespace, &intunev1alpha1.TLSSecretSource{
		SecretRef: intunev1alpha1.LocalSecretReference{Name: issued.secretName}, PfxEncoding: ref.PfxEncoding})
	var connErr *connection.Error
	if errors.As(err, &connErr) && (connErr.Reason == intunev1alpha1.ReasonSecretNotFound || connErr.Reason == intunev1alpha1.ReasonSecretKeyMissing) {
		return nil, notIssued("cert-manager Certificate %q is Ready but its Secret is not complete yet: %s", ref.Name, connErr.Message)
	}
	if err != nil {
		return nil, err
	}
	leaf := m.Leaf
	if !leaf.NotAfter.Equal(issued.notAfter) || (!issued.notBefore.IsZero() && !leaf.NotBefore.Equal(issued.notBefore)) {
		return nil, notIssued("Secret %q holds a certificate valid until %s, but cert-manager Certificate %q (revision %d) describes one valid until %s: "+
			"waiting for cert-manager to finish issuing", issued.secretName, leaf.NotAfter.UTC().Format(time.RFC3339), ref.Name,
			issued.revision, issued.notAfter.UTC().Format(time.RFC3339))
	}
	return m, nil
}

// certificateCondition is the part of a cert-manager condition the operator reads.
type certificateCondition struct {
	Status, Reason, Message string
	ObservedGeneration      int64
}

func certificateReady(u *unstructured.Unstructured) (certificateCondition, bool) {
	conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conditions {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != "Ready" {
			continue
		}
		out := certificateCondition{}
		out.Status, _ = m["status"].(string)
		out.Reason, _ = m["reason"].(string)
		out.Message, _ = m["message"].(string)
		out.ObservedGeneration, _, _ = unstructured.NestedInt64(m, "observedGeneration")
		return out, true
	}
	return certificateCondition{}, false
}

func nestedTime(u *unstructured.Unstructured, fields ...string) time.Time {
	s, _, _ := unstructured.NestedString(u.Object, fields...)
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// certificateMetadata is a cert-manager Certificate as the metadata-only watch sees it.
func certificateMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(certificateGVK)
	return m
}

// certificateNames is the Certificate a resource's source names, for the index.
func certificateNames(o client.Object) []string {
	var src intunev1alpha1.CertificateSource
	switch c := o.(type) {
	case *intunev1alpha1.UserPfxCertificate:
		src = c.Spec.Source
	case *intunev1alpha1.PfxUserCertificate:
		src = c.Spec.Source
	}
	if src.CertificateRef == nil {
		return nil
	}
	return []string{src.CertificateRef.Name}
}

// watchCertificates indexes obj's kind by the Certificate its source names and, when cert-manager is
// installed, wakes its resources on every change of that Certificate (its status included: a metadata
// watch sees each new resourceVersion), so an issuance is imported at once. Kinds without a certificate
// source are left as they are.
func watchCertificates(ctx context.Context, mgr manager.Manager, b *builder.Builder, obj client.Object, refs referencing, installed bool) (*builder.Builder, error) {
	switch obj.(type) {
	case *intunev1alpha1.UserPfxCertificate, *intunev1alpha1.PfxUserCertificate:
	default:
		return b, nil
	}
	if err := indexField(ctx, mgr, obj, indexCertificateNames, inNamespace, certificateNames); err != nil {
		return nil, err
	}
	if !installed {
		return b, nil
	}
	c := mgr.GetClient()
	return b.WatchesMetadata(certificateMetadata(), handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, cert client.Object) []reconcile.Request {
		return refs.requests(ctx, c, indexCertificateNames, cert.GetName(), client.InNamespace(cert.GetNamespace()))
	}), builder.WithPredicates(secretsAfterStart)), nil
}
