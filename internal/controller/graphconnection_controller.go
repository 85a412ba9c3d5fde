package controller

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

// +kubebuilder:rbac:groups=intune.certops.dev,resources=graphconnections;clustergraphconnections,verbs=get;list;watch
// +kubebuilder:rbac:groups=intune.certops.dev,resources=graphconnections/status;clustergraphconnections/status,verbs=get;update;patch
// WorkloadIdentity with serviceAccountName: a short-lived token of that ServiceAccount, audience
// api://AzureADTokenExchange (docs/security.md says why the rule is needed and how to narrow it).
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create

// connectionReconciler checks a GraphConnection or ClusterGraphConnection: a token is obtained and a read
// succeeds. Broken credentials then show once, on the connection, rather than on every certificate. It runs on
// the resource kinds' plumbing (kindReconciler.run: live read, one deferred status patch, pass deadline),
// without a finalizer: a connection holds nothing in Intune.
type connectionReconciler[T client.Object] struct {
	kindReconciler[T]
	spec func(T) *intunev1alpha1.GraphConnectionSpec
	// checkPeriod is how often a working connection is checked again.
	checkPeriod time.Duration
}

func newConnectionKind[T client.Object](name string, newObject func() T, status func(T) *intunev1alpha1.GraphConnectionStatus, forget func(namespace, name string)) resourceKind[T] {
	return resourceKind[T]{
		name:      name,
		newObject: newObject,
		status: func(o T) (any, *intunev1alpha1.CommonStatus) {
			st := status(o)
			return st, &st.CommonStatus
		},
		noCertificateMetrics: true,
		// A deleted connection's client (and its token cache) is dropped.
		gone: forget,
	}
}

func (r *connectionReconciler[T]) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.run(ctx, req, r.check, nil)
}

// check builds the client and makes one small read, which also obtains a token.
func (r *connectionReconciler[T]) check(ctx context.Context, obj T) (ctrl.Result, error) {
	spec := r.spec(obj)
	_, status := r.kind.status(obj)
	err := r.ping(ctx, obj, spec)
	if err != nil {
		f := classify(err)
		if setReady(&status.Conditions, obj.GetGeneration(), false, f.reason, f.message) {
			r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, "Failed", "Check", "%s: %s", f.reason, f.message)
			log.FromContext(ctx).Info("Connection check failed", "reason", f.reason)
		}
		retry := f.retryAfter
		if retry <= 0 || retry > r.checkPeriod {
			retry = min(retryConnection, r.checkPeriod)
		}
		return ctrl.Result{RequeueAfter: retry}, nil
	}
	if setReady(&status.Conditions, obj.GetGeneration(), true, intunev1alpha1.ReasonConnected, "Obtained a token and read from Microsoft Graph") {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, intunev1alpha1.ReasonConnected, "Check", "Connected to Microsoft Graph for tenant %s", spec.TenantID)
		log.FromContext(ctx).Info("Connected", "tenant", spec.TenantID)
		now := metav1.NewTime(r.Clock.Now())
		status.LastSyncTime = &now
	}
	return ctrl.Result{RequeueAfter: jittered(r.checkPeriod)}, nil
}

func (r *connectionReconciler[T]) ping(ctx context.Context, obj T, spec *intunev1alpha1.GraphConnectionSpec) error {
	conn, err := r.Connections.Build(ctx, obj, spec)
	if err != nil {
		return err
	}
	return conn.Graph.Ping(ctx)
}

// connectionsFor maps a Secret to the connections of this kind that read it.
func (r *connectionReconciler[T]) connectionsFor(operatorNamespace string) func(ctx context.Context, secret client.Object) []ctrl.Request {
	return func(ctx context.Context, secret client.Object) []ctrl.Request {
		var reqs []ctrl.Request
		for _, key := range connectionsReadingSecret(ctx, r.Cache, secret, operatorNamespace) {
			kind, ns, name := splitIndexKey(key)
			if kind == r.kind.name {
				reqs = append(reqs, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
			}
		}
		return reqs
	}
}
