// Package monitoring tests the alerts (config/prometheus/prometheusrule.yaml) and the Grafana dashboard
// (config/grafana/dashboard.json): every series they and the promtool unit tests name is one the operator
// registers in the registry its /metrics endpoint serves, so renaming a metric fails here; and the alerts
// behave as their unit tests say under `promtool test rules`.
package monitoring

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	// The operator's metrics register themselves in controller-runtime's registry, which the manager serves
	// on /metrics: the Graph client's, the certificate series and (through the controllers' builder)
	// controller-runtime's reconcile and workqueue series.
	_ "github.com/certops/intune-cert-operator/internal/controller"
	_ "github.com/certops/intune-cert-operator/internal/graph"
	"github.com/certops/intune-cert-operator/internal/monitoring"
	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/toolbin"
)

func TestMain(m *testing.M) {
	// As main.go does.
	ctrlmetrics.Registry.MustRegister(monitoring.NewConnectionCollector(fake.NewClientBuilder().WithScheme(testutil.Scheme()).Build()))
	os.Exit(m.Run())
}

func repoFile(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), path))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// probe is a collector describing one name with a help text and labels nobody else uses.
type probe struct{ desc *prometheus.Desc }

func (p probe) Describe(ch chan<- *prometheus.Desc) { ch <- p.desc }
func (p probe) Collect(chan<- prometheus.Metric)    {}

// registered reports whether the operator's registry has a metric of this exact name: registering another
// descriptor of that name with other labels and help fails with a conflict only then.
func registered(name string) bool {
	p := probe{prometheus.NewDesc(name, "test/monitoring probe", []string{"test_monitoring_probe"}, nil)}
	err := ctrlmetrics.Registry.Register(p)
	if err == nil {
		ctrlmetrics.Registry.Unregister(p)
		return false
	}
	var already prometheus.AlreadyRegisteredError
	return errors.As(err, &already) || strings.Contains(err.Error(), "same fully-qualified name")
}

// exported reports whether a series name is exported: a metric's own name, or a histogram's or summary's
// _bucket, _sum or _count.
func exported(series string) bool {
	if registered(series) {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(series, suffix); ok && registered(base) {
			return true
		}
	}
	return false
}

func TestProbeTellsRegisteredNames(t *testing.T) {
	for _, name := range []string{"intune_graph_requests_total", "intune_certificate_ready_status", monitoring.ConnectionReadyName,
		"controller_runtime_reconcile_time_seconds_bucket"} {
		if !exported(name) {
			t.Errorf("%s is not found in the registry", name)
		}
	}
	for _, name := range []string{"intune_graph_requests", "intune_no_such_metric_total", "controller_runtime_reconcile_time_seconds_total"} {
		if exported(name) {
			t.Errorf("%s is found in the registry", name)
		}
	}
}

var (
	// Series of the operator (and of controller-runtime inside it) that queries may use.
	operatorSeries = regexp.MustCompile(`\b(?:intune|controller_runtime|workqueue)_[a-z0-9_]+\b`)
	// Anything else shaped like a series name: queries must not depend on other exporters.
	seriesShaped = regexp.MustCompile(`\b[a-zA-Z_:][a-zA-Z0-9_:]*_(?:total|seconds|bucket|count|sum|status|info|bytes)\b`)
)

// checkQuery fails when a query names no operator series, a series the operator does not export, or a
// series of another exporter.
func checkQuery(t *testing.T, where, query string) {
	t.Helper()
	names := operatorSeries.FindAllString(query, -1)
	if len(names) == 0 && !strings.HasPrefix(strings.TrimSpace(query), "vector(") {
		t.Errorf("%s: %q names no series of the operator", where, query)
	}
	for _, name := range names {
		if !exported(name) {
			t.Errorf("%s: %s is not a series the operator exports", where, name)
		}
	}
	for _, name := range seriesShaped.FindAllString(query, -1) {
		if !slices.Contains(names, name) {
			t.Errorf("%s: %s is not a series of the operator", where, name)
		}
	}
}

type rule struct {
	Alert       string            `json:"alert"`
	Record      string            `json:"record"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type ruleGroups struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []rule `json:"rules"`
	} `json:"groups"`
}

// prometheusRule is config/prometheus/prometheusrule.yaml and its spec, the groups promtool reads.
func prometheusRule(t *testing.T) (ruleGroups, []byte) {
	t.Helper()
	var obj struct {
		Kind string          `json:"kind"`
		Spec json.RawMessage `json:"spec"`
	}
	if err := yaml.Unmarshal(repoFile(t, "config/prometheus/prometheusrule.yaml"), &obj); err != nil || obj.Kind != "PrometheusRule" {
		t.Fatalf("config/prometheus/prometheusrule.yaml is not a PrometheusRule (%v)", err)
	}
	var groups ruleGroups
	if err := yaml.UnmarshalStrict(obj.Spec, &groups); err != nil {
		t.Fatalf("spec of config/prometheus/prometheusrule.yaml: %v", err)
	}
	specYAML, err := yaml.JSONToYAML(obj.Spec)
	if err != nil {
		t.Fatal(err)
	}
	return groups, specYAML
}

func alerts(t *testing.T) []rule {
	groups, _ := prometheusRule(t)
	var out []rule
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out = append(out, r)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("config/prometheus/prometheusrule.yaml has no alerts")
	}
	return out
}

func TestAlertsUseOnlyExportedSeries(t *testing.T) {
	for _, a := range alerts(t) {
		checkQuery(t, "alert "+a.Alert, a.Expr)
	}
}

// The promtool unit tests feed series the operator really exports.
func TestRuleTestsUseOnlyExportedSeries(t *testing.T) {
	var tests struct {
		Tests []struct {
			InputSeries []struct {
				Series string `json:"series"`
			} `json:"input_series"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(repoFile(t, "test/monitoring/testdata/rules_test.yaml"), &tests); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests.Tests {
		for _, s := range tc.InputSeries {
			name, _, _ := strings.Cut(s.Series, "{")
			if !exported(name) {
				t.Errorf("rules_test.yaml feeds %s, which the operator does not export", name)
			}
		}
	}
}

func TestEveryAlertHasASeverityARunbookAndAUnitTest(t *testing.T) {
	runbook := string(repoFile(t, "docs/runbooks/alerts.md"))
	tests := string(repoFile(t, "test/monitoring/testdata/rules_test.yaml"))
	const runbookBase = "https://github.com/certops/intune-cert-operator/blob/main/docs/runbooks/alerts.md#"
	for _, a := range alerts(t) {
		if s := a.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("alert %s: severity %q, want warning or critical", a.Alert, s)
		}
		if a.Annotations["summary"] == "" || a.Annotations["description"] == "" {
			t.Errorf("alert %s lacks a summary or a description", a.Alert)
		}
		if want := runbookBase + strings.ToLower(a.Alert); a.Annotations["runbook_url"] != want {
			t.Errorf("alert %s: runbook_url %q, want %q", a.Alert, a.Annotations["runbook_url"], want)
		}
		if !strings.Contains(runbook, "\n## "+a.Alert+"\n") {
			t.Errorf("docs/runbooks/alerts.md has no section \"## %s\"", a.Alert)
		}
		if !strings.Contains(tests, "alertname: "+a.Alert+"\n    exp_alerts:\n    - ") {
			t.Errorf("rules_test.yaml has no test in which %s fires", a.Alert)
		}
	}
}

// promtool checks the rules and runs their unit tests (testdata/rules_test.yaml).
func TestPromtoolRules(t *testing.T) {
	promtool, err := toolbin.Path("promtool")
	if err != nil {
		t.Fatal(err)
	}
	_, spec := prometheusRule(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), spec, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules_test.yaml"), repoFile(t, "test/monitoring/testdata/rules_test.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "rules_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

type dashboard struct {
	Title      string `json:"title"`
	UID        string `json:"uid"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func TestDashboardUsesOnlyExportedSeries(t *testing.T) {
	var d dashboard
	if err := json.Unmarshal(repoFile(t, "config/grafana/dashboard.json"), &d); err != nil {
		t.Fatalf("config/grafana/dashboard.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard needs a uid and a title")
	}
	var walk func(panels []panel)
	count := 0
	walk = func(panels []panel) {
		for _, p := range panels {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for i, target := range p.Targets {
				checkQuery(t, fmt.Sprintf("panel %q query %d", p.Title, i), target.Expr)
				count++
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(string); ok && v.Type == "query" {
			checkQuery(t, "variable "+v.Name, q)
		}
	}
	// What the dashboard is for: each of these series is charted.
	all, _ := json.Marshal(d.Panels)
	for _, series := range []string{"intune_graph_requests_total", "intune_graph_throttled_total",
		"intune_certificate_expiration_timestamp_seconds", "controller_runtime_reconcile_time_seconds_bucket",
		"intune_certificate_ready_status", monitoring.ConnectionReadyName} {
		if !strings.Contains(string(all), series) {
			t.Errorf("the dashboard charts no %s", series)
		}
	}
	if count == 0 {
		t.Fatal("the dashboard has no queries")
	}
}
