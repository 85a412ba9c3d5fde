package manifests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// The second way config/argocd/argocd-cm-patch.yaml tells users to install the health checks: kubectl patch
// on a running Argo CD's argocd-cm, which keeps its other settings. (test/argocd covers the scripts.)
func TestArgoCDPatchAppliesWithKubectlPatch(t *testing.T) {
	ctx := context.Background()
	if err := k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "argocd"}}); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "argocd-cm", Namespace: "argocd"},
		Data:       map[string]string{"url": "https://argocd.example.com"},
	}
	if err := k8sClient.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	patch := filepath.Join(configDir("argocd"), "argocd-cm-patch.yaml")
	runKubectl(t, nil, "-n", "argocd", "patch", "configmap", "argocd-cm", "--patch-file", patch)

	script, err := os.ReadFile(filepath.Join(configDir("argocd"), "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(cm), cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["url"] != "https://argocd.example.com" {
		t.Error("the patch dropped argocd-cm's own settings")
	}
	checks := 0
	for key, value := range cm.Data {
		if strings.HasPrefix(key, "resource.customizations.health.intune.certops.dev_") {
			checks++
			if value != string(script) {
				t.Errorf("%s differs from health.lua after the patch", key)
			}
		}
	}
	if want := crdsReportingStatus(t); checks != want {
		t.Errorf("argocd-cm has %d health checks for intune.certops.dev, want one per CRD that reports status (%d)", checks, want)
	}
}

// crdsReportingStatus counts the generated CRDs with a status subresource: the kinds that have a health to
// report (RecordClaim, written only by the operator, has none).
func crdsReportingStatus(t *testing.T) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(configDir("crd"), "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in config/crd/bases (%v)", err)
	}
	n := 0
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var crd struct {
			Spec struct {
				Versions []struct {
					Subresources struct {
						Status *struct{} `json:"status"`
					} `json:"subresources"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			t.Fatalf("failed to parse %s: %v", file, err)
		}
		if len(crd.Spec.Versions) > 0 && crd.Spec.Versions[0].Subresources.Status != nil {
			n++
		}
	}
	return n
}
