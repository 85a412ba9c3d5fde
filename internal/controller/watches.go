package controller

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/connection"
)

// Field indexes. Secrets are watched metadata-only (clusters hold tens of thousands, and their data is never
// cached); these indexes map a changed Secret or connection to the resources that use it. Each is looked up
// one way only (indexField): the Secret and Certificate names within the object's namespace, the
// connection key (which holds the namespace of a GraphConnection) across namespaces.
const (
	indexSecretNames = "intune.certops.dev/secretNames" // Secrets a resource reads, in its own namespace
	indexConnection  = "intune.certops.dev/connection"  // connection.IndexKey of the connection a resource uses
)

// indexLookup is how an index is looked up: with client.InNamespace, or across namespaces.
type indexLookup bool

const (
	inNamespace      indexLookup = false
	acrossNamespaces indexLookup = true
)

// indexField is controller-runtime's FieldIndexer.IndexField keeping each value once. IndexField files every
// value of a namespaced object twice, under its namespace and under "all namespaces", for either lookup; at
// 100,000 resources the index sets are ~80 MB, a fifth of the operator's heap (docs/performance.md). The
// keys are those controller-runtime's cache reader asks for: "field:<field>" and "<namespace>/<value>",
// "__all_namespaces/<value>" across namespaces and for cluster-scoped objects. A lookup the index was not
// registered for finds nothing.
func indexField(ctx context.Context, mgr manager.Manager, obj client.Object, field string, lookup indexLookup, values func(client.Object) []string) error {
	informer, err := mgr.GetCache().GetInformer(ctx, obj, cache.BlockUntilSynced(false))
	if err != nil {
		return err
	}
	return informer.AddIndexers(toolscache.Indexers{"field:" + field: func(raw any) ([]string, error) {
		o, ok := raw.(client.Object)
		if !ok {
			return nil, fmt.Errorf("object of type %T is not a client.Object", raw)
		}
		namespace := o.GetNamespace()
		if lookup == acrossNamespaces || namespace == "" {
			namespace = "__all_namespaces"
		}
		vals := values(o)
		keys := make([]string, len(vals))
		for i, v := range vals {
			keys[i] = namespace + "/" + v
		}
		return keys, nil
	}})
}

// referencing describes, for one kind, how to find its resources by what they reference.
type referencing struct {
	list          func() client.ObjectList
	secretNames   func(client.Object) []string
	connectionRef func(client.Object) *intunev1alpha1.ConnectionReference
}

// setupIndexes registers the kind's field indexes.
func (k referencing) setupIndexes(ctx context.Context, mgr manager.Manager, obj client.Object) error {
	if err := indexField(ctx, mgr, obj, indexSecretNames, inNamespace, k.secretNames); err != nil {
		return err
	}
	return indexField(ctx, mgr, obj, indexConnection, acrossNamespaces, func(o client.Object) []string {
		kind, name := connection.Reference(k.connectionRef(o))
		return []string{connection.IndexKey(kind, o.GetNamespace(), name)}
	})
}

// requests lists the kind's resources whose index field has value.
func (k referencing) requests(ctx context.Context, c client.Reader, field, value string, opts ...client.ListOption) []reconcile.Request {
	return k.listRequests(ctx, c, append(opts, client.MatchingFields{field: value})...)
}

// listRequests lists the kind's resources that opts select, as reconcile requests.
func (k referencing) listRequests(ctx context.Context, c client.Reader, opts ...client.ListOption) []reconcile.Request {
	list := k.list()
	if err := c.List(ctx, list, opts...); err != nil {
		log.FromContext(ctx).Error(err, "Failed to list resources to wake")
		return nil
	}
	items, _ := meta.ExtractList(list)
	reqs := make([]reconcile.Request, 0, len(items))
	for _, item := range items {
		o := item.(client.Object)
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}})
	}
	return reqs
}

// forSecret maps a changed Secret to the resources reading it directly, and to every resource of a
// connection that reads it (its credential or connector public key).
func (k referencing) forSecret(c client.Reader, operatorNamespace string) handler.MapFunc {
	return func(ctx context.Context, secret client.Object) []reconcile.Request {
		reqs := k.requests(ctx, c, indexSecretNames, secret.GetName(), client.InNamespace(secret.GetNamespace()))
		for _, key := range connectionsReadingSecret(ctx, c, secret, operatorNamespace) {
			reqs = append(reqs, k.requests(ctx, c, indexConnection, key)...)
		}
		return reqs
	}
}

// forConnection maps a connection to the resources using it.
func (k referencing) forConnection(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, conn client.Object) []reconcile.Request {
		kind := "GraphConnection"
		if _, ok := conn.(*intunev1alpha1.ClusterGraphConnection); ok {
			kind = "ClusterGraphConnection"
		}
		return k.requests(ctx, c, indexConnection, connection.IndexKey(kind, conn.GetNamespace(), conn.GetName()))
	}
}

// forNamespace maps a namespace whose labels changed to its resources: a ClusterGraphConnection's
// spec.access.namespaceSelector may now select it, or no longer.
func (k referencing) forNamespace(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, ns client.Object) []reconcile.Request {
		return k.listRequests(ctx, c, client.InNamespace(ns.GetName()))
	}
}

// namespaceLabelsChanged lets through only label changes of existing namespaces: that is all access rules
// read of a namespace, and a new namespace has no resources to wake yet.
var namespaceLabelsChanged = predicate.And[client.Object](predicate.LabelChangedPredicate{}, predicate.Funcs{
	CreateFunc: func(event.CreateEvent) bool { return false },
	DeleteFunc: func(event.DeleteEvent) bool { return false },
})

// connectionSecretNames are the Secrets a connection reads.
func connectionSecretNames(spec *intunev1alpha1.GraphConnectionSpec) []string {
	var names []string
	if ref := spec.Credential.SecretRef; ref != nil {
		names = append(names, ref.Name)
		if pw := spec.Credential.CertificatePasswordSecretRef; pw != nil && pw.Name != "" {
			names = append(names, pw.Name)
		}
	}
	if enc := spec.PfxEncryption; enc != nil && enc.PublicKeyRef != nil && enc.PublicKeyRef.Kind != kindConfigMap {
		names = append(names, enc.PublicKeyRef.Name)
	}
	return names
}

// connectionsReadingSecret returns the index keys of connections that read secret.
func connectionsReadingSecret(ctx context.Context, c client.Reader, secret client.Object, operatorNamespace string) []string {
	var keys []string
	nsConns := &intunev1alpha1.GraphConnectionList{}
	if err := c.List(ctx, nsConns, client.InNamespace(secret.GetNamespace()), client.MatchingFields{indexSecretNames: secret.GetName()}); err == nil {
		for _, gc := range nsConns.Items {
			keys = append(keys, connection.IndexKey("GraphConnection", gc.Namespace, gc.Name))
		}
	}
	if secret.GetNamespace() == operatorNamespace {
		clusterConns := &intunev1alpha1.ClusterGraphConnectionList{}
		if err := c.List(ctx, clusterConns, client.MatchingFields{indexSecretNames: secret.GetName()}); err == nil {
			for _, cc := range clusterConns.Items {
				keys = append(keys, connection.IndexKey("ClusterGraphConnection", "", cc.Name))
			}
		}
	}
	return keys
}

// sourceSecretNames are the Secrets a CertificateSource and an encryption override read.
func sourceSecretNames(src intunev1alpha1.CertificateSource, enc *intunev1alpha1.PfxEncryption) []string {
	var names []string
	if src.Pfx != nil {
		names = append(names, src.Pfx.SecretRef.Name)
		if pw := src.Pfx.PasswordSecretRef; pw != nil && pw.Name != "" {
			names = append(names, pw.Name)
		}
	}
	if src.TLS != nil {
		names = append(names, src.TLS.SecretRef.Name)
	}
	if enc != nil && enc.PublicKeyRef != nil && enc.PublicKeyRef.Kind != kindConfigMap {
		names = append(names, enc.PublicKeyRef.Name)
	}
	return names
}

// secretsAfterStart drops the Secrets of the initial list (and of the replay a controller gets when it
// starts on an informer already running, e.g. after winning the leader election). Every resource is
// reconciled at start anyway, reading its Secrets live; mapping tens of thousands of Secrets to the few
// resources using them, four kinds over, would only cost memory and CPU when the operator can least spare
// them (docs/performance.md). Secrets created, changed or deleted later all pass.
var secretsAfterStart = predicate.Funcs{
	CreateFunc: func(e event.CreateEvent) bool { return !e.IsInInitialList },
}

// connectionReadinessChanged lets through connection events that matter to the resources using it: a new
// spec, or a change of its Ready condition. Routine status writes of the connection do not wake thousands
// of certificates.
var connectionReadinessChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		if e.ObjectOld.GetGeneration() != e.ObjectNew.GetGeneration() {
			return true
		}
		return readyOf(e.ObjectOld) != readyOf(e.ObjectNew)
	},
}

func readyOf(o client.Object) string {
	var conds []metav1.Condition
	switch c := o.(type) {
	case *intunev1alpha1.GraphConnection:
		conds = c.Status.Conditions
	case *intunev1alpha1.ClusterGraphConnection:
		conds = c.Status.Conditions
	}
	if r := meta.FindStatusCondition(conds, intunev1alpha1.ConditionReady); r != nil {
		return string(r.Status) + "/" + r.Reason
	}
	return ""
}

// splitIndexKey undoes connection.IndexKey.
func splitIndexKey(key string) (kind, namespace, name string) {
	parts := strings.Split(key, "/")
	if len(parts) == 2 {
		return parts[0], "", parts[1]
	}
	return parts[0], parts[1], parts[2]
}
