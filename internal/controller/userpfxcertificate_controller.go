package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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
	"github.com/certops/intune-cert-operator/internal/graph"
	"github.com/certops/intune-cert-operator/internal/pfx"
)

// Finalizer keeps a resource until its Intune record is deleted (or orphaned).
const Finalizer = "intune.certops.dev/finalizer"

const kindUserPfxCertificate = "UserPfxCertificate"

// +kubebuilder:rbac:groups=intune.certops.dev,resources=userpfxcertificates,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=intune.certops.dev,resources=userpfxcertificates/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=intune.certops.dev,resources=userpfxcertificates/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// UserPfxCertificateReconciler imports a user's PFX into Intune (Graph userPFXCertificate) and keeps it so.
type UserPfxCertificateReconciler struct {
	client.Client
	// Live reads Secrets and ConfigMaps straight from the API server: their data is never cached.
	Live         client.Reader
	Connections  *connection.Provider
	Recorder     events.EventRecorder
	Clock        clock.PassiveClock
	ResyncPeriod time.Duration
}

// desiredUserPfx is everything the record should be, gathered before any Graph call.
type desiredUserPfx struct {
	conn       *connection.Connection
	material   *material
	encryption *encryption
	upn        string
	purpose    string
	// hash identifies what would be pushed, without holding any secret.
	hash string
}

func (r *UserPfxCertificateReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	obj := &intunev1alpha1.UserPfxCertificate{}
	// Read live, not from the cache: the status written by the previous pass must be seen, or a record this
	// operator created moments ago would look like one to adopt (or, for other kinds, to create again).
	if err := r.Live.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			forgetMetrics(kindUserPfxCertificate, req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if obj.DeletionTimestamp.IsZero() && !obj.Spec.Suspend && controllerutil.AddFinalizer(obj, Finalizer) {
		// The finalizer is in place before the first Graph write, so no record can be left behind.
		if err := r.Update(ctx, obj); err != nil {
			return ctrl.Result{}, fmt.Errorf("failed to add finalizer: %w", err)
		}
	}
	before := obj.DeepCopy()
	defer func() {
		if !controllerutil.ContainsFinalizer(obj, Finalizer) && !obj.DeletionTimestamp.IsZero() {
			return // released: the object is going away
		}
		if !equality.Semantic.DeepEqual(before.Status, obj.Status) {
			if err := r.Status().Patch(ctx, obj, client.MergeFrom(before)); err != nil && !apierrors.IsNotFound(err) {
				retErr = errors.Join(retErr, fmt.Errorf("failed to patch status: %w", err))
			}
		}
		recordMetrics(kindUserPfxCertificate, obj.Namespace, obj.Name, obj.Status.Conditions, obj.Status.ExpirationDateTime)
	}()

	if !obj.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, obj)
	}
	obj.Status.ObservedGeneration = obj.Generation
	if obj.Spec.Suspend {
		setReady(&obj.Status.Conditions, obj.Generation, true, intunev1alpha1.ReasonSuspended, "spec.suspend is true: no Graph calls are made")
		return ctrl.Result{}, nil
	}
	return r.reconcileNormal(ctx, obj)
}

func (r *UserPfxCertificateReconciler) reconcileNormal(ctx context.Context, obj *intunev1alpha1.UserPfxCertificate) (ctrl.Result, error) {
	now := r.Clock.Now()
	want, err := r.desired(ctx, obj, now)
	if err != nil {
		return r.fail(ctx, obj, err)
	}
	ready := meta.FindStatusCondition(obj.Status.Conditions, intunev1alpha1.ConditionReady)
	inSync := obj.Status.ID != "" && obj.Status.SourceHash == want.hash && len(obj.Status.RetiredIDs) == 0 &&
		ready != nil && ready.Status == metav1.ConditionTrue && ready.Reason != intunev1alpha1.ReasonSuspended
	if inSync && !resyncDue(obj.Status.LastSyncTime, r.ResyncPeriod, now) {
		return ctrl.Result{RequeueAfter: untilResync(obj.Status.LastSyncTime, r.ResyncPeriod, now)}, nil
	}

	if want.encryption.padding.Legacy() && obj.Status.SourceHash != want.hash {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, "LegacyPadding", "Encrypt",
			"paddingScheme %s is no longer supported by Microsoft's import tool: prefer oaepSha512", want.encryption.padding)
	}
	record, action, err := r.sync(ctx, obj, want)
	if err != nil {
		return r.fail(ctx, obj, err)
	}

	st := &obj.Status
	if st.ID != "" && st.ID != record.ID && !slices.Contains(st.RetiredIDs, st.ID) {
		st.RetiredIDs = append(st.RetiredIDs, st.ID)
	}
	st.ID = record.ID
	st.UserPrincipalName = want.upn
	st.Thumbprint = want.material.Facts.Thumbprint
	st.StartDateTime = timePtr(want.material.Facts.NotBefore)
	st.ExpirationDateTime = timePtr(want.material.Facts.NotAfter)
	st.CreatedDateTime = timePtr(record.CreatedDateTime)
	st.LastModifiedDateTime = timePtr(record.LastModifiedDateTime)
	st.SourceHash = want.hash
	st.LastSyncTime = &metav1.Time{Time: now}
	if userID := userIDFromRecordID(record.ID); userID != "" {
		st.UserID = userID
	}
	if err := r.deleteRetired(ctx, obj, want.conn); err != nil {
		return r.fail(ctx, obj, err)
	}

	reason, message := readyReasonFor(action, record.ID)
	setReady(&obj.Status.Conditions, obj.Generation, true, reason, message)
	if action != "" {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, action, "Sync", message)
	}
	return ctrl.Result{RequeueAfter: jittered(r.ResyncPeriod)}, nil
}

// desired reads the source, the connection and the connector key, and checks them, without calling Graph.
func (r *UserPfxCertificateReconciler) desired(ctx context.Context, obj *intunev1alpha1.UserPfxCertificate, now time.Time) (*desiredUserPfx, error) {
	m, err := readMaterial(ctx, r.Live, obj.Namespace, obj.Spec.Source, now)
	if err != nil {
		return nil, err
	}
	upn := obj.Spec.UserPrincipalName
	if upn == "" {
		upn = m.Facts.UserPrincipalName
	}
	if upn == "" {
		return nil, &conditionError{reason: intunev1alpha1.ReasonInvalidSpec, terminal: true,
			message: "the certificate has no UPN or email SAN: set spec.userPrincipalName"}
	}
	conn, err := r.Connections.ForResource(ctx, obj.Namespace, obj.Spec.ConnectionRef)
	if err != nil {
		return nil, err
	}
	enc, err := resolveEncryption(ctx, r.Live, conn, obj.Namespace, obj.Spec.Encryption)
	if err != nil {
		return nil, err
	}
	purpose := string(obj.Spec.IntendedPurpose)
	if purpose == "" {
		purpose = "unassigned"
	}
	hash := connection.Digest([]byte(m.digest), []byte(strings.ToLower(upn)), []byte(purpose), []byte(enc.providerName),
		[]byte(enc.keyName), []byte(enc.padding.Effective()), []byte(enc.keyDigest), []byte(conn.TenantID))
	return &desiredUserPfx{conn: conn, material: m, encryption: enc, upn: upn, purpose: purpose, hash: hash}, nil
}

// sync makes Graph hold the desired record and says what it did (an Event reason, "" when nothing changed).
// The id is deterministic, so the record is always looked up first: a crash between a create and the
// status write is adopted on the next pass instead of failing or duplicating.
func (r *UserPfxCertificateReconciler) sync(ctx context.Context, obj *intunev1alpha1.UserPfxCertificate, want *desiredUserPfx) (*graph.UserPFXCertificate, string, error) {
	gc := want.conn.Graph
	userID, err := gc.ResolveUserID(ctx, want.upn)
	if graph.IsNotFound(err) {
		return nil, "", &conditionError{reason: intunev1alpha1.ReasonUserNotFound, terminal: true,
			message: fmt.Sprintf("no user %q in tenant %s: check spec.userPrincipalName or the certificate's SAN", want.upn, want.conn.TenantID)}
	}
	if err != nil {
		return nil, "", err
	}
	id := graph.UserPFXCertificateID(userID, want.material.Facts.Thumbprint)
	existing, err := gc.GetUserPFXCertificate(ctx, id)
	switch {
	case graph.IsNotFound(err):
		payload, err := r.payload(want)
		if err != nil {
			return nil, "", err
		}
		created, err := gc.CreateUserPFXCertificate(ctx, payload)
		if graph.IsConflict(err) {
			// Created meanwhile (the service can lag behind its own writes): make it ours with an update.
			created, err = gc.UpdateUserPFXCertificate(ctx, id, payload)
		}
		if err != nil {
			return nil, "", err
		}
		return withID(created, id), createAction(obj.Status.ID, id), nil
	case err != nil:
		return nil, "", err
	}

	adopting := obj.Status.ID != id
	if matchesRecord(existing, want) && (adopting || obj.Status.SourceHash == want.hash) {
		if adopting {
			return withID(existing, id), adoptAction(obj.Status.ID), nil
		}
		return withID(existing, id), "", nil // drift check: Intune matches, nothing written
	}
	payload, err := r.payload(want)
	if err != nil {
		return nil, "", err
	}
	updated, err := gc.UpdateUserPFXCertificate(ctx, id, payload)
	if err != nil {
		return nil, "", err
	}
	if adopting {
		return withID(updated, id), adoptAction(obj.Status.ID), nil
	}
	return withID(updated, id), "Updated", nil
}

// payload builds the record as Intune expects it: the raw PFX and its password encrypted for the connector.
func (r *UserPfxCertificateReconciler) payload(want *desiredUserPfx) (*graph.UserPFXCertificate, error) {
	encrypted, err := pfx.EncryptPassword(want.encryption.publicKey, want.encryption.padding, want.material.Password)
	if err != nil {
		return nil, err
	}
	f := want.material.Facts
	return &graph.UserPFXCertificate{
		Thumbprint:           f.Thumbprint,
		IntendedPurpose:      want.purpose,
		UserPrincipalName:    want.upn,
		StartDateTime:        f.NotBefore,
		ExpirationDateTime:   f.NotAfter,
		ProviderName:         want.encryption.providerName,
		KeyName:              want.encryption.keyName,
		PaddingScheme:        string(want.encryption.padding.Effective()),
		EncryptedPfxBlob:     want.material.PFX,
		EncryptedPfxPassword: encrypted,
	}, nil
}

// matchesRecord compares what Graph returns (it never returns the blob or the password).
func matchesRecord(rec *graph.UserPFXCertificate, want *desiredUserPfx) bool {
	f := want.material.Facts
	return strings.EqualFold(rec.Thumbprint, f.Thumbprint) &&
		rec.IntendedPurpose == want.purpose &&
		strings.EqualFold(rec.UserPrincipalName, want.upn) &&
		rec.ProviderName == want.encryption.providerName &&
		rec.KeyName == want.encryption.keyName &&
		rec.PaddingScheme == string(want.encryption.padding.Effective()) &&
		rec.StartDateTime.Equal(f.NotBefore) && rec.ExpirationDateTime.Equal(f.NotAfter)
}

// deleteRetired deletes the records earlier certificates of this resource left (after a rotation);
// each id stays in status until its delete succeeded.
func (r *UserPfxCertificateReconciler) deleteRetired(ctx context.Context, obj *intunev1alpha1.UserPfxCertificate, conn *connection.Connection) error {
	for len(obj.Status.RetiredIDs) > 0 {
		id := obj.Status.RetiredIDs[0]
		if err := conn.Graph.DeleteUserPFXCertificate(ctx, id); err != nil && !graph.IsNotFound(err) {
			return fmt.Errorf("failed to delete the previous record %s: %w", id, err)
		}
		obj.Status.RetiredIDs = obj.Status.RetiredIDs[1:]
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "Deleted", "Delete", "Deleted the previous Intune record %s", id)
	}
	obj.Status.RetiredIDs = nil
	return nil
}

func (r *UserPfxCertificateReconciler) reconcileDelete(ctx context.Context, obj *intunev1alpha1.UserPfxCertificate) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(obj, Finalizer) {
		return ctrl.Result{}, nil
	}
	if obj.Spec.DeletionPolicy != intunev1alpha1.DeletionPolicyOrphan {
		ids := append(slices.Clone(obj.Status.RetiredIDs), obj.Status.ID)
		ids = slices.DeleteFunc(ids, func(id string) bool { return id == "" })
		if len(ids) > 0 {
			if obj.Spec.Suspend {
				setReady(&obj.Status.Conditions, obj.Generation, false, intunev1alpha1.ReasonSuspended,
					"deletion waits: spec.suspend is true; set it to false, or set deletionPolicy to Orphan to keep the Intune record")
				return ctrl.Result{}, nil
			}
			conn, err := r.Connections.ForResource(ctx, obj.Namespace, obj.Spec.ConnectionRef)
			if err != nil {
				return r.failDeleting(ctx, obj, err)
			}
			stillListed, err := deleteUserPfxRecords(ctx, conn.Graph, ids)
			if err != nil {
				return r.failDeleting(ctx, obj, err)
			}
			if stillListed != "" {
				setReady(&obj.Status.Conditions, obj.Generation, false, intunev1alpha1.ReasonDeleting,
					fmt.Sprintf("Intune still lists record %s after deleting it (a known service delay); checking again", stillListed))
				return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
			}
			r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "Deleted", "Delete", "Deleted Intune record %s", strings.Join(ids, ", "))
		}
	}
	controllerutil.RemoveFinalizer(obj, Finalizer)
	if err := r.Update(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("failed to remove finalizer: %w", err)
	}
	forgetMetrics(kindUserPfxCertificate, obj.Namespace, obj.Name)
	return ctrl.Result{}, nil
}

// deleteUserPfxRecords deletes each record (a 404 counts as done) and reads each back once, because the
// service can answer 204 and keep listing the record for a while. It returns an id still listed, if any.
func deleteUserPfxRecords(ctx context.Context, gc *graph.Client, ids []string) (string, error) {
	for _, id := range ids {
		if err := gc.DeleteUserPFXCertificate(ctx, id); err != nil && !graph.IsNotFound(err) {
			return "", err
		}
	}
	for _, id := range ids {
		_, err := gc.GetUserPFXCertificate(ctx, id)
		if err == nil {
			return id, nil
		}
		if !graph.IsNotFound(err) {
			return "", err
		}
	}
	return "", nil
}

func (r *UserPfxCertificateReconciler) failDeleting(ctx context.Context, obj *intunev1alpha1.UserPfxCertificate, err error) (ctrl.Result, error) {
	f := classify(err)
	message := "deleting the Intune record failed: " + f.message + " (set deletionPolicy to Orphan to keep it and let the resource go)"
	return reportFailure(ctx, r.Recorder, obj, obj.Generation, &obj.Status.Conditions, f, message, err)
}

func (r *UserPfxCertificateReconciler) fail(ctx context.Context, obj *intunev1alpha1.UserPfxCertificate, err error) (ctrl.Result, error) {
	f := classify(err)
	return reportFailure(ctx, r.Recorder, obj, obj.Generation, &obj.Status.Conditions, f, f.message, err)
}

// reportFailure puts a failure on the Ready condition, emits a Warning Event when the condition changed,
// and says when to try again.
func reportFailure(ctx context.Context, recorder events.EventRecorder, obj client.Object, generation int64, conditions *[]metav1.Condition, f failure, message string, err error) (ctrl.Result, error) {
	if setReady(conditions, generation, false, f.reason, message) {
		recorder.Eventf(obj, nil, corev1.EventTypeWarning, "Failed", "Sync", "%s: %s", f.reason, message)
	}
	if f.retryAfter > 0 {
		log.FromContext(ctx).V(1).Info("Reconcile failed; retrying later", "reason", f.reason, "retryAfter", f.retryAfter)
		return ctrl.Result{RequeueAfter: f.retryAfter}, nil
	}
	return ctrl.Result{}, err
}

func createAction(previousID, id string) string {
	switch previousID {
	case "":
		return "Imported"
	case id:
		return "Reimported" // the record vanished from Intune (deleted in the portal)
	default:
		return "Rotated"
	}
}

func adoptAction(previousID string) string {
	if previousID == "" {
		return "Adopted"
	}
	return "Rotated"
}

func readyReasonFor(action, id string) (string, string) {
	switch action {
	case "Imported", "Reimported", "Rotated":
		return intunev1alpha1.ReasonImported, fmt.Sprintf("%s as Intune record %s", action, id)
	case "Adopted":
		return intunev1alpha1.ReasonAdopted, fmt.Sprintf("Adopted the existing Intune record %s", id)
	case "Updated":
		return intunev1alpha1.ReasonUpdated, fmt.Sprintf("Updated Intune record %s", id)
	default:
		return intunev1alpha1.ReasonInSync, fmt.Sprintf("Intune record %s matches the spec", id)
	}
}

// withID fills the id when Graph's answer omitted it.
func withID(rec *graph.UserPFXCertificate, id string) *graph.UserPFXCertificate {
	if rec.ID == "" {
		rec.ID = id
	}
	return rec
}

// userIDFromRecordID recovers the user object id (with dashes) from {userIdWithoutDashes}-{thumbprint}.
func userIDFromRecordID(id string) string {
	hexID, _, ok := strings.Cut(id, "-")
	if !ok || len(hexID) != 32 {
		return ""
	}
	return hexID[0:8] + "-" + hexID[8:12] + "-" + hexID[12:16] + "-" + hexID[16:20] + "-" + hexID[20:32]
}
