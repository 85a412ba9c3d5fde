package manifests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/toolbin"
)

// The Helm chart (charts/intune-cert-operator) must install what config/ installs: the same CRDs, the same
// RBAC and the same hardened pod. Its CRDs, role rules, alerts and dashboard are copies of config/ that
// hack/sync-chart.sh writes (make chart); these tests fail when a copy is stale or a template drifts.

const releaseName = "intune-cert-operator" // with this release name the chart names objects as config/ does

func chartDir() string { return filepath.Join(testutil.RepoRoot(), "charts", "intune-cert-operator") }

func helm(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	bin, err := toolbin.Path("helm")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	// Keep helm away from the user's repositories, plugins and caches.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err != nil {
		return stdout.Bytes(), &helmError{err: err, stderr: stderr.String() + stdout.String()}
	}
	return stdout.Bytes(), nil
}

type helmError struct {
	err    error
	stderr string
}

func (e *helmError) Error() string { return e.err.Error() + "\n" + e.stderr }

// helmTemplate renders the chart with the CRDs, in the namespace config/ uses, with the placeholder client id
// config/rbac/service_account.yaml carries.
func helmTemplate(t *testing.T, set ...string) rendered {
	t.Helper()
	return helmTemplateIn(t, operatorNamespace, set...)
}

func helmTemplateIn(t *testing.T, namespace string, set ...string) rendered {
	t.Helper()
	args := []string{"template", releaseName, chartDir(), "--namespace", namespace, "--include-crds",
		"--set", "workloadIdentity.clientId=00000000-0000-0000-0000-000000000000"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	raw, err := helm(t, args...)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	return rendered{raw: raw, objects: decode(t, raw)}
}

var chartScopes = map[string]string{"default": "scope=cluster", "namespaced": "scope=namespace"}

func TestChartLints(t *testing.T) {
	for _, set := range []string{"scope=cluster", "scope=namespace",
		"scope=namespace,metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true,grafanaDashboard.enabled=true"} {
		if out, err := helm(t, "lint", "--strict", chartDir(), "--set", set); err != nil {
			t.Errorf("helm lint --strict --set %s: %v\n%s", set, err, out)
		}
	}
}

// values.schema.json has additionalProperties: false everywhere: a misspelt value fails the install instead
// of being ignored.
func TestChartSchemaRejectsTyposAndBadValues(t *testing.T) {
	for _, set := range []string{
		"imag.tag=v1", "metrics.serviceMonitor.enable=true", "workloadIdentity.clientID=x", "resources.request.cpu=1",
		"scope=cluster-wide", "workloadIdentity.clientId=not-a-guid", "extraArgs[0]=resync-period=1h", "replicas=-1",
	} {
		_, err := helm(t, "template", releaseName, chartDir(), "--set", set)
		if err == nil {
			t.Errorf("helm template --set %s succeeded; the schema must reject it", set)
		} else if !strings.Contains(err.Error(), "values don't meet the specifications of the schema") {
			t.Errorf("helm template --set %s failed for another reason than the schema: %v", set, err)
		}
	}
	r := helmTemplate(t, "extraArgs[0]=--resync-period=2h", "image.tag=v9", "leaderElect=false")
	c := one[appsv1.Deployment](t, r, "Deployment").Spec.Template.Spec.Containers[0]
	if c.Image != "ghcr.io/certops/intune-cert-operator:v9" {
		t.Errorf("image = %s", c.Image)
	}
	if !reflect.DeepEqual(c.Args, []string{"--metrics-bind-address=:8443", "--health-probe-bind-address=:8081", "--resync-period=2h"}) {
		t.Errorf("args = %v", c.Args)
	}
}

// The copies in the chart are what hack/sync-chart.sh makes of config/ now.
func TestChartCopiesAreCurrent(t *testing.T) {
	root := testutil.RepoRoot()
	copies := map[string]string{
		"files/rbac/role.yaml":                        "config/rbac/role.yaml",
		"files/rbac/leader_election_role.yaml":        "config/rbac/leader_election_role.yaml",
		"files/rbac/metrics_auth_role.yaml":           "config/rbac/metrics_auth_role.yaml",
		"files/rbac/metrics_reader_role.yaml":         "config/rbac/metrics_reader_role.yaml",
		"files/rbac/clustergraphconnection_role.yaml": "config/namespaced/clustergraphconnection_role.yaml",
		"files/prometheusrule.yaml":                   "config/prometheus/prometheusrule.yaml",
		"files/dashboard.json":                        "config/grafana/dashboard.json",
	}
	bases, _ := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	for _, b := range bases {
		copies["crds/"+filepath.Base(b)] = "config/crd/bases/" + filepath.Base(b)
	}
	inChart, _ := filepath.Glob(filepath.Join(chartDir(), "crds", "*"))
	for _, c := range inChart {
		if _, ok := copies["crds/"+filepath.Base(c)]; !ok {
			t.Errorf("charts/intune-cert-operator/crds/%s has no source in config/crd/bases: run make chart", filepath.Base(c))
		}
	}
	for dst, src := range copies {
		want, err := os.ReadFile(filepath.Join(root, src))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(chartDir(), dst))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("charts/intune-cert-operator/%s is not a copy of %s: run make chart", dst, src)
		}
	}
}

// The chart's render and kustomize's, variant by variant (scope=cluster is config/default, scope=namespace
// config/namespaced): CRDs, every Role and ClusterRole's rules, every binding, the ServiceAccount's
// annotations, the pod spec but the image, the workload identity label and the metrics Service's ports.
func TestChartMatchesKustomize(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			k := render(t, v)
			h := helmTemplate(t, chartScopes[v.name], "image.tag=latest")

			if got, want := objectsByName(t, h, "CustomResourceDefinition"), objectsByName(t, k, "CustomResourceDefinition"); !equality.Semantic.DeepEqual(got, want) {
				t.Errorf("the chart's CRDs differ from config/crd/bases: %v vs %v", sortedKeys(got), sortedKeys(want))
			}

			type roleKey struct{ kind, namespace, name string }
			roles := func(r rendered) map[roleKey][]rbacv1.PolicyRule {
				out := map[roleKey][]rbacv1.PolicyRule{}
				for _, role := range all[rbacv1.Role](t, r, "Role") {
					out[roleKey{"Role", role.Namespace, role.Name}] = role.Rules
				}
				for _, role := range all[rbacv1.ClusterRole](t, r, "ClusterRole") {
					out[roleKey{"ClusterRole", "", role.Name}] = role.Rules
				}
				return out
			}
			hr, kr := roles(h), roles(k)
			for key, want := range kr {
				got, ok := hr[key]
				if !ok {
					t.Errorf("the chart has no %s %s/%s", key.kind, key.namespace, key.name)
				} else if !equality.Semantic.DeepEqual(got, want) {
					t.Errorf("%s %s rules differ:\nchart:     %+v\nkustomize: %+v", key.kind, key.name, got, want)
				}
			}
			for key := range hr {
				if _, ok := kr[key]; !ok {
					t.Errorf("the chart has %s %s/%s, which config/%s does not", key.kind, key.namespace, key.name, v.name)
				}
			}

			type binding struct {
				RoleRef  rbacv1.RoleRef
				Subjects []rbacv1.Subject
			}
			bindings := func(r rendered) map[string]binding {
				out := map[string]binding{}
				for _, b := range all[rbacv1.RoleBinding](t, r, "RoleBinding") {
					out["RoleBinding/"+b.Namespace+"/"+b.Name] = binding{b.RoleRef, b.Subjects}
				}
				for _, b := range all[rbacv1.ClusterRoleBinding](t, r, "ClusterRoleBinding") {
					out["ClusterRoleBinding//"+b.Name] = binding{b.RoleRef, b.Subjects}
				}
				return out
			}
			if got, want := bindings(h), bindings(k); !reflect.DeepEqual(got, want) {
				t.Errorf("bindings differ:\nchart:     %+v\nkustomize: %+v", got, want)
			}

			hsa, ksa := one[corev1.ServiceAccount](t, h, "ServiceAccount"), one[corev1.ServiceAccount](t, k, "ServiceAccount")
			if hsa.Name != ksa.Name || !reflect.DeepEqual(hsa.Annotations, ksa.Annotations) {
				t.Errorf("ServiceAccount %s %v, want %s %v", hsa.Name, hsa.Annotations, ksa.Name, ksa.Annotations)
			}

			hd, kd := one[appsv1.Deployment](t, h, "Deployment"), one[appsv1.Deployment](t, k, "Deployment")
			if hd.Name != kd.Name || *hd.Spec.Replicas != *kd.Spec.Replicas {
				t.Errorf("Deployment %s (%d replicas), want %s (%d)", hd.Name, *hd.Spec.Replicas, kd.Name, *kd.Spec.Replicas)
			}
			hp, kp := hd.Spec.Template.Spec.DeepCopy(), kd.Spec.Template.Spec.DeepCopy()
			if hp.Containers[0].Image != kp.Containers[0].Image {
				t.Errorf("image %s, want %s", hp.Containers[0].Image, kp.Containers[0].Image)
			}
			// The chart sets the pull policy kustomize leaves to the API server's default.
			hp.Containers[0].ImagePullPolicy = kp.Containers[0].ImagePullPolicy
			if !equality.Semantic.DeepEqual(hp, kp) {
				a, _ := yaml.Marshal(hp)
				b, _ := yaml.Marshal(kp)
				t.Errorf("the pod specs differ:\nchart:\n%s\nkustomize:\n%s", a, b)
			}
			const wi = "azure.workload.identity/use"
			if hd.Spec.Template.Labels[wi] != kd.Spec.Template.Labels[wi] {
				t.Errorf("pod label %s = %q, want %q", wi, hd.Spec.Template.Labels[wi], kd.Spec.Template.Labels[wi])
			}
			for key, value := range hd.Spec.Selector.MatchLabels {
				if hd.Spec.Template.Labels[key] != value {
					t.Errorf("the chart's selector %s=%s does not match its pod template", key, value)
				}
			}

			hs, ks := one[corev1.Service](t, h, "Service"), one[corev1.Service](t, k, "Service")
			if hs.Name != ks.Name || !reflect.DeepEqual(hs.Spec.Ports, ks.Spec.Ports) {
				t.Errorf("metrics Service %s %+v, want %s %+v", hs.Name, hs.Spec.Ports, ks.Name, ks.Spec.Ports)
			}
			for key, value := range hs.Spec.Selector {
				if hd.Spec.Template.Labels[key] != value {
					t.Errorf("the chart's metrics Service selects %s=%s, which the pod does not carry", key, value)
				}
			}
		})
	}
}

// The API server accepts the chart's render (server-side dry run), as it does config/'s. A namespace of its
// own: the other tests install config/ (whose Deployment selector differs) in the operator namespace.
func TestChartRenderIsAcceptedByTheAPIServer(t *testing.T) {
	const namespace = "intune-cert-operator-chart"
	runKubectl(t, []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+namespace+"\n"), "apply", "--server-side", "-f", "-")
	for _, scope := range chartScopes {
		r := helmTemplateIn(t, namespace, scope)
		out := runKubectl(t, r.raw, "apply", "--server-side", "--dry-run=server", "--force-conflicts", "-f", "-")
		if got, want := strings.Count(string(out), "(server dry run)"), len(r.objects); got != want {
			t.Errorf("%s: the dry run applied %d of %d objects:\n%s", scope, got, want, out)
		}
	}
}

// The optional monitoring objects carry exactly config/prometheus's rule groups and config/grafana's
// dashboard, as kustomize renders them too.
func TestChartMonitoringMatchesConfig(t *testing.T) {
	h := helmTemplate(t, "metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true", "grafanaDashboard.enabled=true")
	kp := decode(t, kustomize(t, configDir("prometheus")))
	kg := decode(t, kustomize(t, configDir("grafana")))
	find := func(objects []unstructured.Unstructured, kind string) unstructured.Unstructured {
		t.Helper()
		for _, obj := range objects {
			if obj.GetKind() == kind {
				return obj
			}
		}
		t.Fatalf("no %s rendered", kind)
		return unstructured.Unstructured{}
	}
	hRule, kRule := find(h.objects, "PrometheusRule"), find(kp, "PrometheusRule")
	if !equality.Semantic.DeepEqual(hRule.Object["spec"], kRule.Object["spec"]) {
		t.Error("the chart's PrometheusRule spec differs from config/prometheus/prometheusrule.yaml")
	}
	hMon, kMon := find(h.objects, "ServiceMonitor"), find(kp, "ServiceMonitor")
	hEndpoints, _, _ := unstructured.NestedSlice(hMon.Object, "spec", "endpoints")
	kEndpoints, _, _ := unstructured.NestedSlice(kMon.Object, "spec", "endpoints")
	if len(hEndpoints) != 1 || len(kEndpoints) != 1 {
		t.Fatalf("ServiceMonitor endpoints: chart %d, kustomize %d", len(hEndpoints), len(kEndpoints))
	}
	he := hEndpoints[0].(map[string]any)
	delete(he, "interval")
	if !equality.Semantic.DeepEqual(he, kEndpoints[0]) {
		t.Errorf("ServiceMonitor endpoint %v, want %v", he, kEndpoints[0])
	}
	hDash, kDash := find(h.objects, "ConfigMap"), find(kg, "ConfigMap")
	source, err := os.ReadFile(filepath.Join(configDir("grafana"), "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	for name, cm := range map[string]unstructured.Unstructured{"chart": hDash, "kustomize": kDash} {
		data, _, _ := unstructured.NestedString(cm.Object, "data", "intune-cert-operator.json")
		if strings.TrimSpace(data) != strings.TrimSpace(string(source)) {
			t.Errorf("the %s's dashboard ConfigMap is not config/grafana/dashboard.json", name)
		}
		if cm.GetLabels()["grafana_dashboard"] != "1" {
			t.Errorf("the %s's dashboard ConfigMap lacks the label grafana_dashboard=1", name)
		}
	}
}

func objectsByName(t *testing.T, r rendered, kind string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, obj := range r.objects {
		if obj.GetKind() == kind {
			out[obj.GetName()] = obj.Object
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
