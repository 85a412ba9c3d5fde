package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

// lastApplied is the annotation kubectl apply leaves: a copy of the whole manifest, which for a Secret can be
// its data.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// CacheOptions is the manager's cache: every namespace, or only those given.
func CacheOptions(namespaces ...string) cache.Options {
	opts := cache.Options{DefaultTransform: cache.TransformStripManagedFields(), ByObject: cacheByObject()}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}

// cacheByObject trims what the manager's cache keeps of each kind to what the controllers read from it. The
// cache serves only the watches, their predicates and the field indexes: every reconcile reads its resource,
// Secrets and ConfigMaps live from the API server. Nothing reads managedFields.
//   - Secrets (clusters hold tens of thousands, most none of ours): name, namespace and resourceVersion, to map
//     a change to the resources reading it. Their data is never listed: the watch is metadata-only.
//   - The certificate kinds (thousands): spec and metadata, for the indexes and the generation and annotation
//     predicates; their status is read live, so a status written moments before is never missed.
//   - Connections (a handful) stay whole: their readiness wakes the resources using them.
func cacheByObject() map[client.Object]cache.ByObject {
	specOnly := cache.ByObject{Transform: withoutStatus}
	return map[client.Object]cache.ByObject{
		&corev1.Secret{}:                                metadataIdentityOnly,
		&intunev1alpha1.UserPfxCertificate{}:            specOnly,
		&intunev1alpha1.PfxUserCertificate{}:            specOnly,
		&intunev1alpha1.PfxRecryptionRequest{}:          specOnly,
		&intunev1alpha1.ManagedDeviceCertificateState{}: specOnly,
	}
}

var metadataIdentityOnly = cache.ByObject{Transform: func(in any) (any, error) {
	if obj, err := meta.Accessor(in); err == nil {
		obj.SetManagedFields(nil)
		obj.SetAnnotations(nil)
		obj.SetLabels(nil)
	}
	return in, nil
}}

func withoutStatus(in any) (any, error) {
	switch o := in.(type) {
	case *intunev1alpha1.UserPfxCertificate:
		o.Status = intunev1alpha1.UserPfxCertificateStatus{}
	case *intunev1alpha1.PfxUserCertificate:
		o.Status = intunev1alpha1.PfxUserCertificateStatus{}
	case *intunev1alpha1.PfxRecryptionRequest:
		o.Status = intunev1alpha1.PfxRecryptionRequestStatus{}
	case *intunev1alpha1.ManagedDeviceCertificateState:
		o.Status = intunev1alpha1.ManagedDeviceCertificateStateStatus{}
	}
	if obj, err := meta.Accessor(in); err == nil {
		obj.SetManagedFields(nil)
		if a := obj.GetAnnotations(); a[lastApplied] != "" {
			delete(a, lastApplied)
			obj.SetAnnotations(a)
		}
	}
	return in, nil
}

// statusStrippedCache is the cache as the resource reconcilers may read it: reading one of the kinds whose
// status the cache strips fails loudly, since a resource read there looks as if it had no record yet, and a
// reconciler acting on it would create the record again. Those are read with resourceDeps.Live.
type statusStrippedCache struct{ client.Reader }

func (c statusStrippedCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := refuseStripped(obj); err != nil {
		return err
	}
	return c.Reader.Get(ctx, key, obj, opts...)
}

func (c statusStrippedCache) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := refuseStripped(list); err != nil {
		return err
	}
	return c.Reader.List(ctx, list, opts...)
}

func refuseStripped(obj runtime.Object) error {
	switch obj.(type) {
	case *intunev1alpha1.UserPfxCertificate, *intunev1alpha1.UserPfxCertificateList,
		*intunev1alpha1.PfxUserCertificate, *intunev1alpha1.PfxUserCertificateList,
		*intunev1alpha1.PfxRecryptionRequest, *intunev1alpha1.PfxRecryptionRequestList,
		*intunev1alpha1.ManagedDeviceCertificateState, *intunev1alpha1.ManagedDeviceCertificateStateList:
		return fmt.Errorf("%T is cached without its status: read it with the live reader", obj)
	}
	return nil
}
