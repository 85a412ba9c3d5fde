// Package graph is a small typed client for the Microsoft Graph beta endpoints the operator
// manages (userPfxCertificates, managedDeviceCertificateStates, pfxRecryptionRequests,
// pfxUserCertificates), over net/http with tokens from azidentity. It retries throttled and
// transient answers within a bounded wait and paces writes with a per-tenant limiter.
package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/uuid"
	"golang.org/x/time/rate"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/certops/intune-cert-operator/internal/version"
)

// Options configure a Client.
type Options struct {
	GraphRoot  string // https root without version, e.g. https://graph.microsoft.com; the client adds /beta
	Scope      string // token scope, normally Endpoints.Scope() of the cloud
	Credential azcore.TokenCredential
	// WriteLimiter paces POST/PATCH/DELETE: every write waits on it before each attempt. Share one
	// budget per tenant and app (see NewWriteLimiter); combine it with a connection's own, lower
	// budget with AllLimiters. nil (or a nil *rate.Limiter) = none.
	WriteLimiter WriteLimiter
	// Throttle holds every call back while Graph's last Retry-After to this tenant and app runs; share one
	// per tenant and app. nil = only the call that was throttled waits.
	Throttle *Throttle
	// HTTPClient sends the requests; nil = system roots and sane transport timeouts. New uses a copy
	// that follows no redirect (NoRedirects); the caller's client is not changed.
	HTTPClient *http.Client
	UserAgent  string // default "intune-cert-operator/<version>"
	// RequestTimeout bounds one attempt (request and response body); default 30s.
	RequestTimeout time.Duration
	// MaxRetries bounds the retries after the first attempt; default 4, negative = none.
	MaxRetries int
	// MaxRetryWait bounds the total time one call sleeps between attempts; default 30s. A wait
	// that would exceed it is not slept: the call returns the *Error with RetryAfter set so the
	// controller can requeue after it instead of holding a worker.
	MaxRetryWait time.Duration
	// Sleep waits between attempts; tests inject one that records. Default: a timer honouring ctx.
	Sleep func(ctx context.Context, d time.Duration) error
	// Users caches user ids by UPN; share one per connection and tenant, so a client built again (its
	// credential Secret changed) keeps what it learnt. nil = a cache of the client's own.
	Users *UserIDCache
}

// Client calls Graph beta. It is safe for concurrent use.
type Client struct {
	base      *url.URL // GraphRoot + "/beta"
	scope     string
	cred      azcore.TokenCredential
	limiter   WriteLimiter // nil = none
	throttle  *Throttle
	http      *http.Client
	userAgent string
	timeout   time.Duration
	retries   int
	maxWait   time.Duration
	sleep     func(context.Context, time.Duration) error
	userIDs   *UserIDCache // lower-case UPN -> user object id, bounded (usercache.go)
}

// New checks o and returns a Client.
func New(o Options) (*Client, error) {
	root, err := parseHTTPSURL("Graph root", strings.TrimSuffix(o.GraphRoot, "/"))
	if err != nil {
		return nil, err
	}
	if o.Scope == "" {
		return nil, errors.New("graph: Options.Scope is required")
	}
	if o.Credential == nil {
		return nil, errors.New("graph: Options.Credential is required")
	}
	c := &Client{
		base:      root.JoinPath("beta"),
		scope:     o.Scope,
		cred:      o.Credential,
		limiter:   AllLimiters(o.WriteLimiter), // a nil *rate.Limiter becomes nil
		throttle:  o.Throttle,
		http:      NoRedirects(o.HTTPClient),
		userAgent: o.UserAgent,
		timeout:   o.RequestTimeout,
		retries:   o.MaxRetries,
		maxWait:   o.MaxRetryWait,
		sleep:     o.Sleep,
		userIDs:   o.Users,
	}
	if c.userIDs == nil {
		c.userIDs = &UserIDCache{}
	}
	if c.userAgent == "" {
		c.userAgent = "intune-cert-operator/" + version.Version
	}
	if c.timeout <= 0 {
		c.timeout = 30 * time.Second
	}
	if c.retries == 0 {
		c.retries = 4
	} else if c.retries < 0 {
		c.retries = 0
	}
	if c.maxWait <= 0 {
		c.maxWait = 30 * time.Second
	}
	if c.sleep == nil {
		c.sleep = sleepContext
	}
	return c, nil
}

// WriteLimiter paces writes: Wait blocks until one more write may be sent, or fails (ctx done, or a
// budget that can never allow it). A *rate.Limiter is one.
type WriteLimiter interface {
	Wait(ctx context.Context) error
}

// AllLimiters combines write budgets: its Wait waits on each non-nil limiter in turn, in the order
// given, and fails with the first failure. A nil *rate.Limiter (what NewWriteLimiter returns for no
// limit) counts as absent. With no limiter left it returns nil, with one that limiter itself.
//
// Why: the operator shares one budget per (cloud, tenant, application), which the service enforces,
// and may give a namespaced connection a private limiter of its own. Waiting on both means the
// private one can only lower that connection's rate; it never changes the shared limiter, so no
// namespace can raise or lower another connection's rate. Pass the shared budget last: a limiter
// spends its token when Wait returns, so the shared token is taken just before the request goes
// out, not while the connection still waits for its own budget (which would let writes bunch up on
// the wire beyond the shared rate).
func AllLimiters(limiters ...WriteLimiter) WriteLimiter {
	var all allLimiters
	for _, l := range limiters {
		switch l := l.(type) {
		case nil:
		case *rate.Limiter:
			if l != nil {
				all = append(all, l)
			}
		case allLimiters:
			all = append(all, l...)
		default:
			all = append(all, l)
		}
	}
	switch len(all) {
	case 0:
		return nil
	case 1:
		return all[0]
	}
	return all
}

// allLimiters is AllLimiters of two or more limiters, none of them nil.
type allLimiters []WriteLimiter

func (a allLimiters) Wait(ctx context.Context) error {
	for _, l := range a {
		if err := l.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// NewWriteLimiter returns a limiter allowing writesPer20Seconds writes per 20 s with burst 1, so
// no 20 s window ever holds more than writesPer20Seconds+1 writes. Intune counts writes per 20 s
// window per tenant and per app. writesPer20Seconds <= 0 returns nil (no limit).
func NewWriteLimiter(writesPer20Seconds int) *rate.Limiter {
	if writesPer20Seconds <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(float64(writesPer20Seconds)/20), 1)
}

func defaultHTTPClient() *http.Client {
	// The default transport's clone keeps proxy settings, system roots (SSL_CERT_FILE) and its dial
	// and TLS handshake timeouts; the whole attempt is bounded by RequestTimeout. Concurrent
	// reconcilers talk to one host, so keep more idle connections than the default 2.
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	return &http.Client{Transport: t}
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// call is one logical Graph operation; do may send it several times.
type call struct {
	op     string // fixed metric/log name, e.g. "userPfxCertificates.get"
	method string
	url    string // absolute
	body   any    // JSON-encoded; nil = no body
	out    any    // decoded from a 2xx answer; nil = ignore the body
	// noBody, when set, reports a 2xx answer without a body (a PATCH answered 204).
	noBody *bool
}

// patch PATCHes body to u and decodes the answer. Intune often answers a PATCH 204 without a body although
// its pages say 200 with the entity; both are success, and for a 204 the result is nil: a caller that needs
// the service's view of the record reads it again.
func patch[T any](ctx context.Context, c *Client, op, u string, body any) (*T, error) {
	out, empty := new(T), false
	if err := c.do(ctx, call{op: op, method: http.MethodPatch, url: u, body: body, out: out, noBody: &empty}); err != nil {
		return nil, err
	}
	if empty {
		return nil, nil
	}
	return out, nil
}

// endpoint returns the absolute URL of a path below /beta. Path segments must already be escaped.
func (c *Client) endpoint(escapedPath string) string {
	return c.base.String() + escapedPath
}

// do runs a call with authentication, write pacing and bounded retries.
func (c *Client) do(ctx context.Context, cl call) error {
	var body []byte
	if cl.body != nil {
		var err error
		if body, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("graph: %s: encode request: %w", cl.op, err)
		}
	}
	write := cl.method != http.MethodGet
	var waited time.Duration
	var waitedUntil time.Time // the end of the last Retry-After this call itself honoured
	for attempt := 0; ; attempt++ {
		if write && c.limiter != nil {
			if err := c.limiter.Wait(ctx); err != nil {
				return fmt.Errorf("graph: %s: wait for write budget: %w", cl.op, err)
			}
		}
		token, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}})
		if err != nil {
			return fmt.Errorf("graph: %s: get token: %w", cl.op, err)
		}
		// Checked just before sending: this call may have queued on the write budget meanwhile.
		if err := c.waitForHold(ctx, cl.op, &waited, &waitedUntil); err != nil {
			return err
		}
		res, sent, err := c.send(ctx, cl, body, token.Token)
		if ctx.Err() != nil {
			return fmt.Errorf("graph: %s: %w", cl.op, ctx.Err())
		}

		var wait time.Duration // how long before the next attempt
		var final error        // what to return if no retry happens
		switch {
		case err != nil:
			if !isTransientTransportError(err) {
				return fmt.Errorf("graph: %s: %w", cl.op, err)
			}
			final = &networkError{op: cl.op, err: err}
			// A POST that reached the server may have created the record; a blind retry could
			// duplicate it (managedDeviceCertificateState ids are random). Callers adopt by listing.
			if cl.method == http.MethodPost && sent {
				return final
			}
			wait = backoff(attempt)
		case res.status >= 200 && res.status < 300:
			if cl.noBody != nil {
				*cl.noBody = len(res.body) == 0
			}
			if cl.out != nil && len(res.body) > 0 {
				if err := json.Unmarshal(res.body, cl.out); err != nil {
					return fmt.Errorf("graph: %s: decode response: %w", cl.op, err)
				}
			}
			return nil
		default:
			gerr, retry := c.errorWait(ctx, cl, res, &waitedUntil)
			if !retry {
				return gerr
			}
			wait, final = gerr.RetryAfter, gerr
			if wait == 0 {
				wait = backoff(attempt)
			}
		}

		if attempt >= c.retries {
			return final
		}
		if waited+wait > c.maxWait {
			// Not worth holding the worker: hand the wait to the controller.
			var gerr *Error
			if errors.As(final, &gerr) && gerr.RetryAfter < wait {
				gerr.RetryAfter = wait
			}
			return final
		}
		retriesTotal.WithLabelValues(cl.op).Inc()
		log.FromContext(ctx).V(1).Info("Retrying Graph request", "operation", cl.op, "wait", wait, "attempt", attempt+1)
		if err := c.sleep(ctx, wait); err != nil {
			return fmt.Errorf("graph: %s: %w", cl.op, err)
		}
		waited += wait
	}
}

// waitForHold waits while another call of this app was told to wait (a 429's Retry-After), and again after
// each pause, since a new 429 may have extended the wait. Past the call's budget for waiting it returns the
// throttling as an error, for the controller to requeue.
func (c *Client) waitForHold(ctx context.Context, op string, waited *time.Duration, waitedUntil *time.Time) error {
	for until := c.heldUntil(); until.After(*waitedUntil); until = c.heldUntil() {
		if d := time.Until(until); d > 0 {
			if *waited+d > c.maxWait {
				return &Error{StatusCode: http.StatusTooManyRequests, Code: "ClientThrottled", Operation: op, RetryAfter: d,
					Message: "Graph asked this application to wait; not sending before its Retry-After has passed"}
			}
			if err := c.sleep(ctx, d); err != nil {
				return fmt.Errorf("graph: %s: %w", op, err)
			}
			*waited += d
		}
		*waitedUntil = until
	}
	return nil
}

// errorWait decodes a non-2xx answer and says whether the call may be sent again; the error's RetryAfter is
// the wait the service named (0: back off). A 429 holds every call of the app until that wait is over.
func (c *Client) errorWait(ctx context.Context, cl call, res *response, waitedUntil *time.Time) (*Error, bool) {
	gerr := decodeError(cl.op, res.status, res.header, res.body, res.clientRequestID)
	if !retryableStatus(res.status) || (cl.method == http.MethodPost && !serverDidNotAct(res.status)) {
		return gerr, false
	}
	if d, ok := retryAfterHeader(res.header, time.Now()); ok {
		gerr.RetryAfter = capRetryAfter(ctx, cl.op, res.status, d)
	} else if res.status == http.StatusTooManyRequests {
		gerr.RetryAfter = defaultThrottleWait // Microsoft's import tool waits 60 s when a 429 names no wait
	}
	if res.status == http.StatusTooManyRequests {
		*waitedUntil = time.Now().Add(gerr.RetryAfter)
		if c.throttle != nil {
			c.throttle.holdUntil(*waitedUntil)
		}
	}
	return gerr, true
}

// heldUntil is when the app's shared throttle lets calls go again (zero without one).
func (c *Client) heldUntil() time.Time {
	if c.throttle == nil {
		return time.Time{}
	}
	return c.throttle.heldUntil()
}

// serverDidNotAct reports answers after which Graph has not applied the request, so even a POST
// may be sent again. A 504 is not one of them: the gateway gave up waiting, and the service behind it
// may have acted.
func serverDidNotAct(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

type response struct {
	status          int
	header          http.Header
	body            []byte
	clientRequestID string
}

// maxResponseBody bounds what is read from one answer (4 MiB). Why: the answer is held whole in
// memory, then decoded, and the pod has 256 MiB for everything; a server that is not Graph, or a
// Graph gone wrong, must not choose how much of it one call takes. Real answers are far below it:
// one record is under 1 KiB as read back (Graph returns no PFX), a page of 100 about 70 KiB, and
// even a write's echo of a PFX is tens of KiB. Larger answers are an error, not retried.
const maxResponseBody = 4 << 20

// send makes one HTTP attempt. sent reports whether the request headers left the client, after
// which the server may have acted on it even if no answer came back.
func (c *Client) send(ctx context.Context, cl call, body []byte, token string) (res *response, sent bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }})

	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, cl.url, reader)
	if err != nil {
		return nil, false, fmt.Errorf("build request: %w", err)
	}
	clientRequestID := uuid.NewString()
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("client-request-id", clientRequestID)
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	start := time.Now()
	res, err = c.roundTrip(req)
	elapsed := time.Since(start)
	code := "error"
	if res != nil {
		code = fmt.Sprint(res.status)
		res.clientRequestID = clientRequestID
	}
	requestsTotal.WithLabelValues(cl.op, code).Inc()
	requestDuration.WithLabelValues(cl.op).Observe(elapsed.Seconds())
	logger := log.FromContext(ctx).V(1)
	if err != nil {
		// A transport error's text repeats the URL: only its cause is logged, as the path is, redacted.
		cause := err
		var ue *url.Error
		if errors.As(err, &ue) {
			cause = ue.Err
		}
		logger.Info("Graph request failed", "operation", cl.op, "method", cl.method, "path", loggedPath(req.URL.Path),
			"clientRequestId", clientRequestID, "duration", elapsed, "error", cause.Error())
		return nil, wrote.Load(), err
	}
	if res.status == http.StatusTooManyRequests {
		throttledTotal.WithLabelValues(cl.op).Inc()
	}
	logger.Info("Graph request", "operation", cl.op, "method", cl.method, "path", loggedPath(req.URL.Path), "status", res.status,
		"requestId", res.header.Get("request-id"), "clientRequestId", clientRequestID, "duration", elapsed)
	return res, true, nil
}

// loggedPath is a request path fit for logs: a user's principal name (GET /users/{upn}) is personal data
// that logs, kept and shipped widely, must not carry; the operation names the call anyway.
func loggedPath(p string) string {
	if i := strings.Index(p, "/users/"); i >= 0 {
		return p[:i] + "/users/{redacted}"
	}
	return p
}

// roundTrip sends req and reads the whole answer, so a connection dropped mid-body is an error
// of this attempt.
func (c *Client) roundTrip(req *http.Request) (*response, error) {
	resp, err := c.http.Do(req)
	if re, ok := asRedirectError(err); ok {
		// Do returns the closed redirect response too. Drop the *url.Error around the refusal: it
		// holds the whole Location, query string included.
		return nil, &redirectError{origin: "Graph", status: re.status, target: re.target}
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > maxResponseBody { // announced: do not read any of it
		return nil, responseTooLarge(resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if len(body) > maxResponseBody {
		return nil, responseTooLarge(resp.StatusCode)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

func responseTooLarge(status int) error {
	return fmt.Errorf("the answer of Graph (%d) is larger than %s, the most the operator reads of one response; it was abandoned",
		status, formatBytes(maxResponseBody))
}

// formatBytes writes a size for an error message: whole MiB as such, anything else in bytes.
func formatBytes(n int64) string {
	if n > 0 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
