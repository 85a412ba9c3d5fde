package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// A listing is held whole in memory (the pod has 256 MiB for everything), and every page of it is
// what the server chose to send: these bound what one listing may take, whoever answers. Past any
// of them the listing is abandoned with an error (and nothing of it is returned).
const (
	// maxPages stops a server that keeps answering with a nextLink (a loop) from holding a worker
	// forever; the other two bounds do not see a loop of empty pages.
	maxPages = 1000
	// maxListRecords bounds the records of one listing. A tenant's userPfxCertificates are to be
	// listed whole for drift checks at up to 100,000 certificates: twice that. It is checked per
	// record while a page is decoded, since one 4 MiB page of "{}" alone is 1.4 million records and
	// would decode to some 400 MiB. 200,000 decoded userPFXCertificates are about 50 MiB of
	// structs (248 bytes each), before their strings, which maxListBytes bounds.
	maxListRecords = 200_000
	// maxListBytes bounds the response bodies of one listing together; what is kept of them decoded
	// (the strings) is at most about as much. 1000 pages of up to maxResponseBody (4 MiB) would be
	// 4 GiB. A userPfxCertificate reads back as about 660 bytes of JSON, so 100,000 of them are
	// about 63 MiB: 96 MiB leaves room to grow without letting one listing take the pod.
	maxListBytes = 96 << 20
)

// listLimitError is a listing abandoned at one of the bounds above.
type listLimitError struct {
	limit string // the bound, e.g. "200000 records"
}

func (e *listLimitError) Error() string {
	return "listing abandoned: it runs to more than " + e.limit + ", the most the operator reads of one listing"
}

// listAll GETs first and follows @odata.nextLink, the whole URL as Graph gives it, until absent.
func listAll[T any](ctx context.Context, c *Client, op, first string) ([]T, error) {
	var all []T
	var read int64 // bytes of response bodies so far
	next := first
	for pages := 0; next != ""; pages++ {
		if pages == maxPages {
			return nil, fmt.Errorf("graph: %s: %w", op, &listLimitError{limit: fmt.Sprintf("%d pages", maxPages)})
		}
		page := listPage[T]{all: &all, read: &read}
		if err := c.do(ctx, call{op: op, method: http.MethodGet, url: next, out: &page}); err != nil {
			var le *listLimitError
			if errors.As(err, &le) { // not "decode response: ...": it is not malformed
				return nil, fmt.Errorf("graph: %s: %w", op, le)
			}
			return nil, err
		}
		if page.nextLink != "" {
			if err := c.checkNextLink(page.nextLink); err != nil {
				return nil, fmt.Errorf("graph: %s: %w", op, err)
			}
		}
		next = page.nextLink
	}
	return all, nil
}

// listPage decodes one page of a listing, {"value":[...],"@odata.nextLink":"..."}, appending its
// records to *all and counting its body against maxListBytes and its records against maxListRecords
// as it goes, so a page past a bound is refused before it is decoded whole. It reads like
// json.Unmarshal into struct{Value []T; NextLink string}: names match case-insensitively, null is
// no value, a repeated "value" replaces the earlier one, other members are ignored.
type listPage[T any] struct {
	all      *[]T
	read     *int64 // bytes of the listing's bodies so far
	nextLink string
}

func (p *listPage[T]) UnmarshalJSON(data []byte) error {
	// json.Unmarshal has checked data is one valid JSON value; only its shape is left to check.
	*p.read += int64(len(data))
	if *p.read > maxListBytes {
		return &listLimitError{limit: formatBytes(maxListBytes) + " of answers"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil { // null: no records, no next page
		return nil
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("a page of a listing is a JSON object, got %s", jsonKind(tok))
	}
	start := len(*p.all)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		switch {
		case strings.EqualFold(name, "value"):
			*p.all = (*p.all)[:start]
			if err := p.decodeValue(dec); err != nil {
				return err
			}
		case strings.EqualFold(name, "@odata.nextLink"):
			if err := dec.Decode(&p.nextLink); err != nil {
				return fmt.Errorf("@odata.nextLink: %w", err)
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing }
	return err
}

// decodeValue appends the records of a "value" array one by one.
func (p *listPage[T]) decodeValue(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil
	}
	if tok != json.Delim('[') {
		return fmt.Errorf("value: want a JSON array, got %s", jsonKind(tok))
	}
	for dec.More() {
		if len(*p.all) >= maxListRecords {
			return &listLimitError{limit: fmt.Sprintf("%d records", maxListRecords)}
		}
		var v T
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("value: %w", err)
		}
		*p.all = append(*p.all, v)
	}
	_, err = dec.Token() // the closing ]
	return err
}

// jsonKind names what a json.Decoder token starts, for an error message.
func jsonKind(tok json.Token) string {
	switch tok.(type) {
	case json.Delim:
		if tok == json.Delim('[') {
			return "an array"
		}
		return "an object"
	case string:
		return "a string"
	case float64, json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

// checkNextLink refuses a nextLink that leaves the Graph root: the client would send it the
// bearer token.
func (c *Client) checkNextLink(link string) error {
	u, err := url.Parse(link)
	if err != nil {
		return fmt.Errorf("invalid @odata.nextLink: %w", err)
	}
	if u.Scheme != "https" || !strings.EqualFold(u.Host, c.base.Host) {
		return fmt.Errorf("refusing @odata.nextLink to %s://%s: not the Graph root %s", u.Scheme, u.Host, c.base.Host)
	}
	return nil
}

// itemURL is the URL of one entity below an (escaped) collection path. An empty id would address
// the collection itself, and "." or ".." another path, so they are refused.
func (c *Client) itemURL(op, collectionPath, id string) (string, error) {
	if id == "" || id == "." || id == ".." {
		return "", fmt.Errorf("graph: %s: invalid id %q", op, id)
	}
	return c.endpoint(collectionPath + "/" + url.PathEscape(id)), nil
}

// odataString quotes s as an OData string literal: single quotes doubled.
func odataString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// queryEscape escapes a query value with spaces as %20: Graph does not read '+' as a space in
// $filter, and a literal '+' (allowed in UPNs) must arrive as %2B.
func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}
