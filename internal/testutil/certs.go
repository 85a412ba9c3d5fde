package testutil

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// UserCertificate is a user's certificate with its key, as an organisation's CA would issue it.
type UserCertificate struct {
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
}

var (
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidUPN            = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}
)

// NewUserCertificate issues a self-signed S/MIME-style certificate for upn (SAN otherName UPN and email)
// valid from notBefore to notAfter, with a new 2048-bit RSA key.
func NewUserCertificate(upn string, notBefore, notAfter time.Time) (*UserCertificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return IssueUserCertificate(key, upn, notBefore, notAfter)
}

// IssueUserCertificate is NewUserCertificate with a given key. Tests at scale certify one key many times:
// each certificate has a fresh serial, so every thumbprint differs, and generating a 2048-bit key per
// certificate would take minutes at N=10000 and change nothing the operator does.
func IssueUserCertificate(key *rsa.PrivateKey, upn string, notBefore, notAfter time.Time) (*UserCertificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	san, err := upnSAN(upn)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:    serial,
		Subject:         pkix.Name{CommonName: upn, Organization: []string{"Contoso"}},
		NotBefore:       notBefore,
		NotAfter:        notAfter,
		KeyUsage:        x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageClientAuth},
		ExtraExtensions: []pkix.Extension{{Id: oidSubjectAltName, Value: san}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &UserCertificate{Cert: cert, Key: key}, nil
}

// upnSAN encodes a subjectAltName with otherName UPN (UTF8String) and rfc822Name.
func upnSAN(upn string) ([]byte, error) {
	utf8, err := asn1.MarshalWithParams(upn, "utf8")
	if err != nil {
		return nil, err
	}
	otherName, err := asn1.Marshal(struct {
		TypeID asn1.ObjectIdentifier
		Value  asn1.RawValue `asn1:"tag:0,explicit"`
	}{oidUPN, asn1.RawValue{FullBytes: utf8}})
	if err != nil {
		return nil, err
	}
	// otherName is [0] IMPLICIT: replace the SEQUENCE tag with a constructed context tag 0.
	otherName[0] = 0xa0
	email := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, Bytes: []byte(upn)}
	emailDER, err := asn1.Marshal(email)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true,
		Bytes: append(otherName, emailDER...)})
}

// PFX encodes the certificate and key as a PKCS#12 file protected by password.
func (u *UserCertificate) PFX(password string) ([]byte, error) {
	return pkcs12.Modern.Encode(u.Key, u.Cert, nil, password)
}

// Thumbprint is the certificate's SHA-1 thumbprint in lowercase hex, as Intune reports it.
func (u *UserCertificate) Thumbprint() string {
	sum := sha1.Sum(u.Cert.Raw)
	return hex.EncodeToString(sum[:])
}

// CertPEM and KeyPEM are what a kubernetes.io/tls Secret holds.
func (u *UserCertificate) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: u.Cert.Raw})
}

func (u *UserCertificate) KeyPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(u.Key)})
}

// PublicKeyPEM is an RSA public key as Export-IntunePublicKey's PEM form (SubjectPublicKeyInfo).
func PublicKeyPEM(pub *rsa.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// KDFBomb is the user's PFX with every key-derivation count in it (MAC, encrypted safe, shrouded key) raised
// after the fact to 8,388,607, above what the operator accepts. The counts are written as 100001 and
// rewritten in place, three content bytes for three, so the DER stays well-formed; the MAC no longer
// verifies, which a reader finds out only after deriving its key.
func (u *UserCertificate) KDFBomb(password string) ([]byte, error) {
	data, err := pkcs12.Modern.WithIterations(100001).Encode(u.Key, u.Cert, nil, password)
	if err != nil {
		return nil, err
	}
	count := []byte{0x02, 0x03, 0x01, 0x86, 0xa1} // INTEGER 100001
	if n := bytes.Count(data, count); n < 3 {
		return nil, fmt.Errorf("found %d iteration counts in the PFX, want MAC, safe and key", n)
	}
	return bytes.ReplaceAll(data, count, []byte{0x02, 0x03, 0x7f, 0xff, 0xff}), nil
}
