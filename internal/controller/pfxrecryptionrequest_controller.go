package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
	"github.com/certops/intune-cert-operator/internal/graph"
)

const kindPfxRecryptionRequest = "PfxRecryptionRequest"

// +kubebuilder:rbac:groups=intune.certops.dev,resources=pfxrecryptionrequests,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=intune.certops.dev,resources=pfxrecryptionrequests/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=intune.certops.dev,resources=pfxrecryptionrequests/finalizers,verbs=update

// PfxRecryptionRequestReconciler creates a Graph pfxRecryptionRequest once, watches that it still exists,
// and deletes it with the resource.
//
// Graph assigns the id, and may answer a create without it (today's type lists no id property). A create
// whose id is unknown (the answer was lost or carried none, or the operator stopped) is looked for in
// Intune's list; it is never repeated on the operator's own: when the list does not show the request within
// the settle time, the resource reports CreateOutcomeUnknown until the user confirms, with the annotation
// intune.certops.dev/confirm-not-created, that Intune holds no such record. A request that later vanishes
// from Intune (deleted there, or consumed by the connector) is reported, not recreated: the spec is
// immutable and a recryption is a one-off action, so a new resource is the way to ask again.
type PfxRecryptionRequestReconciler struct {
	kindReconciler[*intunev1alpha1.PfxRecryptionRequest]
}

var recryptionKind = resourceKind[*intunev1alpha1.PfxRecryptionRequest]{
	name:      kindPfxRecryptionRequest,
	newObject: func() *intunev1alpha1.PfxRecryptionRequest { return &intunev1alpha1.PfxRecryptionRequest{} },
	status: func(o *intunev1alpha1.PfxRecryptionRequest) (any, *intunev1alpha1.CommonStatus) {
		return &o.Status, &o.Status.CommonStatus
	},
}

func (r *PfxRecryptionRequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.run(ctx, req, r.reconcileNormal, r.reconcileDelete)
}

func (r *PfxRecryptionRequestReconciler) reconcileNormal(ctx context.Context, obj *intunev1alpha1.PfxRecryptionRequest) (ctrl.Result, error) {
	if obj.Status.ID == "" {
		return r.create(ctx, obj)
	}
	return r.observe(ctx, obj)
}

// create posts the request once. status.createStartedTime is stored before the POST and cleared with the id
// after it, so a later pass that finds it set without an id knows an earlier create may have happened: it
// looks for the request in Intune's list, and when none shows up within the settle time, waits for the user.
func (r *PfxRecryptionRequestReconciler) create(ctx context.Context, obj *intunev1alpha1.PfxRecryptionRequest) (ctrl.Result, error) {
	conn, err := r.connectionFor(ctx, obj.Namespace, obj.Spec.ConnectionRef, connection.AccessRequest{Kind: kindPfxRecryptionRequest})
	if err != nil {
		return r.fail(ctx, obj, err)
	}
	ext := &recryptionRecords{gc: conn.Graph, want: recryptionPayload(&obj.Spec, conn)}
	confirmed := false
	if started := obj.Status.CreateStartedTime; started != nil {
		ext.since = started.Time
		found, err := ext.Find(ctx)
		switch {
		case found != nil:
			return r.created(ctx, obj, found, "Created"), nil
		case err != nil:
			return r.fail(ctx, obj, err)
		}
		if settling := r.createSettling(started, r.Clock.Now()); settling != nil {
			return r.fail(ctx, obj, settling)
		}
		if obj.Annotations[intunev1alpha1.AnnotationConfirmNotCreated] != "true" {
			r.outcomeUnknown(obj, fmt.Sprintf("a create of this request started at %s did not finish, and Intune does not list the request", started.UTC().Format(time.RFC3339)))
			// Only the user can tell (the annotation wakes the resource); until then, keep looking now and then.
			return ctrl.Result{RequeueAfter: jittered(r.ResyncPeriod)}, nil
		}
		confirmed = true
	}

	// The optimistic lock makes sure this pass acts on the latest status: no id, and no mark of an attempt
	// other than the one the user confirmed.
	if err := r.beginCreate(ctx, obj, &obj.Status.CreateStartedTime); err != nil {
		return ctrl.Result{}, fmt.Errorf("failed to record the start of the create: %w", err)
	}
	// The confirmation is used up before the call it authorizes: should that call end unknown too, the
	// annotation must not let the next pass post a third time. If removing it fails, nothing was posted
	// and the next pass finds the mark and the annotation again.
	if confirmed {
		if err := r.consumeConfirmation(ctx, obj); err != nil {
			return ctrl.Result{}, err
		}
	}
	created, err := ext.Create(ctx)
	if err != nil {
		if !graph.WriteMayHaveHappened(err) {
			obj.Status.CreateStartedTime = nil // refused: nothing was made
		}
		return r.fail(ctx, obj, err)
	}
	if created.ID == "" {
		// Made, but unnamed (today's type lists no id): the mark stays, and the next pass finds it by listing.
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "Created", "Create",
			"Intune accepted the request; its answer carried no id, so it is looked up in the list")
		return r.fail(ctx, obj, &conditionError{reason: intunev1alpha1.ReasonProgressing, retryAfter: 5 * time.Second,
			message: "Intune accepted the request but its answer carried no id: looking for it in the list"})
	}
	return r.created(ctx, obj, created, "Created"), nil
}

// created records the request Intune holds and clears the create mark.
func (r *PfxRecryptionRequestReconciler) created(ctx context.Context, obj *intunev1alpha1.PfxRecryptionRequest, rec *graph.PfxRecryptionRequest, action string) ctrl.Result {
	obj.Status.CreateStartedTime = nil
	recordRecryption(&obj.Status, rec, r.Clock.Now())
	r.succeed(ctx, obj, action, rec.ID)
	return ctrl.Result{RequeueAfter: jittered(r.ResyncPeriod)}
}

// recryptionRecords is the external client of one resource's pfxRecryptionRequest (external's contracts).
// The request is created once and never updated (its spec is immutable); the type lists no id property and
// the pages document no $filter, so Find reads the whole list and matches the fields a create sends.
type recryptionRecords struct {
	gc   *graph.Client
	want *graph.PfxRecryptionRequest
	// since is when this resource's create started: Find ignores older requests of the same fields (less
	// clock skew), made for an earlier resource.
	since time.Time
}

func (x *recryptionRecords) Get(ctx context.Context, id string) (*graph.PfxRecryptionRequest, error) {
	got, err := x.gc.GetPfxRecryptionRequest(ctx, id)
	if graph.IsNotFound(err) {
		return nil, nil
	}
	return got, err
}

func (x *recryptionRecords) Find(ctx context.Context) (*graph.PfxRecryptionRequest, error) {
	all, err := x.gc.ListPfxRecryptionRequests(ctx)
	if err != nil {
		return nil, err
	}
	const skew = 5 * time.Minute
	for i := range all {
		rec := &all[i]
		if rec.ID != "" && sameRecryption(rec, x.want) && (rec.CreatedTime.IsZero() || !rec.CreatedTime.Before(x.since.Add(-skew))) {
			return rec, nil
		}
	}
	return nil, nil
}

func (x *recryptionRecords) Create(ctx context.Context) (*graph.PfxRecryptionRequest, error) {
	return x.gc.CreatePfxRecryptionRequest(ctx, x.want)
}

// Update is never called: a request's spec is immutable, and a recryption is asked for again with a new
// resource.
func (x *recryptionRecords) Update(context.Context, string) (*graph.PfxRecryptionRequest, error) {
	return nil, errors.New("a pfxRecryptionRequest is created once and never updated")
}

func (x *recryptionRecords) Delete(ctx context.Context, id string) error {
	return ignoreGone(x.gc.DeletePfxRecryptionRequest(ctx, id))
}

// sameRecryption compares the fields a create sends.
func sameRecryption(rec, want *graph.PfxRecryptionRequest) bool {
	return strings.EqualFold(rec.TenantID, want.TenantID) && strings.EqualFold(rec.UserID, want.UserID) &&
		strings.EqualFold(rec.DeviceID, want.DeviceID) && strings.EqualFold(rec.ProfileID, want.ProfileID) &&
		strings.EqualFold(rec.Thumbprint, want.Thumbprint) && strings.EqualFold(rec.DeviceKeyThumbprint, want.DeviceKeyThumbprint) &&
		rec.SourceType == want.SourceType
}

// outcomeUnknown reports a create that may or may not have happened, and what the user can do about it.
func (r *PfxRecryptionRequestReconciler) outcomeUnknown(obj *intunev1alpha1.PfxRecryptionRequest, cause string) {
	message := fmt.Sprintf("%s, so Intune may hold this request without this resource knowing its id; the operator "+
		"will not create it again on its own. Check Intune for a pfxRecryptionRequest of user %s, device %s and profile %s. "+
		"If there is none, annotate this resource with %s=true to create it once more. If there is one, delete this "+
		"resource (it cannot manage that record) and remove the record in Intune if it is not wanted",
		cause, obj.Spec.UserID, obj.Spec.DeviceID, obj.Spec.ProfileID, intunev1alpha1.AnnotationConfirmNotCreated)
	if setReady(&obj.Status.Conditions, obj.Generation, false, intunev1alpha1.ReasonCreateOutcomeUnknown, message) {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, intunev1alpha1.ReasonCreateOutcomeUnknown, "Create", message)
	}
}

// consumeConfirmation removes the annotation that authorizes one new create.
func (r *PfxRecryptionRequestReconciler) consumeConfirmation(ctx context.Context, obj *intunev1alpha1.PfxRecryptionRequest) error {
	edited := obj.DeepCopy()
	delete(edited.Annotations, intunev1alpha1.AnnotationConfirmNotCreated)
	if err := r.Writer.Patch(ctx, edited, client.MergeFromWithOptions(obj, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("failed to remove annotation %s: %w", intunev1alpha1.AnnotationConfirmNotCreated, err)
	}
	obj.Annotations, obj.ResourceVersion = edited.Annotations, edited.ResourceVersion
	r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "CreateConfirmed", "Create",
		"Annotation %s: creating the request once more", intunev1alpha1.AnnotationConfirmNotCreated)
	return nil
}

// observe reads the created request back, on every resync, and reports when Intune no longer has it.
func (r *PfxRecryptionRequestReconciler) observe(ctx context.Context, obj *intunev1alpha1.PfxRecryptionRequest) (ctrl.Result, error) {
	now := r.Clock.Now()
	if wait, skip := r.skipUntilResync(obj, obj.Status.LastSyncTime, now); skip {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	conn, err := r.connectionFor(ctx, obj.Namespace, obj.Spec.ConnectionRef, connection.AccessRequest{Kind: kindPfxRecryptionRequest})
	if err != nil {
		return r.fail(ctx, obj, err)
	}
	record, err := (&recryptionRecords{gc: conn.Graph}).Get(ctx, obj.Status.ID)
	if err == nil && record == nil {
		err = &conditionError{reason: intunev1alpha1.ReasonRecordNotFound, terminal: true, message: fmt.Sprintf(
			"Intune no longer has pfxRecryptionRequest %s (deleted there, or consumed by the connector); a request is "+
				"created once and not again: delete this resource, and create a new one to ask for another recryption", obj.Status.ID)}
	}
	if err != nil {
		return r.fail(ctx, obj, err)
	}
	recordRecryption(&obj.Status, record, now)
	obj.Status.CreateStartedTime = nil // an earlier version could leave it beside the id
	r.succeed(ctx, obj, "", obj.Status.ID)
	return ctrl.Result{RequeueAfter: jittered(r.ResyncPeriod)}, nil
}

func recryptionPayload(spec *intunev1alpha1.PfxRecryptionRequestSpec, conn *connection.Connection) *graph.PfxRecryptionRequest {
	tenantID := spec.TenantID
	if tenantID == "" {
		tenantID = conn.TenantID
	}
	return &graph.PfxRecryptionRequest{
		TenantID:            tenantID,
		UserID:              spec.UserID,
		DeviceID:            spec.DeviceID,
		ProfileID:           spec.ProfileID,
		Thumbprint:          spec.Thumbprint,
		DeviceKeyThumbprint: spec.DeviceKeyThumbprint,
		Status:              spec.Status,
		SourceType:          spec.SourceType,
	}
}

// recordRecryption copies what Graph answered into the status.
func recordRecryption(st *intunev1alpha1.PfxRecryptionRequestStatus, rec *graph.PfxRecryptionRequest, now time.Time) {
	if rec.ID != "" {
		st.ID = rec.ID
	}
	requestStatus := rec.Status
	st.RequestStatus = &requestStatus
	st.CreatedTime = timePtr(rec.CreatedTime)
	st.LastModifiedTime = timePtr(rec.LastModifiedTime)
	st.ETag = rec.ETag
	st.LastSyncTime = &metav1.Time{Time: now}
}

// reconcileDelete removes the request, and one its create may have made without the id arriving, per
// deletionPolicy.
func (r *PfxRecryptionRequestReconciler) reconcileDelete(ctx context.Context, obj *intunev1alpha1.PfxRecryptionRequest) (ctrl.Result, error) {
	st := &obj.Status
	return r.finalize(ctx, obj, deletion{
		policy:        obj.Spec.DeletionPolicy,
		connectionRef: obj.Spec.ConnectionRef,
		records:       markedRecords(st.ID, st.CreateStartedTime),
		remove: func(ctx context.Context, conn *connection.Connection) (string, error) {
			ext := &recryptionRecords{gc: conn.Graph, want: recryptionPayload(&obj.Spec, conn)}
			if st.CreateStartedTime != nil {
				ext.since = st.CreateStartedTime.Time
			}
			return removeMarked(ctx, ext, func(rec *graph.PfxRecryptionRequest) string { return rec.ID },
				st.ID, st.CreateStartedTime, r.CreateSettle, r.Clock.Now())
		},
	})
}
