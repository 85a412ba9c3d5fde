package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

const kindUserPfxCertificateSet = "UserPfxCertificateSet"

// The set creates, updates and deletes its children; blockOwnerDeletion on their owner reference needs
// update on the set's finalizers.
// +kubebuilder:rbac:groups=intune.certops.dev,resources=userpfxcertificatesets,verbs=get;list;watch
// +kubebuilder:rbac:groups=intune.certops.dev,resources=userpfxcertificatesets/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=intune.certops.dev,resources=userpfxcertificatesets/finalizers,verbs=update
// +kubebuilder:rbac:groups=intune.certops.dev,resources=userpfxcertificates,verbs=create;update;delete

// annotationTemplateHash, on a child, is a digest of the spec the set last gave it: a child whose digest
// matches is not written again, so a pass over a thousand children in sync writes nothing.
const annotationTemplateHash = "intune.certops.dev/set-template-hash"

// setWakeDelay gathers the status changes of many children into one pass of their set.
const setWakeDelay = 500 * time.Millisecond

// maxNamedFailures is how many not-ready children the set's Ready message names.
const maxNamedFailures = 5

// UserPfxCertificateSetReconciler keeps one UserPfxCertificate per selected source. It makes no Graph call:
// the children do.
type UserPfxCertificateSetReconciler struct {
	kindReconciler[*intunev1alpha1.UserPfxCertificateSet]
	// scheme names the set's kind in its children's owner references.
	scheme *runtime.Scheme
}

var setKind = resourceKind[*intunev1alpha1.UserPfxCertificateSet]{
	name:      kindUserPfxCertificateSet,
	newObject: func() *intunev1alpha1.UserPfxCertificateSet { return &intunev1alpha1.UserPfxCertificateSet{} },
	status: func(o *intunev1alpha1.UserPfxCertificateSet) (any, *intunev1alpha1.CommonStatus) {
		return &o.Status, &o.Status.CommonStatus
	},
}

// setupSets registers the set controller: woken by its own spec, its children (owner references), and the
// Secrets or Certificates of its namespace (the selection is read live, as the Secrets' cache keeps no labels).
func setupSets(mgr manager.Manager, deps resourceDeps, o Options, certManager bool) error {
	r := &UserPfxCertificateSetReconciler{kindReconciler[*intunev1alpha1.UserPfxCertificateSet]{deps, setKind}, mgr.GetScheme()}
	c := mgr.GetClient()
	b := ctrl.NewControllerManagedBy(mgr).
		For(&intunev1alpha1.UserPfxCertificateSet{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&intunev1alpha1.UserPfxCertificate{}, childToSet).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(setsSelecting(c, intunev1alpha1.SetSourceSecret)),
			builder.WithPredicates(secretsAfterStart))
	if certManager {
		b = b.WatchesMetadata(certificateMetadata(), handler.EnqueueRequestsFromMapFunc(setsSelecting(c, intunev1alpha1.SetSourceCertificate)),
			builder.WithPredicates(secretsAfterStart))
	}
	return b.WithOptions(controller.Options{MaxConcurrentReconciles: o.MaxConcurrentReconciles}).
		Named(kindUserPfxCertificateSet).Complete(r)
}

// childToSet wakes a child's set, a moment later: a thousand children turning Ready make a few passes, not
// a thousand.
var childToSet = handler.Funcs{
	CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		enqueueOwningSet(e.Object, q)
	},
	UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		enqueueOwningSet(e.ObjectNew, q)
	},
	DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		enqueueOwningSet(e.Object, q)
	},
}

func enqueueOwningSet(child client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	owner := metav1.GetControllerOf(child)
	if owner == nil || owner.Kind != kindUserPfxCertificateSet || !strings.HasPrefix(owner.APIVersion, intunev1alpha1.GroupVersion.Group+"/") {
		return
	}
	q.AddAfter(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: child.GetNamespace(), Name: owner.Name}}, setWakeDelay)
}

// setsSelecting maps a Secret or Certificate to the sets of its namespace selecting that kind of source.
func setsSelecting(c client.Reader, kind intunev1alpha1.SetSourceKind) handler.MapFunc {
	return func(ctx context.Context, source client.Object) []reconcile.Request {
		sets := &intunev1alpha1.UserPfxCertificateSetList{}
		if err := c.List(ctx, sets, client.InNamespace(source.GetNamespace())); err != nil {
			return nil
		}
		var reqs []reconcile.Request
		for _, s := range sets.Items {
			if sourceKindOf(&s) == kind {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: s.Namespace, Name: s.Name}})
			}
		}
		return reqs
	}
}

func sourceKindOf(set *intunev1alpha1.UserPfxCertificateSet) intunev1alpha1.SetSourceKind {
	if set.Spec.SourceKind == "" {
		return intunev1alpha1.SetSourceSecret
	}
	return set.Spec.SourceKind
}

func (r *UserPfxCertificateSetReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	return r.run(ctx, req, r.reconcileNormal, nil) // no finalizer: the children go with the set (garbage collection)
}

// setSource is one selected Secret or Certificate.
type setSource struct {
	name string
	tls  bool   // a kubernetes.io/tls Secret
	upn  string // the annotation's user, "" for the certificate's own
}

func (r *UserPfxCertificateSetReconciler) reconcileNormal(ctx context.Context, set *intunev1alpha1.UserPfxCertificateSet) (ctrl.Result, error) {
	sources, err := selectSources(ctx, r.Live, set)
	if err != nil {
		return r.fail(ctx, set, err)
	}
	children, err := r.children(ctx, set)
	if err != nil {
		return ctrl.Result{}, err
	}
	var created, updated, removed int
	problems := map[string]string{} // child name -> why its source has no working child
	order := make([]string, 0, len(sources))
	wanted := map[string]bool{}
	for _, src := range sources {
		name := childName(set.Name, src.name)
		order = append(order, name)
		wanted[name] = true
		if src.upn != "" && !upnPattern.MatchString(src.upn) {
			problems[name] = fmt.Sprintf("%s (annotation %s of %s %q is not a user principal name)", name,
				intunev1alpha1.AnnotationUserPrincipalName, sourceKindOf(set), src.name)
			continue
		}
		spec := childSpec(set, src)
		hash := specHash(spec)
		child, exists := children[name]
		switch {
		case !exists:
			problem, err := r.createChild(ctx, set, name, spec, hash)
			if err != nil {
				return ctrl.Result{}, err
			}
			if problem != "" {
				problems[name] = problem
				continue
			}
			created++
		case !child.DeletionTimestamp.IsZero():
			// Being replaced (or removed earlier): created again once it is gone, which wakes the set.
		case child.Spec.UserPrincipalName != spec.UserPrincipalName:
			// userPrincipalName is immutable, and a record belongs to one user: replace the child.
			if err := r.Writer.Delete(ctx, child); client.IgnoreNotFound(err) != nil {
				return ctrl.Result{}, fmt.Errorf("failed to replace child %s: %w", name, err)
			}
			removed++
		case child.Annotations[annotationTemplateHash] != hash:
			if err := r.updateChild(ctx, child, spec, hash); err != nil {
				return ctrl.Result{}, err
			}
			updated++
		}
	}
	for name, child := range children {
		if !wanted[name] && child.DeletionTimestamp.IsZero() {
			// The child follows its own deletionPolicy and retention on the way out.
			if err := r.Writer.Delete(ctx, child); client.IgnoreNotFound(err) != nil {
				return ctrl.Result{}, fmt.Errorf("failed to delete child %s: %w", name, err)
			}
			removed++
		}
	}
	if created+updated+removed > 0 {
		r.Recorder.Eventf(set, nil, corev1.EventTypeNormal, "Synced", "Sync",
			"Created %d, updated %d and removed %d UserPfxCertificates", created, updated, removed)
	}
	r.report(set, order, children, problems)
	return ctrl.Result{RequeueAfter: jittered(r.ResyncPeriod)}, nil
}

// report counts the children and sets Ready: True when every selected source has a Ready child. order is
// the selected sources' child names; problems says why a source has no working child.
func (r *UserPfxCertificateSetReconciler) report(set *intunev1alpha1.UserPfxCertificateSet, order []string, children map[string]*intunev1alpha1.UserPfxCertificate, problems map[string]string) {
	st := &set.Status
	st.Selected, st.Ready, st.Failed = int32(len(order)), 0, 0
	var notReady []string
	for _, name := range order {
		if problem, ok := problems[name]; ok {
			st.Failed++
			notReady = append(notReady, problem)
			continue
		}
		child := children[name]
		var c *metav1.Condition
		if child != nil {
			c = meta.FindStatusCondition(child.Status.Conditions, intunev1alpha1.ConditionReady)
		}
		// status.observedGeneration, not the condition's: a pass that finds Intune in sync leaves Ready as it was.
		current := c != nil && child.Status.ObservedGeneration == child.Generation && child.DeletionTimestamp.IsZero()
		switch {
		case current && c.Status == metav1.ConditionTrue:
			st.Ready++
		case current && c.Status == metav1.ConditionFalse && !transientChildReasons[c.Reason]:
			st.Failed++
			notReady = append(notReady, name+" ("+c.Reason+")")
		case c != nil && c.Status == metav1.ConditionFalse:
			notReady = append(notReady, name+" ("+c.Reason+")")
		default:
			notReady = append(notReady, name+" (pending)")
		}
	}
	if len(notReady) == 0 {
		setReady(&st.Conditions, set.Generation, true, intunev1alpha1.ReasonChildrenReady,
			fmt.Sprintf("all %d UserPfxCertificates of this set are Ready", len(order)))
		return
	}
	if len(notReady) > maxNamedFailures {
		notReady = append(notReady[:maxNamedFailures], fmt.Sprintf("and %d more", len(notReady)-maxNamedFailures))
	}
	message := fmt.Sprintf("%d of %d UserPfxCertificates Ready, %d failed; not Ready: %s", st.Ready, len(order), st.Failed, strings.Join(notReady, ", "))
	reason := intunev1alpha1.ReasonChildrenNotReady
	if st.Failed > 0 {
		reason = intunev1alpha1.ReasonChildrenFailed
	}
	if setReady(&st.Conditions, set.Generation, false, reason, message) && st.Failed > 0 {
		r.Recorder.Eventf(set, nil, corev1.EventTypeWarning, "Failed", "Sync", "%s: %s", reason, message)
	}
}

// transientChildReasons are a child's Ready=False reasons that clear by themselves: such a child is pending,
// not failed.
var transientChildReasons = map[string]bool{
	intunev1alpha1.ReasonGraphError: true, intunev1alpha1.ReasonThrottled: true, intunev1alpha1.ReasonConnectionNotReady: true,
	intunev1alpha1.ReasonDeleting: true, intunev1alpha1.ReasonProgressing: true, intunev1alpha1.ReasonCertificateNotIssued: true,
}

// upnPattern is the pattern of UserPfxCertificate's spec.userPrincipalName.
var upnPattern = regexp.MustCompile(`^[^@\s]+@[^@\s]+$`)

// selectSources lists the selected Secrets or Certificates live, as metadata: the Secrets' cache keeps no
// labels, and their data is not needed (each child reads its own).
func selectSources(ctx context.Context, live client.Reader, set *intunev1alpha1.UserPfxCertificateSet) ([]setSource, error) {
	selector, err := metav1.LabelSelectorAsSelector(&set.Spec.Selector)
	if err != nil {
		return nil, &conditionError{reason: intunev1alpha1.ReasonInvalidSpec, terminal: true, message: "spec.selector is not valid: " + err.Error()}
	}
	list := func(gvk string, extra ...client.ListOption) ([]metav1.PartialObjectMetadata, error) {
		l := &metav1.PartialObjectMetadataList{}
		l.SetGroupVersionKind(listGVK(gvk))
		opts := append([]client.ListOption{client.InNamespace(set.Namespace), client.MatchingLabelsSelector{Selector: selector}}, extra...)
		if err := live.List(ctx, l, opts...); err != nil {
			return nil, err
		}
		return l.Items, nil
	}
	var items []metav1.PartialObjectMetadata
	tls := map[string]bool{}
	if sourceKindOf(set) == intunev1alpha1.SetSourceCertificate {
		items, err = list("Certificate")
		if meta.IsNoMatchError(err) {
			return nil, notIssued("%s", certManagerMissing)
		}
	} else {
		items, err = list("Secret")
		if err == nil {
			// The Secrets' type is not metadata: a second list, filtered by the API server, finds the tls ones.
			var tlsItems []metav1.PartialObjectMetadata
			tlsItems, err = list("Secret", client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("type", string(corev1.SecretTypeTLS))})
			for _, s := range tlsItems {
				tls[s.Name] = true
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("failed to list the selected sources: %w", err)
	}
	sources := make([]setSource, 0, len(items))
	for _, item := range items {
		sources = append(sources, setSource{name: item.Name, tls: tls[item.Name], upn: item.Annotations[intunev1alpha1.AnnotationUserPrincipalName]})
	}
	slices.SortFunc(sources, func(a, b setSource) int { return strings.Compare(a.name, b.name) })
	return sources, nil
}

func listGVK(kind string) schema.GroupVersionKind {
	if kind == "Certificate" {
		return certificateGVK.GroupVersion().WithKind("CertificateList")
	}
	return corev1.SchemeGroupVersion.WithKind("SecretList")
}

// children are the set's UserPfxCertificates, read live (the cache keeps no status), by name.
func (r *UserPfxCertificateSetReconciler) children(ctx context.Context, set *intunev1alpha1.UserPfxCertificateSet) (map[string]*intunev1alpha1.UserPfxCertificate, error) {
	list := &intunev1alpha1.UserPfxCertificateList{}
	if err := r.Live.List(ctx, list, client.InNamespace(set.Namespace), client.MatchingLabels{intunev1alpha1.LabelSet: setLabel(set.Name)}); err != nil {
		return nil, fmt.Errorf("failed to list the set's children: %w", err)
	}
	out := make(map[string]*intunev1alpha1.UserPfxCertificate, len(list.Items))
	for i := range list.Items {
		if metav1.IsControlledBy(&list.Items[i], set) {
			out[list.Items[i].Name] = &list.Items[i]
		}
	}
	return out, nil
}

// childSpec is the spec of a source's child: the template, the source and the annotated user.
func childSpec(set *intunev1alpha1.UserPfxCertificateSet, src setSource) intunev1alpha1.UserPfxCertificateSpec {
	t := set.Spec.Template.DeepCopy()
	spec := intunev1alpha1.UserPfxCertificateSpec{
		ConnectionRef: t.ConnectionRef, UserPrincipalName: src.upn, IntendedPurpose: t.IntendedPurpose, Encryption: t.Encryption,
		DeletionPolicy: t.DeletionPolicy, Suspend: t.Suspend, Retention: t.Retention, RenewBefore: t.RenewBefore,
	}
	switch {
	case sourceKindOf(set) == intunev1alpha1.SetSourceCertificate:
		spec.Source.CertificateRef = &intunev1alpha1.CertificateReference{Name: src.name, PfxEncoding: t.PfxEncoding}
	case src.tls:
		spec.Source.TLS = &intunev1alpha1.TLSSecretSource{SecretRef: intunev1alpha1.LocalSecretReference{Name: src.name}, PfxEncoding: t.PfxEncoding}
	default:
		spec.Source.Pfx = &intunev1alpha1.PfxSecretSource{SecretRef: intunev1alpha1.SecretKeyReference{Name: src.name}}
	}
	return spec
}

func specHash(spec intunev1alpha1.UserPfxCertificateSpec) string {
	raw, _ := json.Marshal(spec)
	return digest(raw)
}

// createChild creates a child owned by the set. A UserPfxCertificate of that name the set does not own is
// left alone and reported (the returned problem).
func (r *UserPfxCertificateSetReconciler) createChild(ctx context.Context, set *intunev1alpha1.UserPfxCertificateSet, name string, spec intunev1alpha1.UserPfxCertificateSpec, hash string) (string, error) {
	child := &intunev1alpha1.UserPfxCertificate{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: set.Namespace,
			Labels:      map[string]string{intunev1alpha1.LabelSet: setLabel(set.Name)},
			Annotations: map[string]string{annotationTemplateHash: hash}},
		Spec: spec,
	}
	if err := controllerutil.SetControllerReference(set, child, r.scheme); err != nil {
		return "", err
	}
	err := r.Writer.Create(ctx, child)
	switch {
	case apierrors.IsAlreadyExists(err):
		return fmt.Sprintf("%s (a UserPfxCertificate of that name exists and does not belong to this set)", name), nil
	case apierrors.IsInvalid(err):
		// The API server's validation message names fields and values of the spec, never secret material.
		return fmt.Sprintf("%s (refused by the API server: %s)", name, truncate(apiMessage(err), 300)), nil
	case err != nil:
		return "", fmt.Errorf("failed to create child %s: %w", name, err)
	}
	return "", nil
}

// updateChild gives a child the set's current spec. Fields the API server defaults and the set leaves
// empty are defaulted again: writing a spec the child already has changes nothing and starts no Graph call.
func (r *UserPfxCertificateSetReconciler) updateChild(ctx context.Context, child *intunev1alpha1.UserPfxCertificate, spec intunev1alpha1.UserPfxCertificateSpec, hash string) error {
	base := child.DeepCopy()
	child.Spec = spec
	if child.Annotations == nil {
		child.Annotations = map[string]string{}
	}
	child.Annotations[annotationTemplateHash] = hash
	if err := r.Writer.Patch(ctx, child, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("failed to update child %s: %w", child.Name, err)
	}
	return nil
}

func apiMessage(err error) string {
	if status, ok := err.(apierrors.APIStatus); ok {
		return status.Status().Message
	}
	return err.Error()
}

// childName is "<set>-<source>", cut to a valid object name with a digest of the whole when too long, so
// the same pair always gives the same name.
func childName(set, source string) string {
	return fitName(set+"-"+source, 253)
}

// setLabel is the set's name as a label value (63 characters at most).
func setLabel(set string) string { return fitName(set, 63) }

func fitName(name string, max int) string {
	if len(name) <= max {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return strings.TrimRight(name[:max-9], "-.") + "-" + hex.EncodeToString(sum[:4])
}
