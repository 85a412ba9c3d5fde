package manifests

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// install applies a render to the control plane with server-side apply: its Namespace first (a server-side
// dry run cannot place objects in a namespace that does not exist yet), then a dry run of everything, which
// is where the API server validates every object against its schema, then for real, so that the
// ServiceAccount's access can be checked.
func install(t *testing.T, r rendered) {
	t.Helper()
	var namespaces []byte
	for _, obj := range r.objects {
		if obj.GetKind() == "Namespace" {
			doc, err := yaml.Marshal(obj.Object)
			if err != nil {
				t.Fatal(err)
			}
			namespaces = append(append(namespaces, "---\n"...), doc...)
		}
	}
	runKubectl(t, namespaces, "apply", "--server-side", "-f", "-")
	out := runKubectl(t, r.raw, "apply", "--server-side", "--dry-run=server", "-f", "-")
	if got, want := strings.Count(string(out), "serverside-applied (server dry run)"), len(r.objects); got != want {
		t.Fatalf("the dry run applied %d of %d objects:\n%s", got, want, out)
	}
	runKubectl(t, r.raw, "apply", "--server-side", "-f", "-")
}

// access is one question to the API server's authorizer about a ServiceAccount.
type access struct {
	verb, group, resource, subresource, namespace string
}

func (a access) String() string {
	where := "cluster-wide"
	if a.namespace != "" {
		where = "in " + a.namespace
	}
	res := a.resource
	if a.subresource != "" {
		res += "/" + a.subresource
	}
	if a.group != "" {
		res += "." + a.group
	}
	return a.verb + " " + res + " " + where
}

func allowed(t *testing.T, serviceAccount serviceAccountRef, a access) bool {
	t.Helper()
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:" + serviceAccount.namespace + ":" + serviceAccount.name,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + serviceAccount.namespace, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource, Namespace: a.namespace,
		},
	}}
	if err := k8sClient.Create(context.Background(), review); err != nil {
		t.Fatalf("SubjectAccessReview %s failed: %v", a, err)
	}
	return review.Status.Allowed
}

// serviceAccountRef names a ServiceAccount.
type serviceAccountRef struct{ namespace, name string }

// checkAccess asks the authorizer what serviceAccount may do. The API server's RBAC authorizer learns new
// bindings from an informer, so the allowed questions are asked again until all of them hold (or 30 seconds
// pass); then the bindings are in place and the denied questions are asked once.
func checkAccess(t *testing.T, serviceAccount serviceAccountRef, allow, deny []access) {
	t.Helper()
	var missing []access
	_ = wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) {
			missing = slices.DeleteFunc(slices.Clone(allow), func(a access) bool { return allowed(t, serviceAccount, a) })
			return len(missing) == 0, nil
		})
	for _, a := range missing {
		t.Errorf("%s/%s may not %s", serviceAccount.namespace, serviceAccount.name, a)
	}
	for _, a := range deny {
		if allowed(t, serviceAccount, a) {
			t.Errorf("%s/%s may %s", serviceAccount.namespace, serviceAccount.name, a)
		}
	}
}

const group = "intune.certops.dev"

// The manager's pod, created from the Deployment's template in the operator's namespace, meets the
// "restricted" Pod Security Standard that the Namespace enforces: the API server's own PodSecurity admission
// checks it. A copy without the container's securityContext is refused, which shows the check is active.
func checkPodSecurity(t *testing.T, r rendered) {
	t.Helper()
	deploy := one[appsv1.Deployment](t, r, "Deployment")
	pod := func(spec corev1.PodSpec) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "manager-", Namespace: deploy.Namespace, Labels: deploy.Spec.Template.Labels},
			Spec:       spec,
		}
	}
	if err := k8sClient.Create(context.Background(), pod(deploy.Spec.Template.Spec), client.DryRunAll); err != nil {
		t.Errorf("the manager pod was refused: %v", err)
	}
	weak := *deploy.Spec.Template.Spec.DeepCopy()
	weak.Containers[0].SecurityContext = nil
	err := k8sClient.Create(context.Background(), pod(weak), client.DryRunAll)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
		t.Errorf("a manager pod without securityContext was not refused by PodSecurity: %v", err)
	}
}

func TestDefaultInstallsAndGrantsClusterWideAccess(t *testing.T) {
	r := render(t, variants[0])
	install(t, r)
	sa := serviceAccountRef{operatorNamespace, namePrefix + "controller-manager"}
	checkAccess(t, sa,
		[]access{
			{"list", group, "userpfxcertificates", "", ""},
			{"watch", group, "userpfxcertificates", "", "team-x"},
			{"patch", group, "userpfxcertificates", "status", "team-x"},
			{"update", group, "userpfxcertificates", "finalizers", "team-x"},
			{"watch", group, "clustergraphconnections", "", ""},
			{"list", group, "graphconnections", "", ""},
			{"watch", "", "secrets", "", ""},
			{"get", "", "secrets", "", "team-x"},
			{"get", "", "configmaps", "", "team-x"},
			{"create", "events.k8s.io", "events", "", "team-x"},
			{"update", "coordination.k8s.io", "leases", "", operatorNamespace},
			{"create", "", "events", "", operatorNamespace},
			{"create", "authentication.k8s.io", "tokenreviews", "", ""},
			{"create", "authorization.k8s.io", "subjectaccessreviews", "", ""},
		},
		[]access{
			{"create", "", "secrets", "", "team-x"},
			{"update", "", "secrets", "", operatorNamespace},
			{"update", "", "configmaps", "", "team-x"},
			{"update", "coordination.k8s.io", "leases", "", "team-x"},
			{"list", "", "pods", "", ""},
		})
	checkPodSecurity(t, r)
}

// The namespaced variant is installed the way its kustomization.yaml tells users to install a second copy:
// an overlay that sets another namespace and name prefix.
func TestNamespacedInstallsWithAccessToItsNamespaceOnly(t *testing.T) {
	dir := t.TempDir()
	base, err := filepath.Rel(dir, configDir("namespaced"))
	if err != nil {
		t.Fatal(err)
	}
	overlay := "namespace: team-a\nnamePrefix: team-a-\nresources:\n- " + base + "\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(overlay), 0o644); err != nil {
		t.Fatal(err)
	}
	raw := kustomize(t, dir)
	r := rendered{raw: raw, objects: decode(t, raw)}
	install(t, r)
	sa := serviceAccountRef{"team-a", "team-a-" + namePrefix + "controller-manager"}
	checkAccess(t, sa,
		[]access{
			{"list", group, "userpfxcertificates", "", "team-a"},
			{"patch", group, "userpfxcertificates", "status", "team-a"},
			{"watch", group, "graphconnections", "", "team-a"},
			{"watch", "", "secrets", "", "team-a"},
			{"get", "", "configmaps", "", "team-a"},
			{"list", group, "clustergraphconnections", "", ""},
			{"watch", group, "clustergraphconnections", "", ""},
			{"patch", group, "clustergraphconnections", "status", ""},
			{"update", "coordination.k8s.io", "leases", "", "team-a"},
			{"create", "authentication.k8s.io", "tokenreviews", "", ""},
		},
		[]access{
			{"list", group, "userpfxcertificates", "", ""},
			{"list", group, "userpfxcertificates", "", "team-b"},
			{"list", group, "graphconnections", "", ""},
			{"watch", "", "secrets", "", ""},
			{"get", "", "secrets", "", "team-b"},
			{"get", "", "secrets", "", operatorNamespace},
			{"update", group, "clustergraphconnections", "", ""},
			{"update", "coordination.k8s.io", "leases", "", "team-b"},
		})
	checkPodSecurity(t, r)
}
