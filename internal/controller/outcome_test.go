package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
	"github.com/certops/intune-cert-operator/internal/graph"
	"github.com/certops/intune-cert-operator/internal/pfx"
)

func TestSignInMessageKeepsEntraExplanationOnly(t *testing.T) {
	err := errors.New("ClientSecretCredential authentication failed. \nPOST https://login.example/tenant/oauth2/v2.0/token\n" +
		"--------\nRESPONSE 401: 401 Unauthorized\n--------\n{\n  \"error\": \"invalid_client\",\n" +
		`  "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1234\r\nCorrelation ID: 5678",` + "\n}\n")
	got := signInMessage(err)
	want := "sign-in failed: ClientSecretCredential authentication failed. AADSTS7000215: Invalid client secret provided."
	if got != want {
		t.Fatalf("signInMessage = %q, want %q", got, want)
	}
	if strings.Contains(got, "Trace ID") {
		t.Error("trace id kept")
	}
}

// Every class of Graph status decides the Ready reason, whether the failure waits for a change (terminal)
// and when to look again.
func TestClassifyGraphStatusClasses(t *testing.T) {
	tests := []struct {
		name       string
		err        *graph.Error
		reason     string
		terminal   bool
		retryAfter time.Duration
	}{
		{"400 refused payload", &graph.Error{StatusCode: 400, Code: "BadRequest"}, intunev1alpha1.ReasonGraphRejected, true, retryTerminal},
		{"401 token refused", &graph.Error{StatusCode: 401}, intunev1alpha1.ReasonConnectionNotReady, false, retryConnection},
		{"403 permission missing", &graph.Error{StatusCode: 403, Code: "Forbidden"}, intunev1alpha1.ReasonGraphRejected, true, retryTerminal},
		{"404 (when a caller did not map it)", &graph.Error{StatusCode: 404}, intunev1alpha1.ReasonGraphRejected, true, retryTerminal},
		{"409", &graph.Error{StatusCode: 409}, intunev1alpha1.ReasonGraphRejected, true, retryTerminal},
		{"429 with its wait", &graph.Error{StatusCode: 429, RetryAfter: 7 * time.Second}, intunev1alpha1.ReasonThrottled, false, 7 * time.Second},
		{"429 naming no wait", &graph.Error{StatusCode: 429}, intunev1alpha1.ReasonThrottled, false, defaultThrottleRetry},
		{"500", &graph.Error{StatusCode: 500}, intunev1alpha1.ReasonGraphError, false, 0},
		{"503 with its wait", &graph.Error{StatusCode: 503, RetryAfter: 3 * time.Second}, intunev1alpha1.ReasonGraphError, false, 3 * time.Second},
		{"504", &graph.Error{StatusCode: 504}, intunev1alpha1.ReasonGraphError, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := classify(fmt.Errorf("wrapped: %w", tt.err))
			if f.reason != tt.reason || f.terminal != tt.terminal || f.retryAfter != tt.retryAfter {
				t.Errorf("classify = %+v, want reason %s terminal %v retryAfter %s", f, tt.reason, tt.terminal, tt.retryAfter)
			}
			if f.message == "" {
				t.Error("empty message")
			}
		})
	}
}

// A failure a reconciler found itself keeps its reason, and says when to look again.
func TestClassifyConditionErrors(t *testing.T) {
	settling := classify(&conditionError{reason: intunev1alpha1.ReasonProgressing, message: "looking", retryAfter: 5 * time.Second})
	if settling.reason != intunev1alpha1.ReasonProgressing || settling.terminal || settling.retryAfter != 5*time.Second {
		t.Errorf("settling create: %+v", settling)
	}
	bad := classify(&conditionError{reason: intunev1alpha1.ReasonInvalidSpec, message: "bad", terminal: true})
	if !bad.terminal || bad.retryAfter != retryTerminal {
		t.Errorf("terminal: %+v", bad)
	}
	claimed := classify(&conditionError{reason: intunev1alpha1.ReasonRecordClaimed, message: "x", terminal: true})
	if claimed.retryAfter != retryClaimed {
		t.Errorf("claimed: %+v", claimed)
	}
}

// A pass that ran out of --reconcile-timeout is a transient failure: it starts over with backoff.
func TestClassifyPassDeadline(t *testing.T) {
	f := classify(fmt.Errorf("graph: userPfxCertificates.list: %w", context.DeadlineExceeded))
	if f.reason != intunev1alpha1.ReasonGraphError || f.terminal || !strings.Contains(f.message, "--reconcile-timeout") {
		t.Errorf("classify = %+v", f)
	}
}

// The reasoned errors of every package land with their reason, terminal or not as they say.
func TestClassifyReasonedErrorsOfEveryPackage(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		reason     string
		terminal   bool
		retryAfter time.Duration
	}{
		{"bad PFX", &pfx.Error{Reason: pfx.ReasonWrongPassword, Message: "m"}, string(pfx.ReasonWrongPassword), true, retryTerminal},
		{"missing Secret", &connection.Error{Reason: intunev1alpha1.ReasonSecretNotFound, Message: "m"}, intunev1alpha1.ReasonSecretNotFound, true, retryTerminal},
		{"policy refusal", &connection.Error{Reason: intunev1alpha1.ReasonEndpointNotAllowed, Message: "m"}, intunev1alpha1.ReasonEndpointNotAllowed, true, retryTerminal},
		{"connection not ready yet", &connection.Error{Reason: intunev1alpha1.ReasonConnectionNotReady, Message: "m"}, intunev1alpha1.ReasonConnectionNotReady, false, retryConnection},
		{"record claimed elsewhere", &connection.Error{Reason: intunev1alpha1.ReasonRecordClaimed, Message: "m"}, intunev1alpha1.ReasonRecordClaimed, true, retryClaimed},
		{"wrapped", fmt.Errorf("reading: %w", &pfx.Error{Reason: pfx.ReasonInvalidPfx, Message: "m"}), string(pfx.ReasonInvalidPfx), true, retryTerminal},
	}
	for _, tt := range tests {
		f := classify(tt.err)
		if f.reason != tt.reason || f.terminal != tt.terminal || f.retryAfter != tt.retryAfter || f.message != "m" {
			t.Errorf("%s: %+v", tt.name, f)
		}
	}
}
