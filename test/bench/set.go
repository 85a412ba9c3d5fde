package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

// The set scenario: one UserPfxCertificateSet selecting N labelled PFX Secrets of N users.
const (
	setNamespace = "bench-set"
	setName      = "staff"
	setLabel     = "intune.certops.dev/import"
)

// setResult is scenario 6.
type setResult struct {
	N                 int           `json:"n"`
	Seconds           float64       `json:"seconds"`
	WriteBoundSeconds float64       `json:"writeBoundSeconds"`
	Ratio             float64       `json:"ratioToWriteBound"`
	RecordsImported   int           `json:"recordsInGraphsim"`
	Graph             graphCounts   `json:"graph"`
	Operator          operatorUsage `json:"operator"`
	// TemplateSeconds is how long a template change (renewBefore) took to reach every child, observed.
	TemplateSeconds float64     `json:"templateChangeSeconds"`
	TemplateGraph   graphCounts `json:"templateChangeGraph"`
}

// setFixtures issues the set's users and certificates; their users must be in graphsim from the start.
func (b *bench) setFixtures(ctx context.Context) ([]graphsim.User, error) {
	setUsers := users("set", b.cfg.N)
	var err error
	b.setCerts, err = b.issuer.issueAll(ctx, "set", setUsers)
	return setUsers, err
}

// setScenario creates the labelled Secrets, applies the set and times it until every child is Ready with
// its certificate; then changes the template in a way Graph does not see and counts the Graph writes
// (none expected) until every child observed it.
func (b *bench) setScenario(ctx context.Context) (*setResult, error) {
	cfg := b.cfg
	r := &setResult{N: cfg.N, WriteBoundSeconds: float64(cfg.N) / cfg.writeRate()}
	logf("Scenario set: a UserPfxCertificateSet of %d users; write bound %.1f s", cfg.N, r.WriteBoundSeconds)
	if err := b.kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: setNamespace}}); err != nil {
		return nil, err
	}
	secrets := make([]*corev1.Secret, len(b.setCerts))
	want := map[string]string{}
	for i, c := range b.setCerts {
		secrets[i] = pfxSecret(setNamespace, c)
		secrets[i].Labels = map[string]string{setLabel: "smime"}
		want[setNamespace+"/"+setName+"-"+c.secretName()] = c.thumbprint
	}
	if err := createAll(ctx, b.kube, "labelled PFX Secrets", cfg.CreateConcurrency, secrets); err != nil {
		return nil, err
	}
	if err := resetJournal(b.s); err != nil {
		return nil, err
	}
	before, err := b.snapshot()
	if err != nil {
		return nil, err
	}
	set := &intunev1alpha1.UserPfxCertificateSet{
		ObjectMeta: metav1.ObjectMeta{Name: setName, Namespace: setNamespace},
		Spec: intunev1alpha1.UserPfxCertificateSetSpec{
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{setLabel: "smime"}},
			Template: intunev1alpha1.UserPfxCertificateTemplate{IntendedPurpose: "smimeEncryption"},
		},
	}
	start := time.Now()
	if err := b.kube.Create(ctx, set); err != nil {
		return nil, err
	}
	var after snapshot
	if r.Seconds, after, r.Graph, err = b.finishPhase(ctx, "set: children Ready", want, start, r.WriteBoundSeconds); err != nil {
		return nil, err
	}
	r.Ratio = r.Seconds / r.WriteBoundSeconds
	r.Operator = usageSince(before, after)
	if r.RecordsImported, err = b.recordsWith(thumbprints(b.setCerts)); err != nil {
		return nil, err
	}
	logf("  all Ready after %.1f s (%.2fx the write bound); graphsim holds %d of the %d records", r.Seconds, r.Ratio, r.RecordsImported, cfg.N)

	// A template change nothing in Intune depends on: every child gets it, Graph gets no write.
	if err := b.kube.Get(ctx, client.ObjectKeyFromObject(set), set); err != nil {
		return nil, err
	}
	set.Spec.Template.RenewBefore = &metav1.Duration{Duration: 240 * time.Hour}
	start = time.Now()
	if err := b.kube.Update(ctx, set); err != nil {
		return nil, err
	}
	if err := b.waitChildrenObserved(ctx, 240*time.Hour, time.Duration(3*r.WriteBoundSeconds)*time.Second+10*time.Minute); err != nil {
		return nil, err
	}
	r.TemplateSeconds = time.Since(start).Seconds()
	time.Sleep(settle)
	if r.TemplateGraph, err = journalAndReset(b.s); err != nil {
		return nil, err
	}
	logf("  template change on every child after %.1f s: %d Graph writes", r.TemplateSeconds, r.TemplateGraph.Writes)
	return r, nil
}

// waitChildrenObserved waits until every child of the set has renewBefore and its status describes that
// generation.
func (b *bench) waitChildrenObserved(ctx context.Context, renewBefore, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		list := &intunev1alpha1.UserPfxCertificateList{}
		if err := b.kube.List(ctx, list, client.InNamespace(setNamespace), client.MatchingLabels{intunev1alpha1.LabelSet: setName}); err != nil {
			return err
		}
		done := 0
		for _, c := range list.Items {
			if c.Spec.RenewBefore != nil && c.Spec.RenewBefore.Duration == renewBefore && c.Status.ObservedGeneration == c.Generation {
				done++
			}
		}
		if done == b.cfg.N && len(list.Items) == b.cfg.N {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("set: only %d of %d children observed the template change", done, b.cfg.N)
		}
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}
}

// setTargets are the issue's targets for the set scenario.
func (r *results) setTargets() []target {
	const (
		setTime   = "set: all children Ready within 1.15x of the write bound"
		setWrites = "set: a template change Graph does not see makes 0 Graph writes"
	)
	s := r.Set
	if s == nil {
		return []target{{setTime, "set not run", "not measured"}, {setWrites, "set not run", "not measured"}}
	}
	return []target{
		{setTime, fmt.Sprintf("%.1f s = %.2fx of %.1f s for %d users (peak RSS %.1f MiB)", s.Seconds, s.Ratio, s.WriteBoundSeconds, s.N, s.Operator.PeakRSSMiB),
			metText(s.Ratio <= 1.15 && s.RecordsImported == s.N)},
		{setWrites, fmt.Sprintf("%d writes, %d reads; every child observed it after %.1f s", s.TemplateGraph.Writes, s.TemplateGraph.Reads, s.TemplateSeconds),
			metText(s.TemplateGraph.Writes == 0)},
	}
}

// setRows are the set scenario's rows of the report's table.
func (s *setResult) rows(row func(string, string, string, ...any)) {
	row("6 set", "set applied → all children Ready", "%.1f s for %d users (%d records in graphsim); write bound %.1f s; ratio **%.2f**",
		s.Seconds, s.N, s.RecordsImported, s.WriteBoundSeconds, s.Ratio)
	row("6 set", "Graph requests per child", "%s", perOperation(s.Graph.perCertificate(s.N)))
	row("6 set", "operator peak RSS; Go heap in use at end; CPU", "%.1f MiB; %s; %.1f s", s.Operator.PeakRSSMiB, heapText(s.Operator), s.Operator.CPUSeconds)
	row("6 set", "template change (renewBefore) → every child observed it", "%.1f s; %d Graph writes, %d reads", s.TemplateSeconds, s.TemplateGraph.Writes, s.TemplateGraph.Reads)
}
