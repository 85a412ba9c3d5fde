package fairshare

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// BenchmarkQueueAfterABacklog queues 100,000 requests over 50 namespaces at the initial list's low
// priority (a start at issue #20's largest N), hands every one out and marks it done, then reports the heap
// the queue still holds (retained-B): what a drained queue keeps of its largest backlog.
func BenchmarkQueueAfterABacklog(b *testing.B) {
	requests := make([]reconcile.Request, 100_000)
	for i := range requests {
		requests[i] = reconcile.Request{NamespacedName: types.NamespacedName{Namespace: fmt.Sprintf("team-%d", i%50), Name: fmt.Sprintf("user-%06d", i)}}
	}
	low := -100
	var retained uint64
	for b.Loop() {
		before := heapInUse()
		q := NewQueue("", workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, time.Minute)).(*Queue)
		q.AddWithOpts(priorityqueue.AddOpts{Priority: &low}, requests...)
		for range requests {
			item, _, _ := q.GetWithPriority()
			q.Done(item)
		}
		retained = heapInUse() - before
		runtime.KeepAlive(q)
		q.ShutDown()
	}
	b.ReportMetric(float64(retained), "retained-B")
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
