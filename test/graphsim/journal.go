package graphsim

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// maxInspectedForm bounds how much of a form body is read for the journal; the token endpoint
	// refuses bodies this big anyway.
	maxInspectedForm = 1 << 20
	// maxClaimLength bounds the unverified claims copied into the journal: they come from anyone.
	maxClaimLength = 512
)

// notePresentedCredentials records in e which kinds of credential r carries, wherever they are (a token
// request at an unknown path still counts), without keeping any value. The body is left for the handler.
func notePresentedCredentials(e *Entry, r *http.Request) {
	e.Authorization = len(r.Header.Values("Authorization")) > 0
	e.IdentityHeader = len(r.Header.Values("X-Identity-Header")) > 0
	if _, password, ok := r.BasicAuth(); ok && password != "" { // client_secret_basic
		e.ClientSecret = true
	}
	params := r.URL.Query()
	for k, v := range peekForm(r) {
		params[k] = append(params[k], v...)
	}
	if nonEmpty(params["client_secret"]) != "" {
		e.ClientSecret = true
	}
	if assertion := nonEmpty(params["client_assertion"]); assertion != "" {
		e.ClientAssertion = true
		e.AssertionIssuer, e.AssertionSubject = unverifiedIssuerAndSubject(assertion)
	}
}

// peekForm parses a form-encoded body without consuming it: the handler still reads every byte.
func peekForm(r *http.Request) url.Values {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/x-www-form-urlencoded" {
		return nil
	}
	head, _ := io.ReadAll(io.LimitReader(r.Body, maxInspectedForm)) // what was read is put back even on error
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), r.Body), r.Body}
	form, _ := url.ParseQuery(string(head)) // keeps what parses, like ParseForm
	return form
}

// credentialParams are query parameters whose values are credentials in OAuth and the identity endpoints.
var credentialParams = map[string]bool{
	"client_secret": true, "client_assertion": true, "assertion": true, "password": true, "code": true,
	"access_token": true, "refresh_token": true, "id_token": true,
}

// journalPath is the path and query as received, with credential values in the query replaced, so the
// journal never holds one. Queries without any are kept byte for byte.
func journalPath(u *url.URL) string {
	if u.RawQuery == "" {
		return u.RequestURI()
	}
	parts := strings.Split(u.RawQuery, "&")
	redacted := false
	for i, part := range parts {
		rawKey, _, _ := strings.Cut(part, "=")
		if key, err := url.QueryUnescape(rawKey); err == nil && credentialParams[key] {
			parts[i] = rawKey + "=REDACTED"
			redacted = true
		}
	}
	if !redacted {
		return u.RequestURI()
	}
	v := *u
	v.RawQuery = strings.Join(parts, "&")
	return v.RequestURI()
}

func nonEmpty(values []string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// unverifiedIssuerAndSubject reads iss and sub of a JWT without verifying it: for the journal only.
func unverifiedIssuerAndSubject(token string) (string, string) {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		return "", ""
	}
	iss, _ := claims["iss"].(string)
	sub, _ := claims["sub"].(string)
	return truncate(iss, maxClaimLength), truncate(sub, maxClaimLength)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
