package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
)

func runReimport(ctx context.Context, env *environment, args []string) error {
	var flags commonFlags
	var wait bool
	var timeout time.Duration
	fs := newFlagSet("reimport")
	flags.bind(fs, false)
	fs.BoolVar(&wait, "wait", false, "Wait until the operator pushed the record (or --timeout passed).")
	fs.DurationVar(&timeout, "timeout", defaultWait, "How long --wait waits.")
	if err := parse(env, "reimport", usageReimport, fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("reimport takes the name of one UserPfxCertificate")
	}
	k, err := flags.connect()
	if err != nil {
		return err
	}
	key := types.NamespacedName{Namespace: k.namespace, Name: fs.Arg(0)}
	obj := &intunev1alpha1.UserPfxCertificate{}
	if err := k.client.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("UserPfxCertificate %q not found in namespace %q", key.Name, key.Namespace)
		}
		return err
	}
	// Unique per request: the operator pushes once per new value.
	value := env.now().UTC().Format(time.RFC3339Nano)
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{intunev1alpha1.AnnotationReimport: value}}})
	if err := k.client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("annotating UserPfxCertificate %s: %w", key, err)
	}
	fmt.Fprintf(env.stdout, "userpfxcertificate %s: reimport requested (%s=%s)\n", key, intunev1alpha1.AnnotationReimport, value)
	if obj.Spec.Suspend {
		fmt.Fprintln(env.stdout, "note: spec.suspend is true: the operator pushes the record once the resource is resumed")
	}
	if !wait {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		if err := k.client.Get(ctx, key, obj); err == nil && obj.Status.ReimportRequested == value {
			ready := meta.FindStatusCondition(obj.Status.Conditions, intunev1alpha1.ConditionReady)
			if obj.Status.SourceHash != "" && ready != nil && ready.Status == metav1.ConditionTrue {
				_, err := fmt.Fprintf(env.stdout, "userpfxcertificate %s: pushed (Ready %s: %s)\n", key, ready.Reason, ready.Message)
				return err
			}
			if ready != nil {
				last = fmt.Sprintf(" (last: Ready=%s %s: %s)", ready.Status, ready.Reason, ready.Message)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the operator did not push %s within %s%s", key, timeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
