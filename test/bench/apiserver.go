package main

import (
	"context"
	"fmt"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

// The API server's own count of requests (apiserver_request_total) by verb and resource tells the
// resources' requests apart from the ClusterGraphConnection's: the operator's rest_client_requests_total
// has one count for every controller, and at the steady scenario's short resync period the connection's
// check (every min(resync period, 10 min)) ran about as often as a resource's resync.

// apiserverCounter scrapes the API server's /metrics as cluster admin.
type apiserverCounter struct{ rest rest.Interface }

func newAPIServerCounter(cfg *rest.Config) (*apiserverCounter, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &apiserverCounter{rest: cs.RESTClient()}, nil
}

// requests returns apiserver_request_total summed by "VERB resource[/subresource]" (group left out).
func (a *apiserverCounter) requests(ctx context.Context) (map[string]float64, error) {
	raw, err := a.rest.Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("parsing the API server's metrics: %w", err)
	}
	return apiserverRequestCounts(families), nil
}

func apiserverRequestCounts(families map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	f := families["apiserver_request_total"]
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		op := label(m, "verb") + " " + label(m, "resource")
		if sub := label(m, "subresource"); sub != "" {
			op += "/" + sub
		}
		if g := label(m, "group"); g == intunev1alpha1.GroupVersion.Group {
			op += " (" + g + ")"
		}
		out[op] += m.GetCounter().GetValue()
	}
	return out
}

// resyncRequest reports whether a counted request ("VERB resource[/sub] (group)") is one a
// UserPfxCertificate pass can make: on the operator's resource kinds other than the connections (their
// own controller reads and patches them), claims, Secrets, ConfigMaps and Events. WATCH and LIST are the
// caches' (the benchmark's own watch is one of them), not a pass's.
func resyncRequest(op string) bool {
	verb, target, _ := strings.Cut(op, " ")
	if verb == "WATCH" || verb == "LIST" {
		return false
	}
	resource, _, _ := strings.Cut(target, " ")
	resource, _, _ = strings.Cut(resource, "/")
	switch {
	case strings.HasSuffix(target, "("+intunev1alpha1.GroupVersion.Group+")"):
		return resource != "clustergraphconnections" && resource != "graphconnections"
	case resource == "secrets", resource == "configmaps", resource == "events":
		return true
	}
	return false
}

// countsSince subtracts the earlier scrape, keeping only what grew.
func countsSince(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for op, v := range after {
		if d := v - before[op]; d > 0 {
			out[op] = d
		}
	}
	return out
}
