package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

// accessConnection creates a ClusterGraphConnection to tenant A with the given access rules.
func (h *harness) accessConnection(access *intunev1alpha1.ConnectionAccess) *intunev1alpha1.ClusterGraphConnection {
	h.t.Helper()
	spec := h.clusterConnectionSpec()
	spec.Access = access
	conn := &intunev1alpha1.ClusterGraphConnection{ObjectMeta: metav1.ObjectMeta{GenerateName: "access-"}, Spec: spec}
	if err := k8sClient.Create(h.ctx, conn); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), conn) })
	return conn
}

// accessCase is a UserPfxCertificate of user (a certificate issued to certUser) through a connection with
// access, and what the policy must decide.
type accessCase struct {
	name      string
	access    *intunev1alpha1.ConnectionAccess
	namespace string // default: the harness namespace
	user      string // spec.userPrincipalName ("" = from the certificate)
	certUser  string
	purpose   intunev1alpha1.IntendedPurpose
	// denied is a fragment of the AccessDenied message; "" = the import is allowed.
	denied string
}

func TestAccessPolicyDecidesBeforeAnyGraphCall(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice := "alice@contoso.com"
	other := h.newUser("someone@contoso.com") // trusted as its own CA by no bundle but its own
	h.apply(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other-ca", Namespace: h.operatorNS},
		Data: map[string]string{"ca.crt": string(other.CertPEM())}})
	openTo := func(mutate func(*intunev1alpha1.ConnectionAccess)) *intunev1alpha1.ConnectionAccess {
		a := &intunev1alpha1.ConnectionAccess{Namespaces: []string{h.ns, h.ns2}}
		if mutate != nil {
			mutate(a)
		}
		return a
	}
	no := false
	cases := []accessCase{
		{name: "no-access", access: nil, certUser: alice, denied: "has no spec.access, so only the operator's namespace"},
		{name: "second-namespace-by-default", access: nil, namespace: h.ns2, certUser: alice, denied: "spec.access.namespaces"},
		{name: "listed-namespace", access: openTo(nil), certUser: alice},
		{name: "unlisted-namespace", access: &intunev1alpha1.ConnectionAccess{Namespaces: []string{h.ns2}}, certUser: alice,
			denied: "is neither in spec.access.namespaces nor selected by spec.access.namespaceSelector"},
		{name: "selected-namespace", access: &intunev1alpha1.ConnectionAccess{NamespaceSelector: &metav1.LabelSelector{
			MatchLabels: map[string]string{"kubernetes.io/metadata.name": h.ns}}}, certUser: alice},
		{name: "kind-not-listed", access: openTo(func(a *intunev1alpha1.ConnectionAccess) {
			a.Kinds = []intunev1alpha1.AccessKind{"ManagedDeviceCertificateState"}
		}), certUser: alice, denied: "kind UserPfxCertificate is not in spec.access.kinds"},
		{name: "purpose-listed", access: openTo(func(a *intunev1alpha1.ConnectionAccess) {
			a.IntendedPurposes = []intunev1alpha1.IntendedPurpose{"smimeSigning", "smimeEncryption"}
		}), certUser: alice},
		{name: "purpose-not-listed", access: openTo(func(a *intunev1alpha1.ConnectionAccess) {
			a.IntendedPurposes = []intunev1alpha1.IntendedPurpose{"wifi"}
		}), certUser: alice, denied: "intended purpose smimeEncryption is not in spec.access.intendedPurposes"},
		{name: "domain-listed", access: openTo(func(a *intunev1alpha1.ConnectionAccess) {
			a.UserPrincipalNameDomains = []string{"fabrikam.com", "CONTOSO.com"}
		}), certUser: alice},
		{name: "domain-not-listed", access: openTo(func(a *intunev1alpha1.ConnectionAccess) {
			a.UserPrincipalNameDomains = []string{"fabrikam.com"}
		}), certUser: alice, denied: `user "alice@contoso.com" is not in a domain of spec.access.userPrincipalNameDomains`},
		{name: "someone-elses-certificate", access: openTo(nil), user: alice, certUser: "bob@contoso.com",
			denied: `the record is for "alice@contoso.com" but the certificate carries the names bob@contoso.com (spec.access.requireCertificateMatch)`},
		{name: "match-not-required", access: openTo(func(a *intunev1alpha1.ConnectionAccess) { a.RequireCertificateMatch = &no }),
			user: alice, certUser: "bob@contoso.com"},
		{name: "untrusted-issuer", access: openTo(func(a *intunev1alpha1.ConnectionAccess) {
			a.TrustedIssuers = &intunev1alpha1.TrustedIssuers{CABundleRef: intunev1alpha1.CABundleReference{Kind: "ConfigMap", Name: "other-ca", Key: "ca.crt"}}
		}), certUser: alice, denied: "does not chain to a CA of spec.access.trustedIssuers"},
		{name: "missing-bundle", access: openTo(func(a *intunev1alpha1.ConnectionAccess) {
			a.TrustedIssuers = &intunev1alpha1.TrustedIssuers{CABundleRef: intunev1alpha1.CABundleReference{Kind: "ConfigMap", Name: "no-such-ca", Key: "ca.crt"}}
		}), certUser: alice, denied: `ConfigMap "no-such-ca" key "ca.crt"`},
	}
	// The refused first: until the allowed ones are created, Graph must see nothing at all.
	slices.SortStableFunc(cases, func(a, b accessCase) int { return strings.Compare(b.denied, a.denied) })
	var allowed []*intunev1alpha1.UserPfxCertificate
	mark := h.journalMark()
	checked := false
	for _, tc := range cases {
		if tc.denied == "" && !checked {
			if calls := h.graphCalls(mark); len(calls) > 0 {
				t.Fatalf("refused resources reached Graph: %v", calls)
			}
			checked = true
		}
		conn := h.accessConnection(tc.access)
		ns := tc.namespace
		if ns == "" {
			ns = h.ns
		}
		cert := h.newUser(tc.certUser)
		h.pfxSecret(ns, tc.name, cert, "pw")
		obj := h.userPfx(tc.name, tc.name)
		obj.Namespace = ns
		obj.Spec.UserPrincipalName = tc.user
		obj.Spec.ConnectionRef.Name = conn.Name
		if tc.purpose != "" {
			obj.Spec.IntendedPurpose = tc.purpose
		}
		if err := k8sClient.Create(h.ctx, obj); err != nil {
			t.Fatal(err)
		}
		if tc.denied == "" {
			allowed = append(allowed, obj)
			continue
		}
		c := upfxReady(h, obj, metav1.ConditionFalse, intunev1alpha1.ReasonAccessDenied)
		if !strings.Contains(c.Message, tc.denied) || !strings.Contains(c.Message, conn.Name) {
			t.Errorf("%s: message %q does not say %q of ClusterGraphConnection %s", tc.name, c.Message, tc.denied, conn.Name)
		}
		h.waitEvent(obj, kindUserPfxCertificate, "Failed")
	}
	// The trusted issuer: the certificate's own CA (it is self-signed) in the bundle.
	trusted := h.newUser(alice)
	h.apply(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "alice-ca", Namespace: h.operatorNS},
		Data: map[string]string{"ca.crt": string(trusted.CertPEM())}})
	conn := h.accessConnection(openTo(func(a *intunev1alpha1.ConnectionAccess) {
		a.TrustedIssuers = &intunev1alpha1.TrustedIssuers{CABundleRef: intunev1alpha1.CABundleReference{Kind: "ConfigMap", Name: "alice-ca", Key: "ca.crt"}}
	}))
	h.pfxSecret(h.ns, "trusted-issuer", trusted, "pw")
	obj := h.userPfx("trusted-issuer", "trusted-issuer")
	obj.Spec.ConnectionRef.Name = conn.Name
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	allowed = append(allowed, obj)
	for _, obj := range allowed {
		upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
	}
}

// A refusal lifts as soon as the rule that refused changes: the connection's access, or the labels of the
// namespace a selector reads. Nothing polls: the refused resource waits 30 minutes before it looks again by
// itself, so only the watches can make it Ready within the test.
func TestAccessChangesReevaluateTheResources(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	conn := h.accessConnection(&intunev1alpha1.ConnectionAccess{NamespaceSelector: &metav1.LabelSelector{
		MatchLabels: map[string]string{"team": "pki"}}})
	alice := h.newUser("alice@contoso.com")
	h.pfxSecret(h.ns, "alice-pfx", alice, "pw")
	obj := h.userPfx("alice", "alice-pfx")
	obj.Spec.ConnectionRef.Name = conn.Name
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	upfxReady(h, obj, metav1.ConditionFalse, intunev1alpha1.ReasonAccessDenied)

	// The administrator labels the namespace: selected now.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: h.ns}}
	h.update(ns, func() {
		ns.Labels["team"] = "pki"
	})
	upfxReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonImported)

	// The administrator narrows the connection to another domain: refused again, and nothing written.
	mark := h.journalMark()
	h.update(conn, func() {
		conn.Spec.Access.UserPrincipalNameDomains = []string{"fabrikam.com"}
	})
	upfxReady(h, obj, metav1.ConditionFalse, intunev1alpha1.ReasonAccessDenied)
	if n := h.graphWrites(mark); n != 0 {
		t.Fatalf("a refused resource wrote to Graph: %v", h.graphCalls(mark))
	}
}

// access.adoption: Deny refuses a record that exists in Intune without a claim (here: one a resource with
// deletionPolicy Orphan left behind); Allow adopts it.
func TestAdoptionDenyRefusesRecordsWithoutAClaim(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice := h.newUser("alice@contoso.com")
	h.pfxSecret(h.ns, "alice-pfx", alice, "pw")
	first := h.userPfx("first", "alice-pfx")
	first.Spec.DeletionPolicy = intunev1alpha1.DeletionPolicyOrphan
	if err := k8sClient.Create(h.ctx, first); err != nil {
		t.Fatal(err)
	}
	upfxReady(h, first, metav1.ConditionTrue, intunev1alpha1.ReasonImported)
	h.deleteAndWait(first)
	id := h.recordID("alice@contoso.com", alice)
	if _, ok := h.records(h.tenantID)[id]; !ok {
		t.Fatalf("the orphaned record %s is gone", id)
	}

	deny := h.accessConnection(&intunev1alpha1.ConnectionAccess{Namespaces: []string{h.ns}, Adoption: intunev1alpha1.AdoptionDeny})
	mark := h.journalMark()
	second := h.userPfx("second", "alice-pfx")
	second.Spec.ConnectionRef.Name = deny.Name
	if err := k8sClient.Create(h.ctx, second); err != nil {
		t.Fatal(err)
	}
	c := upfxReady(h, second, metav1.ConditionFalse, intunev1alpha1.ReasonAccessDenied)
	if !strings.Contains(c.Message, "spec.access.adoption is Deny") {
		t.Errorf("message %q does not name spec.access.adoption", c.Message)
	}
	if n := h.graphWrites(mark); n != 0 {
		t.Fatalf("a refused adoption wrote to Graph: %v", h.graphCalls(mark))
	}
	// A pass claims before it learns the record exists, then lets go: another pass (woken by the new
	// connection's status) may hold a claim for that moment, none stays.
	h.eventually("no claim held by the refused resource", func() error {
		if claims := claimsOf(t, second); len(claims) != 0 {
			return fmt.Errorf("a refused adoption keeps its claim: %v", claims)
		}
		return nil
	})

	h.update(deny, func() {
		deny.Spec.Access.Adoption = intunev1alpha1.AdoptionAllow
	})
	upfxReady(h, second, metav1.ConditionTrue, intunev1alpha1.ReasonAdopted)
}

func claimsOf(t *testing.T, obj interface{ GetUID() types.UID }) []string {
	t.Helper()
	list := &intunev1alpha1.RecordClaimList{}
	if err := k8sClient.List(context.Background(), list, client.MatchingLabels{labelClaimant: string(obj.GetUID())}); err != nil {
		t.Fatal(err)
	}
	var records []string
	for _, c := range list.Items {
		records = append(records, c.Spec.Record)
	}
	return records
}

// Under adoption: Deny, a claim is proof that this operator created the record only if the pass that made it
// saw the record was absent. A pass whose look at Intune fails lets its fresh claim go, so the next pass,
// finding a record made elsewhere, still refuses it.
func TestAdoptionDenyHoldsWhenTheFirstLookFails(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	alice := h.newUser("alice@contoso.com")
	h.pfxSecret(h.ns, "alice-pfx", alice, "pw")
	h.importOutsideTheOperator(alice, "pw")
	deny := h.accessConnection(&intunev1alpha1.ConnectionAccess{Namespaces: []string{h.ns}, Adoption: intunev1alpha1.AdoptionDeny})
	h.waitReady(deny, func() []metav1.Condition { return deny.Status.Conditions }, metav1.ConditionTrue, intunev1alpha1.ReasonConnected)

	// The user lookup passes; the record's GET fails on every attempt of the first pass.
	h.sim.SetFaults(graphsim.Faults{Script: []int{0, 500, 500, 500, 500, 500}})
	obj := h.userPfx("alice", "alice-pfx")
	obj.Spec.ConnectionRef.Name = deny.Name
	mark := h.journalMark()
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	c := upfxReady(h, obj, metav1.ConditionFalse, intunev1alpha1.ReasonAccessDenied)
	if !strings.Contains(c.Message, "spec.access.adoption is Deny") {
		t.Fatalf("message %q", c.Message)
	}
	if !slices.Contains(h.graphCalls(mark), "GET /deviceManagement/userPfxCertificates/"+h.recordID("alice@contoso.com", alice)+" 500") {
		t.Fatalf("the first look did not fail as scripted: %v", h.graphCalls(mark))
	}
	if n := h.graphWrites(mark); n != 0 {
		t.Fatalf("writes: %v", h.graphCalls(mark))
	}
}
