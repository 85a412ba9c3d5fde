// Command bench measures the operator at scale: the real operator binary against the local control plane
// and graphsim (each its own process, via test/stack), in a cluster that also holds many unrelated
// Secrets. It runs five scenarios — import, steady state, rotation, apply-to-Ready latency, and fairness
// between two namespaces sharing the write budget — prints a markdown table with each target met or not, and
// writes the numbers as JSON. See docs/performance.md.
//
//	make bench BENCH_ARGS="-quick"        # about a minute of measuring: N=100, 2000 unrelated Secrets
//	make bench                            # N=1000, 20000 unrelated Secrets of 20 KiB, Intune's write limit
//	make bench BENCH_ARGS="-n 10000 -scenarios import"
//	make bench BENCH_ARGS="-n 100000 -unrelated 50000 -seed -scenarios import,steady ..."   # adoption: seed.go
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// config is every knob of a run; the JSON output repeats it.
type config struct {
	N                 int           `json:"n"`
	Unrelated         int           `json:"unrelatedSecrets"`
	UnrelatedSize     int           `json:"unrelatedSecretBytes"`
	UnrelatedApplied  bool          `json:"unrelatedSecretsApplied"`
	Latency           time.Duration `json:"graphLatency"`
	AppWrites         int           `json:"graphAppWritesPerWindow"`
	Window            time.Duration `json:"graphWindow"`
	WriteBudget       int           `json:"writeRequestsPer20Seconds"`
	Concurrency       int           `json:"maxConcurrentReconciles"`
	KubeQPS           float64       `json:"kubeAPIQPS"`
	KubeBurst         int           `json:"kubeAPIBurst"`
	Resync            time.Duration `json:"steadyResyncPeriod"`
	SteadyCycles      int           `json:"steadyCycles"`
	RotateFraction    float64       `json:"rotateFraction"`
	Tries             int           `json:"latencyTries"`
	FairN             int           `json:"fairnessImport"`
	FairTries         int           `json:"fairnessTries"`
	Scenarios         []string      `json:"scenarios"`
	CreateConcurrency int           `json:"createConcurrency"`
	Pprof             string        `json:"-"`
	Quick             bool          `json:"quick"`
	Seed              bool          `json:"seededRecords"`
	JSONPath          string        `json:"-"`
	Dir               string        `json:"-"`
	Keep              bool          `json:"-"`
}

var allScenarios = []string{"import", "latency", "rotation", "steady", "fairness", "set", "seen"}

func main() {
	// The benchmark's own clients log nothing: a watch that ends and restarts is client-go's business.
	ctrllog.SetLogger(logr.Discard())
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	res, err := run(ctx, cfg)
	if res != nil {
		fmt.Println()
		fmt.Print(res.markdown())
		if werr := res.writeJSON(cfg.JSONPath); werr != nil {
			fmt.Fprintln(os.Stderr, "bench:", werr)
		} else {
			fmt.Printf("\nJSON written to %s\n", cfg.JSONPath)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	c := &config{}
	scenarios := fs.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios to run: "+strings.Join(allScenarios, ", ")+" (rotation and steady need import, which then runs first)")
	fs.IntVar(&c.N, "n", 1000, "UserPfxCertificates to import, each with its own PFX Secret and Entra user")
	fs.IntVar(&c.Unrelated, "unrelated", 20000, "unrelated Secrets in the cluster (the operator must not pay for them)")
	fs.IntVar(&c.UnrelatedSize, "unrelated-size", 20<<10, "bytes of data in each unrelated Secret")
	fs.BoolVar(&c.UnrelatedApplied, "unrelated-applied", false, "give each unrelated Secret the last-applied-configuration annotation kubectl apply leaves (it holds the data again)")
	fs.DurationVar(&c.Latency, "latency", 50*time.Millisecond, "latency graphsim adds to every Graph request (scenario latency always uses 0)")
	fs.IntVar(&c.AppWrites, "app-writes", 100, "graphsim's write budget per app per -window (Intune: 100 per 20 s); tenant and request budgets scale with it")
	fs.DurationVar(&c.Window, "window", 20*time.Second, "graphsim's throttling window")
	fs.IntVar(&c.WriteBudget, "write-budget", 0, "the connection's writeRequestsPer20Seconds (0: 95% of graphsim's per-app write rate, at most 200, the CRD's maximum)")
	fs.IntVar(&c.Concurrency, "concurrency", 8, "the operator's --max-concurrent-reconciles")
	fs.Float64Var(&c.KubeQPS, "kube-qps", 50, "the operator's --kube-api-qps")
	fs.IntVar(&c.KubeBurst, "kube-burst", 100, "the operator's --kube-api-burst")
	fs.DurationVar(&c.Resync, "resync", 0, "the operator's --resync-period in the steady-state scenario (0: max(10s, N x 30ms), one read per 30 ms at most)")
	fs.IntVar(&c.SteadyCycles, "steady-cycles", 3, "resync periods the steady-state scenario measures (after one to warm up)")
	fs.Float64Var(&c.RotateFraction, "rotate", 0.1, "fraction of the PFX Secrets the rotation scenario replaces")
	fs.IntVar(&c.Tries, "tries", 50, "single-certificate creations the latency scenario times")
	fs.IntVar(&c.FairN, "fair-n", 2000, "UserPfxCertificates namespace A imports in the fairness scenario")
	fs.IntVar(&c.FairTries, "fair-tries", 5, "single certificates namespace B applies, one at a time, while A imports (fairness scenario)")
	fs.StringVar(&c.Pprof, "pprof", "", "address the operator serves Go's profiler on (--pprof-bind-address), e.g. 127.0.0.1:6060, to take heap profiles during a run")
	fs.IntVar(&c.CreateConcurrency, "create-concurrency", 16, "parallel API requests the benchmark itself makes to create objects")
	fs.BoolVar(&c.Quick, "quick", false, "a short run: N=100, 2000 unrelated Secrets, 200 writes per 20 s, 2 steady cycles, 25 latency tries, fairness import of 150 (flags given explicitly still win)")
	fs.BoolVar(&c.Seed, "seed", false, "give graphsim the N records the operator would write before the import, so the import adopts them without a Graph write: "+
		"for memory and steady state at N beyond what Intune's write limit imports in hours (seed.go); raise -app-writes to lift graphsim's throttling")
	fs.StringVar(&c.JSONPath, "json", "bench-results.json", "where to write the results as JSON")
	fs.StringVar(&c.Dir, "dir", "", "working directory for kubeconfigs and logs (default: a new temporary directory)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the working directory (it is always kept after a failure)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if c.Quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := map[string]func(){
			"n":             func() { c.N = 100 },
			"unrelated":     func() { c.Unrelated = 2000 },
			"app-writes":    func() { c.AppWrites = 200 },
			"steady-cycles": func() { c.SteadyCycles = 2 },
			"fair-n":        func() { c.FairN = 150 }, // 150 and 25 tries keep -quick under 3 minutes with seven scenarios
			"tries":         func() { c.Tries = 25 },
		}
		for name, apply := range quick {
			if !set[name] {
				apply()
			}
		}
	}
	for _, s := range strings.Split(*scenarios, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allScenarios, s) {
			return nil, fmt.Errorf("unknown scenario %q (known: %s)", s, strings.Join(allScenarios, ", "))
		}
		if !slices.Contains(c.Scenarios, s) {
			c.Scenarios = append(c.Scenarios, s)
		}
	}
	if (slices.Contains(c.Scenarios, "rotation") || slices.Contains(c.Scenarios, "steady") || slices.Contains(c.Scenarios, "seen")) && !slices.Contains(c.Scenarios, "import") {
		c.Scenarios = append(c.Scenarios, "import")
	}
	if c.N < 1 || c.AppWrites < 1 || c.Window <= 0 || c.Concurrency < 1 || c.Tries < 1 || c.SteadyCycles < 1 || c.FairN < 1 || c.FairTries < 1 {
		return nil, fmt.Errorf("-n, -app-writes, -window, -concurrency, -tries, -steady-cycles, -fair-n and -fair-tries must be positive")
	}
	if c.WriteBudget == 0 {
		perTwenty := float64(c.AppWrites) * float64(20*time.Second) / float64(c.Window)
		c.WriteBudget = min(200, max(1, int(0.95*perTwenty)))
	}
	if c.Resync == 0 {
		c.Resync = max(10*time.Second, time.Duration(c.N)*30*time.Millisecond)
	}
	return c, nil
}

// ran reports whether the scenario was asked for.
func (c *config) ran(scenario string) bool { return slices.Contains(c.Scenarios, scenario) }

// writeRate is graphsim's per-app write limit, in writes per second: the import's lower bound.
func (c *config) writeRate() float64 { return float64(c.AppWrites) / c.Window.Seconds() }
