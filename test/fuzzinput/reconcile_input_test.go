// Package fuzzinput fuzzes what a reconciler reads from Secrets (PFX bytes and password, tls.crt and
// tls.key, the connector public key) through the same internal/pfx functions the reconcilers call, in the
// same order, without a cluster.
package fuzzinput

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/certops/intune-cert-operator/internal/pfx"
)

// marker starts every password the fuzzer tries. No message template of internal/pfx contains it, so a
// message holding marker+password quotes the password: a leak, not a coincidence. Passwords shorter than
// the marker could otherwise match any message by chance.
const marker = "Zq#7"

// window is the length of the slices of secret input looked for in messages.
const window = 16

// paddings are the values spec.pfxEncryption.paddingScheme may take, plus one the API would refuse.
var paddings = []pfx.Padding{"", pfx.PaddingOAEPSHA512, "oaepSha256", "oaepSha384", "pkcs1", "oaepSha1", "none", "rot13"}

// FuzzReconcileInput feeds arbitrary Secret data through the reconcilers' read path:
//
//	UserPfxCertificate (pfx source):  FromPFX(pfx, password), CheckValidity, ParsePublicKey, EncryptPassword
//	UserPfxCertificate (tls source):  FromTLS(tls.crt, tls.key), CheckValidity, ParsePublicKey, EncryptPassword
//	ManagedDeviceCertificateState:    ParseCertificate(tls.crt or a PFX, password)
//
// and asserts no panic (the fuzzer's own check), and that every error is a *pfx.Error with a reason and a
// message that quotes neither the password, nor the PFX bytes, nor the private key.
func FuzzReconcileInput(f *testing.F) {
	seeds := newSeeds(f)
	f.Add(seeds.pfx, "Seed-Pa55", seeds.certPEM, seeds.keyPEM, seeds.publicPEM, uint8(1))
	f.Add(seeds.pfx, "wrong", seeds.certPEM, seeds.otherKeyPEM, seeds.cngBlob, uint8(2))
	f.Add([]byte(base64.StdEncoding.EncodeToString(seeds.pfx)), "Seed-Pa55", seeds.ecCertPEM, seeds.ecKeyPEM, seeds.weakPublicPEM, uint8(3))
	f.Add(seeds.pfx[:len(seeds.pfx)/2], "Seed-Pa55", seeds.certPEM[:40], seeds.keyPEM[:60], seeds.cngBlob[:30], uint8(4))
	f.Add([]byte{}, "", []byte{}, []byte{}, []byte{}, uint8(0))
	f.Add([]byte("not a pfx"), "p\u00e4ssword", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
		[]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), []byte("RSA1"), uint8(5))
	f.Add(seeds.longPasswordPFX, strings.Repeat("x", 127-len(marker)), seeds.certPEM, seeds.keyPEM, seeds.publicPEM, uint8(1))

	f.Fuzz(func(t *testing.T, pfxData []byte, fuzzedPassword string, certPEM, keyPEM, publicKey []byte, paddingIndex uint8) {
		password := marker + fuzzedPassword
		padding := paddings[int(paddingIndex)%len(paddings)]
		// What a leak would look like: the password as typed, the PFX or the key as raw bytes (as %q or %s would
		// write them) or as base64 (as a dump of a []byte would).
		secrets := [][]byte{[]byte(base64.StdEncoding.EncodeToString(pfxData)), pemBody(keyPEM)}
		check := func(what string, err error) {
			t.Helper()
			if err == nil {
				return
			}
			var perr *pfx.Error
			if !errors.As(err, &perr) {
				t.Fatalf("%s: error %q is a %T, not a *pfx.Error", what, err, err)
			}
			if perr.Reason == "" || perr.Message == "" || err.Error() == "" {
				t.Fatalf("%s: error without a reason or a message: %#v", what, perr)
			}
			msg := err.Error()
			leaked := strings.Contains(msg, password) || quotesRaw(msg, pfxData) || quotesRaw(msg, keyPEM)
			for _, secret := range secrets {
				leaked = leaked || quotes(msg, secret)
			}
			if leaked {
				t.Fatalf("%s: the message quotes secret input: %q", what, msg)
			}
		}

		now := time.Now()
		pub, err := pfx.ParsePublicKey(publicKey)
		check("ParsePublicKey", err)

		fromPFX, err := pfx.FromPFX(pfxData, password)
		check("FromPFX", err)
		fromTLS, err := pfx.FromTLS(certPEM, keyPEM, "")
		check("FromTLS", err)
		for _, m := range []*pfx.Material{fromPFX, fromTLS} {
			if m == nil {
				continue
			}
			if m.Leaf == nil || len(m.Facts.Thumbprint) != 40 {
				t.Fatalf("material without a leaf or thumbprint: %+v", m.Facts)
			}
			check("CheckValidity", pfx.CheckValidity(m.Leaf, now))
			if pub != nil {
				_, err := pfx.EncryptPassword(pub, padding, m.Password)
				check("EncryptPassword", err)
			}
		}
		if pub != nil {
			// The password as typed, whatever the PFX: the length and ASCII checks run on it.
			_, err := pfx.EncryptPassword(pub, padding, password)
			check("EncryptPassword", err)
		}

		_, err = pfx.ParseCertificate(certPEM, "")
		check("ParseCertificate(tls.crt)", err)
		_, err = pfx.ParseCertificate(pfxData, password)
		check("ParseCertificate(pfx)", err)
	})
}

// quotes reports whether msg contains a window-long slice of secret (base64 text, which a message
// template does not contain by chance).
func quotes(msg string, secret []byte) bool {
	for i := 0; i+window <= len(secret); i++ {
		if strings.Contains(msg, string(secret[i:i+window])) {
			return true
		}
	}
	return false
}

// quotesRaw reports whether msg contains a window-long slice of raw input holding a byte that is not
// printable ASCII: message templates are printable ASCII, so only quoting could put such a slice there
// (printable input, such as "10000" or PEM text, can coincide with a message and proves nothing).
func quotesRaw(msg string, data []byte) bool {
	for i := 0; i+window <= len(data); i++ {
		w := data[i : i+window]
		if strings.IndexFunc(string(w), func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 && strings.Contains(msg, string(w)) {
			return true
		}
	}
	return false
}

// pemBody returns the base64 body of keyPEM's first PEM block (the secret text a log could show), or nil.
func pemBody(keyPEM []byte) []byte {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil
	}
	return []byte(base64.StdEncoding.EncodeToString(block.Bytes))
}

type seedData struct {
	pfx, longPasswordPFX              []byte
	certPEM, keyPEM, otherKeyPEM      []byte
	ecCertPEM, ecKeyPEM               []byte
	publicPEM, weakPublicPEM, cngBlob []byte
}

func newSeeds(f *testing.F) seedData {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		f.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	cert := selfSigned(f, rsaKey)
	ecCert := selfSigned(f, ecKey)
	var s seedData
	if s.pfx, err = pkcs12.Modern.Encode(rsaKey, cert, nil, marker+"Seed-Pa55"); err != nil {
		f.Fatal(err)
	}
	if s.longPasswordPFX, err = pkcs12.Modern.Encode(rsaKey, cert, nil, marker+strings.Repeat("x", 127-len(marker))); err != nil {
		f.Fatal(err)
	}
	s.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	s.keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	s.otherKeyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)})
	s.ecCertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ecCert.Raw})
	ecDER, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		f.Fatal(err)
	}
	s.ecKeyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})
	s.publicPEM = publicPEM(f, &other.PublicKey)
	s.weakPublicPEM = publicPEM(f, &weak.PublicKey)
	s.cngBlob = pfx.MarshalCNGPublicBlob(&other.PublicKey)
	return s
}

func publicPEM(f *testing.F, pub *rsa.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		f.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func selfSigned(f *testing.F, key crypto.Signer) *x509.Certificate {
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(0x5eed),
		Subject:        pkix.Name{CommonName: "Fuzz Seed", Organization: []string{"Contoso"}},
		NotBefore:      time.Now().Add(-time.Hour),
		NotAfter:       time.Now().Add(24 * time.Hour),
		EmailAddresses: []string{"seed@contoso.com"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		f.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		f.Fatal(err)
	}
	return cert
}
