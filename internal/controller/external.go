package controller

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/graph"
)

// external is one Graph resource kind as a reconcile pass uses it, bound to the record one resource wants
// (in crossplane-runtime's shape). Every implementation keeps these contracts, which the flows rely on:
//
//   - Get returns (nil, nil) when Graph has no record of that id (404): absence is not an error.
//   - Find returns the record Graph's list shows for the wanted certificate, (nil, nil) when it shows none.
//     Lists lag behind writes: "none" may mean "not yet".
//   - Create makes the record and returns it as Graph answered. Graph may answer without the id it assigned:
//     the result's id is then "", and Find shows the record later. After an error for which
//     graph.WriteMayHaveHappened holds, the record may exist: the outcome is unknown.
//   - Update writes the wanted fields onto record id and returns the record as Graph now holds it (read back
//     when Graph answered 204 without a body).
//   - Delete removes record id; a record already gone counts as deleted (nil).
type external[R any] interface {
	Get(ctx context.Context, id string) (*R, error)
	Find(ctx context.Context) (*R, error)
	Create(ctx context.Context) (*R, error)
	Update(ctx context.Context, id string) (*R, error)
	Delete(ctx context.Context, id string) error
}

// What a pass did, as its Event reason (readyReasonFor turns it into the Ready reason).
const (
	actionCreated   = "Created"
	actionRecreated = "Recreated"
	actionAdopted   = "Adopted"
	actionUpdated   = "Updated"
)

// assignedRecord is the flow of one pass over a record whose id Graph assigns (a managedDeviceCertificateState,
// a pfxUserCertificate the resource creates): the record status names is read; when Graph has none, the list
// is searched for one of the same certificate (made by a create whose answer was lost, or by someone else),
// and only when the list shows none either, and no earlier create may still show up in it, is one created.
type assignedRecord[R any] struct {
	ext external[R]
	// id is the record's id as status holds it; "" before the first create.
	id string
	// mark is status.createStartedTime: set (and stored) before a create, cleared once its record is known.
	mark **metav1.Time
	idOf func(*R) string
	// matches says whether a record holds what the resource wants (fields Graph reads back).
	matches func(*R) bool
	// rewriteFound writes a record found in the list whatever matches says: its secret parts (a PFX blob)
	// cannot be read back, so only a write makes them this resource's.
	rewriteFound bool
	// unseen wraps the failure of a read made before the pass knew whether the record exists.
	unseen func(context.Context, error) error
	// adopt is asked before a found record this resource did not create is taken over: nil to take it.
	adopt func(context.Context, *R) error
	// beginCreate stores the mark before the POST; settling says whether an earlier create may still show up.
	beginCreate func(context.Context) error
	settling    func(mark *metav1.Time) error
}

// sync makes Graph hold the wanted record and says what it did (an action, "" when nothing was written).
func (a *assignedRecord[R]) sync(ctx context.Context) (*R, string, error) {
	var record *R
	if a.id != "" {
		got, err := a.ext.Get(ctx, a.id)
		if err != nil {
			return nil, "", a.unseen(ctx, err)
		}
		record = got // nil: deleted in Intune (or its profile is gone); the list tells
	}
	action := ""
	if record == nil {
		found, err := a.ext.Find(ctx)
		if err != nil {
			return nil, "", a.unseen(ctx, err)
		}
		switch {
		case found == nil:
			return a.create(ctx)
		case *a.mark != nil:
			action = actionCreated // this resource's own create, whose answer was lost or carried no id
		default:
			if err := a.adopt(ctx, found); err != nil {
				return nil, "", err
			}
			action = actionAdopted
		}
		*a.mark = nil
		record = found
	}
	if a.matches(record) && (!a.rewriteFound || action == "") {
		return record, action, nil
	}
	updated, err := a.ext.Update(ctx, a.idOf(record))
	if err != nil {
		return nil, "", err
	}
	if action == "" {
		action = actionUpdated
	}
	return updated, action, nil
}

// create posts the record, unless an earlier create may have made one the list does not show yet. The
// create is marked first, so a lost answer is known to the next pass.
func (a *assignedRecord[R]) create(ctx context.Context) (*R, string, error) {
	if err := a.settling(*a.mark); err != nil {
		return nil, "", err
	}
	if err := a.beginCreate(ctx); err != nil {
		return nil, "", err
	}
	created, err := a.ext.Create(ctx)
	if err != nil {
		if !graph.WriteMayHaveHappened(err) {
			*a.mark = nil // refused: nothing was made
		}
		return nil, "", err
	}
	if a.idOf(created) == "" {
		// Made, but unnamed: the mark stays, and a later pass finds the record by listing.
		return nil, "", &conditionError{reason: intunev1alpha1.ReasonProgressing, retryAfter: 5 * time.Second,
			message: "Intune created the record but its answer carried no id: looking for it in the list"}
	}
	*a.mark = nil
	if a.id != "" {
		return created, actionRecreated, nil // deleted in Intune meanwhile
	}
	return created, actionCreated, nil
}
