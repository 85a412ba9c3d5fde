package main

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/certops/intune-cert-operator/test/graphsim"
	"github.com/certops/intune-cert-operator/test/stack"
)

// graphCounts summarises graphsim's journal: what the operator asked Graph, as the service saw it.
type graphCounts struct {
	// Requests are Graph requests (under /beta); sign-in requests are counted apart.
	Requests  int `json:"requests"`
	Reads     int `json:"reads"`
	Writes    int `json:"writes"`
	Throttled int `json:"throttled429"`
	SignIn    int `json:"signIn"`
	// ConnectionChecks are the connection reconciler's one-record reads (graph.Ping), which belong to
	// no certificate; CertificateReads are the other reads.
	ConnectionChecks int `json:"connectionChecks"`
	CertificateReads int `json:"certificateReads"`
	// ByOperation counts requests by "METHOD resource", e.g. "POST userPfxCertificates", "GET users/{upn}".
	ByOperation map[string]int `json:"byOperation"`
}

func countJournal(entries []graphsim.Entry) graphCounts {
	c := graphCounts{ByOperation: map[string]int{}}
	for _, e := range entries {
		path, _, _ := strings.Cut(e.Path, "?")
		if !strings.HasPrefix(path, "/beta/") {
			c.SignIn++
			continue
		}
		c.Requests++
		op := operation(e.Method, path)
		if op == "GET userPfxCertificates" && strings.Contains(e.Path, "$top=1") {
			op = "GET userPfxCertificates?$top=1 (connection check)"
			c.ConnectionChecks++
		}
		c.ByOperation[op]++
		if e.Status == http.StatusTooManyRequests {
			c.Throttled++
		}
		switch e.Method {
		case http.MethodGet:
			c.Reads++
		default:
			c.Writes++
		}
	}
	c.CertificateReads = c.Reads - c.ConnectionChecks
	return c
}

// operation names a Graph request by method and resource, with ids replaced by a placeholder.
func operation(method, path string) string {
	segs := strings.Split(strings.TrimPrefix(path, "/beta/"), "/")
	switch {
	case strings.EqualFold(segs[0], "users"):
		return method + " users/{upn}"
	case len(segs) >= 2 && strings.EqualFold(segs[0], "deviceManagement") && strings.EqualFold(segs[1], "userPfxCertificates"):
		if len(segs) > 2 {
			return method + " userPfxCertificates/{id}"
		}
		return method + " userPfxCertificates"
	}
	return method + " " + segs[0]
}

// perCertificate divides every operation count by n, leaving out the connection's checks.
func (c graphCounts) perCertificate(n int) map[string]float64 {
	out := map[string]float64{}
	for op, v := range c.ByOperation {
		if !strings.HasSuffix(op, "(connection check)") {
			out[op] = float64(v) / float64(n)
		}
	}
	return out
}

// throttledShare is the fraction of Graph requests answered 429.
func (c graphCounts) throttledShare() float64 {
	if c.Requests == 0 {
		return 0
	}
	return float64(c.Throttled) / float64(c.Requests)
}

// journalAndReset fetches graphsim's journal and resets it, so the next scenario starts from zero.
func journalAndReset(s *stack.Stack) (graphCounts, error) {
	entries, err := journalEntriesAndReset(s)
	return countJournal(entries), err
}

func journalEntriesAndReset(s *stack.Stack) ([]graphsim.Entry, error) {
	entries, err := s.Journal()
	if err != nil {
		return nil, fmt.Errorf("reading graphsim's journal: %w", err)
	}
	return entries, resetJournal(s)
}

func resetJournal(s *stack.Stack) error {
	if err := s.Sim(http.MethodDelete, "journal", nil, nil); err != nil {
		return fmt.Errorf("resetting graphsim's journal: %w", err)
	}
	return nil
}

// histogram is a classic Prometheus histogram: cumulative counts per upper bound.
type histogram struct {
	count  uint64
	bounds []float64
	cum    []uint64
}

// controllerName is the name the operator registers its UserPfxCertificate controller under, the
// "controller" label of controller-runtime's metrics.
const controllerName = "UserPfxCertificate"

// reconcileHistogram reads controller_runtime_reconcile_time_seconds of the UserPfxCertificate controller.
func reconcileHistogram(families map[string]*dto.MetricFamily) histogram {
	f := families["controller_runtime_reconcile_time_seconds"]
	if f == nil {
		return histogram{} // no reconcile yet
	}
	for _, m := range f.GetMetric() {
		if label(m, "controller") != controllerName || m.GetHistogram() == nil {
			continue
		}
		h := histogram{count: m.GetHistogram().GetSampleCount()}
		for _, b := range m.GetHistogram().GetBucket() {
			h.bounds = append(h.bounds, b.GetUpperBound())
			h.cum = append(h.cum, b.GetCumulativeCount())
		}
		return h
	}
	return histogram{}
}

// kubeRequests sums rest_client_requests_total by method: the operator's requests to the API server
// (watches and lists included).
func kubeRequests(families map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	if f := families["rest_client_requests_total"]; f != nil {
		for _, m := range f.GetMetric() {
			out[label(m, "method")] += m.GetCounter().GetValue()
		}
	}
	return out
}

// gauge is the value of an unlabelled gauge, 0 when absent.
func gauge(families map[string]*dto.MetricFamily, name string) float64 {
	if f := families[name]; f != nil && len(f.GetMetric()) > 0 {
		return f.GetMetric()[0].GetGauge().GetValue()
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// since is the histogram of the observations made after before was scraped (same process).
func (h histogram) since(before histogram) histogram {
	if len(before.cum) != len(h.cum) || before.count > h.count {
		return h // the process restarted in between, or nothing was observed before
	}
	d := histogram{count: h.count - before.count, bounds: h.bounds, cum: make([]uint64, len(h.cum))}
	for i := range h.cum {
		d.cum[i] = h.cum[i] - before.cum[i]
	}
	return d
}

// quantile estimates the q-quantile as Prometheus's histogram_quantile does: linear interpolation inside
// the bucket that holds it. Above the last finite bound it returns that bound (a lower bound of the truth).
func (h histogram) quantile(q float64) float64 {
	if h.count == 0 {
		return 0 // no observation (reconcileStats.Count says so); JSON has no NaN
	}
	rank := q * float64(h.count)
	i := sort.Search(len(h.cum), func(i int) bool { return float64(h.cum[i]) >= rank })
	if i == len(h.cum) || math.IsInf(h.bounds[i], 1) {
		return h.bounds[len(h.bounds)-1]
	}
	lower, below := 0.0, uint64(0)
	if i > 0 {
		lower, below = h.bounds[i-1], h.cum[i-1]
	}
	inBucket := float64(h.cum[i] - below)
	if inBucket == 0 {
		return h.bounds[i]
	}
	return lower + (h.bounds[i]-lower)*(rank-float64(below))/inBucket
}

// reconcileStats are the quantiles of reconcile durations over a scenario.
type reconcileStats struct {
	Count      uint64  `json:"count"`
	P50Seconds float64 `json:"p50Seconds"`
	P99Seconds float64 `json:"p99Seconds"`
	// NotObtained is why the operator's /metrics could not be read at the scenario's start or end; the
	// figures above are then zero and mean nothing.
	NotObtained string `json:"notObtained,omitempty"`
}

// reconcileSince are the reconcile quantiles between two snapshots of the same operator process.
func reconcileSince(before, after snapshot) reconcileStats {
	if err := metricsErr(before, after); err != nil {
		return reconcileStats{NotObtained: err.Error()}
	}
	return after.reconcile.since(before.reconcile).stats()
}

func (h histogram) stats() reconcileStats {
	return reconcileStats{Count: h.count, P50Seconds: h.quantile(0.5), P99Seconds: h.quantile(0.99)}
}

// operatorUsage is the operator process's memory and CPU over a scenario.
type operatorUsage struct {
	// PeakRSSMiB is VmHWM at the end of the scenario: the peak since this operator process started.
	PeakRSSMiB float64 `json:"peakRSSMiB"`
	// PeakRSSAnonMiB is the sampled (every 250 ms) peak of RssAnon over the same time: VmHWM without
	// the binary's own pages.
	PeakRSSAnonMiB float64 `json:"peakRSSAnonMiB"`
	RSSMiB         float64 `json:"rssMiB"`
	RSSFileMiB     float64 `json:"rssFileMiB"`
	// HeapInuseMiB is the Go heap in use at the end (go_memstats_heap_inuse_bytes): RSS minus this is
	// the garbage collector's headroom, stacks and the runtime.
	HeapInuseMiB float64 `json:"heapInuseMiB"`
	// CPUSeconds is the user+system time the operator spent during the scenario.
	CPUSeconds float64 `json:"cpuSeconds"`
	// KubeRequests are the operator's API server requests during the scenario, by method.
	KubeRequests map[string]float64 `json:"kubeRequests"`
	// MetricsNotObtained is why the operator's /metrics could not be read at the scenario's start or end:
	// HeapInuseMiB and KubeRequests are then missing. The other figures come from /proc and stand.
	MetricsNotObtained string `json:"metricsNotObtained,omitempty"`
}

func usageSince(before, after snapshot) operatorUsage {
	const mib = 1 << 20
	u := operatorUsage{PeakRSSMiB: float64(after.proc.PeakRSS) / mib, RSSMiB: float64(after.proc.RSS) / mib,
		PeakRSSAnonMiB: float64(after.peakAnon) / mib, RSSFileMiB: float64(after.proc.RSSFile) / mib,
		HeapInuseMiB: after.heapInuse / mib, CPUSeconds: after.proc.CPUSeconds - before.proc.CPUSeconds,
		KubeRequests: map[string]float64{}}
	if err := metricsErr(before, after); err != nil {
		u.MetricsNotObtained, u.HeapInuseMiB, u.KubeRequests = err.Error(), 0, nil
		return u
	}
	for method, n := range after.kube {
		u.KubeRequests[method] = n - before.kube[method] // a restart in between is not compared
	}
	return u
}

// kubePer divides the API server requests by n.
func (u operatorUsage) kubePer(n int) map[string]float64 {
	out := map[string]float64{}
	for method, v := range u.KubeRequests {
		out[method] = v / float64(max(n, 1))
	}
	return out
}

// snapshot is what a scenario compares at its end with its start.
type snapshot struct {
	proc     stack.ProcStats
	peakAnon int64
	// metricsErr is why the operator's /metrics could not be read (addMetrics); reconcile, heapInuse and
	// kube are then zero.
	metricsErr error
	reconcile  histogram
	heapInuse  float64
	kube       map[string]float64
}

// metricsErr is the first of two snapshots' failed scrapes, nil when both were read.
func metricsErr(before, after snapshot) error {
	if before.metricsErr != nil {
		return fmt.Errorf("at the start: %w", before.metricsErr)
	}
	if after.metricsErr != nil {
		return fmt.Errorf("at the end: %w", after.metricsErr)
	}
	return nil
}

// snapshot reads the operator's /proc figures, then scrapes its /metrics. Only the first can fail it: a
// failed scrape is kept in metricsErr, so the figures that need it are reported as not obtained and the
// run goes on.
func (b *bench) snapshot() (snapshot, error) {
	s, err := b.procSnapshot()
	if err != nil {
		return snapshot{}, err
	}
	b.addMetrics(&s)
	return s, nil
}

// procSnapshot is the part of a snapshot that needs no scrape: the operator's memory and CPU from /proc.
// Scenarios take it, and read graphsim's journal, before the scrape (finishPhase): the scrape makes the
// operator gather every certificate's series, which raises its RSS, and it can time out.
func (b *bench) procSnapshot() (snapshot, error) {
	proc, err := b.s.Operator.Stats()
	if err != nil {
		return snapshot{}, err
	}
	var peakAnon int64
	if b.anon != nil { // nil until the first restart (the empty operator, memory.go)
		peakAnon = b.anon.peak.Load()
	}
	return snapshot{proc: proc, peakAnon: peakAnon}, nil
}

// addMetrics completes s with the operator's /metrics, or records why they could not be read.
func (b *bench) addMetrics(s *snapshot) {
	families, err := b.metrics()
	if err != nil {
		logf("  %v (the figures that need it are reported as not obtained)", err)
		s.metricsErr = err
		return
	}
	s.reconcile, s.heapInuse, s.kube = reconcileHistogram(families), gauge(families, "go_memstats_heap_inuse_bytes"), kubeRequests(families)
}

// benchFamilies are the metric families the benchmark reads (measure.go, fairness.go). The scrape asks
// the operator for these alone (promhttp's name[] filter), so it does not encode and send the
// certificates' own series: at N=100,000 those made the whole response too slow to read.
var benchFamilies = []string{
	"controller_runtime_reconcile_time_seconds", "rest_client_requests_total", "go_memstats_heap_inuse_bytes",
	"workqueue_depth", "controller_runtime_active_workers",
}

// metricsTimeout bounds one scrape for a cluster of this many UserPfxCertificates: 30 s, plus 2 s per
// 1000 (230 s at 100,000). The operator still gathers every certificate's series before filtering them;
// at N=100,000, with ~450 MiB of live heap under GOMEMLIMIT, a fixed 30 s ran out and aborted the run.
func metricsTimeout(resources int) time.Duration {
	return 30*time.Second + time.Duration(resources/1000)*2*time.Second
}

// metrics scrapes the operator's /metrics (benchFamilies only), with a timeout for the run's scale.
func (b *bench) metrics() (map[string]*dto.MetricFamily, error) {
	resources := b.cfg.N
	if b.tracker != nil { // the other scenarios' resources count too
		resources = max(resources, b.tracker.count())
	}
	return stack.ScrapeMetrics(b.s.MetricsURL, metricsTimeout(resources), benchFamilies...)
}

// anonSampler tracks the peak anonymous resident memory (heap, stacks) of one process. VmHWM also
// counts the pages of the binary itself, and the kernel keeps no peak of the anonymous part alone.
type anonSampler struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func sampleAnon(p *stack.Process) *anonSampler {
	a := &anonSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			if st, err := p.Stats(); err == nil && st.RSSAnon > a.peak.Load() {
				a.peak.Store(st.RSSAnon)
			}
			select {
			case <-a.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return a
}

func (a *anonSampler) close() {
	if a != nil {
		close(a.stop)
		<-a.done
	}
}
