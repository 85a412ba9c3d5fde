package controller

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

func recryptionReady(h *harness, obj *intunev1alpha1.PfxRecryptionRequest, status metav1.ConditionStatus, reason string) metav1.Condition {
	h.t.Helper()
	return h.waitReady(obj, func() []metav1.Condition { return obj.Status.Conditions }, status, reason)
}

func (h *harness) recryption(name string) *intunev1alpha1.PfxRecryptionRequest {
	return &intunev1alpha1.PfxRecryptionRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: intunev1alpha1.PfxRecryptionRequestSpec{
			ConnectionRef:       &intunev1alpha1.ConnectionReference{Kind: "ClusterGraphConnection", Name: h.connection},
			UserID:              h.users["alice@contoso.com"],
			DeviceID:            newGUID(),
			ProfileID:           newGUID(),
			Thumbprint:          strings.Repeat("ab", 20),
			DeviceKeyThumbprint: strings.Repeat("cd", 20),
			Status:              6,
			SourceType:          10,
		},
	}
}

// anotherPass makes the request's controller run one more pass of obj (it wakes on annotation changes) and
// waits until that pass has finished.
func (h *harness) anotherPass(obj *intunev1alpha1.PfxRecryptionRequest) {
	h.t.Helper()
	mark := h.logMark()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"test.intune.certops.dev/pass":"%d"}}}`, time.Now().UnixNano())
	if err := k8sClient.Patch(h.ctx, obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		h.t.Fatal(err)
	}
	h.waitPass(obj, mark)
}

func (h *harness) recryptionRecords() map[string]graphsim.PfxRecryptionRequest {
	out := map[string]graphsim.PfxRecryptionRequest{}
	for _, r := range h.sim.PfxRecryptionRequests(h.tenantID) {
		out[r.ID] = r
	}
	return out
}

// posts counts the creates of recryption requests since mark, answered or not.
func (h *harness) recryptionPosts(mark int) int {
	return strings.Count(strings.Join(h.graphCalls(mark), "\n"), "POST /pfxRecryptionRequests ")
}

func TestRecryptionRequestIsCreatedOnceAndWatched(t *testing.T) {
	h := newHarness(t, harnessOptions{resync: 2 * time.Second})
	mark := h.journalMark()
	obj := h.recryption("alice-phone")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	recryptionReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonCreated)
	assertCalls(t, h.graphCalls(mark), "POST /pfxRecryptionRequests 201")

	recs := h.recryptionRecords()
	rec, ok := recs[obj.Status.ID]
	if len(recs) != 1 || !ok {
		t.Fatalf("graphsim holds %v, status id %q", keys(recs), obj.Status.ID)
	}
	spec := obj.Spec
	if rec.TenantID != h.tenantID || rec.UserID != spec.UserID || rec.DeviceID != spec.DeviceID || rec.ProfileID != spec.ProfileID ||
		rec.Thumbprint != spec.Thumbprint || rec.DeviceKeyThumbprint != spec.DeviceKeyThumbprint || rec.Status != 6 || rec.SourceType != 10 {
		t.Errorf("record %+v does not carry the spec (tenant defaulted to %s)", rec, h.tenantID)
	}
	st := obj.Status
	if st.ETag != rec.ETag || st.RequestStatus == nil || *st.RequestStatus != rec.Status ||
		st.CreatedTime == nil || !st.CreatedTime.Time.Equal(rec.CreatedTime.Truncate(time.Second)) ||
		st.LastModifiedTime == nil || st.LastSyncTime == nil {
		t.Errorf("status %+v does not hold what Graph answered (%+v)", st, rec)
	}
	if st.CreateStartedTime != nil {
		t.Errorf("status.createStartedTime %v left after the create", st.CreateStartedTime)
	}
	if !controllerutil.ContainsFinalizer(obj, Finalizer) {
		t.Error("no finalizer")
	}
	h.waitEvent(obj, kindPfxRecryptionRequest, "Created")

	// Resyncs read the request and never post again.
	mark = h.journalMark()
	h.eventually("two resyncs", func() error {
		if n := strings.Count(strings.Join(h.graphCalls(mark), "\n"), "GET /pfxRecryptionRequests/"+st.ID+" 200"); n < 2 {
			return fmt.Errorf("%d resync reads so far", n)
		}
		return nil
	})
	if n := h.graphWrites(mark); n != 0 {
		t.Fatalf("%d writes during resyncs: %v", n, h.graphCalls(mark))
	}
	recryptionReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonInSync)

	// Gone from Intune: said so, not recreated.
	if err := h.graphClient().DeletePfxRecryptionRequest(h.ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	cond := recryptionReady(h, obj, metav1.ConditionFalse, intunev1alpha1.ReasonRecordNotFound)
	if !strings.Contains(cond.Message, st.ID) || !strings.Contains(cond.Message, "create a new one") {
		t.Errorf("message %q does not explain what happened and what to do", cond.Message)
	}
	h.anotherPass(obj) // none may post
	if n := h.recryptionPosts(mark); n != 0 || len(h.recryptionRecords()) != 0 {
		t.Errorf("%d posts after the record vanished, records %v", n, keys(h.recryptionRecords()))
	}
}

func TestRecryptionRequestDeletionHonoursDeletionPolicy(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	deleted, orphaned, vanished := h.recryption("deleted"), h.recryption("orphaned"), h.recryption("vanished")
	orphaned.Spec.DeletionPolicy = intunev1alpha1.DeletionPolicyOrphan
	for _, obj := range []*intunev1alpha1.PfxRecryptionRequest{deleted, orphaned, vanished} {
		if err := k8sClient.Create(h.ctx, obj); err != nil {
			t.Fatal(err)
		}
		recryptionReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonCreated)
	}
	if err := h.graphClient().DeletePfxRecryptionRequest(h.ctx, vanished.Status.ID); err != nil {
		t.Fatal(err)
	}

	mark := h.journalMark()
	for _, obj := range []*intunev1alpha1.PfxRecryptionRequest{deleted, orphaned, vanished} {
		h.deleteAndWait(obj)
	}
	assertCalls(t, h.graphCalls(mark),
		"DELETE /pfxRecryptionRequests/"+deleted.Status.ID+" 204",
		"DELETE /pfxRecryptionRequests/"+vanished.Status.ID+" 404") // already gone: done
	recs := h.recryptionRecords()
	if _, ok := recs[orphaned.Status.ID]; !ok || len(recs) != 1 {
		t.Errorf("records left %v, want only the orphaned %s", keys(recs), orphaned.Status.ID)
	}
}

// A previous operator run marked a create and stopped before recording an id: the request may exist in
// Intune. The resource must not post until the user confirms it does not.
func TestRecryptionRequestNeverPostsTwiceAfterAnInterruptedCreate(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	// The resource's connection does not exist yet, which holds the resource before any Graph call while
	// the test writes the mark the earlier run left.
	late := "late-" + strings.ToLower(newGUID()[:8])
	mark := h.journalMark()
	obj := h.recryption("interrupted")
	obj.Spec.ConnectionRef = &intunev1alpha1.ConnectionReference{Kind: "ClusterGraphConnection", Name: late}
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	recryptionReady(h, obj, metav1.ConditionFalse, intunev1alpha1.ReasonConnectionNotFound)
	started := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	base := obj.DeepCopy()
	obj.Status.CreateStartedTime = &started
	if err := k8sClient.Status().Patch(h.ctx, obj, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	conn := &intunev1alpha1.ClusterGraphConnection{ObjectMeta: metav1.ObjectMeta{Name: late},
		Spec: h.clusterConnectionSpec()}
	if err := k8sClient.Create(h.ctx, conn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8sClient.Delete(h.ctx, conn) })

	cond := recryptionReady(h, obj, metav1.ConditionFalse, intunev1alpha1.ReasonCreateOutcomeUnknown)
	if !strings.Contains(cond.Message, intunev1alpha1.AnnotationConfirmNotCreated+"=true") || !strings.Contains(cond.Message, obj.Spec.DeviceID) {
		t.Errorf("message %q does not tell the user what to check and how to confirm", cond.Message)
	}
	h.waitEvent(obj, kindPfxRecryptionRequest, intunev1alpha1.ReasonCreateOutcomeUnknown)
	h.anotherPass(obj) // a wrongly made create would land in it
	if n := h.graphWrites(mark); n != 0 {
		t.Fatalf("Graph writes while the outcome is unknown (only the list may be read): %v", h.graphCalls(mark))
	}

	// The user found nothing in Intune and confirms: exactly one create, and the confirmation is used up.
	h.update(obj, func() {
		obj.Annotations = map[string]string{intunev1alpha1.AnnotationConfirmNotCreated: "true"}
	})
	recryptionReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonCreated)
	if n := h.recryptionPosts(mark); n != 1 || !slices.Contains(h.graphCalls(mark), "POST /pfxRecryptionRequests 201") {
		t.Errorf("want exactly one POST: %v", h.graphCalls(mark))
	}
	if _, ok := obj.Annotations[intunev1alpha1.AnnotationConfirmNotCreated]; ok {
		t.Error("the confirmation annotation was not removed")
	}
	if obj.Status.CreateStartedTime != nil || obj.Status.ID == "" {
		t.Errorf("status after the create: id %q, createStartedTime %v", obj.Status.ID, obj.Status.CreateStartedTime)
	}
	if recs := h.recryptionRecords(); len(recs) != 1 {
		t.Errorf("records %v, want one", keys(recs))
	}
	h.waitEvent(obj, kindPfxRecryptionRequest, "CreateConfirmed")
}

// The answer to the create is lost on the way (Graph may have acted): when the list does not show the
// request, the same wait for the user.
func TestRecryptionRequestWhoseCreateAnswerWasLostIsNotPostedAgain(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.waitConnectionReady() // the connection's own check must pass before Graph stops answering
	h.sim.SetFaults(graphsim.Faults{DropRate: 1})
	mark := h.journalMark()
	obj := h.recryption("lost-answer")
	if err := k8sClient.Create(h.ctx, obj); err != nil {
		t.Fatal(err)
	}
	h.eventually("the create marked and failed", func() error {
		h.get(obj)
		if obj.Status.CreateStartedTime == nil || h.recryptionPosts(mark) == 0 {
			return fmt.Errorf("mark %v after %d posts", obj.Status.CreateStartedTime, h.recryptionPosts(mark))
		}
		return nil
	})
	h.sim.SetFaults(graphsim.Faults{})
	recryptionReady(h, obj, metav1.ConditionFalse, intunev1alpha1.ReasonCreateOutcomeUnknown)
	if obj.Status.CreateStartedTime == nil || obj.Status.ID != "" {
		t.Errorf("status: id %q, createStartedTime %v; want the mark kept and no id", obj.Status.ID, obj.Status.CreateStartedTime)
	}
	h.anotherPass(obj) // a wrongly repeated create would land in it
	if n := h.recryptionPosts(mark); n != 1 {
		t.Fatalf("%d POSTs, want the one whose answer was lost: %v", n, h.graphCalls(mark))
	}

	h.update(obj, func() {
		obj.Annotations = map[string]string{intunev1alpha1.AnnotationConfirmNotCreated: "true"}
	})
	recryptionReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonCreated)
	if n := h.recryptionPosts(mark); n != 2 || !slices.Contains(h.graphCalls(mark), "POST /pfxRecryptionRequests 201") {
		t.Errorf("want the lost POST and one confirmed POST: %v", h.graphCalls(mark))
	}
}

// A spec written with explicit zero values (as kubectl applies "status: 0") must survive the operator's own
// writes: an update from the Go types would drop the zeros and the immutable spec would refuse it.
func TestRecryptionRequestWithExplicitZeroFieldsIsCreated(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	typed := h.recryption("explicit-zeros")
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "intune.certops.dev/v1alpha1", "kind": "PfxRecryptionRequest",
		"metadata": map[string]any{"name": typed.Name, "namespace": typed.Namespace},
		"spec": map[string]any{
			"connectionRef": map[string]any{"kind": "ClusterGraphConnection", "name": h.connection},
			"userId":        typed.Spec.UserID, "deviceId": typed.Spec.DeviceID, "profileId": typed.Spec.ProfileID,
			"status": int64(0), "sourceType": int64(0),
		},
	}}
	if err := k8sClient.Create(h.ctx, u); err != nil {
		t.Fatal(err)
	}
	recryptionReady(h, typed, metav1.ConditionTrue, intunev1alpha1.ReasonCreated)
	if err := k8sClient.Delete(h.ctx, typed); err != nil {
		t.Fatal(err)
	}
	h.eventually("released after delete", func() error {
		if err := k8sClient.Get(h.ctx, client.ObjectKeyFromObject(typed), typed); err == nil {
			return fmt.Errorf("still there, finalizers %v", typed.Finalizers)
		}
		return nil
	})
}

// The create took effect and then its answer was lost (or it came without an id, as today's type has none):
// the next pass finds the request in Intune's list and records it; nothing is posted twice.
func TestRecryptionRequestCreatedWithoutAKnownIDIsFoundByListing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults graphsim.Faults
	}{
		{"act-then-drop", graphsim.Faults{ActThenFailScript: []int{graphsim.DropConnection}}},
		{"act-then-500", graphsim.Faults{ActThenFailScript: []int{500}}},
		{"no-id-in-answer", graphsim.Faults{RecryptionCreateWithoutID: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			h.waitConnectionReady()
			h.sim.SetFaults(tc.faults)
			mark := h.journalMark()
			obj := h.recryption("found-" + tc.name)
			if err := k8sClient.Create(h.ctx, obj); err != nil {
				t.Fatal(err)
			}
			recryptionReady(h, obj, metav1.ConditionTrue, intunev1alpha1.ReasonCreated)
			recs := h.recryptionRecords()
			if _, ok := recs[obj.Status.ID]; len(recs) != 1 || !ok || obj.Status.CreateStartedTime != nil {
				t.Errorf("records %v, status id %q, mark %v: want the one request, recorded", keys(recs), obj.Status.ID, obj.Status.CreateStartedTime)
			}
			if n := h.recryptionPosts(mark); n != 1 {
				t.Errorf("%d POSTs, want 1", n)
			}
			h.waitEvent(obj, kindPfxRecryptionRequest, "Created")
		})
	}
}
