package controller

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/certops/intune-cert-operator/internal/testutil"
)

// newNamespace creates a namespace of the test's own and removes it afterwards.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(context.Background(), ns) })
	return ns.Name
}

// loadSamples reads every manifest of config/samples.
func loadSamples(t *testing.T) map[string]*unstructured.Unstructured {
	t.Helper()
	dir := filepath.Join(testutil.RepoRoot(), "config", "samples")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in %s: %v", dir, err)
	}
	samples := map[string]*unstructured.Unstructured{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &u.Object); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		samples[filepath.Base(f)] = u
	}
	return samples
}

// sampleOf returns the first sample of kind, in file name order.
func sampleOf(t *testing.T, kind string) *unstructured.Unstructured {
	t.Helper()
	samples := loadSamples(t)
	for _, file := range slices.Sorted(maps.Keys(samples)) {
		if u := samples[file]; u.GetKind() == kind {
			return u.DeepCopy()
		}
	}
	t.Fatalf("no sample of kind %s", kind)
	return nil
}

// create puts obj into ns under a fresh name (cluster-scoped kinds ignore ns).
func create(ctx context.Context, ns string, obj *unstructured.Unstructured) error {
	obj.SetName("")
	obj.SetGenerateName(strings.ToLower(obj.GetKind()) + "-")
	if obj.GetKind() != "ClusterGraphConnection" {
		obj.SetNamespace(ns)
	}
	return k8sClient.Create(ctx, obj)
}

func TestEverySampleIsAccepted(t *testing.T) {
	ns := newNamespace(t)
	kinds := map[string]bool{}
	for file, u := range loadSamples(t) {
		if err := create(context.Background(), ns, u); err != nil {
			t.Errorf("sample %s was refused: %v", file, err)
		}
		kinds[u.GetKind()] = true
	}
	for _, kind := range []string{"UserPfxCertificate", "ManagedDeviceCertificateState", "PfxRecryptionRequest",
		"PfxUserCertificate", "GraphConnection", "ClusterGraphConnection"} {
		if !kinds[kind] {
			t.Errorf("config/samples has no %s", kind)
		}
	}
}

func TestAdmissionRefusesBadInput(t *testing.T) {
	ns := newNamespace(t)
	cases := []struct {
		name    string
		kind    string
		mutate  func(o map[string]any)
		message string
	}{
		{"bad intendedPurpose enum", "UserPfxCertificate",
			func(o map[string]any) { spec(o)["intendedPurpose"] = "email" }, `spec.intendedPurpose: Unsupported value: "email"`},
		{"both pfx and tls", "UserPfxCertificate",
			func(o map[string]any) {
				spec(o)["source"] = map[string]any{
					"pfx": map[string]any{"secretRef": map[string]any{"name": "x"}},
					"tls": map[string]any{"secretRef": map[string]any{"name": "x"}},
				}
			}, "source must set exactly one of pfx or tls"},
		{"neither pfx nor tls", "UserPfxCertificate",
			func(o map[string]any) { spec(o)["source"] = map[string]any{} }, "source must set exactly one of pfx or tls"},
		{"bad padding scheme", "UserPfxCertificate",
			func(o map[string]any) { spec(o)["encryption"] = map[string]any{"paddingScheme": "oaepMd5"} }, `spec.encryption.paddingScheme: Unsupported value: "oaepMd5"`},
		{"pkcs1 padding", "UserPfxCertificate",
			func(o map[string]any) { spec(o)["encryption"] = map[string]any{"paddingScheme": "pkcs1"} },
			"paddingScheme pkcs1 and oaepSha1 are no longer supported by Intune's PFX import: use oaepSha512"},
		{"oaepSha1 padding on a connection", "ClusterGraphConnection",
			func(o map[string]any) { spec(o)["pfxEncryption"].(map[string]any)["paddingScheme"] = "oaepSha1" },
			"paddingScheme pkcs1 and oaepSha1 are no longer supported by Intune's PFX import: use oaepSha512"},
		{"bad superseded retention", "UserPfxCertificate",
			func(o map[string]any) { spec(o)["retention"] = map[string]any{"superseded": "Archive"} },
			`spec.retention.superseded: Unsupported value: "Archive"`},
		{"bad expired retention", "UserPfxCertificate",
			func(o map[string]any) { spec(o)["retention"] = map[string]any{"expired": "KeepUntilExpired"} },
			`spec.retention.expired: Unsupported value: "KeepUntilExpired"`},
		{"renewBefore in days", "UserPfxCertificate",
			func(o map[string]any) { spec(o)["renewBefore"] = "30d" }, "renewBefore must be a duration such as 720h"},
		{"negative renewBefore", "UserPfxCertificate",
			func(o map[string]any) { spec(o)["renewBefore"] = "-1h" }, "renewBefore must be a duration such as 720h"},
		{"bad pfxEncoding", "UserPfxCertificate",
			func(o map[string]any) {
				spec(o)["source"] = map[string]any{"tls": map[string]any{"secretRef": map[string]any{"name": "x"}, "pfxEncoding": "RC2-40"}}
			}, `spec.source.tls.pfxEncoding: Unsupported value: "RC2-40"`},
		{"bad deletionPolicy", "UserPfxCertificate",
			func(o map[string]any) { spec(o)["deletionPolicy"] = "Keep" }, `spec.deletionPolicy: Unsupported value: "Keep"`},
		{"malformed tenant GUID", "ClusterGraphConnection",
			func(o map[string]any) { spec(o)["tenantId"] = "contoso.onmicrosoft.com" }, "spec.tenantId in body should match"},
		{"malformed client GUID", "GraphConnection",
			func(o map[string]any) { spec(o)["credential"].(map[string]any)["clientId"] = "1234" }, "spec.credential.clientId in body should match"},
		{"client secret without secretRef", "GraphConnection",
			func(o map[string]any) {
				spec(o)["credential"] = map[string]any{"type": "ClientSecret", "clientId": "3b2a1c0d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}
			}, "secretRef is required for ClientSecret and ClientCertificate"},
		{"serviceAccountName with a client secret", "GraphConnection",
			func(o map[string]any) {
				spec(o)["credential"] = map[string]any{"type": "ClientSecret", "clientId": "3b2a1c0d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
					"secretRef": map[string]any{"name": "graph-app"}, "serviceAccountName": "intune-graph"}
			}, "serviceAccountName is only for WorkloadIdentity credentials, which then also need clientId"},
		{"serviceAccountName without clientId", "GraphConnection",
			func(o map[string]any) { delete(spec(o)["credential"].(map[string]any), "clientId") },
			"serviceAccountName is only for WorkloadIdentity credentials, which then also need clientId"},
		{"malformed serviceAccountName", "GraphConnection",
			func(o map[string]any) { spec(o)["credential"].(map[string]any)["serviceAccountName"] = "Team_A" },
			"spec.credential.serviceAccountName in body should match"},
		{"bad access kind", "ClusterGraphConnection",
			func(o map[string]any) { spec(o)["access"].(map[string]any)["kinds"] = []any{"GraphConnection"} },
			`spec.access.kinds[0]: Unsupported value: "GraphConnection"`},
		{"bad adoption policy", "ClusterGraphConnection",
			func(o map[string]any) { spec(o)["access"].(map[string]any)["adoption"] = "Maybe" },
			`spec.access.adoption: Unsupported value: "Maybe"`},
		{"plain http graph endpoint", "GraphConnection",
			func(o map[string]any) { spec(o)["graphEndpoint"] = "http://graph.example" }, "spec.graphEndpoint in body should match"},
		{"bad cloud", "ClusterGraphConnection",
			func(o map[string]any) { spec(o)["cloud"] = "Germany" }, `spec.cloud: Unsupported value: "Germany"`},
		{"malformed device GUID", "PfxRecryptionRequest",
			func(o map[string]any) { spec(o)["deviceId"] = "not-a-guid" }, "spec.deviceId in body should match"},
		{"bad profile type", "ManagedDeviceCertificateState",
			func(o map[string]any) { spec(o)["profileType"] = "linuxScep" }, `spec.profileType: Unsupported value: "linuxScep"`},
		{"bad device platform", "ManagedDeviceCertificateState",
			func(o map[string]any) { spec(o)["devicePlatform"] = "tizen" }, `spec.devicePlatform: Unsupported value: "tizen"`},
		{"no certificate at all", "ManagedDeviceCertificateState",
			func(o map[string]any) { delete(spec(o), "certificateSecretRef") }, "set certificateSecretRef, certificate, or both"},
		{"malformed user GUID", "PfxUserCertificate",
			func(o map[string]any) { spec(o)["userId"] = "alice" }, "spec.userId in body should match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := sampleOf(t, tc.kind)
			tc.mutate(obj.Object)
			err := create(context.Background(), ns, obj)
			if err == nil {
				t.Fatalf("accepted; want refusal with %q", tc.message)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("refused with %q; want the message to contain %q", err, tc.message)
			}
		})
	}
}

func TestAdmissionRefusesChangesToImmutableFields(t *testing.T) {
	ns := newNamespace(t)
	cases := []struct {
		name    string
		kind    string
		mutate  func(o map[string]any)
		message string
	}{
		{"recryption request spec", "PfxRecryptionRequest",
			func(o map[string]any) { spec(o)["status"] = int64(3) }, "spec is immutable"},
		{"pfx user certificate id", "PfxUserCertificate",
			func(o map[string]any) { spec(o)["id"] = "another-record" }, "id is immutable"},
		{"user principal name", "UserPfxCertificate",
			func(o map[string]any) { spec(o)["userPrincipalName"] = "mallory@contoso.com" }, "userPrincipalName is immutable"},
		{"user principal name removed", "UserPfxCertificate",
			func(o map[string]any) { delete(spec(o), "userPrincipalName") }, "userPrincipalName is immutable"},
		{"connection of a certificate", "UserPfxCertificate",
			func(o map[string]any) {
				spec(o)["connectionRef"] = map[string]any{"kind": "GraphConnection", "name": "other"}
			}, "connectionRef is immutable"},
		{"device configuration", "ManagedDeviceCertificateState",
			func(o map[string]any) { spec(o)["deviceConfigurationId"] = "11111111-2222-4333-8444-555555555555" }, "deviceConfigurationId, profileType and reachedThrough are immutable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			obj := sampleOf(t, tc.kind)
			if err := create(ctx, ns, obj); err != nil {
				t.Fatalf("creating the sample: %v", err)
			}
			tc.mutate(obj.Object)
			err := k8sClient.Update(ctx, obj)
			if err == nil {
				t.Fatalf("update accepted; want refusal with %q", tc.message)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("refused with %q; want the message to contain %q", err, tc.message)
			}
		})
	}
	// A mutable field still changes.
	obj := sampleOf(t, "UserPfxCertificate")
	if err := create(context.Background(), ns, obj); err != nil {
		t.Fatal(err)
	}
	spec(obj.Object)["intendedPurpose"] = "smimeSigning"
	if err := k8sClient.Update(context.Background(), obj, &client.UpdateOptions{}); err != nil {
		t.Fatalf("changing intendedPurpose was refused: %v", err)
	}
}

func spec(o map[string]any) map[string]any { return o["spec"].(map[string]any) }
