package connection

import (
	"context"
	"fmt"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

const (
	// FederatedAudience is the audience Entra ID requires of a federated client assertion.
	FederatedAudience = "api://AzureADTokenExchange"
	// serviceAccountTokenLifetime is the shortest lifetime the TokenRequest API grants. Entra ID reads the
	// assertion once, at sign-in; a leaked one is useless soon after.
	serviceAccountTokenLifetime = 10 * time.Minute
)

// serviceAccountToken requests tokens of one ServiceAccount through the TokenRequest API, with the audience
// Entra ID expects, and reuses each until half its lifetime has passed. azidentity calls Token for every new
// access token, so a connection asks the API server roughly once an hour.
type serviceAccountToken struct {
	tokens          client.SubResourceClientConstructor
	namespace, name string
	now             func() time.Time

	mu        sync.Mutex
	token     string
	refreshAt time.Time
}

func (s *serviceAccountToken) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && s.now().Before(s.refreshAt) {
		return s.token, nil
	}
	seconds := int64(serviceAccountTokenLifetime / time.Second)
	request := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences: []string{FederatedAudience}, ExpirationSeconds: &seconds,
	}}
	account := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: s.namespace, Name: s.name}}
	if err := s.tokens.SubResource("token").Create(ctx, account, request); err != nil {
		if apierrors.IsNotFound(err) {
			return "", &Error{Reason: intunev1alpha1.ReasonCredentialInvalid, Message: fmt.Sprintf(
				"ServiceAccount %q does not exist in namespace %q (spec.credential.serviceAccountName)", s.name, s.namespace)}
		}
		return "", fmt.Errorf("failed to request a token for ServiceAccount %s/%s: %w", s.namespace, s.name, err)
	}
	issued := s.now()
	s.token = request.Status.Token
	s.refreshAt = issued.Add(request.Status.ExpirationTimestamp.Sub(issued) / 2)
	return s.token, nil
}
