package argocd

import (
	"testing"

	"github.com/certops/intune-cert-operator/internal/testutil"
)

// How Argo CD must show each Ready reason. This is the specification the script is checked against, written
// independently of it.
var (
	// Ready=False for these needs a change of the spec, a Secret, the certificate or the tenant: Degraded.
	terminalReasons = []string{
		"InvalidPfx", "WrongPassword", "NoPrivateKey", "KeyMismatch", "CertificateExpired", "CertificateNotYetValid",
		"WeakKey", "PublicKeyInvalid", "InvalidPassword", "UnsupportedPadding", "InvalidCertificate", "SecretNotFound",
		"SecretKeyMissing", "InvalidSpec", "UserNotFound", "RecordNotFound", "ProfileNotFound", "CreateOutcomeUnknown",
		"CredentialInvalid", "ConnectionNotFound", "GraphRejected", "AmbientCredentialsNotAllowed", "EndpointNotAllowed",
		"AccessDenied", "RecordClaimed", "ChildrenFailed",
	}
	// Ready=False for these clears by itself (retries, throttling, a connection becoming ready, a finalizer
	// finishing): Progressing. GraphError is a retryable Graph failure; Graph's refusals (400, 403) are
	// GraphRejected.
	transientReasons = []string{"GraphError", "Throttled", "ConnectionNotReady", "Deleting", "Progressing", "CertificateNotIssued",
		"ChildrenNotReady"}
	// Ready=True reasons: Healthy.
	successReasons = []string{"Imported", "Adopted", "Updated", "InSync", "Created", "Connected", "Suspended", "ChildrenReady"}
	// Reasons that never reach a condition of the operator: only the Graph emulator's connector decrypts.
	notConditionReasons = []string{"DecryptionFailed"}
	// Reasons of UserPfxCertificate's Expiring condition, never of Ready (its third, CertificateExpired, is
	// also a Ready reason, above). Argo CD's verdict follows Ready; a True Expiring only lends its message
	// to a Healthy resource.
	expiringReasons = []string{"RenewalDue", "RenewalNotDue"}
)

// A reason added to the code must be placed in one of the lists above, deciding how Argo CD shows it.
func TestEveryReasonInTheCodeHasAnArgoCDVerdict(t *testing.T) {
	classified := map[string]int{}
	for _, list := range [][]string{terminalReasons, transientReasons, successReasons, notConditionReasons, expiringReasons} {
		for _, reason := range list {
			classified[reason]++
		}
	}
	for reason, count := range classified {
		if count > 1 {
			t.Errorf("reason %s is in %d lists", reason, count)
		}
	}
	for reason, where := range testutil.ReasonConstants(t) {
		if classified[reason] == 0 {
			t.Errorf("reason %s (%s) has no Argo CD verdict: add it to a list in this file, and to health.lua's "+
				"terminal table if it is terminal", reason, where)
		}
	}
}

// readyObject is a UserPfxCertificate whose status describes its current generation, with a Ready condition.
func readyObject(status, reason string) map[string]any {
	return map[string]any{
		"apiVersion": "intune.certops.dev/v1alpha1",
		"kind":       "UserPfxCertificate",
		"metadata":   map[string]any{"name": "alice", "namespace": "pki", "generation": int64(4)},
		"spec":       map[string]any{"intendedPurpose": "smimeEncryption"},
		"status": map[string]any{
			"observedGeneration": int64(4),
			"conditions": []any{
				map[string]any{"type": "Synced", "status": "False", "reason": "Other", "message": "not the Ready condition"},
				map[string]any{"type": "Ready", "status": status, "reason": reason, "message": "message of " + reason},
			},
		},
	}
}

func TestReadyReasonsMapToArgoCDStatuses(t *testing.T) {
	script := readScript(t)
	type testCase struct{ ready, reason, want string }
	var cases []testCase
	for _, reason := range terminalReasons {
		cases = append(cases, testCase{"False", reason, "Degraded"},
			// Unknown is not a verdict yet, whatever the reason.
			testCase{"Unknown", reason, "Progressing"})
	}
	for _, reason := range transientReasons {
		cases = append(cases, testCase{"False", reason, "Progressing"})
	}
	for _, reason := range successReasons {
		cases = append(cases, testCase{"True", reason, "Healthy"})
	}
	// A reason a newer operator introduces is not assumed to be final.
	cases = append(cases, testCase{"False", "SomeFutureReason", "Progressing"})

	for _, tc := range cases {
		t.Run(tc.ready+"/"+tc.reason, func(t *testing.T) {
			got, err := runHealthScript(readyObject(tc.ready, tc.reason), script)
			if err != nil {
				t.Fatal(err)
			}
			want := healthStatus{Status: tc.want, Message: "message of " + tc.reason}
			if got != want {
				t.Errorf("health = %+v, want %+v", got, want)
			}
		})
	}
}

// The harness itself: a script returning a status Argo CD does not know is Unknown, and a script that does
// not return a table, or uses the string library argocd-cm scripts do not have, fails.
func TestHarnessBehavesLikeArgoCD(t *testing.T) {
	obj := readyObject("True", "InSync")
	got, err := runHealthScript(obj, `return {status = "Fine"}`)
	if err != nil || got != (healthStatus{Status: "Unknown", Message: "Lua returned an invalid health status"}) {
		t.Errorf("invalid status: got %+v, %v", got, err)
	}
	if _, err := runHealthScript(obj, `return "Healthy"`); err == nil {
		t.Error("a script returning a string was accepted")
	}
	if _, err := runHealthScript(obj, `return {status = string.lower("HEALTHY")}`); err == nil {
		t.Error("the string library is available; Argo CD does not open it for argocd-cm scripts")
	}
	got, err = runHealthScript(obj, `return {status = "Healthy", message = obj.metadata.name .. "/" .. obj.metadata.generation}`)
	if err != nil || got != (healthStatus{Status: "Healthy", Message: "alice/4"}) {
		t.Errorf("obj global: got %+v, %v", got, err)
	}
}

// A certificate due for renewal stays Healthy (Argo CD has no warning status) and says so; Expiring never
// turns a Ready verdict into another one.
func TestExpiringConditionLendsItsMessageToHealthy(t *testing.T) {
	script := readScript(t)
	withExpiring := func(ready, reason, expiring string) map[string]any {
		obj := readyObject(ready, reason)
		status := obj["status"].(map[string]any)
		status["conditions"] = append(status["conditions"].([]any),
			map[string]any{"type": "Expiring", "status": expiring, "reason": "RenewalDue", "message": "renew it"})
		return obj
	}
	for _, tc := range []struct {
		ready, reason, expiring string
		want                    healthStatus
	}{
		{"True", "InSync", "True", healthStatus{Status: "Healthy", Message: "renew it"}},
		{"True", "InSync", "False", healthStatus{Status: "Healthy", Message: "message of InSync"}},
		{"False", "CertificateExpired", "True", healthStatus{Status: "Degraded", Message: "message of CertificateExpired"}},
		{"False", "Throttled", "True", healthStatus{Status: "Progressing", Message: "message of Throttled"}},
	} {
		got, err := runHealthScript(withExpiring(tc.ready, tc.reason, tc.expiring), script)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("Ready=%s/%s, Expiring=%s: health %+v, want %+v", tc.ready, tc.reason, tc.expiring, got, tc.want)
		}
	}
}
