package metricsauth

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/certops/intune-cert-operator/internal/testutil"
)

// The guard against a real API server: a scraper's ServiceAccount token, RBAC granting GET /metrics, and
// the decisions' reuse and expiry.
func TestGuardAgainstAPIServer(t *testing.T) {
	env, err := testutil.NewEnvironment()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatal("starting the control plane: ", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx := context.Background()
	kube := kubernetes.NewForConfigOrDie(cfg)

	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	const ns = "monitoring"
	must(kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	must(kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "prometheus"}}, metav1.CreateOptions{}))
	tr, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "prometheus", &authnv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token := tr.Status.Token

	g := newGuard(kube.AuthenticationV1().TokenReviews(), kube.AuthorizationV1().SubjectAccessReviews())
	clock := time.Now()
	g.now = func() time.Time { return clock }
	handler, _ := g.filter(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "metrics")
	}))
	call := func(method, path, authorization string) (int, string) {
		req := httptest.NewRequest(method, path, nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	expect := func(what string, method, path, authorization string, wantCode int, wantBody string) {
		t.Helper()
		if code, body := call(method, path, authorization); code != wantCode || body != wantBody {
			t.Errorf("%s: got %d %q, want %d %q", what, code, body, wantCode, wantBody)
		}
	}
	user := "system:serviceaccount:monitoring:prometheus"

	expect("no token", "GET", "/metrics", "", 401, "Unauthorized")
	expect("not a bearer token", "GET", "/metrics", "Basic "+token, 401, "Unauthorized")
	expect("a token the API server does not know", "GET", "/metrics", "Bearer not-a-token", 401, "Unauthorized")
	expect("a valid token without RBAC", "GET", "/metrics", "Bearer "+token, 403, "Authorization denied for user "+user)

	must(kube.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader"},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}))
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "prometheus-metrics-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "prometheus"}},
	}
	must(kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}))

	expect("a refusal is reused for 30 s", "GET", "/metrics", "Bearer "+token, 403, "Authorization denied for user "+user)
	// The API server's authorizer sees RBAC changes through its own informer, a moment later.
	waitAuthorized(t, kube, user, true)
	clock = clock.Add(denyTTL)
	expect("after the binding, once the refusal expired", "GET", "/metrics", "Bearer "+token, 200, "metrics")
	expect("another verb", "POST", "/metrics", "Bearer "+token, 403, "Authorization denied for user "+user)
	expect("another path", "GET", "/debug/pprof/", "Bearer "+token, 403, "Authorization denied for user "+user)

	if err := kube.RbacV1().ClusterRoleBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("an allowance is reused for a minute", "GET", "/metrics", "Bearer "+token, 200, "metrics")
	waitAuthorized(t, kube, user, false)
	clock = clock.Add(allowTTL)
	expect("after the binding is gone, once the allowance expired", "GET", "/metrics", "Bearer "+token, 403, "Authorization denied for user "+user)
}

// waitAuthorized waits until the API server's own answer for user's GET /metrics is allowed (or not).
func waitAuthorized(t *testing.T, kube kubernetes.Interface, user string, allowed bool) {
	t.Helper()
	review := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{User: user,
		Groups:                []string{"system:serviceaccounts", "system:serviceaccounts:monitoring", "system:authenticated"},
		NonResourceAttributes: &authzv1.NonResourceAttributes{Path: "/metrics", Verb: "get"}}}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got, err := kube.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), review, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.Allowed == allowed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API server still answers allowed=%v for %s 30 s after the RBAC change", got.Status.Allowed, user)
		}
	}
}

// When the API server cannot be asked, the request fails with 500 and the failure is not remembered.
func TestGuardWithoutAPIServer(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	kube := kubernetes.NewForConfigOrDie(&rest.Config{Host: dead.URL, Timeout: 5 * time.Second})
	g := newGuard(kube.AuthenticationV1().TokenReviews(), kube.AuthorizationV1().SubjectAccessReviews())
	handler, _ := g.filter(logr.Discard(), http.NotFoundHandler())
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Authorization", "Bearer some-token")
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), "some-token") {
		t.Errorf("got %d %q, want 500 without the token", rec.Code, rec.Body.String())
	}
	if len(g.decisions) != 0 {
		t.Errorf("a failed review was remembered: %d decisions", len(g.decisions))
	}
}
