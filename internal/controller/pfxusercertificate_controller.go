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

// +kubebuilder:rbac:groups=intune.certops.dev,resources=pfxusercertificates,verbs=get;list;watch
// +kubebuilder:rbac:groups=intune.certops.dev,resources=pfxusercertificates/status,verbs=get;update;patch

// PfxUserCertificateReconciler keeps an existing Graph pfxUserCertificate equal to its resource.
//
// Graph documents only GET and PATCH for this record, so the resource never creates one and never deletes
// one. Deleting the resource therefore needs no Graph call, and the kind holds no finalizer: the resource
// goes at once and the record stays in Intune as it was last written.
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
	return r.run(ctx, req, r.reconcileNormal, nil)
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
	} else {
		warnLegacyPadding(r.Recorder, obj, want.encryption.padding)
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
	r.succeed(obj, action, obj.Spec.ID)
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

// sync makes the record hold what is desired and says what it did ("Updated", or "" when nothing was
// written). A PATCH of the same content is harmless, but it is only sent when the spec or the Secrets differ
// from what was last pushed (pushed is false) or Intune's copy drifted from it: Graph never returns the blob
// or the password, so only what the operator recorded tells whether they are current.
func (r *PfxUserCertificateReconciler) sync(ctx context.Context, obj *intunev1alpha1.PfxUserCertificate, want *desiredPfxUser, pushed bool) (*graph.PfxUserCertificate, string, error) {
	gc := want.conn.Graph
	id := obj.Spec.ID
	// Before the first write: one resource per record. Every record this kind manages existed before it (it
	// only updates), so access.adoption: Deny refuses one that no resource of this operator managed yet.
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
	payload, err := r.payload(want)
	if err != nil {
		return nil, "", err
	}
	updated, err := gc.UpdatePfxUserCertificate(ctx, id, payload)
	if err != nil {
		return nil, "", recordError(err, id, want)
	}
	return updated, "Updated", nil
}

// recordError explains a 404: this kind updates an existing record and cannot create one.
func recordError(err error, id string, want *desiredPfxUser) error {
	if !graph.IsNotFound(err) {
		return err
	}
	return &conditionError{reason: intunev1alpha1.ReasonRecordNotFound, terminal: true, message: fmt.Sprintf(
		"Intune has no pfxUserCertificate %q in tenant %s: this resource only updates an existing record (Graph offers no "+
			"create for it); check spec.id", id, want.conn.TenantID)}
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
		rec.PaddingScheme == want.PaddingScheme && rec.Status == want.Status &&
		rec.IntendedPurpose == want.IntendedPurpose && rec.IsDeleted == want.IsDeleted
}
