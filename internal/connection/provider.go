// Package connection turns GraphConnection and ClusterGraphConnection resources into ready Graph clients,
// cached per connection and rebuilt when the connection or its credential Secret changes.
package connection

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"golang.org/x/time/rate"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/graph"
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
}

// Error says why a connection cannot be used; Reason goes into the resource's Ready condition.
type Error struct {
	Reason  string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Provider resolves connections. Connections are read from the manager's cache; credential Secrets are read
// live (Secrets are never cached with their data) and only when their resourceVersion changed.
type Provider struct {
	// Cache reads connections and Secret metadata (a metadata-only informer).
	Cache client.Reader
	// Live reads Secret data straight from the API server.
	Live client.Reader
	// OperatorNamespace holds the Secrets of ClusterGraphConnections.
	OperatorNamespace string
	// HTTPClient is used for sign-in and Graph; nil = system trust store (SSL_CERT_FILE works).
	HTTPClient *http.Client

	mu        sync.Mutex
	clients   map[string]cached
	limiters  map[string]*rate.Limiter   // per tenant: shared by every connection and controller
	throttles map[string]*graph.Throttle // per tenant and app: Graph's Retry-After holds all their calls
}

type cached struct {
	fingerprint string
	conn        *Connection
}

// Reference returns the kind and name a resource's connectionRef means, defaulting to the
// ClusterGraphConnection "default".
func Reference(ref *intunev1alpha1.ConnectionReference) (kind, name string) {
	if ref == nil {
		return "ClusterGraphConnection", DefaultName
	}
	kind = ref.Kind
	if kind == "" {
		kind = "ClusterGraphConnection"
	}
	return kind, ref.Name
}

// IndexKey is the field-index value resources are indexed by, to find them when a connection changes.
func IndexKey(kind, namespace, name string) string {
	if kind == "ClusterGraphConnection" {
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
		return obj, &obj.Spec, &obj.Status, nil
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
	return p.Build(ctx, obj, spec)
}

// Build returns the cached client of a connection object, rebuilding it when the spec or the credential
// Secret changed.
func (p *Provider) Build(ctx context.Context, obj client.Object, spec *intunev1alpha1.GraphConnectionSpec) (*Connection, error) {
	kind := "GraphConnection"
	secretNamespace := obj.GetNamespace()
	if _, cluster := obj.(*intunev1alpha1.ClusterGraphConnection); cluster {
		kind = "ClusterGraphConnection"
		secretNamespace = p.OperatorNamespace
	}
	key := IndexKey(kind, obj.GetNamespace(), obj.GetName())
	secretVersion, err := p.secretVersion(ctx, secretNamespace, spec.Credential.SecretRef)
	if err != nil {
		return nil, err
	}
	fingerprint := fmt.Sprintf("%s/%d/%s", obj.GetUID(), obj.GetGeneration(), secretVersion)

	p.mu.Lock()
	if c, ok := p.clients[key]; ok && c.fingerprint == fingerprint {
		p.mu.Unlock()
		return c.conn, nil
	}
	p.mu.Unlock()

	conn, err := p.build(ctx, kind+"/"+obj.GetName(), secretNamespace, spec)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clients == nil {
		p.clients = map[string]cached{}
	}
	p.clients[key] = cached{fingerprint: fingerprint, conn: conn}
	return conn, nil
}

// Forget drops a connection's cached client (the connection was deleted).
func (p *Provider) Forget(kind, namespace, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.clients, IndexKey(kind, namespace, name))
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

func (p *Provider) build(ctx context.Context, ref, secretNamespace string, spec *intunev1alpha1.GraphConnectionSpec) (*Connection, error) {
	cloud := graph.Cloud(spec.Cloud)
	if cloud == "" {
		cloud = graph.Cloud("Public")
	}
	endpoints, err := graph.EndpointsFor(cloud)
	if err != nil {
		return nil, &Error{Reason: intunev1alpha1.ReasonInvalidSpec, Message: err.Error()}
	}
	credCfg := graph.CredentialConfig{
		Type:          graph.CredentialType(spec.Credential.Type),
		TenantID:      spec.TenantID,
		ClientID:      spec.Credential.ClientID,
		Cloud:         cloud,
		AuthorityHost: spec.AuthorityHost,
	}
	if credCfg.Type == "" {
		credCfg.Type = graph.CredentialWorkloadIdentity
	}
	if p.HTTPClient != nil {
		credCfg.Transport = p.HTTPClient
	}
	if err := p.loadCredentialSecret(ctx, secretNamespace, spec.Credential, &credCfg); err != nil {
		return nil, err
	}
	cred, err := graph.NewCredential(credCfg)
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
		WriteLimiter: p.limiter(spec.TenantID, int(spec.WriteRequestsPer20Seconds)),
		Throttle:     p.throttle(spec.TenantID, spec.Credential.ClientID),
		HTTPClient:   p.HTTPClient,
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

// limiter returns the tenant's shared write budget. The first connection to a tenant sets its rate;
// a later change of writeRequestsPer20Seconds adjusts it.
func (p *Provider) limiter(tenantID string, perTwentySeconds int) *rate.Limiter {
	if perTwentySeconds <= 0 {
		perTwentySeconds = DefaultWritesPer20Seconds
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limiters == nil {
		p.limiters = map[string]*rate.Limiter{}
	}
	l, ok := p.limiters[tenantID]
	if !ok {
		l = graph.NewWriteLimiter(perTwentySeconds)
		p.limiters[tenantID] = l
	} else if want := rate.Limit(float64(perTwentySeconds) / 20); l.Limit() != want {
		l.SetLimit(want)
	}
	return l
}

// throttle returns the shared Retry-After gate of an app in a tenant.
func (p *Provider) throttle(tenantID, clientID string) *graph.Throttle {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.throttles == nil {
		p.throttles = map[string]*graph.Throttle{}
	}
	key := strings.ToLower(tenantID + "/" + clientID)
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
