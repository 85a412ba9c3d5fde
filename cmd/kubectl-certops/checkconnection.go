package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
	"github.com/certops/intune-cert-operator/internal/controller"
	"github.com/certops/intune-cert-operator/internal/graph"
)

// connectionCheck is check-connection's verdict.
type connectionCheck struct {
	Connection string `json:"connection"` // Kind/name or Kind/namespace/name
	TenantID   string `json:"tenantId,omitempty"`
	GraphRoot  string `json:"graphRoot,omitempty"`
	// OperatorReady is the connection's Ready condition as the operator last set it.
	OperatorReady string `json:"operatorReady,omitempty"`
	OK            bool   `json:"ok"`
	// Reason is the Ready reason the operator would set (Connected when OK).
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

func runCheckConnection(ctx context.Context, env *environment, args []string) error {
	var flags commonFlags
	var conns connectionFlags
	var cluster bool
	var timeout time.Duration
	fs := newFlagSet("check-connection")
	fs.BoolVar(&cluster, "cluster", false, "NAME is a ClusterGraphConnection (default: a GraphConnection in -n's namespace).")
	fs.DurationVar(&timeout, "timeout", time.Minute, "How long the sign-in and the read may take.")
	flags.bind(fs, true)
	conns.bind(fs)
	if err := parse(env, "check-connection", usageCheckConnection, fs, args); err != nil {
		return err
	}
	if err := flags.checkOutput(); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("check-connection takes the name of one GraphConnection (or, with --cluster, ClusterGraphConnection)")
	}
	if cluster && fs.Changed("namespace") {
		return usagef("--cluster and -n exclude each other: a ClusterGraphConnection has no namespace")
	}
	k, err := flags.connect()
	if err != nil {
		return err
	}
	provider, err := conns.provider(k, env)
	if err != nil {
		return err
	}
	ref := &intunev1alpha1.ConnectionReference{Kind: "GraphConnection", Name: fs.Arg(0)}
	check := connectionCheck{Connection: "GraphConnection/" + k.namespace + "/" + ref.Name}
	if cluster {
		ref.Kind = "ClusterGraphConnection"
		check.Connection = "ClusterGraphConnection/" + ref.Name
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	checkConnection(ctx, provider, k.namespace, ref, &check)
	if flags.output == outputJSON {
		if err := writeJSON(env, check); err != nil {
			return err
		}
	} else {
		w := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintf(w, "CONNECTION\t%s\n", check.Connection)
		fmt.Fprintf(w, "TENANT\t%s\n", orDash(check.TenantID))
		fmt.Fprintf(w, "GRAPH\t%s\n", orDash(check.GraphRoot))
		fmt.Fprintf(w, "OPERATOR SAYS\t%s\n", orDash(check.OperatorReady))
		verdict := "OK"
		if !check.OK {
			verdict = "FAILED"
		}
		fmt.Fprintf(w, "VERDICT\t%s %s: %s\n", verdict, check.Reason, check.Message)
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if !check.OK {
		return errReported
	}
	return nil
}

// checkConnection resolves the connection as the operator does (its Secrets, its policy) and signs in and
// reads once; unlike a resource's pass it goes ahead when the operator reports the connection not ready.
func checkConnection(ctx context.Context, p *connection.Provider, namespace string, ref *intunev1alpha1.ConnectionReference, check *connectionCheck) {
	obj, spec, status, err := p.Object(ctx, namespace, ref)
	if err != nil {
		check.Reason, check.Message = explain(err)
		return
	}
	check.TenantID = spec.TenantID
	check.GraphRoot = spec.GraphEndpoint
	if check.GraphRoot == "" {
		if e, err := graph.EndpointsFor(graph.Cloud(spec.Cloud)); err == nil {
			check.GraphRoot = e.GraphRoot
		}
	}
	if ready := meta.FindStatusCondition(status.Conditions, intunev1alpha1.ConditionReady); ready != nil {
		check.OperatorReady = fmt.Sprintf("Ready=%s %s: %s", ready.Status, ready.Reason, ready.Message)
	}
	conn, err := p.Build(ctx, obj, spec)
	if err != nil {
		check.Reason, check.Message = explain(err)
		return
	}
	if err := conn.Graph.Ping(ctx); err != nil {
		check.Reason, check.Message = explain(err)
		return
	}
	check.OK, check.Reason = true, intunev1alpha1.ReasonConnected
	check.Message = fmt.Sprintf("signed in to tenant %s and read userPfxCertificates", spec.TenantID)
}

// explain says a failure in the operator's words, with the reason it would put on the Ready condition.
func explain(err error) (string, string) {
	if errors.Is(err, context.DeadlineExceeded) {
		return intunev1alpha1.ReasonGraphError, "no answer in time: " + err.Error()
	}
	return controller.Explain(err)
}
