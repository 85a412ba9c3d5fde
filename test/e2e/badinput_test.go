//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/stack"
)

const (
	badNS       = "bad-input"
	elsewhereNS = "elsewhere"
)

// check is one resource's expected Ready=False reason and a fragment of its message.
type check struct {
	kind, namespace, name string
	reason, message       string
}

// badCase is one kind of bad input: what it creates, what the operator must report, and optionally how a
// user fixes it (after which the resource must become Ready by itself and own exactly one record).
type badCase struct {
	name    string
	objects []client.Object
	checks  []check
	// fix repairs the input; want is the thumbprint the fixed resource then imports.
	fix  func(ctx context.Context) error
	want *testutil.UserCertificate
}

// TestBadInput applies bad input of every sort at once and checks that each resource ends in a clear
// Ready=False reason and message without secret material, that nothing was written to Graph, that the
// operator neither crashed nor restarted, and that a representative subset recovers by itself once its
// input is fixed. It also shows that references never cross namespaces: a resource reads Secrets and
// GraphConnections only in its own namespace, a ClusterGraphConnection reads its credential only in the
// operator's namespace.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	s := startStack(t, stack.Options{})
	operatorPid := s.Operator.Pid()
	for _, ns := range []string{badNS, elsewhereNS} {
		kubectlOK(t, s, "create", "namespace", ns)
	}
	b := newBadInput(t, s)
	cases := b.cases()

	for _, c := range cases {
		for _, obj := range c.objects {
			if err := s.Client.Create(ctx, obj); err != nil {
				t.Fatalf("%s: creating %T %s: %v", c.name, obj, obj.GetName(), err)
			}
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, want := range c.checks {
				got := waitReason(t, s, want)
				t.Logf("%s %s: Ready=False %s: %s", want.kind, want.name, got.Reason, got.Message)
				for what, value := range b.secrets {
					if strings.Contains(got.Message, value) {
						t.Errorf("%s %s: the Ready message contains %s", want.kind, want.name, what)
					}
				}
			}
		})
	}

	t.Run("no Graph write", func(t *testing.T) {
		journal, err := s.Journal()
		if err != nil {
			t.Fatal(err)
		}
		graphCalls := 0
		for _, e := range journal {
			if !strings.HasPrefix(e.Path, "/beta/") {
				continue
			}
			graphCalls++
			if e.Method != http.MethodGet {
				t.Errorf("bad input led to a Graph write: %s %s (%d)", e.Method, e.Path, e.Status)
			}
		}
		if graphCalls == 0 {
			t.Error("the journal holds no Graph call at all: the check proved nothing")
		}
		records, err := s.Records()
		if err != nil {
			t.Fatal(err)
		}
		if n := len(records.UserPfxCertificates); n != 0 {
			t.Errorf("graphsim holds %d userPfxCertificates", n)
		}
	})

	// kubectl splits -f on commas: neither the subtest name (part of its temp dir) nor the file name has one.
	t.Run("admission refuses invalid GUIDs and enums and unknown fields", func(t *testing.T) {
		for i, a := range admissionCases() {
			out, err := s.KubectlRun(ctx, "apply", "-n", badNS, "-f", writeFile(t, fmt.Sprintf("admission-%d.yaml", i), a.manifest))
			if err == nil {
				t.Errorf("%s: kubectl apply accepted it:\n%s", a.name, out)
				continue
			}
			for _, want := range a.want {
				if !strings.Contains(out, want) {
					t.Errorf("%s: kubectl's refusal does not say %q:\n%s", a.name, want, out)
				}
			}
		}
	})

	t.Run("fixed input recovers by itself", func(t *testing.T) {
		fixed := 0
		for _, c := range cases {
			if c.fix == nil {
				continue
			}
			fixed++
			if err := c.fix(ctx); err != nil {
				t.Fatalf("%s: fixing: %v", c.name, err)
			}
		}
		for _, c := range cases {
			if c.fix == nil {
				continue
			}
			resource := c.checks[len(c.checks)-1]
			waitReady(t, s, resource)
			id := kubectlJSONPath(t, s, resource, "{.status.id}")
			if want := c.want.Thumbprint(); !strings.HasSuffix(id, want) {
				t.Errorf("%s: status id %q does not end with the fixed certificate's thumbprint %s", c.name, id, want)
			}
		}
		records, err := s.Records()
		if err != nil {
			t.Fatal(err)
		}
		if len(records.UserPfxCertificates) != fixed {
			t.Errorf("graphsim holds %d userPfxCertificates after %d fixes: want exactly one each", len(records.UserPfxCertificates), fixed)
		}
	})

	t.Run("no crash, no restart, no leak", func(t *testing.T) {
		if !s.Operator.Running() || s.Operator.Pid() != operatorPid {
			t.Error("the operator process exited or was replaced")
		}
		if strings.Contains(s.Operator.Log(), "panic") {
			t.Error("the operator log mentions a panic")
		}
		findings, err := s.LeakScan(ctx, b.secrets)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range findings {
			t.Error(f)
		}
	})
}

// badInput holds the material the cases are built from.
type badInput struct {
	t        *testing.T
	s        *stack.Stack
	password string            // opens every good PFX
	secrets  map[string]string // every secret value used, for the message checks and the leak scan
}

func newBadInput(t *testing.T, s *stack.Stack) *badInput {
	random := make([]byte, 8)
	_, _ = rand.Read(random)
	b := &badInput{t: t, s: s, password: "Good-Pa55-" + hex.EncodeToString(random)}
	b.secrets = map[string]string{
		"the good PFX password": b.password,
		"the client secret":     s.ClientSecret,
	}
	return b
}

// cert issues a certificate for upn valid from notBefore to notAfter.
func (b *badInput) cert(upn string, notBefore, notAfter time.Time) *testutil.UserCertificate {
	c, err := testutil.NewUserCertificate(upn, notBefore, notAfter)
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

func (b *badInput) valid(upn string) *testutil.UserCertificate {
	return b.cert(upn, time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
}

func (b *badInput) pfx(c *testutil.UserCertificate, password string) []byte {
	data, err := c.PFX(password)
	if err != nil {
		b.t.Fatal(err)
	}
	return data
}

// secret remembers a secret value for the leak checks and returns it.
func (b *badInput) secret(what, value string) string {
	b.secrets[what] = value
	return value
}

func pfxSecret(name string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: badNS}, Data: data}
}

// userPfx is a UserPfxCertificate reading the PFX Secret secretName (key "pfx", password key "password").
func userPfx(name, secretName string, mutate ...func(*intunev1alpha1.UserPfxCertificateSpec)) *intunev1alpha1.UserPfxCertificate {
	o := &intunev1alpha1.UserPfxCertificate{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: badNS},
		Spec: intunev1alpha1.UserPfxCertificateSpec{Source: intunev1alpha1.CertificateSource{
			Pfx: &intunev1alpha1.PfxSecretSource{SecretRef: intunev1alpha1.SecretKeyReference{Name: secretName}}}}}
	for _, m := range mutate {
		m(&o.Spec)
	}
	return o
}

func viaConnection(kind, name string) func(*intunev1alpha1.UserPfxCertificateSpec) {
	return func(s *intunev1alpha1.UserPfxCertificateSpec) {
		s.ConnectionRef = &intunev1alpha1.ConnectionReference{Kind: kind, Name: name}
	}
}

func upfx(name, reason, message string) check {
	return check{"UserPfxCertificate", badNS, name, reason, message}
}

// replaceSecretData overwrites a Secret's data (creating the Secret if it does not exist).
func (b *badInput) replaceSecretData(ctx context.Context, namespace, name string, data map[string][]byte) error {
	secret := &corev1.Secret{}
	err := b.s.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, secret)
	if apierrors.IsNotFound(err) {
		return b.s.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Data: data})
	}
	if err != nil {
		return err
	}
	secret.Data = data
	return b.s.Client.Update(ctx, secret)
}

// graphConnection is a GraphConnection in badNS signing in to graphsim with the client secret in
// secretName and encrypting for the public key in keySecretName.
func (b *badInput) graphConnection(name, secretName, keySecretName string) *intunev1alpha1.GraphConnection {
	return &intunev1alpha1.GraphConnection{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: badNS},
		Spec: b.s.ConnectionSpec(secretName, keySecretName)}
}

func (b *badInput) cases() []badCase {
	s := b.s
	good := func(c *testutil.UserCertificate) map[string][]byte {
		return map[string][]byte{"pfx": b.pfx(c, b.password), "password": []byte(b.password)}
	}
	goodKey := testutil.PublicKeyPEM(&s.ConnectorKey.PublicKey)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		b.t.Fatal(err)
	}
	huge := make([]byte, 1<<20-64)
	_, _ = rand.Read(huge)
	b.secret("a slice of the 1 MiB Secret (base64)", base64.StdEncoding.EncodeToString(huge)[4096:4160])

	alice := b.valid("alice@contoso.com")
	b.secret("a good PFX (base64)", base64.StdEncoding.EncodeToString(b.pfx(alice, b.password))[100:160])
	b.secret("alice's tls.key (a PEM line)", strings.Split(string(alice.KeyPEM()), "\n")[3])
	nonASCII := b.secret("the non-ASCII password", "Pässwörd-Ünïcode-42")
	overlong := b.secret("the 127-byte password", "Overlong-"+strings.Repeat("x0", 59)) // 9 + 118 = 127 bytes
	wrongPassword := b.secret("a wrong password", "Not-The-Pa55word-9")
	wrongClientSecret := b.secret("a wrong client secret", "cs~wrong-"+hex.EncodeToString([]byte(s.ClientSecret))[:24])

	fixedGarbage, fixedPassword, fixedMissing, fixedKey := b.valid("alice@contoso.com"), b.valid("alice@contoso.com"), b.valid("alice@contoso.com"), b.valid("alice@contoso.com")
	fixedClient, fixedPublicKey, fixedCluster := b.valid("alice@contoso.com"), b.valid("bob@contoso.com"), b.valid("bob@contoso.com")
	nobody, fixedNobody := b.valid("nobody@contoso.com"), b.valid("bob@contoso.com")
	wrongPasswordCert := fixedPassword
	bob := b.valid("bob@contoso.com")

	return []badCase{
		{name: "garbage PFX",
			objects: []client.Object{pfxSecret("garbage", map[string][]byte{"pfx": []byte("this is not a PFX file at all"), "password": []byte(b.password)}),
				userPfx("garbage", "garbage")},
			checks: []check{upfx("garbage", "InvalidPfx", "not a readable PKCS#12")},
			fix: func(ctx context.Context) error {
				return b.replaceSecretData(ctx, badNS, "garbage", good(fixedGarbage))
			}, want: fixedGarbage},
		{name: "truncated PFX",
			objects: []client.Object{pfxSecret("truncated", map[string][]byte{"pfx": b.pfx(alice, b.password)[:900], "password": []byte(b.password)}),
				userPfx("truncated", "truncated")},
			checks: []check{upfx("truncated", "InvalidPfx", "PKCS#12")}},
		{name: "empty PFX",
			objects: []client.Object{pfxSecret("empty", map[string][]byte{"pfx": {}, "password": []byte(b.password)}), userPfx("empty", "empty")},
			checks:  []check{upfx("empty", "SecretKeyMissing", `has no key "pfx"`)}},
		{name: "wrong password",
			objects: []client.Object{pfxSecret("wrong-password", map[string][]byte{"pfx": b.pfx(wrongPasswordCert, b.password), "password": []byte(wrongPassword)}),
				userPfx("wrong-password", "wrong-password")},
			checks: []check{upfx("wrong-password", "WrongPassword", "password does not open the PFX")},
			fix: func(ctx context.Context) error {
				return b.replaceSecretData(ctx, badNS, "wrong-password", good(wrongPasswordCert))
			}, want: wrongPasswordCert},
		{name: "PFX without a private key",
			objects: []client.Object{pfxSecret("no-key", map[string][]byte{"pfx": trustStore(b.t, alice, b.password), "password": []byte(b.password)}),
				userPfx("no-key", "no-key")},
			checks: []check{upfx("no-key", "NoPrivateKey", "no private key")}},
		{name: "key not matching the certificate (PFX)",
			objects: []client.Object{pfxSecret("mismatch-pfx", map[string][]byte{"pfx": mismatchedPFX(b.t, alice, bob, b.password), "password": []byte(b.password)}),
				userPfx("mismatch-pfx", "mismatch-pfx")},
			checks: []check{upfx("mismatch-pfx", "KeyMismatch", "matches the private key")}},
		{name: "key not matching the certificate (TLS)",
			objects: []client.Object{
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "mismatch-tls", Namespace: badNS}, Type: corev1.SecretTypeTLS,
					Data: map[string][]byte{corev1.TLSCertKey: alice.CertPEM(), corev1.TLSPrivateKeyKey: bob.KeyPEM()}},
				&intunev1alpha1.UserPfxCertificate{ObjectMeta: metav1.ObjectMeta{Name: "mismatch-tls", Namespace: badNS},
					Spec: intunev1alpha1.UserPfxCertificateSpec{Source: intunev1alpha1.CertificateSource{
						TLS: &intunev1alpha1.TLSSecretSource{SecretRef: intunev1alpha1.LocalSecretReference{Name: "mismatch-tls"}}}}}},
			checks: []check{upfx("mismatch-tls", "KeyMismatch", "matches the private key")}},
		{name: "expired certificate",
			objects: []client.Object{pfxSecret("expired", good(b.cert("alice@contoso.com", time.Now().AddDate(-2, 0, 0), time.Now().AddDate(-1, 0, 0)))),
				userPfx("expired", "expired")},
			checks: []check{upfx("expired", "CertificateExpired", "expired at")}},
		{name: "certificate not yet valid",
			objects: []client.Object{pfxSecret("not-yet-valid", good(b.cert("alice@contoso.com", time.Now().AddDate(0, 0, 7), time.Now().AddDate(1, 0, 0)))),
				userPfx("not-yet-valid", "not-yet-valid")},
			checks: []check{upfx("not-yet-valid", "CertificateNotYetValid", "is not valid before")}},
		{name: "non-ASCII password",
			objects: []client.Object{pfxSecret("non-ascii", map[string][]byte{"pfx": b.pfx(alice, nonASCII), "password": []byte(nonASCII)}),
				userPfx("non-ascii", "non-ascii")},
			checks: []check{upfx("non-ascii", "InvalidPassword", "non-ASCII")}},
		{name: "password over 126 bytes with oaepSha512",
			objects: []client.Object{pfxSecret("overlong", map[string][]byte{"pfx": b.pfx(alice, overlong), "password": []byte(overlong)}),
				userPfx("overlong", "overlong")},
			checks: []check{upfx("overlong", "InvalidPassword", "password is 127 bytes")}},
		{name: "connector public key in a wrong format",
			objects: []client.Object{
				pfxSecret("graph-app", map[string][]byte{"clientSecret": []byte(s.ClientSecret)}),
				pfxSecret("garbage-key", map[string][]byte{"public.pem": []byte("-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n")}),
				b.graphConnection("garbage-key", "graph-app", "garbage-key"),
				pfxSecret("garbage-key-user", good(fixedPublicKey)),
				userPfx("garbage-key-user", "garbage-key-user", viaConnection("GraphConnection", "garbage-key"))},
			checks: []check{upfx("garbage-key-user", "PublicKeyInvalid", "public key")},
			fix: func(ctx context.Context) error {
				return b.replaceSecretData(ctx, badNS, "garbage-key", map[string][]byte{"public.pem": goodKey})
			}, want: fixedPublicKey},
		{name: "connector public key under 2048 bits",
			objects: []client.Object{
				pfxSecret("weak-key", map[string][]byte{"public.pem": testutil.PublicKeyPEM(&weak.PublicKey)}),
				b.graphConnection("weak-key", "graph-app", "weak-key"),
				pfxSecret("weak-key-user", good(b.valid("bob@contoso.com"))),
				userPfx("weak-key-user", "weak-key-user", viaConnection("GraphConnection", "weak-key"))},
			checks: []check{upfx("weak-key-user", "PublicKeyInvalid", "1024")}},
		{name: "missing Secret",
			objects: []client.Object{userPfx("missing-secret", "does-not-exist")},
			checks:  []check{upfx("missing-secret", "SecretNotFound", `Secret "does-not-exist" does not exist in namespace "`+badNS+`"`)},
			fix: func(ctx context.Context) error {
				return b.replaceSecretData(ctx, badNS, "does-not-exist", good(fixedMissing))
			}, want: fixedMissing},
		{name: "missing key in the Secret",
			objects: []client.Object{pfxSecret("missing-key", map[string][]byte{"certificate": alice.CertPEM(), "password": []byte(b.password)}),
				userPfx("missing-key", "missing-key")},
			checks: []check{upfx("missing-key", "SecretKeyMissing", `has no key "pfx"`)},
			fix: func(ctx context.Context) error {
				return b.replaceSecretData(ctx, badNS, "missing-key", good(fixedKey))
			}, want: fixedKey},
		{name: "Secret in another namespace",
			objects: []client.Object{
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "only-elsewhere", Namespace: elsewhereNS}, Data: good(alice)},
				userPfx("other-namespace-secret", "only-elsewhere")},
			checks: []check{upfx("other-namespace-secret", "SecretNotFound", `Secret "only-elsewhere" does not exist in namespace "`+badNS+`"`)}},
		{name: "1 MiB Secret",
			objects: []client.Object{pfxSecret("huge", map[string][]byte{"pfx": huge, "password": []byte(b.password)}), userPfx("huge", "huge")},
			checks:  []check{upfx("huge", "InvalidPfx", "PKCS#12")}},
		{name: "connection with a wrong client secret",
			objects: []client.Object{
				pfxSecret("graph-app-wrong", map[string][]byte{"clientSecret": []byte(wrongClientSecret)}),
				pfxSecret("connector-key", map[string][]byte{"public.pem": goodKey}),
				b.graphConnection("wrong-secret", "graph-app-wrong", "connector-key"),
				pfxSecret("wrong-secret-user", good(fixedClient)),
				userPfx("wrong-secret-user", "wrong-secret-user", viaConnection("GraphConnection", "wrong-secret"))},
			checks: []check{
				{"GraphConnection", badNS, "wrong-secret", "CredentialInvalid", "AADSTS7000215"},
				upfx("wrong-secret-user", "ConnectionNotReady", `GraphConnection "wrong-secret" is not ready`)},
			fix: func(ctx context.Context) error {
				return b.replaceSecretData(ctx, badNS, "graph-app-wrong", map[string][]byte{"clientSecret": []byte(s.ClientSecret)})
			}, want: fixedClient},
		{name: "unknown user principal name",
			objects: []client.Object{pfxSecret("unknown-upn", good(nobody)), userPfx("unknown-upn", "unknown-upn")},
			checks:  []check{upfx("unknown-upn", "UserNotFound", `no user "nobody@contoso.com"`)},
			// The user is taken from the certificate: a certificate of a known user fixes it.
			fix: func(ctx context.Context) error {
				return b.replaceSecretData(ctx, badNS, "unknown-upn", good(fixedNobody))
			}, want: fixedNobody},
		{name: "GraphConnection in another namespace",
			objects: []client.Object{
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "graph-app", Namespace: elsewhereNS}, Data: map[string][]byte{"clientSecret": []byte(s.ClientSecret)}},
				&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "connector-key", Namespace: elsewhereNS}, Data: map[string][]byte{"public.pem": goodKey}},
				&intunev1alpha1.GraphConnection{ObjectMeta: metav1.ObjectMeta{Name: "only-elsewhere", Namespace: elsewhereNS},
					Spec: s.ConnectionSpec("graph-app", "connector-key")},
				pfxSecret("other-namespace-connection", good(alice)),
				userPfx("other-namespace-connection", "other-namespace-connection", viaConnection("GraphConnection", "only-elsewhere"))},
			checks: []check{upfx("other-namespace-connection", "ConnectionNotFound", `GraphConnection "only-elsewhere" in namespace "`+badNS+`" does not exist`)}},
		{name: "ClusterGraphConnection reads its credential in the operator namespace only",
			objects: []client.Object{
				// A valid credential, but in the resource's namespace: the cluster connection must not use it.
				pfxSecret("tenant-app", map[string][]byte{"clientSecret": []byte(s.ClientSecret)}),
				&intunev1alpha1.ClusterGraphConnection{ObjectMeta: metav1.ObjectMeta{Name: "credential-elsewhere"},
					Spec: stack.OpenToEveryNamespace(s.ConnectionSpec("tenant-app", "intune-connector-key"))},
				pfxSecret("cluster-credential-user", good(fixedCluster)),
				userPfx("cluster-credential-user", "cluster-credential-user", viaConnection("ClusterGraphConnection", "credential-elsewhere"))},
			checks: []check{
				{"ClusterGraphConnection", "", "credential-elsewhere", "SecretNotFound", `does not exist in namespace "` + stack.OperatorNamespace + `"`},
				upfx("cluster-credential-user", "ConnectionNotReady", `ClusterGraphConnection "credential-elsewhere" is not ready`)},
			fix: func(ctx context.Context) error {
				return b.replaceSecretData(ctx, stack.OperatorNamespace, "tenant-app", map[string][]byte{"clientSecret": []byte(s.ClientSecret)})
			}, want: fixedCluster},
	}
}

// trustStore is a PFX holding only the certificate, no key.
func trustStore(t *testing.T, c *testutil.UserCertificate, password string) []byte {
	data, err := pkcs12.Modern.EncodeTrustStore([]*x509.Certificate{c.Cert}, password)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// mismatchedPFX is a PFX holding one user's certificate with another user's key.
func mismatchedPFX(t *testing.T, certOf, keyOf *testutil.UserCertificate, password string) []byte {
	data, err := pkcs12.Modern.Encode(keyOf.Key, certOf.Cert, nil, password)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// admissionCase is a manifest the API server must refuse, and what its refusal must say.
type admissionCase struct {
	name, manifest string
	want           []string
}

func admissionCases() []admissionCase {
	const upfxHead = "apiVersion: intune.certops.dev/v1alpha1\nkind: UserPfxCertificate\nmetadata: {name: %s}\nspec:\n"
	const source = "  source: {pfx: {secretRef: {name: some-secret}}}\n"
	return []admissionCase{
		{"tenant id not a GUID", "apiVersion: intune.certops.dev/v1alpha1\nkind: GraphConnection\nmetadata: {name: bad-tenant}\n" +
			"spec: {tenantId: not-a-guid, credential: {type: WorkloadIdentity, clientId: 3b2a1c0d-4e5f-4a6b-8c7d-9e0f1a2b3c4d}}\n",
			[]string{"spec.tenantId", "should match"}},
		{"client id not a GUID", "apiVersion: intune.certops.dev/v1alpha1\nkind: GraphConnection\nmetadata: {name: bad-client}\n" +
			"spec: {tenantId: 6f1c3f0e-2a4b-4c5d-8e9f-0a1b2c3d4e5f, credential: {type: WorkloadIdentity, clientId: app-12345}}\n",
			[]string{"spec.credential.clientId", "should match"}},
		{"unknown cloud", "apiVersion: intune.certops.dev/v1alpha1\nkind: GraphConnection\nmetadata: {name: bad-cloud}\n" +
			"spec: {tenantId: 6f1c3f0e-2a4b-4c5d-8e9f-0a1b2c3d4e5f, cloud: Mars, credential: {type: WorkloadIdentity}}\n",
			[]string{"spec.cloud", `Unsupported value: "Mars"`}},
		{"unknown intended purpose", fmt.Sprintf(upfxHead, "bad-purpose") + "  intendedPurpose: email\n" + source,
			[]string{"spec.intendedPurpose", `Unsupported value: "email"`}},
		{"unknown deletion policy", fmt.Sprintf(upfxHead, "bad-policy") + "  deletionPolicy: Keep\n" + source,
			[]string{"spec.deletionPolicy", `Unsupported value: "Keep"`}},
		{"unknown padding scheme", fmt.Sprintf(upfxHead, "bad-padding") + "  encryption: {paddingScheme: rsa}\n" + source,
			[]string{"spec.encryption.paddingScheme", `Unsupported value: "rsa"`}},
		{"connection reference of another kind", fmt.Sprintf(upfxHead, "bad-ref") + "  connectionRef: {kind: Namespace, name: x}\n" + source,
			[]string{"spec.connectionRef.kind", `Unsupported value: "Namespace"`}},
		{"a namespace on a Secret reference", fmt.Sprintf(upfxHead, "cross-namespace") +
			"  source: {pfx: {secretRef: {name: some-secret, namespace: " + elsewhereNS + "}}}\n",
			[]string{`unknown field "spec.source.pfx.secretRef.namespace"`}},
		{"recryption user id not a GUID", "apiVersion: intune.certops.dev/v1alpha1\nkind: PfxRecryptionRequest\nmetadata: {name: bad-user}\n" +
			"spec: {userId: alice, deviceId: 2e4d6f8a-0b1c-4d3e-8f5a-6b7c8d9e0f1a, profileId: 0c6d3b1a-7f2e-4d4c-9b8a-1e2f3a4b5c6d}\n",
			[]string{"spec.userId", "should match"}},
		{"unknown profile type", "apiVersion: intune.certops.dev/v1alpha1\nkind: ManagedDeviceCertificateState\nmetadata: {name: bad-profile}\n" +
			"spec: {deviceConfigurationId: 0c6d3b1a-7f2e-4d4c-9b8a-1e2f3a4b5c6d, profileType: blackberryScep, devicePlatform: iOS, " +
			"certificate: {thumbprint: 0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c}}\n",
			[]string{"spec.profileType", `Unsupported value: "blackberryScep"`}},
	}
}

// readyCondition is a resource's Ready condition as the API server has it.
type readyCondition struct {
	Status, Reason, Message string
}

func getReady(ctx context.Context, s *stack.Stack, c check) (readyCondition, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(intunev1alpha1.GroupVersion.WithKind(c.kind))
	if err := s.Client.Get(ctx, types.NamespacedName{Namespace: c.namespace, Name: c.name}, u); err != nil {
		return readyCondition{}, err
	}
	conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, raw := range conditions {
		cond, _ := raw.(map[string]any)
		if cond["type"] == intunev1alpha1.ConditionReady {
			str := func(k string) string { v, _ := cond[k].(string); return v }
			return readyCondition{str("status"), str("reason"), str("message")}, nil
		}
	}
	return readyCondition{}, nil
}

// waitReason waits until the resource is Ready=False with the expected reason, and checks its message.
func waitReason(t *testing.T, s *stack.Stack, c check) readyCondition {
	t.Helper()
	var got readyCondition
	waitFor(t, fmt.Sprintf("%s %s to report %s", c.kind, c.name, c.reason), func() error {
		var err error
		if got, err = getReady(context.Background(), s, c); err != nil {
			return err
		}
		if got.Status != string(metav1.ConditionFalse) || got.Reason != c.reason {
			return fmt.Errorf("Ready=%s %s: %s", got.Status, got.Reason, got.Message)
		}
		return nil
	})
	if !strings.Contains(got.Message, c.message) {
		t.Errorf("%s %s: message %q does not say %q", c.kind, c.name, got.Message, c.message)
	}
	// A message says what to fix in words: a parser's internals (Go struct dumps, ASN.1 offsets) are noise.
	for _, noise := range []string{"asn1:", "{optional:", "isCompound:"} {
		if strings.Contains(got.Message, noise) {
			t.Errorf("%s %s: the message quotes a parser's internals (%q): %s", c.kind, c.name, noise, got.Message)
			break
		}
	}
	return got
}

func waitReady(t *testing.T, s *stack.Stack, c check) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s %s to become Ready after the fix", c.kind, c.name), func() error {
		got, err := getReady(context.Background(), s, c)
		if err != nil {
			return err
		}
		if got.Status != string(metav1.ConditionTrue) {
			return fmt.Errorf("Ready=%s %s: %s", got.Status, got.Reason, got.Message)
		}
		return nil
	})
}

func kubectlJSONPath(t *testing.T, s *stack.Stack, c check, path string) string {
	t.Helper()
	out, err := s.KubectlRun(context.Background(), "get", strings.ToLower(c.kind), c.name, "-n", c.namespace, "-o", "jsonpath="+path)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
