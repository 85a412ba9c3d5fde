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

// maxEncryptedSafes bounds how many encrypted safes CheckWorkFactors decrypts itself, so that its own work
// stays bounded too: each costs up to maxKDFIterations (twice for the empty password). go-pkcs12's
// DecodeChain reads at most two safes, and every producer writes one encrypted safe (the certificates) at
// most, so a file with more cannot be opened anyway; it is refused rather than left half inspected.
const maxEncryptedSafes = 2

// maxBagNesting bounds how deep safeContentsBags (safe bags holding safe bags) are followed. go-pkcs12
// v0.7.4 ignores them, but a later version might not, so the keys inside are checked too; no producer
// nests at all, and deeper nesting is refused instead of being followed at the cost of a deep recursion.
const maxBagNesting = 4

var (
	oidData             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidEncryptedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidShroudedKey      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidSafeContentsBag  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 6}
	oidPBES2            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBMAC1           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	oidPKCS12PBE        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1} // prefix of the PKCS#12 PBE schemes
	oidPKCS12TripleDES  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
	oidPKCS12RC2With128 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 5}
	oidPKCS12RC2With40  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 6}
)

// The outline types mirror go-pkcs12's own (RFC 7292) so that whatever it would read, this reads too: the
// same Go types where go-pkcs12 insists on them, and looser ones (a RawValue for any tag, fewer fields,
// trailing data allowed) elsewhere. Reading more than go-pkcs12 can only refuse more, never less.
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
	Info    encryptedContentOutline
}

type encryptedContentOutline struct {
	ContentType asn1.ObjectIdentifier
	Algorithm   pkix.AlgorithmIdentifier
	Content     []byte `asn1:"tag:0,optional"`
}

type safeBagOutline struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"tag:0,explicit"`
}

type encryptedKeyOutline struct {
	Algorithm pkix.AlgorithmIdentifier
}

// CheckWorkFactors refuses a PFX that would make go-pkcs12 run more than maxKDFIterations iterations of any
// one key derivation: the MAC's, an encrypted safe's, or a shrouded key's, wherever the key sits. Call it
// before handing the file to go-pkcs12, with the password that will open it: a shrouded key inside an
// encrypted safe is only visible once the safe is decrypted, and this does that itself (the safe's own
// iteration count is checked first, so that work is bounded). der is the PFX's DER; base64 text is decoded
// first, as FromPFX does, so a caller that forgets to decode is not left unprotected.
//
// It returns nil for whatever it cannot read, leaving go-pkcs12 to report the problem: see decryptSafe
// for why that never lets an unchecked derivation through. Its errors are *Error with ReasonInvalidPfx and
// never mention the password.
func CheckWorkFactors(der []byte, password string) error {
	if decoded, ok := decodeBase64Text(der); ok {
		der = decoded
	}
	var pfx pfxOutline
	if _, err := asn1.Unmarshal(der, &pfx); err != nil {
		return nil // go-pkcs12 reads the same types, so it fails here too, before deriving anything
	}
	if err := checkIterations(pfx.MacData.Iterations); err != nil {
		return err
	}
	if err := checkAlgorithm(pfx.MacData.Mac.Algorithm); err != nil {
		return err
	}
	// First every count readable without the password: no safe is decrypted before its own count is checked,
	// and none at all for a file refused anyway.
	var encrypted []encryptedContentOutline
	for _, content := range authenticatedSafe(pfx) {
		switch {
		case content.ContentType.Equal(oidEncryptedData):
			var data encryptedDataOutline
			if _, err := asn1.Unmarshal(content.Content.Bytes, &data); err != nil {
				continue
			}
			if err := checkAlgorithm(data.Info.Algorithm); err != nil {
				return err
			}
			encrypted = append(encrypted, data.Info)
		case content.ContentType.Equal(oidData):
			var data asn1.RawValue // go-pkcs12 insists on an OCTET STRING; any tag is read here
			if _, err := asn1.Unmarshal(content.Content.Bytes, &data); err != nil {
				continue
			}
			if err := checkSafeContents(data.Bytes, 0); err != nil {
				return err
			}
		}
	}
	if len(encrypted) > maxEncryptedSafes {
		return newError(ReasonInvalidPfx, nil,
			"the PFX holds %d encrypted safes; at most %d can be read, so re-export it with default settings",
			len(encrypted), maxEncryptedSafes)
	}
	// Then the safes' insides: each one's iteration count has just been checked.
	for _, info := range encrypted {
		plaintexts, err := decryptSafe(info, password)
		if err != nil {
			return err
		}
		for _, plaintext := range plaintexts {
			if err := checkSafeContents(plaintext, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// authenticatedSafe returns the PFX's content infos. go-pkcs12 reads the authSafe's content under any
// ASN.1 tag (it unmarshals into a RawValue), so this does too: insisting on an OCTET STRING, as RFC 7292
// does, would let a file with another tag there skip every check.
func authenticatedSafe(pfx pfxOutline) []contentOutline {
	var inner asn1.RawValue
	if _, err := asn1.Unmarshal(pfx.AuthSafe.Content.Bytes, &inner); err != nil {
		return nil
	}
	var contents []contentOutline
	_, _ = asn1.Unmarshal(inner.Bytes, &contents)
	return contents
}

// checkSafeContents checks the shrouded keys among the safe bags in der (a SafeContents), and those in
// nested safeContentsBags, depth levels down.
func checkSafeContents(der []byte, depth int) error {
	var bags []safeBagOutline
	if _, err := asn1.Unmarshal(der, &bags); err != nil {
		return nil // go-pkcs12 reads the same types, so it fails here too, before deriving anything
	}
	for _, bag := range bags {
		switch {
		case bag.ID.Equal(oidShroudedKey):
			var key encryptedKeyOutline
			if _, err := asn1.Unmarshal(bag.Value.Bytes, &key); err == nil {
				if err := checkAlgorithm(key.Algorithm); err != nil {
					return err
				}
			}
		case bag.ID.Equal(oidSafeContentsBag):
			if depth >= maxBagNesting {
				return newError(ReasonInvalidPfx, nil,
					"the PFX nests safe bags more than %d levels deep; re-export it with default settings", maxBagNesting)
			}
			if err := checkSafeContents(bag.Value.Bytes, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkAlgorithm refuses a password-based algorithm whose parameters name too many iterations.
func checkAlgorithm(algorithm pkix.AlgorithmIdentifier) error {
	return checkIterations(iterationsOf(algorithm))
}

func checkIterations(count int) error {
	if count > maxKDFIterations {
		return newError(ReasonInvalidPfx, nil,
			"the PFX asks for %d key-derivation iterations; at most %d are accepted, so re-export it with default settings",
			count, maxKDFIterations)
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
			Salt       asn1.RawValue
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
