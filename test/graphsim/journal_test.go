package graphsim_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/certops/intune-cert-operator/test/graphsim"
)

// The journal says which kinds of credential each request carried — on sign-in, the identity endpoint,
// Graph and unknown paths alike — and never holds their values: what a security test needs to prove
// that an emulator posing as an attacker's host was handed nothing.
func TestJournalRecordsPresentedCredentialsWithoutValues(t *testing.T) {
	const identity = "5a5a5a5a-0000-4000-8000-000000000001"
	cfg := baseConfig()
	cfg.Tenants[0].Apps[0].FederatedSubjects = []string{workloadSubject}
	cfg.Tenants[0].Apps = append(cfg.Tenants[0].Apps, graphsim.App{ClientID: identity, ManagedIdentity: true})
	s := start(t, cfg)
	federated, err := s.FederatedToken(tenantID, clientID, workloadSubject)
	if err != nil {
		t.Fatal(err)
	}
	send := func(method, path string, header http.Header, form url.Values) int {
		t.Helper()
		var body *strings.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		} else {
			body = strings.NewReader("")
		}
		req, err := http.NewRequest(method, s.URL()+path, body)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	signIn := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {graphURL + "/.default"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vals := range signIn {
			f[key] = vals
		}
		f.Set(k, v)
		if k == "client_assertion" {
			f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		}
		return f
	}
	token := secretToken(t, s) // entry 0
	basic := http.Header{}
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(clientID, secret)
	basic.Set("Authorization", req.Header.Get("Authorization"))

	steps := []struct {
		what   string
		do     func() int
		status int
		want   graphsim.Entry // only the credential fields are compared
	}{
		{"federated sign-in", func() int {
			return send(http.MethodPost, "/"+tenantID+"/oauth2/v2.0/token", nil, with("client_assertion", federated))
		}, 200, graphsim.Entry{ClientAssertion: true, AssertionIssuer: s.FederatedIssuer(), AssertionSubject: workloadSubject}},
		{"Graph call", func() int {
			return send(http.MethodGet, "/beta/users/"+userUPN, http.Header{"Authorization": {"Bearer " + token}}, nil)
		}, 200, graphsim.Entry{Authorization: true}},
		{"identity endpoint", func() int {
			return send(http.MethodGet, "/"+tenantID+"/msi/token?api-version=2019-08-01&resource="+url.QueryEscape(graphURL),
				http.Header{"X-Identity-Header": {s.IdentityHeader()}}, nil)
		}, 200, graphsim.Entry{IdentityHeader: true}},
		{"v1 token endpoint (unknown here) with a secret", func() int {
			return send(http.MethodPost, "/"+tenantID+"/oauth2/token", nil, with("client_secret", secret))
		}, 404, graphsim.Entry{ClientSecret: true}},
		{"unknown path with an assertion", func() int {
			return send(http.MethodPost, "/adfs/oauth2/token", nil, with("client_assertion", federated))
		}, 404, graphsim.Entry{ClientAssertion: true, AssertionIssuer: s.FederatedIssuer(), AssertionSubject: workloadSubject}},
		{"basic auth at an unknown path", func() int {
			return send(http.MethodPost, "/"+tenantID+"/oauth2/v2.0/authorize", basic, signIn)
		}, 404, graphsim.Entry{Authorization: true, ClientSecret: true}},
		{"secret in the query", func() int {
			return send(http.MethodGet, "/"+tenantID+"/oauth2/v2.0/token?client_secret="+url.QueryEscape(secret), nil, nil)
		}, 404, graphsim.Entry{ClientSecret: true}},
		{"unknown Graph route with a token (Graph's 400)", func() int {
			return send(http.MethodGet, "/beta/me/drive", http.Header{"Authorization": {"Bearer " + token}}, nil)
		}, 400, graphsim.Entry{Authorization: true}},
		{"Graph v1.0 (unknown here) with a token", func() int {
			return send(http.MethodGet, "/v1.0/users/"+userUPN, http.Header{"Authorization": {"Bearer " + token}}, nil)
		}, 404, graphsim.Entry{Authorization: true}},
		{"nothing presented", func() int { return send(http.MethodGet, "/robots.txt", nil, nil) }, 404, graphsim.Entry{}},
	}
	for _, st := range steps {
		if got := st.do(); got != st.status {
			t.Fatalf("%s: status %d, want %d", st.what, got, st.status)
		}
	}

	// The admin surface serves the same journal (and does not journal itself).
	r := admin(t, s, http.MethodGet, "/_sim/journal", "")
	var journal []graphsim.Entry
	if err := json.Unmarshal(r.body, &journal); err != nil {
		t.Fatal(err)
	}
	if len(journal) != 1+len(steps) {
		t.Fatalf("%d entries, want %d: %s", len(journal), 1+len(steps), r.body)
	}
	credentials := func(e graphsim.Entry) graphsim.Entry {
		return graphsim.Entry{Authorization: e.Authorization, ClientSecret: e.ClientSecret, ClientAssertion: e.ClientAssertion,
			IdentityHeader: e.IdentityHeader, AssertionIssuer: e.AssertionIssuer, AssertionSubject: e.AssertionSubject}
	}
	if got := credentials(journal[0]); got != (graphsim.Entry{ClientSecret: true}) {
		t.Errorf("secret sign-in: %+v", got)
	}
	for i, st := range steps {
		e := journal[i+1]
		if got := credentials(e); got != st.want || e.Status != st.status {
			t.Errorf("%s: status %d credentials %+v, want %d %+v", st.what, e.Status, got, st.status, st.want)
		}
	}
	entryOf := func(what string) graphsim.Entry {
		for i, st := range steps {
			if st.what == what {
				return journal[i+1]
			}
		}
		t.Fatalf("no step %q", what)
		return graphsim.Entry{}
	}
	if p := entryOf("secret in the query").Path; p != "/"+tenantID+"/oauth2/v2.0/token?client_secret=REDACTED" {
		t.Errorf("the secret in the query is journaled as %q", p)
	}
	for _, value := range []string{secret, url.QueryEscape(secret), token, federated, s.IdentityHeader()} {
		if strings.Contains(string(r.body), value) {
			t.Fatalf("the journal holds a credential's value: %s", r.body)
		}
	}
}
