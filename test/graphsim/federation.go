package graphsim

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// FederatedCredential is a federated identity credential of an app registration: Entra ID exchanges a
// token from Issuer for an access token when the token's sub is exactly Subject and its aud holds one of
// Audiences. For a Kubernetes service account the issuer is the API server's --service-account-issuer
// and the subject "system:serviceaccount:<namespace>:<name>".
type FederatedCredential struct {
	Issuer    string   `json:"issuer"`
	Subject   string   `json:"subject"`
	Audiences []string `json:"audiences,omitempty"` // default [api://AzureADTokenExchange]
}

func (c FederatedCredential) audiences() []string {
	if len(c.Audiences) == 0 {
		return []string{federatedAudience}
	}
	return c.Audiences
}

// validateFederatedCredentials refuses a table Entra ID would refuse, so a misconfigured test fails at
// Start rather than with a puzzling AADSTS70021 later.
func (s *Server) validateFederatedCredentials(tenantID string, app App) error {
	for _, c := range app.FederatedCredentials {
		if c.Subject == "" {
			return fmt.Errorf("graphsim: tenant %s app %s: a federated credential has no subject", tenantID, app.ClientID)
		}
		if c.Issuer == s.FederatedIssuer() {
			continue // the built-in issuer's keys are local, no discovery needed
		}
		if err := checkIssuerURL(c.Issuer); err != nil {
			return fmt.Errorf("graphsim: tenant %s app %s: federated credential issuer: %w", tenantID, app.ClientID, err)
		}
	}
	return nil
}

// checkIssuerURL requires what Entra ID requires of an issuer: an absolute https URL without query or
// fragment (its discovery document is found by appending a path to it).
func checkIssuerURL(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an https URL without query or fragment", issuer)
	}
	return nil
}

// federatedCredentials is the app's whole table: FederatedSubjects are shorthand for credentials of
// the built-in issuer with the default audience.
func (s *Server) federatedCredentials(app App) []FederatedCredential {
	creds := append([]FederatedCredential(nil), app.FederatedCredentials...)
	for _, sub := range app.FederatedSubjects {
		creds = append(creds, FederatedCredential{Issuer: s.FederatedIssuer(), Subject: sub})
	}
	return creds
}

// verifyFederatedAssertion checks a workload identity assertion like Entra ID: the issuer must be one
// of the app's federated credentials (before anything is fetched, so an assertion cannot make the
// emulator contact a host nobody configured), the signature must verify with the issuer's published
// key, the token must be within its lifetime, and subject and audience must match a credential of
// that issuer exactly.
func (s *Server) verifyFederatedAssertion(ctx context.Context, app App, assertion string, unverified *jwt.Token) *aadErr {
	claims, _ := unverified.Claims.(jwt.MapClaims)
	iss, _ := claims["iss"].(string)
	sub, _ := claims["sub"].(string)
	aud, _ := claims.GetAudience()
	noRecord := &aadErr{http.StatusUnauthorized, "invalid_client", 70021, fmt.Sprintf(
		"No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'.",
		iss, sub, strings.Join(aud, ", "))}

	var ofIssuer []FederatedCredential
	for _, c := range s.federatedCredentials(app) {
		if c.Issuer == iss {
			ofIssuer = append(ofIssuer, c)
		}
	}
	if len(ofIssuer) == 0 {
		return noRecord
	}
	key, e := s.federatedKey(ctx, iss, unverified.Header)
	if e != nil {
		return e
	}
	_, err := jwt.Parse(assertion, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"RS256", "ES256"}), jwt.WithIssuer(iss),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(s.now))
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired), errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return &aadErr{http.StatusUnauthorized, "invalid_client", 700024, "Client assertion is not within its valid time range."}
	default:
		return &aadErr{http.StatusUnauthorized, "invalid_client", 50013,
			"Assertion failed signature validation. [Reason - Key was found, but use of the key to verify the signature failed.]"}
	}
	for _, c := range ofIssuer {
		if c.Subject == sub && slices.ContainsFunc(c.audiences(), func(a string) bool { return slices.Contains(aud, a) }) {
			return nil
		}
	}
	return noRecord
}

// federatedKey is the key that signed a federated assertion: the built-in issuer's own key, or the key
// named by kid in the external issuer's published key set.
func (s *Server) federatedKey(ctx context.Context, iss string, header map[string]any) (any, *aadErr) {
	if iss == s.FederatedIssuer() {
		return s.keys.issuerKey.Public(), nil
	}
	kid, _ := header["kid"].(string)
	key, err := s.issuers.key(ctx, iss, kid)
	switch {
	case err == nil:
		return key, nil
	case errors.Is(err, errKeyNotFound):
		return nil, &aadErr{http.StatusUnauthorized, "invalid_client", 50013,
			"Assertion failed signature validation. [Reason - The key was not found.]"}
	default:
		// Entra ID says no more than its first sentence; the reason (a URL, a status, a TLS error:
		// nothing secret) is what someone wiring a test stack needs.
		return nil, &aadErr{http.StatusBadRequest, "invalid_request", 50166,
			"Request to External OIDC endpoint failed. (graphsim: " + err.Error() + ")"}
	}
}
