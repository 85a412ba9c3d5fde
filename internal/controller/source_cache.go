package controller

import (
	"bytes"
	"container/list"
	"crypto/x509"
	"strings"
	"sync"

	"github.com/certops/intune-cert-operator/internal/pfx"
)

// Bounds of the source cache. Entries hold certificates as DER (about 1 KiB each; a parsed one takes three
// times that) and the PFX only when it is not the Secret's own bytes (base64 text, or built from a tls
// Secret): a PFX source takes about 1.3 KiB (TestSourceCacheMemory), a tls one about 3.8 KiB. So the byte
// bound holds 1024 PFX sources or some 550 tls ones, and keeps huge chains from taking more.
const (
	maxCachedSources     = 1024
	maxCachedSourceBytes = 2 << 20
	// maxCachedSourceEntry keeps one source from filling the cache; a bigger one is opened every time.
	maxCachedSourceEntry = 64 << 10
	// entryOverhead is a rough charge for an entry's bookkeeping (list element, map slot, headers).
	entryOverhead = 256
)

// sourceCache remembers what opening a certificate source gave, so that a storm of wake-ups (a connection
// turning Ready wakes every resource using it; a failing resource is retried) does not open the same PFX
// again. Opening derives keys, with iteration counts the namespace owner chooses (pfx.CheckWorkFactors
// bounds them, but a million is still a second), so failures are remembered too: a refused bomb or a wrong
// password must not cost a derivation per wake-up either.
//
// Entries are keyed by the source (namespace, Secrets, keys) and hold a digest of its content; a hit needs
// the digest of what the Secrets hold now to match, and a miss replaces the entry. Content rather than the
// Secrets' UIDs and resourceVersions decides, because the outcome of opening depends on nothing else, the
// digest is computed on every read anyway (it goes into the status hash), and a Secret's resourceVersion
// also changes with its labels and annotations, which must not cost a derivation. Validity dates are not
// part of an outcome: the caller judges them against the current time on every read. (The digest is 128
// bits of SHA-256: two contents with the same one take 2^64 work to find, and would only mix up the
// finder's own source.)
//
// What an entry keeps of secrets: a pfx source's entry none of its own (certificates, and for base64 text
// the decoded PFX, still encrypted; the password is read from the Secret on every read). A tls source's
// entry keeps the PFX built from the Secret and its random password, as long as it stays cached, which is
// the operator holding the private key it has read anyway.
//
// Least recently used entries go first when either bound is reached. A sourceCache is safe for
// concurrent use; two workers missing on the same source at once both open it, which is merely wasteful.
type sourceCache struct {
	maxEntries, maxBytes, maxEntry int

	mu    sync.Mutex
	bytes int
	lru   *list.List // of *cachedSource, most recently used first
	byKey map[string]*list.Element
}

// cachedSource is one remembered outcome: an error, or the certificates (leaf first) and, when the PFX is
// not the source's own bytes, the PFX and the password that opens it.
type cachedSource struct {
	key, digest string
	err         error
	certs       [][]byte
	pfx         []byte
	password    string
	size        int
}

// sourceContent identifies what is being opened.
type sourceContent struct {
	key    string // which source: kind, namespace, Secrets and keys
	digest string // what the source holds now
	// own and ownPassword are a pfx source's PFX bytes and password, which a remembered outcome reuses
	// rather than keeping a copy; a tls source has none (its PFX and password are built, so remembered).
	own         []byte
	ownPassword string
}

func newSourceCache(maxEntries, maxBytes, maxEntry int) *sourceCache {
	return &sourceCache{maxEntries: maxEntries, maxBytes: maxBytes, maxEntry: maxEntry,
		lru: list.New(), byKey: map[string]*list.Element{}}
}

// sourceKey joins the parts that name a source. NUL cannot occur in Kubernetes names or Secret keys.
func sourceKey(parts ...string) string { return strings.Join(parts, "\x00") }

// open returns what opening content gives: the remembered outcome if the same content was opened before,
// else what open returns, which is then remembered.
func (c *sourceCache) open(content sourceContent, open func() (*pfx.Material, error)) (*pfx.Material, error) {
	if entry := c.get(content); entry != nil {
		if remembered, ok := entry.outcome(content); ok {
			return remembered.material, remembered.err
		}
	}
	m, err := open()
	c.put(content, m, err)
	return m, err
}

func (c *sourceCache) get(content sourceContent) *cachedSource {
	c.mu.Lock()
	defer c.mu.Unlock()
	element, ok := c.byKey[content.key]
	if !ok {
		return nil
	}
	entry := element.Value.(*cachedSource)
	if entry.digest != content.digest {
		return nil // the Secret changed: put replaces the entry
	}
	c.lru.MoveToFront(element)
	return entry
}

func (c *sourceCache) put(content sourceContent, m *pfx.Material, err error) {
	if err == nil && (m == nil || m.Leaf == nil) {
		return // not an outcome FromPFX or FromTLS gives
	}
	entry := newCachedSource(content, m, err)
	if entry.size > c.maxEntry || entry.size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.byKey[content.key]; ok {
		c.remove(old)
	}
	c.byKey[content.key] = c.lru.PushFront(entry)
	c.bytes += entry.size
	for c.lru.Len() > c.maxEntries || c.bytes > c.maxBytes {
		c.remove(c.lru.Back())
	}
}

func (c *sourceCache) remove(element *list.Element) {
	entry := c.lru.Remove(element).(*cachedSource)
	delete(c.byKey, entry.key)
	c.bytes -= entry.size
}

// len reports how many sources the cache holds, for tests.
func (c *sourceCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// newCachedSource keeps of an outcome only what rebuilding it needs. Entries never change once made, so
// they are read outside the lock.
func newCachedSource(content sourceContent, m *pfx.Material, err error) *cachedSource {
	entry := &cachedSource{key: content.key, digest: content.digest, err: err}
	if err == nil {
		for _, cert := range append([]*x509.Certificate{m.Leaf}, m.Chain...) {
			entry.certs = append(entry.certs, bytes.Clone(cert.Raw))
		}
		if content.own == nil || !bytes.Equal(m.PFX, content.own) {
			entry.pfx = bytes.Clone(m.PFX)
		}
		if content.own == nil {
			entry.password = m.Password
		}
	}
	entry.size = entryOverhead + len(entry.key) + len(entry.digest) + len(entry.pfx) + len(entry.password)
	for _, der := range entry.certs {
		entry.size += len(der)
	}
	if err != nil {
		entry.size += len(err.Error())
	}
	return entry
}

// outcome is what opening a source gave: a Material or an error.
type outcome struct {
	material *pfx.Material
	err      error
}

// outcome rebuilds what opening gave: the error, or a Material as opening gave it, its certificates parsed
// again (microseconds, no key derivation). ok is false if they no longer parse, which cannot happen.
func (e *cachedSource) outcome(content sourceContent) (outcome, bool) {
	if e.err != nil {
		return outcome{err: e.err}, true
	}
	certs := make([]*x509.Certificate, 0, len(e.certs))
	for _, der := range e.certs {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return outcome{}, false
		}
		certs = append(certs, cert)
	}
	// The PFX is copied, as FromPFX copies its input: the caller's buffer, or the cache's, stays its own.
	m := &pfx.Material{PFX: bytes.Clone(e.pfx), Password: e.password, Leaf: certs[0], Chain: certs[1:], Facts: pfx.FactsOf(certs[0])}
	if content.own != nil {
		m.Password = content.ownPassword
		if m.PFX == nil {
			m.PFX = bytes.Clone(content.own)
		}
	}
	return outcome{material: m}, true
}
