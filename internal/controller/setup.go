package controller

import (
	"context"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
	"github.com/certops/intune-cert-operator/internal/fairshare"
)

// Options configure every controller of the operator.
type Options struct {
	// OperatorNamespace holds the Secrets of ClusterGraphConnections.
	OperatorNamespace string
	// ResyncPeriod is how often a resource in sync is compared with Intune again.
	ResyncPeriod time.Duration
	// MaxConcurrentReconciles per controller.
	MaxConcurrentReconciles int
	// ConnectionPolicy restricts what GraphConnections (namespaced) may use.
	ConnectionPolicy connection.Policy
	// HTTPClient for sign-in and Graph; nil = the system trust store (SSL_CERT_FILE works).
	HTTPClient *http.Client
	// Clock for every timestamp; nil = the real clock.
	Clock clock.PassiveClock
	// CreateSettle is how long a create whose outcome is unknown is looked for in Intune's lists before the
	// record is created again; 0 = DefaultCreateSettle.
	CreateSettle time.Duration
	// PassTimeout bounds one reconcile pass; 0 = DefaultPassTimeout.
	PassTimeout time.Duration
}

// The kinds whose resources are found by the Secrets and connections they reference.
var (
	userPfxReferences = referencing{
		list: func() client.ObjectList { return &intunev1alpha1.UserPfxCertificateList{} },
		secretNames: func(o client.Object) []string {
			c := o.(*intunev1alpha1.UserPfxCertificate)
			return sourceSecretNames(c.Spec.Source, c.Spec.Encryption)
		},
		connectionRef: func(o client.Object) *intunev1alpha1.ConnectionReference {
			return o.(*intunev1alpha1.UserPfxCertificate).Spec.ConnectionRef
		},
	}
	deviceStateReferences = referencing{
		list: func() client.ObjectList { return &intunev1alpha1.ManagedDeviceCertificateStateList{} },
		secretNames: func(o client.Object) []string {
			if ref := o.(*intunev1alpha1.ManagedDeviceCertificateState).Spec.CertificateSecretRef; ref != nil {
				return []string{ref.Name}
			}
			return nil
		},
		connectionRef: func(o client.Object) *intunev1alpha1.ConnectionReference {
			return o.(*intunev1alpha1.ManagedDeviceCertificateState).Spec.ConnectionRef
		},
	}
	// A recryption request reads no Secret of its own; its connection's Secrets still wake it.
	recryptionReferences = referencing{
		list:        func() client.ObjectList { return &intunev1alpha1.PfxRecryptionRequestList{} },
		secretNames: func(client.Object) []string { return nil },
		connectionRef: func(o client.Object) *intunev1alpha1.ConnectionReference {
			return o.(*intunev1alpha1.PfxRecryptionRequest).Spec.ConnectionRef
		},
	}
	pfxUserReferences = referencing{
		list: func() client.ObjectList { return &intunev1alpha1.PfxUserCertificateList{} },
		secretNames: func(o client.Object) []string {
			c := o.(*intunev1alpha1.PfxUserCertificate)
			return sourceSecretNames(c.Spec.Source, c.Spec.Encryption)
		},
		connectionRef: func(o client.Object) *intunev1alpha1.ConnectionReference {
			return o.(*intunev1alpha1.PfxUserCertificate).Spec.ConnectionRef
		},
	}
)

// ClusterGraphConnection access rules select namespaces by label.
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// Setup registers the field indexes and every controller with mgr.
func Setup(ctx context.Context, mgr manager.Manager, o Options) error {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.ResyncPeriod <= 0 {
		o.ResyncPeriod = time.Hour
	}
	if o.MaxConcurrentReconciles <= 0 {
		o.MaxConcurrentReconciles = 1
	}
	if o.CreateSettle <= 0 {
		o.CreateSettle = DefaultCreateSettle
	}
	if o.PassTimeout <= 0 {
		o.PassTimeout = DefaultPassTimeout
	}
	provider := &connection.Provider{
		Cache: mgr.GetClient(), Live: mgr.GetAPIReader(), Tokens: mgr.GetClient(), OperatorNamespace: o.OperatorNamespace,
		Policy: o.ConnectionPolicy, HTTPClient: o.HTTPClient,
	}
	for _, obj := range []client.Object{&intunev1alpha1.GraphConnection{}, &intunev1alpha1.ClusterGraphConnection{}} {
		if err := indexField(ctx, mgr, obj, indexSecretNames, inNamespace, func(o client.Object) []string {
			switch c := o.(type) {
			case *intunev1alpha1.GraphConnection:
				return connectionSecretNames(&c.Spec)
			case *intunev1alpha1.ClusterGraphConnection:
				return connectionSecretNames(&c.Spec.GraphConnectionSpec)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	// The resource kinds' controllers hand out their requests round-robin by namespace (FIFO within one),
	// with controller-runtime's priorities kept: while their workers wait for the write budget, a namespace
	// with a backlog of thousands must not hold up another namespace's request (see fairshare).
	opts := controller.Options{MaxConcurrentReconciles: o.MaxConcurrentReconciles, NewQueue: fairshare.NewQueue}
	recorder := mgr.GetEventRecorder("intune-cert-operator")

	// cert-manager's Certificates (source.certificateRef) are watched only where it is installed.
	certManager, err := certManagerInstalled(mgr.GetConfig())
	if err != nil {
		return err
	}
	mgr.GetLogger().Info("cert-manager Certificates", "watched", certManager)
	deps := resourceDeps{Writer: mgr.GetClient(), StatusWriter: mgr.GetClient().Status(),
		Cache: statusStrippedCache{mgr.GetClient()}, Live: mgr.GetAPIReader(), Connections: provider,
		Claims:   &recordClaims{writer: mgr.GetClient(), live: mgr.GetAPIReader()},
		Recorder: recorder, Clock: o.Clock, ResyncPeriod: o.ResyncPeriod, CreateSettle: o.CreateSettle,
		Resync: newResyncState(o.ResyncPeriod, o.Clock), PassTimeout: o.PassTimeout}
	if err := setupConnections(mgr, deps, provider, o); err != nil {
		return err
	}
	// A recryption request also wakes on its annotations: one confirms that a create may be repeated. So does
	// a UserPfxCertificate: one asks for a reimport (api/v1alpha1/annotations.go).
	annotationsOrGeneration := predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{})
	for _, k := range []struct {
		name       string
		obj        client.Object
		refs       referencing
		reconciler reconcile.Reconciler
		changed    predicate.Predicate
	}{
		{kindUserPfxCertificate, &intunev1alpha1.UserPfxCertificate{}, userPfxReferences,
			&UserPfxCertificateReconciler{kindReconciler[*intunev1alpha1.UserPfxCertificate]{deps, userPfxKind}}, annotationsOrGeneration},
		{kindManagedDeviceCertificateState, &intunev1alpha1.ManagedDeviceCertificateState{}, deviceStateReferences,
			&ManagedDeviceCertificateStateReconciler{kindReconciler[*intunev1alpha1.ManagedDeviceCertificateState]{deps, deviceStateKind}}, nil},
		{kindPfxRecryptionRequest, &intunev1alpha1.PfxRecryptionRequest{}, recryptionReferences,
			&PfxRecryptionRequestReconciler{kindReconciler[*intunev1alpha1.PfxRecryptionRequest]{deps, recryptionKind}}, annotationsOrGeneration},
		{kindPfxUserCertificate, &intunev1alpha1.PfxUserCertificate{}, pfxUserReferences,
			&PfxUserCertificateReconciler{kindReconciler[*intunev1alpha1.PfxUserCertificate]{deps, pfxUserKind}}, nil},
	} {
		if err := k.refs.setupIndexes(ctx, mgr, k.obj); err != nil {
			return err
		}
		if k.changed == nil {
			k.changed = predicate.GenerationChangedPredicate{}
		}
		b, err := watchCertificates(ctx, mgr, watchReferences(mgr, k.obj, k.refs, o.OperatorNamespace, k.changed), k.obj, k.refs, certManager)
		if err != nil {
			return err
		}
		if err := b.WithOptions(opts).Named(k.name).Complete(k.reconciler); err != nil {
			return err
		}
	}
	return setupSets(mgr, deps, o, certManager)
}

// watchReferences builds a controller for obj, woken by changes of obj that pass changed, and by the Secrets
// and connections it uses.
func watchReferences(mgr manager.Manager, obj client.Object, refs referencing, operatorNamespace string, changed predicate.Predicate) *builder.Builder {
	c := mgr.GetClient()
	return ctrl.NewControllerManagedBy(mgr).
		For(obj, builder.WithPredicates(changed)).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(refs.forSecret(c, operatorNamespace)), builder.WithPredicates(secretsAfterStart)).
		WatchesMetadata(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(refs.forNamespace(c)), builder.WithPredicates(namespaceLabelsChanged)).
		Watches(&intunev1alpha1.GraphConnection{}, handler.EnqueueRequestsFromMapFunc(refs.forConnection(c)), builder.WithPredicates(connectionReadinessChanged)).
		Watches(&intunev1alpha1.ClusterGraphConnection{}, handler.EnqueueRequestsFromMapFunc(refs.forConnection(c)), builder.WithPredicates(connectionReadinessChanged))
}

// setupConnections registers the checks of GraphConnections and ClusterGraphConnections, each woken by its
// own spec and the Secrets it reads.
func setupConnections(mgr manager.Manager, deps resourceDeps, provider *connection.Provider, o Options) error {
	checkPeriod := min(o.ResyncPeriod, 10*time.Minute)
	namespaced := &connectionReconciler[*intunev1alpha1.GraphConnection]{
		kindReconciler: kindReconciler[*intunev1alpha1.GraphConnection]{deps, newConnectionKind("GraphConnection",
			func() *intunev1alpha1.GraphConnection { return &intunev1alpha1.GraphConnection{} },
			func(c *intunev1alpha1.GraphConnection) *intunev1alpha1.GraphConnectionStatus { return &c.Status },
			func(ns, name string) { provider.Forget("GraphConnection", ns, name) })},
		spec:        func(c *intunev1alpha1.GraphConnection) *intunev1alpha1.GraphConnectionSpec { return &c.Spec },
		checkPeriod: checkPeriod,
	}
	cluster := &connectionReconciler[*intunev1alpha1.ClusterGraphConnection]{
		kindReconciler: kindReconciler[*intunev1alpha1.ClusterGraphConnection]{deps, newConnectionKind("ClusterGraphConnection",
			func() *intunev1alpha1.ClusterGraphConnection { return &intunev1alpha1.ClusterGraphConnection{} },
			func(c *intunev1alpha1.ClusterGraphConnection) *intunev1alpha1.GraphConnectionStatus { return &c.Status },
			func(ns, name string) { provider.Forget("ClusterGraphConnection", ns, name) })},
		spec: func(c *intunev1alpha1.ClusterGraphConnection) *intunev1alpha1.GraphConnectionSpec {
			return &c.Spec.GraphConnectionSpec
		},
		checkPeriod: checkPeriod,
	}
	for _, c := range []struct {
		obj        client.Object
		name       string
		reconciler reconcile.Reconciler
		secrets    handler.MapFunc
	}{
		{&intunev1alpha1.GraphConnection{}, "GraphConnection", namespaced, namespaced.connectionsFor(o.OperatorNamespace)},
		{&intunev1alpha1.ClusterGraphConnection{}, "ClusterGraphConnection", cluster, cluster.connectionsFor(o.OperatorNamespace)},
	} {
		if err := ctrl.NewControllerManagedBy(mgr).
			For(c.obj, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
			WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(c.secrets), builder.WithPredicates(secretsAfterStart)).
			WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
			Named(c.name).
			Complete(c.reconciler); err != nil {
			return err
		}
	}
	return nil
}
