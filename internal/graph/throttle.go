package graph

import (
	"sync"
	"time"
)

// Throttle is the wait Graph asked of one application in one tenant. Intune throttles per tenant and app,
// so a 429 to one call means every call of that app should hold back until its Retry-After has passed,
// not only the call that was told: share one Throttle between every Client of a tenant and app.
type Throttle struct {
	mu    sync.Mutex
	until time.Time
}

// holdUntil makes calls wait until at least until, but never past maxRetryAfter from now: the
// client caps the waits it is asked for already, and this keeps the gate that holds back every
// connection of the app bounded on its own, whoever calls it.
func (t *Throttle) holdUntil(until time.Time) {
	if limit := time.Now().Add(maxRetryAfter); until.After(limit) {
		until = limit
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if until.After(t.until) {
		t.until = until
	}
}

// heldUntil is when calls may be sent again (zero or past: now).
func (t *Throttle) heldUntil() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.until
}
