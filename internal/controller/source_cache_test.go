package controller

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/pfx"
	"github.com/certops/intune-cert-operator/internal/testutil"
)

// countingReader is a sourceReader with a cache of its own whose openings are counted.
type countingReader struct {
	*sourceReader
	pfxOpens, tlsOpens atomic.Int32
}

func newCountingReader() *countingReader {
	r := &countingReader{}
	r.sourceReader = &sourceReader{
		cache: newSourceCache(maxCachedSources, maxCachedSourceBytes, maxCachedSourceEntry),
		fromPFX: func(data []byte, password string) (*pfx.Material, error) {
			r.pfxOpens.Add(1)
			return pfx.FromPFX(data, password)
		},
		fromTLS: func(certPEM, keyPEM []byte, encoding pfx.Encoding) (*pfx.Material, error) {
			r.tlsOpens.Add(1)
			return pfx.FromTLS(certPEM, keyPEM, encoding)
		},
	}
	return r
}

const (
	cacheTestNS       = "source-cache"
	cacheTestPassword = "Cache-Test-1"
)

func newSecretClient(t *testing.T, secrets ...*corev1.Secret) client.Client {
	t.Helper()
	b := fake.NewClientBuilder().WithScheme(testutil.Scheme())
	for _, s := range secrets {
		b = b.WithObjects(s)
	}
	return b.Build()
}

func newCacheTestUser(t *testing.T, upn string, notAfter time.Time) *testutil.UserCertificate {
	t.Helper()
	u, err := testutil.NewUserCertificate(upn, time.Now().Add(-time.Hour), notAfter)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func pfxOf(t *testing.T, u *testutil.UserCertificate, password string) []byte {
	t.Helper()
	data, err := u.PFX(password)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func secret(name string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cacheTestNS}, Data: data}
}

// update changes a Secret through the client, which gives it a new resourceVersion.
func update(t *testing.T, c client.Client, name string, change func(*corev1.Secret)) {
	t.Helper()
	s := &corev1.Secret{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: cacheTestNS, Name: name}, s); err != nil {
		t.Fatal(err)
	}
	before := s.ResourceVersion
	change(s)
	if err := c.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if s.ResourceVersion == before {
		t.Fatal("the update kept the resourceVersion")
	}
}

func pfxSource(name, passwordSecret string) intunev1alpha1.CertificateSource {
	src := intunev1alpha1.CertificateSource{Pfx: &intunev1alpha1.PfxSecretSource{
		SecretRef: intunev1alpha1.SecretKeyReference{Name: name}}}
	if passwordSecret != "" {
		src.Pfx.PasswordSecretRef = &intunev1alpha1.OptionalSecretKeyReference{Name: passwordSecret}
	}
	return src
}

func assertOpens(t *testing.T, what string, got *atomic.Int32, want int32) {
	t.Helper()
	if n := got.Load(); n != want {
		t.Fatalf("%s: opened %d times, want %d", what, n, want)
	}
}

// assertSameMaterial checks that a remembered material is what opening gave.
func assertSameMaterial(t *testing.T, got, want *material) {
	t.Helper()
	switch {
	case got.digest != want.digest:
		t.Error("digest differs")
	case !bytes.Equal(got.PFX, want.PFX):
		t.Error("PFX differs")
	case got.Password != want.Password:
		t.Error("password differs")
	case !got.Leaf.Equal(want.Leaf) || len(got.Chain) != len(want.Chain):
		t.Error("certificates differ")
	case !reflect.DeepEqual(got.Facts, want.Facts):
		t.Errorf("facts = %+v, want %+v", got.Facts, want.Facts)
	}
}

func TestSourceCacheRemembersPFXOutcomes(t *testing.T) {
	ctx, now := context.Background(), time.Now()
	alice := newCacheTestUser(t, "alice@contoso.com", now.Add(24*time.Hour))
	c := newSecretClient(t,
		secret("alice", map[string][]byte{"pfx": pfxOf(t, alice, cacheTestPassword)}),
		secret("alice-password", map[string][]byte{"password": []byte(cacheTestPassword)}))
	r := newCountingReader()
	src := pfxSource("alice", "alice-password")

	first, err := r.read(ctx, c, cacheTestNS, src, now)
	if err != nil {
		t.Fatal(err)
	}
	second, err := r.read(ctx, c, cacheTestNS, src, now)
	if err != nil {
		t.Fatal(err)
	}
	assertOpens(t, "an unchanged Secret", &r.pfxOpens, 1)
	assertSameMaterial(t, second, first)

	// A new label gives the Secret a new resourceVersion but not new content: nothing to open again.
	update(t, c, "alice", func(s *corev1.Secret) { s.Labels = map[string]string{"team": "pki"} })
	if _, err := r.read(ctx, c, cacheTestNS, src, now); err != nil {
		t.Fatal(err)
	}
	assertOpens(t, "a relabelled Secret", &r.pfxOpens, 1)

	// A new certificate is opened, and remembered in turn.
	bob := newCacheTestUser(t, "bob@contoso.com", now.Add(24*time.Hour))
	update(t, c, "alice", func(s *corev1.Secret) { s.Data["pfx"] = pfxOf(t, bob, cacheTestPassword) })
	for range 2 {
		m, err := r.read(ctx, c, cacheTestNS, src, now)
		if err != nil {
			t.Fatal(err)
		}
		if m.Facts.Thumbprint != bob.Thumbprint() {
			t.Fatal("the new certificate was not read")
		}
	}
	assertOpens(t, "a Secret with a new PFX", &r.pfxOpens, 2)

	// A new password is content too; the wrong one's failure is remembered like a success.
	update(t, c, "alice-password", func(s *corev1.Secret) { s.Data["password"] = []byte("Wrong-Guess-42") })
	for range 3 {
		_, err := r.read(ctx, c, cacheTestNS, src, now)
		if reason, _ := pfx.ReasonOf(err); reason != pfx.ReasonWrongPassword {
			t.Fatalf("err = %v, want reason %s", err, pfx.ReasonWrongPassword)
		}
	}
	assertOpens(t, "a wrong password", &r.pfxOpens, 3)
}

// bombPFX is a PFX whose every iteration count is 8,388,607, over pfx's limit of a million: encoded with
// 65536 (INTEGER 02 03 01 00 00), then rewritten in place.
func bombPFX(t *testing.T, u *testutil.UserCertificate) []byte {
	t.Helper()
	der, err := pkcs12.Modern.WithIterations(65536).Encode(u.Key, u.Cert, nil, cacheTestPassword)
	if err != nil {
		t.Fatal(err)
	}
	bomb := bytes.ReplaceAll(der, []byte{0x02, 0x03, 0x01, 0x00, 0x00}, []byte{0x02, 0x03, 0x7f, 0xff, 0xff})
	if bytes.Equal(bomb, der) {
		t.Fatal("no iteration count rewritten")
	}
	return bomb
}

func TestSourceCacheRemembersRefusals(t *testing.T) {
	ctx, now := context.Background(), time.Now()
	alice := newCacheTestUser(t, "alice@contoso.com", now.Add(24*time.Hour))
	c := newSecretClient(t, secret("bomb", map[string][]byte{"pfx": bombPFX(t, alice), "password": []byte(cacheTestPassword)}))
	r := newCountingReader()
	for range 3 {
		_, err := r.read(ctx, c, cacheTestNS, pfxSource("bomb", ""), now)
		if reason, _ := pfx.ReasonOf(err); reason != pfx.ReasonInvalidPfx || !strings.Contains(err.Error(), "8388607 key-derivation iterations") {
			t.Fatalf("err = %v, want the iteration limit", err)
		}
	}
	assertOpens(t, "a refused PFX", &r.pfxOpens, 1)
}

// A Secret holding base64 text: the remembered material carries the decoded PFX, as opening gives it.
func TestSourceCacheBase64PFX(t *testing.T) {
	ctx, now := context.Background(), time.Now()
	alice := newCacheTestUser(t, "alice@contoso.com", now.Add(24*time.Hour))
	der := pfxOf(t, alice, cacheTestPassword)
	c := newSecretClient(t, secret("b64", map[string][]byte{
		"pfx": []byte(base64.StdEncoding.EncodeToString(der)), "password": []byte(cacheTestPassword)}))
	r := newCountingReader()
	first, err := r.read(ctx, c, cacheTestNS, pfxSource("b64", ""), now)
	if err != nil {
		t.Fatal(err)
	}
	second, err := r.read(ctx, c, cacheTestNS, pfxSource("b64", ""), now)
	if err != nil {
		t.Fatal(err)
	}
	assertOpens(t, "base64 text", &r.pfxOpens, 1)
	assertSameMaterial(t, second, first)
	if !bytes.Equal(second.PFX, der) {
		t.Error("the remembered PFX is not the decoded DER")
	}
}

// Validity is judged against the time of each read, so a remembered certificate still expires.
func TestSourceCacheJudgesValidityOnEveryRead(t *testing.T) {
	ctx, now := context.Background(), time.Now()
	alice := newCacheTestUser(t, "alice@contoso.com", now.Add(time.Hour))
	c := newSecretClient(t, secret("alice", map[string][]byte{"pfx": pfxOf(t, alice, cacheTestPassword), "password": []byte(cacheTestPassword)}))
	r := newCountingReader()
	for _, tc := range []struct {
		at   time.Time
		want pfx.Reason
	}{{now, ""}, {now.Add(2 * time.Hour), pfx.ReasonCertificateExpired}, {now, ""}, {now.Add(-2 * time.Hour), pfx.ReasonCertificateNotYetValid}} {
		_, err := r.read(ctx, c, cacheTestNS, pfxSource("alice", ""), tc.at)
		if reason, _ := pfx.ReasonOf(err); reason != tc.want {
			t.Fatalf("at %s: err = %v, want reason %q", tc.at, err, tc.want)
		}
	}
	assertOpens(t, "reads at different times", &r.pfxOpens, 1)
}

func TestSourceCacheRemembersTLSOutcomes(t *testing.T) {
	ctx, now := context.Background(), time.Now()
	alice := newCacheTestUser(t, "alice@contoso.com", now.Add(24*time.Hour))
	c := newSecretClient(t, secret("alice-tls", map[string][]byte{corev1.TLSCertKey: alice.CertPEM(), corev1.TLSPrivateKeyKey: alice.KeyPEM()}))
	r := newCountingReader()
	src := intunev1alpha1.CertificateSource{TLS: &intunev1alpha1.TLSSecretSource{SecretRef: intunev1alpha1.LocalSecretReference{Name: "alice-tls"}}}
	first, err := r.read(ctx, c, cacheTestNS, src, now)
	if err != nil {
		t.Fatal(err)
	}
	second, err := r.read(ctx, c, cacheTestNS, src, now)
	if err != nil {
		t.Fatal(err)
	}
	assertOpens(t, "an unchanged tls Secret", &r.tlsOpens, 1)
	assertSameMaterial(t, second, first) // the built PFX and its password are remembered with it
	if _, err := pfx.FromPFX(second.PFX, second.Password); err != nil {
		t.Fatalf("the remembered PFX does not open with the remembered password: %v", err)
	}

	bob := newCacheTestUser(t, "bob@contoso.com", now.Add(24*time.Hour))
	update(t, c, "alice-tls", func(s *corev1.Secret) {
		s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey] = bob.CertPEM(), alice.KeyPEM() // key mismatch
	})
	for range 2 {
		_, err := r.read(ctx, c, cacheTestNS, src, now)
		if reason, _ := pfx.ReasonOf(err); reason != pfx.ReasonKeyMismatch {
			t.Fatalf("err = %v, want reason %s", err, pfx.ReasonKeyMismatch)
		}
	}
	assertOpens(t, "a changed tls Secret", &r.tlsOpens, 2)
}

func TestSourceCacheBounds(t *testing.T) {
	failure := errors.New("some failure")
	content := func(key string) sourceContent { return sourceContent{key: key, digest: "d-" + key} }
	opens := 0
	open := func() (*pfx.Material, error) { opens++; return nil, failure }
	remembered := func(c *sourceCache, key string) bool {
		before := opens
		_, _ = c.open(content(key), open)
		return opens == before
	}

	t.Run("entries: the least recently used goes", func(t *testing.T) {
		c := newSourceCache(2, 1<<20, 1<<10)
		_, _ = c.open(content("a"), open)
		_, _ = c.open(content("b"), open)
		_ = remembered(c, "a") // a is now more recent than b
		_, _ = c.open(content("c"), open)
		if c.len() != 2 || !remembered(c, "a") || !remembered(c, "c") || remembered(c, "b") {
			t.Fatal("not the least recently used entry was evicted")
		}
	})
	t.Run("bytes", func(t *testing.T) {
		c := newSourceCache(100, 3*entryOverhead, 1<<10)
		for _, key := range []string{"a", "b", "c", "d"} {
			_, _ = c.open(content(key), open)
		}
		if c.len() != 2 || c.bytes > 3*entryOverhead {
			t.Fatalf("%d entries of %d bytes kept, want 2 within %d", c.len(), c.bytes, 3*entryOverhead)
		}
	})
	t.Run("an entry too big is not kept", func(t *testing.T) {
		c := newSourceCache(100, 1<<20, entryOverhead)
		_, _ = c.open(sourceContent{key: strings.Repeat("k", 100), digest: "d"}, open)
		if c.len() != 0 {
			t.Fatal("an oversized entry was kept")
		}
	})
	t.Run("new content replaces the entry", func(t *testing.T) {
		c := newSourceCache(100, 1<<20, 1<<10)
		_, _ = c.open(sourceContent{key: "a", digest: "1"}, open)
		before := opens
		_, _ = c.open(sourceContent{key: "a", digest: "2"}, open)
		if opens != before+1 || c.len() != 1 {
			t.Fatalf("%d opens, %d entries after a change of content", opens-before, c.len())
		}
	})
}

// A full cache of ordinary PFX sources stays small: about 1.3 KiB each (the certificate's DER, the
// digest, the bookkeeping), 1.3 MiB for maxCachedSources.
func TestSourceCacheMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("issues 256 certificates")
	}
	ctx, now := context.Background(), time.Now()
	const n = 256
	key := newCacheTestUser(t, "key@contoso.com", now.Add(time.Hour)).Key
	var secrets []*corev1.Secret
	for i := range n {
		u, err := testutil.IssueUserCertificate(key, fmt.Sprintf("user%d@contoso.com", i), now.Add(-time.Hour), now.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, secret(fmt.Sprintf("user%d", i), map[string][]byte{"pfx": pfxOf(t, u, cacheTestPassword), "password": []byte(cacheTestPassword)}))
	}
	c := newSecretClient(t, secrets...)
	r := newCountingReader()
	for i := range n {
		if _, err := r.read(ctx, c, cacheTestNS, pfxSource(fmt.Sprintf("user%d", i), ""), now); err != nil {
			t.Fatal(err)
		}
	}
	// The heap with and without the cache; the client and everything read are garbage in both.
	withCache := heapInUse()
	charged := r.cache.bytes / n
	r.cache = nil
	perEntry := (withCache - heapInUse()) / n
	t.Logf("%d bytes of heap per cached source (charged %d)", perEntry, charged)
	if perEntry > 4096 {
		t.Errorf("a cached source takes %d bytes of heap, want at most 4 KiB", perEntry)
	}
}

func heapInUse() int {
	runtime.GC()
	runtime.GC()
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	return int(stats.HeapAlloc)
}
