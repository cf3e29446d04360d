package secondary

import (
	"testing"
	"time"
)

func TestRateLog(t *testing.T) {
	r := &RateLog{Interval: time.Second}
	t0 := time.Unix(1000, 0)
	if ok, n := r.Allow(t0); !ok || n != 0 {
		t.Fatalf("first: %v %d", ok, n)
	}
	for i := 0; i < 5; i++ {
		if ok, _ := r.Allow(t0.Add(time.Duration(i) * 100 * time.Millisecond)); ok {
			t.Fatalf("line %d within the interval let through", i)
		}
	}
	if ok, n := r.Allow(t0.Add(time.Second)); !ok || n != 5 {
		t.Fatalf("after the interval: %v, %d held back, want 5", ok, n)
	}
}
