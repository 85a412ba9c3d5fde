package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	intunev1alpha1 "github.com/certops/intune-cert-operator/api/v1alpha1"
	"github.com/certops/intune-cert-operator/internal/testutil"
	"github.com/certops/intune-cert-operator/test/graphsim"
)

// tracker watches every UserPfxCertificate and remembers, per resource, when it was first seen Ready
// with each thumbprint and when its lastSyncTime moved. Times are when the watch event arrived, so a
// wait reports when the last resource got there, not when a poll noticed.
type tracker struct {
	mu      sync.Mutex
	objects map[string]*observed
}

type observed struct {
	readyAt  map[string]time.Time // thumbprint -> first time seen Ready with it and nothing left to delete
	lastSync metav1.Time
	syncs    []time.Time // arrival of each lastSyncTime change
	// passes are the lastSyncTime values seen: when each pass that wrote status started (to the second).
	passes []time.Time
	// recordIDs and upn name the resource in Graph requests.
	recordIDs map[string]bool
	upn       string
}

func startTracker(ctx context.Context, cfg *rest.Config) (*tracker, error) {
	c, err := cache.New(cfg, cache.Options{Scheme: testutil.Scheme(),
		DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		return nil, err
	}
	informer, err := c.GetInformer(ctx, &intunev1alpha1.UserPfxCertificate{})
	if err != nil {
		return nil, err
	}
	t := &tracker{objects: map[string]*observed{}}
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { t.observe(obj) },
		UpdateFunc: func(_, obj any) { t.observe(obj) },
	}); err != nil {
		return nil, err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the benchmark's watch of UserPfxCertificates did not sync")
	}
	return t, nil
}

func (t *tracker) observe(obj any) {
	o, ok := obj.(*intunev1alpha1.UserPfxCertificate)
	if !ok {
		return
	}
	now := time.Now()
	key := client.ObjectKeyFromObject(o).String()
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.objects[key]
	if st == nil {
		st = &observed{readyAt: map[string]time.Time{}, recordIDs: map[string]bool{}}
		t.objects[key] = st
	}
	if last := o.Status.LastSyncTime; last != nil && !last.Equal(&st.lastSync) {
		if !st.lastSync.IsZero() {
			st.syncs = append(st.syncs, now)
		}
		st.lastSync = *last
		st.passes = append(st.passes, last.Time)
	}
	for _, id := range append([]string{o.Status.ID}, o.Status.RetiredIDs...) {
		if id != "" {
			st.recordIDs[strings.ToLower(id)] = true
		}
	}
	if o.Status.UserPrincipalName != "" {
		st.upn = strings.ToLower(o.Status.UserPrincipalName)
	}
	ready := meta.FindStatusCondition(o.Status.Conditions, intunev1alpha1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionTrue || o.Status.ObservedGeneration != o.Generation ||
		o.Status.ID == "" || len(o.Status.RetiredIDs) > 0 {
		return
	}
	thumbprint := strings.ToLower(o.Status.Thumbprint)
	if _, seen := st.readyAt[thumbprint]; !seen {
		st.readyAt[thumbprint] = now
	}
}

// readyAt is when the resource was first Ready with thumbprint ("" = any thumbprint, the earliest).
func (t *tracker) readyAt(key, thumbprint string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.objects[key]
	if st == nil {
		return time.Time{}, false
	}
	if thumbprint != "" {
		at, ok := st.readyAt[strings.ToLower(thumbprint)]
		return at, ok
	}
	var first time.Time
	for _, at := range st.readyAt {
		if first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return first, !first.IsZero()
}

// waitReady waits until every resource of want (key -> thumbprint, "" = any) has been Ready with its
// thumbprint, and returns when the last one got there. On timeout it says how many did not.
func (t *tracker) waitReady(ctx context.Context, what string, want map[string]string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	p := newProgress(what, len(want))
	defer p.done()
	pending := make(map[string]string, len(want))
	for k, v := range want {
		pending[k] = v
	}
	var last time.Time
	for {
		for key, thumbprint := range pending {
			if at, ok := t.readyAt(key, thumbprint); ok {
				last = maxTime(last, at)
				delete(pending, key)
				p.add(1)
			}
		}
		if len(pending) == 0 {
			return last, nil
		}
		if time.Now().After(deadline) {
			return last, fmt.Errorf("%s: %d of %d not Ready within %s", what, len(pending), len(want), timeout)
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitAny waits until one resource of want (key -> thumbprint) has been Ready with its thumbprint, and
// returns when it got there.
func (t *tracker) waitAny(ctx context.Context, what string, want map[string]string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		for key, thumbprint := range want {
			if at, ok := t.readyAt(key, thumbprint); ok {
				return at, nil
			}
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%s: none of %d Ready within %s", what, len(want), timeout)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// readyCount is how many resources of want had been Ready with their thumbprint by at.
func (t *tracker) readyCount(want map[string]string, at time.Time) int {
	n := 0
	for key, thumbprint := range want {
		if readyAt, ok := t.readyAt(key, thumbprint); ok && !readyAt.After(at) {
			n++
		}
	}
	return n
}

// passReads is how a window's Graph reads of certificates divide among the reconcile passes that made them.
type passReads struct {
	Passes       int `json:"passes"`
	Reads        int `json:"reads"`
	MaxPerPass   int `json:"maxReadsPerPass"`
	Unattributed int `json:"unattributedReads"`
	// Extra describes up to 10 reads made by a pass that had already read once, to see why.
	Extra []string `json:"extraReads,omitempty"`
}

// attributeReads charges each certificate read (GET of a record or of a user) to the pass of its resource
// that made it: the latest lastSyncTime at or before the read, since a pass sets lastSyncTime to its start.
// It counts the passes that started in [from, to) and their reads; entries must cover every read of those
// passes. Reads no resource claims are counted apart.
func (t *tracker) attributeReads(entries []graphsim.Entry, from, to time.Time) passReads {
	t.mu.Lock()
	defer t.mu.Unlock()
	byID, byUPN := map[string]*observed{}, map[string]*observed{}
	var r passReads
	for _, st := range t.objects {
		for id := range st.recordIDs {
			byID[id] = st
		}
		if st.upn != "" {
			byUPN[st.upn] = st
		}
		for _, p := range st.passes {
			if !p.Before(from) && p.Before(to) {
				r.Passes++
			}
		}
	}
	perPass := map[*observed]map[time.Time]int{}
	names := map[*observed]string{}
	for key, st := range t.objects {
		names[st] = key
	}
	for _, e := range entries {
		st, ok := certificateRead(e, byID, byUPN)
		if !ok {
			continue
		}
		if st == nil {
			if !e.Time.Before(from) && e.Time.Before(to) {
				r.Unattributed++
			}
			continue
		}
		var pass time.Time
		for _, p := range st.passes {
			if !p.After(e.Time) {
				pass = p
			}
		}
		if pass.Before(from) || !pass.Before(to) {
			continue // a pass outside the window
		}
		if perPass[st] == nil {
			perPass[st] = map[time.Time]int{}
		}
		perPass[st][pass]++
		r.Reads++
		if perPass[st][pass] > 1 && len(r.Extra) < 10 {
			r.Extra = append(r.Extra, fmt.Sprintf("%s: pass of %s: %s %s at %s", names[st],
				pass.Format(time.TimeOnly), e.Method, e.Path, e.Time.Format("15:04:05.000")))
		}
		r.MaxPerPass = max(r.MaxPerPass, perPass[st][pass])
	}
	return r
}

// certificateRead says whether e reads a certificate record or a user, and whose (nil: nobody's).
func certificateRead(e graphsim.Entry, byID, byUPN map[string]*observed) (*observed, bool) {
	if e.Method != http.MethodGet {
		return nil, false
	}
	path, _, _ := strings.Cut(e.Path, "?")
	segs := strings.Split(strings.TrimPrefix(path, "/beta/"), "/")
	switch {
	case len(segs) == 2 && strings.EqualFold(segs[0], "users"):
		upn, err := url.PathUnescape(segs[1])
		if err != nil {
			return nil, true
		}
		return byUPN[strings.ToLower(upn)], true
	case len(segs) == 3 && strings.EqualFold(segs[1], "userPfxCertificates"):
		id, err := url.PathUnescape(segs[2])
		if err != nil {
			return nil, true
		}
		return byID[strings.ToLower(id)], true
	}
	return nil, false
}

// count is how many resources the tracker has seen.
func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.objects)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// progress prints how far a long step got, every 10 seconds.
type progress struct {
	what  string
	total int
	count atomic.Int64
	start time.Time
	stop  chan struct{}
	once  sync.Once
}

func newProgress(what string, total int) *progress {
	p := &progress{what: what, total: total, start: time.Now(), stop: make(chan struct{})}
	go func() {
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
				logf("  %s: %d/%d after %s", p.what, p.count.Load(), p.total, time.Since(p.start).Round(time.Second))
			}
		}
	}()
	return p
}

func (p *progress) add(n int) { p.count.Add(int64(n)) }

func (p *progress) done() { p.once.Do(func() { close(p.stop) }) }

func logf(format string, args ...any) {
	fmt.Printf("%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
