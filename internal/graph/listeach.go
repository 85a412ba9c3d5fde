package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// maxEachPages bounds the pages of a listing read page by page (EachUserPFXCertificate): a tenant's
// 100,000 certificates are 1000 pages of 100, the service's default, so twice that. maxListRecords and
// maxListBytes still bound what the listing sends.
const maxEachPages = 2000

// listEach GETs first and follows @odata.nextLink like listAll, but hands each page's records to fn and
// keeps none: a listing of a whole tenant never has to be held at once.
func listEach[T any](ctx context.Context, c *Client, op, first string, fn func(T)) error {
	var read int64
	records := 0
	next := first
	for pages := 0; next != ""; pages++ {
		if pages == maxEachPages {
			return fmt.Errorf("graph: %s: %w", op, &listLimitError{limit: fmt.Sprintf("%d pages", maxEachPages)})
		}
		var records0 []T
		page := listPage[T]{all: &records0, read: &read}
		if err := c.do(ctx, call{op: op, method: http.MethodGet, url: next, out: &page}); err != nil {
			var le *listLimitError
			if errors.As(err, &le) {
				return fmt.Errorf("graph: %s: %w", op, le)
			}
			return err
		}
		if records += len(records0); records > maxListRecords {
			return fmt.Errorf("graph: %s: %w", op, &listLimitError{limit: fmt.Sprintf("%d records", maxListRecords)})
		}
		if page.nextLink != "" {
			if err := c.checkNextLink(page.nextLink); err != nil {
				return fmt.Errorf("graph: %s: %w", op, err)
			}
		}
		for _, r := range records0 {
			fn(r)
		}
		next = page.nextLink
	}
	return nil
}

// userPfxCompared are the fields drift detection compares (and the id): a listing asks for nothing else.
var userPfxCompared = []string{"id", "thumbprint", "intendedPurpose", "userPrincipalName", "startDateTime",
	"expirationDateTime", "providerName", "keyName", "paddingScheme"}

// EachUserPFXCertificate lists every userPFXCertificate of the tenant ($select of the compared fields)
// and hands each to fn, page by page. It is the drift check of all records at once: about
// N / page size requests instead of one per record.
func (c *Client) EachUserPFXCertificate(ctx context.Context, fn func(UserPFXCertificate)) error {
	u := c.endpoint(userPfxPath) + "?$select=" + queryEscape(strings.Join(userPfxCompared, ","))
	return listEach(ctx, c, "userPfxCertificates.list", u, fn)
}
