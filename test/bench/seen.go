package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

// seenResult is scenario 7: a second certificate for each of the import's users, whom the operator has
// resolved before (its UPN → user id cache), so an import is a GET of the record and the POST.
type seenResult struct {
	N                 int                `json:"n"`
	Seconds           float64            `json:"seconds"`
	WriteBoundSeconds float64            `json:"writeBoundSeconds"`
	Ratio             float64            `json:"ratioToWriteBound"`
	Graph             graphCounts        `json:"graph"`
	PerCertificate    map[string]float64 `json:"graphRequestsPerCertificate"`
	RequestsPerCert   float64            `json:"graphRequestsPerCertificateTotal"`
	Operator          operatorUsage      `json:"operator"`
	Reconcile         reconcileStats     `json:"reconcile"`
}

// seenScenario imports a second certificate (a new Secret and UserPfxCertificate) for each user of the
// import, right after it, and times the first create to the last Ready against the write bound.
func (b *bench) seenScenario(ctx context.Context) (*seenResult, error) {
	cfg := b.cfg
	users := make([]graphsim.User, len(b.certs))
	for i, c := range b.certs {
		users[i] = c.user
	}
	certs, err := b.issuer.issueAll(ctx, "seen", users)
	if err != nil {
		return nil, err
	}
	r := &seenResult{N: len(certs), WriteBoundSeconds: float64(len(certs)) / cfg.writeRate()}
	logf("Scenario seen: %d certificates for users imported before; write bound %.1f s", r.N, r.WriteBoundSeconds)
	secrets := make([]*corev1.Secret, len(certs))
	objs := make([]*intunev1alpha1.UserPfxCertificate, len(certs))
	want := map[string]string{}
	for i, c := range certs {
		secrets[i] = pfxSecret(benchNamespace, c)
		objs[i] = userPfxCertificate(benchNamespace, c)
		want[benchNamespace+"/"+c.name] = c.thumbprint
	}
	if err := createAll(ctx, b.kube, "PFX Secrets of the second certificates", cfg.CreateConcurrency, secrets); err != nil {
		return nil, err
	}
	if err := resetJournal(b.s); err != nil {
		return nil, err
	}
	before, err := b.snapshot()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := createAll(ctx, b.kube, "UserPfxCertificates", cfg.CreateConcurrency, objs); err != nil {
		return nil, err
	}
	var after snapshot
	if r.Seconds, after, r.Graph, err = b.finishPhase(ctx, "seen: Ready", want, start, r.WriteBoundSeconds); err != nil {
		return nil, err
	}
	r.Ratio = r.Seconds / r.WriteBoundSeconds
	r.PerCertificate = r.Graph.perCertificate(r.N)
	for _, v := range r.PerCertificate {
		r.RequestsPerCert += v
	}
	r.Operator = usageSince(before, after)
	r.Reconcile = reconcileSince(before, after)
	logf("  all Ready after %.1f s (%.2fx the write bound); %.2f Graph requests per certificate", r.Seconds, r.Ratio, r.RequestsPerCert)
	return r, nil
}

const (
	seenRequestsTarget = 2.0
	seenRatioTarget    = 1.10
)

func (s *seenResult) rows(row func(scenario, measure, format string, args ...any)) {
	row("7 seen", "apply → all Ready, a second certificate for each user imported before", "%.1f s for %d certificates; write bound %.1f s; ratio **%.2f**", s.Seconds, s.N, s.WriteBoundSeconds, s.Ratio)
	row("7 seen", "Graph requests per certificate", "**%.2f**: %s; plus %s", s.RequestsPerCert, perOperation(s.PerCertificate), connectionChecks(s.Graph.ConnectionChecks))
	row("7 seen", "Kubernetes API requests per certificate", "%s", kubeText(s.Operator, s.N))
	row("7 seen", "429s", "%d of %d requests", s.Graph.Throttled, s.Graph.Requests)
	usageRows(row, "7 seen", s.Operator, s.Reconcile)
}

func (r *results) seenTargets() []target {
	const (
		requests = "import for a user seen before: at most 2 Graph requests per new certificate"
		ratio    = "import for a user seen before: within 1.10x of the write bound"
	)
	s := r.Seen
	if s == nil {
		return []target{{requests, "seen not run", "not measured"}, {ratio, "seen not run", "not measured"}}
	}
	return []target{
		{requests, fmt.Sprintf("%.2f per certificate (%s)", s.RequestsPerCert, perOperation(s.PerCertificate)), metText(s.RequestsPerCert <= seenRequestsTarget)},
		{ratio, fmt.Sprintf("%.1f s = %.2fx of %.1f s", s.Seconds, s.Ratio, s.WriteBoundSeconds), metText(s.Ratio <= seenRatioTarget)},
	}
}

// perOperationCounts lists request counts by operation.
func perOperationCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	ops := make([]string, 0, len(m))
	for op := range m {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	parts := make([]string, len(ops))
	for i, op := range ops {
		parts[i] = fmt.Sprintf("%s %d", op, m[op])
	}
	return strings.Join(parts, ", ")
}
