package graph

import (
	"context"
	"net/http"
)

// Ping proves the connection works end to end: a token is obtained and one small read of the
// userPfxCertificates collection succeeds (one page of at most one record, no paging).
func (c *Client) Ping(ctx context.Context) error {
	u := c.endpoint(userPfxPath + "?$top=1&$select=id")
	return c.do(ctx, call{op: "userPfxCertificates.list", method: http.MethodGet, url: u, out: &struct{}{}})
}
