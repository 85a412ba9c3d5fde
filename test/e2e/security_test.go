//go:build e2e

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/graphsim"
	"github.com/certops/intune-cert-operator/test/stack"
)

const malloryNS = "team-mallory"

// TestNamespaceCannotTurnTheOperatorAgainstItsOwner is what someone who owns one namespace tries: make the
// operator sign in as itself (its pod's federated token, its AZURE_* secret, its host's managed identity)
// and hand the result to a host of theirs, send a team's own credentials elsewhere, redirect the operator's
// requests, and stall it with an enormous Retry-After. The attacker's host is a second graphsim whose TLS
// certificate the operator trusts; its journal records every credential that reaches it. With the operator's
// defaults nothing does. With the two flags that widen the policy the same manifests do leak: the test can fail.
func TestNamespaceCannotTurnTheOperatorAgainstItsOwner(t *testing.T) {
	ctx := context.Background()
	s := startStack(t, stack.Options{})
	attacker, err := s.StartAttacker("attacker")
	if err != nil {
		t.Fatal(err)
	}
	env, err := s.AmbientIdentityEnv(writeFile(t, "pod-token", podFederatedToken(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RestartOperator(nil, env...); err != nil { // trusts the attacker's CA from now on
		t.Fatal(err)
	}

	kubectlOK(t, s, "create", "namespace", malloryNS)
	const malloryApp = "0d1c2b3a-4f5e-4d6c-8b7a-695847362514"
	for _, obj := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "mallory-app", Namespace: malloryNS},
			Data: map[string][]byte{"clientSecret": []byte("mallory's own secret")}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "mallory", Namespace: malloryNS}},
	} {
		if err := s.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	connections := []struct {
		name, reason, message string
		spec                  intunev1alpha1.GraphConnectionSpec
	}{
		{"pod-token", intunev1alpha1.ReasonAmbientCredentialsNotAllowed, "operator pod's own federated token",
			mallorySpec(attacker.URL, attacker.URL, intunev1alpha1.GraphCredential{Type: "WorkloadIdentity", ClientID: stack.ClientID})},
		{"pod-environment", intunev1alpha1.ReasonAmbientCredentialsNotAllowed, "operator pod's AZURE_* variables",
			mallorySpec(attacker.URL, attacker.URL, intunev1alpha1.GraphCredential{Type: "Environment"})},
		{"host-identity", intunev1alpha1.ReasonAmbientCredentialsNotAllowed, "identity of the node or host",
			mallorySpec(attacker.URL, "", intunev1alpha1.GraphCredential{Type: "ManagedIdentity", ClientID: stack.HostIdentityClientID})},
		{"own-secret-elsewhere", intunev1alpha1.ReasonEndpointNotAllowed, "spec.graphEndpoint names host \"" + attacker.Host() + "\"",
			mallorySpec(attacker.URL, attacker.URL, intunev1alpha1.GraphCredential{Type: "ClientSecret", ClientID: malloryApp,
				SecretRef: &intunev1alpha1.SecretKeyReference{Name: "mallory-app", Key: "clientSecret"}})},
		{"own-account-elsewhere", intunev1alpha1.ReasonEndpointNotAllowed, "spec.authorityHost names host \"" + attacker.Host() + "\"",
			mallorySpec(s.GraphsimURL, attacker.URL, intunev1alpha1.GraphCredential{Type: "WorkloadIdentity", ClientID: malloryApp, ServiceAccountName: "mallory"})},
	}
	for _, c := range connections {
		if err := s.Client.Create(ctx, &intunev1alpha1.GraphConnection{ObjectMeta: metav1.ObjectMeta{Name: c.name, Namespace: malloryNS}, Spec: c.spec}); err != nil {
			t.Fatalf("creating GraphConnection %s: %v", c.name, err)
		}
	}

	t.Run("no credential reaches a namespace's host", func(t *testing.T) {
		for _, c := range connections {
			waitReason(t, s, check{"GraphConnection", malloryNS, c.name, c.reason, c.message})
		}
		// The operator reconciled every connection and gave up before any request; give it no benefit of
		// the doubt about a request still in flight: a restart reconciles them all again first.
		if err := s.RestartOperator(nil, env...); err != nil {
			t.Fatal(err)
		}
		for _, c := range connections {
			waitReason(t, s, check{"GraphConnection", malloryNS, c.name, c.reason, c.message})
		}
		if entries := journal(t, attacker); len(entries) > 0 {
			t.Fatalf("the attacker's host received %d requests, e.g. %+v", len(entries), entries[0])
		}
	})

	t.Run("the flags that widen the policy do hand the operator's identity over", func(t *testing.T) {
		widened := []string{"--allow-namespaced-ambient-credentials", "--allowed-endpoint-hosts=" + graphsimHost(s) + "," + attacker.Host()}
		if err := s.RestartOperator(widened, env...); err != nil {
			t.Fatal(err)
		}
		leaks := map[string]func(graphsim.Entry) bool{
			"the pod's federated token": func(e graphsim.Entry) bool {
				return e.ClientAssertion && e.AssertionSubject == stack.OperatorUser
			},
			"the pod's client secret":                      func(e graphsim.Entry) bool { return e.ClientSecret && e.ClientID == stack.ClientID },
			"a token of the host's identity or of the app": func(e graphsim.Entry) bool { return e.Authorization },
		}
		waitFor(t, "the attacker's host to receive the operator's credentials", func() error {
			entries := journal(t, attacker)
			for what, leaked := range leaks {
				found := false
				for _, e := range entries {
					found = found || leaked(e)
				}
				if !found {
					return fmt.Errorf("no request carried %s yet (%d requests)", what, len(entries))
				}
			}
			return nil
		})
		if err := s.RestartOperator(nil, env...); err != nil { // the defaults again
			t.Fatal(err)
		}
	})

	t.Run("a redirect is refused, never followed", func(t *testing.T) {
		before := len(journal(t, attacker))
		if err := s.Sim(http.MethodPost, "faults", graphsim.Faults{Script: []int{http.StatusTemporaryRedirect}, RedirectTo: attacker.URL}, nil); err != nil {
			t.Fatal(err)
		}
		name := importAlice(t, s, "redirected")
		waitFor(t, "the operator to refuse the redirect", func() error {
			events := &eventsv1.EventList{}
			if err := s.Client.List(context.Background(), events, client.InNamespace(malloryNS)); err != nil {
				return err
			}
			for _, e := range events.Items {
				if e.Regarding.Name == name && strings.Contains(e.Note, "redirects are refused") {
					return nil
				}
			}
			return fmt.Errorf("no Event of %s says the redirect was refused yet", name)
		})
		waitReady(t, s, check{kind: "UserPfxCertificate", namespace: malloryNS, name: name})
		if after := journal(t, attacker); len(after) != before {
			t.Fatalf("the redirect's target received %d requests, e.g. %+v", len(after)-before, after[before])
		}
	})

	t.Run("a key-derivation bomb is refused and the worker serves the next resource", func(t *testing.T) {
		mallory, err := testutil.NewUserCertificate("mallory@contoso.com", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		bomb, err := mallory.KDFBomb("bomb")
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range []client.Object{
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bomb", Namespace: malloryNS},
				Data: map[string][]byte{"pfx": bomb, "password": []byte("bomb")}},
			&intunev1alpha1.UserPfxCertificate{ObjectMeta: metav1.ObjectMeta{Name: "bomb", Namespace: malloryNS},
				Spec: intunev1alpha1.UserPfxCertificateSpec{Source: intunev1alpha1.CertificateSource{
					Pfx: &intunev1alpha1.PfxSecretSource{SecretRef: intunev1alpha1.SecretKeyReference{Name: "bomb"}}}}},
			// The same file as a connection's client certificate: the connection controller has one worker.
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bomb-certificate", Namespace: malloryNS},
				Data: map[string][]byte{"tls.pem": bomb, "password": []byte("bomb")}},
			&intunev1alpha1.GraphConnection{ObjectMeta: metav1.ObjectMeta{Name: "bomb-certificate", Namespace: malloryNS},
				Spec: mallorySpec(s.GraphsimURL, s.GraphsimURL, intunev1alpha1.GraphCredential{Type: "ClientCertificate", ClientID: stack.ClientID,
					SecretRef:                    &intunev1alpha1.SecretKeyReference{Name: "bomb-certificate"},
					CertificatePasswordSecretRef: &intunev1alpha1.OptionalSecretKeyReference{Key: "password"}})},
		} {
			if err := s.Client.Create(ctx, obj); err != nil {
				t.Fatal(err)
			}
		}
		const refused = "key-derivation iterations; at most 1000000 are accepted"
		waitReason(t, s, check{"UserPfxCertificate", malloryNS, "bomb", "InvalidPfx", refused})
		waitReason(t, s, check{"GraphConnection", malloryNS, "bomb-certificate", "InvalidPfx", refused})

		// Both workers are free: the next certificate imports, the next connection signs in.
		waitReady(t, s, check{kind: "UserPfxCertificate", namespace: malloryNS, name: importAlice(t, s, "after-bomb")})
		if err := s.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app-secret", Namespace: malloryNS},
			Data: map[string][]byte{"clientSecret": []byte(s.ClientSecret)}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Client.Create(ctx, &intunev1alpha1.GraphConnection{ObjectMeta: metav1.ObjectMeta{Name: "after-bomb", Namespace: malloryNS},
			Spec: mallorySpec(s.GraphsimURL, s.GraphsimURL, intunev1alpha1.GraphCredential{Type: "ClientSecret", ClientID: stack.ClientID,
				SecretRef: &intunev1alpha1.SecretKeyReference{Name: "app-secret", Key: "clientSecret"}})}); err != nil {
			t.Fatal(err)
		}
		waitReady(t, s, check{kind: "GraphConnection", namespace: malloryNS, name: "after-bomb"})
	})

	// Last: the cap still holds the app back for 10 minutes, as Graph asked (within reason).
	t.Run("an enormous Retry-After is capped", func(t *testing.T) {
		if err := s.Sim(http.MethodPost, "faults", graphsim.Faults{Script: []int{http.StatusTooManyRequests}, RetryAfter: 240 * time.Hour}, nil); err != nil {
			t.Fatal(err)
		}
		name := importAlice(t, s, "throttled")
		waitReason(t, s, check{"UserPfxCertificate", malloryNS, name, intunev1alpha1.ReasonThrottled, "retrying in 10m0s"})
		if log := s.Operator.LogSinceStart(); !strings.Contains(log, `"asked":"240h0m0s"`) || !strings.Contains(log, `"waitAtMost":"10m0s"`) {
			t.Errorf("the operator did not log the capped Retry-After:\n%s", tail(log, 20))
		}
	})
}

// mallorySpec is a connection to tenant and app ids the attacker's host also serves.
func mallorySpec(graphEndpoint, authorityHost string, credential intunev1alpha1.GraphCredential) intunev1alpha1.GraphConnectionSpec {
	return intunev1alpha1.GraphConnectionSpec{TenantID: stack.TenantID, Cloud: "Public", GraphEndpoint: graphEndpoint,
		AuthorityHost: authorityHost, Credential: credential}
}

// podFederatedToken stands in for the token the workload identity webhook mounts into the operator's pod:
// what matters is whether it ever leaves the operator, so its signature need not verify anywhere.
func podFederatedToken(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": "https://oidc.cluster.example", "sub": stack.OperatorUser, "aud": "api://AzureADTokenExchange",
		"exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// importAlice imports a fresh certificate of alice in mallory's namespace through the default connection.
func importAlice(t *testing.T, s *stack.Stack, name string) string {
	t.Helper()
	alice, err := testutil.NewUserCertificate("alice@contoso.com", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	data, err := alice.PFX("Pa55-" + name)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: malloryNS},
		Data: map[string][]byte{"pfx": data, "password": []byte("Pa55-" + name)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Client.Create(ctx, &intunev1alpha1.UserPfxCertificate{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: malloryNS},
		Spec: intunev1alpha1.UserPfxCertificateSpec{IntendedPurpose: "smimeSigning",
			Source: intunev1alpha1.CertificateSource{Pfx: &intunev1alpha1.PfxSecretSource{SecretRef: intunev1alpha1.SecretKeyReference{Name: name}}}}}); err != nil {
		t.Fatal(err)
	}
	return name
}

func journal(t *testing.T, a *stack.Attacker) []graphsim.Entry {
	t.Helper()
	entries, err := a.Journal()
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func graphsimHost(s *stack.Stack) string { return strings.TrimPrefix(s.GraphsimURL, "https://") }
