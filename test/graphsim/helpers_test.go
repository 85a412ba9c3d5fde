package graphsim_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certops/intune-cert-operator/test/graphsim"
)

const (
	tenantID = "6f1d0c2e-8a55-4b0e-9d3c-2b6c1f0e7a11"
	clientID = "0b6f7e2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
	secret   = "s3cr3t-value~for.tests"
	userID   = "a991071c-071c-a991-1c07-91a91c0791a9"
	userUPN  = "Alice@Contoso.example"
	graphURL = "https://graph.microsoft.com"
)

// baseConfig is one tenant with one secret app and one user.
func baseConfig() graphsim.Config {
	return graphsim.Config{
		Seed: 7,
		Tenants: []graphsim.Tenant{{
			ID:    tenantID,
			Apps:  []graphsim.App{{ClientID: clientID, ClientSecret: secret}},
			Users: []graphsim.User{{ID: userID, UserPrincipalName: userUPN, DisplayName: "Alice"}},
		}},
	}
}

func start(t *testing.T, cfg graphsim.Config) *graphsim.Server {
	t.Helper()
	s, err := graphsim.Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// tokenRequest posts a client-credentials form to the token endpoint with plain net/http.
func tokenRequest(t *testing.T, s *graphsim.Server, tenant string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := s.Client().PostForm(s.URL()+"/"+tenant+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode token answer: %v", err)
	}
	return resp.StatusCode, body
}

// secretToken gets a Graph token for the base app with its secret.
func secretToken(t *testing.T, s *graphsim.Server) string {
	t.Helper()
	status, body := tokenRequest(t, s, tenantID, url.Values{
		"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret},
		"scope": {graphURL + "/.default"},
	})
	if status != http.StatusOK {
		t.Fatalf("token: status %d: %v", status, body)
	}
	return body["access_token"].(string)
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return m
}

// errorCode is the OData error code of an error answer.
func (r reply) errorCode(t *testing.T) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func (r reply) errorMessage(t *testing.T) string {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}

// call sends a Graph request; path may be relative to the server ("/beta/...") or a full URL.
func call(t *testing.T, s *graphsim.Server, token, method, path string, body any) reply {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	if !strings.HasPrefix(path, "https://") {
		path = s.URL() + path
	}
	req, err := http.NewRequest(method, path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, data}
}

func expectStatus(t *testing.T, r reply, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
	}
}
