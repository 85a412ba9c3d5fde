package graph

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log"
)

const (
	// maxRetryAfter is the longest wait the operator takes from a Retry-After (or x-ms-retry-after-ms,
	// or an HTTP-date): longer asks are capped to it. Why: the wait is slept by the call, handed to the
	// controller as the requeue delay, and put on the app's shared Throttle, which holds back every
	// connection of that tenant and app; whoever answers (a host a namespace owner controls, or Graph
	// misbehaving) must not stop them all for days with "Retry-After: 864000". Graph's real waits
	// are seconds to a few minutes; after 10 minutes a call is simply tried again and, if still
	// throttled, told to wait anew.
	maxRetryAfter = 10 * time.Minute
	// defaultThrottleWait is used for a 429 without any retry header, as Microsoft's import tool does.
	defaultThrottleWait = 60 * time.Second
	backoffBase         = time.Second
	backoffCeiling      = 16 * time.Second
)

// retryAfterHeader reads the wait the server asked for: x-ms-retry-after-ms / retry-after-ms
// (milliseconds, the precise form), then Retry-After as seconds or an HTTP-date.
func retryAfterHeader(h http.Header, now time.Time) (time.Duration, bool) {
	for _, name := range []string{"x-ms-retry-after-ms", "retry-after-ms"} {
		if v := strings.TrimSpace(h.Get(name)); v != "" {
			if ms, err := strconv.ParseFloat(v, 64); err == nil && ms >= 0 {
				return floatDuration(ms, time.Millisecond), true
			}
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return floatDuration(s, time.Second), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// floatDuration is v units, saturating at the longest Duration: converting a float beyond int64 to
// a Duration is implementation-defined (a negative wait on amd64 for "Retry-After: 1e30" or "Inf").
func floatDuration(v float64, unit time.Duration) time.Duration {
	if d := v * float64(unit); d < float64(math.MaxInt64) {
		return time.Duration(d)
	}
	return math.MaxInt64
}

// capRetryAfter caps a wait the server asked for at maxRetryAfter, and says so in the log: the
// operator then acts against what the server asked, which an operator of the operator should see.
func capRetryAfter(ctx context.Context, op string, status int, d time.Duration) time.Duration {
	if d <= maxRetryAfter {
		return d
	}
	log.FromContext(ctx).Info("Graph asked to wait longer than the operator ever waits; waiting at most the cap",
		"operation", op, "status", status, "asked", d.String(), "waitAtMost", maxRetryAfter.String())
	return maxRetryAfter
}

// backoff is exponential backoff with full jitter: uniform in [0, min(ceiling, base*2^attempt)).
// The jitter keeps many reconcilers that failed together from retrying together.
func backoff(attempt int) time.Duration {
	limit := backoffCeiling
	if attempt < 5 { // base<<attempt would pass the ceiling after 4 doublings anyway
		limit = min(backoffCeiling, backoffBase<<attempt)
	}
	return rand.N(limit)
}
