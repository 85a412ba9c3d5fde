package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// variant is one install of config/.
type variant struct {
	name string
	dir  string
	// namespaced: the operator watches only its own namespace.
	namespaced bool
}

var variants = []variant{
	{name: "default", dir: configDir("default")},
	{name: "namespaced", dir: configDir("namespaced"), namespaced: true},
}

// rendered is a variant's manifests, as kubectl kustomize prints them and decoded.
type rendered struct {
	raw     []byte
	objects []unstructured.Unstructured
}

func render(t *testing.T, v variant) rendered {
	t.Helper()
	raw := kustomize(t, v.dir)
	return rendered{raw: raw, objects: decode(t, raw)}
}

// all converts every object of kind into T.
func all[T any](t *testing.T, r rendered, kind string) []T {
	t.Helper()
	var out []T
	for _, obj := range r.objects {
		if obj.GetKind() != kind {
			continue
		}
		var typed T
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &typed); err != nil {
			t.Fatalf("failed to convert %s %s: %v", kind, obj.GetName(), err)
		}
		out = append(out, typed)
	}
	return out
}

// one is the only object of kind.
func one[T any](t *testing.T, r rendered, kind string) T {
	t.Helper()
	objects := all[T](t, r, kind)
	if len(objects) != 1 {
		t.Fatalf("the render has %d %s objects, want 1", len(objects), kind)
	}
	return objects[0]
}

// clusterScoped are the kinds of the render that have no namespace.
var clusterScoped = map[string]bool{
	"Namespace": true, "CustomResourceDefinition": true, "ClusterRole": true, "ClusterRoleBinding": true,
}

func TestVariantsRenderEveryCRDAndPlaceEverythingInTheOperatorNamespace(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			crdNames := generatedCRDNames(t)
			r := render(t, v)
			seen := map[string]bool{}
			for _, obj := range r.objects {
				id := obj.GetAPIVersion() + "/" + obj.GetKind() + "/" + obj.GetNamespace() + "/" + obj.GetName()
				if seen[id] {
					t.Errorf("%s appears twice", id)
				}
				seen[id] = true
				kind, name, namespace := obj.GetKind(), obj.GetName(), obj.GetNamespace()
				switch {
				case kind == "CustomResourceDefinition":
					if !crdNames[name] {
						t.Errorf("CRD %s is not one of config/crd/bases", name)
					}
					delete(crdNames, name)
				case kind == "Namespace":
					if name != operatorNamespace {
						t.Errorf("Namespace %s, want %s", name, operatorNamespace)
					}
				case !strings.HasPrefix(name, namePrefix):
					t.Errorf("%s %s has no name prefix %s", kind, name, namePrefix)
				}
				if clusterScoped[kind] != (namespace == "") {
					t.Errorf("%s %s is in namespace %q", kind, name, namespace)
				} else if namespace != "" && namespace != operatorNamespace {
					t.Errorf("%s %s is in namespace %s, want %s", kind, name, namespace, operatorNamespace)
				}
			}
			for name := range crdNames {
				t.Errorf("CRD %s of config/crd/bases is not rendered: add it to config/crd/kustomization.yaml", name)
			}
		})
	}
}

// generatedCRDNames are the metadata.names of the CRDs controller-gen writes to config/crd/bases.
func generatedCRDNames(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(configDir("crd"), "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in config/crd/bases (%v)", err)
	}
	names := map[string]bool{}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var crd struct{ Metadata struct{ Name string } }
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			t.Fatalf("failed to parse %s: %v", file, err)
		}
		names[crd.Metadata.Name] = true
	}
	return names
}

// Kustomize rewrites names and namespaces; every reference between the objects must still land.
func TestVariantsReferToTheirOwnObjects(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			r := render(t, v)
			serviceAccounts := map[string]bool{}
			for _, sa := range all[corev1.ServiceAccount](t, r, "ServiceAccount") {
				serviceAccounts[sa.Namespace+"/"+sa.Name] = true
			}
			roles := map[string]bool{}
			for _, role := range all[rbacv1.Role](t, r, "Role") {
				roles["Role/"+role.Namespace+"/"+role.Name] = true
			}
			for _, role := range all[rbacv1.ClusterRole](t, r, "ClusterRole") {
				roles["ClusterRole//"+role.Name] = true
			}
			checkBinding := func(kind, namespace, name string, ref rbacv1.RoleRef, subjects []rbacv1.Subject) {
				refNamespace := namespace
				if ref.Kind == "ClusterRole" {
					refNamespace = ""
				}
				if !roles[ref.Kind+"/"+refNamespace+"/"+ref.Name] {
					t.Errorf("%s %s refers to %s %s, which the render does not have", kind, name, ref.Kind, ref.Name)
				}
				for _, s := range subjects {
					if s.Kind != "ServiceAccount" || !serviceAccounts[s.Namespace+"/"+s.Name] {
						t.Errorf("%s %s binds %s %s/%s, which the render does not have", kind, name, s.Kind, s.Namespace, s.Name)
					}
				}
			}
			for _, b := range all[rbacv1.RoleBinding](t, r, "RoleBinding") {
				checkBinding("RoleBinding", b.Namespace, b.Name, b.RoleRef, b.Subjects)
			}
			for _, b := range all[rbacv1.ClusterRoleBinding](t, r, "ClusterRoleBinding") {
				checkBinding("ClusterRoleBinding", "", b.Name, b.RoleRef, b.Subjects)
			}

			deploy := one[appsv1.Deployment](t, r, "Deployment")
			pod := deploy.Spec.Template
			if sa := deploy.Namespace + "/" + pod.Spec.ServiceAccountName; !serviceAccounts[sa] {
				t.Errorf("the Deployment runs as ServiceAccount %s, which the render does not have", sa)
			}
			for key, value := range deploy.Spec.Selector.MatchLabels {
				if pod.Labels[key] != value {
					t.Errorf("the Deployment's selector %s=%s does not match its pod template", key, value)
				}
			}

			svc := one[corev1.Service](t, r, "Service")
			for key, value := range svc.Spec.Selector {
				if pod.Labels[key] != value {
					t.Errorf("the metrics Service selects %s=%s, which the manager pod does not carry", key, value)
				}
			}
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8443 || svc.Spec.Ports[0].Name != "https" ||
				containerPort(t, pod.Spec.Containers[0], svc.Spec.Ports[0].TargetPort) != 8443 {
				t.Errorf("the metrics Service must expose https 8443 to the manager's port 8443: %+v", svc.Spec.Ports)
			}
		})
	}
}

// containerPort resolves a port that may be named.
func containerPort(t *testing.T, c corev1.Container, port intstr.IntOrString) int32 {
	t.Helper()
	if port.Type == intstr.Int {
		return port.IntVal
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return p.ContainerPort
		}
	}
	t.Errorf("container %s has no port named %s", c.Name, port.StrVal)
	return 0
}

// The operator signs in to Entra ID with AKS workload identity unless a connection says otherwise.
func TestVariantsUseTheImageAndAKSWorkloadIdentity(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			r := render(t, v)
			sa := one[corev1.ServiceAccount](t, r, "ServiceAccount")
			if got := sa.Annotations["azure.workload.identity/client-id"]; got != "00000000-0000-0000-0000-000000000000" {
				t.Errorf("ServiceAccount annotation azure.workload.identity/client-id = %q, want the placeholder", got)
			}
			deploy := one[appsv1.Deployment](t, r, "Deployment")
			if got := deploy.Spec.Template.Labels["azure.workload.identity/use"]; got != "true" {
				t.Errorf("pod label azure.workload.identity/use = %q, want \"true\"", got)
			}
			if got := deploy.Spec.Template.Spec.Containers[0].Image; got != image {
				t.Errorf("image = %s, want %s", got, image)
			}
		})
	}
}
