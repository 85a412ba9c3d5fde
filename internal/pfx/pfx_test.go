package pfx

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

const pfxPassword = "Contoso-Pfx-2026!"

// expectedLeaf is what the test knows about a leaf independently of the package: the file it was made
// from (openssl reports its facts) and the inputs it was made with.
type expectedLeaf struct {
	cert      string
	upn       string
	algorithm string
	bits      int
	eku       []string
	keyUsages []string
}

func (p *pki) alice() expectedLeaf {
	return expectedLeaf{p.aliceCert, aliceUPN, "RSA", 2048, aliceEKU, aliceKeyUsages}
}
func (p *pki) bob() expectedLeaf {
	return expectedLeaf{p.bobCert, bobEmail, "ECDSA", 256, bobEKU, bobKeyUsages}
}
func (p *pki) carol() expectedLeaf {
	return expectedLeaf{p.carolCert, "", "ECDSA", 384, carolEKU, nil}
}

// assertFacts compares FactsOf's answer with openssl's view of the certificate file and the inputs.
func (p *pki) assertFacts(t *testing.T, got Facts, want expectedLeaf) {
	t.Helper()
	openssl := p.facts(want.cert)
	subject, issuer := p.names(want.cert)
	checks := []struct {
		field     string
		got, want any
	}{
		{"Thumbprint", got.Thumbprint, openssl.thumbprint},
		{"SerialNumber", got.SerialNumber, windowsSerial(openssl.serial)},
		{"Subject", got.Subject, subject},
		{"Issuer", got.Issuer, issuer},
		{"UserPrincipalName", got.UserPrincipalName, want.upn},
		{"KeyAlgorithm", got.KeyAlgorithm, want.algorithm},
		{"KeyLength", got.KeyLength, want.bits},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
	if !got.NotBefore.Equal(openssl.notBefore) || !got.NotAfter.Equal(openssl.notAfter) {
		t.Errorf("validity = %s..%s, want %s..%s", got.NotBefore, got.NotAfter, openssl.notBefore, openssl.notAfter)
	}
	if !slices.Equal(got.ExtendedKeyUsages, want.eku) {
		t.Errorf("ExtendedKeyUsages = %q, want %q", got.ExtendedKeyUsages, want.eku)
	}
	if !slices.Equal(got.KeyUsages, want.keyUsages) {
		t.Errorf("KeyUsages = %q, want %q", got.KeyUsages, want.keyUsages)
	}
}

// thumbprints lists the certificates' thumbprints, sorted, for order-insensitive chain comparisons.
func thumbprintsOf(p *pki, files ...string) []string {
	var out []string
	for _, f := range files {
		out = append(out, p.facts(f).thumbprint)
	}
	slices.Sort(out)
	return out
}

func TestFromPFXReadsCommonProducers(t *testing.T) {
	p := newPKI(t)
	aliceKey, aliceCert, caCert := p.goKey(p.aliceKey), p.goCert(p.aliceCert), p.goCert(p.caCert)
	goBuilt := func(encoder *pkcs12.Encoder) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			der, err := encoder.Encode(aliceKey, aliceCert, []*x509.Certificate{caCert}, pfxPassword)
			if err != nil {
				t.Fatal(err)
			}
			return der
		}
	}
	openssl := func(name, key, cert string, extra ...string) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { return p.pfx(name, key, cert, pfxPassword, extra...) }
	}
	cases := []struct {
		name     string
		build    func(t *testing.T) []byte
		password string // pfxPassword unless set
		encode   func([]byte) []byte
		leaf     expectedLeaf
		chain    []string
	}{
		{name: "OpenSSL 3 default", build: openssl("default.pfx", p.aliceKey, p.aliceCert), leaf: p.alice()},
		{name: "OpenSSL 3 default with CA chain", build: openssl("chain.pfx", p.aliceKey, p.aliceCert, "-certfile", p.caCert),
			leaf: p.alice(), chain: []string{p.caCert}},
		{name: "friendly names", build: openssl("names.pfx", p.aliceKey, p.aliceCert, "-certfile", p.caCert,
			"-name", "Alice Smith (S/MIME)", "-caname", "Contoso Issuing CA"), leaf: p.alice(), chain: []string{p.caCert}},
		{name: "OpenSSL legacy: RC2 certificates, 3DES key, SHA-1 MAC", build: func(t *testing.T) []byte {
			if _, err := p.try("pkcs12", "-export", "-legacy", "-inkey", p.aliceKey, "-in", p.aliceCert,
				"-out", "legacy.pfx", "-passout", "pass:"+pfxPassword); err != nil {
				if strings.Contains(err.Error(), "legacy") || strings.Contains(err.Error(), "unsupported") {
					t.Skipf("OpenSSL's legacy provider is not available, so -legacy cannot export: %v", err)
				}
				t.Fatal(err)
			}
			return p.read("legacy.pfx")
		}, leaf: p.alice()},
		{name: "certutil-style 3DES with SHA-1 MAC", build: openssl("3des.pfx", p.aliceKey, p.aliceCert,
			"-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES", "-macalg", "sha1", "-certfile", p.caCert),
			leaf: p.alice(), chain: []string{p.caCert}},
		{name: "EC P-256 with chain", build: openssl("bob.pfx", p.bobKey, p.bobCert, "-certfile", p.caCert),
			leaf: p.bob(), chain: []string{p.caCert}},
		{name: "EC P-384 self-signed without SAN", build: openssl("carol.pfx", p.carolKey, p.carolCert), leaf: p.carol()},
		{name: "empty password", build: func(t *testing.T) []byte { return p.pfx("empty.pfx", p.aliceKey, p.aliceCert, "") },
			password: "-", leaf: p.alice()},
		{name: "go-pkcs12 Modern", build: goBuilt(pkcs12.Modern), leaf: p.alice(), chain: []string{p.caCert}},
		{name: "go-pkcs12 Legacy", build: goBuilt(pkcs12.Legacy), leaf: p.alice(), chain: []string{p.caCert}},
		{name: "go-pkcs12 LegacyRC2", build: goBuilt(pkcs12.LegacyRC2), leaf: p.alice(), chain: []string{p.caCert}},
		{name: "leaf stored after its CA", build: func(t *testing.T) []byte {
			der, err := pkcs12.Modern.Encode(aliceKey, caCert, []*x509.Certificate{aliceCert}, pfxPassword)
			if err != nil {
				t.Fatal(err)
			}
			return der
		}, leaf: p.alice(), chain: []string{p.caCert}},
		{name: "base64 with line breaks", build: openssl("b64.pfx", p.aliceKey, p.aliceCert, "-certfile", p.caCert),
			encode: func(der []byte) []byte { return wrapLines(base64.StdEncoding.EncodeToString(der), 64) },
			leaf:   p.alice(), chain: []string{p.caCert}},
		{name: "base64 URL alphabet without padding", build: openssl("b64url.pfx", p.bobKey, p.bobCert),
			encode: func(der []byte) []byte { return []byte(base64.RawURLEncoding.EncodeToString(der)) },
			leaf:   p.bob()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			der := tc.build(t)
			input := der
			if tc.encode != nil {
				input = tc.encode(der)
			}
			password := pfxPassword
			if tc.password == "-" {
				password = ""
			}
			m, err := FromPFX(input, password)
			if err != nil {
				t.Fatalf("FromPFX: %v", err)
			}
			if !bytes.Equal(m.PFX, der) {
				t.Error("Material.PFX differs from the PFX file's bytes")
			}
			if m.Password != password {
				t.Error("Material.Password differs from the password given")
			}
			if m.Facts.Thumbprint != FactsOf(m.Leaf).Thumbprint {
				t.Error("Material.Facts is not FactsOf(Material.Leaf)")
			}
			p.assertFacts(t, m.Facts, tc.leaf)
			var chain []string
			for _, c := range m.Chain {
				chain = append(chain, FactsOf(c).Thumbprint)
			}
			slices.Sort(chain)
			if want := thumbprintsOf(p, tc.chain...); !slices.Equal(chain, want) {
				t.Errorf("chain thumbprints = %q, want %q", chain, want)
			}
		})
	}
}

func wrapLines(s string, width int) []byte {
	var b strings.Builder
	for len(s) > width {
		b.WriteString(s[:width] + "\r\n")
		s = s[width:]
	}
	b.WriteString(s + "\n")
	return []byte(b.String())
}

func TestFromPFXErrors(t *testing.T) {
	p := newPKI(t)
	valid := p.pfx("valid.pfx", p.aliceKey, p.aliceCert, pfxPassword, "-certfile", p.caCert)
	garbage := make([]byte, 2048)
	_, _ = rand.Read(garbage)
	otherKey := p.rsaKey("other.key", 2048)

	weakKey := p.rsaKey("weak.key", 1024)
	weakCert := p.cert("weak.pem", weakKey, certOptions{subject: "/CN=Weak"})
	const nonASCIIPassword = "Pässwört-Geheim"

	cases := []struct {
		name     string
		data     func(t *testing.T) []byte
		password string
		want     Reason
		mentions []string // the message must say these, so the user knows what to fix
	}{
		{name: "wrong password", data: func(*testing.T) []byte { return valid }, password: "Wrong-Guess-42",
			want: ReasonWrongPassword, mentions: []string{"password"}},
		{name: "empty", data: func(*testing.T) []byte { return nil }, want: ReasonInvalidPfx, mentions: []string{"empty"}},
		{name: "whitespace only", data: func(*testing.T) []byte { return []byte(" \n\t") }, want: ReasonInvalidPfx},
		{name: "random bytes", data: func(*testing.T) []byte { return garbage }, want: ReasonInvalidPfx},
		{name: "truncated", data: func(*testing.T) []byte { return valid[:len(valid)/2] }, want: ReasonInvalidPfx},
		{name: "text", data: func(*testing.T) []byte { return []byte("this is not a PFX file, it is prose.") },
			want: ReasonInvalidPfx},
		{name: "PEM certificate instead of PFX", data: func(*testing.T) []byte { return p.read(p.aliceCert) },
			want: ReasonInvalidPfx},
		{name: "PFX without key (-nokeys)", data: func(*testing.T) []byte {
			p.run("pkcs12", "-export", "-nokeys", "-in", p.aliceCert, "-out", "nokeys.pfx", "-passout", "pass:"+pfxPassword)
			return p.read("nokeys.pfx")
		}, want: ReasonNoPrivateKey, mentions: []string{"no private key"}},
		{name: "PFX without certificate (-nocerts)", data: func(*testing.T) []byte {
			p.run("pkcs12", "-export", "-nocerts", "-inkey", p.aliceKey, "-out", "nocerts.pfx", "-passout", "pass:"+pfxPassword)
			return p.read("nocerts.pfx")
		}, want: ReasonInvalidPfx, mentions: []string{"no certificate"}},
		{name: "key does not match the certificate", data: func(t *testing.T) []byte {
			der, err := pkcs12.Modern.Encode(p.goKey(otherKey), p.goCert(p.aliceCert), []*x509.Certificate{p.goCert(p.caCert)}, pfxPassword)
			if err != nil {
				t.Fatal(err)
			}
			return der
		}, want: ReasonKeyMismatch, mentions: []string{"matches the private key"}},
		{name: "1024-bit RSA key", data: func(*testing.T) []byte {
			return p.pfx("weak.pfx", weakKey, weakCert, pfxPassword)
		}, want: ReasonWeakKey, mentions: []string{"1024", "2048"}},
		{name: "non-ASCII password", data: func(*testing.T) []byte {
			return p.pfx("nonascii.pfx", p.aliceKey, p.aliceCert, nonASCIIPassword)
		}, password: nonASCIIPassword, want: ReasonInvalidPassword, mentions: []string{"ASCII"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			password := tc.password
			if password == "" {
				password = pfxPassword
			}
			m, err := FromPFX(tc.data(t), password)
			if m != nil {
				t.Fatal("got Material along with an error")
			}
			assertReason(t, err, tc.want, password, pfxPassword)
			for _, word := range tc.mentions {
				if !strings.Contains(err.Error(), word) {
					t.Errorf("message %q does not mention %q", err, word)
				}
			}
		})
	}
}

func TestCheckValidity(t *testing.T) {
	p := newPKI(t)
	now := time.Now()
	expired := p.cert("expired.pem", p.aliceKey, certOptions{subject: "/CN=Expired",
		notBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), notAfter: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)})
	future := p.cert("future.pem", p.aliceKey, certOptions{subject: "/CN=Future",
		notBefore: now.Add(48 * time.Hour), notAfter: now.Add(96 * time.Hour)})

	t.Run("expired and not-yet-valid certificates still open, and CheckValidity names the problem", func(t *testing.T) {
		for _, tc := range []struct {
			cert string
			want Reason
		}{{expired, ReasonCertificateExpired}, {future, ReasonCertificateNotYetValid}} {
			m, err := FromPFX(p.pfx(tc.cert+".pfx", p.aliceKey, tc.cert, pfxPassword), pfxPassword)
			if err != nil {
				t.Fatalf("FromPFX(%s): %v", tc.cert, err)
			}
			err = CheckValidity(m.Leaf, now)
			assertReason(t, err, tc.want, pfxPassword)
			if !strings.Contains(err.Error(), m.Facts.Subject) {
				t.Errorf("message %q does not name the certificate", err)
			}
		}
	})
	t.Run("both bounds are inclusive", func(t *testing.T) {
		cert := p.goCert(p.aliceCert)
		dates := p.facts(p.aliceCert)
		for _, tc := range []struct {
			at   time.Time
			want Reason // "" for valid
		}{
			{dates.notBefore.Add(-time.Second), ReasonCertificateNotYetValid},
			{dates.notBefore, ""},
			{dates.notAfter, ""},
			{dates.notAfter.Add(time.Second), ReasonCertificateExpired},
		} {
			err := CheckValidity(cert, tc.at)
			if tc.want == "" {
				if err != nil {
					t.Errorf("at %s: %v", tc.at, err)
				}
				continue
			}
			assertReason(t, err, tc.want)
		}
	})
}

func TestParseCertificate(t *testing.T) {
	p := newPKI(t)
	pemChain := append(p.read(p.aliceCert), p.read(p.caCert)...)
	p.run("x509", "-in", p.aliceCert, "-outform", "DER", "-out", "alice.der")
	der := p.read("alice.der")
	pfx := p.pfx("alice.pfx", p.aliceKey, p.aliceCert, pfxPassword, "-certfile", p.caCert)
	weakKey := p.rsaKey("weak.key", 1024)
	weakCert := p.cert("weak.pem", weakKey, certOptions{subject: "/CN=Weak"})
	weakPFX := p.pfx("weak.pfx", weakKey, weakCert, pfxPassword)

	for _, tc := range []struct {
		name     string
		data     []byte
		password string
		want     string // certificate file
	}{
		{"PEM", p.read(p.aliceCert), "", p.aliceCert},
		{"PEM chain: the first certificate", pemChain, "", p.aliceCert},
		{"DER", der, "", p.aliceCert},
		{"base64 DER", []byte(base64.StdEncoding.EncodeToString(der)), "", p.aliceCert},
		{"PFX", pfx, pfxPassword, p.aliceCert},
		{"base64 PFX", []byte(base64.StdEncoding.EncodeToString(pfx)), pfxPassword, p.aliceCert},
		{"PFX with a weak key: reading is not judging", weakPFX, pfxPassword, weakCert},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert, err := ParseCertificate(tc.data, tc.password)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := FactsOf(cert).Thumbprint, p.facts(tc.want).thumbprint; got != want {
				t.Errorf("thumbprint = %s, want %s", got, want)
			}
		})
	}
	for _, tc := range []struct {
		name     string
		data     []byte
		password string
		want     Reason
	}{
		{"empty", nil, "", ReasonInvalidCertificate},
		{"garbage", []byte{0x30, 0x03, 0x02, 0x01, 0x05, 0xff, 0x00}, "", ReasonInvalidCertificate},
		{"PEM without a certificate", p.read(p.aliceKey), "", ReasonInvalidCertificate},
		{"PFX with the wrong password", pfx, "Wrong-Guess-42", ReasonWrongPassword},
		{"PFX with a password PKCS#12 cannot encode", pfx, "🔑-key", ReasonWrongPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseCertificate(tc.data, tc.password)
			assertReason(t, err, tc.want, pfxPassword, tc.password)
		})
	}
}

func TestFromTLS(t *testing.T) {
	p := newPKI(t)
	p.run("rsa", "-in", p.aliceKey, "-traditional", "-out", "alice.pkcs1.key")
	p.run("ecparam", "-genkey", "-name", "prime256v1", "-out", "dave.key") // EC PARAMETERS + SEC1 EC PRIVATE KEY
	daveCert := p.cert("dave.pem", "dave.key", certOptions{subject: "/CN=Dave", san: "email:dave@contoso.com",
		eku: "emailProtection", keyUsage: "digitalSignature", issuerKey: p.caKey, issuerCert: p.caCert})
	dave := expectedLeaf{daveCert, "dave@contoso.com", "ECDSA", 256, []string{"emailProtection"}, []string{"digitalSignature"}}
	concat := func(files ...string) []byte {
		var out []byte
		for _, f := range files {
			out = append(out, p.read(f)...)
		}
		return out
	}

	cases := []struct {
		name   string
		crt    []byte
		key    string
		leaf   expectedLeaf
		chain  []string
		keyPEM string // the block type the key file must have, proving the format under test
	}{
		{"RSA PKCS#1 key, leaf then CA", concat(p.aliceCert, p.caCert), "alice.pkcs1.key", p.alice(), []string{p.caCert}, "RSA PRIVATE KEY"},
		{"RSA PKCS#8 key, CA then leaf", concat(p.caCert, p.aliceCert), p.aliceKey, p.alice(), []string{p.caCert}, "PRIVATE KEY"},
		{"EC SEC1 key after EC PARAMETERS", concat(daveCert, p.caCert), "dave.key", dave, []string{p.caCert}, "EC PRIVATE KEY"},
		{"EC PKCS#8 key, leaf only", concat(p.bobCert), p.bobKey, p.bob(), nil, "PRIVATE KEY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keyPEM := p.read(tc.key)
			if !bytes.Contains(keyPEM, []byte("-----BEGIN "+tc.keyPEM+"-----")) {
				t.Fatalf("%s is not a %s file", tc.key, tc.keyPEM)
			}
			m, err := FromTLS(tc.crt, keyPEM, "")
			if err != nil {
				t.Fatal(err)
			}
			p.assertFacts(t, m.Facts, tc.leaf)
			if len(m.Password) != 32 || strings.Trim(m.Password, passwordAlphabet) != "" {
				t.Errorf("password is not 32 ASCII letters and digits (length %d)", len(m.Password))
			}

			// openssl opens the built PFX and finds the same leaf, chain and key.
			pfxFile := p.write("built.pfx", m.PFX)
			pass := "pass:" + m.Password
			p.run("pkcs12", "-in", pfxFile, "-passin", pass, "-nokeys", "-clcerts", "-out", "built-leaf.pem")
			if got, want := p.facts("built-leaf.pem").thumbprint, p.facts(tc.leaf.cert).thumbprint; got != want {
				t.Errorf("openssl finds leaf %s in the built PFX, want %s", got, want)
			}
			if len(tc.chain) > 0 {
				p.run("pkcs12", "-in", pfxFile, "-passin", pass, "-nokeys", "-cacerts", "-out", "built-ca.pem")
				if got, want := p.facts("built-ca.pem").thumbprint, p.facts(tc.chain[0]).thumbprint; got != want {
					t.Errorf("openssl finds CA %s in the built PFX, want %s", got, want)
				}
			}
			p.run("pkcs12", "-in", pfxFile, "-passin", pass, "-nocerts", "-noenc", "-out", "built-key.pem")
			if got, want := p.run("pkey", "-in", "built-key.pem", "-pubout"), p.run("pkey", "-in", tc.key, "-pubout"); !bytes.Equal(got, want) {
				t.Error("the built PFX holds a different key")
			}

			reopened, err := FromPFX(m.PFX, m.Password)
			if err != nil {
				t.Fatalf("FromPFX of the built PFX: %v", err)
			}
			if !reopened.Leaf.Equal(m.Leaf) || len(reopened.Chain) != len(tc.chain) {
				t.Error("FromPFX of the built PFX finds a different leaf or chain")
			}
		})
	}

	t.Run("every build gets a fresh password", func(t *testing.T) {
		first, err := FromTLS(p.read(p.bobCert), p.read(p.bobKey), "")
		if err != nil {
			t.Fatal(err)
		}
		second, err := FromTLS(p.read(p.bobCert), p.read(p.bobKey), "")
		if err != nil {
			t.Fatal(err)
		}
		if first.Password == second.Password {
			t.Error("two builds share a password")
		}
		if bytes.Equal(first.PFX, second.PFX) {
			t.Error("two builds produced identical PFX bytes")
		}
	})

	t.Run("errors", func(t *testing.T) {
		p.run("pkey", "-in", p.aliceKey, "-aes256", "-passout", "pass:"+pfxPassword, "-out", "encrypted.key")
		weakKey := p.rsaKey("weak.key", 1024)
		weakCert := p.cert("weak.pem", weakKey, certOptions{subject: "/CN=Weak"})
		aliceKeyPEM := p.read(p.aliceKey)
		// A line from the middle of the key PEM stands for key material that must never reach a message.
		keyLine := strings.Split(string(aliceKeyPEM), "\n")[5]
		for _, tc := range []struct {
			name     string
			crt, key []byte
			want     Reason
		}{
			{"key of another certificate", p.read(p.bobCert), aliceKeyPEM, ReasonKeyMismatch},
			{"garbage key", p.read(p.aliceCert), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), ReasonNoPrivateKey},
			{"no key", p.read(p.aliceCert), nil, ReasonNoPrivateKey},
			{"encrypted key", p.read(p.aliceCert), p.read("encrypted.key"), ReasonNoPrivateKey},
			{"garbage certificate", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), aliceKeyPEM, ReasonInvalidCertificate},
			{"no certificate", aliceKeyPEM, aliceKeyPEM, ReasonInvalidCertificate},
			{"1024-bit key", p.read(weakCert), p.read(weakKey), ReasonWeakKey},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := FromTLS(tc.crt, tc.key, "")
				assertReason(t, err, tc.want, keyLine, pfxPassword)
			})
		}
	})
}

// The encoding of a built PFX is what pfxEncoding says, as openssl reads it: 3DES with a SHA-1 MAC by
// default (connector hosts on Windows Server 2016 and earlier open nothing else), AES-256 with PBKDF2 and a
// SHA-256 MAC on request.
func TestFromTLSEncodings(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		encoding Encoding
		want     []string // lines of openssl pkcs12 -info
		not      []string
	}{
		{"", []string{"MAC: sha1", "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC", "PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC"},
			[]string{"AES", "PBKDF2", "RC2"}},
		{EncodingTripleDESSHA1, []string{"MAC: sha1", "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC", "PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC"},
			[]string{"AES", "PBKDF2", "RC2"}},
		{EncodingAES256SHA256, []string{"MAC: sha256", "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC", "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC"},
			[]string{"3-KeyTripleDES", "RC2"}},
	} {
		t.Run(string(tc.encoding), func(t *testing.T) {
			m, err := FromTLS(p.read(p.aliceCert), p.read(p.aliceKey), tc.encoding)
			if err != nil {
				t.Fatal(err)
			}
			pfxFile := p.write("encoded.pfx", m.PFX)
			// -info describes the encryption on stderr.
			cmd := exec.Command(p.bin, "pkcs12", "-info", "-in", pfxFile, "-passin", "pass:"+m.Password, "-noout")
			cmd.Dir = p.dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("openssl pkcs12 -info: %v: %s", err, out)
			}
			info := string(out)
			for _, want := range tc.want {
				if !strings.Contains(info, want) {
					t.Errorf("openssl pkcs12 -info does not say %q:\n%s", want, info)
				}
			}
			for _, not := range tc.not {
				if strings.Contains(info, not) {
					t.Errorf("openssl pkcs12 -info mentions %q:\n%s", not, info)
				}
			}
			if _, err := FromPFX(m.PFX, m.Password); err != nil {
				t.Errorf("FromPFX does not open the built PFX: %v", err)
			}
		})
	}
	_, err := FromTLS(p.read(p.aliceCert), p.read(p.aliceKey), "RC2-40")
	assertReason(t, err, ReasonInvalidPfx)
}

func TestFactsOf(t *testing.T) {
	p := newOpenSSL(t)
	key := p.rsaKey("k.pem", 2048)
	t.Run("a serial without the high bit has no leading 00", func(t *testing.T) {
		cert := p.cert("low.pem", key, certOptions{subject: "/CN=Low", serial: "0A1B2C"})
		if got, want := FactsOf(p.goCert(cert)).SerialNumber, p.facts(cert).serial; got != want {
			t.Errorf("SerialNumber = %s, want %s", got, want)
		}
	})
	t.Run("the UPN otherName wins over an earlier email SAN", func(t *testing.T) {
		cert := p.cert("both.pem", key, certOptions{subject: "/CN=Both",
			san: "email:first@contoso.com,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:upn@contoso.com"})
		if got := FactsOf(p.goCert(cert)).UserPrincipalName; got != "upn@contoso.com" {
			t.Errorf("UserPrincipalName = %q", got)
		}
	})
	t.Run("other otherNames are not taken for a UPN", func(t *testing.T) {
		cert := p.cert("other.pem", key, certOptions{subject: "/CN=Other",
			san: "otherName:1.2.3.4;UTF8:not-a-upn,email:mail@contoso.com"})
		if got := FactsOf(p.goCert(cert)).UserPrincipalName; got != "mail@contoso.com" {
			t.Errorf("UserPrincipalName = %q", got)
		}
	})
	t.Run("nil certificate", func(t *testing.T) {
		if got := FactsOf(nil); got.Thumbprint != "" {
			t.Errorf("FactsOf(nil) = %+v", got)
		}
	})
}

func TestFromPFXBoundsKeyDerivationWork(t *testing.T) {
	p := newPKI(t)
	over := fmt.Sprint(maxKDFIterations + 1)
	// openssl applies -noiter/-nomaciter after -iter, which isolates each place an iteration count sits.
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"MAC", []string{"-iter", over, "-noiter"}},
		{"encrypted certificate safe", []string{"-iter", over, "-nomaciter", "-keypbe", "NONE"}},
		{"shrouded key", []string{"-iter", over, "-nomaciter", "-certpbe", "NONE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromPFX(p.pfx("slow.pfx", p.aliceKey, p.aliceCert, pfxPassword, tc.flags...), pfxPassword)
			assertReason(t, err, ReasonInvalidPfx, pfxPassword)
			if !strings.Contains(err.Error(), over) {
				t.Errorf("message %q does not name the iteration count", err)
			}
		})
	}
	t.Run("the limit itself is accepted", func(t *testing.T) {
		data := p.pfx("limit.pfx", p.aliceKey, p.aliceCert, pfxPassword, "-iter", fmt.Sprint(maxKDFIterations))
		if _, err := FromPFX(data, pfxPassword); err != nil {
			t.Fatal(err)
		}
	})
}
