package graphsim_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/golang-jwt/jwt/v5"

	"github.com/certops/intune-cert-operator/test/graphsim"
)

func clientOptions(s *graphsim.Server) azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: s.URL()},
		Transport: s.Client(),
	}
}

var graphScope = policy.TokenRequestOptions{Scopes: []string{graphURL + "/.default"}}

// getToken runs a real azidentity credential against the emulator.
func getToken(t *testing.T, cred azcore.TokenCredential) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tk, err := cred.GetToken(ctx, graphScope)
	return tk.Token, err
}

// expectUsable proves a token is accepted by Graph.
func expectUsable(t *testing.T, s *graphsim.Server, token string) {
	t.Helper()
	expectStatus(t, call(t, s, token, http.MethodGet, "/beta/users/"+userUPN+"?$select=id", nil), http.StatusOK)
}

func expectAuthFailure(t *testing.T, err error, aadsts string, status int, mustNotContain string) {
	t.Helper()
	var authErr *azidentity.AuthenticationFailedError
	if !errors.As(err, &authErr) {
		t.Fatalf("want an AuthenticationFailedError, got %v", err)
	}
	if authErr.RawResponse == nil || authErr.RawResponse.StatusCode != status {
		t.Fatalf("want HTTP %d, got %v", status, authErr.RawResponse)
	}
	if !strings.Contains(err.Error(), aadsts) {
		t.Fatalf("error does not name %s: %v", aadsts, err)
	}
	if mustNotContain != "" && strings.Contains(err.Error(), mustNotContain) {
		t.Fatalf("error echoes the credential: %v", err)
	}
}

func TestClientSecretCredentialGetsAUsableGraphToken(t *testing.T) {
	s := start(t, baseConfig())
	cred, err := azidentity.NewClientSecretCredential(tenantID, clientID, secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(s), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	token, err := getToken(t, cred)
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	expectUsable(t, s, token)

	// The token verifies against the key set the discovery document points to, and carries the
	// claims Graph and the operator rely on.
	claims := verifyWithPublishedKeys(t, s, token)
	if claims["aud"] != graphURL || claims["tid"] != tenantID || claims["appid"] != clientID || claims["azp"] != clientID {
		t.Fatalf("unexpected claims %v", claims)
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 3600 {
		t.Fatalf("lifetime %v s, want one hour", exp-iat)
	}
	roles, _ := claims["roles"].([]any)
	if len(roles) != len(graphsim.DefaultRoles) {
		t.Fatalf("roles %v, want %v", roles, graphsim.DefaultRoles)
	}

	// The journal saw MSAL's discovery and token requests.
	var sawDiscovery, sawToken bool
	for _, e := range s.Journal() {
		sawDiscovery = sawDiscovery || (strings.Contains(e.Path, "/.well-known/openid-configuration") && e.Status == 200)
		sawToken = sawToken || (strings.HasSuffix(e.Path, "/oauth2/v2.0/token") && e.Status == 200 && e.ClientID == clientID && e.TenantID == tenantID)
	}
	if !sawDiscovery || !sawToken {
		t.Fatalf("journal lacks sign-in entries: %+v", s.Journal())
	}
}

func verifyWithPublishedKeys(t *testing.T, s *graphsim.Server, token string) jwt.MapClaims {
	t.Helper()
	get := func(u string, v any) {
		resp, err := s.Client().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var oidc struct {
		JWKSURI       string `json:"jwks_uri"`
		TokenEndpoint string `json:"token_endpoint"`
		Issuer        string `json:"issuer"`
	}
	get(s.URL()+"/"+tenantID+"/v2.0/.well-known/openid-configuration", &oidc)
	if oidc.TokenEndpoint != s.URL()+"/"+tenantID+"/oauth2/v2.0/token" || !strings.HasPrefix(oidc.Issuer, s.URL()+"/") {
		t.Fatalf("token_endpoint %q issuer %q", oidc.TokenEndpoint, oidc.Issuer)
	}
	var jwks struct {
		Keys []struct{ N, E string } `json:"keys"`
	}
	get(oidc.JWKSURI, &jwks)
	if len(jwks.Keys) != 1 {
		t.Fatalf("jwks %+v", jwks)
	}
	n, _ := base64.RawURLEncoding.DecodeString(jwks.Keys[0].N)
	e, _ := base64.RawURLEncoding.DecodeString(jwks.Keys[0].E)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer("https://sts.windows.net/"+tenantID+"/")); err != nil {
		t.Fatalf("token does not verify with the published key: %v", err)
	}
	return claims
}

func TestClientSecretCredentialWithWrongSecretIsRefused(t *testing.T) {
	s := start(t, baseConfig())
	const wrong = "not-the-secret-0123456789"
	cred, err := azidentity.NewClientSecretCredential(tenantID, clientID, wrong,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(s), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = getToken(t, cred)
	expectAuthFailure(t, err, "AADSTS7000215", http.StatusUnauthorized, wrong)
}

// selfSigned makes an RSA client certificate like `az ad sp credential reset --create-cert` does.
func selfSigned(t *testing.T) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "operator"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestClientCertificateCredential(t *testing.T) {
	registered, registeredKey := selfSigned(t)
	other, otherKey := selfSigned(t)
	cfg := baseConfig()
	cfg.Tenants[0].Apps[0].Certificates = []*x509.Certificate{registered}
	s := start(t, cfg)
	opts := &azidentity.ClientCertificateCredentialOptions{ClientOptions: clientOptions(s), DisableInstanceDiscovery: true}

	cred, err := azidentity.NewClientCertificateCredential(tenantID, clientID, []*x509.Certificate{registered}, registeredKey, opts)
	if err != nil {
		t.Fatal(err)
	}
	token, err := getToken(t, cred)
	if err != nil {
		t.Fatalf("registered certificate: %v", err)
	}
	expectUsable(t, s, token)

	cred, err = azidentity.NewClientCertificateCredential(tenantID, clientID, []*x509.Certificate{other}, otherKey, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = getToken(t, cred)
	expectAuthFailure(t, err, "AADSTS700027", http.StatusUnauthorized, "")
}

func TestClientAssertionChecks(t *testing.T) {
	registered, registeredKey := selfSigned(t)
	_, otherKey := selfSigned(t)
	cfg := baseConfig()
	cfg.Tenants[0].Apps[0].Certificates = []*x509.Certificate{registered}
	s := start(t, cfg)
	endpoint := s.URL() + "/" + tenantID + "/oauth2/v2.0/token"
	sum := sha256.Sum256(registered.Raw)

	// azidentity refuses a key that does not match the certificate, so build the assertions here.
	assertion := func(key *rsa.PrivateKey, edit func(jwt.MapClaims)) string {
		claims := jwt.MapClaims{"aud": endpoint, "iss": clientID, "sub": clientID, "jti": "1",
			"nbf": time.Now().Unix(), "exp": time.Now().Add(10 * time.Minute).Unix()}
		edit(claims)
		tok := jwt.NewWithClaims(jwt.SigningMethodPS256, claims)
		tok.Header["x5t#S256"] = base64.StdEncoding.EncodeToString(sum[:])
		signed, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	cases := []struct {
		name   string
		jwt    string
		status int
		aadsts string
	}{
		{"valid", assertion(registeredKey, func(jwt.MapClaims) {}), 200, ""},
		{"signed by another key", assertion(otherKey, func(jwt.MapClaims) {}), 401, "AADSTS700027"},
		{"other audience", assertion(registeredKey, func(c jwt.MapClaims) { c["aud"] = "https://login.microsoftonline.com/x" }), 401, "AADSTS50013"},
		{"issuer is not the client", assertion(registeredKey, func(c jwt.MapClaims) { c["iss"] = "someone" }), 401, "AADSTS700021"},
		{"expired", assertion(registeredKey, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }), 401, "AADSTS700024"},
		{"no expiry", assertion(registeredKey, func(c jwt.MapClaims) { delete(c, "exp") }), 401, "AADSTS700024"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := tokenRequest(t, s, tenantID, url.Values{
				"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {graphURL + "/.default"},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
				"client_assertion":      {tc.jwt},
			})
			desc, _ := body["error_description"].(string)
			if status != tc.status || !strings.HasPrefix(desc, tc.aadsts) {
				t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.aadsts)
			}
		})
	}
}

func TestWorkloadIdentityCredential(t *testing.T) {
	const subject = "system:serviceaccount:intune-cert-operator:controller"
	cfg := baseConfig()
	cfg.Tenants[0].Apps[0].FederatedSubjects = []string{subject}
	s := start(t, cfg)

	credFor := func(sub string) *azidentity.WorkloadIdentityCredential {
		tok, err := s.FederatedToken(tenantID, clientID, sub)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(file, []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
		cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: clientOptions(s), ClientID: clientID, TenantID: tenantID, TokenFilePath: file,
			DisableInstanceDiscovery: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		return cred
	}

	token, err := getToken(t, credFor(subject))
	if err != nil {
		t.Fatalf("federated subject: %v", err)
	}
	expectUsable(t, s, token)

	_, err = getToken(t, credFor("system:serviceaccount:default:someone-else"))
	expectAuthFailure(t, err, "AADSTS70021", http.StatusUnauthorized, "")

	if _, err := s.FederatedToken(tenantID, "unknown-app", subject); err == nil {
		t.Fatal("FederatedToken for an unknown app succeeded")
	}
}

func TestTokenEndpointRefusals(t *testing.T) {
	s := start(t, baseConfig())
	good := func() url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID},
			"client_secret": {secret}, "scope": {graphURL + "/.default"}}
	}
	cases := []struct {
		name   string
		tenant string
		edit   func(url.Values)
		status int
		error  string
	}{
		{"scope without /.default", tenantID, func(v url.Values) { v.Set("scope", graphURL+"/User.Read.All") }, 400, "invalid_scope"},
		{"scope of another resource", tenantID, func(v url.Values) { v.Set("scope", "https://vault.azure.net/.default") }, 400, "invalid_scope"},
		{"unknown client", tenantID, func(v url.Values) { v.Set("client_id", "11111111-0000-0000-0000-000000000000") }, 400, "unauthorized_client"},
		{"unknown tenant", "22222222-0000-0000-0000-000000000000", func(url.Values) {}, 400, "invalid_tenant"},
		{"other grant", tenantID, func(v url.Values) { v.Set("grant_type", "password") }, 400, "unsupported_grant_type"},
		{"no credential", tenantID, func(v url.Values) { v.Del("client_secret") }, 401, "invalid_client"},
		{"wrong secret", tenantID, func(v url.Values) { v.Set("client_secret", "Wr0ng-S3cret") }, 401, "invalid_client"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			form := good()
			tc.edit(form)
			status, body := tokenRequest(t, s, tc.tenant, form)
			if status != tc.status || body["error"] != tc.error {
				t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.error)
			}
			raw, _ := json.Marshal(body)
			if strings.Contains(string(raw), "Wr0ng-S3cret") || strings.Contains(string(raw), secret) {
				t.Fatalf("answer echoes a secret: %s", raw)
			}
		})
	}
	// MSAL adds the OIDC scopes to every request; they must not make the scope invalid.
	form := good()
	form.Set("scope", graphURL+"/.default openid offline_access profile")
	if status, body := tokenRequest(t, s, tenantID, form); status != 200 || body["token_type"] != "Bearer" {
		t.Fatalf("got %d %v", status, body)
	}
}

func TestGraphRefusesMissingForgedAndExpiredTokens(t *testing.T) {
	clk := newClock()
	cfg := baseConfig()
	cfg.Now = clk.Now
	s := start(t, cfg)
	good := secretToken(t, s)
	expectUsable(t, s, good)

	forgeKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(good, claims); err != nil {
		t.Fatal(err)
	}
	forged, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(forgeKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, token := range map[string]string{"missing": "", "garbage": "abc.def.ghi", "forged": forged} {
		r := call(t, s, token, http.MethodGet, "/beta/users/"+userUPN, nil)
		if r.status != http.StatusUnauthorized || r.errorCode(t) != "InvalidAuthenticationToken" {
			t.Fatalf("%s token: %d %s", name, r.status, r.body)
		}
	}
	clk.Advance(61 * time.Minute)
	r := call(t, s, good, http.MethodGet, "/beta/users/"+userUPN, nil)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.errorMessage(t), "expired") {
		t.Fatalf("expired token: %d %s", r.status, r.body)
	}
	last := s.Journal()[len(s.Journal())-1]
	if last.Status != http.StatusUnauthorized {
		t.Fatalf("journal recorded %d for the refused request", last.Status)
	}
}

func TestAudienceFollowsConfig(t *testing.T) {
	// Two emulators sharing a state file share their signing key; only the audience differs.
	state := filepath.Join(t.TempDir(), "state.json")
	cfg := baseConfig()
	cfg.StateFile = state
	public := start(t, cfg)
	publicToken := secretToken(t, public)
	public.Close()

	cfg.Audience = "https://graph.microsoft.us"
	gov := start(t, cfg)
	status, body := tokenRequest(t, gov, tenantID, url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID},
		"client_secret": {secret}, "scope": {graphURL + "/.default"}})
	if status != 400 || body["error"] != "invalid_scope" {
		t.Fatalf("got %d %v", status, body)
	}
	status, body = tokenRequest(t, gov, tenantID, url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID},
		"client_secret": {secret}, "scope": {"https://graph.microsoft.us/.default"}})
	if status != 200 {
		t.Fatalf("got %d %v", status, body)
	}
	expectUsable(t, gov, body["access_token"].(string))

	r := call(t, gov, publicToken, http.MethodGet, "/beta/users/"+userUPN, nil)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.errorMessage(t), "audience") {
		t.Fatalf("token for another audience: %d %s", r.status, r.body)
	}
}
