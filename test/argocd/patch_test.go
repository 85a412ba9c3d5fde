package argocd

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/certops/intune-cert-operator/internal/testutil"
)

// go test ./test/argocd -update rewrites argocd-cm-patch.yaml from health.lua and the CRDs.
var update = flag.Bool("update", false, "rewrite config/argocd/argocd-cm-patch.yaml from health.lua")

const (
	group = "intune.certops.dev"
	// keyPrefix + group + "_" + kind is the argocd-cm key Argo CD looks up for a kind's health check.
	keyPrefix = "resource.customizations.health."
)

var (
	argocdDir  = filepath.Join(testutil.RepoRoot(), "config", "argocd")
	scriptPath = filepath.Join(argocdDir, "health.lua")
	patchPath  = filepath.Join(argocdDir, "argocd-cm-patch.yaml")
)

const patchHeader = `# Generated from health.lua by 'go test ./test/argocd -update': edit health.lua, never this file.
#
# Argo CD health checks for the intune.certops.dev kinds, one argocd-cm key per kind. Merge it into the
# argocd-cm ConfigMap of your Argo CD install, e.g. in the kustomization that installs Argo CD:
#   patches:
#   - path: argocd-cm-patch.yaml
# or on a running Argo CD:
#   kubectl -n argocd patch configmap argocd-cm --patch-file config/argocd/argocd-cm-patch.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
data:
`

// renderPatch is argocd-cm-patch.yaml: the script as a literal block under each kind's key.
func renderPatch(kinds []string, script string) []byte {
	var b bytes.Buffer
	b.WriteString(patchHeader)
	for _, kind := range kinds {
		fmt.Fprintf(&b, "  %s%s_%s: |\n", keyPrefix, group, kind)
		for _, line := range strings.Split(strings.TrimSuffix(script, "\n"), "\n") {
			if line != "" { // blank lines stay empty: no trailing whitespace
				b.WriteString("    " + line)
			}
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

func readScript(t *testing.T) string {
	t.Helper()
	script, err := os.ReadFile(scriptPath)
	if err != nil {
		t.Fatalf("failed to read the health script: %v", err)
	}
	return string(script)
}

// patchData is the data of argocd-cm-patch.yaml as Argo CD will read it.
func patchData(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(patchPath)
	if err != nil {
		t.Fatalf("failed to read the argocd-cm patch: %v", err)
	}
	var cm struct {
		APIVersion string                `json:"apiVersion"`
		Kind       string                `json:"kind"`
		Metadata   struct{ Name string } `json:"metadata"`
		Data       map[string]string     `json:"data"`
	}
	if err := yaml.UnmarshalStrict(raw, &cm); err != nil {
		t.Fatalf("failed to parse %s: %v", patchPath, err)
	}
	if cm.Kind != "ConfigMap" || cm.Metadata.Name != "argocd-cm" {
		t.Fatalf("%s patches %s %q; want ConfigMap argocd-cm", patchPath, cm.Kind, cm.Metadata.Name)
	}
	return cm.Data
}

// TestMain regenerates the patch before any test reads it when -update is given.
func TestMain(m *testing.M) {
	flag.Parse()
	if *update {
		if err := writePatch(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

func writePatch() error {
	kinds, err := loadServedKinds()
	if err != nil {
		return err
	}
	script, err := os.ReadFile(scriptPath)
	if err != nil {
		return fmt.Errorf("failed to read the health script: %w", err)
	}
	if err := os.WriteFile(patchPath, renderPatch(slices.Sorted(maps.Keys(kinds)), string(script)), 0o644); err != nil {
		return fmt.Errorf("failed to write %s: %w", patchPath, err)
	}
	return nil
}

func TestPatchIsGeneratedFromTheScript(t *testing.T) {
	want := renderPatch(slices.Sorted(maps.Keys(servedKinds(t))), readScript(t))
	got, err := os.ReadFile(patchPath)
	if err != nil {
		t.Fatalf("failed to read the argocd-cm patch: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date with health.lua or the CRDs: run 'go test ./test/argocd -update'", patchPath)
	}
}

// The byte comparison above trusts renderPatch; this one reads the patch as YAML, as Argo CD will.
func TestPatchCarriesTheScriptForEveryServedKindAndNothingElse(t *testing.T) {
	script := readScript(t)
	data := patchData(t)
	want := map[string]bool{}
	for kind := range servedKinds(t) {
		want[keyPrefix+group+"_"+kind] = true
	}
	for key := range want {
		if _, ok := data[key]; !ok {
			t.Errorf("the patch has no health check %s", key)
		}
	}
	for key, value := range data {
		switch {
		case !want[key]:
			t.Errorf("the patch sets %s, which is no health check of a served kind", key)
		case value != script:
			t.Errorf("%s differs from health.lua", key)
		}
	}
}

// Merging the patch with kustomize into Argo CD's argocd-cm as its install.yaml ships it (no namespace; the
// kustomization sets one), as the header tells users to, keeps the ConfigMap's own settings and adds every check.
func TestPatchMergesIntoArgoCDConfigMapWithKustomize(t *testing.T) {
	dir := t.TempDir()
	patch, err := os.ReadFile(patchPath)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"argocd-cm-patch.yaml": string(patch),
		"argocd-cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  labels: {app.kubernetes.io/name: argocd-cm, app.kubernetes.io/part-of: argocd}
data:
  url: https://argocd.example.com
`,
		"kustomization.yaml": "namespace: argocd\nresources: [argocd-cm.yaml]\npatches:\n- path: argocd-cm-patch.yaml\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	assets, err := testutil.AssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(assets, "kubectl"), "kustomize", dir).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize failed: %v\n%s", err, stderrOf(err))
	}
	var cm struct {
		Metadata struct {
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(out, &cm); err != nil {
		t.Fatalf("failed to parse the merged ConfigMap: %v\n%s", err, out)
	}
	if cm.Metadata.Namespace != "argocd" || cm.Metadata.Labels["app.kubernetes.io/part-of"] != "argocd" ||
		cm.Data["url"] != "https://argocd.example.com" {
		t.Errorf("the merge lost argocd-cm's own namespace, labels or data:\n%s", out)
	}
	script := readScript(t)
	for kind := range servedKinds(t) {
		if key := keyPrefix + group + "_" + kind; cm.Data[key] != script {
			t.Errorf("the merged argocd-cm has no (or another) %s", key)
		}
	}
}

func stderrOf(err error) string {
	if exitErr, ok := err.(*exec.ExitError); ok {
		return string(exitErr.Stderr)
	}
	return ""
}
