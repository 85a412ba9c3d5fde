// Package testutil starts the local control plane (kube-apiserver + etcd built by hack/control-plane.sh)
// for tests, with the project's CRDs installed.
package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Scheme knows the built-in kinds and this project's kinds.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := intunev1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// AssetsDir finds the control plane binaries: KUBEBUILDER_ASSETS, else the newest bin/k8s/<version>.
func AssetsDir() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	matches, _ := filepath.Glob(filepath.Join(RepoRoot(), "bin", "k8s", "*", "kube-apiserver"))
	if len(matches) == 0 {
		return "", fmt.Errorf("no kube-apiserver found: run 'make test' (or hack/control-plane.sh) to build the local control plane")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

// NewEnvironment returns an envtest environment with the CRDs of config/crd/bases, whose service-account
// issuer a relying party (graphsim) can verify tokens of.
func NewEnvironment() (*envtest.Environment, error) {
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		Scheme:                Scheme(),
	}
	ServeServiceAccountIssuer(env.ControlPlane.GetAPIServer())
	return env, nil
}
