package graphsim_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/certops/intune-cert-operator/test/graphsim"
)

const workloadSubject = "system:serviceaccount:intune-cert-operator:controller"

// oidcIssuer is an external OIDC issuer (a Kubernetes API server's service-account issuer, say) served
// over TLS with its own CA: discovery document and key set, with switches for its failure modes.
type oidcIssuer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	keys map[string]crypto.Signer // by kid: the published key set

	discoveryFetches, jwksFetches atomic.Int32
	// failure modes
	claimedIssuer string // discovery names this issuer instead ("" = the right one)
	redirect      bool   // discovery answers 302 to the real document
	status        int    // discovery answers this status (0 = 200)
	hugeKeySet    bool   // the key set is larger than any real one
}

func newOIDCIssuer(t *testing.T) *oidcIssuer {
	t.Helper()
	iss := &oidcIssuer{keys: map[string]crypto.Signer{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", iss.discovery)
	mux.HandleFunc("GET /moved", func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(w, map[string]any{"issuer": iss.URL(), "jwks_uri": iss.URL() + "/openid/v1/jwks"})
	})
	mux.HandleFunc("GET /openid/v1/jwks", iss.jwks)
	iss.srv = httptest.NewUnstartedServer(mux)
	iss.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	iss.srv.StartTLS()
	t.Cleanup(iss.srv.Close)
	return iss
}

func (i *oidcIssuer) URL() string { return i.srv.URL }

// roots trust this issuer's TLS certificate.
func (i *oidcIssuer) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(i.srv.Certificate())
	return pool
}

func (i *oidcIssuer) discovery(w http.ResponseWriter, r *http.Request) {
	i.discoveryFetches.Add(1)
	i.mu.Lock()
	claimed, redirect, status := i.claimedIssuer, i.redirect, i.status
	i.mu.Unlock()
	switch {
	case redirect:
		http.Redirect(w, r, "/moved", http.StatusFound)
	case status != 0:
		http.Error(w, "unavailable", status)
	default:
		if claimed == "" {
			claimed = i.URL()
		}
		writeTestJSON(w, map[string]any{"issuer": claimed, "jwks_uri": i.URL() + "/openid/v1/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"}})
	}
}

func (i *oidcIssuer) jwks(w http.ResponseWriter, r *http.Request) {
	i.jwksFetches.Add(1)
	// Like kube-apiserver, which serves application/jwk-set+json and answers 406 to a client not accepting it.
	if accept := r.Header.Get("Accept"); accept != "" && !strings.Contains(accept, "application/jwk-set+json") && !strings.Contains(accept, "*/*") {
		http.Error(w, "not acceptable", http.StatusNotAcceptable)
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	keys := []map[string]any{{"kty": "oct", "use": "enc", "kid": "ignored", "k": "c2VjcmV0"}} // skipped
	for kid, k := range i.keys {
		keys = append(keys, publicJWK(kid, k.Public()))
	}
	if i.hugeKeySet {
		keys = append(keys, map[string]any{"kty": "RSA", "kid": "padding", "n": strings.Repeat("A", 1<<20), "e": "AQAB"})
	}
	writeTestJSON(w, map[string]any{"keys": keys})
}

func publicJWK(kid string, pub crypto.PublicKey) map[string]any {
	b64 := base64.RawURLEncoding.EncodeToString
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
			"n": b64(p.N.Bytes()), "e": b64(big.NewInt(int64(p.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, _ := p.Bytes() // 0x04 || X || Y
		return map[string]any{"kty": "EC", "use": "sig", "alg": "ES256", "crv": "P-256", "kid": kid,
			"x": b64(raw[1:33]), "y": b64(raw[33:])}
	}
	panic("unexpected key type")
}

func writeTestJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// publish adds a key to the key set (a rotation, when done after sign-ins).
func (i *oidcIssuer) publish(kid string, key crypto.Signer) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys[kid] = key
}

// mint signs a service-account-like token; edit adjusts the claims.
func (i *oidcIssuer) mint(t *testing.T, kid string, key crypto.Signer, edit func(jwt.MapClaims)) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{"iss": i.URL(), "sub": workloadSubject, "aud": []string{"api://AzureADTokenExchange"},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	if edit != nil {
		edit(claims)
	}
	method := jwt.SigningMethod(jwt.SigningMethodRS256)
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		method = jwt.SigningMethodES256
	}
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = kid
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// federatedSignIn posts assertion as the client credential of the base app; it returns the status,
// the AADSTS code ("" on success) and the whole answer.
func federatedSignIn(t *testing.T, s *graphsim.Server, assertion string) (int, string, map[string]any) {
	t.Helper()
	status, body := tokenRequest(t, s, tenantID, url.Values{
		"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {graphURL + "/.default"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	})
	desc, _ := body["error_description"].(string)
	code, _, _ := strings.Cut(desc, ":")
	raw, _ := json.Marshal(body)
	if strings.Contains(string(raw), assertion) {
		t.Fatalf("the answer echoes the assertion: %s", raw)
	}
	return status, code, body
}

func federatedConfig(creds ...graphsim.FederatedCredential) graphsim.Config {
	cfg := baseConfig()
	cfg.Tenants[0].Apps[0].FederatedCredentials = creds
	return cfg
}

// An external issuer's tokens are checked like Entra ID checks them: discovery, key by kid (RS256 or
// ES256), lifetime, then subject and audience against the credential.
func TestFederatedCredentialOfExternalIssuer(t *testing.T) {
	iss := newOIDCIssuer(t)
	rsaK, ecK, unpublished := rsaKey(t), ecKey(t), rsaKey(t)
	iss.publish("rsa-1", rsaK)
	iss.publish("ec-1", ecK)
	stranger := newOIDCIssuer(t) // a real issuer, but in no credential
	stranger.publish("rsa-1", rsaK)

	cfg := federatedConfig(
		graphsim.FederatedCredential{Issuer: iss.URL(), Subject: workloadSubject},
		graphsim.FederatedCredential{Issuer: iss.URL(), Subject: "system:serviceaccount:other:custom-audience", Audiences: []string{"api://custom"}},
	)
	cfg.OIDCIssuerRoots = iss.roots()
	s := start(t, cfg)

	tampered := tamper(iss.mint(t, "rsa-1", rsaK, nil))
	cases := []struct {
		name   string
		jwt    string
		status int
		aadsts string
	}{
		{"RS256", iss.mint(t, "rsa-1", rsaK, nil), 200, ""},
		{"ES256", iss.mint(t, "ec-1", ecK, nil), 200, ""},
		{"audience among several", iss.mint(t, "rsa-1", rsaK, func(c jwt.MapClaims) {
			c["aud"] = []string{"https://kubernetes.default.svc", "api://AzureADTokenExchange"}
		}), 200, ""},
		{"credential's own audience", iss.mint(t, "rsa-1", rsaK, func(c jwt.MapClaims) {
			c["sub"], c["aud"] = "system:serviceaccount:other:custom-audience", "api://custom"
		}), 200, ""},
		{"other subject", iss.mint(t, "rsa-1", rsaK, func(c jwt.MapClaims) { c["sub"] = "system:serviceaccount:default:someone-else" }), 401, "AADSTS70021"},
		{"subject differing in case", iss.mint(t, "rsa-1", rsaK, func(c jwt.MapClaims) { c["sub"] = strings.ToUpper(workloadSubject) }), 401, "AADSTS70021"},
		{"other audience", iss.mint(t, "rsa-1", rsaK, func(c jwt.MapClaims) { c["aud"] = []string{"https://kubernetes.default.svc"} }), 401, "AADSTS70021"},
		{"audience of another credential", iss.mint(t, "rsa-1", rsaK, func(c jwt.MapClaims) { c["aud"] = "api://custom" }), 401, "AADSTS70021"},
		{"issuer in no credential", stranger.mint(t, "rsa-1", rsaK, nil), 401, "AADSTS70021"},
		{"issuer with a trailing slash added", iss.mint(t, "rsa-1", rsaK, func(c jwt.MapClaims) { c["iss"] = iss.URL() + "/" }), 401, "AADSTS70021"},
		{"tampered signature", tampered, 401, "AADSTS50013"},
		{"key not in the key set", iss.mint(t, "rsa-2", unpublished, nil), 401, "AADSTS50013"},
		{"published kid, other key", iss.mint(t, "rsa-1", unpublished, nil), 401, "AADSTS50013"},
		{"expired", iss.mint(t, "rsa-1", rsaK, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() }), 401, "AADSTS700024"},
		{"not yet valid", iss.mint(t, "rsa-1", rsaK, func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), 401, "AADSTS700024"},
		{"no expiry", iss.mint(t, "rsa-1", rsaK, func(c jwt.MapClaims) { delete(c, "exp") }), 401, "AADSTS700024"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, code, body := federatedSignIn(t, s, tc.jwt)
			if status != tc.status || code != tc.aadsts {
				t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.aadsts)
			}
			if status == 200 {
				expectUsable(t, s, body["access_token"].(string))
			}
		})
	}
	// An assertion names its issuer, but only configured issuers are ever contacted.
	if n := stranger.discoveryFetches.Load() + stranger.jwksFetches.Load(); n != 0 {
		t.Fatalf("an issuer in no credential was contacted %d times", n)
	}
}

// tamper changes one bit in the middle of a JWT's signature: still well-formed, no longer valid.
func tamper(token string) string {
	dot := strings.LastIndex(token, ".")
	sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
	if err != nil {
		panic(err)
	}
	sig[len(sig)/2] ^= 1
	return token[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// Keys are fetched once and reused; a kid the cached set lacks (a rotation) fetches them again.
func TestExternalIssuerKeysAreCachedAndRefetchedOnRotation(t *testing.T) {
	iss := newOIDCIssuer(t)
	first, second := rsaKey(t), ecKey(t)
	iss.publish("k1", first)
	cfg := federatedConfig(graphsim.FederatedCredential{Issuer: iss.URL(), Subject: workloadSubject})
	cfg.OIDCIssuerRoots = iss.roots()
	s := start(t, cfg)

	for range 3 {
		if status, code, body := federatedSignIn(t, s, iss.mint(t, "k1", first, nil)); status != 200 {
			t.Fatalf("k1: %d %s %v", status, code, body)
		}
	}
	if d, k := iss.discoveryFetches.Load(), iss.jwksFetches.Load(); d != 1 || k != 1 {
		t.Fatalf("%d discovery and %d key set fetches for three sign-ins, want 1 and 1", d, k)
	}
	iss.publish("k2", second)
	if status, code, body := federatedSignIn(t, s, iss.mint(t, "k2", second, nil)); status != 200 {
		t.Fatalf("rotated key: %d %s %v", status, code, body)
	}
	if k := iss.jwksFetches.Load(); k != 2 {
		t.Fatalf("%d key set fetches after a rotation, want 2", k)
	}
}

// When the issuer's documents cannot be had, or are not what they claim, sign-in fails with
// AADSTS50166 and no token.
func TestExternalIssuerDiscoveryFailures(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(*oidcIssuer)
		trusted bool
		reason  string
	}{
		{"untrusted TLS certificate", func(*oidcIssuer) {}, false, "certificate"},
		{"discovery names another issuer", func(i *oidcIssuer) { i.claimedIssuer = "https://evil.example" }, true, "names issuer"},
		{"discovery redirects", func(i *oidcIssuer) { i.redirect = true }, true, "HTTP 302"},
		{"discovery fails", func(i *oidcIssuer) { i.status = http.StatusServiceUnavailable }, true, "HTTP 503"},
		{"key set too large", func(i *oidcIssuer) { i.hugeKeySet = true }, true, "larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			iss := newOIDCIssuer(t)
			key := rsaKey(t)
			iss.publish("k1", key)
			tc.setup(iss)
			cfg := federatedConfig(graphsim.FederatedCredential{Issuer: iss.URL(), Subject: workloadSubject})
			if tc.trusted {
				cfg.OIDCIssuerRoots = iss.roots()
			}
			s := start(t, cfg)
			status, code, body := federatedSignIn(t, s, iss.mint(t, "k1", key, nil))
			desc, _ := body["error_description"].(string)
			if status != http.StatusBadRequest || code != "AADSTS50166" || !strings.Contains(desc, tc.reason) || body["access_token"] != nil {
				t.Fatalf("got %d %v, want 400 AADSTS50166 naming %q", status, body, tc.reason)
			}
		})
	}
}

// The table and the issuer CA come from the --config file under their JSON names; typos and issuers
// Entra ID would refuse fail at load or start.
func TestConfigFileFederatedCredentials(t *testing.T) {
	iss := newOIDCIssuer(t)
	key := ecKey(t)
	iss.publish("k1", key)
	dir := t.TempDir()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, "issuer-ca.pem"), caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", `
oidcIssuerCAFile: issuer-ca.pem
tenants:
- id: `+tenantID+`
  apps:
  - clientId: `+clientID+`
    federatedCredentials:
    - issuer: `+iss.URL()+`
      subject: `+workloadSubject+`
      audiences: [api://AzureADTokenExchange]
`)
	cfg, err := graphsim.LoadConfig(good)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OIDCIssuerRoots == nil || len(cfg.Tenants[0].Apps[0].FederatedCredentials) != 1 {
		t.Fatalf("config not read: %+v", cfg)
	}
	s := start(t, cfg)
	if status, code, body := federatedSignIn(t, s, iss.mint(t, "k1", key, nil)); status != 200 {
		t.Fatalf("sign-in with the config file's credential: %d %s %v", status, code, body)
	}

	typo := write("typo.yaml", "tenants:\n- id: t\n  apps:\n  - clientId: c\n    federatedCredentials:\n    - issuer: https://x\n      subjet: s\n")
	if _, err := graphsim.LoadConfig(typo); err == nil || !strings.Contains(err.Error(), "subjet") {
		t.Fatalf("a misspelt field was accepted: %v", err)
	}
	if _, err := graphsim.LoadConfig(write("noca.yaml", "oidcIssuerCAFile: missing.pem\ntenants: []\n")); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
	for _, bad := range []graphsim.FederatedCredential{
		{Issuer: "http://127.0.0.1:6443", Subject: workloadSubject},
		{Issuer: "https://issuer.example?x=1", Subject: workloadSubject},
		{Issuer: "https://issuer.example", Subject: ""},
	} {
		if s, err := graphsim.Start(federatedConfig(bad)); err == nil {
			s.Close()
			t.Errorf("Start accepted %+v", bad)
		}
	}
}
