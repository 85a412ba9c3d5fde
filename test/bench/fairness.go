package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

// The fairness scenario's namespaces: A queues a large import, B applies single certificates meanwhile.
const (
	fairANamespace = "bench-fair-a"
	fairBNamespace = "bench-fair-b"
)

// fairBTarget is the fairness target: B's certificate is Ready within this many token intervals of the
// write budget (20 s / writeRequestsPer20Seconds) while A's import is under way.
const fairBTarget = 10

// fairBSpacing separates B's tries.
const fairBSpacing = 2 * time.Second

// fairnessResult is scenario 5.
type fairnessResult struct {
	// N is A's import; Tries are B's single certificates, one after the other while A imports.
	N     int `json:"n"`
	Tries int `json:"tries"`
	// IntervalSeconds is one token of the write budget: 20 s / writeRequestsPer20Seconds.
	IntervalSeconds float64 `json:"tokenIntervalSeconds"`
	// BSeconds is each try's create → Ready; BIntervals the same in token intervals.
	BSeconds      []float64 `json:"bSeconds"`
	BIntervals    []float64 `json:"bIntervals"`
	BMaxSeconds   float64   `json:"bMaxSeconds"`
	BMaxIntervals float64   `json:"bMaxIntervals"`
	// AQueuedAtB is the depth of the operator's UserPfxCertificate workqueue when each try was applied:
	// A's requests that a first-come-first-served queue would have served before B's.
	AQueuedAtB []int `json:"aQueuedAtB"`
	// APendingAtB is how many of A's certificates were not Ready yet when each try was Ready (0 would mean
	// A was done and the try measured nothing).
	APendingAtB []int `json:"aPendingAtB"`
	// ASeconds is A's first create → A's last Ready; the write bound is every write of the scenario (A's and
	// B's, one each) at graphsim's per-app rate.
	ASeconds          float64            `json:"aSeconds"`
	WriteBoundSeconds float64            `json:"writeBoundSeconds"`
	Ratio             float64            `json:"ratioToWriteBound"`
	RecordsImported   int                `json:"recordsInGraphsim"`
	Graph             graphCounts        `json:"graph"`
	PerCertificate    map[string]float64 `json:"graphRequestsPerCertificate"`
	Operator          operatorUsage      `json:"operator"`
	Reconcile         reconcileStats     `json:"reconcile"`
}

// fairnessFixtures are the scenario's users and certificates; the users must be in graphsim from the start.
type fairnessFixtures struct {
	aUsers, bUsers []graphsim.User
	a, b           []*certificate
}

func newFairnessFixtures(ctx context.Context, is *issuer, cfg *config) (*fairnessFixtures, error) {
	f := &fairnessFixtures{aUsers: users("fair-a", cfg.FairN), bUsers: users("fair-b", cfg.FairTries)}
	logf("Issuing %d + %d certificates for the fairness scenario", cfg.FairN, cfg.FairTries)
	var err error
	if f.a, err = is.issueAll(ctx, "fair-a", f.aUsers); err != nil {
		return nil, err
	}
	if f.b, err = is.issueAll(ctx, "fair-b", f.bUsers); err != nil {
		return nil, err
	}
	return f, nil
}

// fairnessScenario: namespace A applies N UserPfxCertificates at once; once they are all applied and A's
// import is under way, namespace B applies one certificate at a time, each when the previous was Ready, and
// each is timed from create to Ready. Then A's import is timed to its end.
func (b *bench) fairnessScenario(ctx context.Context) (*fairnessResult, error) {
	cfg, f := b.cfg, b.fair
	r := &fairnessResult{N: cfg.FairN, Tries: cfg.FairTries, IntervalSeconds: 20 / float64(cfg.WriteBudget),
		WriteBoundSeconds: float64(cfg.FairN+cfg.FairTries) / cfg.writeRate()}
	logf("Scenario fairness: %s imports %d UserPfxCertificates; %s applies %d, one at a time, meanwhile; token interval %.0f ms",
		fairANamespace, cfg.FairN, fairBNamespace, cfg.FairTries, 1000*r.IntervalSeconds)
	if b.resync != time.Hour {
		logf("  restarting the operator with --resync-period=1h")
		if err := b.restartOperator(time.Hour); err != nil {
			return nil, err
		}
	}
	var secrets []*corev1.Secret
	for _, c := range f.a {
		secrets = append(secrets, pfxSecret(fairANamespace, c))
	}
	for _, c := range f.b {
		secrets = append(secrets, pfxSecret(fairBNamespace, c))
	}
	if err := createAll(ctx, b.kube, "fairness PFX Secrets", cfg.CreateConcurrency, secrets); err != nil {
		return nil, err
	}
	// Start from an idle operator: after a restart it reconciles every resource it finds once.
	if err := b.waitIdle(ctx, 10*time.Minute); err != nil {
		return nil, err
	}
	if err := resetJournal(b.s); err != nil {
		return nil, err
	}
	before, err := b.snapshot()
	if err != nil {
		return nil, err
	}

	wantA := map[string]string{}
	objs := make([]*intunev1alpha1.UserPfxCertificate, len(f.a))
	for i, c := range f.a {
		objs[i] = userPfxCertificate(fairANamespace, c)
		wantA[fairANamespace+"/"+c.name] = c.thumbprint
	}
	start := time.Now()
	if err := createAll(ctx, b.kube, "A's UserPfxCertificates", cfg.CreateConcurrency, objs); err != nil {
		return nil, err
	}
	// Under way: every one of A's resources is applied and the first is Ready.
	if _, err := b.tracker.waitAny(ctx, "fairness: A's first Ready", wantA, 2*time.Minute); err != nil {
		return nil, err
	}

	for i, c := range f.b {
		if i > 0 {
			if err := sleep(ctx, fairBSpacing); err != nil {
				return nil, err
			}
		}
		queued, err := b.queueDepth()
		if err != nil {
			return nil, err
		}
		key := fairBNamespace + "/" + c.name
		applied := time.Now()
		if err := b.kube.Create(ctx, userPfxCertificate(fairBNamespace, c)); err != nil {
			return nil, err
		}
		// As long as A's whole import, and then some: a first-come-first-served operator serves B after A.
		ready, err := b.tracker.waitReady(ctx, "fairness: B's certificate", map[string]string{key: c.thumbprint},
			time.Duration(2*r.WriteBoundSeconds)*time.Second+5*time.Minute)
		if err != nil {
			return nil, err
		}
		seconds := ready.Sub(applied).Seconds()
		pending := len(wantA) - b.tracker.readyCount(wantA, ready)
		r.BSeconds = append(r.BSeconds, seconds)
		r.BIntervals = append(r.BIntervals, seconds/r.IntervalSeconds)
		r.AQueuedAtB = append(r.AQueuedAtB, queued)
		r.APendingAtB = append(r.APendingAtB, pending)
		logf("  B try %d: Ready after %.3f s = %.1f token intervals (%d requests queued when applied; %d of A's not Ready yet)",
			i+1, seconds, seconds/r.IntervalSeconds, queued, pending)
	}
	r.BMaxSeconds = slices.Max(r.BSeconds)
	r.BMaxIntervals = slices.Max(r.BIntervals)

	var after snapshot
	if r.ASeconds, after, r.Graph, err = b.finishPhase(ctx, "fairness: A's import Ready", wantA, start, r.WriteBoundSeconds); err != nil {
		return nil, err
	}
	r.Ratio = r.ASeconds / r.WriteBoundSeconds
	r.PerCertificate = r.Graph.perCertificate(cfg.FairN + cfg.FairTries)
	r.Operator = usageSince(before, after)
	r.Reconcile = reconcileSince(before, after)
	if r.RecordsImported, err = b.recordsWith(thumbprints(append(slices.Clone(f.a), f.b...))); err != nil {
		return nil, err
	}
	logf("  A all Ready after %.1f s (%.2fx the write bound of %.1f s); B at most %.1f token intervals", r.ASeconds, r.Ratio,
		r.WriteBoundSeconds, r.BMaxIntervals)
	return r, nil
}

// queueDepth is how many requests wait in the operator's UserPfxCertificate workqueue.
func (b *bench) queueDepth() (int, error) {
	families, err := b.metrics()
	if err != nil {
		return 0, err
	}
	depth, _ := controllerGauges(families)
	return int(depth), nil
}

// controllerGauges are the UserPfxCertificate controller's queue depth and busy workers.
func controllerGauges(families map[string]*dto.MetricFamily) (depth, active float64) {
	if f := families["workqueue_depth"]; f != nil {
		for _, m := range f.GetMetric() {
			if label(m, "name") == controllerName {
				depth += m.GetGauge().GetValue()
			}
		}
	}
	if f := families["controller_runtime_active_workers"]; f != nil {
		for _, m := range f.GetMetric() {
			if label(m, "controller") == controllerName {
				active += m.GetGauge().GetValue()
			}
		}
	}
	return depth, active
}

// waitIdle waits until the operator's UserPfxCertificate controller has nothing queued and no worker busy,
// three scrapes in a row a second apart.
func (b *bench) waitIdle(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for idle := 0; idle < 3; {
		families, err := b.metrics()
		if err != nil {
			return err
		}
		if depth, active := controllerGauges(families); depth == 0 && active == 0 {
			idle++
		} else {
			idle = 0
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the operator was still busy after %s", timeout)
		}
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}
	return nil
}
