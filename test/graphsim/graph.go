package graphsim

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

const maxBody = 8 << 20

func isGraphPath(p string) bool { return p == "/beta" || strings.HasPrefix(p, "/beta/") }

// serveGraph runs a Graph request through latency, faults, authentication, throttling and the router.
func (s *Server) serveGraph(w *trackedWriter, r *http.Request) {
	w.Header().Set("request-id", newRequestID())
	if id := r.Header.Get("client-request-id"); id != "" {
		w.Header().Set("client-request-id", id)
	}
	s.mu.Lock()
	latency := s.faults.Latency
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
		}
	}

	// Identify first so that faulted requests are journaled with their tenant and app too.
	id, authFailure := s.authenticate(r.Header.Get("Authorization"))
	w.tenantID, w.clientID = id.tenantID, id.clientID
	faulted, act := s.injectFault(w, r)
	if faulted {
		return
	}
	c := &call{s: s, w: w, r: r, id: id}
	if authFailure != "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="", error="invalid_token"`)
		c.graphError(http.StatusUnauthorized, "InvalidAuthenticationToken", authFailure)
		return
	}
	s.mu.Lock()
	wait, ok := s.limiter.take(s.now(), id.tenantID, id.clientID, isWrite(r.Method))
	s.mu.Unlock()
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(ceilSeconds(wait)))
		c.graphError(http.StatusTooManyRequests, "TooManyRequests", "Too many requests. Retry after the interval in the Retry-After header.")
		return
	}
	c.t = s.tenants[id.tenantID]
	if isWrite(r.Method) { // hold the answer: an act-then-fail fault may replace it once the write acted
		w.hold = true
		c.route()
		s.finishWrite(c, act)
		return
	}
	c.route()
}

func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func ceilSeconds(d time.Duration) int {
	secs := int((d + time.Second - 1) / time.Second)
	return max(secs, 1)
}

func retryAfterOf(h http.Header) time.Duration {
	secs, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil {
		return 0
	}
	return time.Duration(secs) * time.Second
}

// call is one authenticated Graph request.
type call struct {
	s  *Server
	w  *trackedWriter
	r  *http.Request
	id identity
	t  *tenantState
}

// Permissions Graph checks (application roles in the token).
var (
	userReadRoles    = []string{"User.Read.All", "User.ReadWrite.All", "User.ReadBasic.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	intuneReadRoles  = []string{"DeviceManagementConfiguration.Read.All", "DeviceManagementConfiguration.ReadWrite.All"}
	intuneWriteRoles = []string{"DeviceManagementConfiguration.ReadWrite.All"}
)

// route dispatches on the path below /beta. Segments compare case-insensitively like Graph's, and
// empty segments collapse (the docs print ".../identityCertificate//microsoft.graph...").
func (c *call) route() {
	segs := pathSegments(strings.TrimPrefix(c.r.URL.Path, "/beta"))
	at := func(i int, name string) bool { return len(segs) > i && strings.EqualFold(segs[i], name) }
	switch {
	case at(0, "users") && len(segs) == 2:
		if !c.id.hasAny(userReadRoles...) {
			c.graphError(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
			return
		}
		c.user(segs[1])
	case at(0, "deviceManagement") && at(1, "userPfxCertificates"):
		if c.intuneAllowed() {
			c.userPfx(segs[2:])
		}
	case at(0, "deviceManagement") && at(1, "deviceConfigurations") && len(segs) >= 4:
		if c.intuneAllowed() {
			c.deviceStates(segs[2], segs[3:])
		}
	case at(0, "pfxRecryptionRequests"):
		if c.intuneAllowed() {
			c.recryption(segs[1:])
		}
	case at(0, "pfxUserCertificates"):
		if c.intuneAllowed() {
			c.pfxUser(segs[1:])
		}
	default:
		c.noRoute()
	}
}

func pathSegments(p string) []string {
	var segs []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	return segs
}

func (c *call) intuneAllowed() bool {
	want := intuneReadRoles
	if isWrite(c.r.Method) {
		want = intuneWriteRoles
	}
	if c.id.hasAny(want...) {
		return true
	}
	c.intuneError(http.StatusForbidden, "Forbidden", "Application is not authorized to perform this operation. Application must have one of the following scopes: "+strings.Join(want, ", "))
	return false
}

// noRoute is Graph's answer to an unknown segment or a verb a resource does not support.
func (c *call) noRoute() {
	c.graphError(http.StatusBadRequest, "BadRequest", fmt.Sprintf(
		"No OData route exists that match template with http verb %s for request %s.", c.r.Method, c.r.URL.Path))
}

func (c *call) notFound(what, id string) {
	c.intuneError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("%s with id '%s' was not found.", what, id))
}

// graphError writes Graph's error envelope.
func (c *call) graphError(status int, code, message string) {
	writeJSON(c.w, status, map[string]any{"error": map[string]any{
		"code": code, "message": message,
		"innerError": map[string]any{
			"request-id":        c.w.Header().Get("request-id"),
			"date":              c.s.now().UTC().Format("2006-01-02T15:04:05"),
			"client-request-id": c.w.Header().Get("client-request-id"),
		},
	}})
}

// intuneError is an error of the Intune service behind Graph, whose message is itself a JSON string.
func (c *call) intuneError(status int, code, reason string) {
	inner, _ := json.Marshal(map[string]any{
		"_version": 3,
		"Message": fmt.Sprintf("%s - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000 - Activity ID: %s - Url: %s",
			reason, c.w.Header().Get("request-id"), c.s.url+c.r.URL.RequestURI()),
		"CustomApiErrorPhrase": "",
		"RetryAfter":           nil,
		"ErrorSourceService":   "",
		"HttpHeaders":          "{}",
	})
	c.graphError(status, code, string(inner))
}

// decode reads a JSON object body into v after checking its property names against allowed (the
// resource's properties; "@odata.type" is accepted when it names odataType). v may already hold a
// record: present properties overwrite it, which is PATCH's merge. It answers 400 itself on failure.
func (c *call) decode(v any, allowed []string, odataType string) bool {
	body, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, maxBody))
	if err != nil {
		c.intuneError(http.StatusBadRequest, "BadRequest", "The request body could not be read.")
		return false
	}
	var props map[string]json.RawMessage
	if err := json.Unmarshal(body, &props); err != nil || props == nil {
		c.intuneError(http.StatusBadRequest, "BadRequest", "The request body must be a JSON object.")
		return false
	}
	for name, raw := range props {
		if name == "@odata.type" {
			var t string
			if json.Unmarshal(raw, &t) != nil || !strings.EqualFold(strings.TrimPrefix(t, "#"), odataType) {
				c.intuneError(http.StatusBadRequest, "BadRequest", fmt.Sprintf("@odata.type must be #%s.", odataType))
				return false
			}
			continue
		}
		if !contains(allowed, name) {
			c.intuneError(http.StatusBadRequest, "BadRequest", fmt.Sprintf("The property '%s' does not exist on type '%s'.", name, odataType))
			return false
		}
	}
	if err := json.Unmarshal(body, v); err != nil {
		// The decoder's message may quote input; name only the property.
		msg := "The request body is not a valid " + odataType + "."
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			msg = fmt.Sprintf("The property '%s' has an invalid value for type '%s'.", typeErr.Field, odataType)
		}
		c.intuneError(http.StatusBadRequest, "BadRequest", msg)
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// entity writes one resource with its @odata.context and @odata.type, like Graph.
func (c *call) entity(status int, odataType, contextPath string, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		c.graphError(http.StatusInternalServerError, "InternalServerError", "The response could not be encoded.")
		return
	}
	head := fmt.Sprintf(`{"@odata.context":%q,"@odata.type":%q,`, c.s.url+"/beta/$metadata#"+contextPath+"/$entity", "#"+odataType)
	writeRaw(c.w, status, c.enumCase(append([]byte(head), raw[1:]...)))
}

// updated answers a successful PATCH: 200 with the entity, or 204 without a body (Faults.PatchNoContent).
func (c *call) updated(odataType, contextPath string, v any) {
	c.s.mu.Lock()
	noContent := c.s.faults.PatchNoContent
	c.s.mu.Unlock()
	if noContent {
		c.w.WriteHeader(http.StatusNoContent)
		return
	}
	c.entity(http.StatusOK, odataType, contextPath, v)
}

// enumProps are the string-enum properties of the kinds graphsim serves. encoding/json writes no
// spaces and escapes quotes inside strings, so this pattern matches only real properties.
var enumPropRE = regexp.MustCompile(`"(intendedPurpose|paddingScheme|devicePlatform|certificateKeyUsage)":"([a-z])`)

// enumCase rewrites enum values of an answer to their PascalCase member names when
// Faults.PascalCaseEnums is set ("smimeEncryption" -> "SmimeEncryption").
func (c *call) enumCase(body []byte) []byte {
	c.s.mu.Lock()
	pascal := c.s.faults.PascalCaseEnums
	c.s.mu.Unlock()
	if !pascal {
		return body
	}
	return enumPropRE.ReplaceAllFunc(body, func(m []byte) []byte {
		out := append([]byte{}, m...)
		out[len(out)-1] = bytes.ToUpper(out[len(out)-1:])[0]
		return out
	})
}

// canonicalEnum maps an enum value sent as its camelCase name or its PascalCase (.NET member) name
// to the camelCase one; anything else is returned as is (and then fails validation).
func canonicalEnum(members []string, v string) string {
	for _, m := range members {
		if v == m || v == strings.ToUpper(m[:1])+m[1:] {
			return m
		}
	}
	return v
}

// list writes one page of items (already sorted, filtered and made safe to show) with a
// @odata.nextLink while more remain. The $skiptoken is the offset of the next page.
func list[T any](c *call, contextPath string, items []T) {
	q := c.r.URL.Query()
	offset := 0
	if tok := q.Get("$skiptoken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 {
			c.graphError(http.StatusBadRequest, "BadRequest", "The $skiptoken is invalid.")
			return
		}
		offset = min(n, len(items))
	}
	size := c.s.cfg.PageSize
	if top := q.Get("$top"); top != "" {
		n, err := strconv.Atoi(top)
		if err != nil || n < 1 {
			c.graphError(http.StatusBadRequest, "BadRequest", "The $top value is invalid.")
			return
		}
		size = min(size, n)
	}
	end := min(offset+size, len(items))
	page := map[string]any{
		"@odata.context": c.s.url + "/beta/$metadata#" + contextPath,
		"value":          append([]T{}, items[offset:end]...),
	}
	if end < len(items) {
		q.Set("$skiptoken", strconv.Itoa(end))
		page["@odata.nextLink"] = c.s.url + c.r.URL.Path + "?" + encodeQuery(q)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(page); err != nil {
		c.graphError(http.StatusInternalServerError, "InternalServerError", "The response could not be encoded.")
		return
	}
	writeRaw(c.w, http.StatusOK, c.enumCase(buf.Bytes()))
}

// encodeQuery is url.Values.Encode but leaves "$" in OData option names readable, as Graph does.
func encodeQuery(q map[string][]string) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range q[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(strings.ReplaceAll(url.QueryEscape(k), "%24", "$"))
			b.WriteByte('=')
			b.WriteString(url.QueryEscape(v))
		}
	}
	return b.String()
}

// filterClause is one "[tolower(]prop[)] eq 'value'" of a $filter.
type filterClause struct {
	prop, value string
	lower       bool
}

var (
	clauseRE = regexp.MustCompile(`^(?:tolower\((\w+)\)|(\w+))\s+eq\s+(?:'((?:[^']|'')*)'|([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}))$`)
	andRE    = regexp.MustCompile(`(?i)\s+and\s+`)
)

// parseFilter understands the filters Microsoft's import tool sends: clauses joined by "and".
func parseFilter(f string) ([]filterClause, error) {
	if strings.TrimSpace(f) == "" {
		return nil, nil
	}
	var out []filterClause
	for _, part := range andRE.Split(strings.TrimSpace(f), -1) {
		m := clauseRE.FindStringSubmatch(strings.TrimSpace(part))
		if m == nil {
			return nil, fmt.Errorf("unsupported $filter clause %q", part)
		}
		cl := filterClause{prop: m[1], lower: m[1] != "", value: strings.ReplaceAll(m[3], "''", "'")}
		if m[4] != "" { // an unquoted Guid literal (OData's form for Edm.Guid properties)
			cl.value = m[4]
		}
		if !cl.lower {
			cl.prop = m[2]
		}
		out = append(out, cl)
	}
	return out, nil
}

// filterItems keeps the items whose properties (read with prop) satisfy every clause.
func filterItems[T any](c *call, items []T, prop func(T, string) (string, bool)) ([]T, bool) {
	clauses, err := parseFilter(c.r.URL.Query().Get("$filter"))
	if err == nil {
		for _, cl := range clauses {
			if _, ok := prop(*new(T), cl.prop); !ok {
				err = fmt.Errorf("could not find a property named '%s'", cl.prop)
			}
		}
	}
	if err != nil {
		c.graphError(http.StatusBadRequest, "BadRequest", "Invalid filter clause: "+err.Error())
		return nil, false
	}
	var out []T
	for _, it := range items {
		keep := true
		for _, cl := range clauses {
			v, _ := prop(it, cl.prop)
			if cl.lower {
				v = strings.ToLower(v)
			}
			// Guids compare case-insensitively, quoted or not.
			keep = keep && (v == cl.value || (guidRE.MatchString(v) && strings.EqualFold(v, cl.value)))
		}
		if keep {
			out = append(out, it)
		}
	}
	return out, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "graphsim: response could not be encoded", http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, buf.Bytes())
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// newRequestID is a random GUID for request/trace ids. It deliberately does not use the seeded
// RNG, so that the number of requests does not shift the ids of records.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return formatGUID(b)
}

func formatGUID(b [16]byte) string {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
