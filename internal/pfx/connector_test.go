package pfx

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestPaddingNames(t *testing.T) {
	// Graph's paddingScheme numbers and the legacy set, from INTUNE-FACTS.md.
	for _, tc := range []struct {
		padding   Padding
		number    int32
		effective Padding
		legacy    bool
	}{
		{PaddingNone, 0, PaddingOAEPSHA512, false},
		{PaddingPKCS1, 1, PaddingPKCS1, true},
		{PaddingOAEPSHA1, 2, PaddingOAEPSHA1, true},
		{PaddingOAEPSHA256, 3, PaddingOAEPSHA256, false},
		{PaddingOAEPSHA384, 4, PaddingOAEPSHA384, false},
		{PaddingOAEPSHA512, 5, PaddingOAEPSHA512, false},
	} {
		number, err := tc.padding.GraphNumber()
		if err != nil || number != tc.number {
			t.Errorf("%s.GraphNumber() = %d, %v; want %d", tc.padding, number, err, tc.number)
		}
		if got := tc.padding.Effective(); got != tc.effective {
			t.Errorf("%s.Effective() = %s, want %s", tc.padding, got, tc.effective)
		}
		if got := tc.padding.Legacy(); got != tc.legacy {
			t.Errorf("%s.Legacy() = %v, want %v", tc.padding, got, tc.legacy)
		}
	}
	if got := Padding("").Effective(); got != PaddingOAEPSHA512 {
		t.Errorf("empty padding is effectively %s, want oaepSha512", got)
	}
	_, err := Padding("oaepSha3").GraphNumber()
	assertReason(t, err, ReasonUnsupportedPadding)
	for p, refused := range map[Padding]bool{PaddingNone: false, "": false, PaddingOAEPSHA256: false, PaddingOAEPSHA384: false,
		PaddingOAEPSHA512: false, PaddingPKCS1: true, PaddingOAEPSHA1: true, "oaepSha3": true} {
		if err := CheckPadding(p); (err != nil) != refused {
			t.Errorf("CheckPadding(%q) = %v, want refused %v", p, err, refused)
		}
	}
}

// A connector still decrypts what an older tool encrypted with the legacy paddings (the emulator relies
// on it), though this package never encrypts with them.
func TestDecryptPasswordReadsLegacyPaddings(t *testing.T) {
	o := newOpenSSL(t)
	k := newConnectorKey(t, o, "connector.key", 2048)
	const password = "Contoso-Pfx p@ss 2026!"
	for _, padding := range []Padding{PaddingPKCS1, PaddingOAEPSHA1} {
		fromOpenSSL, err := k.opensslEncrypt(padding, password)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := DecryptPassword(k.private, padding, fromOpenSSL); err != nil || got != password {
			t.Errorf("%s: DecryptPassword does not decrypt openssl's ciphertext: %v", padding, err)
		}
	}
}

// connectorKey is an openssl-made connector key pair and what openssl says about it.
type connectorKey struct {
	*openSSL
	keyFile  string
	modulus  *big.Int
	exponent int
	private  *rsa.PrivateKey
}

func newConnectorKey(t *testing.T, o *openSSL, name string, bits int) *connectorKey {
	t.Helper()
	k := &connectorKey{openSSL: o, keyFile: o.rsaKey(name, bits)}
	modulusHex := strings.TrimSpace(strings.TrimPrefix(string(o.run("rsa", "-in", k.keyFile, "-noout", "-modulus")), "Modulus="))
	var ok bool
	if k.modulus, ok = new(big.Int).SetString(modulusHex, 16); !ok {
		t.Fatalf("openssl modulus %q is not hex", modulusHex)
	}
	match := regexp.MustCompile(`publicExponent: (\d+)`).FindSubmatch(o.run("rsa", "-in", k.keyFile, "-noout", "-text"))
	if match == nil {
		t.Fatal("openssl rsa -text shows no publicExponent")
	}
	k.exponent, _ = strconv.Atoi(string(match[1]))
	k.private = o.goKey(k.keyFile).(*rsa.PrivateKey)
	return k
}

// cngBlob builds an RSAPUBLICBLOB by hand from openssl's modulus and exponent, independently of
// MarshalCNGPublicBlob.
func (k *connectorKey) cngBlob() []byte {
	modulus := k.modulus.Bytes()
	return buildCNGBlob(0x31415352, uint32(k.modulus.BitLen()), big.NewInt(int64(k.exponent)).Bytes(), modulus)
}

// buildCNGBlob writes BCRYPT_RSAKEY_BLOB{Magic, BitLength, cbPublicExp, cbModulus, cbPrime1=0,
// cbPrime2=0} little-endian, then the exponent and modulus as given (big-endian).
func buildCNGBlob(magic, bitLength uint32, exponent, modulus []byte) []byte {
	var blob bytes.Buffer
	for _, field := range []uint32{magic, bitLength, uint32(len(exponent)), uint32(len(modulus)), 0, 0} {
		_ = binary.Write(&blob, binary.LittleEndian, field)
	}
	blob.Write(exponent)
	blob.Write(modulus)
	return blob.Bytes()
}

func TestParsePublicKeyFormats(t *testing.T) {
	o := newOpenSSL(t)
	k := newConnectorKey(t, o, "connector.key", 2048)
	o.run("rsa", "-in", k.keyFile, "-pubout", "-out", "spki.pem")
	o.run("rsa", "-in", k.keyFile, "-pubout", "-outform", "DER", "-out", "spki.der")
	o.run("rsa", "-in", k.keyFile, "-RSAPublicKey_out", "-out", "pkcs1.pem")
	o.run("rsa", "-in", k.keyFile, "-RSAPublicKey_out", "-outform", "DER", "-out", "pkcs1.der")
	blob := k.cngBlob()

	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"PEM SubjectPublicKeyInfo (openssl rsa -pubout)", o.read("spki.pem")},
		{"DER SubjectPublicKeyInfo", o.read("spki.der")},
		{"PEM PKCS#1 (openssl rsa -RSAPublicKey_out)", o.read("pkcs1.pem")},
		{"DER PKCS#1", o.read("pkcs1.der")},
		{"CNG RSAPUBLICBLOB", blob},
		{"CNG RSAPUBLICBLOB as base64", []byte(base64.StdEncoding.EncodeToString(blob))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := ParsePublicKey(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if pub.N.Cmp(k.modulus) != 0 || pub.E != k.exponent {
				t.Errorf("ParsePublicKey read a different key than openssl reports")
			}
		})
	}
	t.Run("MarshalCNGPublicBlob writes the hand-built blob", func(t *testing.T) {
		if got := MarshalCNGPublicBlob(&rsa.PublicKey{N: k.modulus, E: k.exponent}); !bytes.Equal(got, blob) {
			t.Errorf("MarshalCNGPublicBlob = %x\nwant %x", got, blob)
		}
		if MarshalCNGPublicBlob(nil) != nil {
			t.Error("MarshalCNGPublicBlob(nil) is not nil")
		}
	})
}

func TestParsePublicKeyRefuses(t *testing.T) {
	o := newOpenSSL(t)
	k := newConnectorKey(t, o, "connector.key", 2048)
	weak := newConnectorKey(t, o, "weak.key", 1024)
	o.run("rsa", "-in", weak.keyFile, "-pubout", "-out", "weak.pem")
	o.run("pkey", "-in", o.ecKey("ec.key", "P-256"), "-pubout", "-out", "ec.pem")
	blob := k.cngBlob()
	withHeader := func(offset int, value uint32) []byte {
		b := bytes.Clone(blob)
		binary.LittleEndian.PutUint32(b[offset:], value)
		return b
	}

	for _, tc := range []struct {
		name     string
		data     []byte
		mentions string
	}{
		{"empty", nil, "empty"},
		{"garbage", []byte("not a key at all"), "neither"},
		{"1024-bit PEM key", o.read("weak.pem"), "1024"},
		{"1024-bit CNG blob", weak.cngBlob(), "1024"},
		{"EC public key", o.read("ec.pem"), "RSA"},
		{"PEM certificate", o.read(o.cert("c.pem", k.keyFile, certOptions{subject: "/CN=c"})), "CERTIFICATE"},
		{"truncated CNG blob", blob[:len(blob)-1], "truncated"},
		{"CNG header shorter than 24 bytes", blob[:20], "truncated"},
		{"CNG bit length that disagrees with the modulus", withHeader(4, 4096), "4096"},
		{"CNG private key blob (RSA2)", withHeader(0, 0x32415352), "private"},
		{"CNG exponent longer than 4 bytes", buildCNGBlob(0x31415352, 2048, []byte{0, 0, 1, 0, 1}, k.modulus.Bytes()), "exponent"},
		{"CNG even exponent", buildCNGBlob(0x31415352, 2048, []byte{1, 0, 0}, k.modulus.Bytes()), "exponent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePublicKey(tc.data)
			assertReason(t, err, ReasonPublicKeyInvalid)
			if !strings.Contains(err.Error(), tc.mentions) {
				t.Errorf("message %q does not mention %q", err, tc.mentions)
			}
		})
	}
}

// opensslPadding is how `openssl pkeyutl` names each effective padding.
var opensslPadding = map[Padding][]string{
	PaddingPKCS1:      {"-pkeyopt", "rsa_padding_mode:pkcs1"},
	PaddingOAEPSHA1:   {"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha1", "-pkeyopt", "rsa_mgf1_md:sha1"},
	PaddingOAEPSHA256: {"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"},
	PaddingOAEPSHA384: {"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha384", "-pkeyopt", "rsa_mgf1_md:sha384"},
	PaddingOAEPSHA512: {"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha512", "-pkeyopt", "rsa_mgf1_md:sha512"},
}

// opensslDecrypt decrypts EncryptPassword's output with openssl.
func (k *connectorKey) opensslDecrypt(padding Padding, encrypted string) (string, error) {
	ciphertext, err := base64.StdEncoding.DecodeString(encrypted)
	if err != nil {
		return "", err
	}
	k.write("ciphertext.bin", ciphertext)
	out, err := k.try(append([]string{"pkeyutl", "-decrypt", "-inkey", k.keyFile, "-in", "ciphertext.bin"}, opensslPadding[padding]...)...)
	return string(out), err
}

// opensslEncrypt encrypts with openssl and the public key, as a connector-side peer would.
func (k *connectorKey) opensslEncrypt(padding Padding, password string) (string, error) {
	k.write("plaintext.bin", []byte(password))
	k.run("rsa", "-in", k.keyFile, "-pubout", "-out", "connector.pub")
	out, err := k.try(append([]string{"pkeyutl", "-encrypt", "-pubin", "-inkey", "connector.pub", "-in", "plaintext.bin"}, opensslPadding[padding]...)...)
	return base64.StdEncoding.EncodeToString(out), err
}

func TestEncryptPasswordInteropWithOpenSSL(t *testing.T) {
	o := newOpenSSL(t)
	k := newConnectorKey(t, o, "connector.key", 2048)
	pub := &k.private.PublicKey
	const password = "Contoso-Pfx p@ss 2026!"
	for _, padding := range []Padding{PaddingOAEPSHA256, PaddingOAEPSHA384, PaddingOAEPSHA512, PaddingNone} {
		t.Run(string(padding), func(t *testing.T) {
			encrypted, err := EncryptPassword(pub, padding, password)
			if err != nil {
				t.Fatal(err)
			}
			// none must behave exactly as oaepSha512: openssl decrypts it with SHA-512 OAEP.
			decrypted, err := k.opensslDecrypt(padding.Effective(), encrypted)
			if err != nil || decrypted != password {
				t.Fatalf("openssl does not decrypt it back to the password: %v", err)
			}
			if got, err := DecryptPassword(k.private, padding, encrypted); err != nil || got != password {
				t.Fatalf("DecryptPassword does not give the password back: %v", err)
			}
			fromOpenSSL, err := k.opensslEncrypt(padding.Effective(), password)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := DecryptPassword(k.private, padding, fromOpenSSL); err != nil || got != password {
				t.Fatalf("DecryptPassword does not decrypt openssl's ciphertext: %v", err)
			}
		})
	}
}

func TestEncryptPasswordLimits(t *testing.T) {
	o := newOpenSSL(t)
	k := newConnectorKey(t, o, "connector.key", 2048)
	pub := &k.private.PublicKey
	// RFC 8017 limits for a 256-byte modulus: k-11 for PKCS#1 v1.5, k-2*hLen-2 for OAEP.
	for _, tc := range []struct {
		padding Padding
		limit   int
	}{
		{PaddingOAEPSHA256, 190},
		{PaddingOAEPSHA384, 158},
		{PaddingOAEPSHA512, 126},
		{PaddingNone, 126},
	} {
		t.Run(string(tc.padding), func(t *testing.T) {
			longest := strings.Repeat("p", tc.limit)
			encrypted, err := EncryptPassword(pub, tc.padding, longest)
			if err != nil {
				t.Fatalf("a %d-byte password is refused: %v", tc.limit, err)
			}
			if got, err := k.opensslDecrypt(tc.padding.Effective(), encrypted); err != nil || got != longest {
				t.Fatalf("openssl does not decrypt the longest password: %v", err)
			}
			tooLong := longest + "q"
			if _, err := k.opensslEncrypt(tc.padding.Effective(), tooLong); err == nil {
				t.Fatalf("openssl encrypts %d bytes, so the limit is not tight", len(tooLong))
			}
			_, err = EncryptPassword(pub, tc.padding, tooLong)
			assertReason(t, err, ReasonInvalidPassword, tooLong)
			want := fmt.Sprintf("password is %d bytes; a 2048-bit key with %s takes at most %d", len(tooLong), tc.padding.Effective(), tc.limit)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q does not say %q", err, want)
			}
		})
	}
}

func TestEncryptPasswordRefuses(t *testing.T) {
	o := newOpenSSL(t)
	k := newConnectorKey(t, o, "connector.key", 2048)
	weak := newConnectorKey(t, o, "weak.key", 1024)
	pub := &k.private.PublicKey
	const nonASCII = "Pässwört-Geheim"

	_, err := EncryptPassword(pub, PaddingOAEPSHA256, nonASCII)
	assertReason(t, err, ReasonInvalidPassword, nonASCII, "ä")
	if !strings.Contains(err.Error(), "ASCII") {
		t.Errorf("message %q does not say ASCII", err)
	}
	_, err = EncryptPassword(pub, "oaepSha3", "secret-password")
	assertReason(t, err, ReasonUnsupportedPadding, "secret-password")
	// Microsoft's tool refuses pkcs1 and oaepSha1 as no longer supported: nothing is encrypted with them.
	for _, legacy := range []Padding{PaddingPKCS1, PaddingOAEPSHA1} {
		_, err = EncryptPassword(pub, legacy, "secret-password")
		assertReason(t, err, ReasonUnsupportedPadding, "secret-password")
		if !strings.Contains(err.Error(), "oaepSha512") {
			t.Errorf("message %q does not name oaepSha512", err)
		}
	}
	_, err = EncryptPassword(&weak.private.PublicKey, PaddingOAEPSHA256, "secret-password")
	assertReason(t, err, ReasonPublicKeyInvalid, "secret-password")
	_, err = EncryptPassword(nil, PaddingOAEPSHA256, "secret-password")
	assertReason(t, err, ReasonPublicKeyInvalid, "secret-password")
}

func TestDecryptPasswordRefuses(t *testing.T) {
	o := newOpenSSL(t)
	k := newConnectorKey(t, o, "connector.key", 2048)
	other := newConnectorKey(t, o, "other.key", 2048)
	const password = "secret-password"
	encrypted, err := EncryptPassword(&k.private.PublicKey, PaddingOAEPSHA256, password)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		key       *rsa.PrivateKey
		padding   Padding
		encrypted string
		want      Reason
	}{
		{"another connector key", other.private, PaddingOAEPSHA256, encrypted, ReasonDecryptionFailed},
		{"another padding", k.private, PaddingOAEPSHA512, encrypted, ReasonDecryptionFailed},
		{"PKCS#1 instead of OAEP", k.private, PaddingPKCS1, encrypted, ReasonDecryptionFailed},
		{"not base64", k.private, PaddingOAEPSHA256, "%%%", ReasonDecryptionFailed},
		{"no key", nil, PaddingOAEPSHA256, encrypted, ReasonDecryptionFailed},
		{"unknown padding", k.private, "rsaRaw", encrypted, ReasonUnsupportedPadding},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecryptPassword(tc.key, tc.padding, tc.encrypted)
			if got != "" {
				t.Error("DecryptPassword returned text along with an error")
			}
			assertReason(t, err, tc.want, password)
		})
	}
}
