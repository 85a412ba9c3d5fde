package graph

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// ResolveUserID returns the object id of the user with this UPN (GET /users/{upn}?$select=id).
// Ids never change for a UPN's user object, so answers are cached for the Client's lifetime;
// the key is case-insensitive as UPNs are. Failures are not cached.
func (c *Client) ResolveUserID(ctx context.Context, upn string) (string, error) {
	if upn == "" {
		return "", errors.New("graph: users.get: empty user principal name")
	}
	key := strings.ToLower(upn)
	if id, ok := c.userIDs.Load(key); ok {
		return id.(string), nil
	}
	var user struct {
		ID string `json:"id"`
	}
	u := c.endpoint("/users/" + url.PathEscape(upn) + "?$select=id")
	if err := c.do(ctx, call{op: "users.get", method: http.MethodGet, url: u, out: &user}); err != nil {
		return "", err
	}
	if user.ID == "" {
		return "", errors.New("graph: users.get: answer has no id")
	}
	c.userIDs.Store(key, user.ID)
	return user.ID, nil
}
