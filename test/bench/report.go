package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/stack"
)

// Target sizes of the memory target (issue 8): the operator's peak RSS counts at this scale.
const (
	rssTargetMiB       = 120
	rssTargetN         = 10000
	rssTargetUnrelated = 20000
)

// results is everything a run measured; the JSON output is this struct.
type results struct {
	Machine machine   `json:"machine"`
	Command string    `json:"command"`
	Started time.Time `json:"started"`
	Config  *config   `json:"config"`
	// OperatorEnv is what config/manager/manager.yaml gives the operator (GOMEMLIMIT), as the stack runs it.
	OperatorEnv []string        `json:"operatorEnv"`
	Import      *importResult   `json:"import,omitempty"`
	Steady      *steadyResult   `json:"steady,omitempty"`
	Rotation    *rotationResult `json:"rotation,omitempty"`
	Latency     *latencyResult  `json:"latency,omitempty"`
	Fairness    *fairnessResult `json:"fairness,omitempty"`
	Set         *setResult      `json:"set,omitempty"`
	Seen        *seenResult     `json:"seen,omitempty"`
	// Empty is the operator before the cluster was populated (memory.go).
	Empty   *operatorUsage `json:"emptyOperator,omitempty"`
	Targets []target       `json:"targets"`
}

type machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpuModel"`
	MemoryGiB string `json:"memoryGiB"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
}

// target is one of the targets, as measured.
type target struct {
	Name     string `json:"name"`
	Measured string `json:"measured"`
	// Met is "met", "not met", or "not measured" (the run was too small or skipped the scenario).
	Met string `json:"met"`
}

func newResults(cfg *config) *results {
	env, _ := stack.DeploymentEnv(testutil.RepoRoot()) // the stack fails the run if it cannot read it
	return &results{Machine: thisMachine(), Started: time.Now().UTC().Truncate(time.Second), Config: cfg, OperatorEnv: env,
		Command: "go run ./test/bench " + strings.Join(os.Args[1:], " ")}
}

func thisMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				m.CPUModel = strings.TrimSpace(value)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kib int64
		if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kib); err == nil {
			m.MemoryGiB = fmt.Sprintf("%.1f", float64(kib)/(1<<20))
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

func (r *results) writeJSON(path string) error {
	r.Targets = r.targets()
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the results: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the results: %w", err)
	}
	return nil
}

func metText(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

// targets evaluates the targets against what this run measured.
func (r *results) targets() []target {
	var out []target
	notMeasured := func(name, why string) { out = append(out, target{Name: name, Measured: why, Met: "not measured"}) }
	const (
		importTime   = "import within 1.15x of the lower bound"
		oneWrite     = "exactly 1 Graph write per new certificate"
		throttled    = "429s under 1% of Graph requests"
		steadyWrites = "steady state: 0 Graph writes"
		steadyReads  = "steady state: Graph reads per resync period at most ceil(N / page size) + 1 for the tenant"
		steadyKube   = "steady state: at most 1 Kubernetes API request per unchanged resync"
		rotation     = "rotation: 2 writes per rotated certificate (POST new + DELETE old)"
		rss          = "operator peak RSS under 120 MiB at N=10000 with 20000 unrelated Secrets"
		latency      = "apply-to-Ready p99 under 1 s at zero Graph latency"
		fairB        = "fairness: another namespace's certificate Ready within 10 token intervals while one namespace imports"
		fairA        = "fairness: the importing namespace's import within 1.15x of the write bound"
	)
	if i := r.Import; i != nil && i.Seeded {
		out = append(out,
			target{importTime, fmt.Sprintf("%.1f s to adopt %d pre-seeded records (-seed: no write bound)", i.Seconds, i.N), "not measured"},
			target{oneWrite, fmt.Sprintf("%d writes for %d adopted records (-seed: 0 expected)", i.Graph.Writes, i.N), metText(i.Graph.Writes == 0)})
	} else if i != nil {
		out = append(out,
			target{importTime, fmt.Sprintf("%.1f s = %.2fx of %.1f s", i.Seconds, i.Ratio, i.LowerBoundSeconds), metText(i.Ratio <= 1.15)},
			target{oneWrite, fmt.Sprintf("%d writes (%d POST) for %d certificates", i.Graph.Writes, i.Graph.ByOperation["POST userPfxCertificates"], i.N),
				metText(i.Graph.Writes == i.N && i.Graph.ByOperation["POST userPfxCertificates"] == i.N)})
	} else {
		notMeasured(importTime, "import not run")
		notMeasured(oneWrite, "import not run")
	}
	requests, throttles := 0, 0
	for _, g := range r.graphCounts() {
		requests += g.Requests
		throttles += g.Throttled
	}
	if requests > 0 {
		share := float64(throttles) / float64(requests)
		out = append(out, target{throttled, fmt.Sprintf("%d of %d (%.2f%%), all scenarios", throttles, requests, 100*share), metText(share < 0.01)})
	} else {
		notMeasured(throttled, "no Graph request")
	}
	if s := r.Steady; s != nil && s.Reconcile.NotObtained != "" {
		// Only the operator's metrics count the resyncs every steady target is judged against: without
		// them a target is not met if what was measured already fails it, and otherwise unknown, never met.
		resyncs := "resyncs " + notObtained(s.Reconcile.NotObtained)
		out = append(out,
			target{steadyWrites, fmt.Sprintf("%d writes in %.0f s; %s", s.Graph.Writes, s.WindowSeconds, resyncs), notMetOrUnknown(s.Graph.Writes > 0)},
			target{steadyReads, fmt.Sprintf("%.1f reads per period for %d certificates (bound %d); %s", s.ReadsPerPeriod, s.Resources, s.ReadBound, resyncs),
				notMetOrUnknown(s.ReadsPerPeriod > float64(s.ReadBound))},
			target{steadyKube, resyncs, "not measured"})
	} else if s != nil {
		out = append(out,
			target{steadyWrites, fmt.Sprintf("%d writes in %.0f s (%d resyncs)", s.Graph.Writes, s.WindowSeconds, s.Resyncs), metText(s.Graph.Writes == 0 && s.Resyncs > 0)},
			target{steadyReads, fmt.Sprintf("%.1f reads per period for %d certificates (bound %d; %d reads in %.0f s)",
				s.ReadsPerPeriod, s.Resources, s.ReadBound, s.Graph.CertificateReads, s.WindowSeconds),
				metText(s.Resyncs > 0 && s.ReadsPerPeriod <= float64(s.ReadBound))},
			target{steadyKube, fmt.Sprintf("%.2f per resync (API server's count of the resources' kinds: %s)", s.ResyncRequestsPerResync, perOperationPer(s.ResyncRequests, s.Resyncs)),
				metText(s.Resyncs > 0 && s.ResyncRequestsPerResync <= 1)})
	} else {
		notMeasured(steadyWrites, "steady not run")
		notMeasured(steadyReads, "steady not run")
		notMeasured(steadyKube, "steady not run")
	}
	if ro := r.Rotation; ro != nil {
		out = append(out, target{rotation, fmt.Sprintf("%.2f writes per rotated certificate; %d of %d old records left", ro.WritesPerRotated, ro.OldRecordsLeft, ro.Rotated),
			metText(ro.Graph.Writes == 2*ro.Rotated && ro.OldRecordsLeft == 0 && ro.NewRecords == ro.Rotated)})
	} else {
		notMeasured(rotation, "rotation not run")
	}
	if peak := r.peakRSS(); peak > 0 {
		measured := fmt.Sprintf("%.1f MiB at N=%d, %d unrelated Secrets", peak, r.Config.N, r.Config.Unrelated)
		if r.Config.N >= rssTargetN && r.Config.Unrelated >= rssTargetUnrelated && r.Import != nil {
			out = append(out, target{rss, measured, metText(peak < rssTargetMiB)})
		} else {
			out = append(out, target{rss, measured + " (smaller than the target's scale)", "not measured"})
		}
	} else {
		notMeasured(rss, "no scenario measured the operator")
	}
	if l := r.Latency; l != nil {
		out = append(out, target{latency, fmt.Sprintf("p99 %.3f s (p50 %.3f s, %d tries)", l.P99Seconds, l.P50Seconds, l.Tries), metText(l.P99Seconds < 1)})
	} else {
		notMeasured(latency, "latency not run")
	}
	if f := r.Fairness; f != nil {
		backlog := slices.Min(f.APendingAtB)
		out = append(out,
			target{fairB, fmt.Sprintf("max %.1f intervals (%.3f s; interval %.0f ms) over %s, while at least %d of A's %d certificates were still to import",
				f.BMaxIntervals, f.BMaxSeconds, 1000*f.IntervalSeconds, count(f.Tries, "try", "tries"), backlog, f.N), metText(f.BMaxIntervals <= fairBTarget && backlog > 0)},
			target{fairA, fmt.Sprintf("%.1f s = %.2fx of %.1f s", f.ASeconds, f.Ratio, f.WriteBoundSeconds), metText(f.Ratio <= 1.15)})
	} else {
		notMeasured(fairB, "fairness not run")
		notMeasured(fairA, "fairness not run")
	}
	out = append(out, r.memoryTargets()...) // memory.go
	out = append(out, r.seenTargets()...)   // seen.go
	return append(out, r.setTargets()...)   // set.go
}

func (r *results) graphCounts() []graphCounts {
	var out []graphCounts
	if r.Import != nil {
		out = append(out, r.Import.Graph)
	}
	if r.Latency != nil {
		out = append(out, r.Latency.Graph)
	}
	if r.Rotation != nil {
		out = append(out, r.Rotation.Graph)
	}
	if r.Steady != nil {
		out = append(out, r.Steady.WarmUpGraph, r.Steady.Graph)
	}
	if r.Fairness != nil {
		out = append(out, r.Fairness.Graph)
	}
	if r.Set != nil {
		out = append(out, r.Set.Graph, r.Set.TemplateGraph)
	}
	if r.Seen != nil {
		out = append(out, r.Seen.Graph)
	}
	return out
}

// peakRSS is the largest VmHWM of the operator processes the scenarios measured.
func (r *results) peakRSS() float64 {
	peak := 0.0
	if r.Import != nil {
		peak = max(peak, r.Import.Operator.PeakRSSMiB)
	}
	if r.Rotation != nil {
		peak = max(peak, r.Rotation.Operator.PeakRSSMiB)
	}
	if r.Steady != nil {
		peak = max(peak, r.Steady.Operator.PeakRSSMiB)
	}
	return peak
}

// notObtained is what the report says for a figure the operator's /metrics did not give (why: the
// scrape's error).
func notObtained(why string) string { return "not obtained: " + why }

// notMetOrUnknown is the result of a target whose deciding figure was not obtained: "not met" when what
// was measured already fails it, else "not measured".
func notMetOrUnknown(failed bool) string {
	if failed {
		return "not met"
	}
	return "not measured"
}

// heapText is the Go heap in use at the end, or why the scrape that gives it failed.
func heapText(u operatorUsage) string {
	if u.MetricsNotObtained != "" {
		return notObtained(u.MetricsNotObtained)
	}
	return fmt.Sprintf("%.1f MiB", u.HeapInuseMiB)
}

// kubeText is the operator's API server requests (rest_client_requests_total) per n, or why they are missing.
func kubeText(u operatorUsage, n int) string {
	if u.MetricsNotObtained != "" {
		return notObtained(u.MetricsNotObtained)
	}
	return perOperation(u.kubePer(n))
}

// connectionChecks counts the ClusterGraphConnection's health reads, which belong to no certificate.
func connectionChecks(n int) string {
	if n == 1 {
		return "1 connection check"
	}
	return fmt.Sprintf("%d connection checks", n)
}

// markdown is the results table and the targets table.
func (r *results) markdown() string {
	var b strings.Builder
	c := r.Config
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), %s GiB memory, Linux %s, %s\n\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemoryGiB, r.Machine.Kernel, r.Machine.Go)
	fmt.Fprintf(&b, "Command: `%s`\n\n", r.Command)
	applied := ""
	if c.UnrelatedApplied {
		applied = " with kubectl's last-applied annotation"
	}
	fairness := ""
	if c.ran("fairness") {
		fairness = fmt.Sprintf(" (fairness: namespace A imports %d, namespace B applies %d)", c.FairN, c.FairTries)
	}
	fmt.Fprintf(&b, "Setup: N=%d%s, %d unrelated Secrets of %d KiB%s; graphsim latency %s, %d writes per %s per app; "+
		"writeRequestsPer20Seconds=%d; operator --max-concurrent-reconciles=%d --kube-api-qps=%g --kube-api-burst=%d, "+
		"environment from config/manager/manager.yaml: %s\n\n",
		c.N, fairness, c.Unrelated, c.UnrelatedSize>>10, applied, c.Latency, c.AppWrites, c.Window, c.WriteBudget, c.Concurrency, c.KubeQPS, c.KubeBurst,
		strings.Join(r.OperatorEnv, " "))

	b.WriteString("| Scenario | Measure | Value |\n|---|---|---|\n")
	row := func(scenario, measure, format string, args ...any) {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", scenario, measure, fmt.Sprintf(format, args...))
	}
	if e := r.Empty; e != nil {
		row("0 empty", "operator before the cluster is populated (its connection Ready): peak RSS (VmHWM); RSS; the binary's pages; Go heap in use",
			"%.1f MiB; %.1f MiB; %.1f MiB; %s", e.PeakRSSMiB, e.RSSMiB, e.RSSFileMiB, heapText(*e))
	}
	if i := r.Import; i != nil {
		row("1 import", "apply → all Ready", "%.1f s for %d certificates (%d records in graphsim)", i.Seconds, i.N, i.RecordsImported)
		if i.Seeded {
			row("1 import", "-seed: graphsim held every record before the import", "an adoption, measured for memory: no write bound applies")
		} else {
			row("1 import", "lower bound max(N / write rate, N × latency / concurrency)", "max(%.1f, %.1f) = %.1f s; ratio **%.2f**", i.WriteBoundSeconds, i.LatencyBoundSeconds, i.LowerBoundSeconds, i.Ratio)
		}
		row("1 import", "Graph requests per certificate", "%s; plus %s", perOperation(i.PerCertificate), connectionChecks(i.Graph.ConnectionChecks))
		row("1 import", "Kubernetes API requests per certificate", "%s", kubeText(i.Operator, i.N))
		row("1 import", "429s", "%d of %d requests (%.2f%%)", i.Graph.Throttled, i.Graph.Requests, 100*i.Graph.throttledShare())
		usageRows(row, "1 import", i.Operator, i.Reconcile)
	}
	if s := r.Steady; s != nil {
		row("2 steady", "resync period; resources", "%s; %d", s.ResyncPeriod, s.Resources)
		row("2 steady", "warm-up after restart (each resource reconciled once)", "%.0f s; Graph requests: %s", s.WarmUpSeconds, perOperationCounts(s.WarmUpGraph.ByOperation))
		if s.Reconcile.NotObtained != "" {
			row("2 steady", "window; resyncs", "%.0f s; resyncs %s", s.WindowSeconds, notObtained(s.Reconcile.NotObtained))
		} else {
			row("2 steady", "window; resyncs", "%.0f s; %d resyncs (%.2f per resource per period)", s.WindowSeconds, s.Resyncs, s.ResyncsPerPeriod)
		}
		row("2 steady", "Graph writes", "%d", s.Graph.Writes)
		row("2 steady", "Graph reads of certificates per resync period (listing pages, records, users)", "**%.1f** (bound ceil(%d / %d) + 1 = %d); %s; plus %s",
			s.ReadsPerPeriod, s.Resources, s.PageSize, s.ReadBound, perOperationCounts(s.Graph.ByOperation), connectionChecks(s.Graph.ConnectionChecks))
		if s.Reconcile.NotObtained != "" { // the API server's counts stand, but not the resyncs they are divided by
			row("2 steady", "Kubernetes API requests in the window (the API server's count, on the kinds a pass touches)", "%s; resyncs %s",
				perOperationPer(s.ResyncRequests, 1), notObtained(s.Reconcile.NotObtained))
		} else {
			row("2 steady", "Kubernetes API requests per resync (the API server's count, on the kinds a pass touches)", "**%.2f**: %s", s.ResyncRequestsPerResync, perOperationPer(s.ResyncRequests, s.Resyncs))
		}
		row("2 steady", "the operator's API requests per resync, every controller (rest_client_requests_total)", "%s; the API server's count of the rest (every client): %s",
			kubeText(s.Operator, s.Resyncs), otherRequests(s.APIServer))
		row("2 steady", "429s", "%d of %d requests", s.Graph.Throttled, s.Graph.Requests)
		usageRows(row, "2 steady", s.Operator, s.Reconcile)
	}
	if ro := r.Rotation; ro != nil {
		row("3 rotation", "Secrets changed → all Ready with new thumbprints", "%.1f s for %d certificates (write bound %.1f s, ratio %.2f)", ro.Seconds, ro.Rotated, ro.WriteBoundSeconds, ro.Ratio)
		row("3 rotation", "Graph requests per rotated certificate", "%s", perOperation(ro.PerRotated))
		row("3 rotation", "writes per rotated certificate", "%.2f; graphsim: %d new records, %d old left", ro.WritesPerRotated, ro.NewRecords, ro.OldRecordsLeft)
		row("3 rotation", "Kubernetes API requests per rotated certificate", "%s", kubeText(ro.Operator, ro.Rotated))
		row("3 rotation", "429s", "%d of %d requests", ro.Graph.Throttled, ro.Graph.Requests)
		usageRows(row, "3 rotation", ro.Operator, ro.Reconcile)
	}
	if f := r.Fairness; f != nil {
		row("5 fairness", "namespace A imports; namespace B applies one certificate at a time meanwhile", "A: %d certificates; B: %s, %s apart", f.N, count(f.Tries, "try", "tries"), fairBSpacing)
		row("5 fairness", "B: apply → Ready, in token intervals of the write budget (20 s / writeRequestsPer20Seconds)",
			"max **%.1f** intervals = %.3f s (interval %.1f ms); each try: %s", f.BMaxIntervals, f.BMaxSeconds, 1000*f.IntervalSeconds, seconds(f.BSeconds))
		row("5 fairness", "A's requests queued in the operator when B applied; A's certificates not yet Ready when B was", "%s; %s", ints(f.AQueuedAtB), ints(f.APendingAtB))
		row("5 fairness", "A: apply → all Ready; write bound (A's and B's writes at the per-app rate)", "%.1f s; %.1f s; ratio **%.2f** (%d records in graphsim)", f.ASeconds, f.WriteBoundSeconds, f.Ratio, f.RecordsImported)
		row("5 fairness", "Graph requests per certificate", "%s; plus %s", perOperation(f.PerCertificate), connectionChecks(f.Graph.ConnectionChecks))
		row("5 fairness", "429s", "%d of %d requests", f.Graph.Throttled, f.Graph.Requests)
		usageRows(row, "5 fairness", f.Operator, f.Reconcile)
	}
	if s := r.Set; s != nil {
		s.rows(row)
	}
	if s := r.Seen; s != nil {
		s.rows(row)
	}
	if l := r.Latency; l != nil {
		row("4 latency", "create → Ready, zero Graph latency", "p50 %.0f ms, p99 %.0f ms, max %.0f ms (%d tries, %s apart)", 1000*l.P50Seconds, 1000*l.P99Seconds, 1000*l.MaxSeconds, l.Tries, l.Spacing)
	}

	b.WriteString("\n| Target | Measured | Result |\n|---|---|---|\n")
	for _, t := range r.targets() {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", t.Name, t.Measured, t.Met)
	}
	return b.String()
}

func usageRows(row func(string, string, string, ...any), scenario string, u operatorUsage, rec reconcileStats) {
	// The two peaks need not coincide: the binary's pages are still being paged in when the start of a
	// populated cluster drives the anonymous memory to its peak.
	row(scenario, "operator peak RSS (VmHWM); peak anonymous (sampled); the binary's pages at end; Go heap in use at end; CPU",
		"%.1f MiB; %.1f MiB; %.1f MiB; %s; %.1f s", u.PeakRSSMiB, u.PeakRSSAnonMiB, u.RSSFileMiB, heapText(u), u.CPUSeconds)
	if rec.NotObtained != "" {
		row(scenario, "reconcile p50 / p99", "%s", notObtained(rec.NotObtained))
		return
	}
	if rec.Count == 0 {
		row(scenario, "reconcile p50 / p99", "no reconcile")
		return
	}
	row(scenario, "reconcile p50 / p99", "%.3f s / %.3f s (%d reconciles)", rec.P50Seconds, rec.P99Seconds, rec.Count)
}

// perOperation prints "POST userPfxCertificates 1.00, ..." sorted by operation.
func perOperation(m map[string]float64) string {
	if len(m) == 0 {
		return "none"
	}
	var ops []string
	for op := range m {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	parts := make([]string, len(ops))
	for i, op := range ops {
		parts[i] = fmt.Sprintf("%s %.2f", op, m[op])
	}
	return strings.Join(parts, ", ")
}

// seconds prints "0.812, 0.905 s".
func seconds(values []float64) string {
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = fmt.Sprintf("%.3f", v)
	}
	return strings.Join(parts, ", ") + " s"
}

// ints prints "1980, 1950".
func ints(values []int) string {
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, ", ")
}

// count prints "1 try", "5 tries".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// perOperationPer prints counts divided by n, by operation.
func perOperationPer(m map[string]float64, n int) string {
	out := map[string]float64{}
	for op, v := range m {
		out[op] = v / float64(max(n, 1))
	}
	return perOperation(out)
}

// otherRequests prints the API server's non-WATCH requests that are not a pass's, as counts.
func otherRequests(m map[string]float64) string {
	out := map[string]int{}
	for op, v := range m {
		if !resyncRequest(op) && !strings.HasPrefix(op, "WATCH ") {
			out[op] = int(v)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return perOperationCounts(out)
}
