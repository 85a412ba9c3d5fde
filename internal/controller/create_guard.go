package controller

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

// Graph assigns the ids of managedDeviceCertificateStates, pfxUserCertificates and pfxRecryptionRequests, and
// lists a new record only after a delay. A create whose answer was lost, or came without an id, may have made
// a record that the next list does not show yet, and posting again would make a second one. So a create of
// such a kind is marked in status before the POST; while the mark is younger than CreateSettle, a pass that
// does not find the record in a list waits and looks again instead of creating.

// DefaultCreateSettle is how long the operator keeps looking for a record whose create may have happened
// before it concludes that none was made. Intune lists new records within seconds in practice; the margin is
// wide because a duplicate is worse than a late retry.
const DefaultCreateSettle = 2 * time.Minute

// beginCreate stores the create mark before a POST, so a crash or a lost answer during the call is known.
func (r *kindReconciler[T]) beginCreate(ctx context.Context, obj T, mark **metav1.Time) error {
	*mark = &metav1.Time{Time: r.Clock.Now()}
	return r.persistStatus(ctx, obj)
}

// createSettling returns the failure that makes a pass wait while a create marked at mark may have made a
// record no list shows yet, and nil when there is no mark or it has settled (then nothing was created).
func (r *kindReconciler[T]) createSettling(mark *metav1.Time, now time.Time) error {
	if mark == nil {
		return nil
	}
	settled := mark.Add(r.CreateSettle)
	if !now.Before(settled) {
		return nil
	}
	return &conditionError{reason: intunev1alpha1.ReasonProgressing, retryAfter: min(settled.Sub(now), 15*time.Second),
		message: fmt.Sprintf("a create started at %s may have made the record, and Intune lists new records only after "+
			"a delay: looking for it until %s before creating it again",
			mark.UTC().Format(time.RFC3339), settled.UTC().Format(time.RFC3339))}
}

// removeMarked deletes, when a resource goes, its record and the one its marked create may have made without
// the id reaching status (the answer was lost, or carried none): the list shows that record, or, while the
// create may still show up in it, the deletion waits (a non-empty pending message). Without the search, the
// record of such a create would stay in Intune with no resource to manage it.
func removeMarked[R any](ctx context.Context, ext external[R], idOf func(*R) string, id string, mark *metav1.Time, settle time.Duration, now time.Time) (pending string, err error) {
	if id != "" {
		if err := ext.Delete(ctx, id); err != nil {
			return "", err
		}
	}
	if mark == nil {
		return "", nil
	}
	found, err := ext.Find(ctx)
	if err != nil {
		return "", err
	}
	if found != nil && idOf(found) != id { // the record named by id may still be listed: it was just deleted
		return "", ext.Delete(ctx, idOf(found))
	}
	if settled := mark.Add(settle); now.Before(settled) {
		return fmt.Sprintf("a create started at %s may have made a record that Intune does not list yet: looking for it "+
			"until %s before letting the resource go", mark.UTC().Format(time.RFC3339), settled.UTC().Format(time.RFC3339)), nil
	}
	return "", nil
}

// markedRecords names, for the deletion Event, the records removeMarked deletes.
func markedRecords(id string, mark *metav1.Time) string {
	switch {
	case mark == nil:
		return id
	case id == "":
		return fmt.Sprintf("made by the create started at %s, if any", mark.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("%s and the one made by the create started at %s, if any", id, mark.UTC().Format(time.RFC3339))
}
