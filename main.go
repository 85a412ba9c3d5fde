// Command manager runs the intune-cert-operator controllers.
package main

import (
	"crypto/tls"
	"flag"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
	"github.com/certops/intune-cert-operator/internal/controller"
	"github.com/certops/intune-cert-operator/internal/metricsauth"
	"github.com/certops/intune-cert-operator/internal/monitoring"
	"github.com/certops/intune-cert-operator/internal/version"
)

const defaultOperatorNamespace = "intune-cert-operator-system"

func main() {
	var (
		metricsAddr       string
		metricsSecure     bool
		probeAddr         string
		pprofAddr         string
		leaderElect       bool
		watchNamespace    string
		operatorNamespace string
		maxConcurrent     int
		resyncPeriod      time.Duration
		createSettle      time.Duration
		passTimeout       time.Duration
		kubeAPIQPS        float64
		kubeAPIBurst      int
		allowAmbient      bool
		allowedHosts      string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0", "Address the metrics endpoint binds to, e.g. :8443; 0 disables it.")
	flag.BoolVar(&metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS behind Kubernetes authentication and authorization.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the health probes bind to.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "0", "Address Go's profiler (/debug/pprof) binds to, e.g. 127.0.0.1:6060; 0 disables it. It has no authentication.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader, so only one replica reconciles at a time.")
	flag.StringVar(&watchNamespace, "namespace", "", "Watch only this namespace (default: all namespaces).")
	flag.StringVar(&operatorNamespace, "operator-namespace", "", "Namespace of the Secrets of ClusterGraphConnections (default: the pod's namespace, else "+defaultOperatorNamespace+").")
	flag.IntVar(&maxConcurrent, "max-concurrent-reconciles", 8, "Reconciles run in parallel per kind.")
	flag.DurationVar(&resyncPeriod, "resync-period", time.Hour, "How often a resource in sync is compared with Intune again (jittered).")
	flag.DurationVar(&createSettle, "create-settle-time", controller.DefaultCreateSettle,
		"How long a create whose answer was lost (or carried no id) is looked for in Intune's lists, which show new records late, before the record is created again.")
	flag.DurationVar(&passTimeout, "reconcile-timeout", controller.DefaultPassTimeout,
		"The longest one reconcile pass may take (paging, backing off); a pass that runs out starts over.")
	flag.Float64Var(&kubeAPIQPS, "kube-api-qps", 50, "Queries per second to the Kubernetes API server.")
	flag.IntVar(&kubeAPIBurst, "kube-api-burst", 100, "Burst of queries to the Kubernetes API server.")
	flag.BoolVar(&allowAmbient, "allow-namespaced-ambient-credentials", false,
		"Let GraphConnections (namespaced) sign in with the operator's own identity: ManagedIdentity, Environment, and WorkloadIdentity without serviceAccountName. Off: only ClusterGraphConnections may.")
	flag.StringVar(&allowedHosts, "allowed-endpoint-hosts", "",
		"Comma-separated host[:port] list a GraphConnection's graphEndpoint and authorityHost may name besides its cloud's own hosts (a host without port means port 443).")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")

	if operatorNamespace == "" {
		operatorNamespace = podNamespace()
	}
	endpointHosts, err := connection.ParseAllowedHosts(allowedHosts)
	if err != nil {
		log.Error(err, "Invalid flag")
		os.Exit(2)
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(intunev1alpha1.AddToScheme(scheme))

	cacheOpts := controller.CacheOptions()
	if watchNamespace != "" {
		// The operator namespace stays visible for the Secrets of ClusterGraphConnections.
		cacheOpts = controller.CacheOptions(watchNamespace, operatorNamespace)
	}
	metricsOpts := metricsserver.Options{BindAddress: metricsAddr, SecureServing: metricsSecure,
		// HTTP/2 is off: it is exposed to the HTTP/2 Rapid Reset and Stream Cancellation CVEs.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}}
	if metricsSecure {
		metricsOpts.FilterProvider = metricsauth.Filter
	}

	restConfig := ctrl.GetConfigOrDie()
	restConfig.QPS, restConfig.Burst = float32(kubeAPIQPS), kubeAPIBurst
	restConfig.UserAgent = "intune-cert-operator/" + version.Version
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         cacheOpts,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        probeAddr,
		PprofBindAddress:              pprofAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              "intune-cert-operator.certops.dev",
		LeaderElectionNamespace:       operatorNamespace,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		log.Error(err, "Failed to create the manager")
		os.Exit(1)
	}
	ctx := ctrl.SetupSignalHandler()
	if err := controller.Setup(ctx, mgr, controller.Options{
		OperatorNamespace:       operatorNamespace,
		ResyncPeriod:            resyncPeriod,
		CreateSettle:            createSettle,
		PassTimeout:             passTimeout,
		MaxConcurrentReconciles: maxConcurrent,
		ConnectionPolicy: connection.Policy{
			AllowNamespacedAmbientCredentials: allowAmbient, AllowedEndpointHosts: endpointHosts,
		},
	}); err != nil {
		log.Error(err, "Failed to set up the controllers")
		os.Exit(1)
	}
	// Connections' Ready condition, read from the cache when /metrics is scraped (config/prometheus alerts on it).
	utilruntime.Must(ctrlmetrics.Registry.Register(monitoring.NewConnectionCollector(mgr.GetCache())))
	utilruntime.Must(mgr.AddHealthzCheck("healthz", healthz.Ping))
	utilruntime.Must(mgr.AddReadyzCheck("readyz", healthz.Ping))

	log.Info("Starting intune-cert-operator", "version", version.Version, "namespace", watchNamespace, "operatorNamespace", operatorNamespace,
		"allowNamespacedAmbientCredentials", allowAmbient, "allowedEndpointHosts", endpointHosts)
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "The manager stopped with an error")
		os.Exit(1)
	}
}

// podNamespace is the namespace the operator runs in, from the service account mount, else the default.
func podNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if data, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		if ns := strings.TrimSpace(string(data)); ns != "" {
			return ns
		}
	}
	return defaultOperatorNamespace
}
