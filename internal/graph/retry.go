package graph

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
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
				return time.Duration(ms * float64(time.Millisecond)), true
			}
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
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
