package pfx

import (
	"crypto"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
)

// handPFX builds PFX files by hand (RFC 7292), to put things where no producer puts them: a shrouded key
// inside an encrypted safe, safe bags inside safe bags, iteration counts no one could run. It encrypts with
// the package's own KDF and ciphers, so tests check its files with independent readers (openssl, go-pkcs12).

// bombIterations is what a hostile file names: about 2^40 hashes, hours to days of one core.
const bombIterations = 1 << 40

var (
	oidCertBag       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
	oidX509Cert      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
	oidSHA1          = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidHMACWithSHA1  = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA256    = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384    = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512    = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}
	oidAES128CBC     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidPKCS12RC4With = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 1} // pbeWithSHAAnd128BitRC4: no one reads it
)

// scheme is a password-based encryption scheme: PBES2 (with a PRF, nil for the default HMAC-SHA-1, and a
// cipher) or one of the PKCS#12 PBE schemes.
type scheme struct {
	name       string
	oid        asn1.ObjectIdentifier
	prf        asn1.ObjectIdentifier
	cipher     asn1.ObjectIdentifier
	goPKCS12   bool // go-pkcs12 v0.7.4 decrypts it
	needLegacy bool // openssl 3 reads it only with -legacy
}

var (
	pbes2AES256SHA256 = scheme{name: "PBES2 AES-256-CBC HMAC-SHA-256", oid: oidPBES2, prf: oidHMACSHA256, cipher: oidAES256CBC, goPKCS12: true}
	pbes2AES128SHA1   = scheme{name: "PBES2 AES-128-CBC default PRF", oid: oidPBES2, cipher: oidAES128CBC, goPKCS12: true}
	pbes2AES192SHA512 = scheme{name: "PBES2 AES-192-CBC HMAC-SHA-512", oid: oidPBES2, prf: oidHMACSHA512, cipher: oidAES192CBC, goPKCS12: true}
	pbes2AES256SHA1   = scheme{name: "PBES2 AES-256-CBC HMAC-SHA-1", oid: oidPBES2, prf: oidHMACWithSHA1, cipher: oidAES256CBC, goPKCS12: true}
	pbes2DES3SHA384   = scheme{name: "PBES2 DES-EDE3-CBC HMAC-SHA-384", oid: oidPBES2, prf: oidHMACSHA384, cipher: oidDESEDE3CBC}
	pkcs12TripleDES   = scheme{name: "pbeWithSHAAnd3-KeyTripleDES-CBC", oid: oidPKCS12TripleDES, goPKCS12: true}
	pkcs12RC2With40   = scheme{name: "pbeWithSHAAnd40BitRC2-CBC", oid: oidPKCS12RC2With40, goPKCS12: true, needLegacy: true}
	pkcs12RC2With128  = scheme{name: "pbeWithSHAAnd128BitRC2-CBC", oid: oidPKCS12RC2With128, goPKCS12: true, needLegacy: true}

	// safeSchemes are every scheme an encrypted safe can use here.
	safeSchemes = []scheme{pbes2AES256SHA256, pbes2AES128SHA1, pbes2AES192SHA512, pbes2AES256SHA1, pbes2DES3SHA384,
		pkcs12TripleDES, pkcs12RC2With40, pkcs12RC2With128}
)

type handPFX struct {
	t        testing.TB
	password string
	// emptyBMP encodes the password as no bytes at all in PKCS#12 PBE and the MAC, as some producers
	// write the empty password; go-pkcs12 tries it when the usual encoding fails the MAC.
	emptyBMP bool
	// authSafeTag, when not 0, replaces the authSafe's OCTET STRING tag (go-pkcs12 reads any tag there).
	authSafeTag int
}

func newHandPFX(t testing.TB, password string) *handPFX { return &handPFX{t: t, password: password} }

type handBag struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue
}

type handContent struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue
}

func (h *handPFX) marshal(v any) []byte {
	h.t.Helper()
	der, err := asn1.Marshal(v)
	if err != nil {
		h.t.Fatal(err)
	}
	return der
}

// explicit wraps der in an explicit [0] tag.
func explicit(der []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: der}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func (h *handPFX) bmp() []byte {
	if h.emptyBMP {
		return nil
	}
	return passwordEncodings(pkix.AlgorithmIdentifier{Algorithm: oidPKCS12TripleDES}, h.password)[0]
}

// encrypt encrypts plaintext under s with iterations. A count above the limit gets random bytes instead:
// nobody may ever decrypt it, and deriving its key would take days.
func (h *handPFX) encrypt(s scheme, iterations int, plaintext []byte) (pkix.AlgorithmIdentifier, []byte) {
	h.t.Helper()
	var params []byte
	var block cipher.Block
	var iv []byte
	switch {
	case s.oid.Equal(oidPBES2):
		salt := randomBytes(16)
		prf := pkix.AlgorithmIdentifier{Algorithm: s.prf, Parameters: asn1.NullRawValue}
		if s.prf == nil {
			prf = pkix.AlgorithmIdentifier{}
		}
		kdfParams := h.marshal(struct {
			Salt       []byte
			Iterations int
			PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
		}{salt, iterations, prf})
		for _, c := range pbes2Ciphers {
			if !c.oid.Equal(s.cipher) {
				continue
			}
			key := randomBytes(c.keyLength)
			if iterations <= maxKDFIterations {
				newPRF, _ := prfFor(s.prf)
				var err error
				if key, err = pbkdf2.Key(newPRF, string([]rune(h.password)), salt, iterations, c.keyLength); err != nil {
					h.t.Fatal(err)
				}
			}
			block, _ = c.new(key)
		}
		iv = randomBytes(block.BlockSize())
		params = h.marshal(struct{ KDF, Scheme pkix.AlgorithmIdentifier }{
			pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: kdfParams}},
			pkix.AlgorithmIdentifier{Algorithm: s.cipher, Parameters: asn1.RawValue{FullBytes: h.marshal(iv)}},
		})
	default:
		salt := randomBytes(8)
		params = h.marshal(struct {
			Salt       []byte
			Iterations int
		}{salt, iterations})
		keyLength := 24 // 3DES, and the key for schemes no one reads
		for _, c := range pkcs12Ciphers {
			if c.oid.Equal(s.oid) {
				keyLength = c.keyLength
			}
		}
		key, iv8 := randomBytes(keyLength), randomBytes(8)
		if iterations <= maxKDFIterations {
			key = pkcs12KDF(h.bmp(), salt, iterations, kdfKey, keyLength)
			iv8 = pkcs12KDF(h.bmp(), salt, iterations, kdfIV, 8)
		}
		var err error
		if len(key) == 24 {
			block, err = newTripleDES(key)
		} else {
			block, err = newRC2(key)
		}
		if err != nil {
			h.t.Fatal(err)
		}
		iv = iv8
	}
	padding := block.BlockSize() - len(plaintext)%block.BlockSize()
	padded := append(append([]byte(nil), plaintext...), make([]byte, padding)...)
	for i := len(plaintext); i < len(padded); i++ {
		padded[i] = byte(padding)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(padded, padded)
	return pkix.AlgorithmIdentifier{Algorithm: s.oid, Parameters: asn1.RawValue{FullBytes: params}}, padded
}

func newTripleDES(key []byte) (cipher.Block, error) { return pkcs12Ciphers[0].new(key) }

// shroudedKey is a pkcs8ShroudedKeyBag holding key, encrypted under s with iterations.
func (h *handPFX) shroudedKey(s scheme, iterations int, key crypto.PrivateKey) handBag {
	h.t.Helper()
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		h.t.Fatal(err)
	}
	algorithm, encrypted := h.encrypt(s, iterations, pkcs8)
	info := h.marshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		Data      []byte
	}{algorithm, encrypted})
	return handBag{ID: oidShroudedKey, Value: explicit(info)}
}

// certs are certBags, one per certificate.
func (h *handPFX) certs(certs ...*x509.Certificate) []handBag {
	var bags []handBag
	for _, cert := range certs {
		value := h.marshal(struct {
			ID   asn1.ObjectIdentifier
			Data asn1.RawValue
		}{oidX509Cert, explicit(h.marshal(cert.Raw))})
		bags = append(bags, handBag{ID: oidCertBag, Value: explicit(value)})
	}
	return bags
}

// nested is a safeContentsBag holding bags.
func (h *handPFX) nested(bags ...handBag) handBag {
	return handBag{ID: oidSafeContentsBag, Value: explicit(h.marshal(bags))}
}

// plainSafe is a Data safe holding bags.
func (h *handPFX) plainSafe(bags ...handBag) handContent {
	return handContent{ContentType: oidData, Content: explicit(h.marshal(h.marshal(bags)))}
}

// encryptedSafe is an EncryptedData safe holding bags, encrypted under s with iterations.
func (h *handPFX) encryptedSafe(s scheme, iterations int, bags ...handBag) handContent {
	algorithm, encrypted := h.encrypt(s, iterations, h.marshal(bags))
	data := h.marshal(encryptedDataOutline{Info: encryptedContentOutline{ContentType: oidData, Algorithm: algorithm, Content: encrypted}})
	return handContent{ContentType: oidEncryptedData, Content: explicit(data)}
}

// build assembles the PFX with an HMAC-SHA-1 MAC of macIterations (none when 0).
func (h *handPFX) build(macIterations int, contents ...handContent) []byte {
	h.t.Helper()
	authSafe := h.marshal(contents)
	inner := asn1.RawValue{Tag: asn1.TagOctetString, Bytes: authSafe}
	if h.authSafeTag != 0 {
		inner.Tag = h.authSafeTag
	}
	type macData struct {
		Mac struct {
			Algorithm pkix.AlgorithmIdentifier
			Digest    []byte
		}
		Salt       []byte
		Iterations int
	}
	var mac macData
	if macIterations != 0 {
		mac.Salt = randomBytes(8)
		mac.Iterations = macIterations
		mac.Mac.Algorithm = pkix.AlgorithmIdentifier{Algorithm: oidSHA1, Parameters: asn1.NullRawValue}
		mac.Mac.Digest = randomBytes(sha1.Size)
		if macIterations <= maxKDFIterations {
			m := hmac.New(sha1.New, pkcs12KDF(h.bmp(), mac.Salt, macIterations, kdfMAC, sha1.Size))
			m.Write(authSafe)
			mac.Mac.Digest = m.Sum(nil)
		}
	}
	return h.marshal(struct {
		Version  int
		AuthSafe handContent
		MacData  macData `asn1:"optional"`
	}{3, handContent{ContentType: oidData, Content: explicit(h.marshal(inner))}, mac})
}
