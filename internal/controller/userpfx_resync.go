package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
	"github.com/certops/intune-cert-operator/internal/graph"
)

// userPfxInputs is what a UserPfxCertificate's pass depends on besides its status, as the manager's caches
// know it: no API request, no Secret data. It is read before the Secrets' data (desired), so a Secret
// changed in between shows as changed to the next pass. ok is false when it cannot be told this way (a
// certificateRef source, a connector key in a ConfigMap, Secrets not in the cache, a connection not ready,
// trusted-issuer rules): the pass then reads everything, as every pass did before.
func (r *UserPfxCertificateReconciler) userPfxInputs(ctx context.Context, obj *intunev1alpha1.UserPfxCertificate) (string, *connection.Connection, bool) {
	if r.Resync == nil {
		return "", nil, false
	}
	var names []string
	switch src := obj.Spec.Source; {
	case src.Pfx != nil:
		names = append(names, src.Pfx.SecretRef.Name)
		if p := src.Pfx.PasswordSecretRef; p != nil && p.Name != "" && p.Name != src.Pfx.SecretRef.Name {
			names = append(names, p.Name)
		}
	case src.TLS != nil:
		names = append(names, src.TLS.SecretRef.Name)
	default:
		return "", nil, false
	}
	sources, ok := secretVersions(ctx, r.Cache, obj.Namespace, names...)
	if !ok {
		return "", nil, false
	}
	conn, err := r.Connections.ForResource(ctx, obj.Namespace, obj.Spec.ConnectionRef)
	if err != nil {
		return "", nil, false
	}
	connInputs, ok := connectionInputs(conn)
	if !ok {
		return "", nil, false
	}
	merged, keyNamespace := mergeEncryption(conn, obj.Namespace, obj.Spec.Encryption)
	if merged.PublicKeyRef == nil || merged.PublicKeyRef.Kind == kindConfigMap { // ConfigMaps are not cached
		return "", nil, false
	}
	key, ok := secretVersions(ctx, r.Cache, keyNamespace, merged.PublicKeyRef.Name)
	if !ok {
		return "", nil, false
	}
	encryption, err := json.Marshal(merged)
	if err != nil {
		return "", nil, false
	}
	return strings.Join([]string{string(obj.UID), fmt.Sprint(obj.Generation), sources, key, connInputs, string(encryption)}, "\x00"), conn, true
}

// resyncUnchanged is the pass of a resource whose inputs are as its last successful pass left them: it waits
// for the next drift check, or makes it from the tenant's listing (one GET of the record when the listing
// does not show it as wanted), and reads no Secret. done is false when a full pass is needed: something
// changed, the record is not as wanted, or Graph failed (the full pass then reports it).
func (r *UserPfxCertificateReconciler) resyncUnchanged(ctx context.Context, obj *intunev1alpha1.UserPfxCertificate, inputs string, conn *connection.Connection, keep retention, now time.Time) (ctrl.Result, bool) {
	st := &obj.Status
	entry, ok := r.Resync.memo.get(obj.UID)
	if !ok || st.ID == "" || entry.inputs != fingerprint(inputs, st.SourceHash, st.ID) || !readyInSync(obj.Status.Conditions) ||
		keep.historyDue(st.History, now) || expired(st.ExpirationDateTime, now) {
		return ctrl.Result{}, false
	}
	// The access rules that need no certificate are applied again: a namespace's labels may have changed. The
	// certificate's own checks passed for this certificate under these rules (inputs).
	if err := r.Connections.Authorize(ctx, conn, connection.AccessRequest{Kind: kindUserPfxCertificate, Namespace: obj.Namespace,
		IntendedPurpose: purposeOf(obj), UserPrincipalName: st.UserPrincipalName, Now: now}); err != nil {
		return ctrl.Result{}, false
	}
	log.FromContext(ctx).V(1).Info("Inputs unchanged: no Secret read")
	last := entry.lastChecked(st.LastSyncTime)
	if !resyncDue(last, r.ResyncPeriod, now) {
		return ctrl.Result{RequeueAfter: untilResync(last, r.ResyncPeriod, now)}, true
	}
	if inSync, err := r.recordAsWanted(ctx, conn, st.ID, entry.record, true); err != nil || !inSync {
		return ctrl.Result{}, false
	}
	r.inSync(ctx, obj, now)
	entry.checked = now.UnixNano()
	r.Resync.memo.put(obj.UID, entry)
	return ctrl.Result{RequeueAfter: jittered(r.ResyncPeriod)}, true
}

// recordAsWanted says whether Intune holds record id with the fingerprint want: from the tenant's listing
// when it shows the record so, else (with get) from a GET of the record. Only a listing that shows the
// record as wanted is believed: absent or different, the record itself decides (see drift_snapshot.go).
func (r *UserPfxCertificateReconciler) recordAsWanted(ctx context.Context, conn *connection.Connection, id string, want uint64, get bool) (bool, error) {
	if r.Resync == nil {
		return false, nil
	}
	gc := conn.Graph
	listing := r.Resync.userPfx.get(ctx, conn.Ref+"\x00"+conn.TenantID, func(ctx context.Context, add func(string, uint64)) error {
		return gc.EachUserPFXCertificate(ctx, func(rec graph.UserPFXCertificate) { add(rec.ID, recordFingerprint(&rec)) })
	})
	if listing != nil {
		if got, ok := listing.lookup(id); ok && got == want {
			return true, nil
		}
	}
	if !get {
		return false, nil
	}
	rec, err := gc.GetUserPFXCertificate(ctx, id)
	if graph.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return recordFingerprint(rec) == want, nil
}

// inSync ends a drift check that found Intune as wanted: Ready says so, and lastSyncTime moves only when
// stale (syncTimeRefresh). The caller remembers the check for the schedule.
func (r *UserPfxCertificateReconciler) inSync(ctx context.Context, obj *intunev1alpha1.UserPfxCertificate, now time.Time) {
	if syncTimeStale(obj.Status.LastSyncTime, r.ResyncPeriod, now) {
		obj.Status.LastSyncTime = &metav1.Time{Time: now}
	}
	r.succeed(ctx, obj, "", obj.Status.ID)
}

// remember records a successful full pass: its inputs (read before the pass, with the status it left), the
// record as wanted, and when Intune was last found so (Unix nanoseconds; 0: unknown).
func (r *UserPfxCertificateReconciler) remember(obj *intunev1alpha1.UserPfxCertificate, inputs string, ok bool, want *desiredUserPfx, checked int64) {
	if r.Resync == nil {
		return
	}
	if !ok {
		r.Resync.memo.forget(obj.UID)
		return
	}
	r.Resync.memo.put(obj.UID, memoEntry{inputs: fingerprint(inputs, obj.Status.SourceHash, obj.Status.ID),
		record: wantFingerprint(want), checked: checked})
}

// readyInSync says whether the Ready condition is True for a push or a check (not a suspension).
func readyInSync(conditions []metav1.Condition) bool {
	ready := meta.FindStatusCondition(conditions, intunev1alpha1.ConditionReady)
	return ready != nil && ready.Status == metav1.ConditionTrue && ready.Reason != intunev1alpha1.ReasonSuspended
}

func purposeOf(obj *intunev1alpha1.UserPfxCertificate) string {
	if p := string(obj.Spec.IntendedPurpose); p != "" {
		return p
	}
	return "unassigned"
}

// userPfxFingerprint is what matchesRecord compares, in 8 bytes: enums and names without case, times as
// instants.
func userPfxFingerprint(thumbprint, purpose, upn, providerName, keyName, padding string, start, end time.Time) uint64 {
	return fingerprint(strings.ToLower(thumbprint), strings.ToLower(purpose), strings.ToLower(upn), providerName, keyName,
		strings.ToLower(padding), start.UTC().Format(time.RFC3339Nano), end.UTC().Format(time.RFC3339Nano))
}

func recordFingerprint(rec *graph.UserPFXCertificate) uint64 {
	return userPfxFingerprint(rec.Thumbprint, rec.IntendedPurpose, rec.UserPrincipalName, rec.ProviderName, rec.KeyName,
		rec.PaddingScheme, rec.StartDateTime, rec.ExpirationDateTime)
}

func wantFingerprint(want *desiredUserPfx) uint64 {
	f := want.material.Facts
	return userPfxFingerprint(f.Thumbprint, want.purpose, want.upn, want.encryption.providerName, want.encryption.keyName,
		string(want.encryption.padding.Effective()), f.NotBefore, f.NotAfter)
}
