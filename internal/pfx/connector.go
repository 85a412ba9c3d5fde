package pfx

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // register the hashes OAEP uses
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"math/big"
	"strings"
)

// Padding is the RSA padding used to encrypt the PFX password for the connector, in Graph's names.
type Padding string

const (
	PaddingNone       Padding = "none"
	PaddingPKCS1      Padding = "pkcs1"
	PaddingOAEPSHA1   Padding = "oaepSha1"
	PaddingOAEPSHA256 Padding = "oaepSha256"
	PaddingOAEPSHA384 Padding = "oaepSha384"
	PaddingOAEPSHA512 Padding = "oaepSha512"
)

// Effective returns the padding actually used: none (and the empty Padding) become oaepSha512, the
// default of Microsoft's import tool.
func (p Padding) Effective() Padding {
	if p == PaddingNone || p == "" {
		return PaddingOAEPSHA512
	}
	return p
}

// Legacy reports paddings Microsoft's tool refuses as no longer supported (as Graph's paddingScheme
// description says): EncryptPassword and CheckPadding refuse them, so nothing encrypted with them is sent.
// DecryptPassword still reads them, as a connector would.
func (p Padding) Legacy() bool { return p == PaddingPKCS1 || p == PaddingOAEPSHA1 }

// CheckPadding returns a ReasonUnsupportedPadding error for a padding that is not Graph's or that Intune no
// longer accepts, or nil.
func CheckPadding(p Padding) error {
	if p.Legacy() {
		return newError(ReasonUnsupportedPadding, nil,
			"paddingScheme %s is no longer supported by Intune's PFX import (Microsoft's tool refuses pkcs1 and oaepSha1); "+
				"set paddingScheme to oaepSha512 (or leave it unset), oaepSha384 or oaepSha256", string(p))
	}
	_, _, err := p.Effective().oaepHash()
	return err
}

// GraphNumber returns Graph's paddingScheme Int32. The empty Padding counts as none.
func (p Padding) GraphNumber() (int32, error) {
	switch p {
	case PaddingNone, "":
		return 0, nil
	case PaddingPKCS1:
		return 1, nil
	case PaddingOAEPSHA1:
		return 2, nil
	case PaddingOAEPSHA256:
		return 3, nil
	case PaddingOAEPSHA384:
		return 4, nil
	case PaddingOAEPSHA512:
		return 5, nil
	}
	return 0, unsupportedPadding(p)
}

// oaepHash returns the OAEP hash of an effective padding; ok is false for pkcs1.
func (p Padding) oaepHash() (hash crypto.Hash, ok bool, err error) {
	switch p {
	case PaddingPKCS1:
		return 0, false, nil
	case PaddingOAEPSHA1:
		return crypto.SHA1, true, nil
	case PaddingOAEPSHA256:
		return crypto.SHA256, true, nil
	case PaddingOAEPSHA384:
		return crypto.SHA384, true, nil
	case PaddingOAEPSHA512:
		return crypto.SHA512, true, nil
	}
	return 0, false, unsupportedPadding(p)
}

func unsupportedPadding(p Padding) error {
	return newError(ReasonUnsupportedPadding, nil,
		"padding scheme %q is not supported; use one of none, oaepSha256, oaepSha384, oaepSha512", string(p))
}

// maxPasswordBytes is the longest message RSA with this key size and padding can carry (RFC 8017):
// k-11 bytes for PKCS#1 v1.5, k-2*hLen-2 for OAEP.
func maxPasswordBytes(pub *rsa.PublicKey, p Padding) (int, error) {
	hash, oaep, err := p.oaepHash()
	if err != nil {
		return 0, err
	}
	if !oaep {
		return pub.Size() - 11, nil
	}
	return pub.Size() - 2*hash.Size() - 2, nil
}

// EncryptPassword returns base64(RSA-encrypt(password bytes)) for encryptedPfxPassword, using the
// effective padding (OAEP: the same hash for MGF1, empty label). Paddings Intune no longer accepts are
// refused (CheckPadding); non-ASCII passwords and passwords too long for the key and padding are refused
// with ReasonInvalidPassword.
func EncryptPassword(pub *rsa.PublicKey, padding Padding, password string) (string, error) {
	if err := CheckPadding(padding); err != nil {
		return "", err
	}
	if err := checkPublicKey(pub); err != nil {
		return "", err
	}
	p := padding.Effective()
	limit, err := maxPasswordBytes(pub, p)
	if err != nil {
		return "", err
	}
	if err := checkASCII(password); err != nil {
		return "", err
	}
	if len(password) > limit {
		return "", newError(ReasonInvalidPassword, nil,
			"password is %d bytes; a %d-bit key with %s takes at most %d, so use a shorter password or a larger connector key",
			len(password), pub.N.BitLen(), p, limit)
	}
	hash, _, _ := p.oaepHash() // CheckPadding lets only the OAEP paddings through
	ciphertext, err := rsa.EncryptOAEP(hash.New(), rand.Reader, pub, []byte(password), nil)
	if err != nil {
		return "", newError(ReasonPublicKeyInvalid, err, "failed to encrypt the password with the connector public key: %v", err)
	}
	return base64.StdEncoding.EncodeToString(ciphertext), nil
}

// DecryptPassword is the connector's side of EncryptPassword: the Graph emulator's connector check and
// the tests use it.
func DecryptPassword(priv *rsa.PrivateKey, padding Padding, encrypted string) (string, error) {
	if priv == nil {
		return "", newError(ReasonDecryptionFailed, nil, "no connector private key was given")
	}
	p := padding.Effective()
	hash, oaep, err := p.oaepHash()
	if err != nil {
		return "", err
	}
	ciphertext, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encrypted))
	if err != nil {
		return "", newError(ReasonDecryptionFailed, err, "the encrypted password is not standard base64")
	}
	var plaintext []byte
	if oaep {
		plaintext, err = rsa.DecryptOAEP(hash.New(), nil, priv, ciphertext, nil)
	} else {
		// The emulator's connector still reads what older clients sent with PKCS #1 v1.5; the operator never
		// encrypts with it. The timing side channel the deprecation warns of needs a live oracle: none here.
		plaintext, err = rsa.DecryptPKCS1v15(nil, priv, ciphertext) //nolint:staticcheck // see above
	}
	if err != nil {
		return "", newError(ReasonDecryptionFailed, err,
			"the encrypted password does not decrypt with this connector key and padding %s; check that the public key and padding match the connector's key", p)
	}
	return string(plaintext), nil
}

// CNG BCRYPT_RSAKEY_BLOB magics (bcrypt.h).
const (
	cngRSAPublicMagic      = 0x31415352 // "RSA1"
	cngRSAPrivateMagic     = 0x32415352 // "RSA2"
	cngRSAFullPrivateMagic = 0x33415352 // "RSA3"
	cngHeaderLen           = 24
	maxRSABits             = 16384 // beyond any real connector key; bounds the work a hostile key can cause
)

// ParsePublicKey reads the connector's RSA public key: PEM "PUBLIC KEY" (SPKI) or "RSA PUBLIC KEY"
// (PKCS#1), the DER of either, or a Windows CNG RSAPUBLICBLOB, raw or as base64 text. Keys under 2048 bits
// are refused.
func ParsePublicKey(data []byte) (*rsa.PublicKey, error) {
	if len(data) == 0 {
		return nil, newError(ReasonPublicKeyInvalid, nil, "the connector public key is empty")
	}
	pub, err := parsePublicKey(data)
	if err != nil {
		return nil, err
	}
	if err := checkPublicKey(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

func parsePublicKey(data []byte) (*rsa.PublicKey, error) {
	if block, _ := pem.Decode(data); block != nil {
		switch block.Type {
		case "PUBLIC KEY":
			return parseSPKI(block.Bytes)
		case "RSA PUBLIC KEY":
			return parsePKCS1Public(block.Bytes)
		}
		return nil, newError(ReasonPublicKeyInvalid, nil,
			"the connector public key is a PEM %q block; expected PUBLIC KEY or RSA PUBLIC KEY", block.Type)
	}
	der := data
	if decoded, ok := decodeBase64Text(data); ok {
		der = decoded
	}
	if len(der) >= 4 {
		switch binary.LittleEndian.Uint32(der) {
		case cngRSAPublicMagic:
			return parseCNGPublicBlob(der)
		case cngRSAPrivateMagic, cngRSAFullPrivateMagic:
			return nil, newError(ReasonPublicKeyInvalid, nil,
				"the connector key is a CNG private key blob; export only the public key (RSAPUBLICBLOB)")
		}
	}
	if pub, err := parseSPKI(der); err == nil {
		return pub, nil
	}
	if pub, err := parsePKCS1Public(der); err == nil {
		return pub, nil
	}
	return nil, newError(ReasonPublicKeyInvalid, nil,
		"the connector public key is neither PEM, DER (SubjectPublicKeyInfo or PKCS#1) nor a CNG RSAPUBLICBLOB")
}

func parseSPKI(der []byte) (*rsa.PublicKey, error) {
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		// The parser's own words (ASN.1 tags and offsets) stay in Err: they tell a user nothing to act on.
		return nil, newError(ReasonPublicKeyInvalid, err, "the connector public key is a PEM PUBLIC KEY block whose content is not a valid "+
			"SubjectPublicKeyInfo: export it again (Export-IntunePublicKey, or openssl rsa -pubout)")
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, newError(ReasonPublicKeyInvalid, nil, "the connector public key is %T; the connector needs an RSA key", key)
	}
	return pub, nil
}

func parsePKCS1Public(der []byte) (*rsa.PublicKey, error) {
	pub, err := x509.ParsePKCS1PublicKey(der)
	if err != nil {
		return nil, newError(ReasonPublicKeyInvalid, err, "the connector public key is a PEM RSA PUBLIC KEY block whose content is not a "+
			"valid PKCS#1 key: export it again (Export-IntunePublicKey, or openssl rsa -RSAPublicKey_out)")
	}
	return pub, nil
}

// parseCNGPublicBlob reads BCRYPT_RSAKEY_BLOB{Magic, BitLength, cbPublicExp, cbModulus, cbPrime1, cbPrime2}
// (little-endian uint32s) followed by the public exponent and the modulus (big-endian). A public blob
// carries no primes, so cbPrime1/cbPrime2 are ignored.
func parseCNGPublicBlob(blob []byte) (*rsa.PublicKey, error) {
	if len(blob) < cngHeaderLen {
		return nil, newError(ReasonPublicKeyInvalid, nil, "the CNG public key blob is truncated: %d bytes, shorter than its header", len(blob))
	}
	bitLength := binary.LittleEndian.Uint32(blob[4:])
	expLen := binary.LittleEndian.Uint32(blob[8:])
	modLen := binary.LittleEndian.Uint32(blob[12:])
	if want := uint64(cngHeaderLen) + uint64(expLen) + uint64(modLen); want != uint64(len(blob)) {
		return nil, newError(ReasonPublicKeyInvalid, nil,
			"the CNG public key blob is %d bytes but its header describes %d; the file is truncated or not an RSAPUBLICBLOB", len(blob), want)
	}
	if expLen == 0 || expLen > 4 {
		return nil, newError(ReasonPublicKeyInvalid, nil, "the CNG public key blob has a %d-byte public exponent; expected 1 to 4 bytes", expLen)
	}
	exponent := new(big.Int).SetBytes(blob[cngHeaderLen : cngHeaderLen+expLen])
	modulus := new(big.Int).SetBytes(blob[cngHeaderLen+expLen:])
	if uint64(modulus.BitLen()) != uint64(bitLength) {
		return nil, newError(ReasonPublicKeyInvalid, nil,
			"the CNG public key blob's header says %d bits but its modulus has %d", bitLength, modulus.BitLen())
	}
	return &rsa.PublicKey{N: modulus, E: int(exponent.Int64())}, nil
}

// MarshalCNGPublicBlob encodes pub as a Windows CNG RSAPUBLICBLOB, the format ParsePublicKey reads and
// Microsoft's tool exports by default. It returns nil for a nil key.
func MarshalCNGPublicBlob(pub *rsa.PublicKey) []byte {
	if pub == nil || pub.N == nil {
		return nil
	}
	exponent := big.NewInt(int64(pub.E)).Bytes()
	modulus := pub.N.Bytes()
	blob := make([]byte, cngHeaderLen, cngHeaderLen+len(exponent)+len(modulus))
	binary.LittleEndian.PutUint32(blob[0:], cngRSAPublicMagic)
	binary.LittleEndian.PutUint32(blob[4:], uint32(pub.N.BitLen()))
	binary.LittleEndian.PutUint32(blob[8:], uint32(len(exponent)))
	binary.LittleEndian.PutUint32(blob[12:], uint32(len(modulus)))
	// cbPrime1 and cbPrime2 stay zero: a public blob holds no primes.
	blob = append(blob, exponent...)
	return append(blob, modulus...)
}

// checkPublicKey refuses keys the connector cannot hold or that are too weak to protect the password.
func checkPublicKey(pub *rsa.PublicKey) error {
	switch {
	case pub == nil || pub.N == nil:
		return newError(ReasonPublicKeyInvalid, nil, "no connector public key was given")
	case pub.N.Sign() <= 0 || pub.N.Bit(0) == 0:
		return newError(ReasonPublicKeyInvalid, nil, "the connector public key's modulus is not a valid RSA modulus")
	case pub.E < 3 || pub.E%2 == 0 || pub.E > 1<<31-1:
		return newError(ReasonPublicKeyInvalid, nil, "the connector public key's exponent %d is not a valid RSA exponent", pub.E)
	case pub.N.BitLen() < MinRSABits:
		return newError(ReasonPublicKeyInvalid, nil,
			"the connector public key is %d bits; Intune requires at least %d, so create a new connector key", pub.N.BitLen(), MinRSABits)
	case pub.N.BitLen() > maxRSABits:
		return newError(ReasonPublicKeyInvalid, nil,
			"the connector public key is %d bits; at most %d are supported", pub.N.BitLen(), maxRSABits)
	}
	return nil
}
