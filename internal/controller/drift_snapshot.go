package controller

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// Drift detection from one listing per resync period (issue #20). Reading each record on its own costs one
// Graph read per certificate per period, and Intune's read budget is shared; one paged listing of the
// tenant's records (or of a profile's device states) holds them all in about N / page size reads.
//
// The listing is trusted in one direction only: a record it shows, with the content the resource wants, is
// in sync. A record it does not show, or shows with other content, is read on its own (GET) exactly as
// before, and only that answer decides a re-import or an update. So the service's list lag cannot cause a
// mistaken re-import: a record created after the listing (or created moments before it and not listed yet)
// is simply read once. A record deleted in Intune leaves the next listing (once the service's delete lag is
// over) and is then read, found missing and re-imported: within two resync periods plus that lag, instead of
// one period.

const (
	// snapshotListTimeout bounds one listing; it runs apart from the pass that asked for it (at 100,000
	// records and 50 ms a page it takes about a minute, more than a pass may).
	snapshotListTimeout = 10 * time.Minute
	// snapshotRetryAfter is how long after a failed listing the records are read one by one before another
	// listing is tried.
	snapshotRetryAfter = time.Minute
)

// driftSnapshot is one listing: what each record held, by a hash of its id.
type driftSnapshot[V any] struct {
	// takenAt is when the listing started: every record it shows was there at that time or after.
	takenAt time.Time
	records map[uint64]V
}

// lookup returns what the listing showed of record id.
func (s *driftSnapshot[V]) lookup(id string) (V, bool) {
	v, ok := s.records[idKey(id)]
	return v, ok
}

// driftSnapshots keeps one listing per key (connection and tenant; for device states also the profile),
// taken again once it is maxAge old. Listings run one at a time per key, in the background; the passes that
// need one wait for it (or give up with their context and read their record themselves). Safe for
// concurrent use.
type driftSnapshots[V any] struct {
	maxAge time.Duration
	clock  clock.PassiveClock

	mu    sync.Mutex
	byKey map[string]*snapshotSlot[V]
}

type snapshotSlot[V any] struct {
	current  *driftSnapshot[V]
	running  chan struct{} // closed when the listing in progress ends; nil when none runs
	failedAt time.Time
}

func newDriftSnapshots[V any](maxAge time.Duration, clk clock.PassiveClock) *driftSnapshots[V] {
	return &driftSnapshots[V]{maxAge: maxAge, clock: clk, byKey: map[string]*snapshotSlot[V]{}}
}

// listFunc lists a collection, handing each record's id and value to add.
type listFunc[V any] func(ctx context.Context, add func(id string, v V)) error

// get returns a listing of key younger than maxAge, taking one with list when there is none. It returns nil
// when there is no listing to go by (the last one failed within snapshotRetryAfter, or ctx ended while
// waiting): the caller then reads its record on its own. A nil *driftSnapshots has no listings.
func (s *driftSnapshots[V]) get(ctx context.Context, key string, list listFunc[V]) *driftSnapshot[V] {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	slot := s.byKey[key]
	if slot == nil {
		slot = &snapshotSlot[V]{}
		s.byKey[key] = slot
	}
	now := s.clock.Now()
	if slot.current != nil && now.Sub(slot.current.takenAt) < s.maxAge {
		defer s.mu.Unlock()
		return slot.current
	}
	if slot.running == nil && (slot.failedAt.IsZero() || now.Sub(slot.failedAt) >= snapshotRetryAfter) {
		slot.running = make(chan struct{})
		go s.take(ctx, key, slot, list, now)
	}
	running := slot.running
	s.mu.Unlock()
	if running == nil {
		return nil // failed lately: records are read one by one for a while
	}
	select {
	case <-running:
	case <-ctx.Done():
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if slot.current != nil && s.clock.Now().Sub(slot.current.takenAt) < s.maxAge {
		return slot.current
	}
	return nil
}

// take lists key's collection, apart from the pass that asked (which may end first), and installs it.
func (s *driftSnapshots[V]) take(passCtx context.Context, key string, slot *snapshotSlot[V], list listFunc[V], started time.Time) {
	logger := log.FromContext(passCtx).WithValues("listing", key)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(passCtx), snapshotListTimeout)
	defer cancel()
	records := map[uint64]V{}
	err := list(ctx, func(id string, v V) { records[idKey(id)] = v })
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		slot.failedAt = s.clock.Now()
		logger.Info("Listing for drift detection failed; records are read one by one meanwhile", "error", err.Error(), "retryAfter", snapshotRetryAfter)
	} else {
		slot.current, slot.failedAt = &driftSnapshot[V]{takenAt: started, records: records}, time.Time{}
		logger.V(1).Info("Listed records for drift detection", "records", len(records))
	}
	close(slot.running)
	slot.running = nil
}

// idKey is a record id's key in a listing: 8 bytes instead of the id's ~75 (100,000 records take ~3 MB).
// Ids compare without case, as Graph's do. Two ids with the same key would only make a record look listed
// whose content must still match what its own resource wants, which a record of another user and
// certificate does not.
func idKey(id string) uint64 { return fingerprint(strings.ToLower(id)) }

// fingerprint is 64 bits of SHA-256 over values, each length-prefixed: what a record holds, or what a
// resource wants it to hold, in 8 bytes. SHA-256, not a faster hash: an administrator who can edit a
// record must not be able to make a changed record look unchanged.
func fingerprint(values ...string) uint64 {
	h := sha256.New()
	for _, v := range values {
		fmt.Fprintf(h, "%d:", len(v))
		h.Write([]byte(v))
	}
	return binary.BigEndian.Uint64(h.Sum(nil))
}
