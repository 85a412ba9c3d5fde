package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
)

// +kubebuilder:rbac:groups=intune.certops.dev,resources=graphconnections;clustergraphconnections,verbs=get;list;watch
// +kubebuilder:rbac:groups=intune.certops.dev,resources=graphconnections/status;clustergraphconnections/status,verbs=get;update;patch
// WorkloadIdentity with serviceAccountName: a short-lived token of that ServiceAccount, audience
// api://AzureADTokenExchange (docs/security.md says why the rule is needed and how to narrow it).
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create

// GraphConnectionReconciler checks a GraphConnection or ClusterGraphConnection: a token is obtained and a
// read succeeds. Broken credentials then show once, on the connection, rather than on every certificate.
type GraphConnectionReconciler struct {
	client.Client
	Connections *connection.Provider
	Recorder    events.EventRecorder
	Clock       clock.PassiveClock
	// CheckPeriod is how often a working connection is checked again.
	CheckPeriod time.Duration
	// Cluster selects ClusterGraphConnection (true) or GraphConnection (false).
	Cluster bool
}

func (r *GraphConnectionReconciler) newObject() (client.Object, *intunev1alpha1.GraphConnectionSpec, *intunev1alpha1.GraphConnectionStatus) {
	if r.Cluster {
		o := &intunev1alpha1.ClusterGraphConnection{}
		return o, &o.Spec.GraphConnectionSpec, &o.Status
	}
	o := &intunev1alpha1.GraphConnection{}
	return o, &o.Spec, &o.Status
}

func (r *GraphConnectionReconciler) kind() string {
	if r.Cluster {
		return "ClusterGraphConnection"
	}
	return "GraphConnection"
}

func (r *GraphConnectionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	obj, spec, status := r.newObject()
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.Connections.Forget(r.kind(), req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := status.DeepCopy()
	defer func() {
		if equality.Semantic.DeepEqual(before, status) {
			return
		}
		base := obj.DeepCopyObject().(client.Object)
		setStatus(base, before)
		if err := r.Status().Patch(ctx, obj, client.MergeFrom(base)); err != nil && !apierrors.IsNotFound(err) {
			retErr = errors.Join(retErr, fmt.Errorf("failed to patch status: %w", err))
		}
	}()

	status.ObservedGeneration = obj.GetGeneration()
	err := r.check(ctx, obj, spec)
	if err != nil {
		f := classify(err)
		if setReady(&status.Conditions, obj.GetGeneration(), false, f.reason, f.message) {
			r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, "Failed", "Check", "%s: %s", f.reason, f.message)
		}
		retry := f.retryAfter
		if retry <= 0 || retry > r.CheckPeriod {
			retry = min(retryConnection, r.CheckPeriod)
		}
		return ctrl.Result{RequeueAfter: retry}, nil
	}
	if setReady(&status.Conditions, obj.GetGeneration(), true, intunev1alpha1.ReasonConnected, "Obtained a token and read from Microsoft Graph") {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, intunev1alpha1.ReasonConnected, "Check", "Connected to Microsoft Graph for tenant %s", spec.TenantID)
		now := metav1.NewTime(r.Clock.Now())
		status.LastSyncTime = &now
	}
	return ctrl.Result{RequeueAfter: jittered(r.CheckPeriod)}, nil
}

// check builds the client and makes one small read, which also obtains a token.
func (r *GraphConnectionReconciler) check(ctx context.Context, obj client.Object, spec *intunev1alpha1.GraphConnectionSpec) error {
	conn, err := r.Connections.Build(ctx, obj, spec)
	if err != nil {
		return err
	}
	return conn.Graph.Ping(ctx)
}

func setStatus(obj client.Object, status *intunev1alpha1.GraphConnectionStatus) {
	switch o := obj.(type) {
	case *intunev1alpha1.GraphConnection:
		o.Status = *status
	case *intunev1alpha1.ClusterGraphConnection:
		o.Status = *status
	}
}

// connectionsFor maps a Secret to the connections that read it.
func (r *GraphConnectionReconciler) connectionsFor(operatorNamespace string) func(ctx context.Context, secret client.Object) []ctrl.Request {
	return func(ctx context.Context, secret client.Object) []ctrl.Request {
		var reqs []ctrl.Request
		for _, key := range connectionsReadingSecret(ctx, r.Client, secret, operatorNamespace) {
			kind, ns, name := splitIndexKey(key)
			if (kind == "ClusterGraphConnection") == r.Cluster {
				reqs = append(reqs, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
			}
		}
		return reqs
	}
}
