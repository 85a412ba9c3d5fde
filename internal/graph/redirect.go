package graph

import (
	"errors"
	"fmt"
	"net/http"
)

// NoRedirects returns a shallow copy of c that follows no redirect: a 3xx answer with a Location
// ends the request with an error naming the status and the target host. c itself is not changed
// (its Transport, Jar and Timeout are shared by the copy); nil c means a copy of the client New uses
// by default.
//
// Why: the client sends a bearer token (and, for writes, encrypted PFX material) with every request.
// net/http drops Authorization on a redirect to another host, but still re-sends the body of a 307/308
// there, and keeps every header on a redirect to the same host or a subdomain of it. Graph does not
// redirect the calls the operator makes, so a redirect means someone else is answering (a connection
// pointed at a host its namespace owner controls, a hijacked proxy): nothing is sent a second time.
// The same applies to the sign-in transport (an *http.Client is an azcore policy.Transporter). Note
// that on a refused redirect http.Client.Do returns the (closed) redirect response together with
// the error.
func NoRedirects(c *http.Client) *http.Client {
	var cp http.Client
	if c == nil {
		cp = *defaultHTTPClient()
	} else {
		cp = *c
	}
	cp.CheckRedirect = refuseRedirect
	return &cp
}

// refuseRedirect is an http.Client CheckRedirect that refuses every redirect.
func refuseRedirect(req *http.Request, via []*http.Request) error {
	e := &redirectError{target: req.URL.Host}
	if req.Response != nil {
		e.status = req.Response.StatusCode
	}
	if len(via) > 0 {
		e.origin = via[len(via)-1].URL.Host
	}
	return e
}

// redirectError is a refused redirect. It names hosts only: a Location's path and query may carry
// anything, and the error ends up in conditions and logs.
type redirectError struct {
	origin string // who answered with the redirect: a host, or "Graph"
	status int
	target string // the host the answer pointed at
}

func (e *redirectError) Error() string {
	return fmt.Sprintf("%s answered %d redirecting to %s; redirects are refused", orDash(e.origin), e.status, orDash(e.target))
}

// asRedirectError finds a refused redirect in err. http.Client wraps it in a *url.Error whose URL
// is the whole Location (query included), so callers should return the *redirectError, not err.
func asRedirectError(err error) (*redirectError, bool) {
	var re *redirectError
	ok := errors.As(err, &re)
	return re, ok
}
