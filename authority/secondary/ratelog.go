package secondary

import (
	"sync"
	"time"
)

// RateLog lets through one log line per interval and counts the rest, so
// that a flood of refused requests (spoofed sources cost an attacker
// nothing) cannot flood the log; the count says how many were not shown.
type RateLog struct {
	Interval time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed uint64
}

// Allow reports whether to log now, and how many were held back since the
// last line that was.
func (r *RateLog) Allow(now time.Time) (ok bool, suppressed uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() && now.Sub(r.last) < r.Interval {
		r.suppressed++
		return false, 0
	}
	r.last = now
	suppressed, r.suppressed = r.suppressed, 0
	return true, suppressed
}
