package graphsim

import (
	"context"
	"crypto/sha1" //nolint:gosec // x5t is defined as a SHA-1 thumbprint
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	jwtBearerAssertion = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// federatedAudience is the audience Entra ID requires on workload identity assertions.
	federatedAudience = "api://AzureADTokenExchange"
	tokenLifetime     = time.Hour
)

// oidcScopes are added by MSAL to every request; Entra ID ignores them for client credentials.
var oidcScopes = map[string]bool{"openid": true, "offline_access": true, "profile": true}

func (s *Server) newSignInMux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.handleOpenIDConfiguration)
	m.HandleFunc("GET /{tenant}/discovery/v2.0/keys", s.handleKeys)
	m.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.handleToken)
	m.HandleFunc("GET /{tenant}/msi/token", s.handleManagedIdentityToken)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAADError(w, aadErr{http.StatusNotFound, "invalid_request", 900561, "The endpoint only accepts the documented sign-in requests."})
	})
	return m
}

func (s *Server) serveSignIn(w *trackedWriter, r *http.Request) { s.signIn.ServeHTTP(w, r) }

// issuer is the token issuer of a tenant, and the "issuer" of its OpenID configuration. MSAL requires
// it to share scheme and host with the authority.
func (s *Server) issuer(tenantID string) string { return s.url + "/" + tenantID + "/v2.0" }

func (s *Server) tokenEndpoint(tenantID string) string {
	return s.url + "/" + tenantID + "/oauth2/v2.0/token"
}

// FederatedIssuer is the issuer of the tokens minted by FederatedToken (the "cluster's OIDC issuer").
// Like the access-token issuer it does not depend on the port, so tokens survive a restart.
func (s *Server) FederatedIssuer() string { return "https://oidc.graphsim.invalid" }

// accessTokenIssuer is the "iss" of issued Graph tokens: Entra ID's v1 issuer, which is what
// app-only Graph tokens carry.
func accessTokenIssuer(tenantID string) string { return "https://sts.windows.net/" + tenantID + "/" }

func (s *Server) handleOpenIDConfiguration(w http.ResponseWriter, r *http.Request) {
	tenantID := r.PathValue("tenant")
	track(w).tenantID = tenantID
	if s.tenants[tenantID] == nil {
		writeAADError(w, unknownTenant(tenantID))
		return
	}
	base := s.url + "/" + tenantID
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                s.issuer(tenantID),
		"request_uri_parameter_supported":       false,
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"cloud_instance_name":                   "graphsim",
		"msgraph_host":                          strings.TrimPrefix(s.url, "https://"),
	})
}

// handleKeys publishes the token-signing key, so a client may verify issued tokens itself.
func (s *Server) handleKeys(w http.ResponseWriter, r *http.Request) {
	tenantID := r.PathValue("tenant")
	track(w).tenantID = tenantID
	if s.tenants[tenantID] == nil {
		writeAADError(w, unknownTenant(tenantID))
		return
	}
	pub := s.keys.tokenKey.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": s.keys.tokenKeyID(),
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

// handleToken is the client-credentials grant of the v2.0 token endpoint.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	tenantID := r.PathValue("tenant")
	tw := track(w)
	tw.tenantID = tenantID
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		writeAADError(w, aadErr{http.StatusBadRequest, "invalid_request", 900144, "The request body must be form-encoded."})
		return
	}
	form := r.PostForm
	tw.clientID = form.Get("client_id")
	ts := s.tenants[tenantID]
	if ts == nil {
		writeAADError(w, unknownTenant(tenantID))
		return
	}
	app, e := s.authenticateClient(ts, form.Get("grant_type"), form.Get("client_id"), form.Get("scope"), r)
	if e != nil {
		writeAADError(w, *e)
		return
	}
	token, err := s.accessToken(tenantID, app)
	if err != nil {
		writeAADError(w, aadErr{http.StatusInternalServerError, "server_error", 90033, "The token could not be signed."})
		return
	}
	secs := int(tokenLifetime / time.Second)
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": token,
	})
}

// authenticateClient checks the grant, the app, the scope and the client credential, in Entra ID's order.
func (s *Server) authenticateClient(ts *tenantState, grantType, clientID, scope string, r *http.Request) (App, *aadErr) {
	if grantType != "client_credentials" {
		return App{}, &aadErr{http.StatusBadRequest, "unsupported_grant_type", 70003,
			fmt.Sprintf("The app requested an unsupported grant type '%s'.", grantType)}
	}
	if clientID == "" {
		return App{}, &aadErr{http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'client_id'."}
	}
	app, ok := ts.app(clientID)
	if !ok {
		return App{}, &aadErr{http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf(
			"Application with identifier '%s' was not found in the directory '%s'.", clientID, ts.cfg.ID)}
	}
	if e := s.checkScope(scope); e != nil {
		return App{}, e
	}
	secret, hasSecret := r.PostForm["client_secret"]
	assertion := r.PostForm.Get("client_assertion")
	switch {
	case hasSecret && assertion != "":
		return App{}, &aadErr{http.StatusBadRequest, "invalid_request", 90014,
			"Only one of 'client_secret' and 'client_assertion' may be sent."}
	case hasSecret:
		// Constant time, and never echo what was sent.
		if app.ClientSecret == "" || subtle.ConstantTimeCompare([]byte(secret[0]), []byte(app.ClientSecret)) != 1 {
			return App{}, &aadErr{http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf(
				"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", clientID)}
		}
	case assertion != "":
		if t := r.PostForm.Get("client_assertion_type"); t != jwtBearerAssertion {
			return App{}, &aadErr{http.StatusBadRequest, "invalid_request", 50027,
				"client_assertion_type must be " + jwtBearerAssertion + "."}
		}
		if e := s.verifyAssertion(r.Context(), ts.cfg.ID, app, assertion); e != nil {
			return App{}, e
		}
	default:
		return App{}, &aadErr{http.StatusUnauthorized, "invalid_client", 7000216,
			"'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type."}
	}
	return app, nil
}

// checkScope accepts exactly "{Audience}/.default" plus the OIDC scopes MSAL always adds.
func (s *Server) checkScope(scope string) *aadErr {
	var resource []string
	for _, sc := range strings.Fields(scope) {
		if !oidcScopes[sc] {
			resource = append(resource, sc)
		}
	}
	if len(resource) == 1 && resource[0] == s.cfg.Audience+"/.default" {
		return nil
	}
	return &aadErr{http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf(
		"The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)}
}

// verifyAssertion checks a client assertion: signed by a registered certificate (x5t / x5t#S256
// header), or else a federated token from an issuer in the app's federated credentials (federation.go).
func (s *Server) verifyAssertion(ctx context.Context, tenantID string, app App, assertion string) *aadErr {
	unverified, _, err := jwt.NewParser().ParseUnverified(assertion, jwt.MapClaims{})
	if err != nil {
		return &aadErr{http.StatusUnauthorized, "invalid_client", 50027, "JWT token is invalid or malformed."}
	}
	if hasThumbprint(unverified.Header) {
		return s.verifyCertificateAssertion(tenantID, app, assertion, unverified.Header)
	}
	return s.verifyFederatedAssertion(ctx, app, assertion, unverified)
}

func (s *Server) verifyCertificateAssertion(tenantID string, app App, assertion string, header map[string]any) *aadErr {
	cert := matchCertificate(app.Certificates, header)
	if cert == nil {
		return &aadErr{http.StatusUnauthorized, "invalid_client", 700027,
			"The certificate with identifier used to sign the client assertion is not registered on application."}
	}
	_, err := jwt.Parse(assertion, func(*jwt.Token) (any, error) { return cert.PublicKey, nil },
		jwt.WithValidMethods([]string{"PS256", "RS256", "ES256"}),
		jwt.WithAudience(s.tokenEndpoint(tenantID)),
		jwt.WithIssuer(app.ClientID), jwt.WithSubject(app.ClientID),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(s.now))
	return assertionError(err)
}

// assertionError maps a certificate assertion's JWT validation error to Entra ID's answer.
func assertionError(err error) *aadErr {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jwt.ErrTokenExpired), errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return &aadErr{http.StatusUnauthorized, "invalid_client", 700024, "Client assertion is not within its valid time range."}
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return &aadErr{http.StatusUnauthorized, "invalid_client", 50013, "Assertion audience does not match the token endpoint."}
	case errors.Is(err, jwt.ErrTokenInvalidIssuer), errors.Is(err, jwt.ErrTokenInvalidSubject):
		return &aadErr{http.StatusUnauthorized, "invalid_client", 700021, "Client assertion issuer and subject must both be the client_id."}
	default:
		return &aadErr{http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation."}
	}
}

func hasThumbprint(header map[string]any) bool {
	_, a := header["x5t#S256"]
	_, b := header["x5t"]
	return a || b
}

// matchCertificate finds the registered certificate named by the assertion's thumbprint header.
// MSAL writes x5t#S256 in standard base64 although RFC 7515 says base64url: accept both.
func matchCertificate(certs []*x509.Certificate, header map[string]any) *x509.Certificate {
	for _, c := range certs {
		s1 := sha1.Sum(c.Raw) //nolint:gosec // x5t is SHA-1 by definition
		s256 := sha256.Sum256(c.Raw)
		if thumbprintMatches(header["x5t"], s1[:]) || thumbprintMatches(header["x5t#S256"], s256[:]) {
			return c
		}
	}
	return nil
}

func thumbprintMatches(v any, sum []byte) bool {
	s, ok := v.(string)
	if !ok || s == "" {
		return false
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && subtle.ConstantTimeCompare(b, sum) == 1 {
			return true
		}
	}
	return false
}

// accessToken issues an app-only Graph token like Entra ID's.
func (s *Server) accessToken(tenantID string, app App) (string, error) {
	now := s.now()
	roles := app.Roles
	if roles == nil {
		roles = DefaultRoles
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"aud": s.cfg.Audience, "iss": accessTokenIssuer(tenantID), "tid": tenantID,
		"appid": app.ClientID, "azp": app.ClientID, "sub": app.ClientID, "idtyp": "app", "roles": roles,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(tokenLifetime).Unix(),
	})
	tok.Header["kid"] = s.keys.tokenKeyID()
	signed, err := tok.SignedString(s.keys.tokenKey)
	if err != nil {
		return "", fmt.Errorf("graphsim: sign access token: %w", err)
	}
	return signed, nil
}

// FederatedToken mints the service-account token a pod would find in AZURE_FEDERATED_TOKEN_FILE.
// The app must exist; whether subject is accepted is decided at sign-in (App.FederatedSubjects).
func (s *Server) FederatedToken(tenantID, clientID, subject string) (string, error) {
	ts := s.tenants[tenantID]
	if ts == nil {
		return "", fmt.Errorf("graphsim: unknown tenant %q", tenantID)
	}
	if _, ok := ts.app(clientID); !ok {
		return "", fmt.Errorf("graphsim: no app %q in tenant %q", clientID, tenantID)
	}
	now := s.now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": s.FederatedIssuer(), "sub": subject, "aud": []string{federatedAudience},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(tokenLifetime).Unix(),
	})
	tok.Header["kid"] = s.keys.issuerKeyID()
	signed, err := tok.SignedString(s.keys.issuerKey)
	if err != nil {
		return "", fmt.Errorf("graphsim: sign federated token: %w", err)
	}
	return signed, nil
}

// aadErr is an Entra ID OAuth error answer.
type aadErr struct {
	status int
	code   string // OAuth "error"
	aadsts int
	desc   string
}

func unknownTenant(tenantID string) aadErr {
	return aadErr{http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf(
		"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenantID)}
}

func writeAADError(w http.ResponseWriter, e aadErr) {
	traceID, corrID := newRequestID(), newRequestID()
	ts := time.Now().UTC().Format("2006-01-02 15:04:05Z")
	writeJSON(w, e.status, map[string]any{
		"error": e.code,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			e.aadsts, e.desc, traceID, corrID, ts),
		"error_codes":    []int{e.aadsts},
		"timestamp":      ts,
		"trace_id":       traceID,
		"correlation_id": corrID,
	})
}

// track returns the journal's view of w (every sign-in and Graph handler runs under one).
func track(w http.ResponseWriter) *trackedWriter {
	if tw, ok := w.(*trackedWriter); ok {
		return tw
	}
	return &trackedWriter{} // not journaled; writes to it are harmless
}
