package controller

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

// A harness is one tenant in graphsim, a ClusterGraphConnection to it, a namespace for the test's
// resources, and the operator's controllers running in a manager of their own, watching only those.
type harness struct {
	t            *testing.T
	ctx          context.Context
	sim          *graphsim.Server
	ns           string // the test's namespace
	ns2          string // a second namespace, with a GraphConnection of its own to tenant B
	operatorNS   string // where the ClusterGraphConnection's Secrets live
	tenantID     string // tenant A, reached through the ClusterGraphConnection
	clientID     string
	tenantB      string // tenant B, reached through the GraphConnection "tenant-b" in ns2
	connection   string // ClusterGraphConnection name
	connectorKey *rsa.PrivateKey
	users        map[string]string // UPN -> object id
}

type harnessOptions struct {
	resync time.Duration
	limits graphsim.Limits
	// clock is the operator's clock (a fake one moves time for expiry tests); nil = the real clock.
	clock clock.PassiveClock
	// createSettle is how long a create of unknown outcome is looked for in lists; 0 = one second, so that
	// tests of a create that did not happen need not wait (tests with list lag set more than the lag).
	createSettle time.Duration
}

const waitLimit = 60 * time.Second

// harnessServiceAccount is the ServiceAccount of a harness's namespace that tenant A's app trusts.
const harnessServiceAccount = "intune-graph"

var (
	testConnectorKey *rsa.PrivateKey
	testLogger       = zap.New(zap.UseDevMode(true), zap.WriteTo(testLogSink))
)

func connectorKey(t *testing.T) *rsa.PrivateKey {
	if testConnectorKey == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		testConnectorKey = k
	}
	return testConnectorKey
}

func newGUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func newHarness(t *testing.T, opts harnessOptions) *harness {
	t.Helper()
	if opts.resync == 0 {
		opts.resync = time.Hour
	}
	if opts.limits == (graphsim.Limits{}) {
		opts.limits = graphsim.Limits{Disabled: true}
	}
	h := &harness{t: t, ctx: context.Background(), tenantID: newGUID(), clientID: newGUID(), tenantB: newGUID(), connectorKey: connectorKey(t),
		users: map[string]string{"alice@contoso.com": newGUID(), "bob@contoso.com": newGUID()}}
	var users []graphsim.User
	for upn, id := range h.users {
		users = append(users, graphsim.User{ID: id, UserPrincipalName: upn})
	}
	h.ns = newNamespace(t)
	h.ns2 = newNamespace(t)
	h.operatorNS = newNamespace(t)
	// Tenant A's app also trusts the ServiceAccount harnessServiceAccount of the test's namespace, as an
	// administrator federates it in Entra ID; graphsim checks its tokens against this cluster's issuer.
	federated := []graphsim.FederatedCredential{{Issuer: serviceAccountIssuer, Subject: "system:serviceaccount:" + h.ns + ":" + harnessServiceAccount}}
	sim, err := graphsim.Start(graphsim.Config{
		Tenants: []graphsim.Tenant{
			{ID: h.tenantID, Apps: []graphsim.App{{ClientID: h.clientID, ClientSecret: "s3cr3t-client-value", FederatedCredentials: federated}}, Users: users},
			{ID: h.tenantB, Apps: []graphsim.App{{ClientID: h.clientID, ClientSecret: "tenant-b-s3cr3t"}}, Users: users},
		},
		ConnectorKey:    h.connectorKey,
		Limits:          opts.limits,
		Seed:            1,
		OIDCIssuerRoots: apiServerRoots(),
	})
	if err != nil {
		t.Fatalf("starting graphsim: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	h.sim = sim
	h.connection = h.createClusterConnection("s3cr3t-client-value")
	h.createNamespacedConnection()

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 testutil.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  CacheOptions(h.ns, h.ns2, h.operatorNS), // the operator's own, trimmed as in production
		Controller:             config.Controller{SkipNameValidation: ptr(true)},
		Logger:                 testLogger,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(log.IntoContext(context.Background(), testLogger))
	if opts.createSettle == 0 {
		opts.createSettle = time.Second
	}
	if err := Setup(ctx, mgr, Options{OperatorNamespace: h.operatorNS, ResyncPeriod: opts.resync, Clock: opts.clock, CreateSettle: opts.createSettle,
		MaxConcurrentReconciles: 2, HTTPClient: sim.Client(),
		// As an administrator lists a private endpoint: the namespaced connection signs in to graphsim.
		ConnectionPolicy: connection.Policy{AllowedEndpointHosts: []string{strings.TrimPrefix(sim.URL(), "https://")}}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

func ptr[T any](v T) *T { return &v }

// createClusterConnection creates a ClusterGraphConnection to the harness tenant with a client secret.
func (h *harness) createClusterConnection(clientSecret string) string {
	h.t.Helper()
	h.apply(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "graph-app", Namespace: h.operatorNS},
		Data: map[string][]byte{"clientSecret": []byte(clientSecret)}})
	h.apply(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "connector-key", Namespace: h.operatorNS},
		Data: map[string][]byte{"public.pem": testutil.PublicKeyPEM(&h.connectorKey.PublicKey)}})
	conn := &intunev1alpha1.ClusterGraphConnection{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "conn-"},
		Spec:       h.clusterConnectionSpec(),
	}
	if err := k8sClient.Create(h.ctx, conn); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), conn) })
	return conn.Name
}

// createNamespacedConnection creates the GraphConnection "tenant-b" in ns2, with its Secrets there.
func (h *harness) createNamespacedConnection() {
	h.t.Helper()
	h.apply(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "graph-app-b", Namespace: h.ns2},
		Data: map[string][]byte{"clientSecret": []byte("tenant-b-s3cr3t")}})
	h.apply(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "connector-key-b", Namespace: h.ns2},
		Data: map[string][]byte{"public.pem": testutil.PublicKeyPEM(&h.connectorKey.PublicKey)}})
	conn := &intunev1alpha1.GraphConnection{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant-b", Namespace: h.ns2},
		Spec:       h.connectionSpec(h.tenantB, "graph-app-b", "connector-key-b"),
	}
	if err := k8sClient.Create(h.ctx, conn); err != nil {
		h.t.Fatal(err)
	}
}

// clusterConnectionSpec is the harness ClusterGraphConnection to tenant A, open to the harness namespaces for
// every kind.
func (h *harness) clusterConnectionSpec() intunev1alpha1.ClusterGraphConnectionSpec {
	return intunev1alpha1.ClusterGraphConnectionSpec{
		GraphConnectionSpec: h.connectionSpec(h.tenantID, "graph-app", "connector-key"),
		Access: &intunev1alpha1.ConnectionAccess{Namespaces: []string{h.ns, h.ns2},
			Kinds: []intunev1alpha1.AccessKind{"UserPfxCertificate", "ManagedDeviceCertificateState", "PfxUserCertificate", "PfxRecryptionRequest"}},
	}
}

func (h *harness) connectionSpec(tenantID, secretName, keySecretName string) intunev1alpha1.GraphConnectionSpec {
	return intunev1alpha1.GraphConnectionSpec{
		TenantID:      tenantID,
		GraphEndpoint: h.sim.URL(),
		AuthorityHost: h.sim.URL(),
		Credential: intunev1alpha1.GraphCredential{Type: intunev1alpha1.CredentialClientSecret, ClientID: h.clientID,
			SecretRef: &intunev1alpha1.SecretKeyReference{Name: secretName, Key: "clientSecret"}},
		PfxEncryption: &intunev1alpha1.PfxEncryption{
			ProviderName:  "Microsoft Software Key Storage Provider",
			KeyName:       "PFXEncryptionKey",
			PaddingScheme: "oaepSha512",
			PublicKeyRef:  &intunev1alpha1.PublicKeyReference{Kind: "Secret", Name: keySecretName, Key: "public.pem"},
		},
	}
}

// apply creates obj, or replaces the existing object's data/spec.
func (h *harness) apply(obj client.Object) {
	h.t.Helper()
	err := k8sClient.Create(h.ctx, obj)
	if err == nil {
		return
	}
	existing := obj.DeepCopyObject().(client.Object)
	if getErr := k8sClient.Get(h.ctx, client.ObjectKeyFromObject(obj), existing); getErr != nil {
		h.t.Fatalf("creating %s: %v", obj.GetName(), err)
	}
	obj.SetResourceVersion(existing.GetResourceVersion())
	if err := k8sClient.Update(h.ctx, obj); err != nil {
		h.t.Fatalf("updating %s: %v", obj.GetName(), err)
	}
}

// newUser issues a certificate for upn valid now.
func (h *harness) newUser(upn string) *testutil.UserCertificate {
	h.t.Helper()
	u, err := testutil.NewUserCertificate(upn, time.Now().Add(-time.Hour), time.Now().Add(365*24*time.Hour))
	if err != nil {
		h.t.Fatal(err)
	}
	return u
}

// pfxSecret writes a Secret with the user's PFX and its password into namespace.
func (h *harness) pfxSecret(namespace, name string, u *testutil.UserCertificate, password string) {
	h.t.Helper()
	data, err := u.PFX(password)
	if err != nil {
		h.t.Fatal(err)
	}
	h.apply(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Data: map[string][]byte{"pfx": data, "password": []byte(password)}})
}

func (h *harness) tlsSecret(name string, u *testutil.UserCertificate) {
	h.t.Helper()
	h.apply(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: u.CertPEM(), corev1.TLSPrivateKeyKey: u.KeyPEM()}})
}

// userPfx returns a UserPfxCertificate reading the PFX Secret secretName through the harness connection.
func (h *harness) userPfx(name, secretName string) *intunev1alpha1.UserPfxCertificate {
	return &intunev1alpha1.UserPfxCertificate{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: intunev1alpha1.UserPfxCertificateSpec{
			ConnectionRef:   &intunev1alpha1.ConnectionReference{Kind: "ClusterGraphConnection", Name: h.connection},
			IntendedPurpose: "smimeEncryption",
			Source:          intunev1alpha1.CertificateSource{Pfx: &intunev1alpha1.PfxSecretSource{SecretRef: intunev1alpha1.SecretKeyReference{Name: secretName}}},
		},
	}
}

// eventually polls check until it returns nil, failing the test with check's last error after waitLimit.
// The limit only bounds a hung test: nothing asserts how fast anything happens.
func (h *harness) eventually(what string, check func() error) {
	h.t.Helper()
	testutil.Eventually(h.t, what, waitLimit, check)
}

// logMark is where the operator's log stands now, for waitPass.
// waitConnectionReady waits until the harness's ClusterGraphConnection checked its sign-in, so that faults set
// afterwards hit the resources' calls only.
func (h *harness) waitConnectionReady() {
	h.t.Helper()
	conn := &intunev1alpha1.ClusterGraphConnection{ObjectMeta: metav1.ObjectMeta{Name: h.connection}}
	h.waitReady(conn, func() []metav1.Condition { return conn.Status.Conditions }, metav1.ConditionTrue, intunev1alpha1.ReasonConnected)
}

func (h *harness) logMark() int { return len(testLogSink.String()) }

// reconcileIDPattern finds the reconcile id controller-runtime puts on every line of one pass.
var reconcileIDPattern = regexp.MustCompile(`"reconcileID": "([^"]+)"`)

// waitPass is the barrier after which anything a pass would do has been done: it waits until a pass of obj
// that started after mark (the operator's log, logMark) has finished. It proves that a pass ran, where a
// sleep would only hope so.
func (h *harness) waitPass(obj client.Object, mark int) {
	h.t.Helper()
	self := fmt.Sprintf(`"namespace": %q, "name": %q`, obj.GetNamespace(), obj.GetName())
	h.eventually("a pass of "+obj.GetName()+" to finish", func() error {
		lines := strings.Split(testLogSink.String()[mark:], "\n")
		for i, line := range lines {
			if !strings.Contains(line, "Pass started") || !strings.Contains(line, self) {
				continue
			}
			id := reconcileIDPattern.FindStringSubmatch(line)
			for _, later := range lines[i+1:] {
				if id != nil && strings.Contains(later, "Pass finished") && strings.Contains(later, id[0]) {
					return nil
				}
			}
		}
		return fmt.Errorf("no pass of %s started after the mark has finished yet", obj.GetName())
	})
}

// get reads obj's current state.
func (h *harness) get(obj client.Object) {
	h.t.Helper()
	if err := k8sClient.Get(h.ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		h.t.Fatal(err)
	}
}

// update reads obj, applies change and writes it, again from a fresh read when a controller wrote the object
// in between: the controllers write status and finalizers while a test runs.
func (h *harness) update(obj client.Object, change func()) {
	h.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8sClient.Get(h.ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change()
		return k8sClient.Update(h.ctx, obj)
	})
	if err != nil {
		h.t.Fatalf("updating %s: %v", obj.GetName(), err)
	}
}

// waitReady waits until the resource's Ready condition has the given status and reason, for its current
// generation, and returns the condition.
func (h *harness) waitReady(obj client.Object, conditions func() []metav1.Condition, status metav1.ConditionStatus, reason string) metav1.Condition {
	h.t.Helper()
	var got metav1.Condition
	h.eventually(fmt.Sprintf("%s Ready=%s/%s", obj.GetName(), status, reason), func() error {
		if err := k8sClient.Get(h.ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		c := meta.FindStatusCondition(conditions(), intunev1alpha1.ConditionReady)
		if c == nil {
			return fmt.Errorf("no Ready condition yet")
		}
		got = *c
		if c.Status != status || c.Reason != reason || c.ObservedGeneration != obj.GetGeneration() {
			return fmt.Errorf("Ready=%s/%s (generation %d of %d): %s", c.Status, c.Reason, c.ObservedGeneration, obj.GetGeneration(), c.Message)
		}
		return nil
	})
	return got
}

// graphCalls is the journal of Graph requests (sign-in excluded) since mark, as "METHOD path" lines with
// the query and the ids cut off where they vary.
func (h *harness) graphCalls(mark int) []string {
	var calls []string
	for _, e := range h.sim.Journal()[mark:] {
		// Sign-in and the connections' own checks (one record, $top=1) are not the resources' calls.
		if !strings.HasPrefix(e.Path, "/beta/") || strings.Contains(e.Path, "top=1") {
			continue
		}
		path, _, _ := strings.Cut(e.Path, "?")
		calls = append(calls, fmt.Sprintf("%s %s %d", e.Method, strings.TrimPrefix(path, "/beta"), e.Status))
	}
	return calls
}

func (h *harness) journalMark() int { return len(h.sim.Journal()) }

// graphWrites counts POST/PATCH/DELETE requests since mark.
func (h *harness) graphWrites(mark int) int {
	n := 0
	for _, c := range h.graphCalls(mark) {
		if !strings.HasPrefix(c, "GET ") {
			n++
		}
	}
	return n
}

func (h *harness) waitEvent(obj client.Object, kind, reason string) {
	h.t.Helper()
	h.eventually("event "+reason+" on "+obj.GetName(), func() error {
		list := &eventsv1.EventList{}
		if err := k8sClient.List(h.ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
			return err
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Name == obj.GetName() && e.Regarding.Kind == kind {
				if e.Reason == reason {
					return nil
				}
				seen = append(seen, e.Reason)
			}
		}
		return fmt.Errorf("events so far: %v", seen)
	})
}

// syncBuffer collects the operator's log output, for the leak checks.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var testLogSink = &syncBuffer{}
