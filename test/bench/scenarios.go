package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/graphsim"
	"github.com/certops/intune-cert-operator/test/stack"
)

// settle is how long a scenario keeps counting Graph requests after its last resource was Ready: a
// stray write after Ready (a second pass that patches, say) must show in the counts.
const settle = 5 * time.Second

// bench is a running stack with what the scenarios share.
type bench struct {
	cfg     *config
	s       *stack.Stack
	kube    client.Client // cluster admin, not rate limited like the operator
	tracker *tracker
	issuer  *issuer
	certs   []*certificate // the N imported certificates, current material
	// setCerts are the N certificates of the set scenario's users (set.go).
	setCerts []*certificate
	anon     *anonSampler // of the running operator process
	fair     *fairnessFixtures
	resync   time.Duration // the running operator's --resync-period
	// apiserver reads the API server's own request counts (apiserver.go).
	apiserver *apiserverCounter
}

func run(ctx context.Context, cfg *config) (res *results, err error) {
	res = newResults(cfg)
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "intune-bench-"); err != nil {
			return nil, err
		}
	}
	logf("Working directory (kubeconfigs, operator and graphsim logs): %s", dir)
	defer func() {
		if err == nil && !cfg.Keep && cfg.Dir == "" {
			_ = os.RemoveAll(dir)
		}
	}()

	b := &bench{cfg: cfg, resync: time.Hour}
	if b.issuer, err = newIssuer(); err != nil {
		return nil, err
	}
	var benchUsers []graphsim.User
	if cfg.ran("import") {
		benchUsers = users("user", cfg.N)
		logf("Issuing %d certificates (one shared RSA key, a fresh serial each)", cfg.N)
		if b.certs, err = b.issuer.issueAll(ctx, "cert", benchUsers); err != nil {
			return nil, err
		}
	}
	latencyUsers := users("latency", cfg.Tries)
	extraUsers := append(benchUsers, latencyUsers...)
	if cfg.ran("set") {
		setUsers, err := b.setFixtures(ctx)
		if err != nil {
			return nil, err
		}
		extraUsers = append(extraUsers, setUsers...)
	}
	if cfg.ran("fairness") {
		if b.fair, err = newFairnessFixtures(ctx, b.issuer, cfg); err != nil {
			return nil, err
		}
		extraUsers = append(append(extraUsers, b.fair.aUsers...), b.fair.bUsers...)
	}

	logf("Starting the control plane, graphsim (latency %s, %d writes per %s per app) and the operator", cfg.Latency, cfg.AppWrites, cfg.Window)
	b.s, err = stack.Start(ctx, stack.Options{
		Dir:    dir,
		BinDir: filepath.Join(dir, "bin"),
		Faults: graphsim.Faults{Latency: cfg.Latency},
		// Intune's proportions (INTUNE-FACTS): tenant writes 2x the app's, requests 10x the writes.
		Limits: graphsim.Limits{Window: cfg.Window, AppWrites: cfg.AppWrites, TenantWrites: 2 * cfg.AppWrites,
			AppRequests: 10 * cfg.AppWrites, TenantRequests: 20 * cfg.AppWrites},
		ExtraUsers:          extraUsers,
		OperatorArgs:        cfg.operatorArgs(time.Hour),
		NoDefaultConnection: true,
		GraphsimInMemory:    true,
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		b.anon.close()
		b.s.Stop()
	}()
	restCfg := rest.CopyConfig(b.s.Env.Config)
	restCfg.QPS, restCfg.Burst = 500, 1000
	if b.kube, err = client.New(restCfg, client.Options{Scheme: testutil.Scheme()}); err != nil {
		return nil, err
	}
	if b.apiserver, err = newAPIServerCounter(restCfg); err != nil {
		return nil, err
	}
	if err := b.createConnection(ctx); err != nil {
		return nil, err
	}
	if b.tracker, err = startTracker(ctx, restCfg); err != nil {
		return nil, err
	}
	// The empty operator: started in a cluster holding only its connection, Ready; memory.go's baseline.
	if res.Empty, err = b.emptyOperator(); err != nil {
		return nil, err
	}
	if err := b.populate(ctx); err != nil {
		return nil, err
	}
	if cfg.Seed && cfg.ran("import") {
		if err := b.seedRecords(ctx); err != nil {
			return nil, err
		}
	}

	// Run order: import, then latency and rotation with the production resync period, then steady state,
	// which restarts the operator with a short one, then fairness. The table lists them in the issue's order.
	if cfg.ran("import") {
		if res.Import, err = b.importScenario(ctx); err != nil {
			return res, fmt.Errorf("import: %w", err)
		}
	}
	// Right after import, by the same operator process: it has resolved every user once.
	if cfg.ran("seen") {
		if res.Seen, err = b.seenScenario(ctx); err != nil {
			return res, fmt.Errorf("seen: %w", err)
		}
	}
	// The set's children are UserPfxCertificates too: steady state, which follows, resyncs them as well.
	if cfg.ran("set") {
		if res.Set, err = b.setScenario(ctx); err != nil {
			return res, fmt.Errorf("set: %w", err)
		}
	}
	if cfg.ran("latency") {
		if res.Latency, err = b.latencyScenario(ctx, latencyUsers); err != nil {
			return res, fmt.Errorf("latency: %w", err)
		}
	}
	if cfg.ran("rotation") {
		if res.Rotation, err = b.rotationScenario(ctx); err != nil {
			return res, fmt.Errorf("rotation: %w", err)
		}
	}
	if cfg.ran("steady") {
		if res.Steady, err = b.steadyScenario(ctx); err != nil {
			return res, fmt.Errorf("steady: %w", err)
		}
	}
	// Fairness comes last: its resources would change what steady state counts, and it needs the
	// production resync period back.
	if cfg.ran("fairness") {
		if res.Fairness, err = b.fairnessScenario(ctx); err != nil {
			return res, fmt.Errorf("fairness: %w", err)
		}
	}
	return res, nil
}

// restartOperator restarts the operator with the run's flags and the given resync period.
func (b *bench) restartOperator(resync time.Duration) error {
	b.anon.close()
	b.anon = nil
	if err := b.s.RestartOperator(b.cfg.operatorArgs(resync)); err != nil {
		return err
	}
	b.resync = resync
	b.anon = sampleAnon(b.s.Operator)
	return nil
}

// operatorArgs are the tuning flags of the run, with the given resync period.
func (c *config) operatorArgs(resync time.Duration) []string {
	args := []string{
		"--max-concurrent-reconciles", fmt.Sprint(c.Concurrency),
		"--kube-api-qps", fmt.Sprint(c.KubeQPS),
		"--kube-api-burst", fmt.Sprint(c.KubeBurst),
		"--resync-period", resync.String(),
	}
	if c.Pprof != "" {
		args = append(args, "--pprof-bind-address", c.Pprof)
	}
	return args
}

// createConnection creates the ClusterGraphConnection "default" with the run's write budget and waits
// until the operator reports it Ready (it signed in to graphsim and read Graph once).
func (b *bench) createConnection(ctx context.Context) error {
	spec := b.s.ConnectionSpec("graph-app", "intune-connector-key")
	spec.WriteRequestsPer20Seconds = int32(b.cfg.WriteBudget)
	conn := &intunev1alpha1.ClusterGraphConnection{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: stack.OpenToEveryNamespace(spec)}
	if err := b.kube.Create(ctx, conn); err != nil {
		return fmt.Errorf("creating the ClusterGraphConnection: %w", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		got := &intunev1alpha1.ClusterGraphConnection{}
		if err := b.kube.Get(ctx, types.NamespacedName{Name: "default"}, got); err != nil {
			return err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == intunev1alpha1.ConditionReady && c.Status == metav1.ConditionTrue {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the ClusterGraphConnection was not Ready within 2 minutes (see %s)", b.s.Operator.LogPath)
}

// populate fills the cluster: the unrelated Secrets and the N PFX Secrets. The operator is then
// restarted, so it starts — and lists — in a cluster that already holds them, and its peak RSS covers that.
func (b *bench) populate(ctx context.Context) error {
	secrets, namespaces, err := unrelatedSecrets(b.cfg.Unrelated, b.cfg.UnrelatedSize, b.cfg.UnrelatedApplied)
	if err != nil {
		return err
	}
	for _, ns := range append(namespaces, benchNamespace, latencyNamespace, fairANamespace, fairBNamespace) {
		if err := b.kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	}
	logf("Creating %d unrelated Secrets of %d KiB in %d namespaces (kubectl's last-applied annotation: %t)",
		len(secrets), b.cfg.UnrelatedSize>>10, len(namespaces), b.cfg.UnrelatedApplied)
	if err := createAll(ctx, b.kube, "unrelated Secrets", b.cfg.CreateConcurrency, secrets); err != nil {
		return err
	}
	pfxSecrets := make([]*corev1.Secret, len(b.certs))
	for i, c := range b.certs {
		pfxSecrets[i] = pfxSecret(benchNamespace, c)
	}
	logf("Creating %d PFX Secrets", len(pfxSecrets))
	if err := createAll(ctx, b.kube, "PFX Secrets", b.cfg.CreateConcurrency, pfxSecrets); err != nil {
		return err
	}
	logf("Restarting the operator in the populated cluster")
	return b.restartOperator(time.Hour)
}

// importResult is scenario 1.
type importResult struct {
	N                   int     `json:"n"`
	Seconds             float64 `json:"seconds"`
	WriteBoundSeconds   float64 `json:"writeBoundSeconds"`
	LatencyBoundSeconds float64 `json:"latencyBoundSeconds"`
	LowerBoundSeconds   float64 `json:"lowerBoundSeconds"`
	Ratio               float64 `json:"ratioToLowerBound"`
	RecordsImported     int     `json:"recordsInGraphsim"`
	// Seeded: graphsim held every record before the import (-seed), so the import is an adoption; the
	// write bound does not apply and the ratio is left 0.
	Seeded         bool               `json:"seeded"`
	Graph          graphCounts        `json:"graph"`
	PerCertificate map[string]float64 `json:"graphRequestsPerCertificate"`
	WritesPerCert  float64            `json:"writesPerCertificate"`
	Operator       operatorUsage      `json:"operator"`
	Reconcile      reconcileStats     `json:"reconcile"`
}

// importScenario creates the N UserPfxCertificates and times them from the first create to the last Ready.
func (b *bench) importScenario(ctx context.Context) (*importResult, error) {
	cfg := b.cfg
	r := &importResult{N: cfg.N, Seeded: cfg.Seed}
	r.WriteBoundSeconds = float64(cfg.N) / cfg.writeRate()
	if cfg.Seed {
		r.WriteBoundSeconds = 0 // nothing to write
	}
	r.LatencyBoundSeconds = float64(cfg.N) * cfg.Latency.Seconds() / float64(cfg.Concurrency)
	r.LowerBoundSeconds = math.Max(r.WriteBoundSeconds, r.LatencyBoundSeconds)
	logf("Scenario import: %d UserPfxCertificates; lower bound %.1f s", cfg.N, r.LowerBoundSeconds)

	if err := resetJournal(b.s); err != nil {
		return nil, err
	}
	before, err := b.snapshot()
	if err != nil {
		return nil, err
	}
	objs := make([]*intunev1alpha1.UserPfxCertificate, len(b.certs))
	want := map[string]string{}
	for i, c := range b.certs {
		objs[i] = userPfxCertificate(benchNamespace, c)
		want[benchNamespace+"/"+c.name] = c.thumbprint
	}
	start := time.Now()
	if err := createAll(ctx, b.kube, "UserPfxCertificates", cfg.CreateConcurrency, objs); err != nil {
		return nil, err
	}
	var after snapshot
	// The wait is bounded by the lower bound; an adoption has none but its reads (10 ms each is generous).
	waitBound := r.LowerBoundSeconds
	if cfg.Seed {
		waitBound = max(waitBound, 0.01*float64(cfg.N))
	}
	if r.Seconds, after, r.Graph, err = b.finishPhase(ctx, "import: Ready", want, start, waitBound); err != nil {
		return nil, err
	}
	if r.LowerBoundSeconds > 0 && !cfg.Seed {
		r.Ratio = r.Seconds / r.LowerBoundSeconds
	}
	r.PerCertificate = r.Graph.perCertificate(cfg.N)
	r.WritesPerCert = float64(r.Graph.Writes) / float64(cfg.N)
	r.Operator = usageSince(before, after)
	r.Reconcile = reconcileSince(before, after)
	if r.RecordsImported, err = b.recordsWith(thumbprints(b.certs)); err != nil {
		return nil, err
	}
	logf("  all Ready after %.1f s (%.2fx the bound); graphsim holds %d of the %d records", r.Seconds, r.Ratio, r.RecordsImported, cfg.N)
	return r, nil
}

// recordsWith counts graphsim's userPfxCertificate records whose thumbprint is in want.
func (b *bench) recordsWith(want map[string]bool) (int, error) {
	recs, err := b.s.Records()
	if err != nil {
		return 0, fmt.Errorf("reading graphsim's records: %w", err)
	}
	n := 0
	for _, rec := range recs.UserPfxCertificates {
		if want[strings.ToLower(rec.Thumbprint)] {
			n++
		}
	}
	return n, nil
}

func thumbprints(certs []*certificate) map[string]bool {
	out := map[string]bool{}
	for _, c := range certs {
		out[c.thumbprint] = true
	}
	return out
}

// latencyResult is scenario 4.
type latencyResult struct {
	Tries      int           `json:"tries"`
	P50Seconds float64       `json:"p50Seconds"`
	P99Seconds float64       `json:"p99Seconds"`
	MaxSeconds float64       `json:"maxSeconds"`
	Spacing    time.Duration `json:"spacing"`
	Graph      graphCounts   `json:"graph"`
}

// latencyScenario creates one certificate at a time with Graph answering at once, and times create to Ready.
func (b *bench) latencyScenario(ctx context.Context, latencyUsers []graphsim.User) (*latencyResult, error) {
	cfg := b.cfg
	certs, err := b.issuer.issueAll(ctx, "latency", latencyUsers)
	if err != nil {
		return nil, err
	}
	// The tries are spaced so the operator's write budget (burst 1) has a token again: this scenario
	// measures the path from apply to Ready, not the throttle the import scenario measures.
	r := &latencyResult{Tries: cfg.Tries, Spacing: (time.Duration(float64(20*time.Second)/float64(cfg.WriteBudget)) + 50*time.Millisecond).Round(time.Millisecond)}
	logf("Scenario latency: %d single certificates, Graph latency 0, %s apart", cfg.Tries, r.Spacing)
	if err := b.s.Sim(http.MethodPost, "faults", graphsim.Faults{}, nil); err != nil {
		return nil, err
	}
	defer func() { _ = b.s.Sim(http.MethodPost, "faults", graphsim.Faults{Latency: cfg.Latency}, nil) }()
	if err := resetJournal(b.s); err != nil {
		return nil, err
	}
	var durations []float64
	for _, c := range certs {
		if err := b.kube.Create(ctx, pfxSecret(latencyNamespace, c)); err != nil {
			return nil, err
		}
		time.Sleep(r.Spacing)
		start := time.Now()
		if err := b.kube.Create(ctx, userPfxCertificate(latencyNamespace, c)); err != nil {
			return nil, err
		}
		last, err := b.tracker.waitReady(ctx, "latency try", map[string]string{latencyNamespace + "/" + c.name: c.thumbprint}, time.Minute)
		if err != nil {
			return nil, err
		}
		durations = append(durations, last.Sub(start).Seconds())
	}
	time.Sleep(settle)
	if r.Graph, err = journalAndReset(b.s); err != nil {
		return nil, err
	}
	slices.Sort(durations)
	r.P50Seconds, r.P99Seconds, r.MaxSeconds = nearestRank(durations, 0.5), nearestRank(durations, 0.99), durations[len(durations)-1]
	logf("  apply to Ready p50 %.3f s, p99 %.3f s", r.P50Seconds, r.P99Seconds)
	return r, nil
}

// nearestRank is the q-quantile of sorted values by the nearest-rank method (an observed value).
func nearestRank(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// rotationResult is scenario 3.
type rotationResult struct {
	Rotated           int                `json:"rotated"`
	Seconds           float64            `json:"seconds"`
	WriteBoundSeconds float64            `json:"writeBoundSeconds"`
	Ratio             float64            `json:"ratioToWriteBound"`
	NewRecords        int                `json:"newRecordsInGraphsim"`
	OldRecordsLeft    int                `json:"oldRecordsLeftInGraphsim"`
	Graph             graphCounts        `json:"graph"`
	PerRotated        map[string]float64 `json:"graphRequestsPerRotatedCertificate"`
	WritesPerRotated  float64            `json:"writesPerRotatedCertificate"`
	Operator          operatorUsage      `json:"operator"`
	Reconcile         reconcileStats     `json:"reconcile"`
}

// rotationScenario replaces the certificate in a fraction of the PFX Secrets and times until every
// rotated resource is Ready with its new thumbprint and its old record deleted.
func (b *bench) rotationScenario(ctx context.Context) (*rotationResult, error) {
	cfg := b.cfg
	m := max(1, int(math.Round(float64(cfg.N)*cfg.RotateFraction)))
	chosen := make([]*certificate, 0, m)
	for i := range m {
		chosen = append(chosen, b.certs[i*cfg.N/m])
	}
	rotatedUsers := make([]graphsim.User, 0, len(chosen))
	for _, c := range chosen {
		rotatedUsers = append(rotatedUsers, c.user)
	}
	next, err := b.issuer.issueAll(ctx, "rotated", rotatedUsers)
	if err != nil {
		return nil, err
	}
	r := &rotationResult{Rotated: m, WriteBoundSeconds: float64(2*m) / cfg.writeRate()}
	logf("Scenario rotation: %d Secrets get new certificates; write bound %.1f s", m, r.WriteBoundSeconds)

	if err := resetJournal(b.s); err != nil {
		return nil, err
	}
	before, err := b.snapshot()
	if err != nil {
		return nil, err
	}
	old := map[string]bool{}
	want := map[string]string{}
	updated := make([]*corev1.Secret, m)
	for i, c := range chosen {
		old[c.thumbprint] = true
		c.pfx, c.thumbprint = next[i].pfx, next[i].thumbprint
		want[benchNamespace+"/"+c.name] = c.thumbprint
		updated[i] = pfxSecret(benchNamespace, c)
	}
	start := time.Now()
	if err := updateAll(ctx, b.kube, cfg.CreateConcurrency, updated); err != nil {
		return nil, err
	}
	var after snapshot
	if r.Seconds, after, r.Graph, err = b.finishPhase(ctx, "rotation: Ready with the new thumbprint", want, start, r.WriteBoundSeconds); err != nil {
		return nil, err
	}
	r.Ratio = r.Seconds / r.WriteBoundSeconds
	r.PerRotated = r.Graph.perCertificate(m)
	r.WritesPerRotated = float64(r.Graph.Writes) / float64(m)
	r.Operator = usageSince(before, after)
	r.Reconcile = reconcileSince(before, after)
	if r.NewRecords, err = b.recordsWith(thumbprints(chosen)); err != nil {
		return nil, err
	}
	if r.OldRecordsLeft, err = b.recordsWith(old); err != nil {
		return nil, err
	}
	logf("  all rotated after %.1f s; %.2f writes per rotated certificate", r.Seconds, r.WritesPerRotated)
	return r, nil
}

// updateAll replaces the data of existing Secrets (a merge patch: no read-modify-write needed).
func updateAll(ctx context.Context, c client.Client, parallel int, secrets []*corev1.Secret) error {
	return forAll(ctx, "Secret updates", parallel, secrets, func(ctx context.Context, s *corev1.Secret) error {
		if err := c.Patch(ctx, s, client.Merge); err != nil {
			return fmt.Errorf("updating Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
		return nil
	})
}

// steadyResult is scenario 2.
type steadyResult struct {
	ResyncPeriod time.Duration `json:"resyncPeriod"`
	Resources    int           `json:"resources"`
	// WarmUpSeconds is how long after the restart every resource had been reconciled once; the first pass
	// after a restart checks every resource against the tenant's listing.
	WarmUpSeconds float64     `json:"warmUpSeconds"`
	WarmUpGraph   graphCounts `json:"warmUpGraph"`
	WindowSeconds float64     `json:"windowSeconds"`
	// Resyncs are the UserPfxCertificate passes in the window (controller-runtime's reconcile count): with
	// nothing changing, every pass is a resync. Since lastSyncTime is no longer written by a check that
	// finds Intune as wanted (internal/controller/resync.go), passes are counted, not lastSyncTime moves.
	Resyncs int `json:"resyncs"`
	// Graph counts every request from the window's start to a grace after its end.
	Graph graphCounts `json:"graph"`
	// ReadsPerPeriod are the certificate reads (listing pages, records, users) per resync period, against
	// ReadBound = ceil(resources / PageSize) + 1 for the one tenant.
	ReadsPerPeriod float64 `json:"graphReadsPerPeriod"`
	ReadBound      int     `json:"graphReadBoundPerPeriod"`
	PageSize       int     `json:"graphPageSize"`
	// KubePerResync is the operator's API server requests per resync, all methods, all controllers
	// (the ClusterGraphConnection's checks included).
	KubePerResync float64 `json:"kubeRequestsPerResync"`
	// APIServer is the API server's count of requests in the window by "VERB resource" (every client);
	// ResyncRequests those a UserPfxCertificate pass can make (resyncRequest), and
	// ResyncRequestsPerResync their sum per resync: the target's figure.
	APIServer               map[string]float64 `json:"apiserverRequests"`
	ResyncRequests          map[string]float64 `json:"resyncRequests"`
	ResyncRequestsPerResync float64            `json:"resyncRequestsPerResync"`
	// ResyncsPerPeriod is resyncs per resource per resync period: 1/1.05 when every resource resyncs on
	// time (the period is jittered by up to 10%), less when the operator cannot keep up.
	ResyncsPerPeriod float64        `json:"resyncsPerResourcePerPeriod"`
	Operator         operatorUsage  `json:"operator"`
	Reconcile        reconcileStats `json:"reconcile"`
}

// graphsimPageSize is graphsim's page size for lists (the stack leaves its default).
const graphsimPageSize = 100

// steadyScenario restarts the operator with a short resync period, waits until every resource was
// reconciled once, then counts Graph and API server requests over several periods in which nothing changes.
func (b *bench) steadyScenario(ctx context.Context) (*steadyResult, error) {
	cfg := b.cfg
	r := &steadyResult{ResyncPeriod: cfg.Resync, PageSize: graphsimPageSize}
	logf("Scenario steady: restarting the operator with --resync-period=%s", cfg.Resync)
	if err := resetJournal(b.s); err != nil {
		return nil, err
	}
	if err := b.restartOperator(cfg.Resync); err != nil {
		return nil, err
	}
	restart := time.Now()
	// Every UserPfxCertificate resyncs, including those the other scenarios left: all are counted.
	total := b.tracker.count()
	r.Resources = total
	r.ReadBound = (total+graphsimPageSize-1)/graphsimPageSize + 1
	warmUpLimit := 10*cfg.Resync + 5*time.Minute
	p := newProgress("steady: resources reconciled since the restart", total)
	var reconciled uint64
	var scrapeErr error // the last scrape's: only the operator's metrics count its passes, so a failed one is retried
	for {
		families, err := b.metrics()
		scrapeErr = err
		if err == nil {
			reconciled = reconcileHistogram(families).count
			p.count.Store(int64(reconciled))
			if int(reconciled) >= total {
				break
			}
		}
		if time.Since(restart) > warmUpLimit {
			p.done()
			if scrapeErr != nil {
				return nil, fmt.Errorf("the warm-up's end is unknown after %s: %w", warmUpLimit, scrapeErr)
			}
			return nil, fmt.Errorf("only %d of %d resources reconciled within %s of the restart", reconciled, total, warmUpLimit)
		}
		if err := sleep(ctx, time.Second); err != nil {
			p.done()
			return nil, err
		}
	}
	p.done()
	// The passes of the restart end with their listing: let the last of them finish.
	if err := sleep(ctx, settle); err != nil {
		return nil, err
	}
	r.WarmUpSeconds = time.Since(restart).Seconds()
	var err error
	if r.WarmUpGraph, err = journalAndReset(b.s); err != nil {
		return nil, err
	}

	before, err := b.snapshot()
	if err != nil {
		return nil, err
	}
	apiBefore, err := b.apiserver.requests(ctx)
	if err != nil {
		return nil, err
	}
	window := time.Duration(cfg.SteadyCycles) * cfg.Resync
	logf("  warm-up done after %.0f s; measuring %s", r.WarmUpSeconds, window)
	if err := sleep(ctx, window); err != nil {
		return nil, err
	}
	// Everything but the operator's /metrics first, as finishPhase does.
	after, err := b.procSnapshot()
	if err != nil {
		return nil, err
	}
	apiAfter, err := b.apiserver.requests(ctx)
	if err != nil {
		return nil, err
	}
	r.APIServer = countsSince(apiBefore, apiAfter)
	r.ResyncRequests = map[string]float64{}
	resyncRequests := 0.0
	for op, n := range r.APIServer {
		if resyncRequest(op) {
			r.ResyncRequests[op] = n
			resyncRequests += n
		}
	}
	entries, err := journalEntriesAndReset(b.s)
	if err != nil {
		return nil, err
	}
	b.addMetrics(&after)
	r.Graph = countJournal(entries)
	r.WindowSeconds = window.Seconds()
	r.Operator = usageSince(before, after)
	r.Reconcile = reconcileSince(before, after)
	r.Resyncs = int(r.Reconcile.Count)
	periods := r.WindowSeconds / cfg.Resync.Seconds()
	r.ReadsPerPeriod = float64(r.Graph.CertificateReads) / periods
	kube := 0.0
	for _, n := range r.Operator.KubeRequests {
		kube += n
	}
	if r.Resyncs > 0 {
		r.KubePerResync = kube / float64(r.Resyncs)
		r.ResyncRequestsPerResync = resyncRequests / float64(r.Resyncs)
	}
	r.ResyncsPerPeriod = float64(r.Resyncs) / float64(total) / periods
	logf("  %d resyncs, %d Graph reads of certificates (%.1f per period, bound %d), %d writes, %.2f API requests per resync (%.2f of the operator's, all controllers)",
		r.Resyncs, r.Graph.CertificateReads, r.ReadsPerPeriod, r.ReadBound, r.Graph.Writes, r.ResyncRequestsPerResync, r.KubePerResync)
	return r, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// finishPhase waits until every resource in want is Ready with its thumbprint (bounded by three times the
// phase's lower bound plus ten minutes), lets in-flight work settle, and returns the seconds since start,
// the operator's stats and the phase's Graph journal (which it resets for the next phase).
func (b *bench) finishPhase(ctx context.Context, what string, want map[string]string, start time.Time, boundSeconds float64) (float64, snapshot, graphCounts, error) {
	last, err := b.tracker.waitReady(ctx, what, want, time.Duration(3*boundSeconds)*time.Second+10*time.Minute)
	if err != nil {
		return 0, snapshot{}, graphCounts{}, err
	}
	seconds := last.Sub(start).Seconds()
	time.Sleep(settle)
	// /proc and graphsim's journal before the operator's /metrics: the scrape is the slow part at large N
	// (at N=100,000 it once timed out and the run lost the Graph counts with it), and it raises the RSS.
	after, err := b.procSnapshot()
	if err != nil {
		return 0, snapshot{}, graphCounts{}, err
	}
	counts, err := journalAndReset(b.s)
	if err != nil {
		return 0, snapshot{}, graphCounts{}, err
	}
	b.addMetrics(&after) // a failed scrape is reported as not obtained, in the figures that need it
	return seconds, after, counts, nil
}
