package graph

import (
	"strings"
	"sync"
)

// maxCachedUsers bounds the UPN → object id cache of one Client. A user's id never changes while the user
// exists, so every import after the first for a UPN saves a GET /users/{upn} (1 of 3 requests of an
// import). 100,000 entries take about 13 MB; a tenant with more users importing at once pays one extra GET
// for the users that fell out.
const maxCachedUsers = 100_000

// UserIDCache remembers user object ids by lower-case UPN, up to max entries. When full, an arbitrary entry
// (Go's map order) makes room: no recency list, which would cost more memory per entry than the entry.
// The zero value is usable, with maxCachedUsers as its bound. Safe for concurrent use.
type UserIDCache struct {
	mu  sync.Mutex
	max int
	ids map[string]string
}

func (c *UserIDCache) get(upn string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.ids[strings.ToLower(upn)]
	return id, ok
}

func (c *UserIDCache) put(upn, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids == nil {
		c.ids = map[string]string{}
	}
	limit := c.max
	if limit <= 0 {
		limit = maxCachedUsers
	}
	key := strings.ToLower(upn)
	if _, ok := c.ids[key]; !ok && len(c.ids) >= limit {
		for victim := range c.ids {
			delete(c.ids, victim)
			break
		}
	}
	c.ids[key] = id
}

func (c *UserIDCache) forget(upn string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.ids, strings.ToLower(upn))
}

func (c *UserIDCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ids)
}
