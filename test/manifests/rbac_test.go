package manifests

import (
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// generatedRole is config/rbac/role.yaml, which controller-gen writes from the +kubebuilder:rbac markers.
func generatedRole(t *testing.T) rbacv1.ClusterRole {
	t.Helper()
	raw, err := os.ReadFile(configDir("rbac") + "/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(raw, &role); err != nil {
		t.Fatalf("failed to parse config/rbac/role.yaml: %v", err)
	}
	if role.Kind != "ClusterRole" || role.Name != "manager-role" || len(role.Rules) == 0 {
		t.Fatalf("config/rbac/role.yaml is %s %q with %d rules; want the ClusterRole manager-role", role.Kind, role.Name, len(role.Rules))
	}
	return role
}

// Verbs that read only.
var readVerbs = []string{"get", "list", "watch"}

// leastPrivilegeViolations lists what a rule grants beyond what the operator may ever need: wildcards,
// writing Secrets or ConfigMaps (it only reads credentials and connector keys), and the verbs that let a
// holder grant itself more (escalate, bind, impersonate).
func leastPrivilegeViolations(rule rbacv1.PolicyRule) []string {
	var problems []string
	for field, values := range map[string][]string{
		"verbs": rule.Verbs, "apiGroups": rule.APIGroups, "resources": rule.Resources,
		"resourceNames": rule.ResourceNames, "nonResourceURLs": rule.NonResourceURLs,
	} {
		for _, value := range values {
			if strings.Contains(value, "*") {
				problems = append(problems, "wildcard "+field+" "+value)
			}
		}
	}
	for _, verb := range rule.Verbs {
		if slices.Contains([]string{"escalate", "bind", "impersonate"}, verb) {
			problems = append(problems, "verb "+verb)
		}
	}
	if slices.Contains(rule.APIGroups, "") {
		for _, res := range rule.Resources {
			if res != "secrets" && res != "configmaps" && !strings.HasPrefix(res, "secrets/") && !strings.HasPrefix(res, "configmaps/") {
				continue
			}
			for _, verb := range rule.Verbs {
				if !slices.Contains(readVerbs, verb) {
					problems = append(problems, verb+" "+res)
				}
			}
		}
	}
	return problems
}

func TestGeneratedRoleIsLeastPrivilege(t *testing.T) {
	role := generatedRole(t)
	readsSecrets := false
	for _, rule := range role.Rules {
		for _, problem := range leastPrivilegeViolations(rule) {
			t.Errorf("config/rbac/role.yaml grants %s (rule %+v)", problem, rule)
		}
		if slices.Contains(rule.APIGroups, "") && slices.Contains(rule.Resources, "secrets") {
			readsSecrets = true
			if !slices.Equal(slices.Sorted(slices.Values(rule.Verbs)), readVerbs) {
				t.Errorf("secrets verbs = %v, want exactly get, list, watch", rule.Verbs)
			}
		}
	}
	if !readsSecrets {
		t.Error("config/rbac/role.yaml does not read secrets, which every credential and PFX source needs")
	}
}

// The hand-written roles are held to the same rules as the generated one.
func TestEveryRenderedRoleIsLeastPrivilege(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			r := render(t, v)
			check := func(kind, name string, rules []rbacv1.PolicyRule) {
				for _, rule := range rules {
					for _, problem := range leastPrivilegeViolations(rule) {
						t.Errorf("%s %s grants %s", kind, name, problem)
					}
				}
			}
			for _, role := range all[rbacv1.Role](t, r, "Role") {
				check("Role", role.Name, role.Rules)
			}
			for _, role := range all[rbacv1.ClusterRole](t, r, "ClusterRole") {
				check("ClusterRole", role.Name, role.Rules)
			}
		})
	}
}

// The namespaced variant turns the generated ClusterRole into a Role with the same rules, and keeps only the
// cluster-wide grants its kustomization.yaml documents.
func TestNamespacedVariantKeepsOnlyTheDocumentedClusterWideGrants(t *testing.T) {
	generated := generatedRole(t)
	r := render(t, variants[1])

	var managerRole *rbacv1.Role
	for _, role := range all[rbacv1.Role](t, r, "Role") {
		if role.Name == namePrefix+"manager-role" {
			managerRole = &role
		}
	}
	if managerRole == nil {
		t.Fatal("the namespaced render has no Role " + namePrefix + "manager-role")
	}
	if !slices.EqualFunc(managerRole.Rules, generated.Rules, rulesEqual) {
		t.Errorf("the Role's rules differ from config/rbac/role.yaml:\n%+v\n%+v", managerRole.Rules, generated.Rules)
	}

	clusterRoles := map[string]rbacv1.ClusterRole{}
	for _, role := range all[rbacv1.ClusterRole](t, r, "ClusterRole") {
		clusterRoles[strings.TrimPrefix(role.Name, namePrefix)] = role
	}
	names := slices.Sorted(maps.Keys(clusterRoles))
	if want := []string{"clustergraphconnection-role", "metrics-auth-role", "metrics-reader"}; !slices.Equal(names, want) {
		t.Errorf("ClusterRoles = %v, want %v", names, want)
	}

	// The ClusterGraphConnection role grants what the generated role grants on cluster-scoped resources (a
	// Role cannot), and nothing else.
	cgc := clusterRoles["clustergraphconnection-role"]
	granted := map[string]bool{}
	for _, rule := range cgc.Rules {
		for _, group := range rule.APIGroups {
			for _, res := range rule.Resources {
				if !clusterScopedResources[group+"/"+strings.Split(res, "/")[0]] {
					t.Errorf("the ClusterGraphConnection role grants %q %s, which is not cluster-scoped", group, res)
				}
				for _, verb := range rule.Verbs {
					granted[group+"/"+res+":"+verb] = true
				}
			}
		}
	}
	for _, rule := range generated.Rules {
		for _, group := range rule.APIGroups {
			for _, res := range rule.Resources {
				if !clusterScopedResources[group+"/"+strings.Split(res, "/")[0]] {
					continue
				}
				for _, verb := range rule.Verbs {
					if !granted[group+"/"+res+":"+verb] {
						t.Errorf("config/rbac/role.yaml grants %s %q %s, which the namespaced variant's ClusterRole lacks", verb, group, res)
					}
				}
			}
		}
	}

	if bindings := all[rbacv1.ClusterRoleBinding](t, r, "ClusterRoleBinding"); len(bindings) != 2 {
		t.Errorf("%d ClusterRoleBindings, want 2 (ClusterGraphConnections, metrics authentication)", len(bindings))
	}
}

// clusterScopedResources are the cluster-scoped resources the operator uses, as "group/resource".
var clusterScopedResources = map[string]bool{
	"intune.certops.dev/clustergraphconnections": true,
	"intune.certops.dev/recordclaims":            true,
	"/namespaces":                                true,
}

func rulesEqual(a, b rbacv1.PolicyRule) bool {
	return slices.Equal(a.Verbs, b.Verbs) && slices.Equal(a.APIGroups, b.APIGroups) && slices.Equal(a.Resources, b.Resources) &&
		slices.Equal(a.ResourceNames, b.ResourceNames) && slices.Equal(a.NonResourceURLs, b.NonResourceURLs)
}
