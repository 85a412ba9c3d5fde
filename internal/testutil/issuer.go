package testutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ServeServiceAccountIssuer makes the API server publish a jwks_uri a relying party can reach. The
// discovery document builds it from the external host name, which defaults to the machine's address,
// where envtest's API server (bound to 127.0.0.1) does not listen. A real cluster publishes a reachable one.
func ServeServiceAccountIssuer(apiServer *envtest.APIServer) {
	apiServer.Configure().Set("external-hostname", "127.0.0.1")
}

// PublishServiceAccountIssuer lets anyone read the API server's service-account issuer documents, the
// documented way (the ClusterRole system:service-account-issuer-discovery bound to system:unauthenticated),
// as a cluster whose tokens Entra ID should accept must. It waits until an anonymous client can read the
// discovery document and returns the issuer, as an administrator would register it in a federated credential.
func PublishServiceAccountIssuer(ctx context.Context, cfg *rest.Config, c client.Client) (string, error) {
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "service-account-issuer-discovery-public"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:service-account-issuer-discovery"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "system:unauthenticated"}},
	}
	if err := c.Create(ctx, binding); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(cfg.CAData)
	anonymous := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	discovery := strings.TrimSuffix(cfg.Host, "/") + "/.well-known/openid-configuration"
	var lastErr error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		issuer, err := readIssuer(anonymous, discovery)
		if err == nil {
			return issuer, nil
		}
		lastErr = err
	}
	return "", fmt.Errorf("the service-account issuer is not public 30 s after the binding: %w", lastErr)
}

func readIssuer(c *http.Client, discovery string) (string, error) {
	res, err := c.Get(discovery)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: HTTP %d", discovery, res.StatusCode)
	}
	var doc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Issuer == "" {
		return "", fmt.Errorf("GET %s: no issuer in the document", discovery)
	}
	return doc.Issuer, nil
}
