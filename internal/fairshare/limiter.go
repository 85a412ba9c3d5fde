package fairshare

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"
)

// Limiter is a write budget (a graph.WriteLimiter) that shares a rate.Limiter's tokens among namespaces:
// while several namespaces wait, it hands the tokens out round-robin by the namespace each Wait's context
// names (WithNamespace), first come, first served within one namespace; contexts that name none queue
// together as one more namespace.
//
// How: one waiter at a time holds the turn and waits on the rate.Limiter alone, so the rate.Limiter's own
// arrival order never matters; the others queue by namespace. When the holder has its token (or gives up),
// it hands the turn to the next waiter by rotation. A waiter whose context ends leaves its queue without
// having reserved anything; a holder whose context ends cancels its reservation, which gives the token back
// to the rate.Limiter for the next holder. No goroutine is started.
type Limiter struct {
	clock clock.Clock

	mu      sync.Mutex
	limiter *rate.Limiter
	waiting rotation[queueKey, *waiter]
	// busy says a waiter holds the turn. Whenever waiters queue, one holds it.
	busy bool
	// limitChanged is closed (and replaced) by SetLimit: the holder reserves again at the new rate.
	limitChanged chan struct{}

	// reserved, when set (tests), is told how long each reservation of the holder waits.
	reserved func(delay time.Duration)
}

// queueKey names a namespace's queue; contexts without a namespace share the one with none set.
type queueKey struct {
	namespace string
	none      bool
}

type waiter struct {
	turn    chan struct{} // closed when the waiter is given the turn
	granted bool          // given the turn (under mu)
	slot    slot[queueKey, *waiter]
}

// NewLimiter shares limiter's tokens among namespaces. limiter must not be used by anything else; change
// its rate through the Limiter's SetLimit. A nil limiter means no limit: Wait never waits.
func NewLimiter(limiter *rate.Limiter) *Limiter {
	return newLimiter(limiter, clock.RealClock{})
}

func newLimiter(limiter *rate.Limiter, clk clock.Clock) *Limiter {
	return &Limiter{clock: clk, limiter: limiter, limitChanged: make(chan struct{})}
}

// Limit is the rate.Limiter's rate.
func (l *Limiter) Limit() rate.Limit {
	if l.limiter == nil {
		return rate.Inf
	}
	return l.limiter.Limit()
}

// SetLimit changes the rate. A waiter already waiting for its token waits again at the new rate, for the
// part of the token not yet earned at the old one.
func (l *Limiter) SetLimit(limit rate.Limit) {
	if l.limiter == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limiter.SetLimitAt(l.clock.Now(), limit)
	close(l.limitChanged)
	l.limitChanged = make(chan struct{})
}

// errNever is what a budget that can never allow a write answers (a rate.Limiter with burst 0).
var errNever = errors.New("fairshare: the write budget allows no write")

// Wait blocks until the namespace of ctx is given a token, or ctx ends (then it returns ctx's error and
// has taken nothing).
func (l *Limiter) Wait(ctx context.Context) error {
	if l.limiter == nil {
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ns, ok := Namespace(ctx)
	key := queueKey{namespace: ns, none: !ok}

	l.mu.Lock()
	if !l.busy {
		l.busy = true
		l.waiting.served(key)
		l.mu.Unlock()
	} else {
		w := &waiter{turn: make(chan struct{})}
		w.slot = l.waiting.push(key, w)
		l.mu.Unlock()
		select {
		case <-w.turn:
		case <-ctx.Done():
			l.mu.Lock()
			granted := w.granted
			if !granted {
				l.waiting.remove(w.slot)
			}
			l.mu.Unlock()
			if granted {
				l.pass() // given the turn just now: hand it on unused
			}
			return ctx.Err()
		}
	}
	defer l.pass()
	return l.take(ctx)
}

// take waits for one token as the holder of the turn.
func (l *Limiter) take(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		l.mu.Lock()
		changed, hook := l.limitChanged, l.reserved
		now := l.clock.Now()
		r := l.limiter.ReserveN(now, 1)
		l.mu.Unlock()
		if !r.OK() {
			return errNever
		}
		delay := r.DelayFrom(now)
		if hook != nil {
			hook(delay)
		}
		if delay <= 0 {
			return nil
		}
		t := l.clock.NewTimer(delay)
		select {
		case <-t.C():
			return nil
		case <-ctx.Done():
			t.Stop()
			l.cancel(r)
			return ctx.Err()
		case <-changed:
			t.Stop()
			l.cancel(r) // and reserve again at the new rate
		}
	}
}

func (l *Limiter) cancel(r *rate.Reservation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r.CancelAt(l.clock.Now())
}

// pass hands the turn to the next waiter by rotation, or frees it when none waits.
func (l *Limiter) pass() {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, w, ok := l.waiting.pop()
	if !ok {
		l.busy = false
		return
	}
	w.granted = true
	close(w.turn)
}
