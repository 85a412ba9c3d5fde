package graphsim

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

const (
	// issuerFetchTimeout bounds each discovery or key-set request: a hung issuer must not hang sign-in.
	issuerFetchTimeout = 10 * time.Second
	// maxIssuerDocument bounds a discovery document or key set; real ones are a few kilobytes.
	maxIssuerDocument = 256 << 10
	// issuerKeysTTL is how long an issuer's keys are reused. An unknown kid fetches them again at
	// once, so a rotated key is picked up without waiting.
	issuerKeysTTL = 5 * time.Minute
)

// errKeyNotFound: the issuer's key set has no key named by the assertion's kid.
var errKeyNotFound = errors.New("no key with this kid in the issuer's key set")

// LoadIssuerRoots returns the system's trusted roots plus the PEM certificates in path: what
// Config.OIDCIssuerRoots needs to reach an issuer with a private CA, such as a test kube-apiserver.
func LoadIssuerRoots(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("graphsim: read OIDC issuer CA file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // no system roots here: the file alone
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("graphsim: no PEM certificate in OIDC issuer CA file %s", path)
	}
	return pool, nil
}

// issuerKeys fetches and caches external OIDC issuers' signing keys, as Entra ID does for federated
// identity credentials: discovery document, then jwks_uri.
type issuerKeys struct {
	client *http.Client

	mu   sync.Mutex
	sets map[string]keySet // by issuer
}

type keySet struct {
	keys    []jwk
	fetched time.Time
}

// jwk is a usable public key of a key set.
type jwk struct {
	kid string
	pub crypto.PublicKey
}

func newIssuerKeys(roots *x509.CertPool) *issuerKeys {
	dialer := &net.Dialer{Timeout: issuerFetchTimeout}
	return &issuerKeys{
		sets: map[string]keySet{},
		client: &http.Client{
			Timeout: issuerFetchTimeout,
			// Redirects are not followed: the documents must be where the issuer says they are, and a
			// redirect must not send the emulator to a host nobody configured.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport: &http.Transport{
				// No proxy: test issuers are local, and a proxy from the environment would only get in the way.
				Proxy:               nil,
				DialContext:         dialer.DialContext,
				TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, // nil roots = the system's
				TLSHandshakeTimeout: issuerFetchTimeout,
			},
		},
	}
}

// key returns the issuer's key named kid (kid "" only matches a key set of exactly one key, as OIDC
// requires a kid when there are several). The cache is bypassed when stale or when it lacks kid.
func (k *issuerKeys) key(ctx context.Context, issuer, kid string) (crypto.PublicKey, error) {
	k.mu.Lock()
	set, ok := k.sets[issuer]
	k.mu.Unlock()
	if ok && time.Since(set.fetched) < issuerKeysTTL {
		if pub, found := set.lookup(kid); found {
			return pub, nil
		}
	}
	set, err := k.fetch(ctx, issuer)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.sets[issuer] = set
	k.mu.Unlock()
	if pub, found := set.lookup(kid); found {
		return pub, nil
	}
	return nil, errKeyNotFound
}

func (s keySet) lookup(kid string) (crypto.PublicKey, bool) {
	if kid == "" {
		if len(s.keys) == 1 {
			return s.keys[0].pub, true
		}
		return nil, false
	}
	for _, k := range s.keys {
		if k.kid == kid {
			return k.pub, true
		}
	}
	return nil, false
}

// fetch runs OIDC discovery for issuer and reads its key set.
func (k *issuerKeys) fetch(ctx context.Context, issuer string) (keySet, error) {
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	// OIDC Discovery: a trailing "/" of the issuer is dropped before appending the well-known path.
	if err := k.getJSON(ctx, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration", &meta); err != nil {
		return keySet{}, err
	}
	if meta.Issuer != issuer {
		return keySet{}, fmt.Errorf("the discovery document of %s names issuer %q", issuer, meta.Issuer)
	}
	if err := checkIssuerURL(meta.JWKSURI); err != nil {
		return keySet{}, fmt.Errorf("jwks_uri of %s: %w", issuer, err)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := k.getJSON(ctx, meta.JWKSURI, &doc); err != nil {
		return keySet{}, err
	}
	set := keySet{fetched: time.Now()}
	for _, raw := range doc.Keys {
		if key, ok := parseJWK(raw); ok {
			set.keys = append(set.keys, key)
		}
	}
	if len(set.keys) == 0 {
		return keySet{}, fmt.Errorf("the key set of %s has no usable RSA or P-256 signing key", issuer)
	}
	return set, nil
}

// getJSON GETs an issuer document: 200 only, bounded size, decoded into v.
func (k *issuerKeys) getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, issuerFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	// kube-apiserver answers 406 to a JWKS request that does not accept its media type.
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := k.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // it would name the URL a second time
		}
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIssuerDocument+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxIssuerDocument {
		return fmt.Errorf("GET %s: the document is larger than %d bytes", u, maxIssuerDocument)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: not a JSON document: %w", u, err)
	}
	return nil
}

// parseJWK reads an RSA or P-256 signature key; other keys (encryption keys, other curves, broken
// ones) are skipped, as a relying party skips what it cannot use.
func parseJWK(raw json.RawMessage) (jwk, bool) {
	var k struct {
		Kty, Kid, Use, Crv string
		N, E, X, Y         string
	}
	if json.Unmarshal(raw, &k) != nil || (k.Use != "" && k.Use != "sig") {
		return jwk{}, false
	}
	b64 := base64.RawURLEncoding.DecodeString
	switch k.Kty {
	case "RSA":
		n, errN := b64(k.N)
		e, errE := b64(k.E)
		if errN != nil || errE != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
			return jwk{}, false
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		return jwk{k.Kid, pub}, true
	case "EC":
		x, errX := b64(k.X)
		y, errY := b64(k.Y)
		if k.Crv != "P-256" || errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return jwk{}, false
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return jwk{}, false
		}
		return jwk{k.Kid, pub}, true
	}
	return jwk{}, false
}
