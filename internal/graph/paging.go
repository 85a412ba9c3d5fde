package graph

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// maxPages stops a server that keeps answering with a nextLink (a loop) from holding a worker forever.
const maxPages = 1000

// listAll GETs first and follows @odata.nextLink, the whole URL as Graph gives it, until absent.
func listAll[T any](ctx context.Context, c *Client, op, first string) ([]T, error) {
	var all []T
	next := first
	for pages := 0; next != ""; pages++ {
		if pages == maxPages {
			return nil, fmt.Errorf("graph: %s: more than %d pages", op, maxPages)
		}
		var page struct {
			Value    []T    `json:"value"`
			NextLink string `json:"@odata.nextLink"`
		}
		if err := c.do(ctx, call{op: op, method: http.MethodGet, url: next, out: &page}); err != nil {
			return nil, err
		}
		all = append(all, page.Value...)
		if page.NextLink != "" {
			if err := c.checkNextLink(page.NextLink); err != nil {
				return nil, fmt.Errorf("graph: %s: %w", op, err)
			}
		}
		next = page.NextLink
	}
	return all, nil
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
