package stack

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// The environment resolves as the kubelet resolves it: values as written, resource fields divided by their
// divisor and rounded up, pod fields left to the stack's flags.
func TestContainerEnv(t *testing.T) {
	c := corev1.Container{
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("80Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi"), corev1.ResourceCPU: resource.MustParse("500m")},
		},
		Env: []corev1.EnvVar{
			{Name: "PLAIN", Value: "x"},
			{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
			{Name: "GOMEMLIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.memory"}}},
			{Name: "LIMIT_MI", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
			{Name: "CPUS", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
		},
	}
	env, err := containerEnv(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"PLAIN=x", "GOMEMLIMIT=83886080", "LIMIT_MI=256", "CPUS=1"}; !slices.Equal(env, want) {
		t.Errorf("env = %v, want %v", env, want)
	}
	c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.cpu"}}}}
	if _, err := containerEnv(c); err == nil {
		t.Error("a resource the container does not set resolved")
	}
}

// The repository's manifest gives the operator a GOMEMLIMIT.
func TestDeploymentEnv(t *testing.T) {
	env, err := DeploymentEnv("../..")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "GOMEMLIMIT=") }) {
		t.Errorf("no GOMEMLIMIT in %v", env)
	}
}
