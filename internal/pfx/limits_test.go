package pfx

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// keyAndCerts is what the hand-made files hold: openssl's alice and her CA.
type keyAndCerts struct {
	key  crypto.PrivateKey
	leaf *x509.Certificate
	ca   *x509.Certificate
}

func aliceOf(p *pki) keyAndCerts {
	return keyAndCerts{p.goKey(p.aliceKey), p.goCert(p.aliceCert), p.goCert(p.caCert)}
}

// layout builds one arrangement of safes with keyIterations on the shrouded key; the bomb and its harmless
// twin (2048 iterations) differ in nothing else.
type layout struct {
	name  string
	build func(h *handPFX, m keyAndCerts, keyIterations int) []byte
	// goPKCS12 is false when go-pkcs12 cannot read the twin (a safe scheme it does not know).
	goPKCS12   bool
	needLegacy bool
}

// keyInsideEncryptedSafe puts the shrouded key (PBES2, as OpenSSL 3) in the encrypted safe with the
// certificates: the place checkWorkFactors used not to look.
func keyInsideEncryptedSafe(safe, key scheme) layout {
	return layout{
		name: fmt.Sprintf("key (%s) inside an encrypted safe (%s)", key.name, safe.name),
		build: func(h *handPFX, m keyAndCerts, keyIterations int) []byte {
			bags := append(h.certs(m.leaf, m.ca), h.shroudedKey(key, keyIterations, m.key))
			return h.build(2048, h.encryptedSafe(safe, 2048, bags...))
		},
		goPKCS12: safe.goPKCS12 && key.goPKCS12, needLegacy: safe.needLegacy || key.needLegacy,
	}
}

// nestedLayouts are the layouts whose shrouded key only shows once a safe is decrypted.
func nestedLayouts() []layout {
	var layouts []layout
	for _, safe := range safeSchemes {
		layouts = append(layouts, keyInsideEncryptedSafe(safe, pbes2AES256SHA256))
	}
	layouts = append(layouts,
		keyInsideEncryptedSafe(pkcs12RC2With40, pkcs12TripleDES), // openssl -legacy's schemes, key moved
		keyInsideEncryptedSafe(pbes2AES256SHA256, pkcs12TripleDES),
		layout{name: "key in a safeContentsBag inside an encrypted safe (PBES2 AES-256-CBC)",
			build: func(h *handPFX, m keyAndCerts, keyIterations int) []byte {
				// go-pkcs12 v0.7.4 skips safeContentsBags, so the twin holds the key a second time, outside.
				inner := h.nested(h.nested(h.shroudedKey(pbes2AES256SHA256, keyIterations, m.key)))
				return h.build(2048,
					h.encryptedSafe(pbes2AES256SHA256, 2048, append(h.certs(m.leaf), inner)...),
					h.plainSafe(h.shroudedKey(pbes2AES256SHA256, 2048, m.key)))
			}, goPKCS12: true},
		layout{name: "key inside an encrypted safe beside a plain safe (RC2-40, 3DES)",
			build: func(h *handPFX, m keyAndCerts, keyIterations int) []byte {
				return h.build(2048,
					h.plainSafe(h.certs(m.ca)...),
					h.encryptedSafe(pkcs12RC2With40, 2048, append(h.certs(m.leaf), h.shroudedKey(pkcs12TripleDES, keyIterations, m.key))...))
			}, goPKCS12: true, needLegacy: true},
	)
	return layouts
}

// assertRefused checks the refusal's form: InvalidPfx, the count named, the password not.
func assertRefused(t *testing.T, err error, count int, password string) {
	t.Helper()
	assertReason(t, err, ReasonInvalidPfx, password)
	if want := fmt.Sprintf("asks for %d key-derivation iterations; at most %d are accepted", count, maxKDFIterations); !strings.Contains(err.Error(), want) {
		t.Errorf("message %q does not say %q", err, want)
	}
}

func TestCheckWorkFactorsRefusesNestedBombs(t *testing.T) {
	p := newPKI(t)
	m := aliceOf(p)
	for _, l := range nestedLayouts() {
		t.Run(l.name, func(t *testing.T) {
			h := newHandPFX(t, pfxPassword)
			bomb := l.build(h, m, bombIterations)
			assertRefused(t, CheckWorkFactors(bomb, pfxPassword), bombIterations, pfxPassword)
			assertRefused(t, CheckWorkFactors([]byte(base64.StdEncoding.EncodeToString(bomb)), pfxPassword), bombIterations, pfxPassword)
			_, err := FromPFX(bomb, pfxPassword) // the check runs before go-pkcs12, which would hang here
			assertRefused(t, err, bombIterations, pfxPassword)

			// The twin is a well-formed file: openssl reads it, and so does FromPFX when go-pkcs12 can.
			twin := l.build(h, m, 2048)
			p.assertOpenSSLReadsKey(t, twin, pfxPassword, l.needLegacy)
			if err := CheckWorkFactors(twin, pfxPassword); err != nil {
				t.Fatalf("the twin with 2048 iterations is refused: %v", err)
			}
			if l.goPKCS12 {
				got, err := FromPFX(twin, pfxPassword)
				if err != nil {
					t.Fatalf("FromPFX(twin): %v", err)
				}
				if !got.Leaf.Equal(m.leaf) {
					t.Error("the twin's leaf is not alice's certificate")
				}
			}
		})
	}
}

// assertOpenSSLReadsKey checks that openssl decrypts the whole file, MAC, safes and key included.
func (p *pki) assertOpenSSLReadsKey(t *testing.T, der []byte, password string, legacy bool) {
	t.Helper()
	p.write("hand.pfx", der)
	args := []string{"pkcs12", "-in", "hand.pfx", "-passin", "pass:" + password, "-nodes"}
	if legacy {
		args = append(args, "-legacy")
	}
	out, err := p.try(args...)
	if err != nil {
		if legacy && strings.Contains(err.Error(), "legacy") {
			t.Skipf("OpenSSL's legacy provider is not available: %v", err)
		}
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("-----BEGIN PRIVATE KEY-----")) || !bytes.Contains(out, []byte("-----BEGIN CERTIFICATE-----")) {
		t.Fatalf("openssl found no key or no certificate in the file:\n%s", out)
	}
}

func TestCheckWorkFactorsRefusesBombsElsewhere(t *testing.T) {
	p := newPKI(t)
	m := aliceOf(p)
	for _, tc := range []struct {
		name  string
		build func(h *handPFX) []byte
	}{
		{"MAC", func(h *handPFX) []byte {
			return h.build(bombIterations, h.plainSafe(append(h.certs(m.leaf), h.shroudedKey(pbes2AES256SHA256, 2048, m.key))...))
		}},
		{"plain shrouded key (PBES2)", func(h *handPFX) []byte {
			return h.build(2048, h.plainSafe(append(h.certs(m.leaf), h.shroudedKey(pbes2AES256SHA256, bombIterations, m.key))...))
		}},
		{"plain shrouded key (3DES)", func(h *handPFX) []byte {
			return h.build(2048, h.plainSafe(append(h.certs(m.leaf), h.shroudedKey(pkcs12TripleDES, bombIterations, m.key))...))
		}},
		{"plain shrouded key in a safeContentsBag", func(h *handPFX) []byte {
			return h.build(2048, h.plainSafe(append(h.certs(m.leaf), h.nested(h.shroudedKey(pkcs12TripleDES, bombIterations, m.key)))...))
		}},
		{"shrouded key behind an authSafe that is not an OCTET STRING", func(h *handPFX) []byte {
			h.authSafeTag = asn1.TagUTF8String
			return h.build(2048, h.plainSafe(append(h.certs(m.leaf), h.shroudedKey(pbes2AES256SHA256, bombIterations, m.key))...))
		}},
		{"key inside an encrypted safe, file without a MAC (go-pkcs12 would refuse it; the check looks anyway)", func(h *handPFX) []byte {
			return h.build(0, h.encryptedSafe(pbes2AES256SHA256, 2048, append(h.certs(m.leaf), h.shroudedKey(pbes2AES256SHA256, bombIterations, m.key))...))
		}},
		{"a bomb safe before a safe with the key", func(h *handPFX) []byte {
			return h.build(2048, h.encryptedSafe(pbes2AES256SHA256, bombIterations, h.certs(m.ca)...),
				h.encryptedSafe(pbes2AES256SHA256, 2048, append(h.certs(m.leaf), h.shroudedKey(pbes2AES256SHA256, 2048, m.key))...))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bomb := tc.build(newHandPFX(t, pfxPassword))
			assertRefused(t, CheckWorkFactors(bomb, pfxPassword), bombIterations, pfxPassword)
			_, err := FromPFX(bomb, pfxPassword)
			assertRefused(t, err, bombIterations, pfxPassword)
		})
	}
	for _, s := range safeSchemes {
		t.Run("encrypted safe ("+s.name+")", func(t *testing.T) {
			h := newHandPFX(t, pfxPassword)
			bomb := h.build(2048, h.encryptedSafe(s, bombIterations, h.certs(m.leaf)...), h.plainSafe(h.shroudedKey(pbes2AES256SHA256, 2048, m.key)))
			assertRefused(t, CheckWorkFactors(bomb, pfxPassword), bombIterations, pfxPassword)
			_, err := FromPFX(bomb, pfxPassword)
			assertRefused(t, err, bombIterations, pfxPassword)
		})
	}
}

// go-pkcs12 reads the authSafe under any tag, which is why the check must too: this pins that it does.
func TestGoPKCS12ReadsAuthSafeUnderAnyTag(t *testing.T) {
	p := newPKI(t)
	m := aliceOf(p)
	h := newHandPFX(t, pfxPassword)
	h.authSafeTag = asn1.TagUTF8String
	der := h.build(2048, h.plainSafe(append(h.certs(m.leaf), h.shroudedKey(pbes2AES256SHA256, 2048, m.key))...))
	if _, _, _, err := pkcs12.DecodeChain(der, pfxPassword); err != nil {
		t.Fatalf("go-pkcs12 no longer reads a retagged authSafe (%v): the check could be stricter there", err)
	}
}

// A password outside ASCII is encoded as go-pkcs12 and openssl do: BMPString for PKCS#12 PBE, UTF-8 for
// PBES2. (FromPFX refuses such passwords; CheckWorkFactors serves callers that do not.)
func TestCheckWorkFactorsNonASCIIPassword(t *testing.T) {
	p := newPKI(t)
	m := aliceOf(p)
	const password = "Pässwört-Geheim-€"
	for _, l := range []layout{keyInsideEncryptedSafe(pkcs12RC2With40, pkcs12TripleDES), keyInsideEncryptedSafe(pbes2AES256SHA256, pbes2AES256SHA256)} {
		t.Run(l.name, func(t *testing.T) {
			h := newHandPFX(t, password)
			assertRefused(t, CheckWorkFactors(l.build(h, m, bombIterations), password), bombIterations, password)
			twin := l.build(h, m, 2048)
			p.assertOpenSSLReadsKey(t, twin, password, l.needLegacy)
			if _, _, _, err := pkcs12.DecodeChain(twin, password); err != nil {
				t.Fatalf("go-pkcs12 does not read the twin: %v", err)
			}
		})
	}
}

// The empty password is the one case go-pkcs12 reads a file without a MAC, and the one case it has two
// encodings of the password (a NUL pair, or nothing): each must be looked through.
func TestCheckWorkFactorsEmptyPassword(t *testing.T) {
	p := newPKI(t)
	m := aliceOf(p)
	for _, tc := range []struct {
		name          string
		emptyBMP      bool
		macIterations int
		safe          scheme
	}{
		{"no MAC, 3DES safe", false, 0, pkcs12TripleDES},
		{"no MAC, PBES2 safe", false, 0, pbes2AES256SHA256},
		{"MAC and safe under the zero-length encoding, RC2-40 safe", true, 2048, pkcs12RC2With40},
		{"MAC and safe under the zero-length encoding, PBES2 safe", true, 2048, pbes2AES256SHA256},
		{"MAC, RC2-40 safe", false, 2048, pkcs12RC2With40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			build := func(keyIterations int) []byte {
				h := &handPFX{t: t, emptyBMP: tc.emptyBMP}
				return h.build(tc.macIterations, h.encryptedSafe(tc.safe, 2048,
					append(h.certs(m.leaf), h.shroudedKey(pbes2AES256SHA256, keyIterations, m.key))...))
			}
			bomb := build(bombIterations)
			assertRefused(t, CheckWorkFactors(bomb, ""), bombIterations, "")
			_, err := FromPFX(bomb, "")
			assertRefused(t, err, bombIterations, "")
			if _, err := FromPFX(build(2048), ""); err != nil {
				t.Fatalf("the twin with 2048 iterations: %v", err)
			}
		})
	}
}

// A safe the check cannot decrypt is left to go-pkcs12, which must then fail at that safe (or at the MAC)
// without deriving the key inside. Should go-pkcs12 start reading any of these, the test hangs.
func TestCheckWorkFactorsLeavesUnreadableSafes(t *testing.T) {
	p := newPKI(t)
	m := aliceOf(p)
	nestedBomb := func(h *handPFX, safe scheme, macIterations int) []byte {
		return h.build(macIterations, h.encryptedSafe(safe, 2048,
			append(h.certs(m.leaf), h.shroudedKey(pbes2AES256SHA256, bombIterations, m.key))...))
	}
	for _, tc := range []struct {
		name     string
		build    func(h *handPFX) []byte
		password string
		want     Reason
	}{
		{"wrong password: the MAC fails", func(h *handPFX) []byte { return nestedBomb(h, pbes2AES256SHA256, 2048) },
			"Wrong-Guess-42", ReasonWrongPassword},
		{"wrong password, RC2-40 safe: the MAC fails", func(h *handPFX) []byte { return nestedBomb(h, pkcs12RC2With40, 2048) },
			"Wrong-Guess-42", ReasonWrongPassword},
		{"safe under another password than the MAC: go-pkcs12 fails at the safe", func(h *handPFX) []byte {
			other := newHandPFX(t, "Another-Password-1")
			safe := other.encryptedSafe(pbes2AES256SHA256, 2048, append(h.certs(m.leaf), h.shroudedKey(pbes2AES256SHA256, bombIterations, m.key))...)
			return h.build(2048, safe)
		}, pfxPassword, ReasonInvalidPfx},
		{"3DES safe under another password than the MAC", func(h *handPFX) []byte {
			other := newHandPFX(t, "Another-Password-1")
			safe := other.encryptedSafe(pkcs12TripleDES, 2048, append(h.certs(m.leaf), h.shroudedKey(pkcs12TripleDES, bombIterations, m.key))...)
			return h.build(2048, safe)
		}, pfxPassword, ReasonInvalidPfx},
		{"safe scheme no one reads (pbeWithSHAAnd128BitRC4)", func(h *handPFX) []byte {
			return nestedBomb(h, scheme{name: "RC4", oid: oidPKCS12RC4With}, 2048)
		}, pfxPassword, ReasonInvalidPfx},
	} {
		t.Run(tc.name, func(t *testing.T) {
			der := tc.build(newHandPFX(t, pfxPassword))
			if err := CheckWorkFactors(der, tc.password); err != nil {
				t.Fatalf("CheckWorkFactors: %v; this case is about safes it cannot decrypt", err)
			}
			_, err := FromPFX(der, tc.password)
			assertReason(t, err, tc.want, tc.password, pfxPassword)
		})
	}
	// Schemes the check decrypts and go-pkcs12 does not: refused here, as go-pkcs12 would fail anyway.
	t.Run("safe scheme only the check reads (PBES2 DES-EDE3-CBC HMAC-SHA-384)", func(t *testing.T) {
		h := newHandPFX(t, pfxPassword)
		_, err := FromPFX(nestedBomb(h, pbes2DES3SHA384, 2048), pfxPassword)
		assertRefused(t, err, bombIterations, pfxPassword)
	})
}

func TestCheckWorkFactorsBoundsItsOwnWork(t *testing.T) {
	p := newPKI(t)
	m := aliceOf(p)
	t.Run("more encrypted safes than go-pkcs12 reads", func(t *testing.T) {
		h := newHandPFX(t, pfxPassword)
		safe := h.encryptedSafe(pbes2AES256SHA256, 2048, h.certs(m.ca)...)
		der := h.build(2048, safe, safe, h.encryptedSafe(pbes2AES256SHA256, 2048, append(h.certs(m.leaf), h.shroudedKey(pbes2AES256SHA256, 2048, m.key))...))
		err := CheckWorkFactors(der, pfxPassword)
		assertReason(t, err, ReasonInvalidPfx, pfxPassword)
		if !strings.Contains(err.Error(), "3 encrypted safes") {
			t.Errorf("message %q does not count the safes", err)
		}
	})
	t.Run("safe bags nested too deep", func(t *testing.T) {
		h := newHandPFX(t, pfxPassword)
		bag := h.shroudedKey(pbes2AES256SHA256, 2048, m.key)
		for range maxBagNesting + 1 {
			bag = h.nested(bag)
		}
		err := CheckWorkFactors(h.build(2048, h.plainSafe(append(h.certs(m.leaf), bag)...)), pfxPassword)
		assertReason(t, err, ReasonInvalidPfx, pfxPassword)
		if !strings.Contains(err.Error(), "nests safe bags") {
			t.Errorf("message %q does not say what is wrong", err)
		}
	})
	t.Run("the limit itself, inside an encrypted safe", func(t *testing.T) {
		h := newHandPFX(t, pfxPassword)
		// maxKDFIterations on the key is accepted; one more is not. Neither is derived here.
		der := func(iterations int) []byte {
			return h.build(2048, h.encryptedSafe(pbes2AES256SHA256, 2048, append(h.certs(m.leaf), h.shroudedKey(pbes2AES256SHA256, iterations+maxKDFIterations, m.key))...))
		}
		if err := CheckWorkFactors(der(0), pfxPassword); err != nil {
			t.Fatal(err)
		}
		assertRefused(t, CheckWorkFactors(der(1), pfxPassword), maxKDFIterations+1, pfxPassword)
	})
}

// openssl's own files, in every layout it writes, pass the check, and the check sees inside their
// encrypted safes: it decrypts them to the certificates openssl put there.
func TestCheckWorkFactorsReadsOpenSSLSafes(t *testing.T) {
	p := newPKI(t)
	leaf := p.goCert(p.aliceCert)
	for _, tc := range []struct {
		name     string
		flags    []string
		password string
	}{
		{"OpenSSL 3 default (PBES2 AES-256-CBC, HMAC-SHA-256)", nil, pfxPassword},
		{"-keypbe AES-256-CBC -certpbe AES-256-CBC", []string{"-keypbe", "AES-256-CBC", "-certpbe", "AES-256-CBC"}, pfxPassword},
		{"-certpbe AES-128-CBC", []string{"-certpbe", "AES-128-CBC"}, pfxPassword},
		{"-certpbe AES-192-CBC", []string{"-certpbe", "AES-192-CBC"}, pfxPassword},
		{"-certpbe DES-EDE3-CBC (PBES2)", []string{"-certpbe", "DES-EDE3-CBC"}, pfxPassword},
		{"-legacy (RC2-40 certificates, 3DES key)", []string{"-legacy"}, pfxPassword},
		{"-certpbe PBE-SHA1-RC2-128", []string{"-legacy", "-certpbe", "PBE-SHA1-RC2-128"}, pfxPassword},
		{"-certpbe PBE-SHA1-3DES -keypbe PBE-SHA1-3DES", []string{"-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES"}, pfxPassword},
		{"empty password", nil, ""},
		{"empty password, -legacy", []string{"-legacy"}, ""},
		{"the limit itself", []string{"-iter", fmt.Sprint(maxKDFIterations)}, pfxPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"pkcs12", "-export", "-inkey", p.aliceKey, "-in", p.aliceCert, "-certfile", p.caCert,
				"-out", "o.pfx", "-passout", "pass:" + tc.password}, tc.flags...)
			if _, err := p.try(args...); err != nil {
				if strings.Contains(err.Error(), "legacy") || strings.Contains(err.Error(), "unsupported") {
					t.Skipf("this OpenSSL cannot export it: %v", err)
				}
				t.Fatal(err)
			}
			der := p.read("o.pfx")
			if err := CheckWorkFactors(der, tc.password); err != nil {
				t.Fatalf("CheckWorkFactors: %v", err)
			}
			if !encryptedSafesHold(t, der, tc.password, leaf) {
				t.Fatal("the check did not decrypt the encrypted safe to alice's certificate")
			}
		})
	}
}

// encryptedSafesHold decrypts the file's encrypted safes as the check does and reports whether one holds
// cert in a certBag.
func encryptedSafesHold(t *testing.T, der []byte, password string, cert *x509.Certificate) bool {
	t.Helper()
	var pfx pfxOutline
	if _, err := asn1.Unmarshal(der, &pfx); err != nil {
		t.Fatal(err)
	}
	for _, content := range authenticatedSafe(pfx) {
		var data encryptedDataOutline
		if !content.ContentType.Equal(oidEncryptedData) {
			continue
		}
		if _, err := asn1.Unmarshal(content.Content.Bytes, &data); err != nil {
			t.Fatal(err)
		}
		plaintexts, err := decryptSafe(data.Info, password)
		if err != nil {
			t.Fatal(err)
		}
		for _, plaintext := range plaintexts {
			var bags []safeBagOutline
			if _, err := asn1.Unmarshal(plaintext, &bags); err != nil {
				continue
			}
			for _, bag := range bags {
				var certBag struct {
					ID   asn1.ObjectIdentifier
					Data []byte `asn1:"tag:0,explicit"`
				}
				if bag.ID.Equal(oidCertBag) {
					if _, err := asn1.Unmarshal(bag.Value.Bytes, &certBag); err == nil && bytes.Equal(certBag.Data, cert.Raw) {
						return true
					}
				}
			}
		}
	}
	return false
}

// go-pkcs12's encoders, which write one encrypted safe and a plain key safe, pass too.
func TestCheckWorkFactorsAcceptsGoPKCS12Files(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSigned(t, key)
	for name, encoder := range map[string]*pkcs12.Encoder{"Modern2023": pkcs12.Modern2023, "Modern2026": pkcs12.Modern2026,
		"LegacyDES": pkcs12.LegacyDES, "LegacyRC2": pkcs12.LegacyRC2} {
		t.Run(name, func(t *testing.T) {
			der, err := encoder.Encode(key, cert, nil, pfxPassword)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckWorkFactors(der, pfxPassword); err != nil {
				t.Fatal(err)
			}
			if !encryptedSafesHold(t, der, pfxPassword, cert) {
				t.Fatal("the check did not decrypt the encrypted safe to the certificate")
			}
		})
	}
}

// goBomb is a nested bomb made in Go alone (no openssl), for the benchmark and the fuzz seeds.
func goBomb(tb testing.TB, safe scheme, keyIterations int) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	h := newHandPFX(tb, pfxPassword)
	return h.build(2048, h.encryptedSafe(safe, 2048, append(h.certs(selfSigned(tb, key)), h.shroudedKey(pbes2AES256SHA256, keyIterations, key))...))
}

// BenchmarkRefuseBomb measures how long a nested bomb takes to be refused: mostly the decryption of the
// safe it hides in (2048 iterations), which the check must do to see the key.
func BenchmarkRefuseBomb(b *testing.B) {
	for _, safe := range []scheme{pbes2AES256SHA256, pkcs12TripleDES, pkcs12RC2With40} {
		b.Run(safe.name, func(b *testing.B) {
			bomb := goBomb(b, safe, bombIterations)
			for b.Loop() {
				if _, err := FromPFX(bomb, pfxPassword); err == nil {
					b.Fatal("the bomb was not refused")
				}
			}
		})
	}
}

// FuzzCheckWorkFactors feeds mutated PFX files, nested bombs among the seeds, to the check and then, when
// it lets a file through, to go-pkcs12: a bomb the check misses makes go-pkcs12 hang, which the fuzzer
// reports. Errors must be well formed.
func FuzzCheckWorkFactors(f *testing.F) {
	for _, safe := range []scheme{pbes2AES256SHA256, pkcs12TripleDES, pkcs12RC2With40} {
		f.Add(goBomb(f, safe, bombIterations), pfxPassword)
		f.Add(goBomb(f, safe, 2048), pfxPassword)
	}
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x03}, "")
	f.Fuzz(func(t *testing.T, data []byte, password string) {
		err := CheckWorkFactors(data, password)
		if err != nil {
			assertWellFormed(t, err)
			if reason, _ := ReasonOf(err); reason != ReasonInvalidPfx {
				t.Fatalf("reason %s, want %s", reason, ReasonInvalidPfx)
			}
			return
		}
		_, _, _, _ = pkcs12.DecodeChain(data, password)
	})
}
