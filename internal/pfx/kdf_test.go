package pfx

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"unicode/utf16"
)

// The PKCS#12 KDF agrees with OpenSSL's (its PKCS12KDF, which takes the password bytes as given, so the
// test hands it the BMPString) for every purpose, output length and password encoding the check uses.
func TestPKCS12KDFMatchesOpenSSL(t *testing.T) {
	o := newOpenSSL(t)
	salt, _ := hex.DecodeString("0a58cf64530d823f")
	for _, tc := range []struct {
		password   string
		iterations int
		id         byte
		size       int
	}{
		{"smeg", 1, kdfKey, 24},
		{pfxPassword, 2048, kdfKey, 24},
		{pfxPassword, 2048, kdfIV, 8},
		{pfxPassword, 2048, kdfKey, 5},
		{pfxPassword, 1000, kdfMAC, 20},
		{strings.Repeat("a long password, ", 8), 3, kdfKey, 64},
		{"", 2048, kdfKey, 16},
	} {
		t.Run(fmt.Sprintf("%d-char password, %d iterations, id %d, %d bytes", len(tc.password), tc.iterations, tc.id, tc.size), func(t *testing.T) {
			password := bmpOf(tc.password)
			out, err := o.try("kdf", "-keylen", fmt.Sprint(tc.size), "-kdfopt", "digest:SHA1",
				"-kdfopt", "hexpass:"+hex.EncodeToString(password), "-kdfopt", "hexsalt:"+hex.EncodeToString(salt),
				"-kdfopt", fmt.Sprintf("iter:%d", tc.iterations), "-kdfopt", fmt.Sprintf("id:%d", tc.id), "PKCS12KDF")
			if err != nil {
				t.Skipf("this OpenSSL has no PKCS12KDF: %v", err)
			}
			want, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(string(out)), ":", ""))
			if err != nil {
				t.Fatal(err)
			}
			if got := pkcs12KDF(password, salt, tc.iterations, tc.id, tc.size); !bytes.Equal(got, want) {
				t.Errorf("pkcs12KDF = %x, openssl %x", got, want)
			}
		})
	}
}

// bmpOf is s as a NUL-terminated BMPString (RFC 7292 appendix B.1), written here apart from the package's.
func bmpOf(s string) []byte {
	var out []byte
	for _, unit := range utf16.Encode([]rune(s)) {
		out = append(out, byte(unit>>8), byte(unit))
	}
	return append(out, 0, 0)
}

// RC2 against RFC 2268's test vectors (section 5), effective key lengths included.
func TestRC2Vectors(t *testing.T) {
	for _, tc := range []struct {
		key, plain, cipher string
		t1                 int
	}{
		{"0000000000000000", "0000000000000000", "ebb773f993278eff", 63},
		{"ffffffffffffffff", "ffffffffffffffff", "278b27e42e2f0d49", 64},
		{"3000000000000000", "1000000000000001", "30649edf9be7d2c2", 64},
		{"88", "0000000000000000", "61a8a244adacccf0", 64},
		{"88bca90e90875a", "0000000000000000", "6ccf4308974c267f", 64},
		{"88bca90e90875a7f0f79c384627bafb2", "0000000000000000", "1a807d272bbe5db1", 64},
		{"88bca90e90875a7f0f79c384627bafb2", "0000000000000000", "2269552ab0f85ca6", 128},
		{"88bca90e90875a7f0f79c384627bafb216f80a6f85920584c42fceb0be255daf1e", "0000000000000000", "5b78d3a43dfff1f1", 129},
	} {
		key, _ := hex.DecodeString(tc.key)
		plain, _ := hex.DecodeString(tc.plain)
		want, _ := hex.DecodeString(tc.cipher)
		c := &rc2Cipher{k: rc2ExpandKey(key, tc.t1)}
		var got, back [8]byte
		c.Encrypt(got[:], plain)
		c.Decrypt(back[:], got[:])
		if !bytes.Equal(got[:], want) || !bytes.Equal(back[:], plain) {
			t.Errorf("key %s t1 %d: encrypt = %x, want %s; decrypt back = %x", tc.key, tc.t1, got, tc.cipher, back)
		}
	}
	if _, err := newRC2(nil); err == nil {
		t.Error("newRC2 accepted an empty key")
	}
}
