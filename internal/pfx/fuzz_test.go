package pfx

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
	"math/big"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// selfSigned makes a certificate for key in Go, so fuzz seeds need no openssl.
func selfSigned(t testing.TB, key crypto.Signer) *x509.Certificate {
	t.Helper()
	template := &x509.Certificate{
		SerialNumber:   big.NewInt(0x8f0102),
		Subject:        pkix.Name{CommonName: "Fuzz Seed", Organization: []string{"Contoso"}},
		NotBefore:      time.Now().Add(-time.Hour),
		NotAfter:       time.Now().Add(time.Hour),
		EmailAddresses: []string{"seed@contoso.com"},
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection},
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// assertWellFormed checks the contract every error must keep: an *Error with a reason and a message.
func assertWellFormed(t *testing.T, err error) {
	t.Helper()
	if reason, ok := ReasonOf(err); !ok || reason == "" || err.Error() == "" {
		t.Fatalf("error %q (%T) has no reason or message", err, err)
	}
}

func FuzzFromPFX(f *testing.F) {
	const password = "Fuzz-Seed-1"
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct {
		encoder *pkcs12.Encoder
		key     crypto.Signer
	}{{pkcs12.Modern, rsaKey}, {pkcs12.Legacy, ecKey}, {pkcs12.LegacyRC2, ecKey}} {
		der, err := seed.encoder.Encode(seed.key, selfSigned(f, seed.key), nil, password)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der, password)
		f.Add(der, "wrong")
		f.Add([]byte(base64.StdEncoding.EncodeToString(der)), password)
	}
	f.Add([]byte{}, "")
	f.Add([]byte("not a pfx"), password)
	f.Add([]byte{0x30, 0x82, 0xff, 0xff, 0x02, 0x01, 0x03}, password)

	f.Fuzz(func(t *testing.T, data []byte, password string) {
		m, err := FromPFX(data, password)
		if err != nil {
			assertWellFormed(t, err)
			return
		}
		if m.Leaf == nil || len(m.Facts.Thumbprint) != 40 || m.Password != password {
			t.Fatalf("FromPFX succeeded with incomplete material: %+v", m.Facts)
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	blob := MarshalCNGPublicBlob(&key.PublicKey)
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(&key.PublicKey)
	f.Add(blob)
	f.Add([]byte(base64.StdEncoding.EncodeToString(blob)))
	f.Add(spki)
	f.Add(pkcs1)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1}))
	f.Add(blob[:30])
	f.Add([]byte("RSA1"))

	f.Fuzz(func(t *testing.T, data []byte) {
		pub, err := ParsePublicKey(data)
		if err != nil {
			assertWellFormed(t, err)
			return
		}
		if pub.N.BitLen() < MinRSABits {
			t.Fatalf("accepted a %d-bit key", pub.N.BitLen())
		}
		again, err := ParsePublicKey(MarshalCNGPublicBlob(pub))
		if err != nil || !again.Equal(pub) {
			t.Fatalf("the CNG blob of an accepted key does not read back: %v", err)
		}
		if _, err := EncryptPassword(pub, PaddingOAEPSHA256, "password"); err != nil {
			t.Fatalf("an accepted key cannot encrypt: %v", err)
		}
	})
}
