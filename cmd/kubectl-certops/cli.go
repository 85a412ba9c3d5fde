package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
	"github.com/certops/intune-cert-operator/internal/version"
)

// environment is what a run talks to; tests replace the Graph HTTP client and the clock.
type environment struct {
	stdout, stderr io.Writer
	// graphHTTP signs in and calls Graph; nil = the system trust store (SSL_CERT_FILE works), as the operator.
	graphHTTP *http.Client
	now       func() time.Time
}

// Exit codes: 0 success, 1 a failure (a connection that does not work, an API error), 2 wrong usage.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	defaultWait = 2 * time.Minute
)

// usageError is wrong usage: printed with the command's help, exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// errReported is a failure already reported on stdout (a verdict): exit 1 without another message.
var errReported = errors.New("failed")

// outputJSON is the -o value that prints JSON instead of a table.
const outputJSON = "json"

const topUsage = `kubectl certops: intune-cert-operator's kubectl plugin

Usage:
  kubectl certops status [-n NAMESPACE | -A] [-o table|json]
      every UserPfxCertificate, ManagedDeviceCertificateState, PfxRecryptionRequest and PfxUserCertificate
      (and UserPfxCertificateSet where installed) with its Ready reason and its Intune record as last synced
  kubectl certops inventory [--user UPN] [--connection KIND/NAME] [-o table|json]
      the userPfxCertificates records Intune holds, marked managed (by which resource) or unmanaged, and expired
  kubectl certops reimport NAME [-n NAMESPACE] [--wait]
      push one UserPfxCertificate's record to Intune again now (annotation intune.certops.dev/reimport)
  kubectl certops check-connection NAME [-n NAMESPACE | --cluster] [-o table|json]
      sign in with a GraphConnection (or ClusterGraphConnection) as the operator would and read from Graph
  kubectl certops version

Common flags: --kubeconfig FILE, --context NAME, -n/--namespace NAMESPACE.
Graph is reached with the system trust store (SSL_CERT_FILE adds a CA); inventory and check-connection read
the connection's credential Secret, so they need read access to it (a ClusterGraphConnection's Secrets live in
--operator-namespace, default intune-cert-operator-system).
`

// commonFlags are kubectl's connection flags, plus the output format.
type commonFlags struct {
	kubeconfig, context, namespace, output string
}

func (c *commonFlags) bind(fs *pflag.FlagSet, withOutput bool) {
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "Path to the kubeconfig file (default: KUBECONFIG, else ~/.kube/config).")
	fs.StringVar(&c.context, "context", "", "The kubeconfig context to use.")
	fs.StringVarP(&c.namespace, "namespace", "n", "", "Namespace (default: the context's namespace).")
	if withOutput {
		fs.StringVarP(&c.output, "output", "o", "table", "Output format: table or json.")
	}
}

func (c *commonFlags) checkOutput() error {
	if c.output != "table" && c.output != outputJSON {
		return usagef("unknown output format %q: use table or json", c.output)
	}
	return nil
}

// kube is a client of the kubeconfig's cluster and the namespace the flags or the context name.
type kube struct {
	client    client.Client
	namespace string
}

func (c *commonFlags) connect() (*kube, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = c.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: c.context}
	overrides.Context.Namespace = c.namespace
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	namespace, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "kubectl-certops/" + version.Version
	cl, err := client.New(cfg, client.Options{Scheme: scheme()})
	if err != nil {
		return nil, err
	}
	return &kube{client: cl, namespace: namespace}, nil
}

// connectionFlags resolve connections as the operator does.
type connectionFlags struct {
	operatorNamespace string
	allowedHosts      string
	allowAmbient      bool
}

func (c *connectionFlags) bind(fs *pflag.FlagSet) {
	fs.StringVar(&c.operatorNamespace, "operator-namespace", "intune-cert-operator-system",
		"Namespace of the ClusterGraphConnections' Secrets (the operator's --operator-namespace).")
	fs.StringVar(&c.allowedHosts, "allowed-endpoint-hosts", "",
		"As the operator's flag: hosts a GraphConnection's graphEndpoint and authorityHost may name besides its cloud's.")
	fs.BoolVar(&c.allowAmbient, "allow-namespaced-ambient-credentials", false,
		"As the operator's flag: let GraphConnections use ambient credentials (here: this machine's).")
}

// provider builds a connection.Provider reading straight from the API server (no cache).
func (c *connectionFlags) provider(k *kube, env *environment) (*connection.Provider, error) {
	hosts, err := connection.ParseAllowedHosts(c.allowedHosts)
	if err != nil {
		return nil, usagef("--allowed-endpoint-hosts: %v", err)
	}
	return &connection.Provider{Cache: k.client, Live: k.client, Tokens: k.client, OperatorNamespace: c.operatorNamespace,
		Policy:     connection.Policy{AllowNamespacedAmbientCredentials: c.allowAmbient, AllowedEndpointHosts: hosts},
		HTTPClient: env.graphHTTP}, nil
}

type command struct {
	name, usage string
	run         func(ctx context.Context, env *environment, args []string) error
}

const (
	usageStatus          = "kubectl certops status [-n NAMESPACE | -A] [-o table|json]"
	usageInventory       = "kubectl certops inventory [--user UPN] [--connection KIND/NAME] [-o table|json]"
	usageReimport        = "kubectl certops reimport NAME [-n NAMESPACE] [--wait [--timeout 2m]]"
	usageCheckConnection = "kubectl certops check-connection NAME [-n NAMESPACE | --cluster] [-o table|json]"
)

var commands = []command{
	{"status", usageStatus, runStatus},
	{"inventory", usageInventory, runInventory},
	{"reimport", usageReimport, runReimport},
	{"check-connection", usageCheckConnection, runCheckConnection},
	{"version", "kubectl certops version", func(_ context.Context, env *environment, _ []string) error {
		_, err := fmt.Fprintln(env.stdout, "kubectl-certops", version.Version)
		return err
	}},
}

func run(ctx context.Context, args []string, env *environment) int {
	// The Graph client logs through controller-runtime's logger; the plugin's output is its tables.
	log.SetLogger(logr.Discard())
	if env.now == nil {
		env.now = time.Now
	}
	if len(args) == 0 {
		fmt.Fprint(env.stderr, topUsage)
		return exitUsage
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(env.stdout, topUsage)
		return exitOK
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, env, args[1:])
		var usage usageError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, pflag.ErrHelp):
			return exitOK
		case errors.As(err, &usage):
			fmt.Fprintf(env.stderr, "error: %s\nUsage: %s\n", usage.msg, c.usage)
			return exitUsage
		case errors.Is(err, errReported):
			return exitFailed
		default:
			fmt.Fprintf(env.stderr, "error: %v\n", err)
			return exitFailed
		}
	}
	fmt.Fprintf(env.stderr, "error: unknown command %q\n\n%s", args[0], topUsage)
	return exitUsage
}

// parse parses a subcommand's flags; help goes to stdout.
func parse(env *environment, name, usage string, fs *pflag.FlagSet, args []string) error {
	fs.SetOutput(env.stdout)
	fs.Usage = func() {
		fmt.Fprintf(env.stdout, "Usage: %s\n\nFlags:\n%s", usage, fs.FlagUsages())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usagef("%s: %v", name, err)
	}
	return nil
}

func newFlagSet(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	return fs
}

// orDash shows an empty cell as "-".
func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// formatTime is a table cell for a time: RFC 3339 in UTC, "-" when unset.
func formatTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// scheme knows the built-in kinds and the operator's.
func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := intunev1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}
