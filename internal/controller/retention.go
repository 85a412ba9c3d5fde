package controller

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

// defaultRenewBefore is spec.renewBefore's default, for objects stored before the API server defaulted it.
const defaultRenewBefore = 720 * time.Hour

// retention is a UserPfxCertificate's spec.retention with its defaults applied.
type retention struct {
	superseded intunev1alpha1.SupersededRetention
	expired    intunev1alpha1.ExpiredRetention
}

// retentionOf resolves spec.retention. Both fields default by purpose: an S/MIME encryption certificate is
// kept, because a user's devices need every earlier one (with its key) to read mail encrypted to it; for
// every other purpose an old or expired certificate serves no one.
func retentionOf(spec *intunev1alpha1.UserPfxCertificateSpec) retention {
	r := retention{superseded: intunev1alpha1.SupersededDelete, expired: intunev1alpha1.ExpiredDelete}
	if spec.IntendedPurpose == "smimeEncryption" {
		r = retention{superseded: intunev1alpha1.SupersededKeep, expired: intunev1alpha1.ExpiredKeep}
	}
	if spec.Retention != nil {
		if spec.Retention.Superseded != "" {
			r.superseded = spec.Retention.Superseded
		}
		if spec.Retention.Expired != "" {
			r.expired = spec.Retention.Expired
		}
	}
	return r
}

func renewBeforeOf(spec *intunev1alpha1.UserPfxCertificateSpec) time.Duration {
	if spec.RenewBefore == nil {
		return defaultRenewBefore
	}
	return spec.RenewBefore.Duration
}

// expired says whether a certificate valid until notAfter has expired at now. notAfter itself is still
// valid, as in RFC 5280 and pfx.CheckValidity.
func expired(notAfter *metav1.Time, now time.Time) bool {
	return notAfter != nil && now.After(notAfter.Time)
}

// supersededGoes says whether retention removes a superseded record from Intune now.
func (r retention) supersededGoes(rec intunev1alpha1.SupersededRecord, now time.Time) bool {
	switch r.superseded {
	case intunev1alpha1.SupersededDelete:
		return true
	case intunev1alpha1.SupersededKeepUntilExpired:
		return expired(rec.ExpirationDateTime, now)
	}
	return false
}

// historyDue says whether a pass has Graph work to do on status.history: a record to remove, or one whose
// expiry is not known yet (moved from retiredIds by an upgrade), to read once.
func (r retention) historyDue(history []intunev1alpha1.SupersededRecord, now time.Time) bool {
	return slices.ContainsFunc(history, func(rec intunev1alpha1.SupersededRecord) bool {
		return rec.ExpirationDateTime == nil || r.supersededGoes(rec, now)
	})
}

// supersede adds the record a rotation replaced to history (once), and takes the new current record out of
// it: a certificate that comes back (an older Secret restored) is current again, not superseded.
func supersede(st *intunev1alpha1.UserPfxCertificateStatus, newID string) {
	if st.ID != "" && !strings.EqualFold(st.ID, newID) && !slices.ContainsFunc(st.History, sameID(st.ID)) {
		st.History = append(st.History, intunev1alpha1.SupersededRecord{ID: st.ID, Thumbprint: st.Thumbprint,
			ExpirationDateTime: st.ExpirationDateTime})
	}
	st.History = slices.DeleteFunc(st.History, sameID(newID))
}

func sameID(id string) func(intunev1alpha1.SupersededRecord) bool {
	return func(rec intunev1alpha1.SupersededRecord) bool { return strings.EqualFold(rec.ID, id) }
}

// adoptRetiredIDs moves the ids an operator before status.history had still to delete into history, once:
// from then on spec.retention decides their fate, as for every superseded record.
func adoptRetiredIDs(st *intunev1alpha1.UserPfxCertificateStatus) {
	for _, id := range st.RetiredIDs {
		if id != "" && !strings.EqualFold(id, st.ID) && !slices.ContainsFunc(st.History, sameID(id)) {
			st.History = append(st.History, intunev1alpha1.SupersededRecord{ID: id})
		}
	}
	st.RetiredIDs = nil
}

// nextWake is how long until time alone changes something for the resource: the Expiring window opens,
// the current certificate expires, or (KeepUntilExpired) a kept record's certificate does. 0 when nothing
// is ahead. The wake-up is a second after the moment, as a certificate is still valid at its notAfter.
func nextWake(st *intunev1alpha1.UserPfxCertificateStatus, renewBefore time.Duration, r retention, now time.Time) time.Duration {
	var moments []time.Time
	if exp := st.ExpirationDateTime; exp != nil {
		moments = append(moments, exp.Add(-renewBefore), exp.Time)
	}
	if r.superseded == intunev1alpha1.SupersededKeepUntilExpired {
		for _, rec := range st.History {
			if rec.ExpirationDateTime != nil {
				moments = append(moments, rec.ExpirationDateTime.Time)
			}
		}
	}
	var wake time.Duration
	for _, m := range moments {
		if now.After(m) {
			continue
		}
		if d := m.Sub(now) + time.Second; wake == 0 || d < wake {
			wake = d
		}
	}
	return wake
}

// expiringCondition is the Expiring condition for the current certificate, or false when none is known.
// source names where the certificate comes from: the operator cannot renew it, so the message says where
// to. The message holds no relative time, so it only changes when the certificate or the spec does.
func expiringCondition(obj *intunev1alpha1.UserPfxCertificate, now time.Time) (metav1.Condition, bool) {
	st := &obj.Status
	if st.ExpirationDateTime == nil {
		return metav1.Condition{}, false
	}
	renewBefore := renewBeforeOf(&obj.Spec)
	notAfter := st.ExpirationDateTime.UTC().Format(time.RFC3339)
	c := metav1.Condition{Type: intunev1alpha1.ConditionExpiring, ObservedGeneration: obj.Generation}
	renew := fmt.Sprintf("the operator cannot renew it: renew it where %s gets its certificate (e.g. cert-manager or your CA) and update the Secret", sourceName(obj.Spec.Source))
	switch {
	case expired(st.ExpirationDateTime, now):
		c.Status, c.Reason = metav1.ConditionTrue, intunev1alpha1.ReasonCertificateExpired
		c.Message = fmt.Sprintf("certificate %s expired at %s; %s", st.Thumbprint, notAfter, renew)
	case !now.Before(st.ExpirationDateTime.Add(-renewBefore)):
		c.Status, c.Reason = metav1.ConditionTrue, intunev1alpha1.ReasonRenewalDue
		c.Message = fmt.Sprintf("certificate %s expires at %s, within spec.renewBefore (%s); %s", st.Thumbprint, notAfter, renewBefore, renew)
	default:
		c.Status, c.Reason = metav1.ConditionFalse, intunev1alpha1.ReasonRenewalNotDue
		c.Message = fmt.Sprintf("certificate %s expires at %s, more than spec.renewBefore (%s) away", st.Thumbprint, notAfter, renewBefore)
	}
	return c, true
}

// setExpiring sets the Expiring condition and reports whether it newly says that this certificate's renewal
// is due: the Warning Event is emitted once per certificate (the message names its thumbprint), not on
// every pass nor after a restart.
func setExpiring(obj *intunev1alpha1.UserPfxCertificate, now time.Time) (metav1.Condition, bool) {
	c, ok := expiringCondition(obj, now)
	if !ok {
		meta.RemoveStatusCondition(&obj.Status.Conditions, intunev1alpha1.ConditionExpiring)
		return c, false
	}
	before := meta.FindStatusCondition(obj.Status.Conditions, intunev1alpha1.ConditionExpiring)
	warned := before != nil && before.Reason == intunev1alpha1.ReasonRenewalDue && strings.Contains(before.Message, obj.Status.Thumbprint)
	meta.SetStatusCondition(&obj.Status.Conditions, c)
	return c, c.Reason == intunev1alpha1.ReasonRenewalDue && !warned
}

// sourceName says where a resource's certificate comes from, for messages.
func sourceName(src intunev1alpha1.CertificateSource) string {
	switch {
	case src.Pfx != nil:
		return fmt.Sprintf("Secret %q", src.Pfx.SecretRef.Name)
	case src.TLS != nil:
		return fmt.Sprintf("Secret %q", src.TLS.SecretRef.Name)
	case src.CertificateRef != nil:
		return fmt.Sprintf("cert-manager Certificate %q", src.CertificateRef.Name)
	}
	return "its source"
}
