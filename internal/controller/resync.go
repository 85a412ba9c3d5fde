package controller

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/certops/intune-cert-operator/internal/connection"
	"github.com/certops/intune-cert-operator/internal/graph"
)

// What a resync of an unchanged resource costs (issue #20): one listing of the tenant's records per period
// for every resource together (drift_snapshot.go), no Secret data read, and no status written.
//
// lastSyncTime: a drift check that finds Intune as wanted changes nothing a user reads, so it writes no
// status, and lastSyncTime then stays the time of the last pass that wrote to Intune or changed the
// status; it is refreshed at the latest every syncTimeRefresh resync periods (a day at the default hour),
// so a resource that is checked still shows a recent time. When each check happened is kept in memory
// (passMemo) for the schedule; after a restart every resource is checked once, which the listing makes
// cheap.
const syncTimeRefresh = 24

// syncTimeStale says whether lastSyncTime is due for a refresh by a pass that changes nothing else.
func syncTimeStale(last *metav1.Time, period time.Duration, now time.Time) bool {
	return last == nil || !now.Before(last.Add(syncTimeRefresh*period))
}

// resyncState is what makes a resync cheap, shared by the resource kinds. A nil *resyncState turns it off:
// every pass reads its Secrets and each record on its own, as before.
type resyncState struct {
	memo *passMemo
	// userPfx lists a tenant's userPfxCertificates: a fingerprint of each (userPfxFingerprint).
	userPfx *driftSnapshots[uint64]
	// deviceStates lists a profile's managedDeviceCertificateStates, whole (they compare field by field).
	deviceStates *driftSnapshots[graph.ManagedDeviceCertificateState]
}

func newResyncState(period time.Duration, clk clock.PassiveClock) *resyncState {
	return &resyncState{memo: &passMemo{byUID: map[uint64]memoEntry{}},
		userPfx:      newDriftSnapshots[uint64](period, clk),
		deviceStates: newDriftSnapshots[graph.ManagedDeviceCertificateState](period, clk)}
}

// passMemo remembers, per resource, what its last successful pass read and pushed, so that the next pass
// can tell, from the manager's caches alone, that nothing it depends on changed: then it needs neither the
// Secret's data nor the connector key. 24 bytes and a map slot per resource (about 5 MB at 100,000).
type passMemo struct {
	mu    sync.Mutex
	byUID map[uint64]memoEntry
}

type memoEntry struct {
	// inputs fingerprints what the pass depended on: the resource's generation, status hash and record
	// id, its Secrets' resourceVersions, its connection and connector key (see userPfxInputs).
	inputs uint64
	// record fingerprints the record as the resource wants it (userPfxFingerprint).
	record uint64
	// checked is when (Unix nanoseconds) a pass last found Intune as wanted, or pushed it.
	checked int64
}

func (m *passMemo) get(uid types.UID) (memoEntry, bool) {
	if m == nil {
		return memoEntry{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byUID[idKey(string(uid))]
	return e, ok
}

func (m *passMemo) put(uid types.UID, e memoEntry) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byUID[idKey(string(uid))] = e
}

func (m *passMemo) forget(uid types.UID) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.byUID, idKey(string(uid)))
}

// lastChecked is the later of lastSyncTime and the last check this process remembers.
func (e memoEntry) lastChecked(lastSync *metav1.Time) *metav1.Time {
	if e.checked != 0 && (lastSync == nil || time.Unix(0, e.checked).After(lastSync.Time)) {
		return &metav1.Time{Time: time.Unix(0, e.checked)}
	}
	return lastSync
}

// secretVersions reads the resourceVersions of Secrets from the manager's metadata cache (no API request).
// ok is false if one is not there (missing, or outside the namespaces the cache holds): the pass then reads
// them live, and reports what it finds.
func secretVersions(ctx context.Context, cache client.Reader, namespace string, names ...string) (string, bool) {
	versions := make([]string, 0, len(names))
	for _, name := range names {
		m := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}}
		if err := cache.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, m); err != nil {
			return "", false
		}
		versions = append(versions, namespace+"/"+name+"@"+m.ResourceVersion)
	}
	return strings.Join(versions, ","), true
}

// connectionInputs is what of a connection a pushed record depends on, or ok=false when the access rules
// depend on more than the connection and the certificate (trusted issuers: a CA bundle and the time),
// which only a full pass checks.
func connectionInputs(conn *connection.Connection) (string, bool) {
	if conn.Access != nil && conn.Access.TrustedIssuers != nil {
		return "", false
	}
	access, err := json.Marshal(conn.Access)
	if err != nil {
		return "", false
	}
	return conn.Ref + "\x00" + conn.TenantID + "\x00" + string(access), true
}

// memoOf is the memo entry of a resource; none when s is nil.
func (s *resyncState) memoOf(uid types.UID) memoEntry {
	if s == nil {
		return memoEntry{}
	}
	memo, _ := s.memo.get(uid)
	return memo
}

// forget drops what is remembered of a resource being deleted.
func (s *resyncState) forget(uid types.UID) {
	if s != nil {
		s.memo.forget(uid)
	}
}
