package fairshare

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/apimachinery/pkg/util/wait"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/certops/intune-cert-operator/internal/graph"
)

var _ graph.WriteLimiter = &Limiter{}

// limiterTest drives a Limiter of one token per second (burst 1) on a fake clock: waiters are started one
// at a time, in a known order, and each step of the clock by a second lets exactly one of them through.
type limiterTest struct {
	t      *testing.T
	l      *Limiter
	clk    *testingclock.FakeClock
	served chan string
	errs   chan error
	wg     sync.WaitGroup
}

func newLimiterTest(t *testing.T) *limiterTest {
	clk := testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	lt := &limiterTest{t: t, clk: clk, l: newLimiter(rate.NewLimiter(1, 1), clk),
		served: make(chan string, 1000), errs: make(chan error, 1000)}
	t.Cleanup(lt.wg.Wait)
	return lt
}

// queued is how many waiters queue behind the holder of the turn.
func (lt *limiterTest) queued() int {
	lt.l.mu.Lock()
	defer lt.l.mu.Unlock()
	return lt.l.waiting.len()
}

func (lt *limiterTest) eventually(what string, cond func() bool) {
	lt.t.Helper()
	if err := wait.PollUntilContextTimeout(lt.t.Context(), time.Millisecond, wait.ForeverTestTimeout, true,
		func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		lt.t.Fatalf("waiting until %s: %v", what, err)
	}
}

// wait starts a Wait with ctx, named name, and returns once it waits: as the holder of the turn on the
// clock, or in its namespace's queue.
func (lt *limiterTest) wait(ctx context.Context, name string) {
	lt.t.Helper()
	before, timers := lt.queued(), lt.clk.Waiters()
	lt.wg.Go(func() {
		if err := lt.l.Wait(ctx); err != nil {
			lt.errs <- fmt.Errorf("%s: %w", name, err)
			return
		}
		lt.served <- name
	})
	lt.eventually(name+" waits", func() bool { return lt.queued() > before || lt.clk.Waiters() > timers })
}

// tick moves the clock on by a second, once the holder of the turn waits on it, and returns who was served.
func (lt *limiterTest) tick() string {
	lt.t.Helper()
	lt.eventually("the holder of the turn waits for its token", lt.clk.HasWaiters)
	lt.clk.Step(time.Second)
	select {
	case name := <-lt.served:
		return name
	case err := <-lt.errs:
		lt.t.Fatalf("a waiter failed: %v", err)
	case <-time.After(wait.ForeverTestTimeout):
		lt.t.Fatal("nobody was served after a token's time")
	}
	return ""
}

// spend takes the burst token, so the next waiter waits for the clock.
func (lt *limiterTest) spend() {
	lt.t.Helper()
	if err := lt.l.Wait(context.Background()); err != nil {
		lt.t.Fatal(err)
	}
}

func (lt *limiterTest) idle() {
	lt.t.Helper()
	lt.l.mu.Lock()
	defer lt.l.mu.Unlock()
	if lt.l.busy || lt.l.waiting.len() != 0 || len(lt.l.waiting.fifos) != 0 {
		lt.t.Fatalf("limiter not idle: busy %t, %d waiting in %d queues", lt.l.busy, lt.l.waiting.len(), len(lt.l.waiting.fifos))
	}
}

func in(namespace string) context.Context { return WithNamespace(context.Background(), namespace) }

func TestLimiterServesANamespaceArrivingBehindABacklogWithinTwoTokens(t *testing.T) {
	lt := newLimiterTest(t)
	lt.spend()
	for i := range 50 {
		lt.wait(in("a"), fmt.Sprintf("a-%02d", i))
	}
	lt.wait(in("b"), "b")
	var order []string
	for range 51 {
		order = append(order, lt.tick())
	}
	if i := slices.Index(order, "b"); i < 0 || i > 1 {
		t.Fatalf("b was served as token %d after it arrived, want within 2: %v", i+1, order)
	}
	a := slices.DeleteFunc(slices.Clone(order), func(s string) bool { return s == "b" })
	if !slices.IsSorted(a) {
		t.Fatalf("a's waiters were not served in their order: %v", a)
	}
	lt.idle()
}

func TestLimiterRotatesAmongNamespacesWithWaiters(t *testing.T) {
	lt := newLimiterTest(t)
	lt.spend()
	lt.wait(in("x"), "x") // holds the turn
	for i := range 3 {
		for _, ns := range []string{"a", "b", "c"} {
			lt.wait(in(ns), fmt.Sprintf("%s%d", ns, i))
		}
	}
	lt.wait(context.Background(), "none0") // no namespace: a queue of its own, not the cluster-scoped ""
	lt.wait(in(""), "cluster0")
	lt.wait(context.Background(), "none1")
	var order []string
	for range 13 {
		order = append(order, lt.tick())
	}
	want := []string{"x", "a0", "b0", "c0", "none0", "cluster0", "a1", "b1", "c1", "none1", "a2", "b2", "c2"}
	if !slices.Equal(order, want) {
		t.Fatalf("served %v, want %v", order, want)
	}
	lt.idle()
}

func TestLimiterQueuedWaiterCancelledTakesNothing(t *testing.T) {
	lt := newLimiterTest(t)
	lt.spend()
	lt.wait(in("a"), "a0")
	ctx, cancel := context.WithCancel(in("b"))
	lt.wait(ctx, "b0")
	lt.wait(in("a"), "a1")
	cancel()
	select {
	case err := <-lt.errs:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled waiter returned %v", err)
		}
	case <-time.After(wait.ForeverTestTimeout):
		t.Fatal("a cancelled waiter kept waiting")
	}
	lt.eventually("b0 left its queue", func() bool { return lt.queued() == 1 })
	// One token per step: b0 took none, a1 is next after a0.
	if got := []string{lt.tick(), lt.tick()}; !slices.Equal(got, []string{"a0", "a1"}) {
		t.Fatalf("served %v, want a0, a1", got)
	}
	lt.idle()
}

func TestLimiterHolderCancelledGivesItsTokenBack(t *testing.T) {
	lt := newLimiterTest(t)
	lt.spend()
	ctx, cancel := context.WithCancel(in("a"))
	lt.wait(ctx, "a0") // holds the turn, its token a second away
	lt.wait(in("b"), "b0")
	reserved := make(chan time.Duration, 1)
	lt.l.mu.Lock()
	lt.l.reserved = func(d time.Duration) { reserved <- d }
	lt.l.mu.Unlock()
	lt.eventually("a0 waits on the clock", lt.clk.HasWaiters)
	cancel()
	if err := <-lt.errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled holder returned %v", err)
	}
	// b0 now holds the turn with the token a0 reserved and gave back: it is served after the one second
	// a0 would have waited, not two.
	if d := <-reserved; d != time.Second {
		t.Fatalf("b0 waits %s for the token a0 gave back, want 1s", d)
	}
	if got := lt.tick(); got != "b0" {
		t.Fatalf("served %s, want b0", got)
	}
	lt.idle()
	// The bucket is exactly as if a0 had never asked: empty now, one token a second later.
	if lt.l.limiter.AllowN(lt.clk.Now(), 1) {
		t.Fatal("a token is left over: the cancelled reservation was given back twice")
	}
	if !lt.l.limiter.AllowN(lt.clk.Now().Add(time.Second), 1) {
		t.Fatal("the token of the cancelled reservation was lost")
	}
}

func TestLimiterCancelledContextTakesNothing(t *testing.T) {
	lt := newLimiterTest(t)
	ctx, cancel := context.WithCancel(in("a"))
	cancel()
	if err := lt.l.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a cancelled context = %v", err)
	}
	lt.idle()
	lt.spend() // the burst token is still there: this does not wait on the fake clock
}

func TestLimiterRateChangeAppliesToTheWaiterHoldingTheTurn(t *testing.T) {
	lt := newLimiterTest(t)
	reserved := make(chan time.Duration, 10)
	lt.l.reserved = func(d time.Duration) { reserved <- d }
	expect := func(want time.Duration) {
		t.Helper()
		select {
		case got := <-reserved:
			if got < want-time.Millisecond || got > want+time.Millisecond {
				t.Fatalf("the holder waits %s for its token, want %s", got, want)
			}
		case <-time.After(wait.ForeverTestTimeout):
			t.Fatalf("the holder did not reserve (want a wait of %s)", want)
		}
	}
	lt.spend()
	expect(0)
	lt.wait(in("a"), "a0")
	lt.wait(in("a"), "a1")
	expect(time.Second)

	// Faster: a0's token, a second away at 1 per second, is 100 ms away at 10 per second.
	lt.l.SetLimit(10)
	if lt.l.Limit() != 10 {
		t.Fatalf("Limit = %v after SetLimit(10)", lt.l.Limit())
	}
	expect(100 * time.Millisecond)
	lt.clk.Step(100 * time.Millisecond)
	if got := <-lt.served; got != "a0" {
		t.Fatalf("served %s, want a0", got)
	}

	// Slower, half-way through a1's wait: the half token earned at 10 per second stays earned, the other
	// half takes 5 s at 0.1 per second.
	expect(100 * time.Millisecond)
	lt.clk.Step(50 * time.Millisecond)
	lt.l.SetLimit(0.1)
	expect(5 * time.Second)
	lt.clk.Step(5 * time.Second)
	if got := <-lt.served; got != "a1" {
		t.Fatalf("served %s, want a1", got)
	}
	lt.idle()
}

// Many namespaces and waiters at a high rate, some cancelled: everyone not cancelled is served, and the
// limiter ends idle. (Run with -race.)
func TestLimiterUnderConcurrency(t *testing.T) {
	l := NewLimiter(rate.NewLimiter(5000, 1))
	var wg sync.WaitGroup
	var mu sync.Mutex
	served := map[string]int{}
	for i := range 200 {
		ns := fmt.Sprintf("ns-%d", i%7)
		wg.Go(func() {
			ctx := in(ns)
			if i%9 == 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Duration(i%3)*time.Millisecond)
				defer cancel()
			}
			for range 5 {
				if err := l.Wait(ctx); err != nil {
					if ctx.Err() == nil {
						t.Errorf("%s: %v", ns, err)
					}
					return
				}
				mu.Lock()
				served[ns]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.busy || l.waiting.len() != 0 {
		t.Fatalf("limiter not idle after every waiter returned: busy %t, %d waiting", l.busy, l.waiting.len())
	}
	if len(served) != 7 {
		t.Fatalf("served namespaces %v", served)
	}
}
