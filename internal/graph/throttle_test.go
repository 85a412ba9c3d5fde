package graph

import (
	"context"
	"testing"
	"time"
)

// Intune throttles per tenant and app: once one call was told to wait, the app's other calls must not be
// sent inside that Retry-After either.
func TestA429HoldsBackEveryClientSharingTheThrottle(t *testing.T) {
	ts := newTestServer(t, scripted(status(429, "Retry-After", "5")))
	shared := &Throttle{}
	a, _, sleptA := newTestClient(t, ts, func(o *Options) { o.Throttle = shared })
	b, _, sleptB := newTestClient(t, ts, func(o *Options) { o.Throttle = shared })
	impatient, _, _ := newTestClient(t, ts, func(o *Options) { o.Throttle = shared; o.MaxRetryWait = time.Second })
	ctx := context.Background()

	if _, err := a.ResolveUserID(ctx, "alice@contoso.com"); err != nil {
		t.Fatal(err)
	}
	if got := sleptA.recorded(); len(got) != 1 || got[0] != 5*time.Second {
		t.Fatalf("the throttled call waited %v, want exactly its Retry-After once", got)
	}
	seen := len(ts.seen())

	// The sleeps are recorded, not slept, so the 5 s window is still open for the other clients.
	if _, err := b.ResolveUserID(ctx, "bob@contoso.com"); err != nil {
		t.Fatal(err)
	}
	if got := sleptB.recorded(); len(got) != 1 || got[0] <= 4*time.Second || got[0] > 5*time.Second {
		t.Fatalf("a client sharing the throttle waited %v before sending, want the rest of the 5 s", got)
	}
	if n := len(ts.seen()); n != seen+1 {
		t.Fatalf("server saw %d more requests, want 1", n-seen)
	}

	_, err := impatient.ResolveUserID(ctx, "carol@contoso.com")
	if !IsThrottled(err) {
		t.Fatalf("a client that may not wait that long got %v, want a throttled error", err)
	}
	if d, ok := RetryAfter(err); !ok || d <= 4*time.Second {
		t.Errorf("RetryAfter = %v, %v; want the rest of the window", d, ok)
	}
	if n := len(ts.seen()); n != seen+1 {
		t.Errorf("the impatient client sent a request inside the window")
	}
}
