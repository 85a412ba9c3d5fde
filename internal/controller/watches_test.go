package controller

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/testutil"
)

// Only the Secrets of the initial list are dropped; every later event of a Secret passes.
func TestSecretsAfterStart(t *testing.T) {
	s := &corev1.Secret{}
	for _, c := range []struct {
		what string
		pass bool
		got  bool
	}{
		{"create from the initial list", false, secretsAfterStart.Create(event.CreateEvent{Object: s, IsInInitialList: true})},
		{"create after start", true, secretsAfterStart.Create(event.CreateEvent{Object: s})},
		{"update", true, secretsAfterStart.Update(event.UpdateEvent{ObjectOld: s, ObjectNew: s})},
		{"delete", true, secretsAfterStart.Delete(event.DeleteEvent{Object: s})},
		{"generic", true, secretsAfterStart.Generic(event.GenericEvent{Object: s})},
	} {
		if c.got != c.pass {
			t.Errorf("%s: passes %v, want %v", c.what, c.got, c.pass)
		}
	}
}

// indexField files each value once, under the key controller-runtime's cache reader asks for in the one
// lookup the index is registered for: a Secret name within a namespace, a connection key across
// namespaces. Checked with the cache across all namespaces (the default) and with one cache per
// namespace (--watch-namespaces), whose lookups across namespaces ask every namespace's cache.
func TestIndexFieldAnswersTheLookupItWasRegisteredFor(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nsA, nsB := newNamespace(t), newNamespace(t)
	conn := "index-" + nsA // no other test's resource names it
	for _, obj := range []*intunev1alpha1.UserPfxCertificate{upfxReading(nsA, "a", "shared", conn), upfxReading(nsB, "b", "shared", conn)} {
		if err := k8sClient.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	// The cache across all namespaces holds the other tests' resources too, of every source.
	secretNames := func(o client.Object) []string {
		if pfx := o.(*intunev1alpha1.UserPfxCertificate).Spec.Source.Pfx; pfx != nil {
			return []string{pfx.SecretRef.Name}
		}
		return nil
	}
	connectionKey := func(o client.Object) []string {
		if ref := o.(*intunev1alpha1.UserPfxCertificate).Spec.ConnectionRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	}
	for mode, opts := range map[string]cache.Options{"all namespaces": CacheOptions(), "one cache per namespace": CacheOptions(nsA, nsB)} {
		t.Run(mode, func(t *testing.T) {
			mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: testutil.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"},
				HealthProbeBindAddress: "0", Cache: opts, Logger: testLogger})
			if err != nil {
				t.Fatal(err)
			}
			obj := &intunev1alpha1.UserPfxCertificate{}
			if err := indexField(ctx, mgr, obj, indexSecretNames, inNamespace, secretNames); err != nil {
				t.Fatal(err)
			}
			if err := indexField(ctx, mgr, obj, indexConnection, acrossNamespaces, connectionKey); err != nil {
				t.Fatal(err)
			}
			mgrCtx, stop := context.WithCancel(ctx)
			defer stop()
			go func() { _ = mgr.GetCache().Start(mgrCtx) }()
			if !mgr.GetCache().WaitForCacheSync(mgrCtx) {
				t.Fatal("cache not synced")
			}
			names := func(opts ...client.ListOption) []string {
				list := &intunev1alpha1.UserPfxCertificateList{}
				if err := mgr.GetCache().List(ctx, list, opts...); err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, item := range list.Items {
					got = append(got, item.Namespace+"/"+item.Name)
				}
				slices.Sort(got)
				return got
			}
			if got, want := names(client.InNamespace(nsA), client.MatchingFields{indexSecretNames: "shared"}), []string{nsA + "/a"}; !slices.Equal(got, want) {
				t.Errorf("Secret name in %s: %v, want %v", nsA, got, want)
			}
			want := []string{nsA + "/a", nsB + "/b"}
			slices.Sort(want)
			if got := names(client.MatchingFields{indexConnection: conn}); !slices.Equal(got, want) {
				t.Errorf("connection across namespaces: %v, want %v", got, want)
			}
		})
	}
}

func upfxReading(namespace, name, secretName, connectionName string) *intunev1alpha1.UserPfxCertificate {
	return &intunev1alpha1.UserPfxCertificate{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: intunev1alpha1.UserPfxCertificateSpec{
			ConnectionRef:   &intunev1alpha1.ConnectionReference{Kind: "ClusterGraphConnection", Name: connectionName},
			IntendedPurpose: "smimeEncryption",
			Source:          intunev1alpha1.CertificateSource{Pfx: &intunev1alpha1.PfxSecretSource{SecretRef: intunev1alpha1.SecretKeyReference{Name: secretName}}},
		},
	}
}
