package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/controller"
	"github.com/certops/intune-cert-operator/internal/graph"
	"github.com/certops/intune-cert-operator/internal/pfx"
	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

// One control plane (envtest), one graphsim tenant and the operator's controllers serve every test; each test
// works in a namespace and with users of its own.
var (
	k8sClient    client.Client
	kubeconfig   string
	sim          *graphsim.Server
	tenantID     = "0b5e2f4c-8a3d-4e6f-9b1a-2c3d4e5f6a7b"
	clientID     = "3b2a1c0d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	clientSecret = "plugin-test-secret"
	connectorKey *rsa.PrivateKey
	users        = map[string]string{
		"alice@contoso.com": "11111111-1111-4111-8111-111111111111",
		"bob@contoso.com":   "22222222-2222-4222-8222-222222222222",
		"carol@contoso.com": "33333333-3333-4333-8333-333333333333",
		"dave@contoso.com":  "44444444-4444-4444-8444-444444444444",
	}
)

// operatorNS is the operator's namespace, the plugin's default --operator-namespace.
const operatorNS = "intune-cert-operator-system"

func TestMain(m *testing.M) {
	os.Exit(runWithStack(m))
}

func runWithStack(m *testing.M) int {
	fail := func(what string, err error) int { fmt.Fprintln(os.Stderr, what+":", err); return 1 }
	env, err := testutil.NewEnvironment()
	if err != nil {
		return fail("control plane", err)
	}
	cfg, err := env.Start()
	if err != nil {
		return fail("starting the control plane", err)
	}
	defer func() { _ = env.Stop() }()
	if k8sClient, err = client.New(cfg, client.Options{Scheme: testutil.Scheme()}); err != nil {
		return fail("client", err)
	}
	dir, err := os.MkdirTemp("", "kubectl-certops-test")
	if err != nil {
		return fail("temp dir", err)
	}
	defer os.RemoveAll(dir)
	if kubeconfig, err = writeKubeconfig(cfg, dir); err != nil {
		return fail("kubeconfig", err)
	}
	if connectorKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return fail("key", err)
	}
	var simUsers []graphsim.User
	for upn, id := range users {
		simUsers = append(simUsers, graphsim.User{ID: id, UserPrincipalName: upn})
	}
	sim, err = graphsim.Start(graphsim.Config{
		Tenants:      []graphsim.Tenant{{ID: tenantID, Apps: []graphsim.App{{ClientID: clientID, ClientSecret: clientSecret}}, Users: simUsers}},
		ConnectorKey: connectorKey, Limits: graphsim.Limits{Disabled: true}, Seed: 1,
	})
	if err != nil {
		return fail("graphsim", err)
	}
	defer sim.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := createConnection(ctx, "default", clientSecret); err != nil {
		return fail("connection", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: testutil.Scheme(), Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Cache: controller.CacheOptions(), Logger: log.Log,
		Controller: config.Controller{SkipNameValidation: ptr(true)}})
	if err != nil {
		return fail("manager", err)
	}
	if err := controller.Setup(ctx, mgr, controller.Options{OperatorNamespace: operatorNS, HTTPClient: sim.Client(), CreateSettle: time.Second}); err != nil {
		return fail("controllers", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(ctx) }()
	defer func() { cancel(); <-done }()
	return m.Run()
}

func ptr[T any](v T) *T { return &v }

// writeKubeconfig writes the envtest admin's credentials as a kubeconfig, with the namespace "default".
func writeKubeconfig(cfg *rest.Config, dir string) (string, error) {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin", Namespace: "default"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(dir, "kubeconfig")
	return path, clientcmd.WriteToFile(*kc, path)
}

// createConnection creates the ClusterGraphConnection name to the graphsim tenant, signing in with secret and
// open to every namespace, with its Secrets in operatorNS.
func createConnection(ctx context.Context, name, secret string) error {
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNS}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-app", Namespace: operatorNS}, Data: map[string][]byte{"clientSecret": []byte(secret)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "connector-key", Namespace: operatorNS},
			Data: map[string][]byte{"public.pem": testutil.PublicKeyPEM(&connectorKey.PublicKey)}},
		&intunev1alpha1.ClusterGraphConnection{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: intunev1alpha1.ClusterGraphConnectionSpec{
			GraphConnectionSpec: intunev1alpha1.GraphConnectionSpec{
				TenantID: tenantID, GraphEndpoint: sim.URL(), AuthorityHost: sim.URL(),
				Credential: intunev1alpha1.GraphCredential{Type: intunev1alpha1.CredentialClientSecret, ClientID: clientID,
					SecretRef: &intunev1alpha1.SecretKeyReference{Name: name + "-app", Key: "clientSecret"}},
				PfxEncryption: &intunev1alpha1.PfxEncryption{ProviderName: "Microsoft Software Key Storage Provider", KeyName: "PFXEncryptionKey",
					PaddingScheme: "oaepSha512", PublicKeyRef: &intunev1alpha1.PublicKeyReference{Kind: "Secret", Name: "connector-key", Key: "public.pem"}},
			},
			Access: &intunev1alpha1.ConnectionAccess{NamespaceSelector: &metav1.LabelSelector{}},
		}},
	} {
		if err := k8sClient.Create(ctx, obj); err != nil && !strings.Contains(err.Error(), "already exists") {
			return err
		}
	}
	return nil
}

// plugin runs kubectl certops with args against the test cluster and graphsim.
func plugin(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append(args, "--kubeconfig", kubeconfig)
	code := run(context.Background(), args, &environment{stdout: &stdout, stderr: &stderr, graphHTTP: sim.Client()})
	return stdout.String(), stderr.String(), code
}

func newNamespace(t *testing.T, name string) string {
	t.Helper()
	if err := k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

// importUser creates a PFX Secret and a UserPfxCertificate for upn in ns and waits until it is Ready.
func importUser(t *testing.T, ns, name, upn string) (*testutil.UserCertificate, *intunev1alpha1.UserPfxCertificate) {
	t.Helper()
	u, err := testutil.NewUserCertificate(upn, time.Now().Add(-time.Hour), time.Now().Add(365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	data, err := u.PFX("pw")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := k8sClient.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-pfx", Namespace: ns},
		Data: map[string][]byte{"pfx": data, "password": []byte("pw")}}); err != nil {
		t.Fatal(err)
	}
	obj := &intunev1alpha1.UserPfxCertificate{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: intunev1alpha1.UserPfxCertificateSpec{IntendedPurpose: "smimeEncryption",
			Source: intunev1alpha1.CertificateSource{Pfx: &intunev1alpha1.PfxSecretSource{SecretRef: intunev1alpha1.SecretKeyReference{Name: name + "-pfx"}}}}}
	if err := k8sClient.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	waitReason(t, obj, intunev1alpha1.ReasonImported)
	return u, obj
}

// waitReason waits until obj's Ready condition has reason, and leaves obj as last read.
func waitReason(t *testing.T, obj *intunev1alpha1.UserPfxCertificate, reason string) {
	t.Helper()
	testutil.Eventually(t, obj.Namespace+"/"+obj.Name+" Ready reason "+reason, time.Minute, func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		if ready := meta.FindStatusCondition(obj.Status.Conditions, intunev1alpha1.ConditionReady); ready == nil || ready.Reason != reason {
			return fmt.Errorf("Ready is %+v", ready)
		}
		return nil
	})
}

// row finds the table line containing every one of words, or fails.
func row(t *testing.T, table string, words ...string) string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		fields := strings.Fields(line)
		all := true
		for _, w := range words {
			if !contains(fields, w) {
				all = false
				break
			}
		}
		if all {
			return line
		}
	}
	t.Fatalf("no row with %q in:\n%s", words, table)
	return ""
}

func contains(fields []string, w string) bool {
	for _, f := range fields {
		if f == w {
			return true
		}
	}
	return false
}

func TestStatusShowsReadyReasonAndIntuneState(t *testing.T) {
	ns := newNamespace(t, "status-test")
	_, obj := importUser(t, ns, "alice-smime", "alice@contoso.com")
	// A resource that cannot import: its Ready reason says why, and it has no record.
	broken := &intunev1alpha1.UserPfxCertificate{ObjectMeta: metav1.ObjectMeta{Name: "broken", Namespace: ns},
		Spec: intunev1alpha1.UserPfxCertificateSpec{Source: intunev1alpha1.CertificateSource{
			Pfx: &intunev1alpha1.PfxSecretSource{SecretRef: intunev1alpha1.SecretKeyReference{Name: "missing"}}}}}
	if err := k8sClient.Create(context.Background(), broken); err != nil {
		t.Fatal(err)
	}
	waitReason(t, broken, intunev1alpha1.ReasonSecretNotFound)

	out, stderr, code := plugin(t, "status", "-n", ns)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(out, "NAMESPACE") || !regexp.MustCompile(`(?m)^NAMESPACE\s+KIND\s+NAME\s+READY\s+REASON\s+RECORD\s+THUMBPRINT\s+EXPIRES\s+LAST SYNC$`).MatchString(out) {
		t.Errorf("header missing:\n%s", out)
	}
	row(t, out, ns, "UserPfxCertificate", "alice-smime", "True", "Imported", obj.Status.ID, obj.Status.Thumbprint,
		obj.Status.ExpirationDateTime.UTC().Format(time.RFC3339), obj.Status.LastSyncTime.UTC().Format(time.RFC3339))
	row(t, out, ns, "UserPfxCertificate", "broken", "False", "SecretNotFound", "-")
	if n := strings.Count(out, "\n"); n != 3 {
		t.Errorf("want a header and 2 rows (only namespace %s), got:\n%s", ns, out)
	}

	out, _, code = plugin(t, "status", "-o", "json", "-A")
	var rows []resourceStatus
	if err := json.Unmarshal([]byte(out), &rows); err != nil || code != 0 {
		t.Fatalf("json: exit %d, %v:\n%s", code, err, out)
	}
	found := false
	for _, r := range rows {
		if r.Namespace == ns && r.Name == "alice-smime" {
			found = r.Kind == "UserPfxCertificate" && r.Ready == "True" && r.RecordID == obj.Status.ID && r.Expires != nil
		}
	}
	if !found {
		t.Errorf("alice-smime missing or wrong in -A -o json: %+v", rows)
	}
}

// graphClient is another tool's client of the tenant (Microsoft's PowerShell module, a former operator).
func graphClient(t *testing.T) *graph.Client {
	t.Helper()
	cred, err := graph.NewCredential(graph.CredentialConfig{Type: graph.CredentialClientSecret, TenantID: tenantID,
		ClientID: clientID, ClientSecret: clientSecret, AuthorityHost: sim.URL(), Transport: sim.Client()})
	if err != nil {
		t.Fatal(err)
	}
	gc, err := graph.New(graph.Options{GraphRoot: sim.URL(), Scope: "https://graph.microsoft.com/.default", Credential: cred, HTTPClient: sim.Client()})
	if err != nil {
		t.Fatal(err)
	}
	return gc
}

// importBehindTheOperatorsBack creates a record for upn valid from notBefore to notAfter with another tool.
func importBehindTheOperatorsBack(t *testing.T, upn string, notBefore, notAfter time.Time) string {
	t.Helper()
	u, err := testutil.NewUserCertificate(upn, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	data, err := u.PFX("pw")
	if err != nil {
		t.Fatal(err)
	}
	password, err := pfx.EncryptPassword(&connectorKey.PublicKey, "oaepSha512", "pw")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := graphClient(t).CreateUserPFXCertificate(context.Background(), &graph.UserPFXCertificate{
		Thumbprint: u.Thumbprint(), IntendedPurpose: "smimeEncryption", UserPrincipalName: upn,
		StartDateTime: u.Cert.NotBefore, ExpirationDateTime: u.Cert.NotAfter,
		ProviderName: "Microsoft Software Key Storage Provider", KeyName: "PFXEncryptionKey", PaddingScheme: "oaepSha512",
		EncryptedPfxBlob: data, EncryptedPfxPassword: password,
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec.ID
}

func TestInventoryMarksManagedUnmanagedAndExpired(t *testing.T) {
	ns := newNamespace(t, "inventory-test")
	_, carol := importUser(t, ns, "carol-smime", "carol@contoso.com")
	now := time.Now()
	valid := importBehindTheOperatorsBack(t, "dave@contoso.com", now.Add(-time.Hour), now.Add(30*24*time.Hour))
	expired := importBehindTheOperatorsBack(t, "dave@contoso.com", now.Add(-400*24*time.Hour), now.Add(-24*time.Hour))

	// Every user: carol's record is managed, dave's two are not.
	out, stderr, code := plugin(t, "inventory")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	row(t, out, "carol@contoso.com", "no", ns+"/carol-smime", carol.Status.ID)
	row(t, out, "dave@contoso.com", "no", "UNMANAGED", valid)
	row(t, out, "dave@contoso.com", "EXPIRED", "UNMANAGED", expired)

	// One user, as JSON, through the connection named explicitly.
	out, stderr, code = plugin(t, "inventory", "--user", "DAVE@contoso.com", "--connection", "ClusterGraphConnection/default", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	var inv inventory
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		t.Fatal(err, out)
	}
	if len(inv.Records) != 2 || inv.Managed != 0 || inv.Unmanaged != 2 || inv.Expired != 1 || inv.ExpiredUnmanaged != 1 || inv.TenantID != tenantID {
		t.Fatalf("dave's inventory: %+v", inv)
	}
	for _, r := range inv.Records {
		if r.Expired != (r.ID == expired) || r.Managed {
			t.Errorf("record %s: %+v", r.ID, r)
		}
	}

	out, _, code = plugin(t, "inventory", "--user", "carol@contoso.com")
	if code != 0 || !strings.Contains(out, "1 records of carol@contoso.com in tenant "+tenantID+" (through ClusterGraphConnection/default): 1 managed, 0 unmanaged, 0 expired") {
		t.Errorf("carol's summary (exit %d):\n%s", code, out)
	}

	// A connection that does not exist: a clear error.
	_, stderr, code = plugin(t, "inventory", "--connection", "GraphConnection/nope", "-n", ns)
	if code != 1 || !strings.Contains(stderr, `GraphConnection "nope" in namespace "`+ns+`" does not exist`) {
		t.Errorf("missing connection: exit %d, %s", code, stderr)
	}
}

// writes are the journal's writes to userPfxCertificates.
func writes(journal []graphsim.Entry) []string {
	var out []string
	for _, e := range journal {
		if e.Method != "GET" && strings.Contains(e.Path, "/deviceManagement/userPfxCertificates") {
			out = append(out, e.Method+" "+e.Path)
		}
	}
	return out
}

func TestReimportPushesExactlyOnce(t *testing.T) {
	ns := newNamespace(t, "reimport-test")
	_, obj := importUser(t, ns, "bob-smime", "bob@contoso.com")
	sim.ResetJournal()

	out, stderr, code := plugin(t, "reimport", "bob-smime", "-n", ns, "--wait")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	if !strings.Contains(out, "reimport requested (intune.certops.dev/reimport=") || !strings.Contains(out, "pushed (Ready Updated") {
		t.Errorf("output:\n%s", out)
	}
	if got := writes(sim.Journal()); len(got) != 1 || !strings.HasPrefix(got[0], "PATCH ") || !strings.Contains(got[0], obj.Status.ID) {
		t.Fatalf("want one PATCH of %s, got %q", obj.Status.ID, got)
	}
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	if v := obj.Annotations[intunev1alpha1.AnnotationReimport]; v == "" || obj.Status.ReimportRequested != v {
		t.Errorf("annotation %q, status.reimportRequested %q", v, obj.Status.ReimportRequested)
	}

	// Each new request is one more push (that a handled value never pushes again is the controller's test).
	if out, stderr, code = plugin(t, "reimport", "bob-smime", "-n", ns, "--wait"); code != 0 {
		t.Fatalf("second reimport: exit %d: %s\n%s", code, stderr, out)
	}
	if got := writes(sim.Journal()); len(got) != 2 {
		t.Errorf("two reimports, want two writes: %q", got)
	}

	_, stderr, code = plugin(t, "reimport", "nope", "-n", ns)
	if code != 1 || !strings.Contains(stderr, `UserPfxCertificate "nope" not found in namespace "`+ns+`"`) {
		t.Errorf("missing resource: exit %d, %s", code, stderr)
	}
	if _, _, code = plugin(t, "reimport", "-n", ns); code != 2 {
		t.Errorf("no name: exit %d, want 2", code)
	}
}

func TestCheckConnection(t *testing.T) {
	out, stderr, code := plugin(t, "check-connection", "default", "--cluster", "--operator-namespace", operatorNS)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	row(t, out, "VERDICT", "OK", "Connected:")
	row(t, out, "TENANT", tenantID)

	// A wrong client secret: the sign-in fails, whatever the operator last said.
	if err := createConnection(context.Background(), "wrong-secret", "not-the-secret"); err != nil {
		t.Fatal(err)
	}
	out, _, code = plugin(t, "check-connection", "wrong-secret", "--cluster", "--operator-namespace", operatorNS, "-o", "json")
	var check connectionCheck
	if err := json.Unmarshal([]byte(out), &check); err != nil || code != 1 {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	if check.OK || check.Reason != intunev1alpha1.ReasonCredentialInvalid || !strings.Contains(check.Message, "sign-in") {
		t.Errorf("wrong secret: %+v", check)
	}

	// The Secrets are looked for in --operator-namespace.
	out, _, code = plugin(t, "check-connection", "default", "--cluster", "--operator-namespace", "elsewhere")
	if code != 1 || !regexp.MustCompile(`VERDICT\s+FAILED SecretNotFound: .*"elsewhere"`).MatchString(out) {
		t.Errorf("wrong operator namespace: exit %d\n%s", code, out)
	}
	// A GraphConnection that does not exist.
	out, _, code = plugin(t, "check-connection", "nope", "-n", "default")
	if code != 1 || !strings.Contains(out, "FAILED ConnectionNotFound") {
		t.Errorf("missing connection: exit %d\n%s", code, out)
	}
	if _, _, code = plugin(t, "check-connection", "default", "--cluster", "-n", "x"); code != 2 {
		t.Errorf("--cluster with -n: exit %d, want 2", code)
	}
}
