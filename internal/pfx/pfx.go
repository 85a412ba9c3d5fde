package pfx

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// MinRSABits is the smallest RSA key Intune accepts, for user certificates and the connector key alike.
const MinRSABits = 2048

// Material is one certificate with its private key as Intune receives it: the raw PFX bytes
// (sent as encryptedPfxBlob) and the password that opens them.
type Material struct {
	PFX      []byte
	Password string
	Leaf     *x509.Certificate
	Chain    []*x509.Certificate
	Facts    Facts
}

// FromPFX opens a PKCS#12 file. data may be raw DER or base64 text (std or URL alphabet, with or without
// padding and whitespace); Material.PFX is the DER as given, decoded from base64 if it was. The leaf is
// the certificate whose public key matches the private key, whatever the bag order; the other
// certificates form the chain. The password must be ASCII (the connector reads one byte per character)
// and an RSA key must have at least 2048 bits. Validity dates are not checked here: see CheckValidity.
func FromPFX(data []byte, password string) (*Material, error) {
	if err := checkASCII(password); err != nil {
		return nil, err
	}
	opened, err := openPFX(data, password)
	if err != nil {
		return nil, err
	}
	if err := checkKeyStrength(opened.leaf); err != nil {
		return nil, err
	}
	return &Material{
		PFX:      opened.der,
		Password: password,
		Leaf:     opened.leaf,
		Chain:    opened.chain,
		Facts:    FactsOf(opened.leaf),
	}, nil
}

// Encoding is how a PFX built by FromTLS is encrypted, in the API's names.
type Encoding string

const (
	// EncodingTripleDESSHA1 encrypts keys and certificates with PBE-SHA1-3DES and MACs with HMAC-SHA-1, as
	// OpenSSL's -descert: every Windows version opens it, Server 2016 and earlier included.
	EncodingTripleDESSHA1 Encoding = "TripleDES-SHA1"
	// EncodingAES256SHA256 uses PBES2 (PBKDF2-HMAC-SHA-256, AES-256-CBC) and an HMAC-SHA-256 MAC, which
	// Windows opens from Server 2019 / Windows 10 1709 on.
	EncodingAES256SHA256 Encoding = "AES256-SHA256"
)

// OrDefault returns e, or TripleDES-SHA1 for the empty Encoding.
func (e Encoding) OrDefault() Encoding {
	if e == "" {
		return EncodingTripleDESSHA1
	}
	return e
}

// encoder returns go-pkcs12's encoder for e; the empty Encoding is the default, TripleDES-SHA1.
func (e Encoding) encoder() (*pkcs12.Encoder, error) {
	switch e {
	case EncodingTripleDESSHA1, "":
		return pkcs12.LegacyDES, nil
	case EncodingAES256SHA256:
		return pkcs12.Modern2023, nil
	}
	return nil, newError(ReasonInvalidPfx, nil, "pfxEncoding %q is not supported; use TripleDES-SHA1 or AES256-SHA256", string(e))
}

// FromTLS builds a PFX from a kubernetes.io/tls Secret's tls.crt (PEM chain; the leaf is the certificate
// matching the key, wherever it sits) and tls.key (PKCS#1, PKCS#8 or SEC1 EC, unencrypted PEM), encrypted
// as encoding says ("" = TripleDES-SHA1, which every connector host can open) with a fresh random
// 32-character ASCII password per call.
func FromTLS(certPEM, keyPEM []byte, encoding Encoding) (*Material, error) {
	encoder, err := encoding.encoder()
	if err != nil {
		return nil, err
	}
	certs, err := parsePEMCertificates(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parsePEMPrivateKey(keyPEM)
	if err != nil {
		return nil, err
	}
	leaf, chain, err := splitLeaf(key, certs, "tls.crt")
	if err != nil {
		return nil, err
	}
	if err := checkKeyStrength(leaf); err != nil {
		return nil, err
	}
	password := randomPassword()
	der, err := encoder.Encode(key, leaf, chain, password)
	if err != nil {
		return nil, newError(ReasonInvalidPfx, err, "failed to build a PFX from tls.crt and tls.key: %v", err)
	}
	return &Material{PFX: der, Password: password, Leaf: leaf, Chain: chain, Facts: FactsOf(leaf)}, nil
}

// ParseCertificate reads a bare certificate (PEM, DER, or base64 DER) or a PFX opened with password, and
// returns the leaf: the first PEM certificate, or the PFX certificate matching its key. It does not judge
// key strength or validity.
func ParseCertificate(data []byte, password string) (*x509.Certificate, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, newError(ReasonInvalidCertificate, nil, "the certificate data is empty")
	}
	if bytes.Contains(data, []byte("-----BEGIN")) {
		certs, err := parsePEMCertificates(data)
		if err != nil {
			return nil, err
		}
		return certs[0], nil
	}
	der := data
	if decoded, ok := decodeBase64Text(data); ok {
		der = decoded
	}
	if cert, err := x509.ParseCertificate(der); err == nil {
		return cert, nil
	}
	opened, err := openPFX(der, password)
	if reason, _ := ReasonOf(err); reason == ReasonInvalidPfx {
		return nil, newError(ReasonInvalidCertificate, err,
			"the data is neither a PEM or DER certificate nor a PKCS#12 (PFX) file")
	}
	if err != nil {
		return nil, err
	}
	return opened.leaf, nil
}

// CheckValidity returns a ReasonCertificateExpired or ReasonCertificateNotYetValid error, or nil.
// Both bounds are inclusive, as in RFC 5280.
func CheckValidity(cert *x509.Certificate, now time.Time) error {
	switch {
	case now.Before(cert.NotBefore):
		return newError(ReasonCertificateNotYetValid, nil,
			"certificate %q is not valid before %s; wait, or use a certificate that is already valid",
			distinguishedName(cert.RawSubject, cert.Subject), cert.NotBefore.UTC().Format(time.RFC3339))
	case now.After(cert.NotAfter):
		return newError(ReasonCertificateExpired, nil,
			"certificate %q expired at %s; renew it and update the Secret",
			distinguishedName(cert.RawSubject, cert.Subject), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

type openedPFX struct {
	der   []byte
	leaf  *x509.Certificate
	chain []*x509.Certificate
}

// libraryFailures maps go-pkcs12 v0.7.4 errors that are plain strings (not sentinels) to what they mean
// for the user. TestFromPFXErrors pins each mapping, so a library upgrade that rewords one fails loudly.
var libraryFailures = []struct {
	contains string
	reason   Reason
	message  string
}{
	{"private key missing", ReasonNoPrivateKey,
		"the PFX holds no private key; export the certificate together with its private key"},
	{"certificate missing", ReasonInvalidPfx,
		"the PFX holds no certificate; export the certificate together with its private key"},
}

func openPFX(data []byte, password string) (*openedPFX, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, newError(ReasonInvalidPfx, nil, "the PFX data is empty")
	}
	der, ok := decodeBase64Text(data)
	if !ok {
		der = bytes.Clone(data) // callers may hand in a shared Secret cache buffer
	}
	if !encodableInPKCS12(password) {
		return nil, newError(ReasonWrongPassword, nil,
			"the password holds characters outside Unicode's Basic Multilingual Plane, which PKCS#12 cannot encode, so it cannot open this PFX")
	}
	if err := CheckWorkFactors(der, password); err != nil {
		return nil, err
	}
	key, first, others, err := pkcs12.DecodeChain(der, password)
	if err != nil {
		return nil, pkcs12Error(err)
	}
	leaf, chain, err := splitLeaf(key, append([]*x509.Certificate{first}, others...), "the PFX")
	if err != nil {
		return nil, err
	}
	return &openedPFX{der: der, leaf: leaf, chain: chain}, nil
}

func pkcs12Error(err error) error {
	switch {
	case errors.Is(err, pkcs12.ErrIncorrectPassword):
		// The MAC covers the whole content, so a damaged file fails here too; say both.
		return newError(ReasonWrongPassword, err,
			"the password does not open the PFX (its integrity check failed); check the password, or re-export the file if it may be damaged")
	case isNotImplemented(err):
		return newError(ReasonInvalidPfx, err,
			"the PFX uses a PKCS#12 feature that cannot be read (%v); re-export it with OpenSSL or Windows defaults", err)
	}
	for _, failure := range libraryFailures {
		if strings.Contains(err.Error(), failure.contains) {
			return newError(failure.reason, err, "%s", failure.message)
		}
	}
	// The parser's own words (ASN.1 offsets and struct dumps) stay in Err for debugging.
	return newError(ReasonInvalidPfx, err,
		"the data is not a readable PKCS#12 (PFX) file, raw or base64; check that the Secret holds the whole file")
}

func isNotImplemented(err error) bool {
	_, ok := errors.AsType[pkcs12.NotImplementedError](err)
	return ok
}

// splitLeaf picks the certificate whose public key matches key; the rest, in their order, form the chain.
func splitLeaf(key crypto.PrivateKey, certs []*x509.Certificate, source string) (*x509.Certificate, []*x509.Certificate, error) {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, newError(ReasonNoPrivateKey, nil,
			"the private key in %s is of type %T, which is not supported; use an RSA, ECDSA or Ed25519 key", source, key)
	}
	public, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return nil, nil, newError(ReasonNoPrivateKey, nil, "the private key in %s is of an unsupported type", source)
	}
	for i, cert := range certs {
		if public.Equal(cert.PublicKey) {
			chain := make([]*x509.Certificate, 0, len(certs)-1)
			for j, other := range certs {
				if j != i && !other.Equal(cert) {
					chain = append(chain, other)
				}
			}
			return cert, chain, nil
		}
	}
	return nil, nil, newError(ReasonKeyMismatch, nil,
		"none of the %d certificate(s) in %s matches the private key; pair the certificate with the key it was issued for",
		len(certs), source)
}

// checkKeyStrength refuses RSA keys under MinRSABits. EC and Ed25519 keys are accepted at any curve size.
func checkKeyStrength(cert *x509.Certificate) error {
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); ok && pub.N.BitLen() < MinRSABits {
		return newError(ReasonWeakKey, nil,
			"the certificate's RSA key is %d bits; Intune requires at least %d, so issue a new certificate with a stronger key",
			pub.N.BitLen(), MinRSABits)
	}
	return nil
}

func parsePEMCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, newError(ReasonInvalidCertificate, err,
				"PEM certificate #%d cannot be parsed (%v); check the certificate data", len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, newError(ReasonInvalidCertificate, nil, "the certificate data holds no PEM CERTIFICATE block")
	}
	return certs, nil
}

// parsePEMPrivateKey returns the first private key in keyPEM. Labels are not trusted (some tools write
// PKCS#1 under "PRIVATE KEY"), so every key block is tried as PKCS#8, PKCS#1 and SEC1.
func parsePEMPrivateKey(keyPEM []byte) (crypto.PrivateKey, error) {
	for block, rest := pem.Decode(keyPEM); block != nil; block, rest = pem.Decode(rest) {
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue // e.g. "EC PARAMETERS" ahead of an OpenSSL EC key
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
			return nil, newError(ReasonNoPrivateKey, nil,
				"tls.key is encrypted; a kubernetes.io/tls Secret must hold an unencrypted private key")
		}
		if key, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
			return key, nil
		}
		if key, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
			return key, nil
		}
		if key, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
			return key, nil
		}
		return nil, newError(ReasonNoPrivateKey, nil,
			"tls.key's %q block is not a readable PKCS#8, PKCS#1 or SEC1 EC private key", block.Type)
	}
	return nil, newError(ReasonNoPrivateKey, nil, "tls.key holds no PEM private key block")
}

// decodeBase64Text returns what data decodes to if it is base64 text: standard or URL alphabet, padded or
// not, with any whitespace. DER never qualifies: its length octets are not printable.
func decodeBase64Text(data []byte) ([]byte, bool) {
	clean := make([]byte, 0, len(data))
	for _, c := range data {
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/', c == '=':
			clean = append(clean, c)
		case c == '-':
			clean = append(clean, '+')
		case c == '_':
			clean = append(clean, '/')
		default:
			return nil, false
		}
	}
	clean = bytes.TrimRight(clean, "=")
	if len(clean) == 0 {
		return nil, false
	}
	decoded, err := base64.RawStdEncoding.DecodeString(string(clean))
	if err != nil {
		return nil, false
	}
	return decoded, true
}

// encodableInPKCS12 reports whether PKCS#12's BMPString password encoding can represent s.
func encodableInPKCS12(s string) bool {
	for _, r := range s {
		if r > 0xFFFF {
			return false
		}
	}
	return true
}

// checkASCII refuses non-ASCII passwords: Microsoft's connector turns the decrypted password into
// characters one byte each, so anything else would not open the PFX on the connector.
func checkASCII(password string) error {
	for i := range len(password) {
		if password[i] >= 0x80 {
			return newError(ReasonInvalidPassword, nil,
				"the PFX password contains non-ASCII characters; Intune's connector reads one byte per character, so re-export the PFX with an ASCII password")
		}
	}
	return nil
}

const passwordAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomPassword returns 32 characters from passwordAlphabet (about 190 bits), chosen without modulo bias.
func randomPassword() string {
	const length = 32
	limit := byte(256 - 256%len(passwordAlphabet)) // largest multiple of the alphabet size that fits a byte
	password := make([]byte, 0, length)
	buf := make([]byte, 2*length)
	for len(password) < length {
		_, _ = rand.Read(buf) // never fails: crypto/rand crashes the program instead
		for _, b := range buf {
			if b < limit && len(password) < length {
				password = append(password, passwordAlphabet[int(b)%len(passwordAlphabet)])
			}
		}
	}
	return string(password)
}
