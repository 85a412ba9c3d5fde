package graph

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"
)

func TestRetryAfterHeaderReadsEveryForm(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
		wantOK bool
	}{
		{"seconds", map[string]string{"Retry-After": "7"}, 7 * time.Second, true},
		{"fractional seconds", map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond, true},
		{"http date", map[string]string{"Retry-After": "Wed, 01 May 2024 12:00:30 GMT"}, 30 * time.Second, true},
		{"http date in the past waits nothing", map[string]string{"Retry-After": "Wed, 01 May 2024 11:00:00 GMT"}, 0, true},
		{"x-ms-retry-after-ms", map[string]string{"x-ms-retry-after-ms": "1500"}, 1500 * time.Millisecond, true},
		{"retry-after-ms", map[string]string{"retry-after-ms": "250"}, 250 * time.Millisecond, true},
		{"milliseconds win over seconds", map[string]string{"x-ms-retry-after-ms": "100", "Retry-After": "9"}, 100 * time.Millisecond, true},
		{"garbage ms falls back to seconds", map[string]string{"x-ms-retry-after-ms": "soon", "Retry-After": "2"}, 2 * time.Second, true},
		{"garbage", map[string]string{"Retry-After": "later"}, 0, false},
		{"negative", map[string]string{"Retry-After": "-3"}, 0, false},
		{"absent", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			got, ok := retryAfterHeader(h, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("retryAfterHeader(%v) = %v, %v; want %v, %v", tt.header, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestBackoffStaysWithinTheJitterWindow(t *testing.T) {
	for attempt := range 10 {
		limit := min(backoffCeiling, backoffBase<<min(attempt, 5))
		for range 200 {
			if d := backoff(attempt); d < 0 || d >= limit {
				t.Fatalf("backoff(%d) = %v, want in [0, %v)", attempt, d, limit)
			}
		}
	}
}

// scripted answers the n-th request (1-based) with steps[n-1], then 200 {"id":"u1"}.
func scripted(steps ...func(w http.ResponseWriter)) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, _ *http.Request, n int) {
		if n <= len(steps) {
			steps[n-1](w)
			return
		}
		writeJSON(w, http.StatusOK, `{"id":"u1"}`)
	}
}

func status(code int, header ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		graphError(w, code, "Err"+http.StatusText(code), "try later")
	}
}

func TestThrottledCallsWaitWhatTheServerAsks(t *testing.T) {
	tests := []struct {
		name         string
		steps        []func(http.ResponseWriter)
		maxRetryWait time.Duration
		wantWaits    []time.Duration
	}{
		{"Retry-After seconds", []func(http.ResponseWriter){status(429, "Retry-After", "3")}, 0, []time.Duration{3 * time.Second}},
		{"x-ms-retry-after-ms", []func(http.ResponseWriter){status(429, "x-ms-retry-after-ms", "1500")}, 0, []time.Duration{1500 * time.Millisecond}},
		{"429 without header waits 60 s", []func(http.ResponseWriter){status(429)}, 2 * time.Minute, []time.Duration{time.Minute}},
		{"503 with Retry-After", []func(http.ResponseWriter){status(503, "Retry-After", "2")}, 0, []time.Duration{2 * time.Second}},
		{"504 then 429", []func(http.ResponseWriter){status(504, "Retry-After", "1"), status(429, "Retry-After", "4")}, 0, []time.Duration{time.Second, 4 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, scripted(tt.steps...))
			c, _, sl := newTestClient(t, ts, func(o *Options) { o.MaxRetryWait = tt.maxRetryWait })
			id, err := c.ResolveUserID(context.Background(), "alice@contoso.com")
			if err != nil || id != "u1" {
				t.Fatalf("ResolveUserID = %q, %v; want u1", id, err)
			}
			if got := sl.recorded(); !slices.Equal(got, tt.wantWaits) {
				t.Errorf("waits = %v, want %v", got, tt.wantWaits)
			}
			if n := len(ts.seen()); n != len(tt.steps)+1 {
				t.Errorf("server saw %d requests, want %d", n, len(tt.steps)+1)
			}
		})
	}
}

func TestTransientErrorsBackOffWithJitter(t *testing.T) {
	ts := newTestServer(t, scripted(status(500), status(502), status(503)))
	c, _, sl := newTestClient(t, ts, nil)
	if _, err := c.ResolveUserID(context.Background(), "a@b.c"); err != nil {
		t.Fatal(err)
	}
	waits := sl.recorded()
	if len(waits) != 3 {
		t.Fatalf("waits = %v, want 3", waits)
	}
	for i, w := range waits {
		if limit := backoffBase << i; w < 0 || w >= limit {
			t.Errorf("wait %d = %v, want in [0, %v)", i, w, limit)
		}
	}
}

func TestWaitLongerThanMaxRetryWaitIsHandedToTheCaller(t *testing.T) {
	tests := []struct {
		name   string
		step   func(http.ResponseWriter)
		want   time.Duration
		status int
	}{
		{"Retry-After above the bound", status(429, "Retry-After", "120"), 120 * time.Second, 429},
		{"429 without header (60 s default above 30 s bound)", status(429), time.Minute, 429},
		{"503 HTTP-date far ahead", status(503, "Retry-After", time.Now().Add(10*time.Minute).UTC().Format(http.TimeFormat)), 10 * time.Minute, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, scripted(tt.step))
			c, _, sl := newTestClient(t, ts, nil)
			_, err := c.ResolveUserID(context.Background(), "a@b.c")
			var gerr *Error
			if !errors.As(err, &gerr) || gerr.StatusCode != tt.status {
				t.Fatalf("err = %v, want *Error %d", err, tt.status)
			}
			d, ok := RetryAfter(err)
			// HTTP-date has one-second resolution and time passes while the test runs.
			if !ok || d > tt.want || d < tt.want-2*time.Second {
				t.Errorf("RetryAfter = %v, %v; want about %v", d, ok, tt.want)
			}
			if !IsRetryable(err) {
				t.Errorf("IsRetryable(%v) = false", err)
			}
			if w := sl.recorded(); len(w) != 0 {
				t.Errorf("slept %v; a wait above MaxRetryWait must not be slept", w)
			}
			if n := len(ts.seen()); n != 1 {
				t.Errorf("server saw %d requests, want 1", n)
			}
		})
	}
}

func TestWaitsAddUpAgainstMaxRetryWait(t *testing.T) {
	ts := newTestServer(t, scripted(status(429, "Retry-After", "20"), status(429, "Retry-After", "20")))
	c, _, sl := newTestClient(t, ts, nil) // 30 s bound: 20 fits, 20+20 does not
	_, err := c.ResolveUserID(context.Background(), "a@b.c")
	if d, ok := RetryAfter(err); !ok || d != 20*time.Second || !IsThrottled(err) {
		t.Fatalf("err = %v (RetryAfter %v), want throttled with RetryAfter 20s", err, d)
	}
	if got := sl.recorded(); !slices.Equal(got, []time.Duration{20 * time.Second}) {
		t.Errorf("waits = %v, want [20s]", got)
	}
}

func TestMaxRetriesBoundsAttempts(t *testing.T) {
	ts := newTestServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) { status(503, "Retry-After", "1")(w) })
	c, _, sl := newTestClient(t, ts, func(o *Options) { o.MaxRetries = 2 })
	_, err := c.ResolveUserID(context.Background(), "a@b.c")
	if d, ok := RetryAfter(err); !ok || d != time.Second {
		t.Errorf("RetryAfter(%v) = %v, %v; want 1s", err, d, ok)
	}
	if n := len(ts.seen()); n != 3 {
		t.Errorf("server saw %d requests, want 3 (1 + MaxRetries)", n)
	}
	if n := len(sl.recorded()); n != 2 {
		t.Errorf("slept %d times, want 2", n)
	}
}

func TestPostIsRetriedOnlyWhenTheServerDidNotAct(t *testing.T) {
	tests := []struct {
		status       int
		wantRequests int
	}{
		{429, 2}, {503, 2}, // the service did not act: safe to send again
		{500, 1}, {502, 1}, {504, 1}, // it may have acted (a gateway that gave up waiting does not know)
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			ts := newTestServer(t, func(w http.ResponseWriter, _ *http.Request, n int) {
				if n == 1 {
					status(tt.status, "Retry-After", "1")(w)
					return
				}
				writeJSON(w, http.StatusCreated, `{"id":"new"}`)
			})
			c, _, _ := newTestClient(t, ts, nil)
			_, err := c.CreatePfxRecryptionRequest(context.Background(), &PfxRecryptionRequest{Thumbprint: "ab"})
			if n := len(ts.seen()); n != tt.wantRequests {
				t.Errorf("server saw %d requests, want %d (err %v)", n, tt.wantRequests, err)
			}
			if (tt.wantRequests == 2) != (err == nil) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

// dropConnection closes the connection without answering, after the request was read.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

func TestConnectionDropAfterPostIsNotRetried(t *testing.T) {
	ts := newTestServer(t, scripted(dropConnection))
	c, _, sl := newTestClient(t, ts, nil)
	_, err := c.CreateUserPFXCertificate(context.Background(), &UserPFXCertificate{UserPrincipalName: "a@b.c"})
	if err == nil {
		t.Fatal("want an error after the connection dropped")
	}
	if !IsRetryable(err) {
		t.Errorf("IsRetryable(%v) = false; a network error is retryable by the caller (after listing)", err)
	}
	if n := len(ts.seen()); n != 1 {
		t.Errorf("server saw %d requests, want exactly 1: a POST may have been applied", n)
	}
	if w := sl.recorded(); len(w) != 0 {
		t.Errorf("slept %v, want no retry", w)
	}
}

func TestConnectionDropIsRetriedForIdempotentMethods(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodPatch, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			ts := newTestServer(t, func(w http.ResponseWriter, _ *http.Request, n int) {
				if n == 1 {
					dropConnection(w)
					return
				}
				if method == http.MethodDelete {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				writeJSON(w, http.StatusOK, `{"id":"x"}`)
			})
			c, _, sl := newTestClient(t, ts, nil)
			var err error
			switch method {
			case http.MethodGet:
				_, err = c.GetUserPFXCertificate(context.Background(), "x")
			case http.MethodPatch:
				_, err = c.UpdateUserPFXCertificate(context.Background(), "x", &UserPFXCertificate{KeyName: "k"})
			case http.MethodDelete:
				err = c.DeleteUserPFXCertificate(context.Background(), "x")
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(sl.recorded()) != 1 {
				t.Errorf("waits = %v, want one backoff", sl.recorded())
			}
		})
	}
}

func TestNonRetryableAnswersReturnAtOnce(t *testing.T) {
	for _, code := range []int{400, 401, 403, 404, 409} {
		ts := newTestServer(t, scripted(status(code)))
		c, _, sl := newTestClient(t, ts, nil)
		_, err := c.GetUserPFXCertificate(context.Background(), "x")
		if IsRetryable(err) || len(ts.seen()) != 1 || len(sl.recorded()) != 0 {
			t.Errorf("%d: err %v, %d requests, waits %v; want one request, not retryable", code, err, len(ts.seen()), sl.recorded())
		}
		if IsNotFound(err) != (code == 404) || IsConflict(err) != (code == 409) || IsThrottled(err) {
			t.Errorf("%d: classification wrong for %v", code, err)
		}
	}
}

func TestEveryRequestCarriesFreshIDsTokenAndUserAgent(t *testing.T) {
	ts := newTestServer(t, scripted(status(503, "Retry-After", "0")))
	c, cred, _ := newTestClient(t, ts, func(o *Options) { o.UserAgent = "ua-test/1" })
	if _, err := c.GetUserPFXCertificate(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	reqs := ts.seen()
	if len(reqs) != 2 {
		t.Fatalf("server saw %d requests, want 2", len(reqs))
	}
	ids := map[string]bool{}
	for _, r := range reqs {
		id := r.Header.Get("client-request-id")
		if _, err := uuid.Parse(id); err != nil {
			t.Errorf("client-request-id %q is not a UUID", id)
		}
		ids[id] = true
		if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
			t.Errorf("Authorization = %q", got)
		}
		if got := r.Header.Get("User-Agent"); got != "ua-test/1" {
			t.Errorf("User-Agent = %q", got)
		}
	}
	if len(ids) != 2 {
		t.Errorf("client-request-ids %v are not fresh per request", ids)
	}
	if n := cred.calls.Load(); n != 2 {
		t.Errorf("GetToken called %d times, want once per request", n)
	}
	if !slices.Equal(cred.scopes, []string{"https://graph.microsoft.com/.default", "https://graph.microsoft.com/.default"}) {
		t.Errorf("scopes = %v", cred.scopes)
	}
}

func TestDefaultUserAgentNamesTheOperator(t *testing.T) {
	ts := newTestServer(t, scripted())
	c, _, _ := newTestClient(t, ts, nil)
	if _, err := c.ResolveUserID(context.Background(), "a@b.c"); err != nil {
		t.Fatal(err)
	}
	if ua := ts.seen()[0].Header.Get("User-Agent"); !strings.HasPrefix(ua, "intune-cert-operator/") {
		t.Errorf("User-Agent = %q", ua)
	}
}

func TestWritesWaitOnTheWriteLimiterAndReadsDoNot(t *testing.T) {
	ts := newTestServer(t, scripted())
	// A limiter with no budget at all makes Wait fail at once: a write must not reach the server.
	c, _, _ := newTestClient(t, ts, func(o *Options) { o.WriteLimiter = rate.NewLimiter(0, 0) })
	if _, err := c.GetUserPFXCertificate(context.Background(), "x"); err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := c.DeleteUserPFXCertificate(context.Background(), "x"); err == nil || !strings.Contains(err.Error(), "write budget") {
		t.Fatalf("write err = %v, want a write budget error", err)
	}
	if _, err := c.CreateUserPFXCertificate(context.Background(), &UserPFXCertificate{}); err == nil {
		t.Fatal("create passed an empty write budget")
	}
	if n := len(ts.seen()); n != 1 {
		t.Errorf("server saw %d requests, want only the read", n)
	}
}

func TestNewWriteLimiter(t *testing.T) {
	l := NewWriteLimiter(95)
	if l.Limit() != rate.Limit(95.0/20) || l.Burst() != 1 {
		t.Errorf("limit %v burst %d, want 4.75/s burst 1", l.Limit(), l.Burst())
	}
	if NewWriteLimiter(0) != nil {
		t.Error("NewWriteLimiter(0) should mean no limit (nil)")
	}
	// Token-bucket arithmetic, no clock: a closed 20 s window starting full holds n+1 writes.
	start := time.Unix(0, 0)
	l = NewWriteLimiter(10)
	allowed := 0
	for i := range 1001 { // 0 .. 20 s inclusive, every 20 ms
		if l.AllowN(start.Add(time.Duration(i)*20*time.Millisecond), 1) {
			allowed++
		}
	}
	if allowed != 11 {
		t.Errorf("allowed %d writes in 20 s, want 11 (n+1)", allowed)
	}
}

func TestMetricsCountAttemptsThrottlingAndRetries(t *testing.T) {
	const op = "users.get"
	before := map[string]float64{
		"429":       testutil.ToFloat64(requestsTotal.WithLabelValues(op, "429")),
		"200":       testutil.ToFloat64(requestsTotal.WithLabelValues(op, "200")),
		"throttled": testutil.ToFloat64(throttledTotal.WithLabelValues(op)),
		"retries":   testutil.ToFloat64(retriesTotal.WithLabelValues(op)),
	}
	ts := newTestServer(t, scripted(status(429, "Retry-After", "1")))
	c, _, _ := newTestClient(t, ts, nil)
	if _, err := c.ResolveUserID(context.Background(), "metrics@contoso.com"); err != nil {
		t.Fatal(err)
	}
	after := map[string]float64{
		"429":       testutil.ToFloat64(requestsTotal.WithLabelValues(op, "429")),
		"200":       testutil.ToFloat64(requestsTotal.WithLabelValues(op, "200")),
		"throttled": testutil.ToFloat64(throttledTotal.WithLabelValues(op)),
		"retries":   testutil.ToFloat64(retriesTotal.WithLabelValues(op)),
	}
	for k := range before {
		if after[k]-before[k] != 1 {
			t.Errorf("%s grew by %v, want 1", k, after[k]-before[k])
		}
	}
}

func TestNewRejectsUnsafeOptions(t *testing.T) {
	cred := &fakeCredential{}
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"http root", Options{GraphRoot: "http://graph.example", Scope: "s", Credential: cred}, "https"},
		{"no scope", Options{GraphRoot: "https://graph.example", Credential: cred}, "Scope"},
		{"no credential", Options{GraphRoot: "https://graph.example", Scope: "s"}, "Credential"},
	}
	for _, tt := range tests {
		if _, err := New(tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want mention of %q", tt.name, err, tt.want)
		}
	}
}
