package argocd

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"

	"github.com/certops/intune-cert-operator/internal/testutil"
)

// kindInfo is what the health tests need to know about a kind from its CRD.
type kindInfo struct {
	// suspendable: the kind has spec.suspend, so Argo CD can show it Suspended.
	suspendable bool
}

// servedKinds are the kinds of the project's CRDs (config/crd/bases) that report status, each of which needs
// a health check.
func servedKinds(t *testing.T) map[string]kindInfo {
	t.Helper()
	kinds, err := loadServedKinds()
	if err != nil {
		t.Fatal(err)
	}
	return kinds
}

func loadServedKinds() (map[string]kindInfo, error) {
	files, err := filepath.Glob(filepath.Join(testutil.RepoRoot(), "config", "crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no CRDs found in config/crd/bases (%v)", err)
	}
	kinds := map[string]kindInfo{}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var crd struct {
			Spec struct {
				Group string
				Names struct{ Kind string }
				// Only the property names matter; the schema below them is not decoded.
				Versions []struct {
					Subresources struct {
						Status *struct{} `json:"status"`
					}
					Schema struct {
						OpenAPIV3Schema struct {
							Properties struct {
								Spec struct {
									Properties map[string]any
								}
							}
						} `json:"openAPIV3Schema"`
					}
				}
			}
		}
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			return nil, fmt.Errorf("failed to parse %s: %w", file, err)
		}
		if crd.Spec.Group != group {
			continue
		}
		info := kindInfo{}
		reportsStatus := false
		for _, version := range crd.Spec.Versions {
			_, has := version.Schema.OpenAPIV3Schema.Properties.Spec.Properties["suspend"]
			info.suspendable = info.suspendable || has
			reportsStatus = reportsStatus || version.Subresources.Status != nil
		}
		// A kind without status (RecordClaim: written only by the operator, never synced by Argo CD) has no
		// health to report.
		if reportsStatus {
			kinds[crd.Spec.Names.Kind] = info
		}
	}
	return kinds, nil
}

// healthTests is the table format of Argo CD's resource_customizations/<group>/<kind>/health_test.yaml.
type healthTests struct {
	Tests []struct {
		InputPath    string       `json:"inputPath"`
		HealthStatus healthStatus `json:"healthStatus"`
	} `json:"tests"`
}

// readObject reads a test object as Argo CD holds a live one: JSON numbers that are integers become int64.
func readObject(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatalf("failed to parse %s: %v", path, err)
	}
	obj := map[string]any{}
	if err := utiljson.Unmarshal(js, &obj); err != nil {
		t.Fatalf("failed to decode %s: %v", path, err)
	}
	return obj
}

// The script, as the patch carries it for the object's kind, gives the expected verdict for every object
// of testdata/<Kind>/health_test.yaml; and every kind has a table covering every verdict it can reach.
func TestHealthChecks(t *testing.T) {
	data := patchData(t)
	for kind, info := range servedKinds(t) {
		t.Run(kind, func(t *testing.T) {
			dir := filepath.Join("testdata", kind)
			raw, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
			if err != nil {
				t.Fatalf("every served kind needs a health test table: %v", err)
			}
			var table healthTests
			if err := yaml.UnmarshalStrict(raw, &table); err != nil {
				t.Fatalf("failed to parse %s/health_test.yaml: %v", dir, err)
			}
			seen := map[string]bool{}
			for _, tc := range table.Tests {
				t.Run(tc.InputPath, func(t *testing.T) {
					obj := readObject(t, filepath.Join(dir, tc.InputPath))
					gv, _ := schema.ParseGroupVersion(stringAt(obj, "apiVersion"))
					if gv.Group != group || stringAt(obj, "kind") != kind {
						t.Fatalf("%s is a %s %s, not a %s", tc.InputPath, obj["apiVersion"], obj["kind"], kind)
					}
					// Argo CD picks the script by the object's group and kind.
					script, ok := data[keyPrefix+gv.Group+"_"+kind]
					if !ok {
						t.Fatalf("the patch has no health check for %s", kind)
					}
					got, err := runHealthScript(obj, script)
					if err != nil {
						t.Fatal(err)
					}
					if got != tc.HealthStatus {
						t.Errorf("health = %+v, want %+v", got, tc.HealthStatus)
					}
				})
				seen[tc.HealthStatus.Status] = true
			}
			want := []string{"Healthy", "Degraded", "Progressing"}
			if info.suspendable {
				want = append(want, "Suspended")
			}
			for _, status := range want {
				if !seen[status] {
					t.Errorf("%s/health_test.yaml has no object that is %s", dir, status)
				}
			}
		})
	}
}

func stringAt(obj map[string]any, key string) string {
	s, _ := obj[key].(string)
	return s
}
