package validator

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/sextant-dns/sextant/security"
)

// TestNegativeTrustAnchorSetAtRunTime: an anchor added to the set turns
// validation off below it at once, removing it turns it back on.
func TestNegativeTrustAnchorSetAtRunTime(t *testing.T) {
	w := testWorld(t)
	set, err := NewNegativeTrustAnchors()
	if err != nil {
		t.Fatal(err)
	}
	v, _ := newTestValidator(t, w, WithNegativeTrustAnchorSet(set))
	status := func() security.Status {
		_, st, _ := v.Keys(context.Background(), "a.b.example.", NewBudget(DefaultLimits()))
		return st
	}
	if st := status(); st != security.Secure {
		t.Fatalf("without anchors: %v", st)
	}
	if added, err := set.Add("EXAMPLE"); !added || err != nil {
		t.Fatalf("Add: %v %v", added, err)
	}
	if st := status(); st != security.Insecure {
		t.Fatalf("below an added anchor: %v", st)
	}
	if removed, _ := set.Remove("example."); !removed {
		t.Fatal("Remove did not find the anchor")
	}
	if st := status(); st != security.Secure {
		t.Fatalf("after removal: %v", st)
	}
}

func TestNegativeTrustAnchorsSet(t *testing.T) {
	set, err := NewNegativeTrustAnchors("b.example", "A.example.", "a.example.")
	if err != nil {
		t.Fatal(err)
	}
	if got := set.List(); !slices.Equal(got, []string{"a.example.", "b.example."}) {
		t.Errorf("List = %q", got)
	}
	if added, _ := set.Add("a.example."); added {
		t.Error("a name already there was added again")
	}
	if removed, _ := set.Remove("c.example."); removed {
		t.Error("a name not there was removed")
	}
	if !set.Covers("x.A.example.") || set.Covers("xa.example.") || set.Covers("example.") {
		t.Error("Covers does not follow label boundaries")
	}
	for _, bad := range []string{"", "a..b", string(make([]byte, 300))} {
		if _, err := set.Add(bad); err == nil {
			t.Errorf("Add(%.20q) accepted", bad)
		}
	}
	if err := set.Set([]string{"ok.", "bad..name"}); err == nil || len(set.List()) != 2 {
		t.Errorf("a Set with a bad name changed the set: %v %q", err, set.List())
	}
	// Readers and writers at once (run with -race).
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if i%2 == 0 {
					set.Add("c.example.")
					set.Remove("c.example.")
				} else {
					set.Covers("www.c.example.")
				}
			}
		}()
	}
	wg.Wait()
}
