package controller

import (
	"math/rand/v2"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// resyncDue says whether a resource last synced at last should be compared with Intune again.
func resyncDue(last *metav1.Time, period time.Duration, now time.Time) bool {
	return last == nil || !now.Before(last.Add(period))
}

// untilResync is how long until the next drift check, with jitter so resources imported together do not
// all read Graph in the same second.
func untilResync(last *metav1.Time, period time.Duration, now time.Time) time.Duration {
	if last == nil {
		return 0
	}
	if d := last.Add(period).Sub(now); d > 0 {
		return d + time.Duration(rand.Int64N(int64(period)/10+1))
	}
	return time.Second
}

// jittered is period plus up to a tenth of it.
func jittered(period time.Duration) time.Duration {
	return period + time.Duration(rand.Int64N(int64(period)/10+1))
}

func timePtr(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	return &metav1.Time{Time: t.UTC()}
}

// timeOf is the time a metav1.Time holds, nil when it is unset.
func timeOf(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	return &t.Time
}
