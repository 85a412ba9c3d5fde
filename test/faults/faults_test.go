//go:build faults

// Package faults imports N UserPfxCertificates (and a few resources of every other kind) through the real
// binaries while something goes wrong: Graph throttles or fails (before acting, or after: act then fail),
// the operator is SIGKILLed, the control plane or graphsim restarts, the leader replica dies. After each scenario every resource must be Ready,
// Intune (graphsim) must hold exactly one record per resource and nothing else, the status ids must be
// graphsim's, no call may be retried inside its own Retry-After, and no secret may show in logs, Events,
// statuses or metrics. Run it with `make test-faults`; FAULTS_N (default 200) and FAULTS_SCENARIOS
// (e.g. "a,c") shrink it, FAULTS_SEED repeats a run's random moments and graphsim's random faults (the
// default differs per run; every run prints its seed first, and every failure names it with the violated
// check), FAULTS_KEEP=1 keeps each scenario's directory (logs, graphsim state, journal.json), FAULTS_BIN
// builds the binaries into a directory of its own, and FAULTS_LAX_THROTTLE=1 only reports (does not fail
// on) requests sent to a throttled app by other workers. docs/reliability.md explains every check.
package faults

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/test/graphsim"
	"github.com/certops/intune-cert-operator/test/stack"
)

var (
	flagN        = flag.Int("faults.n", envInt("FAULTS_N", 200), "UserPfxCertificates per scenario (env FAULTS_N)")
	flagOnly     = flag.String("faults.scenarios", os.Getenv("FAULTS_SCENARIOS"), "comma-separated scenario keys to run, e.g. a,c (env FAULTS_SCENARIOS); empty = all")
	flagSeed     = flag.Uint64("faults.seed", uint64(envInt("FAULTS_SEED", int(time.Now().UnixNano()%1e9))), "seed of the random moments (env FAULTS_SEED)")
	flagDeadline = flag.Duration("faults.timeout", 12*time.Minute, "bound of one scenario, setup to verdict")
)

func TestMain(m *testing.M) {
	// envtest logs through controller-runtime's logger, which complains with a stack trace when unset.
	ctrllog.SetLogger(logr.Discard())
	flag.Parse()
	// First line of every run, -v or not: the seed that repeats it.
	fmt.Printf("faults: FAULTS_SEED=%d (set FAULTS_SEED to repeat this run's random moments and graphsim's random faults)\n", *flagSeed)
	os.Exit(m.Run())
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// scenario is one kind of trouble during the import.
type scenario struct {
	key, name string
	options   func(*stack.Options)
	// disrupt runs from the moment the resources are created; it returns once its trouble is over.
	disrupt func(ctx context.Context, r *run) error
	// optIn scenarios run only when FAULTS_SCENARIOS names them.
	optIn bool
}

// actThenFail is scenario g's disruption: 504s turn into 500s half way through the import, then resources of
// every kind are updated and deleted under the same faults.
func actThenFail(faults graphsim.Faults) func(ctx context.Context, r *run) error {
	return func(ctx context.Context, r *run) error {
		if err := r.waitImported(ctx, 0.5); err != nil {
			return err
		}
		faults.ActThenFailStatus = http.StatusInternalServerError
		if err := r.s.Sim(http.MethodPost, "faults", faults, nil); err != nil {
			return err
		}
		if err := r.waitImported(ctx, 1); err != nil {
			return err
		}
		// Updates (PATCH) and deletes (DELETE) under the same faults, while the last creates may still run.
		return r.updateAndDelete(ctx)
	}
}

// Scenario g's faults: the write acts, then its answer is lost (an error or a closed connection).
var actThenFailFaults = graphsim.Faults{ActThenFailRate: 0.05, ActThenFailStatus: http.StatusGatewayTimeout, ActThenDropRate: 0.05}

// Scenario h's: g's plus the service's other documented or observed habits, which the operator must handle:
// lists lag behind creates and deletes, PATCH answers 204, a recryption create answers without id, enums
// come back PascalCase.
var realismFaults = func() graphsim.Faults {
	f := actThenFailFaults
	f.CreateListLag, f.DeleteListLag = 3*time.Second, 3*time.Second
	f.PatchNoContent, f.RecryptionCreateWithoutID, f.PascalCaseEnums = true, true, true
	return f
}()

// Scenario names become directory names (t.TempDir) that kubectl -f reads: no commas in them.
var scenarios = []scenario{
	{key: "a", name: "429 + Retry-After on 30%",
		options: func(o *stack.Options) { o.Faults = graphsim.Faults{ThrottleRate: 0.3, RetryAfter: 2 * time.Second} }},
	{key: "b", name: "5% 500/503 + 5% dropped",
		options: func(o *stack.Options) {
			o.Faults = graphsim.Faults{ErrorRate: 0.05, ErrorStatus: http.StatusInternalServerError, DropRate: 0.05}
		},
		disrupt: func(ctx context.Context, r *run) error {
			// The second half of the import sees 503 instead of 500 (graphsim has one error status at a time).
			if err := r.waitImported(ctx, 0.5); err != nil {
				return err
			}
			return r.s.Sim(http.MethodPost, "faults", graphsim.Faults{ErrorRate: 0.05, ErrorStatus: http.StatusServiceUnavailable, DropRate: 0.05}, nil)
		}},
	{key: "c", name: "operator SIGKILL x5", disrupt: func(ctx context.Context, r *run) error {
		for _, at := range r.moments(5) {
			if err := r.waitImported(ctx, at); err != nil {
				return err
			}
			r.pause(1500 * time.Millisecond)
			r.kill(r.s.Operator, "operator SIGKILL")
			r.pause(2 * time.Second) // as long as a kubelet might take to start it again
			if err := r.s.StartOperator(); err != nil {
				return err
			}
			r.mark("")
		}
		return nil
	}},
	{key: "d", name: "API server + etcd restart x2", disrupt: func(ctx context.Context, r *run) error {
		for _, at := range []float64{0.3, 0.65} {
			if err := r.waitImported(ctx, at); err != nil {
				return err
			}
			if err := r.s.RestartControlPlane(func() { time.Sleep(5 * time.Second) }); err != nil {
				return err
			}
			r.mark("control plane restart")
		}
		return nil
	}},
	{key: "e", name: "graphsim restart x3 (state file)", disrupt: func(ctx context.Context, r *run) error {
		for _, at := range r.moments(3) {
			if err := r.waitImported(ctx, at); err != nil {
				return err
			}
			r.pause(time.Second)
			if err := r.saveJournal(); err != nil {
				return err
			}
			if err := r.s.RestartGraphsim(); err != nil {
				return err
			}
			r.count("graphsim restart")
		}
		return nil
	}},
	{key: "f", name: "2 replicas --leader-elect; leader SIGKILL x2",
		options: func(o *stack.Options) { o.OperatorArgs = append(o.OperatorArgs, "--leader-elect") },
		disrupt: func(ctx context.Context, r *run) error {
			for i, at := range []float64{0.3, 0.65} {
				if err := r.waitImported(ctx, at); err != nil {
					return err
				}
				leader := stack.Leader(r.operators()...)
				if leader == nil {
					return fmt.Errorf("no operator replica holds the lease at %.0f%% of the import", at*100)
				}
				r.kill(leader, "leader SIGKILL")
				if err := r.waitFor(ctx, "another replica to take the lease", func() bool { return stack.Leader(r.operators()...) != nil }); err != nil {
					return err
				}
				// The killed replica comes back, as its Deployment would bring it, and waits as a follower.
				if leader == r.s.Operator {
					if err := r.s.StartOperator(); err != nil {
						return err
					}
				} else if err := r.startReplica(fmt.Sprintf("operator-r%d", i+2)); err != nil {
					return err
				}
				r.mark("")
			}
			return nil
		}},
	{key: "g", name: "act then fail: 5% 504/500 + 5% dropped after the write; updates and deletes",
		options: func(o *stack.Options) { o.Faults = actThenFailFaults },
		disrupt: actThenFail(actThenFailFaults)},
	{key: "h", name: "as g + lists lag 3s + PATCH 204 + recryption without id + PascalCase enums",
		options: func(o *stack.Options) { o.Faults = realismFaults },
		disrupt: actThenFail(realismFaults)},
}

// result is one row of the table.
type result struct {
	scenario    string
	injected    string
	requests    int
	duplicates  int
	lostOrphans int
	converge    time.Duration
	throttle    throttleReport
	confirmed   int
	unknown     int
	adopted     int // Adopted Events: records found in Intune after a create whose answer was lost
	err         string
	violations  []string // the failed checks, by name
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	t.Logf("N=%d, seed %d (FAULTS_SEED=%d repeats the random moments and graphsim's random faults)", *flagN, *flagSeed, *flagSeed)
	fx, err := newFixtures(ctx, *flagN)
	if err != nil {
		t.Fatalf("[FAULTS_SEED=%d] fixtures: %v", *flagSeed, err)
	}
	var results []result
	var failed []string
	for _, sc := range scenarios {
		named := strings.Contains(","+*flagOnly+",", ","+sc.key+",")
		if (*flagOnly != "" && !named) || (sc.optIn && !named) {
			continue
		}
		t.Run(sc.key+" "+sc.name, func(t *testing.T) {
			res := runScenario(t, sc, fx)
			results = append(results, res)
			if t.Failed() {
				failed = append(failed, fmt.Sprintf("%s (%s)", sc.key, strings.Join(res.violations, "; ")))
			}
		})
	}
	if len(failed) > 0 { // before the table
		t.Errorf("FAILED with FAULTS_SEED=%d (N=%d): %s", *flagSeed, *flagN, strings.Join(failed, " | "))
	}
	t.Log("\n" + table(results))
}

// faultSeed seeds graphsim's random faults for one scenario from the run's seed.
func faultSeed(key string) int64 { return int64(*flagSeed)*131 + int64(key[0]) }

// run is the state of one scenario while it runs.
type run struct {
	t   *testing.T
	s   *stack.Stack
	fx  *fixtures
	rng *rand.Rand
	// violate fails the scenario with the seed and the check's name first.
	violate func(check, format string, args ...any)

	mu         sync.Mutex
	base       int              // resources before the N UserPfxCertificates (samples and extras)
	deleted    int              // resources the scenario deleted on purpose
	journal    []graphsim.Entry // journals of graphsim runs before a restart
	boundaries []time.Time      // when an operator process was killed or started
	events     map[string]int   // what was injected besides graphsim's faults
	planned    map[*stack.Process]bool
	replicas   []*stack.Replica
}

func runScenario(t *testing.T, sc scenario, fx *fixtures) result {
	res := result{scenario: sc.key + " " + sc.name}
	ctx, cancel := context.WithTimeout(context.Background(), *flagDeadline)
	defer cancel()
	// violate fails the scenario naming the seed and the check first, and keeps the check for the summaries.
	violate := func(check, format string, args ...any) {
		detail := fmt.Sprintf(format, args...)
		t.Errorf("[FAULTS_SEED=%d scenario %s] check %q violated: %s", *flagSeed, sc.key, check, detail)
		if !slices.Contains(res.violations, check) {
			res.violations = append(res.violations, check)
		}
	}
	fail := func(err error) result {
		violate("scenario ran to its end", "%v", err)
		res.err = err.Error()
		return res
	}
	// Registered first, so it runs last: after the summary below.
	var s *stack.Stack
	t.Cleanup(func() {
		if t.Failed() && s != nil {
			for path, log := range s.OperatorLogs() {
				t.Logf("%s (tail):\n%s", path, tail(log, 40))
			}
		}
	})
	t.Cleanup(func() {
		if t.Failed() { // the verdict, before any log dump
			t.Logf("SCENARIO %s FAILED with FAULTS_SEED=%d: violated %s. Repeat: FAULTS_SEED=%d FAULTS_SCENARIOS=%s FAULTS_N=%d make test-faults",
				sc.key, *flagSeed, strings.Join(res.violations, ", "), *flagSeed, sc.key, *flagN)
		}
	})

	dir := t.TempDir()
	if os.Getenv("FAULTS_KEEP") != "" { // keep logs, state and journal files for a post-mortem
		var err error
		if dir, err = os.MkdirTemp("", "faults-"+sc.key+"-"); err != nil {
			return fail(err)
		}
		t.Logf("keeping %s", dir)
	}
	// FAULTS_BIN: build the operator and graphsim there instead of bin/ (a run of its own, undisturbed by
	// other builds of the tree).
	opts := stack.Options{Dir: dir, ExtraUsers: fx.users, NoDefaultConnection: true, BinDir: os.Getenv("FAULTS_BIN")}
	if sc.options != nil {
		sc.options(&opts)
	}
	opts.Faults.Seed = faultSeed(sc.key) // graphsim's random faults follow the run's seed
	var err error
	if s, err = stack.Start(ctx, opts); err != nil {
		return fail(err)
	}
	defer s.Stop()
	r := &run{t: t, s: s, fx: fx, rng: rand.New(rand.NewPCG(*flagSeed, uint64(sc.key[0]))),
		events: map[string]int{}, planned: map[*stack.Process]bool{}, violate: violate}
	if strings.Contains(strings.Join(opts.OperatorArgs, " "), "--leader-elect") {
		if err := r.startReplica("operator-r1"); err != nil {
			return fail(err)
		}
	}

	material, err := r.setUp(ctx)
	if err != nil {
		return fail(err)
	}
	start := time.Now()
	secrets, upfx := fx.importObjects()
	if err := createAll(ctx, s.Client, 8, secrets); err != nil {
		return fail(err)
	}
	if err := createAll(ctx, s.Client, 8, upfx); err != nil {
		return fail(err)
	}
	if sc.disrupt != nil {
		if err := sc.disrupt(ctx, r); err != nil {
			return fail(fmt.Errorf("disrupting: %w", err))
		}
	}
	final, err := r.waitAllReady(ctx, &res)
	res.converge = time.Since(start).Round(time.Second)
	if err != nil {
		return fail(err)
	}

	if err := s.Sim(http.MethodPost, "faults", graphsim.Faults{}, nil); err != nil {
		return fail(err)
	}
	records, err := s.Records()
	if err != nil {
		return fail(err)
	}
	want := userPfxExpectations(fx, material)
	for _, o := range final.userPfx {
		// config/samples may bring UserPfxCertificates the test did not issue the certificate of: for those the
		// expectation is the resource's own status (still one record, with that thumbprint, nothing else).
		if _, ok := want[o.Name]; !ok && !strings.HasPrefix(o.Name, "cert-") {
			if user, _, found := strings.Cut(o.Status.ID, "-"); found {
				want[o.Name] = expectation{user, o.Status.Thumbprint}
			}
		}
	}
	l := reconcileLedger(final, records, want)
	res.duplicates, res.lostOrphans, res.unknown = len(l.duplicates), len(l.lost)+len(l.orphans), len(l.unknownOutcome)
	for _, f := range l.duplicates {
		violate("no duplicate record", "%s", f)
	}
	for _, f := range l.lost {
		violate("no lost record", "%s", f)
	}
	for _, f := range l.orphans {
		violate("no orphaned record", "%s", f)
	}
	for _, f := range l.unknownOutcome {
		t.Logf("left CreateOutcomeUnknown by design, Intune holds its record: %s", f)
	}
	claims := &intunev1alpha1.RecordClaimList{}
	if err := s.Client.List(ctx, claims); err != nil {
		return fail(err)
	}
	for _, f := range unclaimedRecords(final, claims.Items) {
		violate("every record claimed by its resource", "%s", f)
	}
	var checkFailures []string
	if err := s.Sim(http.MethodGet, "checkFailures", nil, &checkFailures); err != nil {
		return fail(err)
	}
	for _, f := range checkFailures {
		violate("connector opens every pushed PFX", "%s", f)
	}

	if err := r.saveJournal(); err != nil {
		return fail(err)
	}
	if os.Getenv("FAULTS_KEEP") != "" { // the whole journal, across graphsim restarts, for a post-mortem
		if data, err := json.Marshal(r.journal); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "journal.json"), data, 0o600)
		}
	}
	res.throttle = analyseThrottling(r.journal, r.boundaries)
	res.requests = res.throttle.requests
	for _, e := range res.throttle.earlyRetries {
		violate("no retry inside its own Retry-After", "%s", e)
	}
	// Intune throttles per tenant and app: after a 429 no call of that app may be sent inside its Retry-After
	// (the Graph client's shared Throttle). FAULTS_LAX_THROTTLE=1 only reports it.
	if os.Getenv("FAULTS_LAX_THROTTLE") == "" && res.throttle.appWindow > 0 {
		violate("no request of a throttled app inside its Retry-After", "%d requests were sent to a tenant and app inside the Retry-After of an earlier 429", res.throttle.appWindow)
	}
	res.injected = r.injected()
	if res.adopted, err = countEvents(ctx, s.Client, "Adopted"); err != nil {
		return fail(err)
	}

	findings, err := s.LeakScan(ctx, r.secrets(material))
	if err != nil {
		return fail(err)
	}
	for _, f := range findings {
		violate("no secret anywhere", "%s", f)
	}
	for _, p := range r.operators() {
		if !p.Running() {
			violate("no unplanned exit", "operator process %s exited although the test did not kill it (see %s)", p.Name, p.LogPath)
		}
	}
	if !t.Failed() {
		t.Logf("%d resources Ready, %d Graph requests, %d answered 429 (%d of them to a call sent again, none too early), converged in %s",
			final.count(), res.requests, res.throttle.throttled, res.throttle.judged, res.converge)
	}
	return res
}

// setUp applies config/samples (one resource of every kind and both connection kinds, pointed at graphsim)
// and the extra resources of the other kinds, just before the N UserPfxCertificates.
func (r *run) setUp(ctx context.Context) (*stack.SampleMaterial, error) {
	if err := r.s.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		return nil, err
	}
	if err := r.s.Sim(http.MethodPut, "pfxUserCertificates/"+stack.TenantID, graphsim.PfxUserCertificate{
		ID: extraPfxUserRecordID, TenantID: stack.TenantID, UserID: stack.AliceID, UserUpn: "alice@contoso.com",
	}, nil); err != nil {
		return nil, err
	}
	material, err := r.s.ApplySamples(ctx, namespace)
	if err != nil {
		return nil, err
	}
	if err := createAll(ctx, r.s.Client, 4, r.fx.otherKinds()); err != nil {
		return nil, err
	}
	// Everything but the N UserPfxCertificates: config/samples' resources (however many it has) and the extras.
	all, err := listResources(ctx, r.s.Client)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.base = all.count()
	r.mu.Unlock()
	return material, nil
}

// waitAllReady polls until every resource is Ready, acting as the documented user for recryption requests
// whose create outcome the operator cannot know: when Intune holds no such request, it annotates the
// resource so the operator creates it once more.
func (r *run) waitAllReady(ctx context.Context, res *result) (*resources, error) {
	want := r.resourceCount()
	confirmed := map[string]string{} // resource -> resourceVersion annotated
	var last []string
	for {
		r.restartIfCrashed()
		all, err := listResources(ctx, r.s.Client)
		if err == nil {
			n, held, err := r.confirmNotCreated(ctx, all, confirmed)
			if err != nil {
				r.t.Logf("confirming a recryption request: %v", err)
			}
			res.confirmed += n
			var pending []string
			for _, p := range all.notReady() {
				// CreateOutcomeUnknown while Intune holds the request is the designed end (the ledger reports it).
				if !held[strings.SplitN(strings.TrimPrefix(p, "PfxRecryptionRequest/"), " ", 2)[0]] || !strings.HasPrefix(p, "PfxRecryptionRequest/") {
					pending = append(pending, p)
				}
			}
			if len(pending) == 0 && all.count() == want && err == nil {
				return all, nil
			}
			last = pending
			if all.count() != want {
				last = append(last, fmt.Sprintf("%d resources, want %d", all.count(), want))
			}
		}
		select {
		case <-ctx.Done():
			if len(last) > 10 {
				last = append(last[:10], fmt.Sprintf("... %d more", len(last)-10))
			}
			return nil, fmt.Errorf("not every resource became Ready within the scenario's bound: %s", strings.Join(last, ", "))
		case <-time.After(2 * time.Second):
		}
	}
}

// resourceCount is how many resources a scenario has: N UserPfxCertificates, those of config/samples (both
// connections and at least one resource of every kind) and the extras of the other kinds, less those it
// deleted.
func (r *run) resourceCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.fx.certs) + r.base - r.deleted
}

// confirmNotCreated annotates the PfxRecryptionRequests left CreateOutcomeUnknown whose request Intune does not
// hold, and returns how many it annotated and the names of those whose request Intune holds (left so by design).
func (r *run) confirmNotCreated(ctx context.Context, all *resources, confirmed map[string]string) (int, map[string]bool, error) {
	var records *graphsim.AdminTenantRecords
	n := 0
	held := map[string]bool{}
	for i := range all.recryption {
		o := &all.recryption[i]
		ready := meta.FindStatusCondition(o.Status.Conditions, intunev1alpha1.ConditionReady)
		if ready == nil || ready.Reason != intunev1alpha1.ReasonCreateOutcomeUnknown || o.Annotations[intunev1alpha1.AnnotationConfirmNotCreated] == "true" ||
			confirmed[o.Name] == o.ResourceVersion {
			continue
		}
		if records == nil {
			recs, err := r.s.Records()
			if err != nil {
				return n, held, err
			}
			records = &recs
		}
		for _, rec := range records.PfxRecryptionRequests {
			held[o.Name] = held[o.Name] || (strings.EqualFold(rec.UserID, o.Spec.UserID) && strings.EqualFold(rec.DeviceID, o.Spec.DeviceID) &&
				strings.EqualFold(rec.ProfileID, o.Spec.ProfileID))
		}
		if held[o.Name] {
			continue // the operator cannot adopt it: settled, and reported by the ledger
		}
		patch := client.RawPatch("application/merge-patch+json",
			[]byte(`{"metadata":{"annotations":{"`+intunev1alpha1.AnnotationConfirmNotCreated+`":"true"}}}`))
		if err := r.s.Client.Patch(ctx, o, patch); err != nil {
			return n, held, err
		}
		confirmed[o.Name] = o.ResourceVersion
		n++
		r.t.Logf("PfxRecryptionRequest/%s: CreateOutcomeUnknown and Intune holds no such request: confirmed with %s", o.Name, intunev1alpha1.AnnotationConfirmNotCreated)
	}
	return n, held, nil
}

// updateAndDelete changes and deletes resources of every kind that has updates or deletes, so that the
// operator's PATCHes and DELETEs meet graphsim's faults too: every fifth UserPfxCertificate changes its
// intendedPurpose (a PATCH of its record), every eighth (another one, mostly) is deleted with its record, the
// first extra ManagedDeviceCertificateState changes its device name (PATCH) and the second is deleted, and the
// second extra PfxRecryptionRequest is deleted.
func (r *run) updateAndDelete(ctx context.Context) error {
	var deletes []client.Object
	for i := range r.fx.certs {
		name := fmt.Sprintf("cert-%05d", i)
		switch {
		case i%8 == 3:
			deletes = append(deletes, &intunev1alpha1.UserPfxCertificate{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}})
		case i%5 == 1:
			patch := client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"intendedPurpose":"smimeSigning"}}`))
			obj := &intunev1alpha1.UserPfxCertificate{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
			if err := r.s.Client.Patch(ctx, obj, patch); err != nil {
				return fmt.Errorf("updating %s: %w", name, err)
			}
		}
	}
	patch := client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"deviceDisplayName":"Alice's renamed device"}}`))
	if err := r.s.Client.Patch(ctx, &intunev1alpha1.ManagedDeviceCertificateState{ObjectMeta: metav1.ObjectMeta{Name: "device-0", Namespace: namespace}}, patch); err != nil {
		return fmt.Errorf("updating device-0: %w", err)
	}
	deletes = append(deletes,
		&intunev1alpha1.ManagedDeviceCertificateState{ObjectMeta: metav1.ObjectMeta{Name: "device-1", Namespace: namespace}})
	// A recryption request left CreateOutcomeUnknown cannot delete a record it does not know (by design: the
	// user is told to remove it in Intune), so only one whose id the operator holds is deleted.
	recrypt := &intunev1alpha1.PfxRecryptionRequest{}
	if err := r.s.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "recrypt-1"}, recrypt); err != nil {
		return err
	}
	if recrypt.Status.ID != "" {
		deletes = append(deletes, recrypt)
	} else {
		r.t.Logf("PfxRecryptionRequest/recrypt-1 has no id yet: not deleted")
	}
	for _, obj := range deletes {
		if err := r.s.Client.Delete(ctx, obj); err != nil {
			return fmt.Errorf("deleting %T %s: %w", obj, obj.GetName(), err)
		}
		r.mu.Lock()
		r.deleted++
		r.mu.Unlock()
	}
	r.count("updates and deletes")
	return nil
}

// waitImported waits until graphsim holds fraction of the N userPfxCertificate records.
func (r *run) waitImported(ctx context.Context, fraction float64) error {
	target := int(fraction * float64(len(r.fx.certs)))
	return r.waitFor(ctx, fmt.Sprintf("%d imported records", target), func() bool {
		recs, err := r.s.Records()
		return err == nil && len(recs.UserPfxCertificates) >= target
	})
}

func (r *run) waitFor(ctx context.Context, what string, done func() bool) error {
	for !done() {
		r.restartIfCrashed()
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

// moments are k random fractions of the import, sorted, between 5% and 90%.
func (r *run) moments(k int) []float64 {
	out := make([]float64, k)
	for i := range out {
		out[i] = 0.05 + 0.85*r.rng.Float64()
	}
	slices.Sort(out)
	return out
}

// pause sleeps a random time up to d, so the trouble does not hit in step with the polling.
func (r *run) pause(d time.Duration) { time.Sleep(time.Duration(r.rng.Int64N(int64(d)))) }

// kill SIGKILLs an operator process on purpose.
func (r *run) kill(p *stack.Process, event string) {
	r.mu.Lock()
	r.planned[p] = true
	r.mu.Unlock()
	p.Kill()
	r.mark(event)
}

// mark records that an operator process was killed or started now (event "" = started), which excuses
// a repeat of a throttled call: the new process could not know of the 429.
func (r *run) mark(event string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.boundaries = append(r.boundaries, time.Now())
	if event != "" {
		r.events[event]++
	}
}

func (r *run) count(event string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events[event]++
}

func (r *run) startReplica(name string) error {
	rep, err := r.s.StartReplica(name)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.replicas = append(r.replicas, rep)
	r.mu.Unlock()
	return nil
}

// operators are the operator processes that should be running: the primary and the replicas not killed.
func (r *run) operators() []*stack.Process {
	r.mu.Lock()
	defer r.mu.Unlock()
	procs := []*stack.Process{r.s.Operator}
	for _, rep := range r.replicas {
		procs = append(procs, rep.Process)
	}
	var alive []*stack.Process
	for _, p := range procs {
		if !r.killed(p) {
			alive = append(alive, p)
		}
	}
	return alive
}

// killed reports a process the test killed on purpose (its run is over).
func (r *run) killed(p *stack.Process) bool { return !p.Running() && r.planned[p] }

// restartIfCrashed starts the primary operator again if it exited on its own, as its Deployment would;
// the exit itself fails the scenario (the check at the end sees a dead process in the log).
func (r *run) restartIfCrashed() {
	if r.s.Operator.Running() {
		return
	}
	r.mu.Lock()
	planned := r.planned[r.s.Operator]
	r.mu.Unlock()
	if planned {
		return
	}
	r.violate("no unplanned exit", "the operator exited on its own (see %s); starting it again", r.s.Operator.LogPath)
	r.mu.Lock()
	r.planned[r.s.Operator] = true // reported once
	r.mu.Unlock()
	if err := r.s.StartOperator(); err != nil {
		r.violate("no unplanned exit", "restarting the operator: %v", err)
	}
	r.mark("")
}

// saveJournal moves graphsim's journal into the run's (graphsim forgets it when it restarts).
func (r *run) saveJournal() error {
	entries, err := r.s.Journal()
	if err != nil {
		return err
	}
	if err := r.s.Sim(http.MethodDelete, "journal", nil, nil); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.journal = append(r.journal, entries...)
	return nil
}

// injected describes the trouble: graphsim's answers from the journal, and the process events.
func (r *run) injected() string {
	var throttled, errors, dropped, actedFailed, actedDropped int
	actedBy := map[string]int{} // act-then-fail faults by method
	for _, e := range r.journal {
		if !isGraph(e) {
			continue
		}
		if e.ActedStatus != 0 {
			actedBy[e.Method]++
		}
		switch {
		case e.ActedStatus != 0 && e.Status == 0:
			actedDropped++
		case e.ActedStatus != 0:
			actedFailed++
		case e.Status == http.StatusTooManyRequests:
			throttled++
		case e.Status == 0:
			dropped++
		case e.Status >= 500:
			errors++
		}
	}
	var parts []string
	for _, p := range []struct {
		what string
		n    int
	}{{"429", throttled}, {"5xx", errors}, {"dropped", dropped}, {"acted then 5xx", actedFailed}, {"acted then dropped", actedDropped}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%s x%d", p.what, p.n))
		}
	}
	if actedFailed+actedDropped > 0 {
		parts = append(parts, fmt.Sprintf("(after POST x%d, PATCH x%d, DELETE x%d)",
			actedBy[http.MethodPost], actedBy[http.MethodPatch], actedBy[http.MethodDelete]))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, what := range []string{"operator SIGKILL", "control plane restart", "graphsim restart", "leader SIGKILL", "updates and deletes"} {
		if n := r.events[what]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s x%d", what, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// secrets are the values the leak scan looks for.
func (r *run) secrets(m *stack.SampleMaterial) map[string]string {
	first := base64.StdEncoding.EncodeToString(r.fx.certs[0].pfx)
	last := base64.StdEncoding.EncodeToString(r.fx.certs[len(r.fx.certs)-1].pfx)
	keyLines := strings.Split(string(r.fx.certs[0].keyPEM), "\n")
	return map[string]string{
		"the PFX password":          r.fx.password,
		"the sample PFX password":   stack.SamplePassword,
		"the client secret":         r.s.ClientSecret,
		"a PFX (base64)":            first[100:160],
		"another PFX (base64)":      last[200:260],
		"the tls.key (a PEM line)":  keyLines[3],
		"the sample tls.key (line)": strings.Split(string(m.Bob.KeyPEM()), "\n")[3],
	}
}

func table(results []result) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "scenario\tfaults injected\tGraph requests\tduplicates\tlost/orphaned\tconverged in\tearly retries\tsame-app requests in a 429 window\tadopted\tconfirmed not-created\tverdict")
	for _, r := range results {
		verdict := "ok"
		if r.err != "" {
			verdict = "FAILED: " + r.err
		} else if r.duplicates+r.lostOrphans+len(r.throttle.earlyRetries) > 0 {
			verdict = "FAILED"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%s\n", r.scenario, r.injected, r.requests, r.duplicates,
			r.lostOrphans, r.converge, len(r.throttle.earlyRetries), r.throttle.appWindow, r.adopted, r.confirmed, verdict)
	}
	_ = w.Flush()
	return b.String()
}

// tail returns the last lines of s, each cut to 400 bytes (controller-runtime's errors carry stack traces).
// countEvents counts the Events of the scenario's namespace with reason.
func countEvents(ctx context.Context, c client.Client, reason string) (int, error) {
	var events corev1.EventList
	if err := c.List(ctx, &events, client.InNamespace(namespace)); err != nil {
		return 0, fmt.Errorf("listing Events: %w", err)
	}
	n := 0
	for _, e := range events.Items {
		if e.Reason == reason {
			n++
		}
	}
	return n, nil
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	for i, l := range all {
		if len(l) > 400 {
			all[i] = l[:400] + "..."
		}
	}
	return strings.Join(all, "\n")
}
