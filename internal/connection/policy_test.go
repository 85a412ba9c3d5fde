package connection

import (
	"errors"
	"strings"
	"testing"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/graph"
)

func TestPolicyRefusesBorrowedIdentities(t *testing.T) {
	const clientID = "3b2a1c0d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	secret := &intunev1alpha1.SecretKeyReference{Name: "graph-app"}
	for _, tc := range []struct {
		name       string
		credential intunev1alpha1.GraphCredential
		refused    bool
	}{
		{"default type is WorkloadIdentity without a ServiceAccount", intunev1alpha1.GraphCredential{}, true},
		{"WorkloadIdentity with clientId but the pod's token", intunev1alpha1.GraphCredential{Type: "WorkloadIdentity", ClientID: clientID}, true},
		{"ManagedIdentity", intunev1alpha1.GraphCredential{Type: "ManagedIdentity"}, true},
		{"user-assigned ManagedIdentity", intunev1alpha1.GraphCredential{Type: "ManagedIdentity", ClientID: clientID}, true},
		{"Environment", intunev1alpha1.GraphCredential{Type: "Environment"}, true},
		{"WorkloadIdentity with its own ServiceAccount",
			intunev1alpha1.GraphCredential{Type: "WorkloadIdentity", ClientID: clientID, ServiceAccountName: "team-a-intune"}, false},
		{"ClientSecret", intunev1alpha1.GraphCredential{Type: "ClientSecret", ClientID: clientID, SecretRef: secret}, false},
		{"ClientCertificate", intunev1alpha1.GraphCredential{Type: "ClientCertificate", ClientID: clientID, SecretRef: secret}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := &intunev1alpha1.GraphConnectionSpec{TenantID: "t", Credential: tc.credential}
			err := Policy{}.check(spec, publicEndpoints(t))
			if !tc.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			assertReason(t, err, intunev1alpha1.ReasonAmbientCredentialsNotAllowed)
			if !strings.Contains(err.Error(), "serviceAccountName") {
				t.Errorf("message %q does not say what to use instead", err)
			}
			if err := (Policy{AllowNamespacedAmbientCredentials: true}).check(spec, publicEndpoints(t)); err != nil {
				t.Errorf("--allow-namespaced-ambient-credentials still refuses: %v", err)
			}
		})
	}
}

func TestPolicyAllowsOnlyTrustedHosts(t *testing.T) {
	allowed, err := ParseAllowedHosts(" graphsim.test:8443 , Private.Example ,[::1]:9443")
	if err != nil {
		t.Fatal(err)
	}
	policy := Policy{AllowedEndpointHosts: allowed}
	for _, tc := range []struct {
		cloud   intunev1alpha1.Cloud
		field   string
		url     string
		allowed bool
	}{
		{"Public", "graphEndpoint", "https://graph.microsoft.com", true},
		{"", "graphEndpoint", "https://GRAPH.microsoft.com:443/", true},
		{"Public", "authorityHost", "https://login.microsoftonline.com/", true},
		{"Public", "graphEndpoint", "https://graph.microsoft.com:8443", false},
		{"Public", "graphEndpoint", "https://graph.microsoft.us", false}, // another cloud's host
		{"USGovernment", "graphEndpoint", "https://graph.microsoft.us", true},
		{"China", "authorityHost", "https://login.chinacloudapi.cn", true},
		{"Public", "graphEndpoint", "https://graphsim.test:8443", true},
		{"Public", "authorityHost", "https://graphsim.test:8443/", true},
		{"Public", "graphEndpoint", "https://graphsim.test:9443", false}, // same host, another port
		{"Public", "graphEndpoint", "https://graphsim.test", false},
		{"Public", "graphEndpoint", "https://private.example", true},
		{"Public", "graphEndpoint", "https://private.example:444", false},
		{"Public", "graphEndpoint", "https://[::1]:9443", true},
		{"Public", "authorityHost", "https://attacker.example", false},
		{"Public", "authorityHost", "https://login.microsoftonline.com@attacker.example/", false},
		{"Public", "graphEndpoint", "https://graph.microsoft.com.attacker.example", false},
	} {
		spec := &intunev1alpha1.GraphConnectionSpec{TenantID: "t", Cloud: tc.cloud,
			Credential: intunev1alpha1.GraphCredential{Type: "ClientSecret", ClientID: "c", SecretRef: &intunev1alpha1.SecretKeyReference{Name: "s"}}}
		if tc.field == "graphEndpoint" {
			spec.GraphEndpoint = tc.url
		} else {
			spec.AuthorityHost = tc.url
		}
		endpoints, err := graph.EndpointsFor(graph.Cloud(tc.cloud))
		if err != nil {
			t.Fatal(err)
		}
		err = policy.check(spec, endpoints)
		if tc.allowed {
			if err != nil {
				t.Errorf("%s %s=%s refused: %v", tc.cloud, tc.field, tc.url, err)
			}
			continue
		}
		assertReason(t, err, intunev1alpha1.ReasonEndpointNotAllowed)
		if err != nil && !strings.Contains(err.Error(), "spec."+tc.field) {
			t.Errorf("message %q does not name spec.%s", err, tc.field)
		}
	}
}

func TestParseAllowedHostsRejectsWhatIsNoHost(t *testing.T) {
	for _, bad := range []string{"https://graphsim.test", "graphsim.test/path", "user@graphsim.test", "graphsim.test:port"} {
		if _, err := ParseAllowedHosts(bad); err == nil {
			t.Errorf("ParseAllowedHosts(%q) accepted it", bad)
		}
	}
	if hosts, err := ParseAllowedHosts(""); err != nil || len(hosts) != 0 {
		t.Errorf("empty flag = %v, %v; want no hosts", hosts, err)
	}
}

// A GraphConnection can slow its own writes, and never the budget other connections of the app share; the
// shared rate is the lowest any ClusterGraphConnection asks for, and is restored when that one goes.
func TestWriteBudgetIsSetByClusterConnectionsOnly(t *testing.T) {
	p := &Provider{}
	spec := func(perTwentySeconds int32) *intunev1alpha1.GraphConnectionSpec {
		return &intunev1alpha1.GraphConnectionSpec{TenantID: "T", Cloud: "Public", WriteRequestsPer20Seconds: perTwentySeconds,
			Credential: intunev1alpha1.GraphCredential{ClientID: "App"}}
	}
	shared := func() float64 { return float64(p.budgets[budgetKey(spec(0))].limiter.Limit()) * 20 }

	p.writeLimiter(IndexKey("GraphConnection", "team-a", "slow"), false, spec(1))
	if got := shared(); got != DefaultWritesPer20Seconds {
		t.Fatalf("a GraphConnection asking for 1 write per 20 s set the shared budget to %v", got)
	}
	p.writeLimiter(IndexKey("GraphConnection", "team-b", "fast"), false, spec(200))
	if got := shared(); got != DefaultWritesPer20Seconds {
		t.Fatalf("a GraphConnection asking for 200 writes per 20 s set the shared budget to %v", got)
	}

	a, b := IndexKey("ClusterGraphConnection", "", "a"), IndexKey("ClusterGraphConnection", "", "b")
	p.writeLimiter(a, true, spec(50))
	p.writeLimiter(b, true, spec(80))
	if got := shared(); got != 50 {
		t.Fatalf("shared budget = %v per 20 s, want the lowest ClusterGraphConnection's 50", got)
	}
	p.clients = map[string]cached{a: {budgetKey: budgetKey(spec(0))}}
	p.Forget("ClusterGraphConnection", "", "a")
	if got := shared(); got != 80 {
		t.Fatalf("after deleting the slowest ClusterGraphConnection the budget is %v per 20 s, want 80", got)
	}
	other := spec(10)
	other.TenantID = "other-tenant"
	p.writeLimiter(a, true, other)
	if got := shared(); got != 80 {
		t.Fatalf("another tenant's connection changed this tenant's budget to %v", got)
	}
}

func publicEndpoints(t *testing.T) graph.Endpoints {
	t.Helper()
	e, err := graph.EndpointsFor(graph.CloudPublic)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func assertReason(t *testing.T, err error, reason string) {
	t.Helper()
	var connErr *Error
	if !errors.As(err, &connErr) || connErr.Reason != reason {
		t.Fatalf("error = %v, want reason %s", err, reason)
	}
}

// A connection's client built again (its credential Secret changed, or two passes built it at once) keeps the
// user ids the previous one learnt; another tenant, another connection, or the connection deleted do not.
func TestUserCacheOutlivesAClientRebuilt(t *testing.T) {
	p := &Provider{}
	a, b := IndexKey("ClusterGraphConnection", "", "a"), IndexKey("GraphConnection", "team", "b")
	first := p.userCache(a, graph.CloudPublic, "T")
	if p.userCache(a, graph.CloudPublic, "t") != first {
		t.Error("the same connection and tenant got a second cache")
	}
	for name, other := range map[string]*graph.UserIDCache{
		"another tenant":     p.userCache(a, graph.CloudPublic, "other"),
		"another cloud":      p.userCache(a, graph.CloudUSGovernment, "T"),
		"another connection": p.userCache(b, graph.CloudPublic, "T"),
	} {
		if other == first {
			t.Errorf("%s shares the cache", name)
		}
	}
	p.Forget("ClusterGraphConnection", "", "a")
	if p.userCache(a, graph.CloudPublic, "T") == first {
		t.Error("a deleted connection's cache was kept")
	}
}
