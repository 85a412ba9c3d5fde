package controller

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

const smimeLabel = "intune.certops.dev/import"

func (h *harness) set(name string, kind intunev1alpha1.SetSourceKind) *intunev1alpha1.UserPfxCertificateSet {
	return &intunev1alpha1.UserPfxCertificateSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: intunev1alpha1.UserPfxCertificateSetSpec{
			Selector:   metav1.LabelSelector{MatchLabels: map[string]string{smimeLabel: "smime"}},
			SourceKind: kind,
			Template: intunev1alpha1.UserPfxCertificateTemplate{
				ConnectionRef:   &intunev1alpha1.ConnectionReference{Kind: "ClusterGraphConnection", Name: h.connection},
				IntendedPurpose: "smimeEncryption",
			},
		},
	}
}

func setReadyIs(h *harness, set *intunev1alpha1.UserPfxCertificateSet, status metav1.ConditionStatus, reason string) metav1.Condition {
	h.t.Helper()
	return h.waitReady(set, func() []metav1.Condition { return set.Status.Conditions }, status, reason)
}

// waitCounts waits until the set reports these counts.
func (h *harness) waitCounts(set *intunev1alpha1.UserPfxCertificateSet, selected, ready, failed int32) {
	h.t.Helper()
	h.eventually(fmt.Sprintf("%s counts %d/%d/%d", set.Name, selected, ready, failed), func() error {
		h.get(set)
		if st := set.Status; st.Selected != selected || st.Ready != ready || st.Failed != failed {
			return fmt.Errorf("selected/ready/failed = %d/%d/%d", st.Selected, st.Ready, st.Failed)
		}
		return nil
	})
}

func (h *harness) labelSecret(name string, labels, annotations map[string]string) {
	h.t.Helper()
	s := &corev1.Secret{}
	if err := k8sClient.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: name}, s); err != nil {
		h.t.Fatal(err)
	}
	base := s.DeepCopy()
	s.Labels, s.Annotations = labels, annotations
	if err := k8sClient.Patch(h.ctx, s, client.MergeFrom(base)); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) child(set *intunev1alpha1.UserPfxCertificateSet, source string) *intunev1alpha1.UserPfxCertificate {
	return &intunev1alpha1.UserPfxCertificate{ObjectMeta: metav1.ObjectMeta{Name: childName(set.Name, source), Namespace: h.ns}}
}

// A set of Secrets: one child per selected Secret (tls and pfx alike), owned by the set; a template change
// that Graph does not see rolls to every child without a Graph write; a Secret leaving the selection takes
// its child, and with it (deletionPolicy Delete) its record.
func TestSetOfSecretsImportsEachUser(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice, bob := h.newUser("alice@contoso.com"), h.newUser("bob@contoso.com")
	h.tlsSecret("alice-tls", alice)
	h.pfxSecret(h.ns, "bob-pfx", bob, "Pa55-word!")
	h.pfxSecret(h.ns, "not-selected", h.newUser("alice@contoso.com"), "x")
	selected := map[string]string{smimeLabel: "smime"}
	h.labelSecret("alice-tls", selected, nil)
	h.labelSecret("bob-pfx", selected, nil)

	set := h.set("staff", intunev1alpha1.SetSourceSecret)
	if err := k8sClient.Create(h.ctx, set); err != nil {
		t.Fatal(err)
	}
	setReadyIs(h, set, metav1.ConditionTrue, intunev1alpha1.ReasonChildrenReady)
	h.waitCounts(set, 2, 2, 0)

	aliceChild, bobChild := h.child(set, "alice-tls"), h.child(set, "bob-pfx")
	h.get(aliceChild)
	h.get(bobChild)
	if owner := metav1.GetControllerOf(aliceChild); owner == nil || owner.UID != set.UID || owner.Kind != "UserPfxCertificateSet" {
		t.Errorf("child's controller = %+v, want the set", owner)
	}
	if aliceChild.Spec.Source.TLS == nil || bobChild.Spec.Source.Pfx == nil {
		t.Errorf("sources: alice %+v, bob %+v; want tls and pfx", aliceChild.Spec.Source, bobChild.Spec.Source)
	}
	if aliceChild.Status.UserPrincipalName != "alice@contoso.com" || bobChild.Status.UserPrincipalName != "bob@contoso.com" {
		t.Errorf("users: %s, %s", aliceChild.Status.UserPrincipalName, bobChild.Status.UserPrincipalName)
	}
	if err := k8sClient.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: childName(set.Name, "not-selected")}, &intunev1alpha1.UserPfxCertificate{}); !apierrors.IsNotFound(err) {
		t.Errorf("a child for an unselected Secret: %v", err)
	}

	// A template change nothing in Intune depends on: every child gets it, Graph gets no write.
	mark := h.journalMark()
	h.update(set, func() {
		set.Spec.Template.RenewBefore = &metav1.Duration{Duration: 100 * time.Hour}
		set.Spec.Template.Retention = &intunev1alpha1.Retention{Superseded: intunev1alpha1.SupersededDelete}
	})
	for _, child := range []*intunev1alpha1.UserPfxCertificate{aliceChild, bobChild} {
		h.eventually("template rolled to "+child.Name, func() error {
			h.get(child)
			if child.Spec.RenewBefore == nil || child.Spec.RenewBefore.Duration != 100*time.Hour || child.Spec.Retention == nil {
				return fmt.Errorf("spec %+v", child.Spec)
			}
			if child.Status.ObservedGeneration != child.Generation {
				return fmt.Errorf("generation %d not observed yet", child.Generation)
			}
			return nil
		})
	}
	setReadyIs(h, set, metav1.ConditionTrue, intunev1alpha1.ReasonChildrenReady)
	if n := h.graphWrites(mark); n != 0 {
		t.Fatalf("a template change Graph does not see made %d writes: %q", n, h.graphCalls(mark))
	}

	// Bob's Secret leaves the selection: his child goes, and his record with it.
	bobRecord := bobChild.Status.ID
	h.labelSecret("bob-pfx", map[string]string{smimeLabel: "no"}, nil)
	h.eventually("bob's child removed", func() error {
		err := k8sClient.Get(h.ctx, client.ObjectKeyFromObject(bobChild), &intunev1alpha1.UserPfxCertificate{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
	if _, ok := h.records(h.tenantID)[bobRecord]; ok {
		t.Error("bob's record is still in Intune; deletionPolicy Delete removes it with the child")
	}
	h.waitCounts(set, 1, 1, 0)
	h.waitEvent(set, "UserPfxCertificateSet", "Synced")
}

// A child whose import is refused counts as failed and is named in the set's message; the connection's
// access rules apply to every child (here: a user annotation naming someone other than the certificate's).
func TestSetReportsFailingChildren(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.tlsSecret("alice-tls", h.newUser("alice@contoso.com"))
	h.tlsSecret("mallory-tls", h.newUser("alice@contoso.com"))
	h.tlsSecret("bad-annotation-tls", h.newUser("bob@contoso.com"))
	selected := map[string]string{smimeLabel: "smime"}
	h.labelSecret("alice-tls", selected, nil)
	h.labelSecret("mallory-tls", selected, map[string]string{intunev1alpha1.AnnotationUserPrincipalName: "bob@contoso.com"})
	h.labelSecret("bad-annotation-tls", selected, map[string]string{intunev1alpha1.AnnotationUserPrincipalName: "not a upn"})

	set := h.set("staff", intunev1alpha1.SetSourceSecret)
	if err := k8sClient.Create(h.ctx, set); err != nil {
		t.Fatal(err)
	}
	setReadyIs(h, set, metav1.ConditionFalse, intunev1alpha1.ReasonChildrenFailed)
	h.waitCounts(set, 3, 1, 2)
	cond := setReadyIs(h, set, metav1.ConditionFalse, intunev1alpha1.ReasonChildrenFailed)
	for _, want := range []string{childName(set.Name, "mallory-tls") + " (AccessDenied)", childName(set.Name, "bad-annotation-tls"), "not a user principal name"} {
		if !strings.Contains(cond.Message, want) {
			t.Errorf("message %q does not name %q", cond.Message, want)
		}
	}
	mallory := h.child(set, "mallory-tls")
	h.get(mallory)
	if mallory.Spec.UserPrincipalName != "bob@contoso.com" {
		t.Errorf("the annotation's user was not given to the child: %q", mallory.Spec.UserPrincipalName)
	}
	h.waitEvent(set, "UserPfxCertificateSet", "Failed")
}

// A set of cert-manager Certificates: a Certificate not issued yet keeps its child (and the set) waiting,
// not failed; its issuance makes the set Ready.
func TestSetOfCertificates(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	selected := map[string]string{smimeLabel: "smime"}
	aliceCert := h.certificate("alice", "alice-tls", selected)
	alice := h.newUser("alice@contoso.com")
	h.issueSecret(aliceCert, alice)
	h.markIssued(aliceCert, alice, 1)
	bobCert := h.certificate("bob", "bob-tls", selected)

	set := h.set("staff", intunev1alpha1.SetSourceCertificate)
	if err := k8sClient.Create(h.ctx, set); err != nil {
		t.Fatal(err)
	}
	h.waitCounts(set, 2, 1, 0)
	cond := setReadyIs(h, set, metav1.ConditionFalse, intunev1alpha1.ReasonChildrenNotReady)
	if !strings.Contains(cond.Message, childName(set.Name, "bob")+" (CertificateNotIssued)") {
		t.Errorf("message %q does not name bob's waiting child", cond.Message)
	}
	bobChild := h.child(set, "bob")
	h.get(bobChild)
	if ref := bobChild.Spec.Source.CertificateRef; ref == nil || ref.Name != "bob" {
		t.Errorf("child source = %+v, want certificateRef bob", bobChild.Spec.Source)
	}

	bob := h.newUser("bob@contoso.com")
	h.issueSecret(bobCert, bob)
	h.markIssued(bobCert, bob, 1)
	setReadyIs(h, set, metav1.ConditionTrue, intunev1alpha1.ReasonChildrenReady)
	h.waitCounts(set, 2, 2, 0)
}

func TestChildNamesAreDeterministicAndValid(t *testing.T) {
	long := strings.Repeat("a", 200)
	for _, c := range []struct{ set, source string }{{"staff", "alice-tls"}, {long, long}, {long, long + "b"}, {"s", strings.Repeat("x.", 130)}} {
		name := childName(c.set, c.source)
		if name != childName(c.set, c.source) {
			t.Fatal("not deterministic")
		}
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Errorf("%q: %v", name, errs)
		}
		if errs := validation.IsValidLabelValue(setLabel(c.set)); len(errs) > 0 {
			t.Errorf("label %q: %v", setLabel(c.set), errs)
		}
	}
	if childName(long, long) == childName(long, long+"b") {
		t.Error("two sources share a child name")
	}
	if got := childName("staff", "alice-tls"); got != "staff-alice-tls" {
		t.Errorf("short names are kept: %s", got)
	}
}
