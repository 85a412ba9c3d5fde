package pfx

import (
	"crypto/x509/pkix"
	"encoding/asn1"
)

// maxKDFIterations bounds the key-derivation work a PFX may demand. go-pkcs12 runs whatever iteration
// count the file names (up to 2^63), and a MAC is checked only after its key is derived, so anyone who can
// write a Secret could pin a controller worker for minutes to hours on every reconcile. Producers use
// 2,000 to 10,000 (OpenSSL 2048, Windows 2000, Java 10000); OWASP's 2023 PBKDF2 advice is 600,000.
const maxKDFIterations = 1_000_000

var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEncryptedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidShroudedKey   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidPBES2         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBMAC1        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	oidPKCS12PBE     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1} // prefix of the PKCS#12 PBE schemes
)

// The outline types mirror go-pkcs12's own (RFC 7292) so that whatever it would read, this reads too.
type pfxOutline struct {
	Version  int
	AuthSafe contentOutline
	MacData  struct {
		Mac struct {
			Algorithm pkix.AlgorithmIdentifier
			Digest    []byte
		}
		Salt       []byte
		Iterations int `asn1:"optional,default:1"`
	} `asn1:"optional"`
}

type contentOutline struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type encryptedDataOutline struct {
	Version int
	Info    struct {
		ContentType asn1.ObjectIdentifier
		Algorithm   pkix.AlgorithmIdentifier
	}
}

type safeBagOutline struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"tag:0,explicit"`
}

type encryptedKeyOutline struct {
	Algorithm pkix.AlgorithmIdentifier
}

// checkWorkFactors refuses a PFX whose MAC, encrypted safes or plain-text shrouded keys name more than
// maxKDFIterations. It reads only the unencrypted outline, so a shrouded key nested inside an encrypted
// safe is not seen; no common producer writes one. Parts it cannot read are left to go-pkcs12 to report.
func checkWorkFactors(der []byte) error {
	var pfx pfxOutline
	if _, err := asn1.Unmarshal(der, &pfx); err != nil {
		return nil
	}
	counts := []int{pfx.MacData.Iterations, iterationsOf(pfx.MacData.Mac.Algorithm)}
	var authSafe []byte
	var contents []contentOutline
	if _, err := asn1.Unmarshal(pfx.AuthSafe.Content.Bytes, &authSafe); err == nil {
		_, _ = asn1.Unmarshal(authSafe, &contents)
	}
	for _, content := range contents {
		switch {
		case content.ContentType.Equal(oidEncryptedData):
			var encrypted encryptedDataOutline
			if _, err := asn1.Unmarshal(content.Content.Bytes, &encrypted); err == nil {
				counts = append(counts, iterationsOf(encrypted.Info.Algorithm))
			}
		case content.ContentType.Equal(oidData):
			var data []byte
			var bags []safeBagOutline
			if _, err := asn1.Unmarshal(content.Content.Bytes, &data); err == nil {
				_, _ = asn1.Unmarshal(data, &bags)
			}
			for _, bag := range bags {
				var key encryptedKeyOutline
				if bag.ID.Equal(oidShroudedKey) {
					if _, err := asn1.Unmarshal(bag.Value.Bytes, &key); err == nil {
						counts = append(counts, iterationsOf(key.Algorithm))
					}
				}
			}
		}
	}
	for _, count := range counts {
		if count > maxKDFIterations {
			return newError(ReasonInvalidPfx, nil,
				"the PFX asks for %d key-derivation iterations; at most %d are accepted, so re-export it with default settings",
				count, maxKDFIterations)
		}
	}
	return nil
}

// iterationsOf returns the iteration count in a password-based algorithm's parameters, or 0.
func iterationsOf(algorithm pkix.AlgorithmIdentifier) int {
	params := algorithm.Parameters.FullBytes
	switch {
	case algorithm.Algorithm.Equal(oidPBES2) || algorithm.Algorithm.Equal(oidPBMAC1):
		// PBES2-params and PBMAC1-params both start with the key derivation function (PBKDF2), whose
		// parameters start with the salt and the iteration count. encoding/asn1 ignores later fields.
		var scheme struct{ KDF pkix.AlgorithmIdentifier }
		var kdf struct {
			Salt       asn1.RawValue
			Iterations int
		}
		if _, err := asn1.Unmarshal(params, &scheme); err != nil {
			return 0
		}
		if _, err := asn1.Unmarshal(scheme.KDF.Parameters.FullBytes, &kdf); err != nil {
			return 0
		}
		return kdf.Iterations
	case isUnder(algorithm.Algorithm, oidPKCS12PBE):
		var pbe struct {
			Salt       []byte
			Iterations int
		}
		if _, err := asn1.Unmarshal(params, &pbe); err != nil {
			return 0
		}
		return pbe.Iterations
	}
	return 0
}

func isUnder(oid, prefix asn1.ObjectIdentifier) bool {
	return len(oid) > len(prefix) && oid[:len(prefix)].Equal(prefix)
}
