package stack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// bearerToken matches a JWT (header.payload.): what an access token or client assertion looks like.
var bearerToken = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.`)

// minSecretLength keeps the scan meaningful: a short value would be found by chance in any log.
const minSecretLength = 8

// LeakScan looks for secret material where the operator must never put it: the log of every operator
// process the stack ran, every Event, every certops resource (spec and status) and the /metrics of every
// operator process still running. secrets maps a description ("the PFX password") to its value; JWT-looking
// bearer tokens are looked for as well. It returns one finding per leak, naming where and what but never
// the value. An error means the evidence could not be gathered, or some of it was empty, which would make
// the scan prove nothing.
func (s *Stack) LeakScan(ctx context.Context, secrets map[string]string) ([]string, error) {
	for what, value := range secrets {
		if len(value) < minSecretLength {
			return nil, fmt.Errorf("leak scan: %s is %d bytes; use at least %d so a match means a leak", what, len(value), minSecretLength)
		}
	}
	evidence := map[string]string{}
	for path, text := range s.OperatorLogs() {
		evidence["operator log "+filepath.Base(path)] = text
	}
	for what, args := range map[string][]string{
		"events":   {"get", "events", "-A", "-o", "yaml"},
		"statuses": {"get", "certops", "-A", "-o", "yaml"},
	} {
		out, err := s.KubectlRun(ctx, args...)
		if err != nil {
			return nil, fmt.Errorf("leak scan: reading %s: %w", what, err)
		}
		evidence[what] = out
	}
	// A follower replica has made no Graph call yet, but some running process must have.
	withGraphMetrics := false
	for name, url := range s.runningMetricsURLs() {
		text, err := scrapeText(url)
		if err != nil {
			return nil, fmt.Errorf("leak scan: %w", err)
		}
		withGraphMetrics = withGraphMetrics || strings.Contains(text, "intune_graph_requests_total")
		evidence["metrics of "+name] = text
	}
	if !withGraphMetrics {
		return nil, fmt.Errorf("leak scan: no running operator process has intune_graph_requests_total in its metrics")
	}

	var findings []string
	for where, text := range evidence {
		if strings.TrimSpace(text) == "" {
			return nil, fmt.Errorf("leak scan: %s is empty, so scanning it would prove nothing", where)
		}
		for what, value := range secrets {
			if strings.Contains(text, value) {
				findings = append(findings, fmt.Sprintf("%s contains %s", where, what))
			}
		}
		if m := bearerToken.FindString(text); m != "" {
			findings = append(findings, fmt.Sprintf("%s contains a bearer token (%s...)", where, m[:12]))
		}
	}
	sort.Strings(findings)
	return findings, nil
}

// runningMetricsURLs are the metrics endpoints of the operator processes still running, by process name.
func (s *Stack) runningMetricsURLs() map[string]string {
	urls := map[string]string{}
	if s.Operator != nil && s.Operator.Running() {
		urls[s.Operator.Name] = s.MetricsURL
	}
	for _, r := range s.replicas {
		if r.Running() {
			urls[r.Name] = r.MetricsURL
		}
	}
	return urls
}

func scrapeText(url string) (string, error) {
	c := &http.Client{Timeout: 30 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return "", fmt.Errorf("scraping %s: %w", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("scraping %s: %s %v", url, res.Status, err)
	}
	return string(body), nil
}
