// Command demo runs the operator's main job on its embedded default: a local control plane, graphsim (the
// Graph emulator) as its own process, and the operator binary signing in to graphsim with the real
// azidentity client-secret flow (and the namespaced GraphConnection sample as its own ServiceAccount). It
// applies config/samples, waits until every sample is Ready (a UserPfxCertificateSet imports three users'
// certificates), renews alice's S/MIME certificate (Intune keeps
// the previous record) and has the API refuse a padding Intune no longer accepts, shows a namespace owner's
// attempt to borrow the operator's identity refused, prints what Kubernetes and "Intune" now hold, and runs
// until Ctrl-C (or exits at once with --once / DEMO_ONCE=1).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/stack"
)

func main() {
	once := flag.Bool("once", os.Getenv("DEMO_ONCE") == "1", "print the result and exit (for CI)")
	dir := flag.String("dir", filepath.Join(testutil.RepoRoot(), ".demo"), "working directory (kubeconfigs, logs, graphsim state)")
	flag.Parse()
	if err := run(*dir, *once); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(dir string, once bool) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	_ = os.RemoveAll(dir)
	step("Building the operator and graphsim, starting the local control plane, graphsim and the operator")
	s, err := stack.Start(ctx, stack.Options{Dir: dir, NoDefaultConnection: true})
	if err != nil {
		return err
	}
	defer func() {
		step("Stopping every process the demo started")
		s.Stop()
	}()
	fmt.Printf("  graphsim:  %s (CA %s)\n  operator:  log %s\n  kubectl:   %s --kubeconfig %s\n",
		s.GraphsimURL, s.CAFile, s.Operator.LogPath, s.Kubectl, s.AdminKubeconfig)

	step("Creating the samples' Secrets (freshly issued certificates) and applying config/samples")
	if _, err := s.ApplySamples(ctx, "default"); err != nil {
		return err
	}
	step("Waiting until every sample is Ready")
	if err := s.WaitAllReady(ctx, 3*time.Minute); err != nil {
		return err
	}
	out, err := s.KubectlRun(ctx, "get", "certops", "-A")
	if err != nil {
		return err
	}
	step("kubectl get certops -A")
	fmt.Print(out)

	step("A UserPfxCertificateSet imported three users' S/MIME certificates: one UserPfxCertificate per labelled Secret, owned by the set")
	for _, args := range [][]string{{"get", "upfxset", "-n", "default"}, {"get", "upfx", "-n", "default", "-l", "intune.certops.dev/set=staff-smime"}} {
		if out, err = s.KubectlRun(ctx, args...); err != nil {
			return err
		}
		fmt.Print(out)
	}

	step("Alice's S/MIME certificate is renewed: Intune keeps the previous record, which her devices need to read older mail")
	if err := renewAlice(ctx, s); err != nil {
		return err
	}

	step("A namespace owner tries to make the operator sign in as itself, to send a token to a host of theirs, and to import their certificate for alice")
	if err := refuseBorrowedIdentity(ctx, s); err != nil {
		return err
	}

	step("What graphsim (Intune) now holds (secrets shown as their lengths)")
	records, err := s.Records()
	if err != nil {
		return err
	}
	pretty, _ := json.MarshalIndent(records, "  ", "  ")
	fmt.Println("  " + string(pretty))

	if once {
		return nil
	}
	step("Running; try: " + s.Kubectl + " --kubeconfig " + s.AdminKubeconfig + " get certops -A   (Ctrl-C to stop)")
	<-ctx.Done()
	return nil
}

func step(msg string) { fmt.Printf("\n==> %s\n", msg) }

// renewAlice puts a new certificate into alice-pfx and shows the previous record kept in status.history
// (spec.retention.superseded: Keep, the default for smimeEncryption), then a padding Intune no longer
// accepts refused by the API.
func renewAlice(ctx context.Context, s *stack.Stack) error {
	renewed, err := testutil.NewUserCertificate("alice@contoso.com", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	if err != nil {
		return err
	}
	pfxData, err := renewed.PFX(stack.SamplePassword)
	if err != nil {
		return err
	}
	secret := &corev1.Secret{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "alice-pfx"}, secret); err != nil {
		return err
	}
	secret.Data["pfx"] = pfxData
	if err := s.Client.Update(ctx, secret); err != nil {
		return err
	}
	if _, err := s.KubectlRun(ctx, "wait", "userpfxcertificate/alice-smime", "--timeout=2m",
		"--for=jsonpath={.status.thumbprint}="+renewed.Thumbprint()); err != nil {
		return err
	}
	out, err := s.KubectlRun(ctx, "get", "userpfxcertificate", "alice-smime",
		"-o", `custom-columns=CURRENT:.status.thumbprint,KEPT:.status.history[*].thumbprint,EXPIRING:.status.conditions[?(@.type=="Expiring")].reason`)
	if err != nil {
		return err
	}
	fmt.Print(out)
	out, err = s.KubectlRun(ctx, "patch", "userpfxcertificate", "alice-smime", "--type=merge", "-p", `{"spec":{"encryption":{"paddingScheme":"pkcs1"}}}`)
	if err == nil {
		return fmt.Errorf("the API accepted paddingScheme pkcs1: %s", out)
	}
	fmt.Printf("  kubectl patch ... paddingScheme pkcs1 is refused:\n  %s", out)
	return nil
}

// hostileConnections are what someone who owns only the namespace team-mallory may apply: the operator
// refuses both before any Secret is read or any token requested (docs/security.md).
const hostileConnections = `apiVersion: v1
kind: Namespace
metadata: {name: team-mallory}
---
apiVersion: intune.certops.dev/v1alpha1
kind: GraphConnection
metadata: {name: borrow-operator-identity, namespace: team-mallory}
spec:
  tenantId: ` + stack.TenantID + `
  credential: {type: WorkloadIdentity}      # no serviceAccountName: the operator pod's own token
---
apiVersion: intune.certops.dev/v1alpha1
kind: GraphConnection
metadata: {name: token-to-my-host, namespace: team-mallory}
spec:
  tenantId: ` + stack.TenantID + `
  graphEndpoint: https://graph.mallory.example
  credential: {type: ClientSecret, clientId: ` + stack.ClientID + `, secretRef: {name: mallory-app}}
---
apiVersion: intune.certops.dev/v1alpha1
kind: UserPfxCertificate
metadata: {name: alice-for-mallory, namespace: team-mallory}
spec:                                         # the default ClusterGraphConnection does not select team-mallory
  userPrincipalName: alice@contoso.com
  intendedPurpose: smimeEncryption
  source: {pfx: {secretRef: {name: mallory-pfx}}}
`

func refuseBorrowedIdentity(ctx context.Context, s *stack.Stack) error {
	// A certificate of mallory's own, which mallory would like Intune to deliver to alice's devices.
	mallory, err := testutil.NewUserCertificate("mallory@contoso.com", time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	if err != nil {
		return err
	}
	pfxData, err := mallory.PFX("mallory")
	if err != nil {
		return err
	}
	manifest := filepath.Join(s.Dir, "hostile-connections.yaml")
	if err := os.WriteFile(manifest, []byte(hostileConnections), 0o644); err != nil {
		return err
	}
	if _, err := s.KubectlRun(ctx, "apply", "-f", manifest); err != nil {
		return err
	}
	pfxFile := filepath.Join(s.Dir, "mallory.pfx")
	if err := os.WriteFile(pfxFile, pfxData, 0o600); err != nil {
		return err
	}
	if _, err := s.KubectlRun(ctx, "create", "secret", "generic", "mallory-pfx", "-n", "team-mallory",
		"--from-file=pfx="+pfxFile, "--from-literal=password=mallory"); err != nil {
		return err
	}
	for _, wait := range []struct{ resource, reason string }{
		{"graphconnection/borrow-operator-identity", "AmbientCredentialsNotAllowed"},
		{"graphconnection/token-to-my-host", "EndpointNotAllowed"},
		{"userpfxcertificate/alice-for-mallory", "AccessDenied"},
	} {
		if _, err := s.KubectlRun(ctx, "wait", "-n", "team-mallory", wait.resource, "--timeout=2m",
			`--for=jsonpath={.status.conditions[?(@.type=="Ready")].reason}=`+wait.reason); err != nil {
			return err
		}
	}
	out, err := s.KubectlRun(ctx, "get", "graphconnections,userpfxcertificates", "-n", "team-mallory",
		"-o", "custom-columns=KIND:.kind,NAME:.metadata.name,READY:.status.conditions[0].status,REASON:.status.conditions[0].reason,MESSAGE:.status.conditions[0].message")
	fmt.Print(out)
	return err
}
