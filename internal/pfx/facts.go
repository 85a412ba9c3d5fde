package pfx

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"strings"
	"time"
)

// Facts are what Intune records need about the leaf certificate.
type Facts struct {
	// Thumbprint is the lowercase hex SHA-1 of the leaf DER, as Intune keys its records.
	Thumbprint          string
	NotBefore, NotAfter time.Time
	// UserPrincipalName is the SAN otherName UPN (1.3.6.1.4.1.311.20.2.3), else the first email SAN, else "".
	UserPrincipalName string
	// Subject and Issuer are RFC 2253-ish strings (pkix's formatting) in the certificate's own RDN order,
	// which pkix.Name.String() would reorder.
	Subject, Issuer string
	// SerialNumber is uppercase hex without separators, Windows style: the DER integer's content bytes,
	// so a serial whose first byte has the high bit set keeps its leading 00.
	SerialNumber string
	// KeyAlgorithm is "RSA", "ECDSA" or "Ed25519" (other algorithms: x509's name for them).
	KeyAlgorithm string
	// KeyLength is the RSA modulus size or the EC curve size in bits.
	KeyLength int
	// KeyUsages are RFC 5280 names of the KeyUsage bits: digitalSignature, keyEncipherment, ...
	KeyUsages []string
	// ExtendedKeyUsages are OpenSSL short names (clientAuth, emailProtection, ...); unknown ones as dotted OIDs.
	ExtendedKeyUsages []string
}

// FactsOf derives the facts from cert. A nil cert yields zero Facts.
func FactsOf(cert *x509.Certificate) Facts {
	if cert == nil {
		return Facts{}
	}
	thumbprint := sha1.Sum(cert.Raw)
	algorithm, length := keyFacts(cert)
	return Facts{
		Thumbprint:        hex.EncodeToString(thumbprint[:]),
		NotBefore:         cert.NotBefore,
		NotAfter:          cert.NotAfter,
		UserPrincipalName: userPrincipalName(cert),
		Subject:           distinguishedName(cert.RawSubject, cert.Subject),
		Issuer:            distinguishedName(cert.RawIssuer, cert.Issuer),
		SerialNumber:      serialNumber(cert),
		KeyAlgorithm:      algorithm,
		KeyLength:         length,
		KeyUsages:         keyUsageNames(cert.KeyUsage),
		ExtendedKeyUsages: extKeyUsageNames(cert),
	}
}

func keyFacts(cert *x509.Certificate) (algorithm string, bits int) {
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		return "RSA", pub.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA", pub.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	default:
		return cert.PublicKeyAlgorithm.String(), 0
	}
}

// distinguishedName formats the DER name as pkix does, but keeps the order the certificate has, so the
// string matches what OpenSSL and Windows show (RFC 2253: last RDN first).
func distinguishedName(raw []byte, parsed pkix.Name) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &rdns); err != nil || len(rest) != 0 {
		return parsed.String()
	}
	return rdns.String()
}

func serialNumber(cert *x509.Certificate) string {
	if cert.SerialNumber == nil {
		return ""
	}
	magnitude := cert.SerialNumber.Bytes()
	// Windows shows the DER INTEGER's content bytes: a zero serial is one 00 byte, and a sign byte 00
	// precedes a first byte with the high bit set.
	if len(magnitude) == 0 || magnitude[0]&0x80 != 0 {
		magnitude = append([]byte{0}, magnitude...)
	}
	return strings.ToUpper(hex.EncodeToString(magnitude))
}

var (
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidUPN            = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}
)

func userPrincipalName(cert *x509.Certificate) string {
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(oidSubjectAltName) {
			if upn, ok := upnFromSAN(ext.Value); ok {
				return upn
			}
		}
	}
	if len(cert.EmailAddresses) > 0 {
		return cert.EmailAddresses[0]
	}
	return ""
}

// upnFromSAN finds the Microsoft UPN otherName in a SubjectAltName extension value. crypto/x509 skips
// otherName entries, so the GeneralNames are walked here:
//
//	OtherName ::= [0] IMPLICIT SEQUENCE { type-id OBJECT IDENTIFIER, value [0] EXPLICIT ANY }
func upnFromSAN(der []byte) (string, bool) {
	var names []asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &names); err != nil || len(rest) != 0 {
		return "", false
	}
	for _, name := range names {
		if name.Class != asn1.ClassContextSpecific || name.Tag != 0 || !name.IsCompound {
			continue
		}
		var typeID asn1.ObjectIdentifier
		rest, err := asn1.Unmarshal(name.Bytes, &typeID)
		if err != nil || !typeID.Equal(oidUPN) {
			continue
		}
		var explicit asn1.RawValue
		if _, err := asn1.Unmarshal(rest, &explicit); err != nil ||
			explicit.Class != asn1.ClassContextSpecific || explicit.Tag != 0 {
			continue
		}
		// The UPN is a UTF8String; encoding/asn1 accepts any string type into a Go string.
		var upn string
		if _, err := asn1.Unmarshal(explicit.Bytes, &upn); err != nil || upn == "" {
			continue
		}
		return upn, true
	}
	return "", false
}

// keyUsageBits lists the KeyUsage bits in RFC 5280 order with their RFC names.
var keyUsageBits = []struct {
	bit  x509.KeyUsage
	name string
}{
	{x509.KeyUsageDigitalSignature, "digitalSignature"},
	{x509.KeyUsageContentCommitment, "nonRepudiation"},
	{x509.KeyUsageKeyEncipherment, "keyEncipherment"},
	{x509.KeyUsageDataEncipherment, "dataEncipherment"},
	{x509.KeyUsageKeyAgreement, "keyAgreement"},
	{x509.KeyUsageCertSign, "keyCertSign"},
	{x509.KeyUsageCRLSign, "cRLSign"},
	{x509.KeyUsageEncipherOnly, "encipherOnly"},
	{x509.KeyUsageDecipherOnly, "decipherOnly"},
}

func keyUsageNames(usage x509.KeyUsage) []string {
	var names []string
	for _, u := range keyUsageBits {
		if usage&u.bit != 0 {
			names = append(names, u.name)
		}
	}
	return names
}

// extKeyUsageName maps crypto/x509's known extended key usages to OpenSSL's short names.
var extKeyUsageName = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:                            "anyExtendedKeyUsage",
	x509.ExtKeyUsageServerAuth:                     "serverAuth",
	x509.ExtKeyUsageClientAuth:                     "clientAuth",
	x509.ExtKeyUsageCodeSigning:                    "codeSigning",
	x509.ExtKeyUsageEmailProtection:                "emailProtection",
	x509.ExtKeyUsageIPSECEndSystem:                 "ipsecEndSystem",
	x509.ExtKeyUsageIPSECTunnel:                    "ipsecTunnel",
	x509.ExtKeyUsageIPSECUser:                      "ipsecUser",
	x509.ExtKeyUsageTimeStamping:                   "timeStamping",
	x509.ExtKeyUsageOCSPSigning:                    "OCSPSigning",
	x509.ExtKeyUsageMicrosoftServerGatedCrypto:     "msSGC",
	x509.ExtKeyUsageNetscapeServerGatedCrypto:      "nsSGC",
	x509.ExtKeyUsageMicrosoftCommercialCodeSigning: "msCodeCom",
	x509.ExtKeyUsageMicrosoftKernelCodeSigning:     "msKernelCodeSigning",
}

// unknownExtKeyUsageName names Microsoft usages common on Intune-deployed certificates that crypto/x509
// does not know (OpenSSL's short names).
var unknownExtKeyUsageName = map[string]string{
	"1.3.6.1.4.1.311.20.2.2": "msSmartcardLogin",
	"1.3.6.1.4.1.311.10.3.4": "msEFS",
}

func extKeyUsageNames(cert *x509.Certificate) []string {
	var names []string
	for _, usage := range cert.ExtKeyUsage {
		if name, ok := extKeyUsageName[usage]; ok {
			names = append(names, name)
		}
	}
	for _, oid := range cert.UnknownExtKeyUsage {
		dotted := oid.String()
		if name, ok := unknownExtKeyUsageName[dotted]; ok {
			dotted = name
		}
		names = append(names, dotted)
	}
	return names
}
