package pfx

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"hash"
)

// CheckWorkFactors decrypts encrypted safes itself to see the shrouded keys inside, with the schemes
// go-pkcs12 v0.7.4 decrypts and a few more: PBES2 with PBKDF2 (HMAC-SHA-1, -SHA-224, -SHA-256, -SHA-384 or
// -SHA-512) and AES-CBC or DES-EDE3-CBC, and the PKCS#12 PBE schemes with 3DES, RC2-128 and RC2-40.
var (
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidDESEDE3CBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
)

// pbkdf2PRFs are the PBKDF2 pseudo-random functions by OID (RFC 8018 appendix B.1).
var pbkdf2PRFs = []struct {
	oid asn1.ObjectIdentifier
	new func() hash.Hash
}{
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}, sha1.New},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}, sha256.New224},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}, sha256.New},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}, sha512.New384},
	{asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}, sha512.New},
}

// pbes2Ciphers are the PBES2 encryption schemes by OID, with their key sizes.
var pbes2Ciphers = []struct {
	oid       asn1.ObjectIdentifier
	keyLength int
	new       func(key []byte) (cipher.Block, error)
}{
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}, 16, aes.NewCipher},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}, 24, aes.NewCipher},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}, 32, aes.NewCipher},
	{oidDESEDE3CBC, 24, des.NewTripleDESCipher},
}

// pkcs12Ciphers are the PKCS#12 PBE schemes (RFC 7292 appendix C) by OID, with their key sizes. RC2's
// effective key length is its key length, as go-pkcs12 and OpenSSL have it.
var pkcs12Ciphers = []struct {
	oid       asn1.ObjectIdentifier
	keyLength int
	new       func(key []byte) (cipher.Block, error)
}{
	{oidPKCS12TripleDES, 24, des.NewTripleDESCipher},
	{oidPKCS12RC2With128, 16, newRC2},
	{oidPKCS12RC2With40, 5, newRC2},
}

// errUndecryptable says a safe cannot be decrypted here. It never leaves the package: see decryptSafe.
var errUndecryptable = errors.New("pfx: the safe cannot be decrypted")

// decryptSafe returns the plaintext of an encrypted safe under each encoding of password that go-pkcs12
// may decrypt it with and that yields correct padding; usually one. Its only error is the iteration limit.
//
// A safe that cannot be decrypted here, for any reason, is left unread, and go-pkcs12 later reports the
// problem as it does today (WrongPassword, InvalidPfx). That cannot let an unchecked derivation through,
// because go-pkcs12's DecodeChain decrypts every safe before it decrypts any shrouded key, and it gives up
// at the first safe it cannot decrypt. So a safe this cannot read must be one go-pkcs12 cannot read either:
//   - an unknown algorithm or malformed parameters: this knows every scheme go-pkcs12 v0.7.4 knows, reads
//     its parameters with the same or looser types and decrypts the same way, so go-pkcs12 fails there too,
//     before deriving a key (TestCheckWorkFactorsLeavesUnreadableSafes pins it, should go-pkcs12 learn more);
//   - a wrong password: go-pkcs12 checks the MAC first and stops there; a file without a MAC is only read
//     with the empty password, which is among those tried here. With a MAC that the password verifies and
//     a safe encrypted under another password, go-pkcs12 fails at that same safe: same key, same padding;
//   - a plaintext that is not SafeContents (checkSafeContents reads nothing): go-pkcs12 reads it with
//     stricter types, so it fails there too.
//
// Only the password's encodings go-pkcs12 uses are tried, and only safes whose iteration count has been
// checked reach this, so the work here is at most maxEncryptedSafes derivations of at most
// maxKDFIterations each, or twice that for the empty password.
func decryptSafe(info encryptedContentOutline, password string) ([][]byte, error) {
	if !encodableInPKCS12(password) {
		return nil, nil // go-pkcs12 refuses such a password before deriving anything
	}
	var plaintexts [][]byte
	for _, key := range passwordEncodings(info.Algorithm, password) {
		plaintext, err := decrypt(info.Algorithm, key, info.Content)
		switch _, limit := errors.AsType[*Error](err); {
		case limit:
			return nil, err
		case err == nil:
			plaintexts = append(plaintexts, plaintext)
		}
	}
	return plaintexts, nil
}

// passwordEncodings returns the byte strings go-pkcs12 may derive algorithm's key from. PKCS#12 PBE uses the
// password as a NUL-terminated BMPString (RFC 7292 appendix B.1), or for the empty password possibly no
// bytes at all: go-pkcs12 retries the MAC that way, as some producers encode "" so, and decrypts with
// whichever verified. PBES2 uses UTF-8 (RFC 8018): go-pkcs12 turns the BMPString back into a Go string,
// which is the password with each invalid UTF-8 byte replaced by U+FFFD, as []rune conversion does.
func passwordEncodings(algorithm pkix.AlgorithmIdentifier, password string) [][]byte {
	if algorithm.Algorithm.Equal(oidPBES2) {
		return [][]byte{[]byte(string([]rune(password)))}
	}
	bmp := make([]byte, 0, 2*len(password)+2)
	for _, r := range password {
		bmp = append(bmp, byte(r>>8), byte(r))
	}
	bmp = append(bmp, 0, 0)
	if password == "" {
		return [][]byte{bmp, nil}
	}
	return [][]byte{bmp}
}

// decrypt decrypts ciphertext under a password-based encryption algorithm with an encoded password.
func decrypt(algorithm pkix.AlgorithmIdentifier, password, ciphertext []byte) ([]byte, error) {
	var block cipher.Block
	var iv []byte
	var err error
	switch {
	case algorithm.Algorithm.Equal(oidPBES2):
		block, iv, err = pbes2Cipher(algorithm.Parameters.FullBytes, password)
	case isUnder(algorithm.Algorithm, oidPKCS12PBE):
		block, iv, err = pkcs12Cipher(algorithm.Algorithm, algorithm.Parameters.FullBytes, password)
	default:
		err = errUndecryptable
	}
	if err != nil {
		return nil, err
	}
	return cbcDecrypt(block, iv, ciphertext)
}

// pbes2Cipher derives a PBES2 (RFC 8018 section 6.2) cipher and IV. Like go-pkcs12, it takes the key length
// from the cipher and ignores PBKDF2's optional keyLength field, and takes the IV from the encryption
// scheme's parameters whatever their tag.
func pbes2Cipher(params, password []byte) (cipher.Block, []byte, error) {
	var pbes2 struct {
		KDF    pkix.AlgorithmIdentifier
		Scheme pkix.AlgorithmIdentifier
	}
	var kdf struct {
		Salt       asn1.RawValue
		Iterations int
		KeyLength  int                      `asn1:"optional"`
		PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
	}
	if _, err := asn1.Unmarshal(params, &pbes2); err != nil || !pbes2.KDF.Algorithm.Equal(oidPBKDF2) {
		return nil, nil, errUndecryptable
	}
	if _, err := asn1.Unmarshal(pbes2.KDF.Parameters.FullBytes, &kdf); err != nil || kdf.Salt.Tag != asn1.TagOctetString {
		return nil, nil, errUndecryptable
	}
	if err := checkIterations(kdf.Iterations); err != nil {
		return nil, nil, err // checked before the call already; this keeps the bound local
	}
	prf, ok := prfFor(kdf.PRF.Algorithm)
	if !ok {
		return nil, nil, errUndecryptable
	}
	for _, c := range pbes2Ciphers {
		if !c.oid.Equal(pbes2.Scheme.Algorithm) {
			continue
		}
		key, err := pbkdf2.Key(prf, string(password), kdf.Salt.Bytes, kdf.Iterations, c.keyLength)
		if err != nil {
			return nil, nil, errUndecryptable // FIPS 140-only mode refuses some parameters; go-pkcs12 then panics
		}
		block, err := c.new(key)
		if err != nil {
			return nil, nil, errUndecryptable
		}
		return block, pbes2.Scheme.Parameters.Bytes, nil
	}
	return nil, nil, errUndecryptable
}

// prfFor returns the PBKDF2 pseudo-random function an OID names; none names HMAC-SHA-1.
func prfFor(oid asn1.ObjectIdentifier) (func() hash.Hash, bool) {
	if len(oid) == 0 {
		return sha1.New, true
	}
	for _, p := range pbkdf2PRFs {
		if p.oid.Equal(oid) {
			return p.new, true
		}
	}
	return nil, false
}

// pkcs12Cipher derives a PKCS#12 PBE (RFC 7292 appendix C) cipher and IV with the PKCS#12 KDF.
func pkcs12Cipher(oid asn1.ObjectIdentifier, params, password []byte) (cipher.Block, []byte, error) {
	var pbe struct {
		Salt       []byte
		Iterations int
	}
	if _, err := asn1.Unmarshal(params, &pbe); err != nil {
		return nil, nil, errUndecryptable
	}
	if err := checkIterations(pbe.Iterations); err != nil {
		return nil, nil, err // checked before the call already; this keeps the bound local
	}
	for _, c := range pkcs12Ciphers {
		if !c.oid.Equal(oid) {
			continue
		}
		key := pkcs12KDF(password, pbe.Salt, pbe.Iterations, kdfKey, c.keyLength)
		block, err := c.new(key)
		if err != nil {
			return nil, nil, errUndecryptable
		}
		return block, pkcs12KDF(password, pbe.Salt, pbe.Iterations, kdfIV, block.BlockSize()), nil
	}
	return nil, nil, errUndecryptable
}

// cbcDecrypt decrypts CBC with PKCS#7 padding, which it checks as go-pkcs12 does.
func cbcDecrypt(block cipher.Block, iv, ciphertext []byte) ([]byte, error) {
	size := block.BlockSize()
	if len(iv) != size || len(ciphertext) == 0 || len(ciphertext)%size != 0 {
		return nil, errUndecryptable
	}
	plaintext := make([]byte, len(ciphertext))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plaintext, ciphertext)
	padding := int(plaintext[len(plaintext)-1])
	if padding == 0 || padding > size {
		return nil, errUndecryptable
	}
	body, tail := plaintext[:len(plaintext)-padding], plaintext[len(plaintext)-padding:]
	if !bytes.Equal(tail, bytes.Repeat([]byte{byte(padding)}, padding)) {
		return nil, errUndecryptable
	}
	return body, nil
}
