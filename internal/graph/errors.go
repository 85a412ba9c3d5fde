package graph

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"time"
)

// Error is a Graph error response. Message is what Graph said (for the PFX import service it is
// itself a JSON document); the request body never appears in it.
type Error struct {
	StatusCode      int
	Code            string // Graph's error code, e.g. "ResourceNotFound"
	Message         string
	RequestID       string
	ClientRequestID string
	Operation       string // e.g. "userPfxCertificates.create"
	// RetryAfter is how long the server (or the default for 429) asked to wait before trying
	// again; set when the call gave up on a throttled or transient answer.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := fmt.Sprintf("graph: %s: %d %s", e.Operation, e.StatusCode, e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	}
	s += fmt.Sprintf(" (request-id %s, client-request-id %s", orDash(e.RequestID), orDash(e.ClientRequestID))
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(", retry after %s", e.RetryAfter)
	}
	return s + ")"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// maxErrorMessage bounds the message kept from an error body; the detail JSON of the import
// service is small, anything longer is noise in a condition message.
const maxErrorMessage = 2048

// decodeError builds an *Error from a non-2xx answer. Only Graph's error object is used: a body
// that is not one (a proxy's HTML page) is described, not copied.
func decodeError(op string, status int, h http.Header, body []byte, clientRequestID string) *Error {
	e := &Error{StatusCode: status, Operation: op, RequestID: h.Get("request-id"), ClientRequestID: clientRequestID}
	var env struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError struct {
				RequestID       string `json:"request-id"`
				ClientRequestID string `json:"client-request-id"`
			} `json:"innerError"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err == nil && env.Error.Code != "" {
		e.Code = env.Error.Code
		e.Message = env.Error.Message
		if e.RequestID == "" {
			e.RequestID = env.Error.InnerError.RequestID
		}
		if e.ClientRequestID == "" {
			e.ClientRequestID = env.Error.InnerError.ClientRequestID
		}
	} else {
		e.Code = http.StatusText(status)
		if len(body) > 0 {
			ct, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
			e.Message = fmt.Sprintf("unrecognised error body (%d bytes, %s)", len(body), orDash(ct))
		}
	}
	if len(e.Message) > maxErrorMessage {
		e.Message = e.Message[:maxErrorMessage] + "..."
	}
	return e
}

// IsNotFound reports a 404 answer.
func IsNotFound(err error) bool { return statusIs(err, http.StatusNotFound) }

// IsConflict reports a 409 answer (e.g. a second POST of the same userPfxCertificate).
func IsConflict(err error) bool { return statusIs(err, http.StatusConflict) }

// IsThrottled reports a 429 answer.
func IsThrottled(err error) bool { return statusIs(err, http.StatusTooManyRequests) }

func statusIs(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == code
}

// IsRefused reports that Graph answered and refused the request itself (a 4xx other than 429): asking
// again unchanged will not help. Throttling, server and network errors, and a caller that gave up (its
// context ended, e.g. while waiting for the write budget) are not refusals.
func IsRefused(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode >= 400 && e.StatusCode < 500 && e.StatusCode != http.StatusTooManyRequests
}

// IsRetryable reports whether trying the same call later may succeed: throttling, transient
// server errors, network errors and timeouts.
func IsRetryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return retryableStatus(e.StatusCode)
	}
	var ne *networkError
	return errors.As(err, &ne)
}

// WriteMayHaveHappened reports whether a failed write may still have taken effect: Graph answered with a
// server error after which it may have acted (500, 502, 504: a gateway that gave up waiting does not know),
// no answer came, or the caller gave up mid-call. Refusals (4xx, 429, 503) and failures before sending
// (sign-in) leave nothing behind.
func WriteMayHaveHappened(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode >= 500 && !serverDidNotAct(e.StatusCode)
	}
	var ne *networkError
	return errors.As(err, &ne) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// RetryAfter returns the wait the server asked for, if the error carries one.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// networkError is a request that got no (complete) answer: connection refused or dropped,
// per-attempt timeout, truncated body.
type networkError struct {
	op  string
	err error
}

func (e *networkError) Error() string { return fmt.Sprintf("graph: %s: %v", e.op, e.err) }
func (e *networkError) Unwrap() error { return e.err }

// isTransientTransportError tells network trouble worth retrying from errors that will repeat
// (an untrusted server certificate, a malformed URL, a refused redirect).
func isTransientTransportError(err error) bool {
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return false
	}
	// A refused redirect comes wrapped in a *url.Error, which is a net.Error: it would repeat.
	if _, ok := asRedirectError(err); ok {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, context.DeadlineExceeded)
}
