package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

// Claims are written and read directly (never cached): there is one per record, and a pass needs the truth.
// +kubebuilder:rbac:groups=intune.certops.dev,resources=recordclaims,verbs=get;list;create;update;delete

// labelClaimant marks a claim with its claimant's uid, to find every claim a resource holds.
const labelClaimant = "intune.certops.dev/claimant-uid"

// recordClaims makes each Intune record managed by one resource at most, across namespaces, restarts and
// leader changes: a RecordClaim, named after tenant, kind and record, is created before the first write to the
// record. Creating an object whose name exists fails, so of two resources racing for a record exactly one wins.
type recordClaims struct {
	writer client.Writer
	live   client.Reader
	// held remembers claims this process has confirmed (claimant uid + claim name), so a resync does not ask
	// the API server again; each is checked once after a start.
	held sync.Map
}

// claimName is the claim's object name: a hash, as record keys hold characters names cannot.
func claimName(tenantID, kind, record string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(tenantID) + "\n" + kind + "\n" + strings.ToLower(record)))
	return "rc-" + hex.EncodeToString(sum[:20])
}

// claim makes obj the claimant of record, or fails with RecordClaimed when another resource is. fresh reports
// that no resource had claimed the record before this call: an existing record was not written through a
// claim of this operator's (what access.adoption: Deny refuses).
func (c *recordClaims) claim(ctx context.Context, obj client.Object, kind, tenantID, record string) (fresh bool, err error) {
	name := claimName(tenantID, kind, record)
	heldKey := string(obj.GetUID()) + "/" + name
	if _, ok := c.held.Load(heldKey); ok {
		return false, nil
	}
	claimant := intunev1alpha1.ClaimantReference{Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: string(obj.GetUID())}
	claim := &intunev1alpha1.RecordClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{labelClaimant: string(obj.GetUID())}},
		Spec:       intunev1alpha1.RecordClaimSpec{TenantID: tenantID, Kind: kind, Record: record, Claimant: claimant},
	}
	err = c.writer.Create(ctx, claim)
	if err == nil {
		c.held.Store(heldKey, true)
		return true, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("failed to claim record %s: %w", record, err)
	}
	existing := &intunev1alpha1.RecordClaim{}
	if err := c.live.Get(ctx, types.NamespacedName{Name: name}, existing); err != nil {
		return false, fmt.Errorf("failed to read the claim of record %s: %w", record, err)
	}
	if existing.Spec.Claimant.UID == claimant.UID { // ours, from before a restart or a crash
		c.held.Store(heldKey, true)
		return false, nil
	}
	alive, err := c.claimantExists(ctx, kind, existing.Spec.Claimant)
	if err != nil {
		return false, err
	}
	if alive {
		owner := ""
		if existing.Spec.Claimant.Namespace == obj.GetNamespace() {
			owner = fmt.Sprintf(" (%s %q)", kind, existing.Spec.Claimant.Name)
		}
		return false, &conditionError{reason: intunev1alpha1.ReasonRecordClaimed, terminal: true, message: fmt.Sprintf(
			"Intune record %s is managed by another resource%s; this one writes nothing to it and never deletes it", record, owner)}
	}
	// The claimant is gone without letting go (its kind keeps no finalizer, or it was force-deleted): the record
	// was written through this operator, so it is taken over like a record after a crash, not adopted.
	existing.Spec.Claimant = claimant
	existing.Labels = map[string]string{labelClaimant: claimant.UID}
	if err := c.writer.Update(ctx, existing); err != nil {
		return false, fmt.Errorf("failed to take over the claim of record %s: %w", record, err)
	}
	c.held.Store(heldKey, true)
	return false, nil
}

// claimantExists reports whether the resource a claim names still exists (same uid).
func (c *recordClaims) claimantExists(ctx context.Context, kind string, claimant intunev1alpha1.ClaimantReference) (bool, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(intunev1alpha1.GroupVersion.WithKind(kind))
	err := c.live.Get(ctx, types.NamespacedName{Namespace: claimant.Namespace, Name: claimant.Name}, m)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to read the claimant %s/%s: %w", claimant.Namespace, claimant.Name, err)
	}
	return string(m.UID) == claimant.UID, nil
}

// release lets go of obj's claim on record (if it holds it).
func (c *recordClaims) release(ctx context.Context, obj client.Object, kind, tenantID, record string) error {
	name := claimName(tenantID, kind, record)
	c.held.Delete(string(obj.GetUID()) + "/" + name)
	return c.deleteIfHeld(ctx, obj, name)
}

// claimsOf lists the claims labelled with obj's uid: those it holds, found without reading every claim.
func (c *recordClaims) claimsOf(ctx context.Context, obj client.Object) ([]intunev1alpha1.RecordClaim, error) {
	list := &intunev1alpha1.RecordClaimList{}
	if err := c.live.List(ctx, list, client.MatchingLabels{labelClaimant: string(obj.GetUID())}); err != nil {
		return nil, fmt.Errorf("failed to list the claims of %s: %w", obj.GetName(), err)
	}
	return list.Items, nil
}

// heldRecords are the records of kind that obj claims. A claim is taken before the first write to a record,
// so a record whose create took effect but whose answer was lost is among them, though no status names it.
func (c *recordClaims) heldRecords(ctx context.Context, obj client.Object, kind string) ([]string, error) {
	claims, err := c.claimsOf(ctx, obj)
	if err != nil {
		return nil, err
	}
	var records []string
	for _, claim := range claims {
		if claim.Spec.Kind == kind && claim.Spec.Claimant.UID == string(obj.GetUID()) {
			records = append(records, claim.Spec.Record)
		}
	}
	return records, nil
}

// releaseAll lets go of every claim obj holds (its resource is going away).
func (c *recordClaims) releaseAll(ctx context.Context, obj client.Object) error {
	claims, err := c.claimsOf(ctx, obj)
	if err != nil {
		return err
	}
	for _, claim := range claims {
		c.held.Delete(string(obj.GetUID()) + "/" + claim.Name)
		if err := c.deleteIfHeld(ctx, obj, claim.Name); err != nil {
			return err
		}
	}
	return nil
}

// deleteIfHeld deletes a claim only while obj holds it: the uid precondition keeps a claim another resource
// took over meanwhile.
func (c *recordClaims) deleteIfHeld(ctx context.Context, obj client.Object, name string) error {
	claim := &intunev1alpha1.RecordClaim{}
	if err := c.live.Get(ctx, types.NamespacedName{Name: name}, claim); err != nil {
		return client.IgnoreNotFound(err)
	}
	if claim.Spec.Claimant.UID != string(obj.GetUID()) {
		return nil
	}
	err := c.writer.Delete(ctx, claim, client.Preconditions{UID: &claim.UID, ResourceVersion: &claim.ResourceVersion})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to release the claim of record %s: %w", claim.Spec.Record, err)
	}
	return nil
}
