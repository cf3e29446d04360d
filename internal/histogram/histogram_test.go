package histogram

import (
	"slices"
	"testing"
	"time"
)

func TestHistogram(t *testing.T) {
	h := New([]time.Duration{time.Millisecond, 10 * time.Millisecond})
	for _, d := range []time.Duration{0, time.Millisecond, 2 * time.Millisecond, 10 * time.Millisecond, time.Second} {
		h.Observe(d)
	}
	s := h.Snapshot()
	if want := []uint64{2, 4}; !slices.Equal(s.Counts, want) {
		t.Errorf("cumulative counts %v, want %v", s.Counts, want)
	}
	if s.Count != 5 {
		t.Errorf("count %d, want 5", s.Count)
	}
	if want := 1013 * time.Millisecond; s.Sum != want {
		t.Errorf("sum %v, want %v", s.Sum, want)
	}
}

func TestHistogramObserveAllocatesNothing(t *testing.T) {
	h := New(LatencyBounds)
	if n := testing.AllocsPerRun(100, func() { h.Observe(time.Millisecond) }); n != 0 {
		t.Errorf("%v allocations per Observe, want 0", n)
	}
}
