package graphsim_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"hash"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/certops/intune-cert-operator/test/graphsim"
)

// leafPFX is a user certificate packed the way the operator packs it.
type leafPFX struct {
	pfx        []byte
	thumbprint string
	notBefore  time.Time
	notAfter   time.Time
}

func newLeafPFX(t *testing.T, password string) leafPFX {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nb := time.Now().Add(-time.Hour).Truncate(time.Second).UTC()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "Alice"},
		NotBefore: nb, NotAfter: nb.AddDate(1, 0, 0), EmailAddresses: []string{"alice@contoso.example"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pfx, err := pkcs12.Modern.Encode(key, cert, nil, password)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(der)
	return leafPFX{pfx: pfx, thumbprint: hex.EncodeToString(sum[:]), notBefore: cert.NotBefore, notAfter: cert.NotAfter}
}

func oaep(t *testing.T, h hash.Hash, pub *rsa.PublicKey, password string) string {
	t.Helper()
	ct, err := rsa.EncryptOAEP(h, rand.Reader, pub, []byte(password), nil)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(ct)
}

func (l leafPFX) body(padding, encryptedPassword string) map[string]any {
	return map[string]any{
		"thumbprint": l.thumbprint, "intendedPurpose": "smimeEncryption", "userPrincipalName": userUPN,
		"startDateTime": l.notBefore.Format(time.RFC3339), "expirationDateTime": l.notAfter.Format(time.RFC3339),
		"providerName": "Microsoft Software Key Storage Provider", "keyName": "PFXEncryptionKey",
		"paddingScheme": padding, "encryptedPfxBlob": base64.StdEncoding.EncodeToString(l.pfx),
		"encryptedPfxPassword": encryptedPassword,
	}
}

var connectorKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

func connectorServer(t *testing.T) (*graphsim.Server, string) {
	cfg := baseConfig()
	cfg.ConnectorKey = connectorKey
	s := start(t, cfg)
	return s, secretToken(t, s)
}

func TestConnectorCheckOnUserPfxCertificates(t *testing.T) {
	s, token := connectorServer(t)
	pub := &connectorKey.PublicKey
	const password = "Pfx-Passw0rd!"

	accepted := map[string]func(leafPFX) map[string]any{
		"oaepSha256": func(l leafPFX) map[string]any { return l.body("oaepSha256", oaep(t, sha256.New(), pub, password)) },
		"oaepSha384": func(l leafPFX) map[string]any { return l.body("oaepSha384", oaep(t, sha512.New384(), pub, password)) },
		"oaepSha512": func(l leafPFX) map[string]any { return l.body("oaepSha512", oaep(t, sha512.New(), pub, password)) },
		"none is the tool's OAEP-SHA512": func(l leafPFX) map[string]any {
			return l.body("none", oaep(t, sha512.New(), pub, password))
		},
		"pkcs1": func(l leafPFX) map[string]any {
			ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, []byte(password)) //nolint:staticcheck // the declared scheme
			if err != nil {
				t.Fatal(err)
			}
			return l.body("pkcs1", base64.StdEncoding.EncodeToString(ct))
		},
	}
	for name, body := range accepted {
		t.Run("accepts "+name, func(t *testing.T) {
			expectStatus(t, call(t, s, token, http.MethodPost, pfxPath, body(newLeafPFX(t, password))), http.StatusCreated)
		})
	}

	refused := []struct {
		name, reason string
		body         func(leafPFX) map[string]any
	}{
		{"wrong password", "encryptedPfxBlob", func(l leafPFX) map[string]any {
			return l.body("oaepSha256", oaep(t, sha256.New(), pub, "another-password"))
		}},
		{"wrong thumbprint", "thumbprint", func(l leafPFX) map[string]any {
			b := l.body("oaepSha256", oaep(t, sha256.New(), pub, password))
			b["thumbprint"] = strings.Repeat("ab", 20)
			return b
		}},
		{"wrong padding", "encryptedPfxPassword", func(l leafPFX) map[string]any {
			return l.body("oaepSha512", oaep(t, sha256.New(), pub, password))
		}},
		{"wrong start date", "start date", func(l leafPFX) map[string]any {
			b := l.body("oaepSha256", oaep(t, sha256.New(), pub, password))
			b["startDateTime"] = l.notBefore.Add(time.Hour).Format(time.RFC3339)
			return b
		}},
		{"wrong expiration date", "expiration date", func(l leafPFX) map[string]any {
			b := l.body("oaepSha256", oaep(t, sha256.New(), pub, password))
			b["expirationDateTime"] = l.notAfter.Add(-time.Hour).Format(time.RFC3339)
			return b
		}},
		{"another connector's key", "encryptedPfxPassword", func(l leafPFX) map[string]any {
			other, _ := rsa.GenerateKey(rand.Reader, 2048)
			return l.body("oaepSha256", oaep(t, sha256.New(), &other.PublicKey, password))
		}},
	}
	for _, tc := range refused {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			before := len(s.CheckFailures())
			r := call(t, s, token, http.MethodPost, pfxPath, tc.body(newLeafPFX(t, password)))
			if r.status != http.StatusBadRequest || r.errorCode(t) != "BadRequest" || !strings.Contains(r.errorMessage(t), tc.reason) {
				t.Fatalf("got %d %s, want 400 naming %q", r.status, r.body, tc.reason)
			}
			failures := s.CheckFailures()
			if len(failures) != before+1 || !strings.Contains(failures[before], tc.reason) {
				t.Fatalf("check failures %v", failures)
			}
		})
	}
	for _, f := range s.CheckFailures() {
		if strings.Contains(f, password) || strings.Contains(f, "another-password") {
			t.Fatalf("a check failure reveals a password: %s", f)
		}
	}
	if n := len(s.UserPFXCertificates(tenantID)); n != len(accepted) {
		t.Fatalf("%d records stored, want %d", n, len(accepted))
	}
}

func TestConnectorCheckOnPfxUserCertificatePatch(t *testing.T) {
	s, token := connectorServer(t)
	pub := &connectorKey.PublicKey
	const password = "Pfx-Passw0rd!"
	l := newLeafPFX(t, password)
	const id = "5a7c4a1e-0000-4000-8000-000000000002"
	s.PutPfxUserCertificate(tenantID, graphsim.PfxUserCertificate{
		ID: id, TenantID: tenantID, UserID: userID, Thumbprint: l.thumbprint, UserUpn: userUPN,
		EncryptedPfxBlob: base64.StdEncoding.EncodeToString(l.pfx), EncryptedPfxPassword: oaep(t, sha256.New(), pub, password),
		CertStartDate: l.notBefore, CertExpirationDate: l.notAfter, PaddingScheme: 3, // oaepSha256
	})
	path := "/beta/pfxUserCertificates/" + id

	expectStatus(t, call(t, s, token, http.MethodPatch, path, map[string]any{"status": 1}), http.StatusOK)
	// 0 ("none") means OAEP-SHA512: the SHA-256 ciphertext no longer decrypts.
	r := call(t, s, token, http.MethodPatch, path, map[string]any{"paddingScheme": 0})
	if r.status != http.StatusBadRequest || !strings.Contains(r.errorMessage(t), "encryptedPfxPassword") {
		t.Fatalf("padding 0 with an OAEP-SHA256 password: %d %s", r.status, r.body)
	}
	expectStatus(t, call(t, s, token, http.MethodPatch, path, map[string]any{
		"paddingScheme": 0, "encryptedPfxPassword": oaep(t, sha512.New(), pub, password),
	}), http.StatusOK)
	r = call(t, s, token, http.MethodPatch, path, map[string]any{"thumbprint": strings.Repeat("0", 40)})
	if r.status != http.StatusBadRequest || !strings.Contains(r.errorMessage(t), "thumbprint") {
		t.Fatalf("wrong thumbprint: %d %s", r.status, r.body)
	}
}

// TestConnectorCheckOpensWhatOpenSSLProduces builds every artifact with the openssl CLI: the
// connector key, the user's PFX (OpenSSL 3 defaults: AES-256-CBC, PBKDF2, SHA-256 MAC) and the
// OAEP-SHA256 password encryption.
func TestConnectorCheckOpensWhatOpenSSLProduces(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl CLI not available")
	}
	dir := t.TempDir()
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	const password = "0penSSL-made"
	run("", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "connector.pem")
	run("", "pkey", "-in", "connector.pem", "-pubout", "-out", "connector.pub")
	run("", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "user.key", "-out", "user.crt",
		"-days", "30", "-subj", "/CN=Alice")
	run("", "pkcs12", "-export", "-inkey", "user.key", "-in", "user.crt", "-out", "user.pfx", "-passout", "pass:"+password)
	run(password, "pkeyutl", "-encrypt", "-pubin", "-inkey", "connector.pub", "-out", "password.bin",
		"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256")

	fingerprint := run("", "x509", "-in", "user.crt", "-noout", "-fingerprint", "-sha1")
	thumbprint := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(strings.SplitN(fingerprint, "=", 2)[1]), ":", ""))
	dates := func(flag string) time.Time {
		out := strings.TrimSpace(run("", "x509", "-in", "user.crt", "-noout", flag))
		d, err := time.Parse("Jan _2 15:04:05 2006 MST", strings.SplitN(out, "=", 2)[1])
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	block, _ := pem.Decode(read("connector.pem"))
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}

	cfg := baseConfig()
	cfg.ConnectorKey = key.(*rsa.PrivateKey)
	s := start(t, cfg)
	body := leafPFX{pfx: read("user.pfx"), thumbprint: thumbprint, notBefore: dates("-startdate"), notAfter: dates("-enddate")}.
		body("oaepSha256", base64.StdEncoding.EncodeToString(read("password.bin")))
	r := call(t, s, secretToken(t, s), http.MethodPost, pfxPath, body)
	expectStatus(t, r, http.StatusCreated)
}
