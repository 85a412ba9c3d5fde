package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestUserIDCacheIsBounded(t *testing.T) {
	c := &UserIDCache{max: 3}
	for i := range 10 {
		c.put(fmt.Sprintf("user%d@contoso.com", i), fmt.Sprint(i))
	}
	if n := c.len(); n != 3 {
		t.Fatalf("%d entries, want the bound 3", n)
	}
	if id, ok := c.get("USER9@contoso.com"); !ok || id != "9" {
		t.Fatalf("the last entry put = %q, %t; want 9 (case-insensitive)", id, ok)
	}
	c.put("user9@contoso.com", "9b") // replacing an entry evicts nothing
	if n := c.len(); n != 3 {
		t.Fatalf("%d entries after a replacement, want 3", n)
	}
	c.forget("User9@Contoso.com")
	if _, ok := c.get("user9@contoso.com"); ok {
		t.Fatal("forgotten entry still there")
	}
}

// A user deleted (404) or re-created under a new id is asked for again, not served from the cache.
func TestResolveUserIDForgetsAUserThatIsGone(t *testing.T) {
	status, id := http.StatusOK, "u1"
	ts := newTestServer(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status == http.StatusOK {
			fmt.Fprintf(w, `{"id":%q}`, id)
			return
		}
		fmt.Fprint(w, `{"error":{"code":"Request_ResourceNotFound","message":"gone"}}`)
	})
	c, _, _ := newTestClient(t, ts, nil)
	ctx := context.Background()
	if got, err := c.ResolveUserID(ctx, "a@b.c"); err != nil || got != "u1" {
		t.Fatalf("first lookup = %q, %v", got, err)
	}
	c.ForgetUserID("A@B.C") // e.g. a create for the user failed: it may be gone
	id = "u2"
	if got, err := c.ResolveUserID(ctx, "a@b.c"); err != nil || got != "u2" {
		t.Fatalf("after ForgetUserID = %q, %v; want the new id u2", got, err)
	}
	if n := len(ts.seen()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
	status = http.StatusNotFound
	c.ForgetUserID("a@b.c")
	if _, err := c.ResolveUserID(ctx, "a@b.c"); !IsNotFound(err) {
		t.Fatalf("deleted user: %v, want 404", err)
	}
	if _, ok := c.userIDs.get("a@b.c"); ok {
		t.Fatal("a 404 left an id cached")
	}
}

// Only a refusal of the request itself makes the caller forget a user: a pass that was throttled, met a
// server or network error, or ran out of time learnt nothing about the user.
func TestIsRefusedOnlyForTheRequestsOwnFault(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&Error{StatusCode: http.StatusBadRequest}, true},
		{&Error{StatusCode: http.StatusNotFound}, true},
		{fmt.Errorf("create: %w", &Error{StatusCode: http.StatusForbidden}), true},
		{&Error{StatusCode: http.StatusTooManyRequests}, false},
		{&Error{StatusCode: http.StatusInternalServerError}, false},
		{&Error{StatusCode: http.StatusServiceUnavailable}, false},
		{&networkError{op: "create", err: errors.New("connection reset")}, false},
		{fmt.Errorf("waiting for the write budget: %w", context.DeadlineExceeded), false},
		{context.Canceled, false},
		{nil, false},
	} {
		if got := IsRefused(tc.err); got != tc.want {
			t.Errorf("IsRefused(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
