package pfx

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The openssl CLI is the independent tool these tests check the package against: it makes the keys,
// certificates and PFX files, and it reports the facts FactsOf must agree with.

// openSSL runs the openssl CLI in one temporary directory; files are named relative to it.
type openSSL struct {
	t   testing.TB
	bin string
	dir string
}

func newOpenSSL(t testing.TB) *openSSL {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("the openssl CLI is not installed; these tests need it as the independent reference")
	}
	return &openSSL{t: t, bin: bin, dir: t.TempDir()}
}

// path returns the absolute path of a file in the working directory.
func (o *openSSL) path(name string) string { return filepath.Join(o.dir, name) }

// try runs openssl and returns its stdout, or an error carrying its stderr.
func (o *openSSL) try(args ...string) ([]byte, error) {
	cmd := exec.Command(o.bin, args...)
	cmd.Dir = o.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("openssl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// run runs openssl and fails the test if it fails.
func (o *openSSL) run(args ...string) []byte {
	o.t.Helper()
	out, err := o.try(args...)
	if err != nil {
		o.t.Fatal(err)
	}
	return out
}

func (o *openSSL) read(name string) []byte {
	o.t.Helper()
	data, err := os.ReadFile(o.path(name))
	if err != nil {
		o.t.Fatal(err)
	}
	return data
}

func (o *openSSL) write(name string, data []byte) string {
	o.t.Helper()
	if err := os.WriteFile(o.path(name), data, 0o600); err != nil {
		o.t.Fatal(err)
	}
	return o.path(name)
}

// rsaKey writes a PKCS#8 PEM RSA key and returns its file name.
func (o *openSSL) rsaKey(name string, bits int) string {
	o.t.Helper()
	o.run("genpkey", "-algorithm", "RSA", "-pkeyopt", fmt.Sprintf("rsa_keygen_bits:%d", bits), "-out", name)
	return name
}

// ecKey writes a PKCS#8 PEM EC key on curve (P-256, P-384, P-521) and returns its file name.
func (o *openSSL) ecKey(name, curve string) string {
	o.t.Helper()
	o.run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:"+curve, "-out", name)
	return name
}

// certOptions describe a certificate for cert. Empty extension values leave the extension out.
type certOptions struct {
	subject  string // e.g. "/CN=Alice/O=Contoso"
	san      string // subjectAltName value
	eku      string // extendedKeyUsage value
	keyUsage string // keyUsage value
	ca       bool
	// notBefore and notAfter default to an hour ago and 30 days ahead.
	notBefore, notAfter time.Time
	serial              string // hex; random when empty
	// issuerKey and issuerCert sign the certificate; empty means self-signed.
	issuerKey, issuerCert string
}

// cert issues a PEM certificate for key with `openssl ca` (the one openssl 3.0 command that takes
// arbitrary validity dates) and returns its file name.
func (o *openSSL) cert(name, key string, opts certOptions) string {
	o.t.Helper()
	// Each certificate gets its own CA database so that calls stay independent.
	work := name + ".ca"
	if err := os.Mkdir(o.path(work), 0o700); err != nil {
		o.t.Fatal(err)
	}
	serial := opts.serial
	if serial == "" {
		random := make([]byte, 16)
		_, _ = rand.Read(random)
		random[0] &= 0x7f
		serial = hex.EncodeToString(random)
	}
	o.write(filepath.Join(work, "index.txt"), nil)
	o.write(filepath.Join(work, "serial"), []byte(serial+"\n"))
	var ext strings.Builder
	ext.WriteString("[ext]\n")
	if opts.ca {
		ext.WriteString("basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n")
	} else {
		ext.WriteString("basicConstraints = CA:FALSE\n")
	}
	for _, e := range [][2]string{{"subjectAltName", opts.san}, {"extendedKeyUsage", opts.eku}, {"keyUsage", opts.keyUsage}} {
		if e[1] != "" {
			fmt.Fprintf(&ext, "%s = %s\n", e[0], e[1])
		}
	}
	config := fmt.Sprintf(`[ca]
default_ca = ca_default
[ca_default]
dir = %[1]s
database = %[1]s/index.txt
new_certs_dir = %[1]s
serial = %[1]s/serial
default_md = sha256
policy = policy_any
unique_subject = no
preserve = yes
email_in_dn = no
[policy_any]
commonName = optional
organizationName = optional
organizationalUnitName = optional
countryName = optional
`, o.path(work)) + ext.String()
	configFile := o.write(filepath.Join(work, "ca.cnf"), []byte(config))

	notBefore, notAfter := opts.notBefore, opts.notAfter
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-time.Hour)
	}
	if notAfter.IsZero() {
		notAfter = time.Now().Add(30 * 24 * time.Hour)
	}
	csr := filepath.Join(work, "req.csr")
	o.run("req", "-new", "-key", key, "-subj", opts.subject, "-out", csr)
	args := []string{"ca", "-batch", "-notext", "-config", configFile, "-extfile", configFile, "-extensions", "ext",
		"-in", csr, "-out", name,
		"-startdate", notBefore.UTC().Format("20060102150405Z"), "-enddate", notAfter.UTC().Format("20060102150405Z")}
	if opts.issuerKey == "" {
		args = append(args, "-selfsign", "-keyfile", key)
	} else {
		args = append(args, "-keyfile", opts.issuerKey, "-cert", opts.issuerCert)
	}
	o.run(args...)
	return name
}

// pfx exports key and cert with `openssl pkcs12 -export` plus extra options and returns the file bytes.
func (o *openSSL) pfx(name, key, cert, password string, extra ...string) []byte {
	o.t.Helper()
	o.run(append([]string{"pkcs12", "-export", "-inkey", key, "-in", cert, "-out", name, "-passout", "pass:" + password}, extra...)...)
	return o.read(name)
}

// certFacts are what openssl reports about a certificate file.
type certFacts struct {
	thumbprint          string // lowercase hex, no colons
	serial              string // uppercase hex magnitude, as openssl prints it
	notBefore, notAfter time.Time
}

// facts asks openssl about a PEM or DER certificate file.
func (o *openSSL) facts(cert string) certFacts {
	o.t.Helper()
	out := string(o.run("x509", "-in", cert, "-noout", "-fingerprint", "-sha1", "-serial", "-startdate", "-enddate"))
	fields := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			o.t.Fatalf("unexpected openssl x509 output line %q", line)
		}
		fields[strings.ToLower(key)] = value
	}
	return certFacts{
		thumbprint: strings.ToLower(strings.ReplaceAll(fields["sha1 fingerprint"], ":", "")),
		serial:     fields["serial"],
		notBefore:  o.parseDate(fields["notbefore"]),
		notAfter:   o.parseDate(fields["notafter"]),
	}
}

// parseDate reads openssl's "Jan  2 15:04:05 2006 GMT".
func (o *openSSL) parseDate(value string) time.Time {
	o.t.Helper()
	when, err := time.Parse("Jan _2 15:04:05 2006", strings.TrimSuffix(value, " GMT"))
	if err != nil {
		o.t.Fatalf("parse openssl date %q: %v", value, err)
	}
	return when
}

// windowsSerial turns openssl's serial (the integer's magnitude) into the Windows form: the DER content
// bytes, which carry a leading 00 when the first byte has its high bit set.
func windowsSerial(opensslSerial string) string {
	if opensslSerial != "" && strings.ContainsRune("89ABCDEF", rune(opensslSerial[0])) {
		return "00" + opensslSerial
	}
	return opensslSerial
}

// assertReason fails unless err is an *Error with the wanted reason whose chain mentions none of the
// secrets.
func assertReason(t *testing.T, err error, want Reason, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want reason %s", want)
	}
	got, ok := ReasonOf(err)
	if !ok {
		t.Fatalf("error %q (%T) is not an *Error", err, err)
	}
	if got != want {
		t.Fatalf("reason = %s, want %s (message: %s)", got, want, err)
	}
	if err.Error() == "" {
		t.Fatal("error message is empty")
	}
	assertNoSecret(t, err, secrets...)
}

// assertNoSecret fails if any error in err's chain mentions one of the secrets.
func assertNoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		for _, secret := range secrets {
			if secret != "" && strings.Contains(e.Error(), secret) {
				t.Fatalf("error %q leaks a secret", e)
			}
		}
	}
}

// pki is a small set of openssl-made keys and certificates shared by a test.
type pki struct {
	*openSSL
	caKey, caCert       string // RSA 2048 root
	aliceKey, aliceCert string // RSA 2048 issued by the root: UPN and email SANs, serial with the high bit set
	bobKey, bobCert     string // EC P-256 issued by the root: email SAN only
	carolKey, carolCert string // EC P-384 self-signed, no SAN
}

// What the pki certificates were made with; tests compare FactsOf against these inputs.
const (
	aliceUPN    = "alice@contoso.com"
	aliceSerial = "8F00A1B2C3D4E5F60718"
	bobEmail    = "bob@contoso.com"
)

var (
	aliceEKU       = []string{"clientAuth", "emailProtection", "msSmartcardLogin", "1.2.3.4.5"}
	aliceKeyUsages = []string{"digitalSignature", "keyEncipherment"}
	bobEKU         = []string{"emailProtection"}
	bobKeyUsages   = []string{"digitalSignature", "nonRepudiation"}
	carolEKU       = []string{"serverAuth"}
)

func newPKI(t testing.TB) *pki {
	t.Helper()
	o := newOpenSSL(t)
	p := &pki{openSSL: o}
	p.caKey = o.rsaKey("ca.key", 2048)
	p.caCert = o.cert("ca.pem", p.caKey, certOptions{subject: "/CN=Contoso Issuing CA/O=Contoso", ca: true})
	p.aliceKey = o.rsaKey("alice.key", 2048)
	p.aliceCert = o.cert("alice.pem", p.aliceKey, certOptions{
		subject:   "/CN=Alice Smith/O=Contoso",
		san:       "otherName:1.3.6.1.4.1.311.20.2.3;UTF8:" + aliceUPN + ",email:alice.smith@contoso.com",
		eku:       "clientAuth,emailProtection,1.3.6.1.4.1.311.20.2.2,1.2.3.4.5",
		keyUsage:  "critical,digitalSignature,keyEncipherment",
		serial:    aliceSerial,
		issuerKey: p.caKey, issuerCert: p.caCert,
	})
	p.bobKey = o.ecKey("bob.key", "P-256")
	p.bobCert = o.cert("bob.pem", p.bobKey, certOptions{
		subject: "/CN=Bob Jones/O=Contoso", san: "email:" + bobEmail,
		eku: "emailProtection", keyUsage: "digitalSignature,nonRepudiation",
		issuerKey: p.caKey, issuerCert: p.caCert,
	})
	p.carolKey = o.ecKey("carol.key", "P-384")
	p.carolCert = o.cert("carol.pem", p.carolKey, certOptions{subject: "/CN=carol.contoso.com", eku: "serverAuth"})
	return p
}

// names asks openssl for a certificate's subject and issuer in RFC 2253 form.
func (o *openSSL) names(cert string) (subject, issuer string) {
	o.t.Helper()
	out := string(o.run("x509", "-in", cert, "-noout", "-subject", "-issuer", "-nameopt", "RFC2253"))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		o.t.Fatalf("unexpected openssl output %q", out)
	}
	return strings.TrimPrefix(lines[0], "subject="), strings.TrimPrefix(lines[1], "issuer=")
}

// goKey parses a PKCS#8 PEM key file openssl wrote, for building PFX files with go-pkcs12.
func (o *openSSL) goKey(name string) crypto.PrivateKey {
	o.t.Helper()
	block, _ := pem.Decode(o.read(name))
	if block == nil {
		o.t.Fatalf("%s holds no PEM", name)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		o.t.Fatalf("parse %s: %v", name, err)
	}
	return key
}

// goCert parses a PEM certificate file openssl wrote.
func (o *openSSL) goCert(name string) *x509.Certificate {
	o.t.Helper()
	block, _ := pem.Decode(o.read(name))
	if block == nil {
		o.t.Fatalf("%s holds no PEM", name)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		o.t.Fatalf("parse %s: %v", name, err)
	}
	return cert
}
