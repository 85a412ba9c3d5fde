package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
	"github.com/certops/intune-cert-operator/internal/fairshare"
	"github.com/certops/intune-cert-operator/internal/graph"
)

// Finalizer keeps a resource until its Intune record is deleted (or orphaned).
const Finalizer = "intune.certops.dev/finalizer"

// DefaultPassTimeout bounds one reconcile pass (--reconcile-timeout).
const DefaultPassTimeout = time.Minute

// statusPatchTimeout bounds the status write at the end of a pass, which runs even after the pass's time is up.
const statusPatchTimeout = 10 * time.Second

// Every resource kind reads Secrets (metadata cached, data live), connector keys in ConfigMaps, and emits Events.
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// resourceDeps are what every resource reconciler uses.
type resourceDeps struct {
	// Writer writes objects (finalizers, annotations, a set's children); it never reads.
	Writer client.Writer
	// StatusWriter writes the status subresource.
	StatusWriter client.SubResourceWriter
	// Cache reads what the manager caches (Secret metadata, connections, namespaces). It refuses the kinds
	// whose status the cache strips: read there, a resource would look as if it had no record yet.
	Cache client.Reader
	// Live reads resources, Secrets and ConfigMaps straight from the API server: Secret data is never cached,
	// and a resource's status written by the previous pass must be seen.
	Live         client.Reader
	Connections  *connection.Provider
	Claims       *recordClaims
	Recorder     events.EventRecorder
	Clock        clock.PassiveClock
	ResyncPeriod time.Duration
	// CreateSettle is how long a create whose outcome is unknown is looked for in lists before another create.
	CreateSettle time.Duration
	// PassTimeout bounds one reconcile pass: paging and backing off end there, and the pass starts over.
	PassTimeout time.Duration
	// Resync makes a resync of an unchanged resource cheap (resync.go); nil: every pass reads everything.
	Resync *resyncState
}

// connectionFor resolves a resource's connection and applies its access rules to req: nothing reaches Graph
// for a resource its connection does not serve.
func (d resourceDeps) connectionFor(ctx context.Context, namespace string, ref *intunev1alpha1.ConnectionReference, req connection.AccessRequest) (*connection.Connection, error) {
	conn, err := d.Connections.ForResource(ctx, namespace, ref)
	if err != nil {
		return nil, err
	}
	req.Namespace = namespace
	if req.Now.IsZero() {
		req.Now = d.Clock.Now()
	}
	if err := d.Connections.Authorize(ctx, conn, req); err != nil {
		return nil, err
	}
	return conn, nil
}

// resolveUser is the Entra ID object id of user upn in the connection's tenant; a user Graph does not know is
// UserNotFound, naming field, where the resource set the name.
func resolveUser(ctx context.Context, conn *connection.Connection, upn, field string) (string, error) {
	id, err := conn.Graph.ResolveUserID(ctx, upn)
	if graph.IsNotFound(err) {
		return "", &conditionError{reason: intunev1alpha1.ReasonUserNotFound, terminal: true,
			message: fmt.Sprintf("no user %q in tenant %s: check %s or the certificate's SAN", upn, conn.TenantID, field)}
	}
	return id, err
}

// adoptionRefused says whether the connection forbids taking over a record found in Intune without a claim.
func adoptionRefused(conn *connection.Connection) bool {
	return conn.Cluster != "" && conn.Access != nil && conn.Access.Adoption == intunev1alpha1.AdoptionDeny
}

// refuseAdoption lets go of the claim just made on record (nothing was written) and says why.
func (d resourceDeps) refuseAdoption(ctx context.Context, obj client.Object, conn *connection.Connection, kind, record string) error {
	if err := d.Claims.release(ctx, obj, kind, conn.TenantID, record); err != nil {
		return err
	}
	return &connection.Error{Reason: intunev1alpha1.ReasonAccessDenied, Message: fmt.Sprintf(
		"ClusterGraphConnection %q refuses this resource: Intune record %s exists but was not created through this operator, "+
			"and spec.access.adoption is Deny (an administrator may set it to Allow, or delete the record in Intune)", conn.Cluster, record)}
}

// unclaimUnseen returns err, first letting go of a claim this pass made (fresh) when, under adoption: Deny, the
// pass ends before it learned whether the record exists: a claim kept would tell the next pass that this
// operator created the record, and a record someone else made would be taken over.
func (d resourceDeps) unclaimUnseen(ctx context.Context, obj client.Object, conn *connection.Connection, kind, record string, fresh bool, err error) error {
	if !fresh || !adoptionRefused(conn) {
		return err
	}
	return errors.Join(err, d.Claims.release(ctx, obj, kind, conn.TenantID, record))
}

// resourceKind tells the shared plumbing how to read one kind's objects.
type resourceKind[T client.Object] struct {
	name      string
	newObject func() T
	// status returns the kind's whole status (compared to decide whether to patch) and its common part.
	status func(T) (any, *intunev1alpha1.CommonStatus)
	// suspended reports spec.suspend; nil for kinds that cannot be suspended.
	suspended func(T) bool
	// expiry is the certificate's notAfter for the metric; nil for kinds without a certificate.
	expiry func(T) *metav1.Time
	// noCertificateMetrics leaves the kind out of the certificate metrics (connections).
	noCertificateMetrics bool
	// gone, when set, is told that an object no longer exists.
	gone func(namespace, name string)
}

func (k *resourceKind[T]) isSuspended(obj T) bool { return k.suspended != nil && k.suspended(obj) }

func (k *resourceKind[T]) conditions(obj T) *[]metav1.Condition {
	_, common := k.status(obj)
	return &common.Conditions
}

// kindReconciler is the reconcile plumbing every resource kind shares, in Cluster API's shape: live read,
// finalizer before the first Graph write, a deferred status patch, suspend, and failures put on the Ready
// condition. A kind's reconciler embeds it and supplies its own normal and delete passes.
type kindReconciler[T client.Object] struct {
	resourceDeps
	kind resourceKind[T]
}

// pass is one of a kind's own reconcile steps.
type pass[T client.Object] func(ctx context.Context, obj T) (ctrl.Result, error)

// run reconciles the object req names with normal, or with del once it is being deleted. A nil del means the
// kind never calls Graph on deletion: it holds no finalizer and its resources go at once.
func (r *kindReconciler[T]) run(ctx context.Context, req ctrl.Request, normal, del pass[T]) (result ctrl.Result, retErr error) {
	// The Graph client's write budget shares its tokens round-robin among the namespaces waiting for one.
	ctx = fairshare.WithNamespace(ctx, req.Namespace)
	if r.PassTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.PassTimeout)
		defer cancel()
	}
	// Each pass's start and end, at debug level: the logger carries the object and the reconcile id, so one
	// pass can be followed from its first line to its last (the controller tests wait on these lines).
	logger := log.FromContext(ctx).V(1)
	logger.Info("Pass started")
	defer func() { logger.Info("Pass finished", "requeueAfter", result.RequeueAfter, "failed", retErr != nil) }()
	k := &r.kind
	obj := k.newObject()
	// Read live, not from the cache: the status written by the previous pass must be seen, or a record this
	// operator created moments ago would look like one to adopt (or, for create-once kinds, to create again).
	if err := r.Live.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			forgetMetrics(k.name, req.Namespace, req.Name)
			if k.gone != nil {
				k.gone(req.Namespace, req.Name)
			}
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	deleting := !obj.GetDeletionTimestamp().IsZero()
	if del != nil && !deleting && !k.isSuspended(obj) && !controllerutil.ContainsFinalizer(obj, Finalizer) {
		// The finalizer is in place before the first Graph write, so no record can be left behind.
		if err := r.patchFinalizers(ctx, obj, controllerutil.AddFinalizer); err != nil {
			return ctrl.Result{}, fmt.Errorf("failed to add finalizer: %w", err)
		}
	}
	written := &statusBase{obj: obj.DeepCopyObject()}
	ctx = context.WithValue(ctx, statusBaseKey{}, written)
	defer func() {
		if deleting && !controllerutil.ContainsFinalizer(obj, Finalizer) {
			return // released: the object is going away
		}
		retErr = errors.Join(retErr, r.finishPass(ctx, obj, written.obj.(T)))
	}()

	if deleting {
		if del == nil || !controllerutil.ContainsFinalizer(obj, Finalizer) {
			return ctrl.Result{}, nil
		}
		return del(ctx, obj)
	}
	_, common := k.status(obj)
	common.ObservedGeneration = obj.GetGeneration()
	if k.isSuspended(obj) {
		setReady(&common.Conditions, obj.GetGeneration(), true, intunev1alpha1.ReasonSuspended, "spec.suspend is true: no Graph calls are made")
		return ctrl.Result{}, nil
	}
	return normal(ctx, obj)
}

// finishPass writes what the pass changed in the status (one patch against before, the status as the API
// server holds it) and records the certificate metrics.
func (r *kindReconciler[T]) finishPass(ctx context.Context, obj, before T) error {
	k := &r.kind
	var err error
	status, common := k.status(obj)
	if previous, _ := k.status(before); !equality.Semantic.DeepEqual(previous, status) {
		// Only the status is patched: a pass that wrote metadata (or status) itself moved the
		// resourceVersion, which must not turn into a precondition here.
		before.SetResourceVersion(obj.GetResourceVersion())
		// What the pass learnt is written even when it ran out of time.
		patchCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusPatchTimeout)
		defer cancel()
		if perr := r.StatusWriter.Patch(patchCtx, obj, client.MergeFrom(before)); perr != nil && !apierrors.IsNotFound(perr) {
			err = fmt.Errorf("failed to patch status: %w", perr)
		}
	}
	if !k.noCertificateMetrics {
		var expiry *metav1.Time
		if k.expiry != nil {
			expiry = k.expiry(obj)
		}
		recordMetrics(k.name, obj.GetNamespace(), obj.GetName(), common.Conditions, expiry)
	}
	return err
}

// statusBase is the status as the API server holds it: as read at the start of a pass, or as persistStatus
// last wrote it. The pass's deferred patch sends what changed since.
type statusBase struct{ obj any }

type statusBaseKey struct{}

// persistStatus writes the status now, in the middle of a pass, when it must be stored before a Graph call
// (a create mark that has to survive a crash during the call). The optimistic lock makes the pass act on the
// latest status: should another pass have written meanwhile, this one fails and starts over.
func (r *kindReconciler[T]) persistStatus(ctx context.Context, obj T) error {
	written, ok := ctx.Value(statusBaseKey{}).(*statusBase)
	if !ok {
		return errors.New("persistStatus called outside a reconcile pass")
	}
	base := written.obj.(T).DeepCopyObject().(T)
	base.SetResourceVersion(obj.GetResourceVersion())
	if err := r.StatusWriter.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("failed to write status: %w", err)
	}
	written.obj = obj.DeepCopyObject()
	return nil
}

// untilResync says whether a resource whose last push still matches its spec, and which is Ready, may skip
// Graph until its next drift check, and how long to wait for it.
func (r *kindReconciler[T]) skipUntilResync(obj T, lastSync *metav1.Time, now time.Time) (time.Duration, bool) {
	ready := meta.FindStatusCondition(*r.kind.conditions(obj), intunev1alpha1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionTrue || ready.Reason == intunev1alpha1.ReasonSuspended ||
		resyncDue(lastSync, r.ResyncPeriod, now) {
		return 0, false
	}
	// The spec changed nothing Intune holds: the condition speaks for this generation too.
	ready.ObservedGeneration = obj.GetGeneration()
	return untilResync(lastSync, r.ResyncPeriod, now), true
}

// succeed sets Ready for what a pass did (an Event reason, "" when nothing changed), emits the Event and logs
// the decision (the logger carries kind and name; a record id is never a UPN).
func (r *kindReconciler[T]) succeed(ctx context.Context, obj T, action, id string) {
	reason, message := readyReasonFor(action, id)
	setReady(r.kind.conditions(obj), obj.GetGeneration(), true, reason, message)
	logger := log.FromContext(ctx)
	if action == "" {
		logger.V(1).Info("In sync", "reason", reason, "record", id)
		return
	}
	logger.Info("Synced", "action", action, "reason", reason, "record", id)
	r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, action, "Sync", message)
}

func (r *kindReconciler[T]) fail(ctx context.Context, obj T, err error) (ctrl.Result, error) {
	f := classify(err)
	return reportFailure(ctx, r.Recorder, obj, obj.GetGeneration(), r.kind.conditions(obj), f, f.message, err)
}

func (r *kindReconciler[T]) failDeleting(ctx context.Context, obj T, err error) (ctrl.Result, error) {
	f := classify(err)
	message := "deleting the Intune record failed: " + f.message + " (set deletionPolicy to Orphan to keep it and let the resource go)"
	return reportFailure(ctx, r.Recorder, obj, obj.GetGeneration(), r.kind.conditions(obj), f, message, err)
}

// deletion is how a kind removes its Intune record when its resource is deleted.
type deletion struct {
	policy        intunev1alpha1.DeletionPolicy
	connectionRef *intunev1alpha1.ConnectionReference
	// records names what would be deleted, for the Event; "" when Intune holds nothing of this resource.
	records string
	// remove deletes the records (a record already gone counts as deleted). A non-empty pending message
	// says Intune still shows them: the resource waits and checks again.
	remove func(ctx context.Context, conn *connection.Connection) (pending string, err error)
}

// finalize deletes the Intune records per deletionPolicy, then releases the finalizer.
func (r *kindReconciler[T]) finalize(ctx context.Context, obj T, d deletion) (ctrl.Result, error) {
	if d.policy != intunev1alpha1.DeletionPolicyOrphan && d.records != "" {
		if r.kind.isSuspended(obj) {
			setReady(r.kind.conditions(obj), obj.GetGeneration(), false, intunev1alpha1.ReasonSuspended,
				"deletion waits: spec.suspend is true; set it to false, or set deletionPolicy to Orphan to keep the Intune record")
			return ctrl.Result{}, nil
		}
		conn, err := r.Connections.ForResource(ctx, obj.GetNamespace(), d.connectionRef)
		if err != nil {
			return r.failDeleting(ctx, obj, err)
		}
		pending, err := d.remove(ctx, conn)
		if err != nil {
			return r.failDeleting(ctx, obj, err)
		}
		if pending != "" {
			setReady(r.kind.conditions(obj), obj.GetGeneration(), false, intunev1alpha1.ReasonDeleting, pending)
			return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
		}
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "Deleted", "Delete", "Deleted Intune record %s", d.records)
	}
	// The records are gone or orphaned: another resource may take them on.
	if err := r.Claims.releaseAll(ctx, obj); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.patchFinalizers(ctx, obj, controllerutil.RemoveFinalizer); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("failed to remove finalizer: %w", err)
	}
	forgetMetrics(r.kind.name, obj.GetNamespace(), obj.GetName())
	return ctrl.Result{}, nil
}

// patchFinalizers adds or removes the finalizer with a patch of metadata alone. An update would send the
// whole object as this operator's Go types serialise it, and a spec field the user set to its zero value
// would vanish: an immutable spec (CEL self == oldSelf) then refuses the write.
func (r *kindReconciler[T]) patchFinalizers(ctx context.Context, obj T, change func(client.Object, string) bool) error {
	base := obj.DeepCopyObject().(T)
	change(obj, Finalizer)
	return r.Writer.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

// ignoreGone treats Graph's 404 to a delete as success: the record is gone either way.
func ignoreGone(err error) error {
	if graph.IsNotFound(err) {
		return nil
	}
	return err
}

// reportFailure puts a failure on the Ready condition, emits a Warning Event when the condition changed,
// and says when to try again.
// Each failure is logged at the default level when it changes the condition (a failure that repeats is
// logged at debug level): its reason, whether it waits for a change, and when the next try comes.
func reportFailure(ctx context.Context, recorder events.EventRecorder, obj client.Object, generation int64, conditions *[]metav1.Condition, f failure, message string, err error) (ctrl.Result, error) {
	logger := log.FromContext(ctx).V(1)
	if setReady(conditions, generation, false, f.reason, message) {
		recorder.Eventf(obj, nil, corev1.EventTypeWarning, "Failed", "Sync", "%s: %s", f.reason, message)
		logger = log.FromContext(ctx)
	}
	if f.retryAfter > 0 {
		logger.Info("Reconcile failed; retrying later", "reason", f.reason, "terminal", f.terminal, "retryAfter", f.retryAfter)
		return ctrl.Result{RequeueAfter: f.retryAfter}, nil
	}
	logger.Info("Reconcile failed; retrying with backoff", "reason", f.reason)
	return ctrl.Result{}, err
}

// readyReasonFor turns what a pass did (its Event reason) into the Ready reason and message.
func readyReasonFor(action, id string) (string, string) {
	switch action {
	case "Imported", "Reimported", "Rotated":
		return intunev1alpha1.ReasonImported, fmt.Sprintf("%s as Intune record %s", action, id)
	case "Created", "Recreated":
		return intunev1alpha1.ReasonCreated, fmt.Sprintf("%s Intune record %s", action, id)
	case "Adopted":
		return intunev1alpha1.ReasonAdopted, fmt.Sprintf("Adopted the existing Intune record %s", id)
	case "Updated":
		return intunev1alpha1.ReasonUpdated, fmt.Sprintf("Updated Intune record %s", id)
	default:
		return intunev1alpha1.ReasonInSync, fmt.Sprintf("Intune record %s matches the spec", id)
	}
}
