//go:build faults

package faults

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/test/graphsim"
	"github.com/certops/intune-cert-operator/test/stack"
)

// resources is everything of the project's kinds in the scenario's cluster.
type resources struct {
	userPfx     []intunev1alpha1.UserPfxCertificate
	deviceState []intunev1alpha1.ManagedDeviceCertificateState
	recryption  []intunev1alpha1.PfxRecryptionRequest
	pfxUser     []intunev1alpha1.PfxUserCertificate
	connections []intunev1alpha1.GraphConnection
	cluster     []intunev1alpha1.ClusterGraphConnection
}

func listResources(ctx context.Context, c client.Client) (*resources, error) {
	var (
		up  intunev1alpha1.UserPfxCertificateList
		ds  intunev1alpha1.ManagedDeviceCertificateStateList
		rr  intunev1alpha1.PfxRecryptionRequestList
		pu  intunev1alpha1.PfxUserCertificateList
		gc  intunev1alpha1.GraphConnectionList
		cgc intunev1alpha1.ClusterGraphConnectionList
	)
	for _, l := range []client.ObjectList{&up, &ds, &rr, &pu, &gc, &cgc} {
		if err := c.List(ctx, l); err != nil {
			return nil, fmt.Errorf("listing %T: %w", l, err)
		}
	}
	return &resources{up.Items, ds.Items, rr.Items, pu.Items, gc.Items, cgc.Items}, nil
}

// notReady names every resource whose Ready condition is not True (with its reason), sorted.
func (r *resources) notReady() []string {
	var out []string
	check := func(kind, name string, conds []metav1.Condition) {
		c := meta.FindStatusCondition(conds, intunev1alpha1.ConditionReady)
		switch {
		case c == nil:
			out = append(out, kind+"/"+name+" (no condition yet)")
		case c.Status != metav1.ConditionTrue:
			out = append(out, fmt.Sprintf("%s/%s (%s)", kind, name, c.Reason))
		}
	}
	for _, o := range r.userPfx {
		check("UserPfxCertificate", o.Name, o.Status.Conditions)
	}
	for _, o := range r.deviceState {
		check("ManagedDeviceCertificateState", o.Name, o.Status.Conditions)
	}
	for _, o := range r.recryption {
		check("PfxRecryptionRequest", o.Name, o.Status.Conditions)
	}
	for _, o := range r.pfxUser {
		check("PfxUserCertificate", o.Name, o.Status.Conditions)
	}
	for _, o := range r.connections {
		check("GraphConnection", o.Name, o.Status.Conditions)
	}
	for _, o := range r.cluster {
		check("ClusterGraphConnection", o.Name, o.Status.Conditions)
	}
	sort.Strings(out)
	return out
}

// count counts the resources the test (or config/samples) created itself: UserPfxCertificates a
// UserPfxCertificateSet generates come and go with their set and are left out (notReady still covers them).
func (r *resources) count() int {
	generated := 0
	for _, o := range r.userPfx {
		if metav1.GetControllerOf(&o) != nil {
			generated++
		}
	}
	return len(r.userPfx) - generated + len(r.deviceState) + len(r.recryption) + len(r.pfxUser) + len(r.connections) + len(r.cluster)
}

// ledger compares what Intune (graphsim) holds with what the resources say they own.
type ledger struct {
	// duplicates are records beyond the first for one resource's certificate or request.
	duplicates []string
	// lost are resources whose record is missing, or whose status id is not the record Intune has.
	lost []string
	// orphans are records no resource owns.
	orphans []string
	// unknownOutcome are PfxRecryptionRequests left CreateOutcomeUnknown although Intune holds their record:
	// the operator's designed answer to a create it cannot know the outcome of (reported, not failed).
	unknownOutcome []string
}

func (l *ledger) failed() bool { return len(l.duplicates)+len(l.lost)+len(l.orphans) > 0 }

// expectation is what one UserPfxCertificate must own in Intune, computed by the test from the
// certificates it issued: the record id {userIdWithoutDashes}-{thumbprint}.
type expectation struct {
	userID, thumbprint string
}

// reconcileLedger checks, kind by kind, that Intune holds exactly one record per resource and nothing else:
//
//   - userPfxCertificates: every resource's status.id is the id the test computes from its user and
//     certificate, graphsim holds that record with that thumbprint and the resource's intendedPurpose, and
//     graphsim holds no other record (a deleted resource's record must be gone);
//   - managedDeviceCertificateStates (server-generated ids): one record per certificate thumbprint, whose
//     id is the resource's status.id;
//   - pfxRecryptionRequests (server-generated ids): one record per (user, device, profile), whose id is the
//     resource's status.id;
//   - pfxUserCertificates: the record (spec.id's, seeded; or status.id's, created) holds the resource's
//     certificate, and graphsim holds no record no resource names (a seeded record nothing names is one too).
func reconcileLedger(res *resources, recs graphsim.AdminTenantRecords, want map[string]expectation) *ledger {
	l := &ledger{}

	owned := map[string]string{}   // record id -> resource
	purpose := map[string]string{} // record id -> the resource's spec.intendedPurpose
	kept := map[string]string{}    // id of an earlier record a rotation kept (status.history) -> its thumbprint
	for _, o := range res.userPfx {
		// spec.retention.superseded keeps earlier records (Keep is the default for smimeEncryption): they are
		// the resource's too, not orphans. One already deleted is no loss: the next pass drops it from history.
		for _, rec := range o.Status.History {
			owned[strings.ToLower(rec.ID)], kept[strings.ToLower(rec.ID)] = o.Name, rec.Thumbprint
		}
		exp, ok := want[o.Name]
		if !ok {
			l.lost = append(l.lost, "UserPfxCertificate/"+o.Name+" (the test has no expectation for it)")
			continue
		}
		id := recordID(exp.userID, exp.thumbprint)
		if !strings.EqualFold(o.Status.ID, id) || !strings.EqualFold(o.Status.Thumbprint, exp.thumbprint) {
			l.lost = append(l.lost, fmt.Sprintf("UserPfxCertificate/%s (status id %q, want %q)", o.Name, o.Status.ID, id))
		}
		owned[id] = o.Name
		purpose[id] = string(o.Spec.IntendedPurpose)
	}
	seen := map[string]bool{}
	for _, r := range recs.UserPfxCertificates {
		id := strings.ToLower(r.ID)
		name, ok := owned[id]
		switch {
		case !ok:
			l.orphans = append(l.orphans, "userPfxCertificate "+r.ID)
		case seen[id]:
			l.duplicates = append(l.duplicates, "userPfxCertificate "+r.ID+" of "+name)
		case kept[id] != "":
			if !strings.EqualFold(r.Thumbprint, kept[id]) {
				l.lost = append(l.lost, fmt.Sprintf("userPfxCertificate %s (kept by %s) holds thumbprint %s", r.ID, name, r.Thumbprint))
			}
		case !strings.EqualFold(r.Thumbprint, want[name].thumbprint):
			l.lost = append(l.lost, fmt.Sprintf("userPfxCertificate %s holds thumbprint %s", r.ID, r.Thumbprint))
		case r.IntendedPurpose != "" && purpose[id] != "" && !strings.EqualFold(r.IntendedPurpose, purpose[id]):
			l.lost = append(l.lost, fmt.Sprintf("userPfxCertificate %s holds intendedPurpose %s, %s wants %s (a lost update)", r.ID, r.IntendedPurpose, name, purpose[id]))
		}
		seen[id] = true
	}
	for id, name := range owned {
		if !seen[id] && kept[id] == "" {
			l.lost = append(l.lost, fmt.Sprintf("UserPfxCertificate/%s: Intune has no record %s", name, id))
		}
	}

	byThumbprint := map[string][]string{} // device certificate thumbprint -> record ids
	for _, r := range recs.ManagedDeviceCertificateStates {
		t := strings.ToLower(r.CertificateThumbprint)
		byThumbprint[t] = append(byThumbprint[t], r.ID)
	}
	for _, o := range res.deviceState {
		var t string
		if o.Status.Certificate != nil {
			t = strings.ToLower(o.Status.Certificate.Thumbprint)
		}
		ids := byThumbprint[t]
		switch {
		case t == "" || len(ids) == 0:
			l.lost = append(l.lost, "ManagedDeviceCertificateState/"+o.Name+": Intune has no record of its certificate")
		case !containsFold(ids, o.Status.ID):
			l.lost = append(l.lost, fmt.Sprintf("ManagedDeviceCertificateState/%s: status id %q, Intune's %q", o.Name, o.Status.ID, ids[0]))
		}
		for _, extra := range ids[min(1, len(ids)):] {
			l.duplicates = append(l.duplicates, "managedDeviceCertificateState "+extra+" of "+o.Name)
		}
		delete(byThumbprint, t)
	}
	for _, ids := range byThumbprint {
		for _, id := range ids {
			l.orphans = append(l.orphans, "managedDeviceCertificateState "+id)
		}
	}

	type request struct{ user, device, profile string }
	requests := map[request][]string{}
	for _, r := range recs.PfxRecryptionRequests {
		k := request{strings.ToLower(r.UserID), strings.ToLower(r.DeviceID), strings.ToLower(r.ProfileID)}
		requests[k] = append(requests[k], r.ID)
	}
	for _, o := range res.recryption {
		k := request{strings.ToLower(o.Spec.UserID), strings.ToLower(o.Spec.DeviceID), strings.ToLower(o.Spec.ProfileID)}
		ids := requests[k]
		ready := meta.FindStatusCondition(o.Status.Conditions, intunev1alpha1.ConditionReady)
		switch {
		case len(ids) > 0 && o.Status.ID == "" && ready != nil && ready.Reason == intunev1alpha1.ReasonCreateOutcomeUnknown:
			l.unknownOutcome = append(l.unknownOutcome, "PfxRecryptionRequest/"+o.Name)
		case !containsFold(ids, o.Status.ID):
			l.lost = append(l.lost, fmt.Sprintf("PfxRecryptionRequest/%s: status id %q, Intune's %v", o.Name, o.Status.ID, ids))
		}
		for _, extra := range ids[min(1, len(ids)):] {
			l.duplicates = append(l.duplicates, "pfxRecryptionRequest "+extra+" of "+o.Name)
		}
		delete(requests, k)
	}
	for _, ids := range requests {
		for _, id := range ids {
			l.orphans = append(l.orphans, "pfxRecryptionRequest "+id)
		}
	}

	pfxUser := map[string]graphsim.AdminPfxUserCertificate{}
	for _, r := range recs.PfxUserCertificates {
		pfxUser[strings.ToLower(r.ID)] = r
	}
	for _, o := range res.pfxUser {
		id := o.Spec.ID // a seeded record the resource keeps equal to it
		if id == "" {
			id = o.Status.ID // a record the resource created (server-assigned id)
		}
		r, ok := pfxUser[strings.ToLower(id)]
		if id == "" || !ok || r.EncryptedPfxBlobLength == 0 || !strings.EqualFold(r.Thumbprint, o.Status.Thumbprint) || o.Status.Thumbprint == "" {
			l.lost = append(l.lost, fmt.Sprintf("PfxUserCertificate/%s: record %q does not hold its certificate", o.Name, id))
		}
		delete(pfxUser, strings.ToLower(id))
	}
	for id := range pfxUser { // a created record no resource knows (a create repeated after a lost answer)
		l.orphans = append(l.orphans, "pfxUserCertificate "+id)
	}
	for _, s := range [][]string{l.duplicates, l.lost, l.orphans, l.unknownOutcome} {
		sort.Strings(s)
	}
	return l
}

// unclaimedRecords checks the claims after crashes, restarts and failovers: every UserPfxCertificate's record
// is claimed by that resource (same uid), whatever the moment a crash cut a pass short.
func unclaimedRecords(res *resources, claims []intunev1alpha1.RecordClaim) []string {
	byRecord := map[string]intunev1alpha1.RecordClaim{}
	for _, c := range claims {
		if c.Spec.Kind == "UserPfxCertificate" {
			byRecord[strings.ToLower(c.Spec.Record)] = c
		}
	}
	var problems []string
	for _, o := range res.userPfx {
		c, ok := byRecord[strings.ToLower(o.Status.ID)]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("UserPfxCertificate/%s: no claim on its record %s", o.Name, o.Status.ID))
		case c.Spec.Claimant.UID != string(o.UID):
			problems = append(problems, fmt.Sprintf("UserPfxCertificate/%s: its record %s is claimed by %s/%s", o.Name, o.Status.ID,
				c.Spec.Claimant.Namespace, c.Spec.Claimant.Name))
		}
	}
	sort.Strings(problems)
	return problems
}

func containsFold(list []string, s string) bool {
	return s != "" && slices.ContainsFunc(list, func(v string) bool { return strings.EqualFold(v, s) })
}

// userPfxExpectations maps every UserPfxCertificate the scenario creates to its user and certificate.
func userPfxExpectations(fx *fixtures, m *stack.SampleMaterial) map[string]expectation {
	want := map[string]expectation{
		"alice-smime": {stack.AliceID, m.Alice.Thumbprint()},
		"bob-wifi":    {stack.BobID, m.Bob.Thumbprint()},
	}
	for i, c := range fx.certs {
		want[fmt.Sprintf("cert-%05d", i)] = expectation{c.user.ID, c.thumbprint}
	}
	return want
}
