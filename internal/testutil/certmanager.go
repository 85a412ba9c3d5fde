package testutil

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// CertManagerModule is the cert-manager release whose CRDs the tests install. It is not a dependency of the
// operator (nothing imports it): `go mod download` puts it in the module cache, where its deploy/crds are.
const CertManagerModule = "github.com/cert-manager/cert-manager@v1.21.2"

// CertManagerCRD is the path of cert-manager's Certificate CRD (cert-manager.io/v1) in the module cache,
// downloaded first if needed (through GOPROXY; offline once cached).
func CertManagerCRD() (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", CertManagerModule)
	cmd.Dir = os.TempDir() // outside this module: nothing is added to its go.mod
	out, err := cmd.Output()
	var mod struct{ Dir, Error string }
	if jsonErr := json.Unmarshal(out, &mod); jsonErr != nil || mod.Error != "" || mod.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %v %s", CertManagerModule, err, mod.Error)
	}
	path := filepath.Join(mod.Dir, "deploy", "crds", "cert-manager.io_certificates.yaml")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("cert-manager's Certificate CRD is not where it was: %w", err)
	}
	return path, nil
}

// WithCertManagerCRD adds cert-manager's Certificate CRD to what env installs.
func WithCertManagerCRD(env *envtest.Environment) error {
	path, err := CertManagerCRD()
	if err != nil {
		return err
	}
	env.CRDInstallOptions.Paths = append(env.CRDInstallOptions.Paths, path)
	return nil
}
