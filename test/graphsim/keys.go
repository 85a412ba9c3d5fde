package graphsim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// keys is the emulator's identity: the TLS CA, the Entra ID token-signing key and the
// "Kubernetes OIDC issuer" key that signs federated (workload identity) tokens. They are kept in
// the state file so that a restarted emulator is still trusted and still accepts issued tokens.
type keys struct {
	caCert    *x509.Certificate
	caKey     *ecdsa.PrivateKey
	tokenKey  *rsa.PrivateKey   // RS256, like Entra ID
	issuerKey *ecdsa.PrivateKey // ES256, a Kubernetes service-account issuer may use either
}

// keysFile is the persisted form of keys (DER, base64 in JSON).
type keysFile struct {
	CACert    []byte `json:"caCert"`
	CAKey     []byte `json:"caKey"`
	TokenKey  []byte `json:"tokenKey"`
	IssuerKey []byte `json:"issuerKey"`
}

func newKeys() (*keys, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("graphsim: generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "graphsim test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("graphsim: create CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("graphsim: parse CA certificate: %w", err)
	}
	tokenKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("graphsim: generate token key: %w", err)
	}
	issuerKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("graphsim: generate issuer key: %w", err)
	}
	return &keys{caCert: caCert, caKey: caKey, tokenKey: tokenKey, issuerKey: issuerKey}, nil
}

func (k *keys) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.caCert.Raw})
}

// serverCertificate issues a fresh serving certificate for the loopback names plus extra.
func (k *keys) serverCertificate(extra []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("graphsim: generate server key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "graphsim"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	for _, name := range extra {
		if ip := net.ParseIP(name); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, name)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, k.caCert, key.Public(), k.caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("graphsim: create server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// tokenKeyID names the token key in JWT headers and the JWKS (base64url SHA-256 of its SPKI).
func (k *keys) tokenKeyID() string { return keyID(k.tokenKey.Public()) }

func (k *keys) issuerKeyID() string { return keyID(k.issuerKey.Public()) }

func keyID(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

func (k *keys) toFile() (keysFile, error) {
	caKey, err := x509.MarshalPKCS8PrivateKey(k.caKey)
	if err != nil {
		return keysFile{}, fmt.Errorf("graphsim: marshal CA key: %w", err)
	}
	tokenKey, err := x509.MarshalPKCS8PrivateKey(k.tokenKey)
	if err != nil {
		return keysFile{}, fmt.Errorf("graphsim: marshal token key: %w", err)
	}
	issuerKey, err := x509.MarshalPKCS8PrivateKey(k.issuerKey)
	if err != nil {
		return keysFile{}, fmt.Errorf("graphsim: marshal issuer key: %w", err)
	}
	return keysFile{CACert: k.caCert.Raw, CAKey: caKey, TokenKey: tokenKey, IssuerKey: issuerKey}, nil
}

func (f keysFile) toKeys() (*keys, error) {
	caCert, err := x509.ParseCertificate(f.CACert)
	if err != nil {
		return nil, fmt.Errorf("graphsim: parse stored CA certificate: %w", err)
	}
	k := &keys{caCert: caCert}
	if k.caKey, err = parseKey[*ecdsa.PrivateKey](f.CAKey, "CA key"); err != nil {
		return nil, err
	}
	if k.tokenKey, err = parseKey[*rsa.PrivateKey](f.TokenKey, "token key"); err != nil {
		return nil, err
	}
	if k.issuerKey, err = parseKey[*ecdsa.PrivateKey](f.IssuerKey, "issuer key"); err != nil {
		return nil, err
	}
	return k, nil
}

func parseKey[T any](der []byte, name string) (T, error) {
	var zero T
	v, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return zero, fmt.Errorf("graphsim: parse stored %s: %w", name, err)
	}
	k, ok := v.(T)
	if !ok {
		return zero, errors.New("graphsim: stored " + name + " has the wrong type")
	}
	return k, nil
}
