//go:build faults

package faults

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/certops/intune-cert-operator/test/graphsim"
)

// inFlightBound is how long after graphsim answered a 429 a request of the same app may still arrive
// without the operator having known of the 429 when it sent it: on loopback a request already sent arrives
// within milliseconds; 100 ms leaves room for a loaded 2-core machine's scheduling. It is counted from the
// moment graphsim had written the 429 (Entry.Answered), which can be well after the request arrived (it
// may wait on graphsim's lock while a write saves the state file); this bound is the one assumption of the
// app-window count.
const inFlightBound = 100 * time.Millisecond

// throttleReport is what graphsim's journal says about how the operator answered 429s.
//
// Two properties are measured, both from the journal's 429 entries (their arrival time T, tenant, app and
// Retry-After RA, which graphsim answers at once, so the 429 left at about T):
//
//  1. Per call (asserted): after a 429 to a request naming one resource's record or user (GET/PATCH/DELETE
//     on .../{id}, GET /users/{upn}; every such path belongs to one resource here), the next request with the
//     same method and path does not arrive before T+RA. The Graph client sleeps RA before retrying and hands
//     a longer wait to the controller as RequeueAfter, so any earlier repeat is a bug. A repeat sent by a
//     different operator process (the one that saw the 429 was killed, or lost the lease, in between) could
//     not know of the 429 and is counted apart, not failed. Collection paths (POST, lists) are shared by
//     many resources, so a repeat there may be another resource's call and proves nothing.
//  2. Per tenant and app (asserted unless FAULTS_LAX_THROTTLE): requests of the same tenant and app that
//     arrived in [A+inFlightBound, A+RA) of some other 429, A being when graphsim had written that 429 (the
//     journal's Answered; T if unknown). Intune throttles per app and tenant, so these requests were sent while the
//     app was known to be throttled. The operator's client waits per call, not per app: concurrent workers
//     keep sending, so this count is expected to be above zero. It is measured, not asserted.
type throttleReport struct {
	throttled    int      // 429 answers to Graph requests
	judged       int      // property 1: 429s of a per-resource call that was sent again
	earlyRetries []string // property 1 violations
	crossProcess int      // property 1 repeats excused because another process sent them
	appWindow    int      // property 2: requests sent into a known throttle window of their app
	requests     int      // Graph requests in the journal
}

func isGraph(e graphsim.Entry) bool { return strings.HasPrefix(e.Path, "/beta/") }

// collections are the last path segments that name a collection rather than one record.
var collections = map[string]bool{"userpfxcertificates": true, "manageddevicecertificatestates": true,
	"pfxrecryptionrequests": true, "pfxusercertificates": true, "users": true}

// perResourcePath reports whether a request's path names one record, i.e. one resource's call. A user
// lookup (/users/{upn}) is not one: every resource of that user (a sample and a set's child for the same
// person, say) resolves it, so a repeat may be another resource's first call.
func perResourcePath(path string) bool {
	path, _, _ = strings.Cut(path, "?")
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) < 2 {
		return false
	}
	last, parent := strings.ToLower(segs[len(segs)-1]), strings.ToLower(segs[len(segs)-2])
	return !collections[last] && collections[parent] && parent != "users"
}

// analyseThrottling checks the journal (all of it, across graphsim restarts) against the 429s in it.
// boundaries are the times an operator process was killed or started.
func analyseThrottling(journal []graphsim.Entry, boundaries []time.Time) throttleReport {
	var graph []graphsim.Entry
	for _, e := range journal {
		if isGraph(e) {
			graph = append(graph, e)
		}
	}
	sort.SliceStable(graph, func(i, j int) bool { return graph[i].Time.Before(graph[j].Time) })
	r := throttleReport{requests: len(graph)}
	crossed := func(from, to time.Time) bool {
		for _, b := range boundaries {
			if b.After(from) && !b.After(to) {
				return true
			}
		}
		return false
	}
	type app struct{ tenant, client string }
	throttles := map[app][]graphsim.Entry{}
	for i, e := range graph {
		if e.Status != http.StatusTooManyRequests {
			continue
		}
		r.throttled++
		a := app{strings.ToLower(e.TenantID), strings.ToLower(e.ClientID)}
		throttles[a] = append(throttles[a], e)
		if e.RetryAfter <= 0 || !perResourcePath(e.Path) {
			continue
		}
		for _, n := range graph[i+1:] {
			if n.Method != e.Method || n.Path != e.Path {
				continue
			}
			r.judged++
			if gap := n.Time.Sub(e.Time); gap < e.RetryAfter {
				if crossed(e.Time, n.Time) {
					r.crossProcess++
				} else {
					r.earlyRetries = append(r.earlyRetries, fmt.Sprintf("%s %s again %s after a 429 asking for %s",
						e.Method, e.Path, gap.Round(time.Millisecond), e.RetryAfter))
				}
			}
			break
		}
	}
	for _, n := range graph {
		for _, e := range throttles[app{strings.ToLower(n.TenantID), strings.ToLower(n.ClientID)}] {
			// The window opens when the 429 left graphsim (Answered), not when its request arrived: a request
			// can wait on graphsim's lock (a state save) in between, and the operator cannot know of a 429
			// before it is sent.
			answered := e.Time
			if e.Answered.After(answered) {
				answered = e.Answered
			}
			if d := n.Time.Sub(answered); d >= inFlightBound && d < e.RetryAfter {
				r.appWindow++
				break
			}
		}
	}
	return r
}
