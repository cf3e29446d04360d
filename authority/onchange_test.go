package authority

import (
	"fmt"
	"strings"
	"testing"
)

// TestOnChange: every change of the served zones is told, after the new
// data answers, with whether a zone was added.
func TestOnChange(t *testing.T) {
	zone := func(origin, addr string) *Zone {
		t.Helper()
		z, err := ParseZone(strings.NewReader("$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A "+addr+"\n"), origin, "test")
		if err != nil {
			t.Fatal(err)
		}
		return z
	}
	s := NewServer()
	var got []bool
	s.OnChange(func(added bool) {
		if !s.Covers("ns.a.test.") && added {
			t.Error("told of an added zone before it answers")
		}
		got = append(got, added)
	})
	a1 := zone("a.test.", "127.0.0.1")
	s.Set(a1) // added
	a2 := zone("a.test.", "127.0.0.2")
	s.Set(a2)                                   // changed
	s.Replace(a2, zone("a.test.", "127.0.0.3")) // changed by its owner
	s.Replace(a1, zone("a.test.", "127.0.0.4")) // not current: no change
	s.Remove("a.test.")                         // removed
	if want := "[true false false false]"; fmt.Sprint(got) != want {
		t.Fatalf("told %s, want %s", fmt.Sprint(got), want)
	}
}
