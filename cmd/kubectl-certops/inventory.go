package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
)

// inventoryRecord is one userPfxCertificates record of the tenant.
type inventoryRecord struct {
	ID                string     `json:"id"`
	UserPrincipalName string     `json:"userPrincipalName"`
	IntendedPurpose   string     `json:"intendedPurpose,omitempty"`
	Thumbprint        string     `json:"thumbprint,omitempty"`
	Expires           *time.Time `json:"expires,omitempty"`
	Expired           bool       `json:"expired"`
	Managed           bool       `json:"managed"`
	// ManagedBy is the resource managing the record, namespace/name; As says how: current (status.id),
	// superseded (status.history), retiring (status.retiredIds) or claimed (a RecordClaim alone: a pass wrote
	// the record and has not recorded it yet).
	ManagedBy string `json:"managedBy,omitempty"`
	As        string `json:"as,omitempty"`
}

type inventory struct {
	Connection string            `json:"connection"`
	TenantID   string            `json:"tenantId"`
	User       string            `json:"user,omitempty"`
	Records    []inventoryRecord `json:"records"`
	Managed    int               `json:"managed"`
	Unmanaged  int               `json:"unmanaged"`
	Expired    int               `json:"expired"`
	// ExpiredUnmanaged are expired records no resource manages: candidates for deletion in Intune.
	ExpiredUnmanaged int `json:"expiredUnmanaged"`
}

type owner struct{ name, as string }

func runInventory(ctx context.Context, env *environment, args []string) error {
	var flags commonFlags
	var conns connectionFlags
	var user, connRef string
	fs := newFlagSet("inventory")
	fs.StringVar(&user, "user", "", "Only this user's records (userPrincipalName).")
	fs.StringVar(&connRef, "connection", "ClusterGraphConnection/"+connection.DefaultName,
		"The connection to read Intune with: ClusterGraphConnection/NAME or GraphConnection/NAME (in -n's namespace).")
	flags.bind(fs, true)
	conns.bind(fs)
	if err := parse(env, "inventory", usageInventory, fs, args); err != nil {
		return err
	}
	if err := flags.checkOutput(); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("inventory takes no arguments")
	}
	ref, err := parseConnectionRef(connRef)
	if err != nil {
		return err
	}
	k, err := flags.connect()
	if err != nil {
		return err
	}
	provider, err := conns.provider(k, env)
	if err != nil {
		return err
	}
	// As the operator resolves a resource's connection (a connection whose Ready is False is refused).
	conn, err := provider.ForResource(ctx, k.namespace, ref)
	if err != nil {
		return fmt.Errorf("connection %s: %w (kubectl certops check-connection tells more)", connRef, err)
	}
	owners, err := recordOwners(ctx, env, k, conn.TenantID)
	if err != nil {
		return err
	}
	records, err := conn.Graph.ListUserPFXCertificates(ctx, user, "")
	if err != nil {
		return fmt.Errorf("listing userPfxCertificates through %s: %w", conn.Ref, err)
	}
	now := env.now()
	inv := inventory{Connection: conn.Ref, TenantID: conn.TenantID, User: user, Records: []inventoryRecord{}}
	for _, rec := range records {
		r := inventoryRecord{ID: rec.ID, UserPrincipalName: rec.UserPrincipalName, IntendedPurpose: rec.IntendedPurpose,
			Thumbprint: strings.ToLower(rec.Thumbprint)}
		if !rec.ExpirationDateTime.IsZero() {
			expires := rec.ExpirationDateTime.UTC()
			r.Expires, r.Expired = &expires, !now.Before(expires)
		}
		if o, ok := owners[strings.ToLower(rec.ID)]; ok {
			r.Managed, r.ManagedBy, r.As = true, o.name, o.as
			inv.Managed++
		} else {
			inv.Unmanaged++
		}
		if r.Expired {
			inv.Expired++
			if !r.Managed {
				inv.ExpiredUnmanaged++
			}
		}
		inv.Records = append(inv.Records, r)
	}
	slices.SortStableFunc(inv.Records, func(a, b inventoryRecord) int {
		if c := strings.Compare(strings.ToLower(a.UserPrincipalName), strings.ToLower(b.UserPrincipalName)); c != 0 {
			return c
		}
		return strings.Compare(formatTime(a.Expires), formatTime(b.Expires))
	})
	if flags.output == outputJSON {
		return writeJSON(env, inv)
	}
	w := tabwriter.NewWriter(env.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "USER\tPURPOSE\tTHUMBPRINT\tEXPIRES\tEXPIRED\tMANAGED BY\tRECORD")
	for _, r := range inv.Records {
		managedBy := "UNMANAGED"
		if r.Managed {
			managedBy = r.ManagedBy
			if r.As != "current" {
				managedBy += " (" + r.As + ")"
			}
		}
		expired := "no"
		if r.Expired {
			expired = "EXPIRED"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", orDash(r.UserPrincipalName), orDash(r.IntendedPurpose), orDash(r.Thumbprint),
			formatTime(r.Expires), expired, managedBy, r.ID)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	scope := "tenant " + inv.TenantID
	if user != "" {
		scope = user + " in " + scope
	}
	_, err = fmt.Fprintf(env.stdout, "\n%d records of %s (through %s): %d managed, %d unmanaged, %d expired (%d expired and unmanaged)\n",
		len(inv.Records), scope, inv.Connection, inv.Managed, inv.Unmanaged, inv.Expired, inv.ExpiredUnmanaged)
	return err
}

// recordOwners maps the record ids UserPfxCertificates manage (lower case) to the resource, from their status
// and, for records a pass wrote before it could record them, from the tenant's RecordClaims.
func recordOwners(ctx context.Context, env *environment, k *kube, tenantID string) (map[string]owner, error) {
	owners := map[string]owner{}
	add := func(id, name, as string) {
		if id = strings.ToLower(id); id != "" {
			if _, ok := owners[id]; !ok {
				owners[id] = owner{name, as}
			}
		}
	}
	var list intunev1alpha1.UserPfxCertificateList
	if err := k.client.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing UserPfxCertificates in every namespace (managed records are told by them): %w", err)
	}
	for _, c := range list.Items {
		name := c.Namespace + "/" + c.Name
		add(c.Status.ID, name, "current")
		for _, h := range c.Status.History {
			add(h.ID, name, "superseded")
		}
		for _, id := range c.Status.RetiredIDs {
			add(id, name, "retiring")
		}
	}
	var claims intunev1alpha1.RecordClaimList
	switch err := k.client.List(ctx, &claims); {
	case apierrors.IsForbidden(err):
		fmt.Fprintln(env.stderr, "warning: cannot list RecordClaims (forbidden): records written but not yet in a status show as unmanaged")
	case err != nil:
		return nil, fmt.Errorf("listing RecordClaims: %w", err)
	}
	for _, c := range claims.Items {
		if c.Spec.Kind == "UserPfxCertificate" && strings.EqualFold(c.Spec.TenantID, tenantID) {
			add(c.Spec.Record, c.Spec.Claimant.Namespace+"/"+c.Spec.Claimant.Name, "claimed")
		}
	}
	return owners, nil
}

// parseConnectionRef reads KIND/NAME (or NAME, a ClusterGraphConnection); short names are accepted.
func parseConnectionRef(s string) (*intunev1alpha1.ConnectionReference, error) {
	kind, name, found := strings.Cut(s, "/")
	if !found {
		kind, name = "ClusterGraphConnection", s
	}
	switch strings.ToLower(kind) {
	case "clustergraphconnection", "clustergraphconnections", "cgconn":
		kind = "ClusterGraphConnection"
	case "graphconnection", "graphconnections", "gconn":
		kind = "GraphConnection"
	default:
		return nil, usagef("--connection %q: the kind must be ClusterGraphConnection or GraphConnection", s)
	}
	if name == "" || strings.Contains(name, "/") {
		return nil, usagef("--connection %q: expected KIND/NAME", s)
	}
	return &intunev1alpha1.ConnectionReference{Kind: kind, Name: name}, nil
}
