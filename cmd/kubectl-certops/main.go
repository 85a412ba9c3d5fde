// Command kubectl-certops is the kubectl plugin of intune-cert-operator (kubectl certops ...): the state of the
// operator's resources, the userPfxCertificates records a tenant holds (managed or not, expired or not), a
// forced re-import of one resource, and a check of a Graph connection's sign-in. Install it by putting the
// binary on PATH (make build writes bin/kubectl-certops).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	_ "k8s.io/client-go/plugin/pkg/client/auth"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &environment{stdout: os.Stdout, stderr: os.Stderr})
	stop()
	os.Exit(code)
}
