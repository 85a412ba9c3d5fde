package graphsim_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/golang-jwt/jwt/v5"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

// Workload identity against a real Kubernetes service-account issuer: a kube-apiserver (envtest) issues
// a ServiceAccount token through the TokenRequest API, azidentity presents it as client assertion,
// and graphsim finds the API server's keys by OIDC discovery as Entra ID would.
func TestWorkloadIdentityWithKubernetesServiceAccountTokens(t *testing.T) {
	kube, apiCA := startAPIServerWithRSAServiceAccountKey(t)
	ctx := context.Background()
	issuer := serviceAccountIssuer(t, kube)

	const ns, name = "intune-cert-operator", "controller"
	subject := "system:serviceaccount:" + ns + ":" + name
	for _, obj := range []struct {
		what string
		err  error
	}{
		{"namespace", create(kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))},
		{"service account", create(kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}))},
		{"other service account", create(kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "intruder"}}, metav1.CreateOptions{}))},
	} {
		if obj.err != nil {
			t.Fatalf("create %s: %v", obj.what, obj.err)
		}
	}
	tokenFor := func(sa, audience string) string {
		t.Helper()
		tr, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
			Audiences: []string{audience}, ExpirationSeconds: ptr.To[int64](3600),
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("TokenRequest for %s: %v", sa, err)
		}
		return tr.Status.Token
	}
	const exchange = "api://AzureADTokenExchange"
	token := tokenFor(name, exchange)
	if alg := jwtHeader(t, token)["alg"]; alg != "RS256" {
		t.Fatalf("the API server signs with %v, want RS256", alg)
	}

	// graphsim as a test stack would run it: a --config file naming the API server's CA and the table.
	const otherClusterApp = "0b6f7e2a-1c3d-4e5f-8a9b-000000000002"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kube-ca.pem"), apiCA, 0o600); err != nil {
		t.Fatal(err)
	}
	configFile := filepath.Join(dir, "graphsim.yaml")
	if err := os.WriteFile(configFile, fmt.Appendf(nil, `
oidcIssuerCAFile: kube-ca.pem
tenants:
- id: %[1]s
  apps:
  - clientId: %[2]s
    federatedCredentials:
    - {issuer: %[3]q, subject: %[4]q, audiences: [%[5]q]}
  - clientId: %[6]s
    federatedCredentials:
    - {issuer: "https://oidc.other-cluster.example/", subject: %[4]q}
  users:
  - {id: %[7]s, userPrincipalName: %[8]s}
`, tenantID, clientID, issuer, subject, exchange, otherClusterApp, userID, userUPN), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := graphsim.LoadConfig(configFile)
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, cfg)
	signIn := func(app, assertion string) (string, error) {
		t.Helper()
		cred, err := azidentity.NewClientAssertionCredential(tenantID, app,
			func(context.Context) (string, error) { return assertion, nil },
			&azidentity.ClientAssertionCredentialOptions{ClientOptions: clientOptions(s), DisableInstanceDiscovery: true})
		if err != nil {
			t.Fatal(err)
		}
		return getToken(t, cred)
	}

	// The discovery endpoints need authorization. Until they are public, Entra ID (and graphsim) cannot
	// read the keys.
	_, err = signIn(clientID, token)
	expectAuthFailure(t, err, "AADSTS50166", http.StatusBadRequest, token)
	makeIssuerDiscoveryPublic(t, kube, issuer, apiCA)

	graphToken, err := signIn(clientID, token)
	if err != nil {
		t.Fatalf("sign-in with the service account's token: %v", err)
	}
	expectUsable(t, s, graphToken)

	builtIn, err := s.FederatedToken(tenantID, clientID, subject)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what, app, assertion, aadsts string
		status                       int
	}{
		{"another service account's token", clientID, tokenFor("intruder", exchange), "AADSTS70021", 401},
		{"a token for another audience", clientID, tokenFor(name, "https://kubernetes.default.svc"), "AADSTS70021", 401},
		{"an app trusting another cluster's issuer", otherClusterApp, token, "AADSTS70021", 401},
		{"a token of an issuer in no credential", clientID, builtIn, "AADSTS70021", 401},
		{"a tampered signature", clientID, tamper(token), "AADSTS50013", 401},
	} {
		t.Run(c.what, func(t *testing.T) {
			_, err := signIn(c.app, c.assertion)
			expectAuthFailure(t, err, c.aadsts, c.status, c.assertion)
		})
	}

	// The journal shows whose token was presented, never the token.
	var seen bool
	for _, e := range s.Journal() {
		seen = seen || (e.ClientAssertion && e.Status == 200 && e.AssertionIssuer == issuer && e.AssertionSubject == subject)
	}
	if !seen {
		t.Fatalf("the journal has no successful sign-in with %s's token: %+v", subject, s.Journal())
	}
}

func create[T any](_ T, err error) error { return err }

// startAPIServerWithRSAServiceAccountKey starts kube-apiserver + etcd. envtest's service-account key is
// ECDSA; kubeadm, kind and the managed services sign with RSA (RS256), so the API server gets an RSA
// key, through the same flags a cluster uses. It returns an administrator's client and the serving CA (PEM).
func startAPIServerWithRSAServiceAccountKey(t *testing.T) (*kubernetes.Clientset, []byte) {
	t.Helper()
	// Like the project's other envtest tests: no control plane is a failure, not a skip.
	assets, err := testutil.AssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	keyDir := t.TempDir()
	key := rsaKey(t)
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, pubFile := filepath.Join(keyDir, "sa.key"), filepath.Join(keyDir, "sa.pub")
	writePEM(t, keyFile, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	writePEM(t, pubFile, "PUBLIC KEY", pub)

	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	env.ControlPlane.GetAPIServer().Configure().
		Set("service-account-signing-key-file", keyFile).
		Set("service-account-key-file", pubFile).
		// The discovery document's jwks_uri is built from the external host, which defaults to the
		// host's own address, where envtest's API server (bound to 127.0.0.1) does not listen. A real
		// cluster publishes a reachable jwks_uri; so must this one.
		Set("external-hostname", "127.0.0.1")
	cfg, err := env.Start()
	if err != nil {
		t.Fatal("starting the control plane: ", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	return kubernetes.NewForConfigOrDie(cfg), cfg.CAData
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// serviceAccountIssuer reads the issuer from the API server's discovery document, as an administrator
// does (kubectl get --raw /.well-known/openid-configuration) to register a federated credential.
func serviceAccountIssuer(t *testing.T, kube *kubernetes.Clientset) string {
	t.Helper()
	raw, err := kube.Discovery().RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	t.Logf("service-account issuer %s, jwks_uri %s", doc.Issuer, doc.JWKSURI)
	return doc.Issuer
}

// makeIssuerDiscoveryPublic binds the built-in ClusterRole system:service-account-issuer-discovery to
// system:unauthenticated, the documented way to let relying parties read the issuer's documents, and
// waits until an anonymous client can. It first shows that anonymous requests are authenticated as
// system:anonymous (403, not 401): envtest leaves --anonymous-auth at its default, true.
func makeIssuerDiscoveryPublic(t *testing.T, kube *kubernetes.Clientset, issuer string, apiCA []byte) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(apiCA)
	anonymous := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	discovery := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	status := func() int {
		resp, err := anonymous.Get(discovery)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	if got := status(); got != http.StatusForbidden {
		t.Fatalf("anonymous discovery before the binding: HTTP %d, want 403 (anonymous auth on, not yet authorized)", got)
	}
	_, err := kube.RbacV1().ClusterRoleBindings().Create(context.Background(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "service-account-issuer-discovery-public"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:service-account-issuer-discovery"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "system:unauthenticated"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); status() != http.StatusOK; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the discovery document is still not public 30 s after the binding")
		}
	}
}

func jwtHeader(t *testing.T, token string) map[string]any {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Header
}
