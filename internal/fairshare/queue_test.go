package fairshare

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/workqueue"
	testingclock "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func req(s string) reconcile.Request {
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		panic("want namespace/name, got " + s)
	}
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}
}

func str(r reconcile.Request) string { return r.Namespace + "/" + r.Name }

// testQueue is a Queue on a fake clock, with an exponential rate limiter of 1 s base.
func testQueue(t *testing.T) (*Queue, *testingclock.FakeClock) {
	t.Helper()
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	q := newQueue("", workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](time.Second, time.Minute), clk)
	t.Cleanup(q.ShutDown)
	return q, clk
}

// getWithin is Get, failing the test instead of blocking forever.
func getWithin(t *testing.T, q *Queue) (reconcile.Request, int, bool) {
	t.Helper()
	type got struct {
		item     reconcile.Request
		priority int
		shutdown bool
	}
	ch := make(chan got, 1)
	go func() {
		item, priority, shutdown := q.GetWithPriority()
		ch <- got{item, priority, shutdown}
	}()
	select {
	case g := <-ch:
		return g.item, g.priority, g.shutdown
	case <-time.After(wait.ForeverTestTimeout):
		t.Fatalf("Get blocked")
		return reconcile.Request{}, 0, false
	}
}

// TestQueueSemantics runs scripts against the queue. Steps:
//
//	add ns/name [priority]   AddWithOpts at that priority (default: Add)
//	after ns/name d [prio]   AddAfter (AddWithOpts with After and that priority)
//	limited ns/name          AddRateLimited (the limiter's delay is 1 s, doubling per requeue)
//	get ns/name [priority]   Get hands out this request (at that priority)
//	done ns/name             Done
//	len n                    Len is n
//	step duration            the fake clock moves on
//	requeues ns/name n       NumRequeues is n
//	forget ns/name           Forget
//	shutdown                 ShutDown
//	closed                   Get says the queue is shut down
//	shutting                 ShuttingDown is true
//
// The semantics cases are client-go's workqueue tests (queue_test.go, delaying_queue_test.go,
// rate_limiting_queue_test.go) written as scripts; the others are what this queue adds.
func TestQueueSemantics(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script []string
	}{
		// client-go's semantics.
		{"Len counts queued requests; one queued twice counts once (TestLen)",
			[]string{"add ns/foo", "len 1", "add ns/bar", "len 2", "add ns/foo", "len 2"}},
		{"a request queued twice is handed out once (TestCollapse)",
			[]string{"add ns/bar", "add ns/bar", "get ns/bar", "done ns/bar", "len 0"}},
		{"a request added while processed is queued again at Done (TestReinsert)",
			[]string{"add ns/foo", "get ns/foo", "add ns/foo", "len 0", "done ns/foo", "len 1", "get ns/foo", "done ns/foo", "len 0"}},
		{"a request added twice while processed is queued once at Done (TestCollapseWhileProcessing)",
			[]string{"add ns/foo", "get ns/foo", "add ns/foo", "add ns/foo", "add ns/bar", "get ns/bar", "len 0",
				"done ns/foo", "len 1", "get ns/foo", "done ns/foo", "done ns/bar", "len 0"}},
		{"a request being processed is not handed out again before Done",
			[]string{"add a/1", "add a/2", "get a/1", "add a/1", "get a/2", "len 0", "done a/1", "get a/1"}},
		{"Done of a request not added again queues nothing",
			[]string{"add ns/foo", "get ns/foo", "done ns/foo", "len 0", "add ns/foo", "get ns/foo"}},
		{"after ShutDown, Get drains what is queued, then reports shutdown; adds are ignored",
			[]string{"add ns/a", "add ns/b", "shutdown", "shutting", "add ns/c", "len 2", "get ns/a", "get ns/b", "closed"}},
		{"AddAfter queues once the delay passed (TestSimpleQueue)",
			[]string{"after ns/foo 50ms", "len 0", "step 60ms", "get ns/foo", "done ns/foo", "step 10s", "len 0"}},
		{"AddAfter twice: the earlier time wins, once (TestDeduping)",
			[]string{"after ns/foo 50ms", "after ns/foo 70ms", "step 60ms", "get ns/foo", "done ns/foo", "step 20ms", "len 0",
				"after ns/foo 50ms", "after ns/foo 30ms", "step 40ms", "get ns/foo", "done ns/foo", "step 20ms", "len 0"}},
		{"delayed requests come in the order of their times (TestAddTwoFireEarly)",
			[]string{"after ns/first 1s", "after ns/second 50ms", "step 60ms", "get ns/second", "after ns/third 2s",
				"step 1s", "get ns/first", "step 2s", "get ns/third"}},
		{"AddAfter of 0 queues at once",
			[]string{"after ns/foo 0s", "get ns/foo"}},
		{"AddRateLimited waits as the rate limiter says and counts requeues until Forget (TestRateLimitingQueue)",
			[]string{"limited ns/one", "requeues ns/one 1", "step 999ms", "len 0", "step 1ms", "get ns/one", "done ns/one",
				"limited ns/one", "requeues ns/one 2", "step 1s", "len 0", "step 1s", "get ns/one", "done ns/one",
				"forget ns/one", "requeues ns/one 0", "limited ns/one", "step 1s", "get ns/one"}},

		// Fairness.
		{"round-robin by namespace, FIFO within one",
			[]string{"add a/1", "add a/2", "add a/3", "add a/4", "add b/1", "add b/2", "add c/1",
				"get a/1", "get b/1", "get c/1", "get a/2", "get b/2", "get a/3", "get a/4", "len 0"}},
		{"a namespace that arrives behind another's backlog is next",
			[]string{"add a/1", "add a/2", "add a/3", "add a/4", "get a/1", "get a/2", "add b/1", "get b/1", "get a/3", "get a/4"}},
		{"a newcomer goes before the namespace just served, not before the others waiting",
			[]string{"add a/1", "add a/2", "add c/1", "add c/2", "get a/1", "add b/1", "get c/1", "get b/1", "get a/2", "get c/2"}},
		{"cluster-scoped requests (no namespace) are one more namespace",
			[]string{"add a/1", "add a/2", "add /x", "add /y", "get a/1", "get /x", "get a/2", "get /y"}},
		{"a request added again keeps its place",
			[]string{"add a/1", "add a/2", "add a/1", "get a/1", "get a/2"}},
		{"a request requeued at Done joins its namespace's end",
			[]string{"add a/1", "add a/2", "get a/1", "add a/1", "done a/1", "get a/2", "get a/1"}},

		// Priorities, as controller-runtime's priority queue.
		{"a higher priority goes first; the rotation applies within a priority",
			[]string{"add a/1 -100", "add a/2 -100", "add b/1 -100", "add c/1", "add c/2", "add d/1",
				"get c/1 0", "get d/1 0", "get c/2 0", "get a/1 -100", "get b/1 -100", "get a/2 -100"}},
		{"a request added again at a higher priority moves up, to the end of that priority",
			[]string{"add a/1 -100", "add a/2 -100", "add a/3", "add a/1", "get a/3 0", "get a/1 0", "get a/2 -100"}},
		{"a request added again at a lower priority keeps the higher",
			[]string{"add a/1", "add a/1 -100", "add a/2", "get a/1 0", "get a/2 0"}},
		{"a request added while processed is queued at Done at the priority asked",
			[]string{"add a/1 -100", "get a/1 -100", "add a/1 -100", "add b/1", "done a/1", "get b/1 0", "get a/1 -100"}},
		{"a delayed request keeps its priority",
			[]string{"add b/1 -100", "after a/1 1s", "step 1s", "len 2", "get a/1 0", "get b/1 -100",
				"after a/2 1s -100", "add c/1", "step 1s", "len 2", "get c/1 0", "get a/2 -100"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, clk := testQueue(t)
			for i, step := range tc.script {
				f := strings.Fields(step)
				at := fmt.Sprintf("step %d %q", i+1, step)
				arg := func(n int) string {
					if n >= len(f) {
						t.Fatalf("%s: missing argument", at)
					}
					return f[n]
				}
				atoi := func(s string) int {
					n, err := strconv.Atoi(s)
					if err != nil {
						t.Fatalf("%s: %v", at, err)
					}
					return n
				}
				duration := func(s string) time.Duration {
					d, err := time.ParseDuration(s)
					if err != nil {
						t.Fatalf("%s: %v", at, err)
					}
					return d
				}
				switch f[0] {
				case "add":
					if len(f) > 2 {
						p := atoi(f[2])
						q.AddWithOpts(priorityqueue.AddOpts{Priority: &p}, req(arg(1)))
					} else {
						q.Add(req(arg(1)))
					}
				case "after":
					if len(f) > 3 {
						p := atoi(f[3])
						q.AddWithOpts(priorityqueue.AddOpts{After: duration(arg(2)), Priority: &p}, req(arg(1)))
					} else {
						q.AddAfter(req(arg(1)), duration(arg(2)))
					}
				case "limited":
					q.AddRateLimited(req(arg(1)))
				case "get":
					item, priority, shutdown := getWithin(t, q)
					if shutdown || str(item) != arg(1) {
						t.Fatalf("%s: got %s (shutdown %t)", at, str(item), shutdown)
					}
					if len(f) > 2 && priority != atoi(f[2]) {
						t.Fatalf("%s: handed out at priority %d", at, priority)
					}
				case "done":
					q.Done(req(arg(1)))
				case "len":
					// A delayed request may still be on its way in: wait a moment for it to show when Len is
					// expected to grow, and check at once otherwise.
					want := atoi(arg(1))
					_ = wait.PollUntilContextTimeout(t.Context(), time.Millisecond, 100*time.Millisecond, true,
						func(context.Context) (bool, error) { return q.Len() == want, nil })
					if got := q.Len(); got != want {
						t.Fatalf("%s: Len = %d", at, got)
					}
				case "step":
					// The delaying queue's loop must have taken in what was added after before time moves.
					time.Sleep(10 * time.Millisecond)
					clk.Step(duration(arg(1)))
				case "requeues":
					if got := q.NumRequeues(req(arg(1))); got != atoi(arg(2)) {
						t.Fatalf("%s: NumRequeues = %d", at, got)
					}
				case "forget":
					q.Forget(req(arg(1)))
				case "shutdown":
					q.ShutDown()
				case "closed":
					if _, _, shutdown := getWithin(t, q); !shutdown {
						t.Fatalf("%s: Get handed out a request after shutdown and drain", at)
					}
				case "shutting":
					if !q.ShuttingDown() {
						t.Fatalf("%s: not shutting down", at)
					}
				default:
					t.Fatalf("%s: unknown step", at)
				}
			}
		})
	}
}

func TestQueueServesANamespaceArrivingBehindABacklogNext(t *testing.T) {
	q, _ := testQueue(t)
	for i := range 2000 {
		q.Add(req(fmt.Sprintf("a/%d", i)))
	}
	// Eight workers hold eight of a's requests, as the operator's do while they wait for write tokens.
	for i := range 8 {
		if item, _, _ := getWithin(t, q); str(item) != fmt.Sprintf("a/%d", i) {
			t.Fatalf("get %d = %s, want a's requests in order", i, str(item))
		}
	}
	q.Add(req("b/only"))
	if item, _, _ := getWithin(t, q); str(item) != "b/only" {
		t.Fatalf("after b's request was added the next Get handed out %s, want b/only", str(item))
	}
	for i := 8; i < 2000; i++ {
		if item, _, _ := getWithin(t, q); str(item) != fmt.Sprintf("a/%d", i) {
			t.Fatalf("got %s, want a/%d: a's requests stay in order", str(item), i)
		}
	}
	if q.Len() != 0 {
		t.Fatalf("Len = %d after every request was handed out", q.Len())
	}
}

// controller-runtime uses a queue that is a priorityqueue.PriorityQueue as it is, and wraps any other in
// a shim that drops priorities; the handlers then queue the initial list at handler.LowPriority.
func TestNewQueueIsAControllerRuntimePriorityQueue(t *testing.T) {
	q := NewQueue("", workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	if _, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); !ok {
		t.Fatalf("NewQueue returned a %T, not a priorityqueue.PriorityQueue", q)
	}
}

// The cases of client-go's TestBasic and TestAddWhileProcessing: many producers and consumers, requests
// added again while processed, both ways of shutting down; nothing is lost and nothing handed out twice at
// once.
func TestQueueConcurrentProducersAndConsumers(t *testing.T) {
	for _, drain := range []bool{false, true} {
		t.Run(fmt.Sprintf("drain=%t", drain), func(t *testing.T) {
			q, _ := testQueue(t)
			const producers, perProducer, consumers = 20, 50, 8
			var producing sync.WaitGroup
			for p := range producers {
				producing.Go(func() {
					for j := range perProducer {
						q.Add(req(fmt.Sprintf("ns-%d/item-%d", p%5, j%10)))
					}
				})
			}
			var (
				mu         sync.Mutex
				processing = map[reconcile.Request]bool{}
				seen       = map[reconcile.Request]int{}
				consuming  sync.WaitGroup
			)
			for range consumers {
				consuming.Go(func() {
					for {
						item, shutdown := q.Get()
						if shutdown {
							return
						}
						mu.Lock()
						if processing[item] {
							t.Errorf("%s handed out while being processed", str(item))
						}
						processing[item] = true
						seen[item]++
						again := seen[item] < 2
						mu.Unlock()
						if again {
							q.Add(item) // dirty while processing: queued again at Done
						}
						mu.Lock()
						processing[item] = false
						mu.Unlock()
						q.Done(item)
					}
				})
			}
			producing.Wait()
			// Every request was added at least twice (by a producer and once by its first consumer); wait
			// until each was processed twice before shutting down.
			if err := wait.PollUntilContextTimeout(t.Context(), 5*time.Millisecond, wait.ForeverTestTimeout, true,
				func(context.Context) (bool, error) {
					mu.Lock()
					defer mu.Unlock()
					for _, n := range seen {
						if n < 2 {
							return false, nil
						}
					}
					return len(seen) == 50, nil
				}); err != nil {
				t.Fatalf("not every request was processed twice: %v", err)
			}
			if drain {
				q.ShutDownWithDrain()
			} else {
				q.ShutDown()
			}
			q.Add(req("late/added-after-shutdown"))
			consuming.Wait()
			if q.Len() != 0 {
				t.Fatalf("Len = %d after shutdown", q.Len())
			}
			if seen[req("late/added-after-shutdown")] != 0 {
				t.Fatalf("a request added after shutdown was handed out")
			}
		})
	}
}

// client-go's TestQueueDrainageUsingShutDownWithDrain: ShutDownWithDrain returns once the requests handed
// out are Done.
func TestQueueShutDownWithDrainWaitsForDone(t *testing.T) {
	q, _ := testQueue(t)
	q.Add(req("a/foo"))
	q.Add(req("b/bar"))
	first, _, _ := getWithin(t, q)
	second, _, _ := getWithin(t, q)
	drained := make(chan struct{})
	go func() { defer close(drained); q.ShutDownWithDrain() }()
	if _, _, shutdown := getWithin(t, q); !shutdown {
		t.Fatal("Get handed out a request after ShutDownWithDrain with none queued")
	}
	select {
	case <-drained:
		t.Fatal("ShutDownWithDrain returned while requests were being processed")
	case <-time.After(50 * time.Millisecond):
	}
	q.Done(first)
	q.Done(second)
	select {
	case <-drained:
	case <-time.After(wait.ForeverTestTimeout):
		t.Fatal("ShutDownWithDrain did not return after Done")
	}
}

// client-go's TestNoQueueDrainageUsingShutDown and TestForceQueueShutdownUsingShutDown: ShutDown does not
// wait for Done, and ends a ShutDownWithDrain that does.
func TestQueueShutDownDoesNotWaitForDone(t *testing.T) {
	for _, drainFirst := range []bool{false, true} {
		q, _ := testQueue(t)
		q.Add(req("a/foo"))
		q.Add(req("a/bar"))
		getWithin(t, q)
		getWithin(t, q)
		finished := make(chan struct{})
		go func() {
			defer close(finished)
			if drainFirst {
				q.ShutDownWithDrain()
			} else {
				q.ShutDown()
			}
		}()
		if drainFirst {
			if _, _, shutdown := getWithin(t, q); !shutdown {
				t.Fatal("Get handed out a request after ShutDownWithDrain")
			}
			q.ShutDown()
		}
		select {
		case <-finished:
		case <-time.After(wait.ForeverTestTimeout):
			t.Fatalf("shutting down (drain first: %t) waited for requests never Done", drainFirst)
		}
	}
}

// client-go's TestQueueDrainageUsingShutDownWithDrainWithDirtyItem: a request added again while processed
// is still handed out during the drain.
func TestQueueDrainHandsOutARequestAddedWhileProcessed(t *testing.T) {
	q, _ := testQueue(t)
	q.Add(req("a/foo"))
	gotten, _, _ := getWithin(t, q)
	q.Add(req("a/foo"))
	drained := make(chan struct{})
	go func() { defer close(drained); q.ShutDownWithDrain() }()
	if _, _, shutdown := getWithin(t, q); !shutdown {
		t.Fatal("Get handed out a request being processed")
	}
	q.Done(gotten)
	again, _, shutdown := getWithin(t, q)
	if shutdown || again != gotten {
		t.Fatalf("after Done the request added meanwhile was not handed out (got %s, shutdown %t)", str(again), shutdown)
	}
	q.Done(again)
	if _, _, shutdown := getWithin(t, q); !shutdown {
		t.Fatal("the drained queue handed out more")
	}
	<-drained
}

// A queue that drained a backlog larger than the maps it keeps (releaseDrainedMaps) works as before: a
// request added while the last one is processed is held until Done, and priorities still order what comes.
func TestQueueAfterADrainedBacklog(t *testing.T) {
	q, _ := testQueue(t)
	low := -100
	for i := range 3000 {
		q.AddWithOpts(priorityqueue.AddOpts{Priority: &low}, req(fmt.Sprintf("ns-%d/r%d", i%7, i)))
	}
	var last reconcile.Request
	for range 3000 {
		last, _, _ = getWithin(t, q)
		if q.Len() > 0 {
			q.Done(last)
		}
	}
	if n := len(q.store.entries) + len(q.store.asked); n != 0 || q.store.entriesPeak != 0 || q.store.askedPeak != 0 {
		t.Fatalf("after the backlog: %d requests kept, peaks %d and %d", n, q.store.entriesPeak, q.store.askedPeak)
	}
	q.Add(last) // processing: held until Done
	q.AddWithOpts(priorityqueue.AddOpts{Priority: &low}, req("ns-a/low"))
	q.Add(req("ns-b/high"))
	q.Done(last)
	var got []string
	for range 3 {
		item, _, _ := getWithin(t, q)
		got = append(got, str(item))
		q.Done(item)
	}
	if want := []string{"ns-b/high", str(last), "ns-a/low"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("handed out %v, want %v", got, want)
	}
}
