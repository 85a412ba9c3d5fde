package fairshare

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// controller-runtime v0.25 uses its own priority queue unless Options.NewQueue is set; with NewQueue it must
// use this queue as it is (not wrapped in its shim, which would drop priorities), and reconcile in its order.
func TestControllerRuntimeReconcilesInTheQueuesOrder(t *testing.T) {
	var (
		mu    sync.Mutex
		order []string
	)
	all := make(chan struct{})
	c, err := controller.NewUnmanaged("fairshare-test", controller.Options{
		MaxConcurrentReconciles: 1, NewQueue: NewQueue, SkipNameValidation: ptr.To(true),
		Reconciler: reconcile.Func(func(_ context.Context, r reconcile.Request) (reconcile.Result, error) {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, str(r))
			if len(order) == 7 {
				close(all)
			}
			return reconcile.Result{}, nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Queued before the worker starts, as an informer's initial list is.
	if err := c.Watch(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		if _, ok := q.(*Queue); !ok {
			t.Errorf("the controller's queue is a %T, not the fair queue", q)
		}
		for _, r := range []string{"a/1", "a/2", "a/3", "a/4", "a/5", "b/1"} {
			q.Add(req(r))
		}
		q.(priorityqueue.PriorityQueue[reconcile.Request]).AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(handler.LowPriority)}, req("c/unchanged"))
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		t.Fatal("not every request was reconciled")
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"a/1", "b/1", "a/2", "a/3", "a/4", "a/5", "c/unchanged"}; !slices.Equal(order, want) {
		t.Fatalf("reconciled %v, want %v", order, want)
	}
}
