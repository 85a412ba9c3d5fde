package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
	"github.com/certops/intune-cert-operator/internal/graph"
)

// failure is what an error means for the resource: the Ready reason and message, and when to try again.
// Terminal failures (bad input) wait for a change of the spec or a Secret, which the watches deliver;
// they are still retried after retryTerminal in case a change was missed.
type failure struct {
	reason   string
	message  string
	terminal bool
	// retryAfter is when to try again; 0 = the controller's exponential backoff.
	retryAfter time.Duration
}

const (
	retryTerminal        = 30 * time.Minute
	retryConnection      = 30 * time.Second
	retryClaimed         = 2 * time.Minute
	defaultThrottleRetry = 60 * time.Second
)

// reasoned is a failure that knows what it means for the resource: its Ready reason, a message free of
// secret material, and whether it waits for a change (terminal). The connection and pfx packages' errors
// and the reconcilers' own conditionError are reasoned.
type reasoned interface {
	error
	ConditionReason() string
	ConditionMessage() string
	Terminal() bool
}

// classify turns any error of a reconcile into a failure. Every message it builds comes from typed errors
// whose text is known to be free of secret material.
func classify(err error) failure {
	var graphErr *graph.Error
	var known reasoned
	var authErr *azidentity.AuthenticationFailedError
	switch {
	case errors.As(err, &authErr):
		return failure{reason: intunev1alpha1.ReasonCredentialInvalid, message: signInMessage(err), retryAfter: retryConnection}
	case errors.As(err, &known):
		return classifyReasoned(known)
	case errors.As(err, &graphErr):
		return classifyGraph(graphErr)
	case errors.Is(err, context.DeadlineExceeded):
		return failure{reason: intunev1alpha1.ReasonGraphError,
			message: "the pass took longer than --reconcile-timeout allows and was stopped; it starts over"}
	default:
		return failure{reason: intunev1alpha1.ReasonGraphError, message: err.Error()}
	}
}

// classifyReasoned decides when a reasoned failure is looked at again: a terminal one after retryTerminal
// (in case a watched change was missed), a claimed record sooner (claims are not watched), a connection
// problem after retryConnection, and a reconciler's own wait when it names one.
func classifyReasoned(e reasoned) failure {
	f := failure{reason: e.ConditionReason(), message: e.ConditionMessage(), terminal: e.Terminal()}
	var cond *conditionError
	var connErr *connection.Error
	switch {
	case f.reason == intunev1alpha1.ReasonRecordClaimed:
		f.retryAfter = retryClaimed
	case f.terminal:
		f.retryAfter = retryTerminal
	case errors.As(e, &cond):
		f.retryAfter = cond.retryAfter
	case errors.As(e, &connErr):
		f.retryAfter = retryConnection
	}
	return f
}

func classifyGraph(e *graph.Error) failure {
	switch {
	case e.StatusCode == http.StatusTooManyRequests:
		wait := e.RetryAfter
		if wait <= 0 {
			wait = defaultThrottleRetry
		}
		return failure{reason: intunev1alpha1.ReasonThrottled,
			message: fmt.Sprintf("Graph is throttling this tenant; retrying in %s", wait.Round(time.Second)), retryAfter: wait}
	case e.StatusCode == http.StatusUnauthorized:
		return failure{reason: intunev1alpha1.ReasonConnectionNotReady,
			message: "Graph refused the access token: check the connection's credential (" + e.Error() + ")", retryAfter: retryConnection}
	case e.StatusCode == http.StatusForbidden:
		return failure{reason: intunev1alpha1.ReasonGraphRejected,
			message:  "Graph denied access: grant the application DeviceManagementConfiguration.ReadWrite.All and User.Read.All (" + e.Error() + ")",
			terminal: true, retryAfter: retryTerminal}
	case graph.IsRetryable(e):
		return failure{reason: intunev1alpha1.ReasonGraphError, message: e.Error(), retryAfter: e.RetryAfter}
	default:
		// 400 and friends: Graph refused what was sent; sending it again will not help.
		return failure{reason: intunev1alpha1.ReasonGraphRejected, message: e.Error(), terminal: true, retryAfter: retryTerminal}
	}
}

// conditionError is a failure found by a reconciler itself, with the Ready reason it means.
type conditionError struct {
	reason   string
	message  string
	terminal bool
	// retryAfter is when to look again; 0 = the default for the failure.
	retryAfter time.Duration
}

func (e *conditionError) Error() string            { return e.message }
func (e *conditionError) ConditionReason() string  { return e.reason }
func (e *conditionError) ConditionMessage() string { return e.message }
func (e *conditionError) Terminal() bool           { return e.terminal }

// signInMessage condenses an azidentity failure, which appends the whole HTTP exchange, to its first line
// and Entra ID's own explanation (e.g. "AADSTS7000215: Invalid client secret provided"), which names the
// problem and never the secret.
func signInMessage(err error) string {
	lines := strings.Split(err.Error(), "\n")
	msg := "sign-in failed: " + strings.TrimSpace(lines[0])
	for _, line := range lines[1:] {
		if i := strings.Index(line, "AADSTS"); i >= 0 {
			// Entra ID appends trace and correlation ids after an escaped line break: they help no one here.
			explanation, _, _ := strings.Cut(line[i:], `\r\n`)
			msg += " " + strings.Trim(explanation, `", `)
			break
		}
	}
	if len(msg) > 1024 {
		msg = msg[:1024] + "..."
	}
	return msg
}
