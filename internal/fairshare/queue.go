package fairshare

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Queue is a controller's workqueue that hands out requests round-robin by namespace: while several
// namespaces have requests queued, each Get takes the oldest request of the namespace whose turn it is
// (rotation), so a namespace with one request waits behind at most one of every other namespace's, not
// behind their whole backlog. Within a namespace it is first in, first out.
//
// It is client-go's workqueue (workqueue.Typed, with its delaying and rate-limiting layers) whose storage
// is this ordering, so it keeps that queue's semantics exactly: a request queued twice before it is handed
// out is handed out once; a request being processed is not handed out again until Done, and one added
// meanwhile is held and queued at Done; ShutDown, ShutDownWithDrain, AddAfter, AddRateLimited, Forget and
// NumRequeues; and the workqueue metrics under the controller's name.
//
// It also keeps controller-runtime's priorities (priorityqueue.PriorityQueue, the default queue it
// replaces): a higher priority is handed out first, and the fair rotation applies among the requests of
// the highest priority queued. controller-runtime queues the objects of a controller's initial list (a
// start or a leader change) with handler.LowPriority, so changes made meanwhile still go first. As there, a
// request added again keeps the highest priority asked for until it is handed out, and moves to the end of
// its namespace's requests of that priority when raised. Where the two queues differ, this one is
// client-go's: an Add does not cancel a pending AddAfter of the same request (the request is handed out now
// and again when the delay ends), and the priority of a delayed add is remembered only until the request is
// next handed out (it comes back at 0 if it was handed out meanwhile).
type Queue struct {
	workqueue.TypedRateLimitingInterface[reconcile.Request]
	store *store
}

var _ priorityqueue.PriorityQueue[reconcile.Request] = &Queue{}

// NewQueue is a controller.Options NewQueue: the fair queue of the controller named controllerName, with
// rateLimiter for AddRateLimited.
func NewQueue(controllerName string, rateLimiter workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
	return newQueue(controllerName, rateLimiter, clock.RealClock{})
}

func newQueue(name string, rateLimiter workqueue.TypedRateLimiter[reconcile.Request], clk clock.WithTicker) *Queue {
	s := &store{entries: map[reconcile.Request]*entry{}, asked: map[reconcile.Request]int{}, handedOut: map[reconcile.Request]int{}}
	queue := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[reconcile.Request]{Name: name, Clock: clk, Queue: s})
	delaying := workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[reconcile.Request]{
		Name: name, Clock: clk, Queue: queue})
	return &Queue{store: s, TypedRateLimitingInterface: workqueue.NewTypedRateLimitingQueueWithConfig(rateLimiter,
		workqueue.TypedRateLimitingQueueConfig[reconcile.Request]{Name: name, Clock: clk, DelayingQueue: delaying})}
}

// Add queues item at priority 0.
func (q *Queue) Add(item reconcile.Request) { q.AddWithOpts(priorityqueue.AddOpts{}, item) }

// AddAfter queues item at priority 0 once d has passed.
func (q *Queue) AddAfter(item reconcile.Request, d time.Duration) {
	q.AddWithOpts(priorityqueue.AddOpts{After: d}, item)
}

// AddRateLimited queues item at priority 0 when the rate limiter says.
func (q *Queue) AddRateLimited(item reconcile.Request) {
	q.AddWithOpts(priorityqueue.AddOpts{RateLimited: true}, item)
}

// AddWithOpts queues items at o.Priority (0 when nil), after o.After, or when the rate limiter says.
func (q *Queue) AddWithOpts(o priorityqueue.AddOpts, items ...reconcile.Request) {
	priority := ptr.Deref(o.Priority, 0)
	for _, item := range items {
		q.store.ask(item, priority)
		switch {
		case o.RateLimited:
			q.TypedRateLimitingInterface.AddRateLimited(item)
		case o.After > 0:
			q.TypedRateLimitingInterface.AddAfter(item, o.After)
		default:
			q.TypedRateLimitingInterface.Add(item)
		}
	}
}

// Get hands out the next request (see GetWithPriority).
func (q *Queue) Get() (reconcile.Request, bool) {
	item, _, shutdown := q.GetWithPriority()
	return item, shutdown
}

// GetWithPriority blocks until a request can be handed out, and returns it with the priority it was
// queued at; shutdown is true once the queue is shut down and (with ShutDownWithDrain) drained.
func (q *Queue) GetWithPriority() (reconcile.Request, int, bool) {
	item, shutdown := q.TypedRateLimitingInterface.Get()
	if shutdown {
		return item, 0, true
	}
	return item, q.store.priorityOf(item), false
}

// store is the workqueue.Queue under client-go's queue: which of the queued requests is handed out next.
// client-go calls Push, Pop, Touch and Len under its own lock; AddWithOpts and GetWithPriority call ask and
// priorityOf outside it, hence mu (taken after client-go's lock, never before it).
type store struct {
	mu sync.Mutex
	// levels hold the queued requests by priority, highest first; a level without requests is removed.
	levels  []*level
	entries map[reconcile.Request]*entry
	// asked is the highest priority asked for a request since it was last handed out: client-go queues a
	// request added while it is processed only at Done, and a delayed one when its time comes.
	asked map[reconcile.Request]int
	// handedOut is the priority a request was handed out at, until GetWithPriority takes it.
	handedOut map[reconcile.Request]int
	n         int
	// entriesPeak and askedPeak are the most entries and asked held since they were last replaced.
	entriesPeak, askedPeak int
}

type level struct {
	priority   int
	namespaces rotation[string, reconcile.Request]
}

type entry struct {
	level *level
	slot  slot[string, reconcile.Request]
}

var _ workqueue.Queue[reconcile.Request] = &store{}

// ask records that item was asked for at priority.
func (s *store) ask(item reconcile.Request, priority int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.asked[item]; !ok || priority > p {
		s.asked[item] = priority
		s.askedPeak = max(s.askedPeak, len(s.asked))
	}
}

func (s *store) priorityOf(item reconcile.Request) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.handedOut[item]
	delete(s.handedOut, item)
	return p
}

// Push queues item at the priority asked for it (0 if none was: a delayed request whose priority was
// handed out with an earlier copy of it).
func (s *store) Push(item reconcile.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	priority, ok := s.asked[item]
	if !ok {
		s.asked[item] = 0
		s.askedPeak = max(s.askedPeak, len(s.asked))
	}
	s.push(item, priority)
}

func (s *store) push(item reconcile.Request, priority int) {
	i, found := slices.BinarySearchFunc(s.levels, priority, func(l *level, p int) int { return cmp.Compare(p, l.priority) })
	if !found {
		s.levels = slices.Insert(s.levels, i, &level{priority: priority})
	}
	l := s.levels[i]
	s.entries[item] = &entry{level: l, slot: l.namespaces.push(item.Namespace, item)}
	s.entriesPeak = max(s.entriesPeak, len(s.entries))
	s.n++
}

// Touch is client-go's call for a request added again while queued: raised, it moves to the end of its
// namespace's requests of the new priority.
func (s *store) Touch(item reconcile.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[item]
	if !ok || s.asked[item] <= e.level.priority {
		return
	}
	s.remove(item, e)
	s.push(item, s.asked[item])
}

// Pop hands out the request whose turn it is at the highest priority queued. client-go calls it only when
// Len is not 0.
func (s *store) Pop() reconcile.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.levels[0]
	_, item, _ := l.namespaces.pop()
	s.n--
	if l.namespaces.len() == 0 {
		s.levels = slices.Delete(s.levels, 0, 1)
	}
	delete(s.entries, item)
	delete(s.asked, item)
	s.handedOut[item] = l.priority
	s.releaseDrainedMaps()
	return item
}

// releaseDrainedMaps replaces a map that has emptied after holding many requests: a Go map keeps the
// buckets of the most it ever held, and a start queues every object of the initial list (100,000 at issue
// #20's largest N). A map that stayed small is kept: replacing it would only make garbage.
func (s *store) releaseDrainedMaps() {
	const small = 1024
	if len(s.entries) == 0 && s.entriesPeak > small {
		s.entries, s.entriesPeak = map[reconcile.Request]*entry{}, 0
	}
	if len(s.asked) == 0 && s.askedPeak > small {
		s.asked, s.askedPeak = map[reconcile.Request]int{}, 0
	}
}

func (s *store) remove(item reconcile.Request, e *entry) {
	e.level.namespaces.remove(e.slot)
	s.n--
	delete(s.entries, item)
	if e.level.namespaces.len() == 0 {
		s.levels = slices.DeleteFunc(s.levels, func(l *level) bool { return l == e.level })
	}
}

func (s *store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}
