package manifests

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// effectiveSecurity is what the container runs with: its own securityContext, else the pod's.
type effectiveSecurity struct {
	runAsNonRoot   *bool
	seccompProfile *corev1.SeccompProfile
}

func effective(pod corev1.PodSpec, c corev1.Container) effectiveSecurity {
	var e effectiveSecurity
	if psc := pod.SecurityContext; psc != nil {
		e.runAsNonRoot, e.seccompProfile = psc.RunAsNonRoot, psc.SeccompProfile
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsNonRoot != nil {
			e.runAsNonRoot = sc.RunAsNonRoot
		}
		if sc.SeccompProfile != nil {
			e.seccompProfile = sc.SeccompProfile
		}
	}
	return e
}

func TestManagerIsHardened(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			deploy := one[appsv1.Deployment](t, render(t, v), "Deployment")
			pod := deploy.Spec.Template.Spec
			if len(pod.Containers) != 1 || pod.Containers[0].Name != "manager" {
				t.Fatalf("want one container named manager, got %d", len(pod.Containers))
			}
			c := pod.Containers[0]
			sc := c.SecurityContext
			if sc == nil {
				t.Fatal("the manager container has no securityContext")
			}
			e := effective(pod, c)
			if e.runAsNonRoot == nil || !*e.runAsNonRoot {
				t.Error("runAsNonRoot is not true")
			}
			if e.seccompProfile == nil || e.seccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("seccompProfile = %+v, want RuntimeDefault", e.seccompProfile)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Error("readOnlyRootFilesystem is not true")
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Error("allowPrivilegeEscalation is not false")
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Error("the container is privileged")
			}
			if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
				t.Errorf("capabilities = %+v, want drop [ALL] and no add", sc.Capabilities)
			}
			if pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
				t.Error("automountServiceAccountToken is not true: the manager needs its token for the API server")
			}
			if pod.HostNetwork || pod.HostPID || pod.HostIPC {
				t.Error("the pod shares a host namespace")
			}

			for name, want := range map[corev1.ResourceName][2]string{
				corev1.ResourceCPU:    {"50m", "500m"},
				corev1.ResourceMemory: {"80Mi", "256Mi"},
			} {
				request, limit := c.Resources.Requests[name], c.Resources.Limits[name]
				if !request.Equal(resource.MustParse(want[0])) || !limit.Equal(resource.MustParse(want[1])) {
					t.Errorf("%s request/limit = %s/%s, want %s/%s", name, request.String(), limit.String(), want[0], want[1])
				}
			}

			for _, arg := range []string{"--leader-elect", "--metrics-bind-address=:8443", "--health-probe-bind-address=:8081"} {
				if !slices.Contains(c.Args, arg) {
					t.Errorf("args %v lack %s", c.Args, arg)
				}
			}
			watchesOne := slices.Contains(c.Args, "--namespace=$(POD_NAMESPACE)")
			if watchesOne != v.namespaced {
				t.Errorf("args %v: watching only the pod's namespace is %v, want %v", c.Args, watchesOne, v.namespaced)
			}
			for _, arg := range c.Args {
				if strings.HasPrefix(arg, "--namespace") && arg != "--namespace=$(POD_NAMESPACE)" {
					t.Errorf("unexpected watch namespace argument %s", arg)
				}
			}
			if !podNamespaceFromDownwardAPI(c.Env) {
				t.Errorf("env POD_NAMESPACE does not come from metadata.namespace: %+v", c.Env)
			}
			if !memoryLimitFollowsRequest(c.Env) {
				t.Errorf("env GOMEMLIMIT does not come from requests.memory: %+v", c.Env)
			}

			for _, probe := range []struct {
				name  string
				probe *corev1.Probe
				path  string
			}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
				if probe.probe == nil || probe.probe.HTTPGet == nil {
					t.Errorf("no HTTP %s probe", probe.name)
					continue
				}
				get := probe.probe.HTTPGet
				if get.Path != probe.path || containerPort(t, c, get.Port) != 8081 {
					t.Errorf("%s probe = %s on %s, want %s on 8081", probe.name, get.Path, get.Port.String(), probe.path)
				}
			}
		})
	}
}

// podNamespaceFromDownwardAPI: env POD_NAMESPACE is the pod's namespace, which main.go and $(POD_NAMESPACE) use.
func podNamespaceFromDownwardAPI(env []corev1.EnvVar) bool {
	for _, e := range env {
		if e.Name == "POD_NAMESPACE" {
			return e.Value == "" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
				e.ValueFrom.FieldRef.FieldPath == "metadata.namespace"
		}
	}
	return false
}

// memoryLimitFollowsRequest: env GOMEMLIMIT is the container's memory request in bytes (docs/performance.md).
func memoryLimitFollowsRequest(env []corev1.EnvVar) bool {
	for _, e := range env {
		if e.Name == "GOMEMLIMIT" {
			ref := e.ValueFrom
			return e.Value == "" && ref != nil && ref.ResourceFieldRef != nil && ref.ResourceFieldRef.Resource == "requests.memory" &&
				(ref.ResourceFieldRef.Divisor.IsZero() || ref.ResourceFieldRef.Divisor.Value() == 1)
		}
	}
	return false
}
