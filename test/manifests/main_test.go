// Package manifests tests the install manifests of config/: that config/default and config/namespaced render
// with the kubectl the project builds, that a real API server accepts them, that the operator's
// ServiceAccount gets exactly the access each variant promises, and that the manager runs hardened.
package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/certops/intune-cert-operator/internal/testutil"
)

const (
	operatorNamespace = "intune-cert-operator-system"
	namePrefix        = "intune-cert-operator-"
	image             = "ghcr.io/certops/intune-cert-operator:latest"
)

// One control plane serves every test; kubectl talks to it through kubeconfig as a cluster administrator.
var (
	kubectl    string
	kubeconfig string
	k8sClient  client.Client
)

func TestMain(m *testing.M) {
	os.Exit(runWithControlPlane(m))
}

func runWithControlPlane(m *testing.M) int {
	assets, err := testutil.AssetsDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kubectl = filepath.Join(assets, "kubectl")
	env, err := testutil.NewEnvironment()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the control plane:", err)
		return 1
	}
	defer func() { _ = env.Stop() }()

	admin, err := env.AddUser(envtest.User{Name: "manifests-admin", Groups: []string{"system:masters"}}, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "failed to add a kubectl user:", err)
		return 1
	}
	config, err := admin.KubeConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "failed to write a kubeconfig:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "manifests-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, config, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if k8sClient, err = client.New(cfg, client.Options{Scheme: testutil.Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// runKubectl runs kubectl against the control plane and returns its stdout; stderr is in the error.
func runKubectl(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl %v failed: %v\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

// kustomize renders a kustomization directory with the project's kubectl.
func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	out, err := exec.Command(kubectl, "kustomize", dir).Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			t.Fatalf("kubectl kustomize %s failed: %v\n%s", dir, err, exitErr.Stderr)
		}
		t.Fatalf("kubectl kustomize %s failed: %v", dir, err)
	}
	return out
}

// decode splits a multi-document YAML stream into objects.
func decode(t *testing.T, manifests []byte) []unstructured.Unstructured {
	t.Helper()
	var objects []unstructured.Unstructured
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	for {
		var obj map[string]any
		err := decoder.Decode(&obj)
		if err == io.EOF {
			return objects
		}
		if err != nil {
			t.Fatalf("failed to decode the manifests: %v", err)
		}
		if obj != nil {
			objects = append(objects, unstructured.Unstructured{Object: obj})
		}
	}
}

// configDir is a directory of config/.
func configDir(name string) string {
	return filepath.Join(testutil.RepoRoot(), "config", name)
}
