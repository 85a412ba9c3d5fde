//go:build e2e

// Package e2e drives the real binaries: the operator as its own process under an identity bound only to
// the generated RBAC, graphsim as its own process, kubectl as a user types it.
package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/graphsim"
	"github.com/certops/intune-cert-operator/test/stack"
)

const ns = "e2e"

func TestOperatorEndToEnd(t *testing.T) {
	ctx := context.Background()
	s := startStack(t, stack.Options{NoDefaultConnection: true})
	kubectl := func(args ...string) string {
		t.Helper()
		return kubectlOK(t, s, args...)
	}
	kubectl("create", "namespace", ns)
	material, err := s.ApplySamples(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	// Everything the leak check looks for.
	alicePFX, _ := material.Alice.PFX(stack.SamplePassword)
	secrets := map[string]string{
		"the sample PFX password": stack.SamplePassword,
		"the client secret":       s.ClientSecret,
		"the PFX (base64)":        base64.StdEncoding.EncodeToString(alicePFX)[100:160],
	}

	t.Run("every sample becomes Ready under the generated RBAC", func(t *testing.T) {
		if err := s.WaitAllReady(ctx, 3*time.Minute); err != nil {
			t.Fatal(err)
		}
		out := kubectl("get", "certops", "-A")
		for _, kind := range []string{"userpfxcertificate.intune.certops.dev/alice-smime", "clustergraphconnection.intune.certops.dev/default"} {
			if !strings.Contains(out, kind) {
				t.Errorf("kubectl get certops -A does not list %s:\n%s", kind, out)
			}
		}
	})

	t.Run("the operator's identity cannot write Secrets", func(t *testing.T) {
		for _, verb := range []string{"create", "update", "delete", "patch"} {
			out, _ := s.KubectlRun(ctx, "auth", "can-i", verb, "secrets", "-n", ns, "--as", stack.OperatorUser)
			if strings.TrimSpace(out) != "no" {
				t.Errorf("operator can %s secrets: %q", verb, out)
			}
		}
		if out, _ := s.KubectlRun(ctx, "auth", "can-i", "get", "secrets", "-n", ns, "--as", stack.OperatorUser); strings.TrimSpace(out) != "yes" {
			t.Errorf("operator cannot read secrets: %q", out)
		}
	})

	// alice-smime is an S/MIME encryption certificate: its rotation keeps the earlier record (the default
	// spec.retention.superseded for that purpose), which alice's devices need to read older mail.
	var aliceOldThumbprint string
	t.Run("rotation of an S/MIME certificate keeps the old record", func(t *testing.T) {
		oldThumbprint := kubectl("get", "userpfxcertificate", "alice-smime", "-n", ns, "-o", "jsonpath={.status.thumbprint}")
		next, err := testutil.NewUserCertificate("alice@contoso.com", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		data, _ := next.PFX("Rotated-Pa55")
		secrets["the rotated PFX password"] = "Rotated-Pa55"
		manifest := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: alice-pfx, namespace: %s}\ndata: {pfx: %s, password: %s}\n",
			ns, base64.StdEncoding.EncodeToString(data), base64.StdEncoding.EncodeToString([]byte("Rotated-Pa55")))
		kubectl("apply", "-f", writeFile(t, "secret.yaml", manifest))
		want := next.Thumbprint()
		waitFor(t, "the new thumbprint in status", func() error {
			got := kubectl("get", "userpfxcertificate", "alice-smime", "-n", ns, "-o", "jsonpath={.status.thumbprint}")
			if got != want {
				return fmt.Errorf("status thumbprint %s", got)
			}
			return nil
		})
		kubectl("wait", "--for=condition=Ready", "userpfxcertificate/alice-smime", "-n", ns, "--timeout=60s")
		records := userPfxThumbprints(t, s)
		if !records[want] || !records[oldThumbprint] {
			t.Fatalf("graphsim thumbprints after rotation: %v (want %s and the kept %s)", records, want, oldThumbprint)
		}
		history := kubectl("get", "userpfxcertificate", "alice-smime", "-n", ns, "-o", "jsonpath={.status.history[*].thumbprint}")
		if history != oldThumbprint {
			t.Fatalf("status.history thumbprints %q, want %q", history, oldThumbprint)
		}
		aliceOldThumbprint = oldThumbprint
	})

	t.Run("kubectl delete removes the record, or keeps it with Orphan", func(t *testing.T) {
		bobThumbprint := kubectl("get", "userpfxcertificate", "bob-wifi", "-n", ns, "-o", "jsonpath={.status.thumbprint}")
		aliceThumbprint := kubectl("get", "userpfxcertificate", "alice-smime", "-n", ns, "-o", "jsonpath={.status.thumbprint}")
		kubectl("patch", "userpfxcertificate", "bob-wifi", "-n", ns, "--type=merge", "-p", `{"spec":{"deletionPolicy":"Orphan"}}`)
		kubectl("delete", "userpfxcertificate", "alice-smime", "bob-wifi", "-n", ns, "--timeout=60s")
		records := userPfxThumbprints(t, s)
		if records[aliceThumbprint] || (aliceOldThumbprint != "" && records[aliceOldThumbprint]) {
			t.Error("the Delete policy left one of alice's records (current or kept) in Intune")
		}
		if !records[bobThumbprint] {
			t.Error("the Orphan policy removed bob's record from Intune")
		}
	})

	t.Run("bad input and throttling leak no secret", func(t *testing.T) {
		bad := fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: wrong-password, namespace: %[1]s}
stringData: {password: Not-The-Pa55word}
data: {pfx: %[2]s}
---
apiVersion: v1
kind: Secret
metadata: {name: garbage, namespace: %[1]s}
stringData: {pfx: "this is not a PFX", password: Garbage-Pa55}
`, ns, base64.StdEncoding.EncodeToString(alicePFX))
		secrets["a wrong password"] = "Not-The-Pa55word"
		secrets["the garbage PFX password"] = "Garbage-Pa55"
		kubectl("apply", "-f", writeFile(t, "bad.yaml", bad))
		// The next Graph requests are throttled, whichever they are: bob-vpn's import has to wait them out.
		if err := s.Sim(http.MethodPost, "faults", graphsim.Faults{Script: []int{429, 429, 429}, RetryAfter: time.Second}, nil); err != nil {
			t.Fatal(err)
		}
		var resources strings.Builder
		for _, name := range []string{"wrong-password", "garbage"} {
			fmt.Fprintf(&resources, "apiVersion: intune.certops.dev/v1alpha1\nkind: UserPfxCertificate\nmetadata: {name: %s, namespace: %s}\nspec: {userPrincipalName: alice@contoso.com, source: {pfx: {secretRef: {name: %s}}}}\n---\n", name, ns, name)
		}
		kubectl("apply", "-f", writeFile(t, "bad-resources.yaml", resources.String()))
		for name, reason := range map[string]string{"wrong-password": "WrongPassword", "garbage": "InvalidPfx"} {
			waitFor(t, name+" reports "+reason, func() error {
				got := kubectl("get", "userpfxcertificate", name, "-n", ns, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].reason}`)
				if got != reason {
					return fmt.Errorf("reason %q", got)
				}
				return nil
			})
		}
		// Under throttling, a fresh certificate still converges, with exactly one record.
		carol, err := testutil.NewUserCertificate("bob@contoso.com", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		kubectl("create", "secret", "tls", "bob-vpn-tls", "-n", ns, "--cert", writeFile(t, "tls.crt", string(carol.CertPEM())),
			"--key", writeFile(t, "tls.key", string(carol.KeyPEM())))
		kubectl("apply", "-f", writeFile(t, "vpn.yaml", fmt.Sprintf("apiVersion: intune.certops.dev/v1alpha1\nkind: UserPfxCertificate\nmetadata: {name: bob-vpn, namespace: %s}\nspec: {intendedPurpose: vpn, source: {tls: {secretRef: {name: bob-vpn-tls}}}}\n", ns)))
		kubectl("wait", "--for=condition=Ready", "userpfxcertificate/bob-vpn", "-n", ns, "--timeout=120s")
		if err := s.Sim(http.MethodPost, "faults", graphsim.Faults{}, nil); err != nil {
			t.Fatal(err)
		}
		journal, err := s.Journal()
		if err != nil {
			t.Fatal(err)
		}
		throttled := 0
		for _, e := range journal {
			if e.Status == http.StatusTooManyRequests {
				throttled++
			}
		}
		if throttled == 0 {
			t.Error("graphsim throttled nothing: the throttling part proved nothing")
		}
		if n := userPfxThumbprints(t, s)[carol.Thumbprint()]; !n {
			t.Error("bob-vpn's record is not in Intune")
		}

		findings, err := s.LeakScan(ctx, secrets)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range findings {
			t.Error(f)
		}
		if !s.Operator.Running() {
			t.Error("the operator process exited")
		}
	})
}

func userPfxThumbprints(t *testing.T, s *stack.Stack) map[string]bool {
	t.Helper()
	records, err := s.Records()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, r := range records.UserPfxCertificates {
		out[strings.ToLower(r.Thumbprint)] = true
	}
	return out
}

// startStack starts the real binaries for one test in a directory of its own, stops them when the test
// ends, and shows the operator's last log lines if it failed.
func startStack(t *testing.T, opts stack.Options) *stack.Stack {
	t.Helper()
	opts.Dir = t.TempDir()
	s, err := stack.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("operator log:\n%s", tail(s.Operator.Log(), 60))
		}
	})
	return s
}

// kubectlOK runs kubectl as the cluster admin and fails the test if it fails.
func kubectlOK(t *testing.T, s *stack.Stack, args ...string) string {
	t.Helper()
	out, err := s.KubectlRun(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitFor polls until check passes; the bound only ends a hung test, nothing asserts speed.
func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	testutil.Eventually(t, what, 2*time.Minute, check)
}

func tail(s string, lines int) string {
	all := strings.Split(s, "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
