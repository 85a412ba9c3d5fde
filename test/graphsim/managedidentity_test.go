package graphsim_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/certops/intune-cert-operator/test/graphsim"
)

// The identity endpoint answers only the host's processes (the identity header), for Graph, in its API
// version, for an identity assigned to the host; its token works on Graph.
func TestManagedIdentityEndpoint(t *testing.T) {
	const identity = "5a5a5a5a-0000-4000-8000-000000000001"
	cfg := baseConfig()
	cfg.Tenants[0].Apps = append(cfg.Tenants[0].Apps, graphsim.App{ClientID: identity, ManagedIdentity: true})
	s := start(t, cfg)
	ask := func(endpoint, header string, query url.Values) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, endpoint+"?"+query.Encode(), nil)
		if header != "" {
			req.Header.Set("X-IDENTITY-HEADER", header)
		}
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	endpoint := s.ManagedIdentityEndpoint(tenantID)
	good := url.Values{"api-version": {"2019-08-01"}, "resource": {graphURL}}
	with := func(k, v string) url.Values {
		q := url.Values{}
		for key, vals := range good {
			q[key] = vals
		}
		q.Set(k, v)
		return q
	}
	for _, c := range []struct {
		what     string
		endpoint string
		header   string
		query    url.Values
		want     int
	}{
		{"no identity header", endpoint, "", good, http.StatusUnauthorized},
		{"a wrong identity header", endpoint, "guess", good, http.StatusUnauthorized},
		{"another API version", endpoint, s.IdentityHeader(), with("api-version", "2017-09-01"), http.StatusBadRequest},
		{"another resource", endpoint, s.IdentityHeader(), with("resource", "https://management.azure.com"), http.StatusBadRequest},
		{"an identity not assigned to the host", endpoint, s.IdentityHeader(), with("client_id", clientID), http.StatusBadRequest},
		{"an unknown tenant", s.ManagedIdentityEndpoint("00000000-0000-0000-0000-000000000009"), s.IdentityHeader(), good, http.StatusNotFound},
	} {
		if status, body := ask(c.endpoint, c.header, c.query); status != c.want || body["access_token"] != nil {
			t.Errorf("%s: %d %v, want %d without a token", c.what, status, body, c.want)
		}
	}

	for _, q := range []url.Values{good, with("client_id", identity)} {
		status, body := ask(endpoint, s.IdentityHeader(), q)
		token, _ := body["access_token"].(string)
		if status != http.StatusOK || token == "" || body["client_id"] != identity || body["expires_on"] == nil {
			t.Fatalf("%v: %d %v, want a token of %s", q, status, body, identity)
		}
		expectUsable(t, s, token)
	}
}
