package connection

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

// A SecretReader reads each Secret once, however many of its keys are asked for, and names the Secret and
// key in its errors.
func TestSecretReader(t *testing.T) {
	gets := 0
	c := fake.NewClientBuilder().WithObjects(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "alice-pfx"}, Data: map[string][]byte{"pfx": []byte("P"), "password": []byte("pw")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "shared-password"}, Data: map[string][]byte{"pw": []byte("other")}},
	).WithInterceptorFuncs(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		gets++
		return c.Get(ctx, key, obj, opts...)
	}}).Build()
	ctx := context.Background()

	r := NewSecretReader(c, "ns")
	for _, k := range []struct{ name, key, defaultKey, want string }{
		{"alice-pfx", "", "pfx", "P"},
		{"alice-pfx", "", "password", "pw"},
		{"alice-pfx", "password", "", "pw"},
	} {
		if got, err := r.Key(ctx, k.name, k.key, k.defaultKey); err != nil || string(got) != k.want {
			t.Errorf("Key(%s, %q, %q) = %q, %v; want %q", k.name, k.key, k.defaultKey, got, err, k.want)
		}
	}
	if gets != 1 {
		t.Errorf("three keys of one Secret took %d reads, want 1", gets)
	}
	if got, err := r.Key(ctx, "shared-password", "pw", ""); err != nil || string(got) != "other" || gets != 2 {
		t.Errorf("a second Secret: %q, %v after %d reads; want \"other\" after 2", got, err, gets)
	}

	for _, k := range []struct{ name, key, reason, message string }{
		{"alice-pfx", "nope", intunev1alpha1.ReasonSecretKeyMissing, `Secret "alice-pfx" in namespace "ns" has no key "nope"`},
		{"missing", "pfx", intunev1alpha1.ReasonSecretNotFound, `Secret "missing" does not exist in namespace "ns"`},
	} {
		_, err := r.Key(ctx, k.name, k.key, "")
		var ce *Error
		if !errors.As(err, &ce) || ce.Reason != k.reason || ce.Message != k.message {
			t.Errorf("Key(%s, %s): %v, want %s: %s", k.name, k.key, err, k.reason, k.message)
		}
	}
}
