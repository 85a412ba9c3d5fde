//go:build e2e

package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/stack"
)

// The metrics endpoint as deployed (--metrics-secure, the default): HTTPS, and only for a bearer token the
// API server authenticates and authorizes for GET /metrics, checked under the operator's generated RBAC.
func TestMetricsNeedAnAuthorizedToken(t *testing.T) {
	s := startStack(t, stack.Options{NoDefaultConnection: true})
	kubectl := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(kubectlOK(t, s, args...))
	}
	replica, err := s.StartReplica("secure-metrics", "--metrics-secure=true")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(replica.MetricsURL, "https://") {
		t.Fatalf("metrics URL %s is not HTTPS", replica.MetricsURL)
	}
	// controller-runtime serves a self-signed certificate when given none; what is tested here is who gets in.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	scrape := func(token string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, replica.MetricsURL, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}

	kubectl("create", "namespace", "monitoring")
	kubectl("create", "serviceaccount", "prometheus", "-n", "monitoring")
	token := kubectl("create", "token", "prometheus", "-n", "monitoring")

	if code, _ := scrape(""); code != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", code)
	}
	if code, _ := scrape("not-a-token"); code != http.StatusUnauthorized {
		t.Errorf("with a token the API server does not know: %d, want 401", code)
	}
	if code, body := scrape(token); code != http.StatusForbidden || !strings.Contains(body, "system:serviceaccount:monitoring:prometheus") {
		t.Errorf("with a token not bound to the reader role: %d %q, want 403 naming the user", code, body)
	}

	// The README's way in: bind the shipped reader role (named with the kustomize prefix) to the scraper.
	kubectl("apply", "-f", filepath.Join(testutil.RepoRoot(), "config", "rbac", "metrics_reader_role.yaml"))
	kubectl("create", "clusterrolebinding", "prometheus-metrics-reader", "--clusterrole=metrics-reader", "--serviceaccount=monitoring:prometheus")
	// A refusal is remembered for 30 s, so the binding takes effect within that.
	waitFor(t, "the bound scraper reads /metrics", func() error {
		code, body := scrape(token)
		if code != http.StatusOK {
			return fmt.Errorf("status %d", code)
		}
		if !strings.Contains(body, "# TYPE go_goroutines gauge") {
			return fmt.Errorf("no Go runtime metrics in the body")
		}
		return nil
	})
}
