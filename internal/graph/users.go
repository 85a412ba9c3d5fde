package graph

import (
	"context"
	"errors"
	"net/http"
	"net/url"
)

// ResolveUserID returns the object id of the user with this UPN (GET /users/{upn}?$select=id).
// Ids never change for a UPN's user object, so answers are cached (bounded, usercache.go); the
// key is case-insensitive as UPNs are. Failures are not cached, and a 404 drops what was cached:
// the user is gone, and one created again under the UPN has a new id.
func (c *Client) ResolveUserID(ctx context.Context, upn string) (string, error) {
	if upn == "" {
		return "", errors.New("graph: users.get: empty user principal name")
	}
	if id, ok := c.userIDs.get(upn); ok {
		return id, nil
	}
	var user struct {
		ID string `json:"id"`
	}
	u := c.endpoint("/users/" + url.PathEscape(upn) + "?$select=id")
	if err := c.do(ctx, call{op: "users.get", method: http.MethodGet, url: u, out: &user}); err != nil {
		if IsNotFound(err) {
			c.userIDs.forget(upn)
		}
		return "", err
	}
	if user.ID == "" {
		return "", errors.New("graph: users.get: answer has no id")
	}
	c.userIDs.put(upn, user.ID)
	return user.ID, nil
}

// ForgetUserID drops the cached id of upn: the caller learnt that the user it names is gone (a
// record for it could not be created, or was created under another id), so the next
// ResolveUserID asks Graph again.
func (c *Client) ForgetUserID(upn string) { c.userIDs.forget(upn) }
