package graphsim_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

func TestWritesAreThrottledPerAppWithRetryAfterFromTheBucket(t *testing.T) {
	clk := newClock()
	cfg := baseConfig()
	cfg.Now = clk.Now
	cfg.Limits = graphsim.Limits{Window: time.Minute, AppWrites: 2}
	s := start(t, cfg)
	token := secretToken(t, s)

	expectStatus(t, call(t, s, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(1))), http.StatusCreated)
	expectStatus(t, call(t, s, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(2))), http.StatusCreated)
	// The bucket refills 2 tokens per 60 s: the next token is 30 s away.
	r := call(t, s, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(3)))
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "30" || r.errorCode(t) != "TooManyRequests" {
		t.Fatalf("third write: %d Retry-After %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	last := s.Journal()[len(s.Journal())-1]
	if last.Status != http.StatusTooManyRequests || last.RetryAfter != 30*time.Second || last.TenantID != tenantID || last.ClientID != clientID {
		t.Fatalf("journal entry %+v", last)
	}
	if n := len(s.UserPFXCertificates(tenantID)); n != 2 {
		t.Fatalf("a throttled write had an effect: %d records", n)
	}
	// Reads do not spend write tokens.
	expectStatus(t, call(t, s, token, http.MethodGet, pfxPath, nil), http.StatusOK)

	clk.Advance(29 * time.Second) // 29/30 of a token: one more second
	r = call(t, s, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(3)))
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" {
		t.Fatalf("after 29 s: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	clk.Advance(time.Second)
	expectStatus(t, call(t, s, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(3))), http.StatusCreated)
}

func TestTenantBucketIsSharedByItsApps(t *testing.T) {
	clk := newClock()
	cfg := baseConfig()
	cfg.Now = clk.Now
	cfg.Limits = graphsim.Limits{Window: time.Minute, TenantWrites: 3}
	const second = "2c2c2c2c-0000-0000-0000-000000000002"
	cfg.Tenants[0].Apps = append(cfg.Tenants[0].Apps, graphsim.App{ClientID: second, ClientSecret: "other-secret"})
	s := start(t, cfg)
	first := secretToken(t, s)
	status, body := tokenRequest(t, s, tenantID, url.Values{"grant_type": {"client_credentials"}, "client_id": {second},
		"client_secret": {"other-secret"}, "scope": {graphURL + "/.default"}})
	if status != http.StatusOK {
		t.Fatalf("second app token: %d %v", status, body)
	}
	other := body["access_token"].(string)

	// DELETEs of unknown ids answer 404 but are writes all the same.
	for i, tok := range []string{first, first, other} {
		expectStatus(t, call(t, s, tok, http.MethodDelete, pfxPath+fmt.Sprint("/x", i), nil), http.StatusNotFound)
	}
	r := call(t, s, other, http.MethodDelete, pfxPath+"/x9", nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "20" {
		t.Fatalf("fourth tenant write: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
}

func TestPublishedLimitsAreTheDefault(t *testing.T) {
	clk := newClock()
	cfg := baseConfig()
	cfg.Now = clk.Now
	s := start(t, cfg)
	token := secretToken(t, s)
	for i := range 100 { // Intune: 100 writes per 20 s per app
		expectStatus(t, call(t, s, token, http.MethodDelete, pfxPath+fmt.Sprint("/x", i), nil), http.StatusNotFound)
	}
	r := call(t, s, token, http.MethodDelete, pfxPath+"/x100", nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" { // 0.2 s rounds up
		t.Fatalf("101st write: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}

	cfg.Limits = graphsim.Limits{Disabled: true}
	s = start(t, cfg)
	token = secretToken(t, s)
	for i := range 150 {
		expectStatus(t, call(t, s, token, http.MethodDelete, pfxPath+fmt.Sprint("/x", i), nil), http.StatusNotFound)
	}
}

func TestAllRequestsBucket(t *testing.T) {
	clk := newClock()
	cfg := baseConfig()
	cfg.Now = clk.Now
	cfg.Limits = graphsim.Limits{Window: 10 * time.Second, AppRequests: 1}
	s := start(t, cfg)
	token := secretToken(t, s)
	expectStatus(t, call(t, s, token, http.MethodGet, pfxPath, nil), http.StatusOK)
	r := call(t, s, token, http.MethodGet, pfxPath, nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "10" {
		t.Fatalf("second read: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
}

func TestScriptedFaultsComeInOrderBeforeAnyEffect(t *testing.T) {
	s := start(t, baseConfig())
	token := secretToken(t, s)
	s.SetFaults(graphsim.Faults{Script: []int{503, 429, 0, 504}})
	var got []string
	for i := range 5 {
		r := call(t, s, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(i)))
		got = append(got, fmt.Sprintf("%d/%s", r.status, r.header.Get("Retry-After")))
	}
	if fmt.Sprint(got) != "[503/ 429/1 201/ 504/ 201/]" {
		t.Fatalf("statuses %v", got)
	}
	if n := len(s.UserPFXCertificates(tenantID)); n != 2 {
		t.Fatalf("%d records, want only the two unfaulted writes", n)
	}
	// Sign-in is never faulted.
	s.SetFaults(graphsim.Faults{ErrorRate: 1})
	secretToken(t, s)
}

func TestRandomFaults(t *testing.T) {
	s := start(t, baseConfig())
	token := secretToken(t, s)

	s.SetFaults(graphsim.Faults{ErrorRate: 1, ErrorStatus: 500})
	r := call(t, s, token, http.MethodPost, pfxPath, pfxBody(userUPN, thumb(1)))
	if r.status != 500 || r.errorCode(t) != "InternalServerError" || len(s.UserPFXCertificates(tenantID)) != 0 {
		t.Fatalf("error fault: %d %s", r.status, r.body)
	}
	s.SetFaults(graphsim.Faults{ThrottleRate: 1, RetryAfter: 3 * time.Second})
	r = call(t, s, token, http.MethodGet, pfxPath, nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "3" {
		t.Fatalf("throttle fault: %d Retry-After %q", r.status, r.header.Get("Retry-After"))
	}

	s.SetFaults(graphsim.Faults{DropRate: 1})
	s.ResetJournal()
	req, _ := http.NewRequest(http.MethodGet, s.URL()+pfxPath, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := s.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped connection answered %d", resp.StatusCode)
	}
	// The client sees the connection close before the handler's journal entry is written: wait for it.
	testutil.Eventually(t, "the dropped request in the journal", 10*time.Second, func() error {
		if j := s.Journal(); len(j) == 0 || j[0].Status != 0 || j[0].TenantID != tenantID {
			return fmt.Errorf("journal %+v, want the dropped request with status 0", j)
		}
		return nil
	})
}

func TestFaultChoiceFollowsTheSeed(t *testing.T) {
	sequence := func(seed int64) string {
		cfg := baseConfig()
		cfg.Seed = seed
		cfg.Faults = graphsim.Faults{ErrorRate: 0.5}
		s := start(t, cfg)
		token := secretToken(t, s)
		var statuses []int
		for range 20 {
			statuses = append(statuses, call(t, s, token, http.MethodGet, pfxPath, nil).status)
		}
		return fmt.Sprint(statuses)
	}
	a, b := sequence(11), sequence(11)
	if a != b {
		t.Fatalf("same seed, different faults:\n%s\n%s", a, b)
	}
	if !strings.Contains(a, "200") || !strings.Contains(a, "503") {
		t.Fatalf("a 0.5 error rate gave %s", a)
	}
}
