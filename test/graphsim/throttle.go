package graphsim

import "time"

// Intune's published limits (INTUNE-FACTS): per 20 s, writes 200 per tenant and 100 per app in a
// tenant; all requests 2000 per tenant and 1000 per app.
const (
	defaultWindow         = 20 * time.Second
	defaultTenantWrites   = 200
	defaultAppWrites      = 100
	defaultTenantRequests = 2000
	defaultAppRequests    = 1000
)

// limiter holds token buckets: capacity N, refilled continuously at N per Window.
type limiter struct {
	limits  Limits
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(l Limits) *limiter {
	orDefault := func(v, d int) int {
		if v <= 0 {
			return d
		}
		return v
	}
	if l.Window <= 0 {
		l.Window = defaultWindow
	}
	l.TenantWrites = orDefault(l.TenantWrites, defaultTenantWrites)
	l.AppWrites = orDefault(l.AppWrites, defaultAppWrites)
	l.TenantRequests = orDefault(l.TenantRequests, defaultTenantRequests)
	l.AppRequests = orDefault(l.AppRequests, defaultAppRequests)
	return &limiter{limits: l, buckets: map[string]*bucket{}}
}

// take spends one token from every bucket the request counts against, or none of them; when a
// bucket is empty it returns how long until all of them hold a token again.
func (l *limiter) take(now time.Time, tenantID, clientID string, write bool) (time.Duration, bool) {
	if l.limits.Disabled {
		return 0, true
	}
	type use struct {
		key      string
		capacity int
	}
	uses := []use{
		{"tenant-requests/" + tenantID, l.limits.TenantRequests},
		{"app-requests/" + tenantID + "/" + clientID, l.limits.AppRequests},
	}
	if write {
		uses = append(uses,
			use{"tenant-writes/" + tenantID, l.limits.TenantWrites},
			use{"app-writes/" + tenantID + "/" + clientID, l.limits.AppWrites})
	}
	var wait time.Duration
	empty := false
	for _, u := range uses {
		b := l.refill(u.key, u.capacity, now)
		if b.tokens < 1 {
			empty = true
			perToken := float64(l.limits.Window) / float64(u.capacity)
			wait = max(wait, time.Duration((1-b.tokens)*perToken))
		}
	}
	if empty {
		return wait, false
	}
	for _, u := range uses {
		l.buckets[u.key].tokens--
	}
	return 0, true
}

func (l *limiter) refill(key string, capacity int, now time.Time) *bucket {
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: float64(capacity), last: now}
		l.buckets[key] = b
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(float64(capacity), b.tokens+float64(capacity)*float64(elapsed)/float64(l.limits.Window))
		b.last = now
	}
	return b
}
