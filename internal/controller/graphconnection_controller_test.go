package controller

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

// A GraphConnection signs in as its own namespace's ServiceAccount: the operator requests the token through
// the TokenRequest API and graphsim, as Entra ID, verifies it against the cluster's issuer and maps its
// subject to the app. A ServiceAccount of another name is no way in.
func TestGraphConnectionSignsInAsItsServiceAccount(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.apply(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: harnessServiceAccount, Namespace: h.ns}})
	h.apply(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "someone-else", Namespace: h.ns}})
	h.apply(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "connector-key", Namespace: h.ns},
		Data: map[string][]byte{"public.pem": []byte("unused by the check")}})

	federated := func(name, serviceAccount string) *intunev1alpha1.GraphConnection {
		spec := h.connectionSpec(h.tenantID, "", "connector-key")
		spec.Credential = intunev1alpha1.GraphCredential{Type: intunev1alpha1.CredentialWorkloadIdentity, ClientID: h.clientID,
			ServiceAccountName: serviceAccount}
		conn := &intunev1alpha1.GraphConnection{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns}, Spec: spec}
		h.apply(conn)
		return conn
	}
	mark := h.journalMark()
	conn := federated("own-identity", harnessServiceAccount)
	h.waitReady(conn, func() []metav1.Condition { return conn.Status.Conditions }, metav1.ConditionTrue, intunev1alpha1.ReasonConnected)
	subject := "system:serviceaccount:" + h.ns + ":" + harnessServiceAccount
	signedIn := false
	for _, e := range h.sim.Journal()[mark:] {
		signedIn = signedIn || (e.ClientAssertion && e.Status == 200 && e.AssertionIssuer == serviceAccountIssuer && e.AssertionSubject == subject)
	}
	if !signedIn {
		t.Fatalf("graphsim saw no sign-in with a token of %s issued by %s", subject, serviceAccountIssuer)
	}

	other := federated("not-federated", "someone-else")
	c := h.waitReady(other, func() []metav1.Condition { return other.Status.Conditions }, metav1.ConditionFalse, intunev1alpha1.ReasonCredentialInvalid)
	if !strings.Contains(c.Message, "AADSTS70021") {
		t.Errorf("message %q does not carry Entra ID's reason", c.Message)
	}
	missing := federated("no-such-account", "does-not-exist")
	c = h.waitReady(missing, func() []metav1.Condition { return missing.Status.Conditions }, metav1.ConditionFalse, intunev1alpha1.ReasonCredentialInvalid)
	if !strings.Contains(c.Message, `ServiceAccount "does-not-exist" does not exist`) {
		t.Errorf("message %q does not name the missing ServiceAccount", c.Message)
	}
}

// A GraphConnection that would borrow the operator's identity, or send a token elsewhere, is refused before
// anything reaches any host: graphsim's journal stays empty.
func TestGraphConnectionNeverBorrowsTheOperatorsIdentity(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	cases := []struct {
		name   string
		mutate func(*intunev1alpha1.GraphConnectionSpec)
		reason string
	}{
		{"pod-workload-identity", func(s *intunev1alpha1.GraphConnectionSpec) {
			s.Credential = intunev1alpha1.GraphCredential{Type: intunev1alpha1.CredentialWorkloadIdentity, ClientID: h.clientID}
		}, intunev1alpha1.ReasonAmbientCredentialsNotAllowed},
		{"managed-identity", func(s *intunev1alpha1.GraphConnectionSpec) {
			s.Credential = intunev1alpha1.GraphCredential{Type: intunev1alpha1.CredentialManagedIdentity}
		}, intunev1alpha1.ReasonAmbientCredentialsNotAllowed},
		{"environment", func(s *intunev1alpha1.GraphConnectionSpec) {
			s.Credential = intunev1alpha1.GraphCredential{Type: intunev1alpha1.CredentialEnvironment}
		}, intunev1alpha1.ReasonAmbientCredentialsNotAllowed},
		{"other-graph-host", func(s *intunev1alpha1.GraphConnectionSpec) {
			s.GraphEndpoint = "https://graph.attacker.example"
		}, intunev1alpha1.ReasonEndpointNotAllowed},
		{"other-sign-in-host", func(s *intunev1alpha1.GraphConnectionSpec) {
			s.AuthorityHost = strings.Replace(h.sim.URL(), "127.0.0.1", "localhost", 1) // same process, host not listed
		}, intunev1alpha1.ReasonEndpointNotAllowed},
	}
	mark := h.journalMark()
	for _, tc := range cases {
		spec := h.connectionSpec(h.tenantB, "graph-app-b", "connector-key-b")
		tc.mutate(&spec)
		conn := &intunev1alpha1.GraphConnection{ObjectMeta: metav1.ObjectMeta{Name: tc.name, Namespace: h.ns2}, Spec: spec}
		h.apply(conn)
		c := h.waitReady(conn, func() []metav1.Condition { return conn.Status.Conditions }, metav1.ConditionFalse, tc.reason)
		t.Logf("%s: %s", tc.name, c.Message)
		h.waitEvent(conn, "GraphConnection", "Failed") // a Warning whose note starts with the reason
	}
	if calls := h.graphCalls(mark); len(calls) > 0 {
		t.Fatalf("refused connections reached graphsim: %v", calls)
	}
}
