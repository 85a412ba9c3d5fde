// Package connection turns GraphConnection and ClusterGraphConnection resources into ready Graph clients,
// cached per connection and rebuilt when the connection or its credential Secret changes.
package connection

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"golang.org/x/time/rate"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/fairshare"
	"github.com/certops/intune-cert-operator/internal/graph"
	"github.com/certops/intune-cert-operator/internal/pfx"
)

// DefaultName is the ClusterGraphConnection used by resources without a connectionRef.
const DefaultName = "default"

// DefaultWritesPer20Seconds stays just under Intune's 100 writes per 20 s per application.
const DefaultWritesPer20Seconds = 95

// Connection is a resolved connection: a Graph client and the defaults resources inherit.
type Connection struct {
	// Ref is how the connection is named, e.g. "ClusterGraphConnection/default".
	Ref      string
	TenantID string
	Graph    *graph.Client
	// Encryption is the connection's default connector key (may be empty).
	Encryption intunev1alpha1.PfxEncryption
	// SecretNamespace is where the connection's Secrets and ConfigMaps live.
	SecretNamespace string
	// Cluster is the ClusterGraphConnection's name ("" for a GraphConnection), and Access its access rules
	// as read for this pass (nil: only the operator's namespace may use it).
	Cluster string
	Access  *intunev1alpha1.ConnectionAccess
}

// Error says why a connection cannot be used; Reason goes into the resource's Ready condition.
type Error struct {
	Reason  string
	Message string
}

func (e *Error) Error() string { return e.Message }

// ConditionReason, ConditionMessage and Terminal make an Error the controllers' reasoned failure.
func (e *Error) ConditionReason() string  { return e.Reason }
func (e *Error) ConditionMessage() string { return e.Message }

// Terminal says whether the failure waits for a change of a spec or a Secret (which the watches deliver):
// a missing or refused reference, a policy refusal. A connection not (yet) found, not ready, or whose
// sign-in failed is looked at again soon.
func (e *Error) Terminal() bool {
	switch e.Reason {
	case intunev1alpha1.ReasonSecretNotFound, intunev1alpha1.ReasonSecretKeyMissing, intunev1alpha1.ReasonInvalidSpec,
		intunev1alpha1.ReasonAmbientCredentialsNotAllowed, intunev1alpha1.ReasonEndpointNotAllowed,
		intunev1alpha1.ReasonAccessDenied, intunev1alpha1.ReasonRecordClaimed:
		return true
	}
	return false
}

// kindClusterGraphConnection is the cluster-scoped connection's kind, as references name it.
const kindClusterGraphConnection = "ClusterGraphConnection"

// Provider resolves connections. Connections are read from the manager's cache; credential Secrets are read
// live (Secrets are never cached with their data) and only when their resourceVersion changed.
type Provider struct {
	// Cache reads connections and Secret metadata (a metadata-only informer).
	Cache client.Reader
	// Live reads Secret data straight from the API server.
	Live client.Reader
	// Tokens requests ServiceAccount tokens (TokenRequest API) for WorkloadIdentity with serviceAccountName.
	Tokens client.SubResourceClientConstructor
	// OperatorNamespace holds the Secrets and ServiceAccounts of ClusterGraphConnections.
	OperatorNamespace string
	// Policy restricts what GraphConnections (namespaced) may use.
	Policy Policy
	// HTTPClient is used for sign-in and Graph; nil = system trust store (SSL_CERT_FILE works). Redirects are
	// never followed, whatever it says.
	HTTPClient *http.Client

	mu        sync.Mutex
	clients   map[string]cached
	users     map[string]map[string]*graph.UserIDCache // per connection, then per cloud and tenant (userCache)
	budgets   map[string]*writeBudget                  // per cloud, tenant and app: shared by every connection of that app
	throttles map[string]*graph.Throttle               // per Graph host, tenant and app: Graph's Retry-After holds all their calls
}

type cached struct {
	fingerprint string
	conn        *Connection
	budgetKey   string // the write budget a ClusterGraphConnection sets the rate of ("" for a GraphConnection)
}

// Reference returns the kind and name a resource's connectionRef means, defaulting to the
// ClusterGraphConnection "default".
func Reference(ref *intunev1alpha1.ConnectionReference) (kind, name string) {
	if ref == nil {
		return kindClusterGraphConnection, DefaultName
	}
	kind = ref.Kind
	if kind == "" {
		kind = kindClusterGraphConnection
	}
	return kind, ref.Name
}

// IndexKey is the field-index value resources are indexed by, to find them when a connection changes.
func IndexKey(kind, namespace, name string) string {
	if kind == kindClusterGraphConnection {
		return kind + "/" + name
	}
	return kind + "/" + namespace + "/" + name
}

// Object returns the connection object a reference names, as seen from namespace.
func (p *Provider) Object(ctx context.Context, namespace string, ref *intunev1alpha1.ConnectionReference) (client.Object, *intunev1alpha1.GraphConnectionSpec, *intunev1alpha1.GraphConnectionStatus, error) {
	kind, name := Reference(ref)
	switch kind {
	case "GraphConnection":
		obj := &intunev1alpha1.GraphConnection{}
		if err := p.Cache.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, obj); err != nil {
			return nil, nil, nil, notFound(err, fmt.Sprintf("GraphConnection %q in namespace %q", name, namespace))
		}
		return obj, &obj.Spec, &obj.Status, nil
	default:
		obj := &intunev1alpha1.ClusterGraphConnection{}
		if err := p.Cache.Get(ctx, types.NamespacedName{Name: name}, obj); err != nil {
			return nil, nil, nil, notFound(err, fmt.Sprintf("ClusterGraphConnection %q", name))
		}
		return obj, &obj.Spec.GraphConnectionSpec, &obj.Status, nil
	}
}

func notFound(err error, what string) error {
	if apierrors.IsNotFound(err) {
		return &Error{Reason: intunev1alpha1.ReasonConnectionNotFound, Message: what + " does not exist: create it or set spec.connectionRef"}
	}
	return fmt.Errorf("failed to read %s: %w", what, err)
}

// ForResource resolves the connection a resource in namespace uses, and refuses it when the connection
// reports that it is not ready (so a broken credential shows on the connection, and once on each resource).
func (p *Provider) ForResource(ctx context.Context, namespace string, ref *intunev1alpha1.ConnectionReference) (*Connection, error) {
	obj, spec, status, err := p.Object(ctx, namespace, ref)
	if err != nil {
		return nil, err
	}
	if ready := meta.FindStatusCondition(status.Conditions, intunev1alpha1.ConditionReady); ready != nil && ready.Status == metav1.ConditionFalse {
		kind, name := Reference(ref)
		return nil, &Error{Reason: intunev1alpha1.ReasonConnectionNotReady,
			Message: fmt.Sprintf("%s %q is not ready (%s): %s", kind, name, ready.Reason, ready.Message)}
	}
	conn, err := p.Build(ctx, obj, spec)
	if err != nil {
		return nil, err
	}
	if cluster, ok := obj.(*intunev1alpha1.ClusterGraphConnection); ok {
		// The cached client is shared; the access rules are the connection's as read now.
		withAccess := *conn
		withAccess.Cluster, withAccess.Access = cluster.Name, cluster.Spec.Access
		conn = &withAccess
	}
	return conn, nil
}

// Build returns the cached client of a connection object, rebuilding it when the spec or the credential
// Secret changed.
func (p *Provider) Build(ctx context.Context, obj client.Object, spec *intunev1alpha1.GraphConnectionSpec) (*Connection, error) {
	kind := "GraphConnection"
	secretNamespace := obj.GetNamespace()
	_, cluster := obj.(*intunev1alpha1.ClusterGraphConnection)
	if cluster {
		kind = kindClusterGraphConnection
		secretNamespace = p.OperatorNamespace
	}
	endpoints, err := graph.EndpointsFor(graph.Cloud(spec.Cloud))
	if err != nil {
		return nil, &Error{Reason: intunev1alpha1.ReasonInvalidSpec, Message: err.Error()}
	}
	if !cluster {
		// Before any Secret is read or token requested: a refused connection never signs in.
		if err := p.Policy.check(spec, endpoints); err != nil {
			return nil, err
		}
	}
	key := IndexKey(kind, obj.GetNamespace(), obj.GetName())
	secretVersion, err := p.secretVersion(ctx, secretNamespace, spec.Credential.SecretRef)
	if err != nil {
		return nil, err
	}
	// The client depends on the spec's connection part and the credential Secret, not on access rules.
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	fingerprint := fmt.Sprintf("%s/%x/%s", obj.GetUID(), sha256.Sum256(specJSON), secretVersion)

	p.mu.Lock()
	if c, ok := p.clients[key]; ok && c.fingerprint == fingerprint {
		p.mu.Unlock()
		return c.conn, nil
	}
	p.mu.Unlock()

	conn, err := p.build(ctx, key, cluster, kind+"/"+obj.GetName(), secretNamespace, spec, endpoints)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clients == nil {
		p.clients = map[string]cached{}
	}
	c := cached{fingerprint: fingerprint, conn: conn}
	if cluster {
		c.budgetKey = budgetKey(spec)
	}
	p.clients[key] = c
	return conn, nil
}

// Forget drops a connection's cached client and its say in the write budget (the connection was deleted).
func (p *Provider) Forget(kind, namespace, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := IndexKey(kind, namespace, name)
	if c, ok := p.clients[key]; ok && c.budgetKey != "" {
		if b := p.budgets[c.budgetKey]; b != nil {
			b.setRate(key, 0)
		}
	}
	delete(p.clients, key)
	delete(p.users, key)
}

// secretVersion is the credential Secret's resourceVersion from the metadata cache ("" without a Secret).
func (p *Provider) secretVersion(ctx context.Context, namespace string, ref *intunev1alpha1.SecretKeyReference) (string, error) {
	if ref == nil {
		return "", nil
	}
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := p.Cache.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, m); err != nil {
		if apierrors.IsNotFound(err) {
			return "", &Error{Reason: intunev1alpha1.ReasonSecretNotFound,
				Message: fmt.Sprintf("credential Secret %q does not exist in namespace %q", ref.Name, namespace)}
		}
		return "", fmt.Errorf("failed to read credential Secret %s/%s: %w", namespace, ref.Name, err)
	}
	return m.ResourceVersion, nil
}

func (p *Provider) build(ctx context.Context, key string, cluster bool, ref, secretNamespace string,
	spec *intunev1alpha1.GraphConnectionSpec, endpoints graph.Endpoints) (*Connection, error) {
	cloud := graph.Cloud(spec.Cloud)
	if cloud == "" {
		cloud = graph.CloudPublic
	}
	httpClient := graph.NoRedirects(p.HTTPClient)
	credCfg := graph.CredentialConfig{
		Type:          graph.CredentialType(spec.Credential.Type),
		TenantID:      spec.TenantID,
		ClientID:      spec.Credential.ClientID,
		Cloud:         cloud,
		AuthorityHost: spec.AuthorityHost,
		Transport:     httpClient,
	}
	if credCfg.Type == "" {
		credCfg.Type = graph.CredentialWorkloadIdentity
	}
	if name := spec.Credential.ServiceAccountName; name != "" {
		if p.Tokens == nil {
			return nil, &Error{Reason: intunev1alpha1.ReasonCredentialInvalid, Message: "serviceAccountName is not supported by this operator build"}
		}
		source := &serviceAccountToken{tokens: p.Tokens, namespace: secretNamespace, name: name, now: time.Now}
		credCfg.Assertion = source.Token
	}
	if err := p.loadCredentialSecret(ctx, secretNamespace, spec.Credential, &credCfg); err != nil {
		return nil, err
	}
	cred, err := graph.NewCredential(credCfg)
	var pfxErr *pfx.Error
	if errors.As(err, &pfxErr) {
		return nil, err // the client certificate itself is bad (InvalidPfx, WrongPassword, ...)
	}
	if err != nil {
		return nil, &Error{Reason: intunev1alpha1.ReasonCredentialInvalid, Message: err.Error()}
	}
	root := endpoints.GraphRoot
	if spec.GraphEndpoint != "" {
		root = spec.GraphEndpoint
	}
	gc, err := graph.New(graph.Options{
		GraphRoot:    root,
		Scope:        endpoints.Scope(),
		Credential:   cred,
		WriteLimiter: p.writeLimiter(key, cluster, spec),
		Throttle:     p.throttle(root, spec),
		HTTPClient:   httpClient,
		Users:        p.userCache(key, cloud, spec.TenantID),
	})
	if err != nil {
		return nil, &Error{Reason: intunev1alpha1.ReasonInvalidSpec, Message: err.Error()}
	}
	conn := &Connection{Ref: ref, TenantID: spec.TenantID, Graph: gc, SecretNamespace: secretNamespace}
	if spec.PfxEncryption != nil {
		conn.Encryption = *spec.PfxEncryption
	}
	return conn, nil
}

// userCache returns the UPN → user id cache of one connection in one tenant: a client built again for it
// (its spec or credential Secret changed, or two passes built it at once) keeps the ids already learnt.
func (p *Provider) userCache(connKey string, cloud graph.Cloud, tenantID string) *graph.UserIDCache {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.users == nil {
		p.users = map[string]map[string]*graph.UserIDCache{}
	}
	byTenant := p.users[connKey]
	if byTenant == nil {
		byTenant = map[string]*graph.UserIDCache{}
		p.users[connKey] = byTenant
	}
	tenant := strings.ToLower(string(cloud) + "/" + tenantID)
	if byTenant[tenant] == nil {
		byTenant[tenant] = &graph.UserIDCache{}
	}
	return byTenant[tenant]
}

// budgetKey names one application of one tenant in one cloud: the unit Intune counts writes by.
func budgetKey(spec *intunev1alpha1.GraphConnectionSpec) string {
	return strings.ToLower(cloudName(spec.Cloud) + "/" + spec.TenantID + "/" + spec.Credential.ClientID)
}

// writeLimiter returns what paces a connection's writes: the budget its cloud, tenant and app share, whose
// rate only ClusterGraphConnections set and whose tokens go round-robin to the namespaces waiting for one;
// a GraphConnection's own rate goes into a limiter of its own, which can slow its resources and no one
// else's (waited on first: the shared token is taken last, just before the request goes out).
func (p *Provider) writeLimiter(connKey string, cluster bool, spec *intunev1alpha1.GraphConnectionSpec) graph.WriteLimiter {
	perTwentySeconds := int(spec.WriteRequestsPer20Seconds)
	if perTwentySeconds <= 0 {
		perTwentySeconds = DefaultWritesPer20Seconds
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.budgets == nil {
		p.budgets = map[string]*writeBudget{}
	}
	key := budgetKey(spec)
	shared, ok := p.budgets[key]
	if !ok {
		shared = &writeBudget{limiter: fairshare.NewLimiter(graph.NewWriteLimiter(DefaultWritesPer20Seconds)), rates: map[string]int{}}
		p.budgets[key] = shared
	}
	if cluster {
		// A ClusterGraphConnection that moved to another app or tenant leaves its old budget.
		if old, ok := p.clients[connKey]; ok && old.budgetKey != key {
			if b := p.budgets[old.budgetKey]; b != nil {
				b.setRate(connKey, 0)
			}
		}
		shared.setRate(connKey, perTwentySeconds)
		return shared.limiter
	}
	return graph.AllLimiters(graph.NewWriteLimiter(perTwentySeconds), shared.limiter)
}

// writeBudget is the write limiter of one cloud, tenant and app. Its rate is the lowest any
// ClusterGraphConnection of that app asks for (DefaultWritesPer20Seconds when none does), so the result does
// not depend on which connection was built last. Its tokens are shared fairly among the namespaces whose
// reconciles wait for one (the namespace rides in the context: fairshare.WithNamespace), so a namespace
// importing thousands of certificates does not hold up another's one.
type writeBudget struct {
	limiter *fairshare.Limiter
	rates   map[string]int // ClusterGraphConnection index key -> its writeRequestsPer20Seconds
}

// setRate records (perTwentySeconds > 0) or removes (0) one connection's rate and applies the lowest.
func (b *writeBudget) setRate(connKey string, perTwentySeconds int) {
	if perTwentySeconds > 0 {
		b.rates[connKey] = perTwentySeconds
	} else {
		delete(b.rates, connKey)
	}
	lowest := DefaultWritesPer20Seconds
	if len(b.rates) > 0 {
		lowest = math.MaxInt
		for _, r := range b.rates {
			lowest = min(lowest, r)
		}
	}
	if want := rate.Limit(float64(lowest) / 20); b.limiter.Limit() != want {
		b.limiter.SetLimit(want)
	}
}

// throttle returns the shared Retry-After gate of an app in a tenant, as answered by one Graph host: a 429
// from one host says nothing about another.
func (p *Provider) throttle(graphRoot string, spec *intunev1alpha1.GraphConnectionSpec) *graph.Throttle {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.throttles == nil {
		p.throttles = map[string]*graph.Throttle{}
	}
	key := hostOf(graphRoot) + "/" + budgetKey(spec)
	t, ok := p.throttles[key]
	if !ok {
		t = &graph.Throttle{}
		p.throttles[key] = t
	}
	return t
}

// loadCredentialSecret reads the client secret or certificate from the credential Secret.
func (p *Provider) loadCredentialSecret(ctx context.Context, namespace string, cred intunev1alpha1.GraphCredential, cfg *graph.CredentialConfig) error {
	if cred.SecretRef == nil {
		return nil
	}
	defaultKey := "clientSecret"
	if cred.Type == intunev1alpha1.CredentialClientCertificate {
		defaultKey = "tls.pem"
	}
	secrets := NewSecretReader(p.Live, namespace)
	value, err := secrets.Key(ctx, cred.SecretRef.Name, cred.SecretRef.Key, defaultKey)
	if err != nil {
		return err
	}
	switch cred.Type {
	case intunev1alpha1.CredentialClientSecret:
		cfg.ClientSecret = string(value)
	case intunev1alpha1.CredentialClientCertificate:
		cfg.Certificate = value
		if pw := cred.CertificatePasswordSecretRef; pw != nil {
			name := pw.Name
			if name == "" {
				name = cred.SecretRef.Name
			}
			password, err := secrets.Key(ctx, name, pw.Key, "password")
			if err != nil {
				return err
			}
			cfg.CertificatePassword = string(password)
		}
	}
	return nil
}

// ReadSecretKey reads one key of a Secret live from the API server, with errors that name the Secret and key.
func ReadSecretKey(ctx context.Context, live client.Reader, namespace, name, key, defaultKey string) ([]byte, error) {
	return NewSecretReader(live, namespace).Key(ctx, name, key, defaultKey)
}

// SecretReader reads keys of Secrets in one namespace live from the API server, each Secret once: a
// certificate and its password are usually two keys of one Secret, and one read is one request.
type SecretReader struct {
	live      client.Reader
	namespace string
	read      map[string]*corev1.Secret
}

func NewSecretReader(live client.Reader, namespace string) *SecretReader {
	return &SecretReader{live: live, namespace: namespace, read: map[string]*corev1.Secret{}}
}

// Key is the value of key (defaultKey when key is empty) in the Secret name, with errors that name both.
func (r *SecretReader) Key(ctx context.Context, name, key, defaultKey string) ([]byte, error) {
	if key == "" {
		key = defaultKey
	}
	secret, ok := r.read[name]
	if !ok {
		secret = &corev1.Secret{}
		if err := r.live.Get(ctx, types.NamespacedName{Namespace: r.namespace, Name: name}, secret); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, &Error{Reason: intunev1alpha1.ReasonSecretNotFound,
					Message: fmt.Sprintf("Secret %q does not exist in namespace %q", name, r.namespace)}
			}
			return nil, fmt.Errorf("failed to read Secret %s/%s: %w", r.namespace, name, err)
		}
		r.read[name] = secret
	}
	value, ok := secret.Data[key]
	if !ok || len(value) == 0 {
		return nil, &Error{Reason: intunev1alpha1.ReasonSecretKeyMissing,
			Message: fmt.Sprintf("Secret %q in namespace %q has no key %q", name, r.namespace, key)}
	}
	return value, nil
}
