package controller

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
	"github.com/certops/intune-cert-operator/internal/graph"
	"github.com/certops/intune-cert-operator/internal/pfx"
)

const kindPfxUserCertificate = "PfxUserCertificate"

// +kubebuilder:rbac:groups=intune.certops.dev,resources=pfxusercertificates,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=intune.certops.dev,resources=pfxusercertificates/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=intune.certops.dev,resources=pfxusercertificates/finalizers,verbs=update

// PfxUserCertificateReconciler keeps a Graph pfxUserCertificate equal to its resource. With spec.id the
// record exists already: the resource updates it and never creates or deletes it. Without, the resource
// creates it (Graph assigns the id, and its type lists no id property, so a create answered without one is
// found again by listing), and deletes it per deletionPolicy.
type PfxUserCertificateReconciler struct {
	kindReconciler[*intunev1alpha1.PfxUserCertificate]
}

var pfxUserKind = resourceKind[*intunev1alpha1.PfxUserCertificate]{
	name:      kindPfxUserCertificate,
	newObject: func() *intunev1alpha1.PfxUserCertificate { return &intunev1alpha1.PfxUserCertificate{} },
	status: func(o *intunev1alpha1.PfxUserCertificate) (any, *intunev1alpha1.CommonStatus) {
		return &o.Status, &o.Status.CommonStatus
	},
	suspended: func(o *intunev1alpha1.PfxUserCertificate) bool { return o.Spec.Suspend },
	expiry:    func(o *intunev1alpha1.PfxUserCertificate) *metav1.Time { return o.Status.CertExpirationDate },
}

// desiredPfxUser is everything the record should be, gathered before any Graph call.
type desiredPfxUser struct {
	conn       *connection.Connection
	material   *material
	encryption *encryption
	// record is the record without its secret parts (blob and encrypted password), as Graph reads it back.
	record graph.PfxUserCertificate
	// hash identifies what would be pushed, without holding any secret.
	hash string
}

func (r *PfxUserCertificateReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.run(ctx, req, r.reconcileNormal, r.reconcileDelete)
}

func (r *PfxUserCertificateReconciler) reconcileNormal(ctx context.Context, obj *intunev1alpha1.PfxUserCertificate) (ctrl.Result, error) {
	now := r.Clock.Now()
	want, err := r.desired(ctx, obj, now)
	if err != nil {
		return r.fail(ctx, obj, err)
	}
	pushed := obj.Status.SourceHash == want.hash
	if pushed {
		if wait, skip := r.skipUntilResync(obj, obj.Status.LastSyncTime, now); skip {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
	}
	record, action, err := r.sync(ctx, obj, want, pushed)
	if err != nil {
		return r.fail(ctx, obj, err)
	}

	st := &obj.Status
	f := want.material.Facts
	st.ETag = record.ETag
	st.CreatedTime = timePtr(record.CreatedTime)
	st.LastModifiedTime = timePtr(record.LastModifiedTime)
	st.Thumbprint = f.Thumbprint
	st.CertStartDate = timePtr(f.NotBefore)
	st.CertExpirationDate = timePtr(f.NotAfter)
	st.SourceHash = want.hash
	st.LastSyncTime = &metav1.Time{Time: now}
	r.succeed(ctx, obj, action, recordID(obj))
	return ctrl.Result{RequeueAfter: jittered(r.ResyncPeriod)}, nil
}

// desired reads the source, the connection and the connector key, and checks them, without calling Graph.
func (r *PfxUserCertificateReconciler) desired(ctx context.Context, obj *intunev1alpha1.PfxUserCertificate, now time.Time) (*desiredPfxUser, error) {
	spec := &obj.Spec
	m, err := readMaterial(ctx, r.Live, obj.Namespace, spec.Source, now)
	if err != nil {
		return nil, err
	}
	upn := spec.UserUPN
	if upn == "" {
		upn = m.Facts.UserPrincipalName
	}
	conn, err := r.connectionFor(ctx, obj.Namespace, spec.ConnectionRef, connection.AccessRequest{Kind: kindPfxUserCertificate,
		IntendedPurpose: graph.UserPfxIntendedPurposeName(spec.IntendedPurpose), UserPrincipalName: upn,
		Certificate: m.Leaf, Chain: m.Chain, Now: now})
	if err != nil {
		return nil, err
	}
	enc, err := resolveEncryption(ctx, r.Live, conn, obj.Namespace, spec.Encryption)
	if err != nil {
		return nil, err
	}
	// Send the padding actually used, as UserPfxCertificate does: "none" is the connector's oaepSha512.
	padding, err := enc.padding.Effective().GraphNumber()
	if err != nil {
		return nil, err
	}
	tenantID := spec.TenantID
	if tenantID == "" {
		tenantID = conn.TenantID
	}
	record := graph.PfxUserCertificate{
		TenantID:           tenantID,
		UserID:             spec.UserID,
		Thumbprint:         m.Facts.Thumbprint,
		UserUpn:            upn,
		CertStartDate:      m.Facts.NotBefore,
		CertExpirationDate: m.Facts.NotAfter,
		ProviderName:       enc.providerName,
		EncryptionKeyName:  enc.keyName,
		PaddingScheme:      padding,
		Status:             spec.Status,
		IntendedPurpose:    spec.IntendedPurpose,
		IsDeleted:          spec.IsDeleted,
	}
	fields, err := json.Marshal(record)
	if err != nil {
		return nil, fmt.Errorf("failed to encode the pfxUserCertificate fields: %w", err)
	}
	// The source's digest, not the payload: a tls source gets a new PFX password on every pass.
	hash := digest([]byte(m.digest), fields, []byte(enc.keyDigest))
	return &desiredPfxUser{conn: conn, material: m, encryption: enc, record: record, hash: hash}, nil
}

// sync makes the record hold what is desired and says what it did (an Event reason, "" when nothing was
// written). A PATCH of the same content is harmless, but it is only sent when the spec or the Secrets differ
// from what was last pushed (pushed is false) or Intune's copy drifted from it: Graph never returns the blob
// or the password, so only what the operator recorded tells whether they are current.
func (r *PfxUserCertificateReconciler) sync(ctx context.Context, obj *intunev1alpha1.PfxUserCertificate, want *desiredPfxUser, pushed bool) (*graph.PfxUserCertificate, string, error) {
	gc := want.conn.Graph
	if err := sameUser(ctx, want); err != nil {
		return nil, "", err
	}
	if obj.Spec.ID == "" {
		return r.syncOwned(ctx, obj, want, pushed)
	}
	id := obj.Spec.ID
	// Before the first write: one resource per record. A record named by spec.id existed before the resource,
	// so access.adoption: Deny refuses one that no resource of this operator managed yet.
	fresh, err := r.Claims.claim(ctx, obj, kindPfxUserCertificate, want.conn.TenantID, id)
	if err != nil {
		return nil, "", err
	}
	if fresh && adoptionRefused(want.conn) {
		return nil, "", r.refuseAdoption(ctx, obj, want.conn, kindPfxUserCertificate, id)
	}
	if pushed {
		record, err := gc.GetPfxUserCertificate(ctx, id)
		if err != nil {
			return nil, "", recordError(err, id, want)
		}
		if matchesPfxUser(record, &want.record) {
			return record, "", nil
		}
	}
	updated, err := (&pfxUserRecords{r: r, want: want}).Update(ctx, id)
	if err != nil {
		return nil, "", recordError(err, id, want)
	}
	return updated, "Updated", nil
}

// sameUser checks that spec.userId is the user the connection's access rules were applied to (spec.userUpn, or
// the certificate's UPN): the rules judge a user by name, the record names it by id, and a namespace allowed
// to write records of one user must not write them for another by naming a different id.
func sameUser(ctx context.Context, want *desiredPfxUser) error {
	upn := want.record.UserUpn
	if upn == "" {
		return &conditionError{reason: intunev1alpha1.ReasonInvalidSpec, terminal: true,
			message: "the certificate has no UPN or email SAN: set spec.userUpn to the user of spec.userId"}
	}
	id, err := resolveUser(ctx, want.conn, upn, "spec.userUpn")
	if err != nil {
		return err
	}
	if !strings.EqualFold(id, want.record.UserID) {
		return &conditionError{reason: intunev1alpha1.ReasonAccessDenied, terminal: true, message: fmt.Sprintf(
			"spec.userId %s is not the id of user %q (%s), whom the connection's access rules were applied to: a record is "+
				"written only for that user", want.record.UserID, upn, id)}
	}
	return nil
}

// syncOwned keeps the record this resource creates. Graph assigns its id, so the user's record of this
// certificate is found in the list before any create (assignedRecord): a create whose answer was lost is
// found, not repeated. A new certificate of this resource goes into the same record.
func (r *PfxUserCertificateReconciler) syncOwned(ctx context.Context, obj *intunev1alpha1.PfxUserCertificate, want *desiredPfxUser, pushed bool) (*graph.PfxUserCertificate, string, error) {
	key := strings.ToLower(want.record.UserID) + "/" + strings.ToLower(want.record.Thumbprint)
	fresh, err := r.Claims.claim(ctx, obj, kindPfxUserCertificate, want.conn.TenantID, key)
	if err != nil {
		return nil, "", err
	}
	flow := &assignedRecord[graph.PfxUserCertificate]{
		ext:  &pfxUserRecords{r: r, want: want},
		id:   obj.Status.ID,
		mark: &obj.Status.CreateStartedTime,
		idOf: func(rec *graph.PfxUserCertificate) string { return rec.ID },
		// What was pushed last is current only when the source is unchanged (Graph never returns the blob).
		matches:      func(rec *graph.PfxUserCertificate) bool { return pushed && matchesPfxUser(rec, &want.record) },
		rewriteFound: true,
		unseen: func(ctx context.Context, err error) error {
			return r.unclaimUnseen(ctx, obj, want.conn, kindPfxUserCertificate, key, fresh, err)
		},
		adopt: func(ctx context.Context, found *graph.PfxUserCertificate) error {
			if fresh && adoptionRefused(want.conn) {
				return r.refuseAdoption(ctx, obj, want.conn, kindPfxUserCertificate, key)
			}
			// A resource naming the record by spec.id claims it by id: so does this one, before any write.
			_, err := r.Claims.claim(ctx, obj, kindPfxUserCertificate, want.conn.TenantID, found.ID)
			return err
		},
		beginCreate: func(ctx context.Context) error {
			obj.Status.Thumbprint = want.record.Thumbprint // how a deletion finds the record should the id never arrive
			return r.beginCreate(ctx, obj, &obj.Status.CreateStartedTime)
		},
		settling: func(mark *metav1.Time) error { return r.createSettling(mark, r.Clock.Now()) },
	}
	record, action, err := flow.sync(ctx)
	if err != nil {
		return nil, "", err
	}
	// The record this resource made is claimed by id too, as a resource naming it by spec.id claims it.
	if _, err := r.Claims.claim(ctx, obj, kindPfxUserCertificate, want.conn.TenantID, record.ID); err != nil {
		return nil, "", err
	}
	obj.Status.ID = record.ID
	return record, action, nil
}

// pfxUserRecords is the external client of one resource's pfxUserCertificate (external's contracts). The
// type lists no id property and the pages document no $filter, so Find reads the whole list and matches
// the user and thumbprint.
type pfxUserRecords struct {
	r    *PfxUserCertificateReconciler
	want *desiredPfxUser
}

func (p *pfxUserRecords) Get(ctx context.Context, id string) (*graph.PfxUserCertificate, error) {
	got, err := p.want.conn.Graph.GetPfxUserCertificate(ctx, id)
	if graph.IsNotFound(err) {
		return nil, nil
	}
	return got, err
}

func (p *pfxUserRecords) Find(ctx context.Context) (*graph.PfxUserCertificate, error) {
	all, err := p.want.conn.Graph.ListPfxUserCertificates(ctx)
	if err != nil {
		return nil, err
	}
	return findPfxUser(all, &p.want.record), nil
}

func (p *pfxUserRecords) Create(ctx context.Context) (*graph.PfxUserCertificate, error) {
	payload, err := p.r.payload(p.want)
	if err != nil {
		return nil, err
	}
	return p.want.conn.Graph.CreatePfxUserCertificate(ctx, payload)
}

// Update PATCHes the whole payload onto record id; for a 204 answer it reads the record back.
func (p *pfxUserRecords) Update(ctx context.Context, id string) (*graph.PfxUserCertificate, error) {
	payload, err := p.r.payload(p.want)
	if err != nil {
		return nil, err
	}
	gc := p.want.conn.Graph
	updated, err := gc.UpdatePfxUserCertificate(ctx, id, payload)
	if err == nil && updated == nil {
		updated, err = gc.GetPfxUserCertificate(ctx, id)
	}
	return updated, err
}

func (p *pfxUserRecords) Delete(ctx context.Context, id string) error {
	return ignoreGone(p.want.conn.Graph.DeletePfxUserCertificate(ctx, id))
}

// sameCertificate says whether rec is the user's record of the wanted certificate: what identifies a
// pfxUserCertificate whose id Graph assigned.
func sameCertificate(rec, want *graph.PfxUserCertificate) bool {
	return strings.EqualFold(rec.UserID, want.UserID) && strings.EqualFold(rec.Thumbprint, want.Thumbprint)
}

func findPfxUser(records []graph.PfxUserCertificate, want *graph.PfxUserCertificate) *graph.PfxUserCertificate {
	for i := range records {
		if sameCertificate(&records[i], want) {
			return &records[i]
		}
	}
	return nil
}

// recordID is the record a resource manages: the one spec.id names, or the one it created.
func recordID(obj *intunev1alpha1.PfxUserCertificate) string {
	if obj.Spec.ID != "" {
		return obj.Spec.ID
	}
	return obj.Status.ID
}

// recordError explains a 404 of the record spec.id names, which this resource cannot create.
func recordError(err error, id string, want *desiredPfxUser) error {
	if !graph.IsNotFound(err) {
		return err
	}
	return &conditionError{reason: intunev1alpha1.ReasonRecordNotFound, terminal: true, message: fmt.Sprintf(
		"Intune has no pfxUserCertificate %q in tenant %s: a resource with spec.id only updates that existing record; "+
			"check spec.id, or create a resource without it to create a record", id, want.conn.TenantID)}
}

// reconcileDelete removes the record this resource created (and one its create may have made without the id
// arriving), per deletionPolicy; a record named by spec.id is never deleted.
func (r *PfxUserCertificateReconciler) reconcileDelete(ctx context.Context, obj *intunev1alpha1.PfxUserCertificate) (ctrl.Result, error) {
	st := &obj.Status
	owned := ""
	if obj.Spec.ID == "" {
		owned = markedRecords(st.ID, st.CreateStartedTime)
	}
	return r.finalize(ctx, obj, deletion{
		policy:        obj.Spec.DeletionPolicy,
		connectionRef: obj.Spec.ConnectionRef,
		records:       owned,
		remove: func(ctx context.Context, conn *connection.Connection) (string, error) {
			mark := st.CreateStartedTime
			if st.Thumbprint == "" {
				mark = nil // marked by a version that did not store the certificate: there is nothing to find it by
			}
			want := &desiredPfxUser{conn: conn, record: graph.PfxUserCertificate{UserID: obj.Spec.UserID, Thumbprint: st.Thumbprint}}
			return removeMarked(ctx, &pfxUserRecords{want: want},
				func(rec *graph.PfxUserCertificate) string { return rec.ID }, st.ID, mark, r.CreateSettle, r.Clock.Now())
		},
	})
}

// payload is the record with the raw PFX (base64, as the String field carries it) and its password
// encrypted for the connector.
func (r *PfxUserCertificateReconciler) payload(want *desiredPfxUser) (*graph.PfxUserCertificate, error) {
	encrypted, err := pfx.EncryptPassword(want.encryption.publicKey, want.encryption.padding, want.material.Password)
	if err != nil {
		return nil, err
	}
	payload := want.record
	payload.EncryptedPfxBlob = base64.StdEncoding.EncodeToString(want.material.PFX)
	payload.EncryptedPfxPassword = encrypted
	return &payload, nil
}

// matchesPfxUser compares what Graph returns (never the blob or the password).
func matchesPfxUser(rec, want *graph.PfxUserCertificate) bool {
	return strings.EqualFold(rec.TenantID, want.TenantID) &&
		strings.EqualFold(rec.UserID, want.UserID) &&
		strings.EqualFold(rec.Thumbprint, want.Thumbprint) &&
		strings.EqualFold(rec.UserUpn, want.UserUpn) &&
		rec.CertStartDate.Equal(want.CertStartDate) && rec.CertExpirationDate.Equal(want.CertExpirationDate) &&
		rec.ProviderName == want.ProviderName && rec.EncryptionKeyName == want.EncryptionKeyName &&
		rec.PaddingScheme == want.PaddingScheme && rec.IntendedPurpose == want.IntendedPurpose &&
		sameIfSet(rec.Status, want.Status) && sameIfSet(rec.IsDeleted, want.IsDeleted)
}

// sameIfSet compares a field the spec may leave to the connector: unset, any value matches.
func sameIfSet[V comparable](got, want *V) bool {
	return want == nil || (got != nil && *got == *want)
}
