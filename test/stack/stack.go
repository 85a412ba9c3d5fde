// Package stack runs the whole system from real binaries on this machine: a local control plane
// (kube-apiserver and etcd built by hack/control-plane.sh), graphsim as its own process, and the operator
// binary as its own process under an identity bound only to the generated RBAC. The demo, the e2e tests
// and the benchmarks share it.
package stack

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

// The tenant graphsim serves; the ids are those config/samples refer to.
const (
	TenantID              = "6f1c3f0e-2a4b-4c5d-8e9f-0a1b2c3d4e5f"
	ClientID              = "3b2a1c0d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	AliceID               = "7d0b4f3c-1a2e-4b5c-9d8e-7f6a5b4c3d2e"
	BobID                 = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"
	CarolID               = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
	DeviceConfigurationID = "0c6d3b1a-7f2e-4d4c-9b8a-1e2f3a4b5c6d"
	PfxUserCertificateID  = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
	HostIdentityClientID  = "1f2e3d4c-5b6a-4978-8a6b-5c4d3e2f1a0b"
	OperatorNamespace     = "intune-cert-operator-system"
	// OperatorUser is the identity the operator runs as, bound only to config/rbac.
	OperatorUser = "system:serviceaccount:intune-cert-operator-system:intune-cert-operator-controller-manager"
)

// Options shape a stack.
type Options struct {
	// Dir holds kubeconfigs, the CA, graphsim's config and state, and every log.
	Dir string
	// Faults and Limits configure graphsim from the start (zero Limits = Intune's published limits).
	Faults graphsim.Faults
	Limits graphsim.Limits
	// ExtraUsers are added to the tenant besides alice and bob.
	ExtraUsers []graphsim.User
	// OperatorArgs are added to the operator's command line, after the stack's own (so they win). The stack
	// passes --allowed-endpoint-hosts with graphsim's host, as an administrator lists a private endpoint.
	OperatorArgs []string
	// OperatorEnv is added to the operator's environment (e.g. AZURE_* variables of an ambient identity).
	OperatorEnv []string
	// NoDefaultConnection leaves out the ClusterGraphConnection "default" (config/samples brings one).
	NoDefaultConnection bool
	// BinDir is where the operator and graphsim are built (default: the repository's bin/). A directory
	// of its own keeps a long run from restarting a binary another run rebuilt meanwhile.
	BinDir string
	// GraphsimInMemory keeps graphsim's records in memory only: it saves its whole state after every
	// write otherwise, which dominates at thousands of records. RestartGraphsim then starts empty.
	GraphsimInMemory bool
}

// Stack is a running system.
type Stack struct {
	Dir             string
	Env             *envtest.Environment
	Client          client.Client // cluster admin
	AdminKubeconfig string
	Kubectl         string // path of the kubectl binary hack/control-plane.sh built

	GraphsimURL string
	CAFile      string // graphsim's CA, which the operator trusts
	// APIServerCAFile is the API server's serving CA; ServiceAccountIssuer its service-account issuer, which
	// graphsim trusts for the federated credentials TrustServiceAccount adds.
	APIServerCAFile      string
	ServiceAccountIssuer string
	ClientSecret         string // the app's client secret, random per stack
	ConnectorKey         *rsa.PrivateKey
	Graphsim             *Process
	Operator             *Process
	MetricsURL           string

	opts               Options
	graphsimConfig     graphsim.FileConfig
	operatorKubeconfig string
	bin                string
	replicas           []*Replica // started by StartReplica, stopped with the stack
	attackers          []*Attacker
	extraCAFiles       []string   // trusted by the operator besides graphsim's CA
	logFiles           []*os.File // of the control plane, closed by Stop
}

// Start builds the binaries and starts everything. Call Stop when done, also after an error.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	if o.Dir, err = filepath.Abs(o.Dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	s = &Stack{Dir: o.Dir, opts: o, bin: filepath.Join(testutil.RepoRoot(), "bin")}
	if o.BinDir != "" {
		s.bin = o.BinDir
	}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if err := s.build(ctx); err != nil {
		return s, err
	}
	if err := s.startControlPlane(); err != nil {
		return s, err
	}
	if err := s.startGraphsim(); err != nil {
		return s, err
	}
	if err := s.setUpTenantConnection(ctx); err != nil {
		return s, err
	}
	return s, s.StartOperator()
}

// build compiles the operator and graphsim into bin/.
func (s *Stack) build(ctx context.Context) error {
	root := testutil.RepoRoot()
	if err := os.MkdirAll(s.bin, 0o755); err != nil {
		return err
	}
	if _, err := run(ctx, root, nil, "go", "build", "-o", filepath.Join(s.bin, "manager"), "."); err != nil {
		return err
	}
	_, err := run(ctx, root, nil, "go", "build", "-o", filepath.Join(s.bin, "graphsim"), "./test/graphsim/cmd/graphsim")
	return err
}

func (s *Stack) startControlPlane() error {
	env, err := testutil.NewEnvironment()
	if err != nil {
		return err
	}
	// etcd's data and the API server's certificates live in the stack's directory rather than in
	// directories envtest removes on Stop, so RestartControlPlane brings back the same cluster with the
	// same CA: every kubeconfig stays valid.
	etcdDir, certDir := filepath.Join(s.Dir, "etcd"), filepath.Join(s.Dir, "apiserver")
	for _, dir := range []string{etcdDir, certDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	etcdLog, err := os.OpenFile(filepath.Join(s.Dir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	apiLog, err := os.OpenFile(filepath.Join(s.Dir, "kube-apiserver.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	s.logFiles = append(s.logFiles, etcdLog, apiLog)
	// A restart or teardown need not wait 20 s for kube-apiserver to drain watches it no longer serves, and
	// on a busy 2-core machine a (re)start may take longer than envtest's default 20 s.
	env.ControlPlaneStopTimeout = 5 * time.Second
	env.ControlPlaneStartTimeout = time.Minute
	env.ControlPlane.Etcd = &envtest.Etcd{DataDir: etcdDir, Out: etcdLog, Err: etcdLog}
	env.ControlPlane.APIServer = &envtest.APIServer{CertDir: certDir, Out: apiLog, Err: apiLog}
	testutil.ServeServiceAccountIssuer(env.ControlPlane.APIServer)
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("starting the control plane: %w", err)
	}
	// graphsim, as Entra ID, reads the cluster's service-account issuer to verify federated sign-ins.
	s.APIServerCAFile = filepath.Join(s.Dir, "kube-ca.pem")
	if err := os.WriteFile(s.APIServerCAFile, cfg.CAData, 0o644); err != nil {
		return err
	}
	s.Env = env
	s.Kubectl = filepath.Join(env.BinaryAssetsDirectory, "kubectl")
	if s.Client, err = client.New(cfg, client.Options{Scheme: testutil.Scheme()}); err != nil {
		return err
	}
	s.AdminKubeconfig = filepath.Join(s.Dir, "admin.kubeconfig")
	if err := os.WriteFile(s.AdminKubeconfig, env.KubeConfig, 0o600); err != nil {
		return err
	}
	user, err := env.AddUser(envtest.User{Name: OperatorUser}, nil)
	if err != nil {
		return err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	s.operatorKubeconfig = filepath.Join(s.Dir, "operator.kubeconfig")
	if err := os.WriteFile(s.operatorKubeconfig, kubeconfig, 0o600); err != nil {
		return err
	}
	if s.ServiceAccountIssuer, err = testutil.PublishServiceAccountIssuer(context.Background(), cfg, s.Client); err != nil {
		return err
	}
	return s.bindOperatorRBAC(context.Background())
}

// bindOperatorRBAC grants the operator's identity exactly the generated roles of config/rbac.
func (s *Stack) bindOperatorRBAC(ctx context.Context) error {
	if err := s.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: OperatorNamespace}}); err != nil {
		return err
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: OperatorUser}}
	// The controllers' role, and the metrics endpoint's reviews of its scrapers.
	for _, file := range []string{"role.yaml", "metrics_auth_role.yaml"} {
		role := &rbacv1.ClusterRole{}
		if err := readYAML(filepath.Join(testutil.RepoRoot(), "config", "rbac", file), role); err != nil {
			return err
		}
		if err := s.Client.Create(ctx, role); err != nil {
			return err
		}
		if err := s.Client.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name + "-binding"},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name}, Subjects: subject}); err != nil {
			return err
		}
	}
	election := &rbacv1.Role{}
	if err := readYAML(filepath.Join(testutil.RepoRoot(), "config", "rbac", "leader_election_role.yaml"), election); err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	election.Namespace = OperatorNamespace
	if err := s.Client.Create(ctx, election); err != nil {
		return err
	}
	return s.Client.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "leader-election-rolebinding", Namespace: OperatorNamespace},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: election.Name}, Subjects: subject})
}

func readYAML(path string, into any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return yaml.Unmarshal(data, into)
}

// startGraphsim writes graphsim's config (tenant, app, users, a device configuration and a connector key)
// and starts it as its own process with its state in a file, so a restart keeps the records.
func (s *Stack) startGraphsim() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	s.ConnectorKey = key
	keyFile := filepath.Join(s.Dir, "connector-key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return err
	}
	secret := make([]byte, 24)
	_, _ = rand.Read(secret)
	s.ClientSecret = "cs~" + hex.EncodeToString(secret)
	users := append([]graphsim.User{
		{ID: AliceID, UserPrincipalName: "alice@contoso.com", DisplayName: "Alice Example"},
		{ID: BobID, UserPrincipalName: "bob@contoso.com", DisplayName: "Bob Example"},
		{ID: CarolID, UserPrincipalName: "carol@contoso.com", DisplayName: "Carol Example"},
	}, s.opts.ExtraUsers...)
	cfg := graphsim.FileConfig{
		Tenants: []graphsim.FileTenant{{
			ID: TenantID,
			Apps: []graphsim.FileApp{{App: graphsim.App{ClientID: ClientID, ClientSecret: s.ClientSecret}},
				// The identity of the host the operator runs on (ManagedIdentity), never a namespace's to use.
				{App: graphsim.App{ClientID: HostIdentityClientID, ManagedIdentity: true}}},
			Users:                users,
			DeviceConfigurations: []graphsim.DeviceConfiguration{{ID: DeviceConfigurationID, ProfileType: "iosScep"}},
		}},
		ConnectorKeyFile: keyFile,
		Limits:           s.opts.Limits,
		Faults:           s.opts.Faults,
		Seed:             1,
		StateFile:        filepath.Join(s.Dir, "graphsim-state.json"),
	}
	if s.opts.GraphsimInMemory {
		cfg.StateFile = ""
	}
	cfg.OIDCIssuerCAFile = s.APIServerCAFile
	s.graphsimConfig = cfg
	if err := s.writeGraphsimConfig(); err != nil {
		return err
	}
	s.CAFile = filepath.Join(s.Dir, "graphsim-ca.pem")
	return s.RestartGraphsim()
}

func (s *Stack) writeGraphsimConfig() error {
	data, err := yaml.Marshal(s.graphsimConfig)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.Dir, "graphsim.yaml"), data, 0o600)
}

// TrustServiceAccount adds a federated credential for a ServiceAccount of this cluster to the app, as an
// administrator does in Entra ID, and restarts graphsim to load it (records and address stay; an in-memory
// graphsim starts empty).
func (s *Stack) TrustServiceAccount(namespace, name string) error {
	app := &s.graphsimConfig.Tenants[0].Apps[0]
	app.FederatedCredentials = append(app.FederatedCredentials, graphsim.FederatedCredential{
		Issuer: s.ServiceAccountIssuer, Subject: "system:serviceaccount:" + namespace + ":" + name})
	if err := s.writeGraphsimConfig(); err != nil {
		return err
	}
	return s.RestartGraphsim()
}

// RestartGraphsim (re)starts graphsim on its address with its state file.
func (s *Stack) RestartGraphsim() error {
	s.Graphsim.Stop()
	addr := "127.0.0.1:0"
	if s.GraphsimURL != "" {
		addr = strings.TrimPrefix(s.GraphsimURL, "https://")
	}
	p, line, err := startProcess("graphsim", filepath.Join(s.Dir, "graphsim.log"), filepath.Join(s.bin, "graphsim"),
		[]string{"--config", filepath.Join(s.Dir, "graphsim.yaml"), "--ca-file", s.CAFile, "--addr", addr}, nil, "graphsim listening on ")
	if err != nil {
		return err
	}
	s.Graphsim = p
	s.GraphsimURL = strings.TrimSpace(strings.TrimPrefix(line, "graphsim listening on "))
	return nil
}

// setUpTenantConnection creates the operator namespace's Secrets and the ClusterGraphConnection "default"
// that signs in to graphsim with the client-secret flow.
func (s *Stack) setUpTenantConnection(ctx context.Context) error {
	objs := []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "graph-app", Namespace: OperatorNamespace},
			Data: map[string][]byte{"clientSecret": []byte(s.ClientSecret)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "intune-connector-key", Namespace: OperatorNamespace},
			Data: map[string][]byte{"public.pem": testutil.PublicKeyPEM(&s.ConnectorKey.PublicKey)}},
	}
	if !s.opts.NoDefaultConnection {
		objs = append(objs, &intunev1alpha1.ClusterGraphConnection{ObjectMeta: metav1.ObjectMeta{Name: "default"},
			Spec: OpenToEveryNamespace(s.ConnectionSpec("graph-app", "intune-connector-key"))})
	}
	for _, obj := range objs {
		if err := s.Client.Create(ctx, obj); err != nil {
			return err
		}
	}
	return nil
}

// ConnectionSpec is a connection to graphsim's tenant with a client secret from secretName and the
// connector public key from keySecretName.
func (s *Stack) ConnectionSpec(secretName, keySecretName string) intunev1alpha1.GraphConnectionSpec {
	return intunev1alpha1.GraphConnectionSpec{
		TenantID: TenantID, Cloud: "Public", GraphEndpoint: s.GraphsimURL, AuthorityHost: s.GraphsimURL,
		Credential: intunev1alpha1.GraphCredential{Type: intunev1alpha1.CredentialClientSecret, ClientID: ClientID,
			SecretRef: &intunev1alpha1.SecretKeyReference{Name: secretName, Key: "clientSecret"}},
		WriteRequestsPer20Seconds: 95,
		PfxEncryption: &intunev1alpha1.PfxEncryption{ProviderName: "Microsoft Software Key Storage Provider", KeyName: "PFXEncryptionKey",
			PaddingScheme: "oaepSha512", PublicKeyRef: &intunev1alpha1.PublicKeyReference{Kind: "Secret", Name: keySecretName, Key: "public.pem"}},
	}
}

// OpenToEveryNamespace is a ClusterGraphConnection spec that every namespace may use for every kind, with
// certificates that match their user (the tests' own connection; config/samples names its namespaces).
func OpenToEveryNamespace(spec intunev1alpha1.GraphConnectionSpec) intunev1alpha1.ClusterGraphConnectionSpec {
	return intunev1alpha1.ClusterGraphConnectionSpec{GraphConnectionSpec: spec,
		Access: &intunev1alpha1.ConnectionAccess{NamespaceSelector: &metav1.LabelSelector{},
			Kinds: []intunev1alpha1.AccessKind{"UserPfxCertificate", "ManagedDeviceCertificateState", "PfxUserCertificate", "PfxRecryptionRequest"}}}
}

// StartOperator starts the operator binary as the RBAC-bound identity, trusting graphsim's CA through
// SSL_CERT_FILE like any private endpoint, and waits until it reports ready.
func (s *Stack) StartOperator() error {
	r, err := s.startOperatorProcess("operator")
	if err != nil {
		return err
	}
	s.Operator, s.MetricsURL = r.Process, r.MetricsURL
	return nil
}

// startOperatorProcess starts one operator process logging to <name>.log, with its own metrics and
// health ports, and waits until it reports ready (a replica waiting for the leader lease is ready too).
func (s *Stack) startOperatorProcess(name string, extraArgs ...string) (*Replica, error) {
	metrics, health := freePort(), freePort()
	args := append([]string{
		"--kubeconfig", s.operatorKubeconfig,
		"--operator-namespace", OperatorNamespace,
		"--metrics-bind-address", metrics, "--metrics-secure=false",
		"--health-probe-bind-address", health,
		"--allowed-endpoint-hosts", strings.TrimPrefix(s.GraphsimURL, "https://"),
	}, append(slices.Clone(s.opts.OperatorArgs), extraArgs...)...)
	scheme := "http" // the last --metrics-secure wins
	for _, a := range args {
		switch a {
		case "--metrics-secure=false":
			scheme = "http"
		case "--metrics-secure", "--metrics-secure=true":
			scheme = "https"
		}
	}
	env, err := DeploymentEnv(testutil.RepoRoot())
	if err != nil {
		return nil, err
	}
	trust, err := s.trustBundle()
	if err != nil {
		return nil, err
	}
	p, _, err := startProcess(name, filepath.Join(s.Dir, name+".log"), filepath.Join(s.bin, "manager"),
		args, append(append(env, "SSL_CERT_FILE="+trust), s.opts.OperatorEnv...), "")
	if err != nil {
		return nil, err
	}
	r := &Replica{Process: p, MetricsURL: scheme + "://" + metrics + "/metrics"}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if res, err := http.Get("http://" + health + "/readyz"); err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		if !p.Running() {
			return nil, fmt.Errorf("the operator exited at start (see %s)", p.LogPath)
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.Kill()
	return nil, fmt.Errorf("the operator was not ready within a minute (see %s)", p.LogPath)
}

// RestartOperator stops the operator and starts it again with args in place of Options.OperatorArgs (and
// env, when given, in place of Options.OperatorEnv).
func (s *Stack) RestartOperator(args []string, env ...string) error {
	s.Operator.Stop()
	s.opts.OperatorArgs = args
	if env != nil {
		s.opts.OperatorEnv = env
	}
	return s.StartOperator()
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Stop ends every process the stack started.
func (s *Stack) Stop() {
	for _, r := range s.replicas {
		r.Stop()
	}
	s.Operator.Stop()
	s.Graphsim.Stop()
	for _, a := range s.attackers {
		a.Process.Stop()
	}
	if s.Env != nil {
		_ = s.Env.Stop()
	}
	for _, f := range s.logFiles {
		_ = f.Close()
	}
}

// KubectlRun runs kubectl with the admin kubeconfig.
func (s *Stack) KubectlRun(ctx context.Context, args ...string) (string, error) {
	return run(ctx, testutil.RepoRoot(), nil, s.Kubectl, append([]string{"--kubeconfig", s.AdminKubeconfig}, args...)...)
}

// Sim calls graphsim's admin surface (/_sim/...) and decodes the JSON answer into out (if not nil).
func (s *Stack) Sim(method, path string, body any, out any) error {
	return callSim(s.GraphsimURL, s.CAFile, method, path, body, out)
}

// callSim calls the admin surface of the graphsim at baseURL, trusting caFile.
func callSim(baseURL, caFile, method, path string, body any, out any) error {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		reader = strings.NewReader(string(data))
	}
	req, err := http.NewRequest(method, baseURL+"/_sim/"+path, reader)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := simClient(caFile).Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		return fmt.Errorf("graphsim %s %s: %s: %s", method, path, res.Status, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func simClient(caFile string) *http.Client {
	pool := x509.NewCertPool()
	if ca, err := os.ReadFile(caFile); err == nil {
		pool.AppendCertsFromPEM(ca)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig(pool)}}
}

// Records is graphsim's /_sim/records answer for the stack's tenant.
func (s *Stack) Records() (graphsim.AdminTenantRecords, error) {
	var all graphsim.AdminRecords
	if err := s.Sim(http.MethodGet, "records", nil, &all); err != nil {
		return graphsim.AdminTenantRecords{}, err
	}
	return all.Tenants[TenantID], nil
}

// Journal is graphsim's request journal.
func (s *Stack) Journal() ([]graphsim.Entry, error) {
	var entries []graphsim.Entry
	err := s.Sim(http.MethodGet, "journal", nil, &entries)
	return entries, err
}
