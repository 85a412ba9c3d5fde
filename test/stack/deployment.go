package stack

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

// DeploymentEnv is the environment config/manager/manager.yaml gives the manager container, as far as a
// process outside a pod can have it: plain values, and resourceFieldRefs resolved against the container's
// own resources (GOMEMLIMIT follows requests.memory). Fields of the pod (POD_NAMESPACE) are left out: the
// stack passes the namespace as a flag. So the operator runs here with the memory settings it is deployed with.
func DeploymentEnv(root string) ([]string, error) {
	path := filepath.Join(root, "config", "manager", "manager.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for _, doc := range bytes.Split(data, []byte("\n---")) {
		var d appsv1.Deployment
		if err := yaml.Unmarshal(doc, &d); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if d.Kind != "Deployment" {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == "manager" {
				return containerEnv(c)
			}
		}
	}
	return nil, fmt.Errorf("%s has no Deployment with a container named manager", path)
}

func containerEnv(c corev1.Container) ([]string, error) {
	var env []string
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.ResourceFieldRef != nil:
			v, err := resolveResource(c.Resources, e.ValueFrom.ResourceFieldRef)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			env = append(env, e.Name+"="+v)
		}
	}
	return env, nil
}

// resolveResource is what the kubelet puts in a resourceFieldRef variable: the quantity divided by the
// divisor (default 1), rounded up.
func resolveResource(res corev1.ResourceRequirements, ref *corev1.ResourceFieldSelector) (string, error) {
	var list corev1.ResourceList
	var name string
	if n, ok := strings.CutPrefix(ref.Resource, "requests."); ok {
		list, name = res.Requests, n
	} else if n, ok := strings.CutPrefix(ref.Resource, "limits."); ok {
		list, name = res.Limits, n
	} else {
		return "", fmt.Errorf("resource %q is not requests.* or limits.*", ref.Resource)
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		return "", fmt.Errorf("the container sets no %s", ref.Resource)
	}
	divisor := resource.MustParse("1")
	if !ref.Divisor.IsZero() {
		divisor = ref.Divisor
	}
	return fmt.Sprint(int64(math.Ceil(q.AsApproximateFloat64() / divisor.AsApproximateFloat64()))), nil
}
