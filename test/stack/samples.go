package stack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

// SampleKinds are the kinds config/samples holds, in the order they become Ready.
var SampleKinds = []string{"clustergraphconnections", "graphconnections", "userpfxcertificates", "userpfxcertificatesets",
	"manageddevicecertificatestates", "pfxrecryptionrequests", "pfxusercertificates"}

// SampleSetLabel selects the Secrets of config/samples' UserPfxCertificateSet.
const SampleSetLabel = "intune.certops.dev/import"

// SampleTenantLabel is the namespace label config/samples' ClusterGraphConnection selects (spec.access).
const SampleTenantLabel = "intune.certops.dev/tenant=contoso"

// SampleServiceAccount is the ServiceAccount config/samples' GraphConnection signs in as.
const SampleServiceAccount = "intune-graph"

// SamplePassword protects the demo PFX of alice.
const SamplePassword = "Demo-Pa55word!"

// SampleMaterial are the certificates the samples' Secrets hold.
type SampleMaterial struct {
	Alice, Bob, AliceIPhone *testutil.UserCertificate
	// Staff are the S/MIME certificates of alice, bob and carol in the tls Secrets <user>-smime-tls the
	// UserPfxCertificateSet sample selects.
	Staff []*testutil.UserCertificate
}

// ApplySamples creates what config/samples refer to (Secrets with freshly issued certificates, the
// pfxUserCertificate record Graph only lets one update, the app's trust in the sample ServiceAccount) and
// applies config/samples with kubectl, the two connection samples pointed at graphsim.
func (s *Stack) ApplySamples(ctx context.Context, namespace string) (*SampleMaterial, error) {
	m := &SampleMaterial{}
	var err error
	now := time.Now()
	for _, issue := range []struct {
		into **testutil.UserCertificate
		upn  string
	}{{&m.Alice, "alice@contoso.com"}, {&m.Bob, "bob@contoso.com"}, {&m.AliceIPhone, "alice@contoso.com"}} {
		if *issue.into, err = testutil.NewUserCertificate(issue.upn, now.Add(-time.Hour), now.AddDate(1, 0, 0)); err != nil {
			return nil, err
		}
	}
	pfxData, err := m.Alice.PFX(SamplePassword)
	if err != nil {
		return nil, err
	}
	objs := []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "alice-pfx", Namespace: namespace},
			Data: map[string][]byte{"pfx": pfxData, "password": []byte(SamplePassword)}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bob-wifi-tls", Namespace: namespace}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: m.Bob.CertPEM(), corev1.TLSPrivateKeyKey: m.Bob.KeyPEM()}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "alice-iphone-cert", Namespace: namespace},
			Data: map[string][]byte{corev1.TLSCertKey: m.AliceIPhone.CertPEM()}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "intune-connector-key", Namespace: namespace},
			Data: map[string]string{"public.pem": string(testutil.PublicKeyPEM(&s.ConnectorKey.PublicKey))}},
	}
	for _, user := range []string{"alice", "bob", "carol"} {
		u, err := testutil.NewUserCertificate(user+"@contoso.com", now.Add(-time.Hour), now.AddDate(1, 0, 0))
		if err != nil {
			return nil, err
		}
		m.Staff = append(m.Staff, u)
		objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: user + "-smime-tls", Namespace: namespace,
			Labels: map[string]string{SampleSetLabel: "smime"}}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: u.CertPEM(), corev1.TLSPrivateKeyKey: u.KeyPEM()}})
	}
	for _, obj := range objs {
		if err := s.Client.Create(ctx, obj); err != nil {
			return nil, fmt.Errorf("creating %s: %w", obj.GetName(), err)
		}
	}
	if err := s.Sim(http.MethodPut, "pfxUserCertificates/"+TenantID, graphsim.PfxUserCertificate{
		ID: PfxUserCertificateID, TenantID: TenantID, UserID: AliceID, UserUpn: "alice@contoso.com",
	}, nil); err != nil {
		return nil, err
	}
	// The GraphConnection sample signs in as the sample ServiceAccount of namespace, and the
	// ClusterGraphConnection sample serves namespaces labelled for its tenant.
	if err := s.TrustServiceAccount(namespace, SampleServiceAccount); err != nil {
		return nil, err
	}
	if _, err := s.KubectlRun(ctx, "label", "namespace", namespace, SampleTenantLabel, "--overwrite"); err != nil {
		return nil, err
	}
	dir, err := s.samplesForGraphsim()
	if err != nil {
		return nil, err
	}
	_, err = s.KubectlRun(ctx, "apply", "-n", namespace, "-f", dir)
	return m, err
}

// samplesForGraphsim copies config/samples, replacing the spec of the connection samples with one that
// signs in to graphsim (the samples name Microsoft's cloud, which this machine cannot reach).
func (s *Stack) samplesForGraphsim() (string, error) {
	src := filepath.Join(testutil.RepoRoot(), "config", "samples")
	dst := filepath.Join(s.Dir, "samples")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return "", err
	}
	files, err := filepath.Glob(filepath.Join(src, "*.yaml"))
	if err != nil {
		return "", err
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &u.Object); err != nil {
			return "", fmt.Errorf("%s: %w", f, err)
		}
		switch u.GetKind() {
		case "ClusterGraphConnection":
			// The sample's access rules, signing in to graphsim.
			var sample intunev1alpha1.ClusterGraphConnection
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &sample); err != nil {
				return "", fmt.Errorf("%s: %w", f, err)
			}
			spec := intunev1alpha1.ClusterGraphConnectionSpec{GraphConnectionSpec: s.ConnectionSpec("graph-app", "intune-connector-key"),
				Access: sample.Spec.Access}
			if data, err = s.withSpec(u, &spec); err != nil {
				return "", err
			}
		case "GraphConnection":
			// The sample's own credential (its namespace's ServiceAccount), signing in to graphsim.
			var sample intunev1alpha1.GraphConnection
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &sample); err != nil {
				return "", fmt.Errorf("%s: %w", f, err)
			}
			spec := s.ConnectionSpec("graph-app", "intune-connector-key")
			spec.Credential = sample.Spec.Credential
			spec.PfxEncryption.PublicKeyRef.Kind = "ConfigMap"
			if data, err = s.withSpec(u, &spec); err != nil {
				return "", err
			}
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), data, 0o644); err != nil {
			return "", err
		}
	}
	return dst, nil
}

// withSpec replaces u's spec with spec (a pointer to a spec struct).
func (s *Stack) withSpec(u *unstructured.Unstructured, spec any) ([]byte, error) {
	specMap, err := runtime.DefaultUnstructuredConverter.ToUnstructured(spec)
	if err != nil {
		return nil, err
	}
	u.Object["spec"] = specMap
	return yaml.Marshal(u.Object)
}

// WaitAllReady waits until every resource of every sample kind is Ready.
func (s *Stack) WaitAllReady(ctx context.Context, timeout time.Duration) error {
	for _, kind := range SampleKinds {
		if _, err := s.KubectlRun(ctx, "wait", "--for=condition=Ready", kind, "--all", "-A", "--timeout="+timeout.String()); err != nil {
			out, _ := s.KubectlRun(ctx, "get", kind, "-A", "-o", "custom-columns=NAME:.metadata.name,REASON:.status.conditions[0].reason,MESSAGE:.status.conditions[0].message")
			return fmt.Errorf("%w\n%s", err, strings.TrimSpace(out))
		}
	}
	return nil
}
