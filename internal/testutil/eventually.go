package testutil

import (
	"testing"
	"time"
)

// pollInterval is how often Eventually looks again.
const pollInterval = 100 * time.Millisecond

// Eventually polls check until it returns nil, and fails t with what and check's last error once limit has
// passed. It is the one polling helper of the tests (envtest, e2e, the plugin): the limit only ends a hung
// test, nothing asserts how fast anything happens.
func Eventually(t testing.TB, what string, limit time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(pollInterval)
	}
}
