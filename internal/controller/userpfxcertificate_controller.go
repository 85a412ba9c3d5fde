package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
	"github.com/certops/intune-cert-operator/internal/graph"
	"github.com/certops/intune-cert-operator/internal/pfx"
)

const kindUserPfxCertificate = "UserPfxCertificate"

// +kubebuilder:rbac:groups=intune.certops.dev,resources=userpfxcertificates,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=intune.certops.dev,resources=userpfxcertificates/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=intune.certops.dev,resources=userpfxcertificates/finalizers,verbs=update

// UserPfxCertificateReconciler imports a user's PFX into Intune (Graph userPFXCertificate) and keeps it so.
type UserPfxCertificateReconciler struct {
	kindReconciler[*intunev1alpha1.UserPfxCertificate]
}

var userPfxKind = resourceKind[*intunev1alpha1.UserPfxCertificate]{
	name:      kindUserPfxCertificate,
	newObject: func() *intunev1alpha1.UserPfxCertificate { return &intunev1alpha1.UserPfxCertificate{} },
	status: func(o *intunev1alpha1.UserPfxCertificate) (any, *intunev1alpha1.CommonStatus) {
		return &o.Status, &o.Status.CommonStatus
	},
	suspended: func(o *intunev1alpha1.UserPfxCertificate) bool { return o.Spec.Suspend },
	expiry:    func(o *intunev1alpha1.UserPfxCertificate) *metav1.Time { return o.Status.ExpirationDateTime },
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

func (r *UserPfxCertificateReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.run(ctx, req, r.reconcileNormal, r.reconcileDelete)
}

func (r *UserPfxCertificateReconciler) reconcileNormal(ctx context.Context, obj *intunev1alpha1.UserPfxCertificate) (ctrl.Result, error) {
	now := r.Clock.Now()
	adoptRetiredIDs(&obj.Status)
	r.takeReimportRequest(obj) // annotation intune.certops.dev/reimport: push once more now (reimport.go)
	keep := retentionOf(&obj.Spec)
	result, err := r.reconcileRecords(ctx, obj, keep, now)
	// After Ready, which every pass has set by now: Ready stays the first condition.
	if c, due := setExpiring(obj, now); due {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, "Expiring", "Sync", "%s", c.Message)
	}
	// Expiry is scheduled, not polled: wake when time alone changes something.
	if wake := nextWake(&obj.Status, renewBeforeOf(&obj.Spec), keep, now); err == nil && wake > 0 &&
		(result.RequeueAfter == 0 || wake < result.RequeueAfter) {
		result.RequeueAfter = wake
	}
	return result, err
}

// reconcileRecords makes Intune hold the current certificate and applies spec.retention to the records
// this resource had before.
func (r *UserPfxCertificateReconciler) reconcileRecords(ctx context.Context, obj *intunev1alpha1.UserPfxCertificate, keep retention, now time.Time) (ctrl.Result, error) {
	st := &obj.Status
	// An unchanged resource's resync reads no Secret and writes nothing (userpfx_resync.go). Its inputs are
	// read first: a Secret changed after this shows as changed to the next pass.
	inputs, conn, inputsKnown := r.userPfxInputs(ctx, obj)
	if inputsKnown {
		if result, done := r.resyncUnchanged(ctx, obj, inputs, conn, keep, now); done {
			return result, nil
		}
	}
	want, err := r.desired(ctx, obj, now)
	if err != nil {
		if expired(st.ExpirationDateTime, now) {
			return r.reconcileExpired(ctx, obj, keep, now, err)
		}
		return r.fail(ctx, obj, err)
	}
	if st.ID != "" && st.SourceHash == want.hash && !keep.historyDue(st.History, now) {
		memo := r.Resync.memoOf(obj.UID)
		if wait, skip := r.skipUntilResync(obj, memo.lastChecked(st.LastSyncTime), now); skip {
			r.remember(obj, inputs, inputsKnown, want, memo.checked) // what was read, for the next pass
			return ctrl.Result{RequeueAfter: wait}, nil
		}
		// The drift check from the tenant's listing, when it shows the record as wanted (after a restart,
		// say): no user lookup, no GET.
		if listed, _ := r.recordAsWanted(ctx, want.conn, st.ID, wantFingerprint(want), false); listed {
			r.inSync(ctx, obj, now)
			r.remember(obj, inputs, inputsKnown, want, now.UnixNano())
			return ctrl.Result{RequeueAfter: jittered(r.ResyncPeriod)}, nil
		}
	}

	record, action, err := r.sync(ctx, obj, want)
	if err != nil {
		return r.fail(ctx, obj, err)
	}

	supersede(st, record.ID)
	st.ID = record.ID
	st.UserPrincipalName = want.upn
	st.Thumbprint = want.material.Facts.Thumbprint
	st.StartDateTime = timePtr(want.material.Facts.NotBefore)
	st.ExpirationDateTime = timePtr(want.material.Facts.NotAfter)
	st.CreatedDateTime = timePtr(record.CreatedDateTime)
	st.LastModifiedDateTime = timePtr(record.LastModifiedDateTime)
	st.SourceHash = want.hash
	// A check that found Intune as wanted moves lastSyncTime only when it is stale (resync.go).
	if action != "" || syncTimeStale(st.LastSyncTime, r.ResyncPeriod, now) {
		st.LastSyncTime = &metav1.Time{Time: now}
	}
	if userID := userIDFromRecordID(record.ID); userID != "" {
		st.UserID = userID
	}
	if err := r.retireSuperseded(ctx, obj, want.conn, keep, now); err != nil {
		return r.fail(ctx, obj, err)
	}

	r.succeed(ctx, obj, action, record.ID)
	r.remember(obj, inputs, inputsKnown, want, now.UnixNano())
	return ctrl.Result{RequeueAfter: jittered(r.ResyncPeriod)}, nil
}

// reconcileExpired handles a resource whose current certificate expired and whose source offers no valid
// one (cause says why): spec.retention.expired decides whether the record stays in Intune, and Ready says
// which, with reason CertificateExpired, until the Secret holds a renewed certificate.
func (r *UserPfxCertificateReconciler) reconcileExpired(ctx context.Context, obj *intunev1alpha1.UserPfxCertificate, keep retention, now time.Time, cause error) (ctrl.Result, error) {
	st := &obj.Status
	removeCurrent := keep.expired == intunev1alpha1.ExpiredDelete && st.ID != ""
	if removeCurrent || keep.historyDue(st.History, now) {
		// This resource's own records: removed without the access check, as on deletion.
		conn, err := r.Connections.ForResource(ctx, obj.Namespace, obj.Spec.ConnectionRef)
		if err != nil {
			return r.fail(ctx, obj, err)
		}
		if removeCurrent {
			if err := r.removeRecord(ctx, obj, conn, st.ID, "expired"); err != nil {
				return r.fail(ctx, obj, err)
			}
			st.ID = ""
		}
		if err := r.retireSuperseded(ctx, obj, conn, keep, now); err != nil {
			return r.fail(ctx, obj, err)
		}
	}
	fate := fmt.Sprintf("Intune keeps its record %s (spec.retention.expired: Keep)", st.ID)
	if st.ID == "" {
		fate = "its record is no longer in Intune"
		if keep.expired == intunev1alpha1.ExpiredDelete {
			fate += " (spec.retention.expired: Delete)"
		}
	}
	message := fmt.Sprintf("certificate %s expired at %s and %s; renew it and update %s",
		st.Thumbprint, st.ExpirationDateTime.UTC().Format(time.RFC3339), fate, sourceName(obj.Spec.Source))
	if f := classify(cause); f.reason != intunev1alpha1.ReasonCertificateExpired {
		message += " (reading it now fails with " + f.reason + ": " + f.message + ")"
	}
	if setReady(&st.Conditions, obj.Generation, false, intunev1alpha1.ReasonCertificateExpired, message) {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, "Failed", "Sync", "%s: %s", intunev1alpha1.ReasonCertificateExpired, message)
	}
	// A renewed certificate arrives with a Secret change, which the watch delivers.
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
	purpose := string(obj.Spec.IntendedPurpose)
	if purpose == "" {
		purpose = "unassigned"
	}
	conn, err := r.connectionFor(ctx, obj.Namespace, obj.Spec.ConnectionRef, connection.AccessRequest{
		Kind: kindUserPfxCertificate, IntendedPurpose: purpose, UserPrincipalName: upn, Certificate: m.Leaf, Chain: m.Chain, Now: now})
	if err != nil {
		return nil, err
	}
	enc, err := resolveEncryption(ctx, r.Live, conn, obj.Namespace, obj.Spec.Encryption)
	if err != nil {
		return nil, err
	}
	hash := digest([]byte(m.digest), []byte(strings.ToLower(upn)), []byte(purpose), []byte(enc.providerName),
		[]byte(enc.keyName), []byte(enc.padding.Effective()), []byte(enc.keyDigest), []byte(conn.TenantID))
	return &desiredUserPfx{conn: conn, material: m, encryption: enc, upn: upn, purpose: purpose, hash: hash}, nil
}

// sync makes Graph hold the desired record and says what it did (an Event reason, "" when nothing changed).
// The id is deterministic, so the record is always looked up first: a crash between a create and the
// status write is adopted on the next pass instead of failing or duplicating.
func (r *UserPfxCertificateReconciler) sync(ctx context.Context, obj *intunev1alpha1.UserPfxCertificate, want *desiredUserPfx) (*graph.UserPFXCertificate, string, error) {
	userID, err := resolveUser(ctx, want.conn, want.upn, "spec.userPrincipalName")
	if err != nil {
		return nil, "", err
	}
	id := graph.UserPFXCertificateID(userID, want.material.Facts.Thumbprint)
	// Before the first write: one resource per record, across namespaces.
	fresh, err := r.Claims.claim(ctx, obj, kindUserPfxCertificate, want.conn.TenantID, id)
	if err != nil {
		return nil, "", err
	}
	ext := &userPfxRecords{r: r, want: want, id: id}
	existing, err := ext.Get(ctx, id)
	switch {
	case err != nil:
		return nil, "", r.unclaimUnseen(ctx, obj, want.conn, kindUserPfxCertificate, id, fresh, err)
	case existing == nil:
		created, err := ext.Create(ctx)
		if err != nil {
			return nil, "", err
		}
		return created, createAction(obj.Status.ID, id), nil
	case fresh && adoptionRefused(want.conn):
		return nil, "", r.refuseAdoption(ctx, obj, want.conn, kindUserPfxCertificate, id)
	}

	adopting := obj.Status.ID != id
	if matchesRecord(existing, want) && (adopting || obj.Status.SourceHash == want.hash) {
		if adopting {
			return existing, adoptAction(obj.Status.ID), nil
		}
		return existing, "", nil // drift check: Intune matches, nothing written
	}
	updated, err := ext.Update(ctx, id)
	if err != nil {
		return nil, "", err
	}
	if adopting {
		return updated, adoptAction(obj.Status.ID), nil
	}
	return updated, actionUpdated, nil
}

// userPfxRecords is the external client of one resource's userPfxCertificate (external's contracts). Its id
// is {userObjectIdWithoutDashes}-{thumbprint}: the record of the wanted certificate is the one of that id,
// so Find is a Get, and a create that collides (409, made meanwhile) adopts the record with an update.
type userPfxRecords struct {
	r    *UserPfxCertificateReconciler
	want *desiredUserPfx
	id   string
}

func (u *userPfxRecords) Get(ctx context.Context, id string) (*graph.UserPFXCertificate, error) {
	got, err := u.want.conn.Graph.GetUserPFXCertificate(ctx, id)
	if graph.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return withID(got, id), nil
}

func (u *userPfxRecords) Find(ctx context.Context) (*graph.UserPFXCertificate, error) {
	return u.Get(ctx, u.id)
}

func (u *userPfxRecords) Create(ctx context.Context) (*graph.UserPFXCertificate, error) {
	gc := u.want.conn.Graph
	payload, err := u.r.payload(u.want)
	if err != nil {
		return nil, err
	}
	created, err := gc.CreateUserPFXCertificate(ctx, payload)
	if graph.IsConflict(err) {
		// Created meanwhile (the service can lag behind its own writes): make it ours with an update.
		return u.Update(ctx, u.id)
	}
	if graph.IsRefused(err) || (err == nil && created.ID != "" && !strings.EqualFold(created.ID, u.id)) {
		// The user may be gone, or back under a new id (the record's id names it): ask Graph again next time.
		// A pass that ran out of time or was throttled learnt nothing about the user, and keeps it.
		gc.ForgetUserID(u.want.upn)
	}
	if err != nil {
		return nil, err
	}
	return withID(created, u.id), nil
}

// Update PATCHes the whole payload onto record id; for a 204 answer it reads the record back.
func (u *userPfxRecords) Update(ctx context.Context, id string) (*graph.UserPFXCertificate, error) {
	gc := u.want.conn.Graph
	payload, err := u.r.payload(u.want)
	if err != nil {
		return nil, err
	}
	updated, err := gc.UpdateUserPFXCertificate(ctx, id, payload)
	if err == nil && updated == nil {
		updated, err = gc.GetUserPFXCertificate(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	return withID(updated, id), nil
}

func (u *userPfxRecords) Delete(ctx context.Context, id string) error {
	return ignoreGone(u.want.conn.Graph.DeleteUserPFXCertificate(ctx, id))
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
	// Enums compare without case: the service may answer them in PascalCase, as Microsoft's tool writes them.
	return strings.EqualFold(rec.Thumbprint, f.Thumbprint) &&
		strings.EqualFold(rec.IntendedPurpose, want.purpose) &&
		strings.EqualFold(rec.UserPrincipalName, want.upn) &&
		rec.ProviderName == want.encryption.providerName &&
		rec.KeyName == want.encryption.keyName &&
		strings.EqualFold(rec.PaddingScheme, string(want.encryption.padding.Effective())) &&
		rec.StartDateTime.Equal(f.NotBefore) && rec.ExpirationDateTime.Equal(f.NotAfter)
}

// retireSuperseded applies spec.retention.superseded to status.history: a record it removes leaves history
// only once its delete succeeded, and one whose expiry is unknown (moved from retiredIds) is read once.
func (r *UserPfxCertificateReconciler) retireSuperseded(ctx context.Context, obj *intunev1alpha1.UserPfxCertificate, conn *connection.Connection, keep retention, now time.Time) error {
	st := &obj.Status
	for i := 0; i < len(st.History); {
		rec := &st.History[i]
		if rec.ExpirationDateTime == nil {
			found, err := conn.Graph.GetUserPFXCertificate(ctx, rec.ID)
			if graph.IsNotFound(err) {
				if err := r.Claims.release(ctx, obj, kindUserPfxCertificate, conn.TenantID, rec.ID); err != nil {
					return err
				}
				st.History = slices.Delete(st.History, i, i+1) // gone already: nothing to keep or remove
				continue
			}
			if err != nil {
				return fmt.Errorf("failed to read the previous record %s: %w", rec.ID, err)
			}
			rec.Thumbprint, rec.ExpirationDateTime = strings.ToLower(found.Thumbprint), timePtr(found.ExpirationDateTime)
		}
		if !keep.supersededGoes(*rec, now) {
			i++
			continue
		}
		if err := r.removeRecord(ctx, obj, conn, rec.ID, "previous"); err != nil {
			return err
		}
		st.History = slices.Delete(st.History, i, i+1)
	}
	if len(st.History) == 0 {
		st.History = nil
	}
	return nil
}

// removeRecord deletes one of this resource's records from Intune (already gone counts as deleted) and lets
// its claim go. which says what the record was, for the error and the Event.
func (r *UserPfxCertificateReconciler) removeRecord(ctx context.Context, obj *intunev1alpha1.UserPfxCertificate, conn *connection.Connection, id, which string) error {
	if err := conn.Graph.DeleteUserPFXCertificate(ctx, id); err != nil && !graph.IsNotFound(err) {
		return fmt.Errorf("failed to delete the %s record %s: %w", which, id, err)
	}
	if err := r.Claims.release(ctx, obj, kindUserPfxCertificate, conn.TenantID, id); err != nil {
		return err
	}
	r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "Deleted", "Delete", "Deleted the %s Intune record %s", which, id)
	return nil
}

func (r *UserPfxCertificateReconciler) reconcileDelete(ctx context.Context, obj *intunev1alpha1.UserPfxCertificate) (ctrl.Result, error) {
	r.Resync.forget(obj.UID)
	// The current record, the kept ones, and those an earlier operator version had still to delete.
	ids := slices.Clone(obj.Status.RetiredIDs)
	for _, rec := range obj.Status.History {
		ids = append(ids, rec.ID)
	}
	ids = append(ids, obj.Status.ID)
	ids = slices.DeleteFunc(ids, func(id string) bool { return id == "" })
	// A create may have taken effect and lost its answer: the claims taken before any write name its record
	// (its id holds the user's object id, unique across tenants).
	claimed, err := r.Claims.heldRecords(ctx, obj, kindUserPfxCertificate)
	if err != nil {
		return ctrl.Result{}, err
	}
	for _, record := range claimed {
		if !slices.ContainsFunc(ids, func(id string) bool { return strings.EqualFold(id, record) }) {
			ids = append(ids, record)
		}
	}
	return r.finalize(ctx, obj, deletion{
		policy:        obj.Spec.DeletionPolicy,
		connectionRef: obj.Spec.ConnectionRef,
		records:       strings.Join(ids, ", "),
		remove: func(ctx context.Context, conn *connection.Connection) (string, error) {
			stillListed, err := deleteUserPfxRecords(ctx, conn.Graph, ids)
			if stillListed != "" {
				return fmt.Sprintf("Intune still lists record %s after deleting it (a known service delay); checking again", stillListed), nil
			}
			return "", err
		},
	})
}

// deleteUserPfxRecords deletes each record (a 404 counts as done) and looks for each in the list once,
// because the service can answer 204 and keep listing the record for a while. It returns an id still
// listed, if any.
func deleteUserPfxRecords(ctx context.Context, gc *graph.Client, ids []string) (string, error) {
	for _, id := range ids {
		if err := gc.DeleteUserPFXCertificate(ctx, id); err != nil && !graph.IsNotFound(err) {
			return "", err
		}
	}
	for _, id := range ids {
		listed, err := stillListed(ctx, gc, id)
		if err != nil || listed {
			return id, err
		}
	}
	return "", nil
}

// stillListed says whether Intune still lists record id. The service answers a GET of a deleted record 404
// at once but keeps it in lists for a while, and lists are what Microsoft's tool (and an admin) looks at, so
// the filtered list decides. The id is {userIdWithoutDashes}-{thumbprint}.
func stillListed(ctx context.Context, gc *graph.Client, id string) (bool, error) {
	_, thumbprint, ok := strings.Cut(id, "-")
	if !ok || thumbprint == "" {
		return false, nil // not an id this operator makes; the delete's answer is all there is to go by
	}
	records, err := gc.ListUserPFXCertificates(ctx, "", thumbprint)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(records, func(rec graph.UserPFXCertificate) bool { return strings.EqualFold(rec.ID, id) }), nil
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
