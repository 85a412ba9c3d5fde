package controller

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"testing"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/certops/intune-cert-operator/internal/testutil"
)

// One control plane (real kube-apiserver and etcd) serves every test of the package; each test works in
// namespaces of its own.
var (
	cfg       *rest.Config
	k8sClient client.Client
	// serviceAccountIssuer is the API server's service-account issuer, readable by anyone (graphsim).
	serviceAccountIssuer string
)

// apiServerRoots trusts the API server's serving CA, for graphsim fetching the issuer's keys.
func apiServerRoots() *x509.CertPool {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(cfg.CAData)
	return roots
}

func TestMain(m *testing.M) {
	os.Exit(runWithControlPlane(m))
}

func runWithControlPlane(m *testing.M) int {
	ctrl.SetLogger(testLogger)
	env, err := testutil.NewEnvironment()
	if err == nil {
		// cert-manager's Certificate CRD, from its Go module: source.certificateRef and sets of Certificates.
		err = testutil.WithCertManagerCRD(env)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg, err = env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the control plane:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	k8sClient, err = client.New(cfg, client.Options{Scheme: testutil.Scheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if serviceAccountIssuer, err = testutil.PublishServiceAccountIssuer(context.Background(), cfg, k8sClient); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
