package stack

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics scrapes the operator's metrics endpoint (served without TLS in the stack) and returns its
// metric families by name.
func (s *Stack) Metrics() (map[string]*dto.MetricFamily, error) {
	return ScrapeMetrics(s.MetricsURL, 30*time.Second)
}

// ScrapeMetrics reads a metrics endpoint within timeout (the body's reading too): only the named families
// when any are given (promhttp's name[] filter, which spares a large operator encoding and sending every
// certificate's series), else all of them. The text parser reads the body as it arrives.
func ScrapeMetrics(metricsURL string, timeout time.Duration, families ...string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if len(families) > 0 {
		metricsURL += "?" + url.Values{"name[]": families}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping the operator's metrics (timeout %s): %w", timeout, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping the operator's metrics: %s", res.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		return nil, fmt.Errorf("parsing the operator's metrics (timeout %s): %w", timeout, err)
	}
	return parsed, nil
}
