package graph

// Tests of the bounds the operator puts on whoever answers: no redirects, capped Retry-After,
// capped bodies and listings, and write budgets that compose per connection.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"golang.org/x/time/rate"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

func TestNoRedirectsCopiesTheClient(t *testing.T) {
	orig := &http.Client{Transport: &http.Transport{}, Timeout: 7 * time.Second}
	got := NoRedirects(orig)
	if got == orig || orig.CheckRedirect != nil {
		t.Fatal("NoRedirects changed the caller's client")
	}
	if got.Transport != orig.Transport || got.Timeout != orig.Timeout || got.CheckRedirect == nil {
		t.Errorf("copy = %+v; want the same transport and timeout, and a CheckRedirect", got)
	}
	def := NoRedirects(nil)
	if def == nil || def.CheckRedirect == nil {
		t.Fatalf("NoRedirects(nil) = %+v", def)
	}
	if tr, ok := def.Transport.(*http.Transport); !ok || tr.MaxIdleConnsPerHost != defaultHTTPClient().Transport.(*http.Transport).MaxIdleConnsPerHost {
		t.Errorf("NoRedirects(nil) transport = %T, want the default client's", def.Transport)
	}
	if def == NoRedirects(nil) {
		t.Error("NoRedirects(nil) must return a fresh client each time")
	}
}

// trustBoth is a client that trusts both TLS test servers, so that a followed redirect would
// reach the second one: otherwise the test could pass only because the TLS handshake failed.
func trustBoth(a, b *testServer) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(a.Certificate())
	pool.AddCert(b.Certificate())
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func TestRedirectsAreRefused(t *testing.T) {
	const blobMarker = "PFX-BLOB-MARKER"
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(fmt.Sprintf("%d %s", code, method), func(t *testing.T) {
				other := newTestServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) { writeJSON(w, 200, `{"id":"x"}`) })
				target := other.URL + "/beta/deviceManagement/userPfxCertificates/x?secret-query=leak"
				ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
					http.Redirect(w, r, target, code)
				})
				hc := trustBoth(ts, other)

				// Control: with Go's default policy the redirect is followed and reaches the second server.
				ctl, err := hc.Post(ts.URL+"/control", "application/json", strings.NewReader(`{"control":true}`))
				if err != nil {
					t.Fatalf("control request: %v", err)
				}
				ctl.Body.Close()
				if len(other.seen()) != 1 {
					t.Fatalf("control: the second server saw %d requests, want 1 (the test would prove nothing)", len(other.seen()))
				}
				before := len(ts.seen())

				var logs bytes.Buffer
				ctx := log.IntoContext(context.Background(),
					funcr.New(func(p, a string) { logs.WriteString(p + a + "\n") }, funcr.Options{Verbosity: 1}))
				c, _, sl := newTestClient(t, ts, func(o *Options) { o.HTTPClient = hc })
				var op string
				if method == http.MethodGet {
					op = "userPfxCertificates.get"
					_, err = c.GetUserPFXCertificate(ctx, "x")
				} else {
					op = "userPfxCertificates.create"
					_, err = c.CreateUserPFXCertificate(ctx, &UserPFXCertificate{UserPrincipalName: "a@b.c", EncryptedPfxBlob: []byte(blobMarker)})
				}
				if err == nil {
					t.Fatal("a redirected call succeeded")
				}
				host := strings.TrimPrefix(other.URL, "https://")
				want := fmt.Sprintf("graph: %s: Graph answered %d redirecting to %s; redirects are refused", op, code, host)
				if err.Error() != want {
					t.Errorf("err = %q\nwant  %q", err, want)
				}
				if strings.Contains(err.Error(), "secret-query") || strings.Contains(logs.String(), "secret-query") {
					t.Errorf("the Location's query string leaked: err %q logs %q", err, logs.String())
				}
				if IsRetryable(err) {
					t.Errorf("IsRetryable(%v) = true; a redirect would only repeat", err)
				}
				if n := len(other.seen()); n != 1 {
					t.Errorf("the second server got %d requests from the client (token %q, body %q)", n-1,
						other.seen()[n-1].Header.Get("Authorization"), other.seen()[n-1].Body)
				}
				if n := len(ts.seen()) - before; n != 1 || len(sl.recorded()) != 0 {
					t.Errorf("the first server saw %d requests, waits %v; want one request, no retry", n, sl.recorded())
				}
			})
		}
	}
}

// Even to the same host: net/http would keep the Authorization header there.
func TestRedirectToTheSameHostIsRefused(t *testing.T) {
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.URL.Path == "/elsewhere" {
			writeJSON(w, 200, `{"id":"x"}`)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	c, _, _ := newTestClient(t, ts, nil)
	_, err := c.GetUserPFXCertificate(context.Background(), "x")
	if err == nil || !strings.Contains(err.Error(), "redirects are refused") {
		t.Fatalf("err = %v, want a refused redirect", err)
	}
	if n := len(ts.seen()); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
}

func TestRetryAfterHeaderSaturates(t *testing.T) {
	for _, v := range []string{"1e30", "Inf", "9223372036854775807"} {
		h := http.Header{}
		h.Set("Retry-After", v)
		if d, ok := retryAfterHeader(h, time.Now()); !ok || d < maxRetryAfter {
			t.Errorf("Retry-After %s = %v, %v; want a huge positive wait", v, d, ok)
		}
		h = http.Header{}
		h.Set("x-ms-retry-after-ms", v)
		if d, ok := retryAfterHeader(h, time.Now()); !ok || d < maxRetryAfter {
			t.Errorf("x-ms-retry-after-ms %s = %v, %v; want a huge positive wait", v, d, ok)
		}
	}
}

// captureInfo returns a context whose logger keeps Info (V(0)) lines only.
func captureInfo() (context.Context, func() []string) {
	var mu sync.Mutex
	var lines []string
	logger := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, prefix+args)
	}, funcr.Options{Verbosity: 0})
	return log.IntoContext(context.Background(), logger), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(lines)
	}
}

func TestLongRetryAfterIsCappedForTheCallAndTheSharedThrottle(t *testing.T) {
	tests := []struct {
		name   string
		step   func(http.ResponseWriter)
		status int
	}{
		{"429 Retry-After 10 days", status(429, "Retry-After", "864000"), 429},
		{"429 Retry-After HTTP-date 30 days ahead", status(429, "Retry-After", time.Now().Add(30*24*time.Hour).UTC().Format(http.TimeFormat)), 429},
		{"429 x-ms-retry-after-ms 10 days", status(429, "x-ms-retry-after-ms", "864000000"), 429},
		{"429 Retry-After beyond a Duration", status(429, "Retry-After", "1e30"), 429},
		{"503 Retry-After 10 days", status(503, "Retry-After", "864000"), 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, scripted(tt.step))
			shared := &Throttle{}
			c, _, sl := newTestClient(t, ts, func(o *Options) { o.Throttle = shared })
			other, _, otherSlept := newTestClient(t, ts, func(o *Options) { o.Throttle = shared })
			ctx, logged := captureInfo()

			start := time.Now()
			_, err := c.ResolveUserID(ctx, "a@b.c")
			var gerr *Error
			if !errors.As(err, &gerr) || gerr.StatusCode != tt.status || !IsRetryable(err) {
				t.Fatalf("err = %v, want a retryable *Error %d", err, tt.status)
			}
			if d, ok := RetryAfter(err); !ok || d != maxRetryAfter {
				t.Errorf("RetryAfter = %v, %v; want the cap %v", d, ok, maxRetryAfter)
			}
			if w := sl.recorded(); len(w) != 0 {
				t.Errorf("slept %v", w)
			}
			lines := logged()
			if len(lines) != 1 || !strings.Contains(lines[0], `"waitAtMost"="10m0s"`) || !strings.Contains(lines[0], `"asked"=`) ||
				!strings.Contains(lines[0], "longer than the operator ever waits") {
				t.Errorf("Info log = %q; want one line saying what was asked and that the operator waits at most 10m", lines)
			}

			until := shared.heldUntil()
			if tt.status == 429 {
				if until.After(time.Now().Add(maxRetryAfter)) || until.Before(start.Add(maxRetryAfter-time.Minute)) {
					t.Errorf("the shared throttle holds until %v from now, want at most %v", time.Until(until), maxRetryAfter)
				}
				seen := len(ts.seen())
				_, err = other.ResolveUserID(ctx, "b@b.c")
				if d, ok := RetryAfter(err); !IsThrottled(err) || !ok || d > maxRetryAfter || d < maxRetryAfter-time.Minute {
					t.Errorf("a client sharing the throttle got %v (RetryAfter %v); want throttled for at most %v", err, d, maxRetryAfter)
				}
				if len(ts.seen()) != seen || len(otherSlept.recorded()) != 0 {
					t.Error("a client sharing the throttle sent or slept inside the window")
				}
			} else if !until.IsZero() {
				t.Errorf("a 503 set the shared throttle to %v", until)
			}
		})
	}
}

// A call allowed to wait that long sleeps the cap, not what was asked.
func TestLongRetryAfterSleepsAtMostTheCap(t *testing.T) {
	ts := newTestServer(t, scripted(status(429, "Retry-After", "864000")))
	c, _, sl := newTestClient(t, ts, func(o *Options) { o.MaxRetryWait = time.Hour })
	if _, err := c.ResolveUserID(context.Background(), "a@b.c"); err != nil {
		t.Fatal(err)
	}
	if got := sl.recorded(); !slices.Equal(got, []time.Duration{maxRetryAfter}) {
		t.Errorf("waits = %v, want [%v]", got, maxRetryAfter)
	}
}

func TestThrottleHoldsAtMostTheCap(t *testing.T) {
	th := &Throttle{}
	th.holdUntil(time.Now().Add(10 * 24 * time.Hour))
	if d := time.Until(th.heldUntil()); d > maxRetryAfter || d < maxRetryAfter-time.Minute {
		t.Errorf("held for %v, want at most %v", d, maxRetryAfter)
	}
	th = &Throttle{}
	th.holdUntil(time.Now().Add(5 * time.Second))
	if d := time.Until(th.heldUntil()); d > 5*time.Second || d < 4*time.Second {
		t.Errorf("held for %v, want the 5 s asked", d)
	}
}

// paddedRecord is a userPfxCertificate of exactly size bytes of JSON.
func paddedRecord(size int) string {
	const head, tail = `{"id":"x","keyName":"`, `"}`
	return head + strings.Repeat("k", size-len(head)-len(tail)) + tail
}

func TestResponseBodiesAreCappedAt4MiB(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		chunked bool // no Content-Length: the cap must hold while reading
		wantErr bool
	}{
		{"exactly 4 MiB", maxResponseBody, false, false},
		{"one byte more, announced", maxResponseBody + 1, false, true},
		{"one byte more, chunked", maxResponseBody + 1, true, true},
		{"64 MiB, chunked", 64 << 20, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := paddedRecord(tt.size)
			ts := newTestServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
				w.Header().Set("Content-Type", "application/json")
				if !tt.chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				}
				w.WriteHeader(200)
				for i := 0; i < len(body); i += 1 << 20 {
					if _, err := w.Write([]byte(body[i:min(i+1<<20, len(body))])); err != nil {
						return // the client hung up
					}
					http.NewResponseController(w).Flush()
				}
			})
			c, _, sl := newTestClient(t, ts, nil)
			got, err := c.GetUserPFXCertificate(context.Background(), "x")
			if !tt.wantErr {
				if err != nil || len(got.KeyName) < maxResponseBody-100 {
					t.Fatalf("err = %v; want the 4 MiB answer read", err)
				}
				return
			}
			want := "graph: userPfxCertificates.get: the answer of Graph (200) is larger than 4 MiB, the most the operator reads of one response; it was abandoned"
			if err == nil || err.Error() != want {
				t.Fatalf("err = %v\nwant  %s", err, want)
			}
			if IsRetryable(err) || len(ts.seen()) != 1 || len(sl.recorded()) != 0 {
				t.Errorf("retryable %v, %d requests, waits %v; want one request, not retried", IsRetryable(err), len(ts.seen()), sl.recorded())
			}
		})
	}
}

// pagingServer answers every request with page(n) and a nextLink to the next page while more(n).
func pagingServer(t *testing.T, page func(n int) string, more func(n int) bool) *testServer {
	t.Helper()
	var ts *testServer
	ts = newTestServer(t, func(w http.ResponseWriter, _ *http.Request, n int) {
		next := ""
		if more(n) {
			next = fmt.Sprintf(`,"@odata.nextLink":"%s/beta/deviceManagement/userPfxCertificates?$skiptoken=%d"`, ts.URL, n)
		}
		writeJSON(w, 200, `{"@odata.context":"x","value":[`+page(n)+`]`+next+`}`)
	})
	return ts
}

func TestListingIsCappedInRecords(t *testing.T) {
	half := strings.Repeat(`{},`, maxListRecords/2-1) + `{}` // maxListRecords/2 empty records
	t.Run("exactly the cap", func(t *testing.T) {
		ts := pagingServer(t, func(int) string { return half }, func(n int) bool { return n < 2 })
		c, _, _ := newTestClient(t, ts, nil)
		got, err := c.ListUserPFXCertificates(context.Background(), "", "")
		if err != nil || len(got) != maxListRecords {
			t.Fatalf("got %d records, %v; want %d", len(got), err, maxListRecords)
		}
	})
	t.Run("one more record, on a later page", func(t *testing.T) {
		ts := pagingServer(t, func(n int) string {
			if n == 3 {
				return `{"id":"one-too-many"}`
			}
			return half
		}, func(n int) bool { return n < 3 })
		c, _, _ := newTestClient(t, ts, nil)
		got, err := c.ListUserPFXCertificates(context.Background(), "", "")
		want := "graph: userPfxCertificates.list: listing abandoned: it runs to more than 200000 records, the most the operator reads of one listing"
		if err == nil || err.Error() != want || got != nil {
			t.Fatalf("got %d records, err %v\nwant  %s", len(got), err, want)
		}
		if IsRetryable(err) {
			t.Errorf("IsRetryable(%v) = true", err)
		}
	})
	t.Run("one page of tiny records is stopped while decoding", func(t *testing.T) {
		// 1.4 million "{}" fit under the 4 MiB body cap and would decode to some 400 MiB.
		tiny := strings.Repeat(`{},`, (maxResponseBody-100)/3-1) + `{}`
		ts := pagingServer(t, func(int) string { return tiny }, func(int) bool { return false })
		c, _, _ := newTestClient(t, ts, nil)
		if _, err := c.ListUserPFXCertificates(context.Background(), "", ""); err == nil || !strings.Contains(err.Error(), "more than 200000 records") {
			t.Fatalf("err = %v, want the record cap", err)
		}
	})
}

func TestListingIsCappedInBytes(t *testing.T) {
	// Pages just under the 4 MiB body cap: 24 of them fit in 96 MiB, the 25th does not.
	record := paddedRecord(maxResponseBody - 1000)
	ts := pagingServer(t, func(int) string { return record }, func(int) bool { return true })
	c, _, _ := newTestClient(t, ts, nil)
	got, err := c.ListUserPFXCertificates(context.Background(), "", "")
	want := "graph: userPfxCertificates.list: listing abandoned: it runs to more than 96 MiB of answers, the most the operator reads of one listing"
	if err == nil || err.Error() != want || got != nil {
		t.Fatalf("got %d records, err %v\nwant  %s", len(got), err, want)
	}
	if n, wantN := len(ts.seen()), maxListBytes/(maxResponseBody-1000)+1; n != wantN {
		t.Errorf("server saw %d requests, want %d", n, wantN)
	}
}

func TestListingIsCappedInPages(t *testing.T) {
	ts := pagingServer(t, func(int) string { return "" }, func(int) bool { return true })
	c, _, _ := newTestClient(t, ts, nil)
	_, err := c.ListUserPFXCertificates(context.Background(), "", "")
	want := "graph: userPfxCertificates.list: listing abandoned: it runs to more than 1000 pages, the most the operator reads of one listing"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
	if n := len(ts.seen()); n != maxPages {
		t.Errorf("server saw %d requests, want %d", n, maxPages)
	}
}

// listPage decodes a page as json.Unmarshal into struct{Value []T; NextLink string} did.
func TestListPageDecodesLikeUnmarshal(t *testing.T) {
	inputs := []string{
		`{"value":[{"id":"a"},{"id":"b"}],"@odata.nextLink":"https://x/next"}`,
		`{"@odata.context":"ctx","value":[],"extra":{"nested":[1,{"value":[{"id":"no"}]}]},"n":null}`,
		`{"Value":[{"id":"a"}],"@ODATA.NEXTLINK":"https://x/n"}`,
		`{"value":[{"id":"a"}],"value":[{"id":"b"}]}`,
		`{"value":null,"@odata.nextLink":null}`,
		`{}`,
		`null`,
		`{"value":[{"id":"a","unknown":true}]}`,
		`[]`,
		`"page"`,
		`{"value":{}}`,
		`{"value":"a"}`,
		`{"value":[{"id":1}]}`,
		`{"value":[1]}`,
		`{"@odata.nextLink":5}`,
	}
	for _, in := range inputs {
		var ref struct {
			Value    []UserPFXCertificate `json:"value"`
			NextLink string               `json:"@odata.nextLink"`
		}
		refErr := json.Unmarshal([]byte(in), &ref)
		var all []UserPFXCertificate
		var read int64
		page := listPage[UserPFXCertificate]{all: &all, read: &read}
		err := json.Unmarshal([]byte(in), &page)
		if (err != nil) != (refErr != nil) {
			t.Errorf("%s: err %v, json.Unmarshal's %v", in, err, refErr)
			continue
		}
		if err != nil {
			continue
		}
		var ids, refIDs []string
		for _, r := range all {
			ids = append(ids, r.ID)
		}
		for _, r := range ref.Value {
			refIDs = append(refIDs, r.ID)
		}
		if !slices.Equal(ids, refIDs) || page.nextLink != ref.NextLink {
			t.Errorf("%s: ids %v next %q; json.Unmarshal gives %v %q", in, ids, page.nextLink, refIDs, ref.NextLink)
		}
		if read != int64(len(in)) {
			t.Errorf("%s: counted %d bytes, want %d", in, read, len(in))
		}
	}
}

// recordingLimiter records its name in *order on every Wait, and fails if err is set.
type recordingLimiter struct {
	name  string
	order *[]string
	err   error
}

func (l *recordingLimiter) Wait(context.Context) error {
	*l.order = append(*l.order, l.name)
	return l.err
}

func TestAllLimitersWaitsOnEachInOrder(t *testing.T) {
	var order []string
	a, b, c := &recordingLimiter{"a", &order, nil}, &recordingLimiter{"b", &order, nil}, &recordingLimiter{"c", &order, nil}
	var typedNil *rate.Limiter
	if AllLimiters() != nil || AllLimiters(nil, typedNil, NewWriteLimiter(0)) != nil {
		t.Error("AllLimiters of nothing but nils should be nil")
	}
	if got := AllLimiters(nil, a, typedNil); got != a {
		t.Errorf("AllLimiters of one limiter = %v, want it", got)
	}
	all := AllLimiters(a, typedNil, nil, AllLimiters(b, c))
	if err := all.Wait(context.Background()); err != nil || !slices.Equal(order, []string{"a", "b", "c"}) {
		t.Errorf("Wait = %v, order %v; want a, b, c", err, order)
	}
	order = nil
	b.err = errors.New("no budget")
	if err := all.Wait(context.Background()); !errors.Is(err, b.err) || !slices.Equal(order, []string{"a", "b"}) {
		t.Errorf("Wait = %v, order %v; want b's error and c not waited on", err, order)
	}
}

func TestNilRateLimiterInOptionsMeansNoLimit(t *testing.T) {
	ts := newTestServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusNoContent) })
	var typedNil *rate.Limiter // what NewWriteLimiter(0) returns, inside the interface
	c, _, _ := newTestClient(t, ts, func(o *Options) { o.WriteLimiter = typedNil })
	if err := c.DeleteUserPFXCertificate(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
}

// A connection's private limiter lowers its own writes only: the shared budget is untouched, and
// not even spent while the private one refuses.
func TestPrivateLimiterLowersOnlyItsOwnConnection(t *testing.T) {
	ts := newTestServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) { w.WriteHeader(http.StatusNoContent) })
	shared := rate.NewLimiter(rate.Every(time.Hour), 1) // one write now, the next in an hour
	private := rate.NewLimiter(0, 0)                    // never
	namespaced, _, _ := newTestClient(t, ts, func(o *Options) { o.WriteLimiter = AllLimiters(private, shared) })
	cluster, _, _ := newTestClient(t, ts, func(o *Options) { o.WriteLimiter = shared })

	if err := namespaced.DeleteUserPFXCertificate(context.Background(), "x"); err == nil || !strings.Contains(err.Error(), "write budget") {
		t.Fatalf("namespaced write err = %v, want its own budget to refuse", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cluster.DeleteUserPFXCertificate(ctx, "x"); err != nil {
		t.Fatalf("the other connection's write waited or failed (%v): the shared token was spent", err)
	}
	if shared.Limit() != rate.Every(time.Hour) || shared.Burst() != 1 {
		t.Errorf("the shared limiter changed: %v burst %d", shared.Limit(), shared.Burst())
	}
	if n := len(ts.seen()); n != 1 {
		t.Errorf("server saw %d writes, want 1", n)
	}
}

// The URL of a refused redirect's wrapper holds the Location; make sure the unwrapped error is
// what is classified, whatever the wrapper.
func TestRefusedRedirectIsNotTransient(t *testing.T) {
	err := &url.Error{Op: "Get", URL: "https://x/?q=1", Err: &redirectError{status: 307, target: "x"}}
	if isTransientTransportError(err) {
		t.Error("a refused redirect was classified transient")
	}
}
