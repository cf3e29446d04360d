// Package histogram counts durations in fixed buckets with atomic adds: no
// lock and no allocation per observation, so that the packages that must
// not import a metrics library (server, resolver) can still keep latency
// distributions that a collector reads when scraped.
package histogram

import (
	"sync/atomic"
	"time"
)

// LatencyBounds are the upper bounds used for answer and upstream
// latencies: from 50 µs (a cache hit inside the process) to 5 s (past
// the resolver's client deadline nothing is answered).
var LatencyBounds = []time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second,
}

// Histogram is a fixed-bucket duration histogram, safe for concurrent use.
type Histogram struct {
	bounds []time.Duration
	counts []atomic.Uint64 // len(bounds)+1: the last is above every bound
	sum    atomic.Int64    // nanoseconds
}

// New makes a histogram with the ascending upper bounds (kept, not copied).
func New(bounds []time.Duration) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// Observe counts d in the first bucket whose bound is at least d.
func (h *Histogram) Observe(d time.Duration) {
	i := 0
	for i < len(h.bounds) && d > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// Snapshot is a histogram's state at one time.
type Snapshot struct {
	// Bounds are the buckets' upper bounds; Counts[i] the observations
	// at most Bounds[i] (cumulative, as Prometheus wants them).
	Bounds []time.Duration
	Counts []uint64
	// Count is every observation, those above the last bound included.
	Count uint64
	Sum   time.Duration
}

// Snapshot reads the counters (each atomically, not all at one instant).
func (h *Histogram) Snapshot() Snapshot {
	s := Snapshot{Bounds: h.bounds, Counts: make([]uint64, len(h.bounds)), Sum: time.Duration(h.sum.Load())}
	for i := range h.counts {
		s.Count += h.counts[i].Load()
		if i < len(h.bounds) {
			s.Counts[i] = s.Count
		}
	}
	return s
}
