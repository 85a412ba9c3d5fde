package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

// statusKinds are the kinds status lists, in this order. They are read as unstructured objects, so a kind
// whose CRD is not installed (UserPfxCertificateSet on an older operator) is left out instead of failing.
var statusKinds = []string{
	"UserPfxCertificate", "UserPfxCertificateSet", "ManagedDeviceCertificateState", "PfxRecryptionRequest", "PfxUserCertificate",
}

// Where each kind keeps its record's facts in status; the first field set wins.
var (
	thumbprintFields = [][]string{{"status", "thumbprint"}, {"status", "certificate", "thumbprint"}, {"spec", "thumbprint"}}
	expiryFields     = [][]string{{"status", "expirationDateTime"}, {"status", "certExpirationDate"}, {"status", "certificate", "expirationDateTime"}}
)

// resourceStatus is one row of status.
type resourceStatus struct {
	Namespace  string     `json:"namespace"`
	Kind       string     `json:"kind"`
	Name       string     `json:"name"`
	Ready      string     `json:"ready"`
	Reason     string     `json:"reason,omitempty"`
	Message    string     `json:"message,omitempty"`
	RecordID   string     `json:"recordId,omitempty"`
	Thumbprint string     `json:"thumbprint,omitempty"`
	Expires    *time.Time `json:"expires,omitempty"`
	LastSync   *time.Time `json:"lastSync,omitempty"`
}

func runStatus(ctx context.Context, env *environment, args []string) error {
	var flags commonFlags
	var all bool
	fs := newFlagSet("status")
	flags.bind(fs, true)
	fs.BoolVarP(&all, "all-namespaces", "A", false, "Every namespace (the default unless -n is given).")
	if err := parse(env, "status", usageStatus, fs, args); err != nil {
		return err
	}
	if err := flags.checkOutput(); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("status takes no arguments")
	}
	k, err := flags.connect()
	if err != nil {
		return err
	}
	namespace := ""
	if flags.namespace != "" && !all {
		namespace = k.namespace
	}
	rows, err := listStatus(ctx, k.client, namespace)
	if err != nil {
		return err
	}
	if flags.output == outputJSON {
		return writeJSON(env, rows)
	}
	if len(rows) == 0 {
		where := "any namespace"
		if namespace != "" {
			where = "namespace " + namespace
		}
		_, err := fmt.Fprintf(env.stdout, "No resources of intune.certops.dev found in %s.\n", where)
		return err
	}
	w := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAMESPACE\tKIND\tNAME\tREADY\tREASON\tRECORD\tTHUMBPRINT\tEXPIRES\tLAST SYNC")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Namespace, r.Kind, r.Name, orDash(r.Ready), orDash(r.Reason),
			orDash(r.RecordID), orDash(r.Thumbprint), formatTime(r.Expires), formatTime(r.LastSync))
	}
	return w.Flush()
}

// listStatus reads every resource of statusKinds in namespace ("" = all), sorted by namespace, kind, name.
func listStatus(ctx context.Context, c client.Client, namespace string) ([]resourceStatus, error) {
	rows := []resourceStatus{}
	for _, kind := range statusKinds {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(intunev1alpha1.GroupVersion.WithKind(kind + "List"))
		if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
			if meta.IsNoMatchError(err) {
				continue // this cluster's operator has no such kind
			}
			return nil, fmt.Errorf("listing %ss: %w", kind, err)
		}
		for _, item := range list.Items {
			rows = append(rows, statusOf(kind, &item))
		}
	}
	slices.SortStableFunc(rows, func(a, b resourceStatus) int {
		return strings.Compare(a.Namespace+"/"+a.Kind+"/"+a.Name, b.Namespace+"/"+b.Kind+"/"+b.Name)
	})
	return rows, nil
}

func statusOf(kind string, u *unstructured.Unstructured) resourceStatus {
	r := resourceStatus{Namespace: u.GetNamespace(), Kind: kind, Name: u.GetName(), Ready: "Unknown"}
	conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conditions {
		m, _ := c.(map[string]any)
		if m["type"] == intunev1alpha1.ConditionReady {
			r.Ready, _ = m["status"].(string)
			r.Reason, _ = m["reason"].(string)
			r.Message, _ = m["message"].(string)
		}
	}
	r.RecordID, _, _ = unstructured.NestedString(u.Object, "status", "id")
	r.Thumbprint = firstString(u, thumbprintFields)
	r.Expires = parseTime(firstString(u, expiryFields))
	r.LastSync = parseTime(firstString(u, [][]string{{"status", "lastSyncTime"}}))
	return r
}

func firstString(u *unstructured.Unstructured, fields [][]string) string {
	for _, f := range fields {
		if s, ok, _ := unstructured.NestedString(u.Object, f...); ok && s != "" {
			return s
		}
	}
	return ""
}

func parseTime(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil
	}
	return &t
}

func writeJSON(env *environment, v any) error {
	enc := json.NewEncoder(env.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
