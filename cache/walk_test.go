package cache

import (
	"fmt"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// walked lists what Walk shows as "name type kind".
func walked(c *Cache) []string {
	var got []string
	c.Walk(func(it Item) bool {
		got = append(got, fmt.Sprintf("%s %s %d", it.Name, dns.TypeToString[it.Type], it.Kind))
		return true
	})
	slices.Sort(got)
	return got
}

func fill(t *testing.T, c *Cache) {
	t.Helper()
	for _, n := range []string{"Example.", "www.example.", "a.b.example.", "notexample.", "other."} {
		e := &Entry{Rcode: dns.RcodeSuccess, RRs: []dns.RR{dnstest.MustRR(t, n+" 300 IN A 192.0.2.1")}, Rank: RankAnswerAuth}
		if !c.Put(n, dns.TypeA, dns.ClassINET, e, 300) {
			t.Fatal("Put refused")
		}
	}
	nx := &Entry{Rcode: dns.RcodeNameError, Rank: RankAnswerAuth}
	if !c.PutNXDomain("gone.example.", dns.ClassINET, nx, 60) {
		t.Fatal("PutNXDomain refused")
	}
	if !c.PutZoneFailure("broken.", dns.ClassINET, &Entry{Rcode: dns.RcodeServerFailure}, 5) {
		t.Fatal("PutZoneFailure refused")
	}
}

func TestWalkShowsEveryKind(t *testing.T) {
	c, _ := newTestCache(t, Config{Shards: 4})
	fill(t, c)
	want := []string{"a.b.example. A 0", "broken. None 2", "example. A 0", "gone.example. None 1",
		"notexample. A 0", "other. A 0", "www.example. A 0"}
	if got := walked(c); !slices.Equal(got, want) {
		t.Errorf("Walk = %q, want %q", got, want)
	}
	n := 0
	c.Walk(func(Item) bool { n++; return n < 3 })
	if n != 3 {
		t.Errorf("Walk went on after false: %d calls", n)
	}
}

// TestWalkHoldsNoLock: fn may write to the cache, which would deadlock if
// Walk held a shard's lock while calling it.
func TestWalkHoldsNoLock(t *testing.T) {
	c, _ := newTestCache(t, Config{Shards: 1})
	fill(t, c)
	c.Walk(func(it Item) bool {
		c.Delete(it.Name, it.Type, it.Class)
		c.Put("new.", dns.TypeA, dns.ClassINET, &Entry{Rcode: dns.RcodeSuccess, RRs: []dns.RR{dnstest.MustRR(t, "new. 300 IN A 192.0.2.9")}}, 300)
		return true
	})
}

func TestDeleteBelow(t *testing.T) {
	c, _ := newTestCache(t, Config{Shards: 4})
	fill(t, c)
	if n := c.DeleteBelow("EXAMPLE."); n != 4 {
		t.Errorf("DeleteBelow removed %d, want 4", n)
	}
	// notexample. shares a suffix but is not below example.
	want := []string{"broken. None 2", "notexample. A 0", "other. A 0"}
	if got := walked(c); !slices.Equal(got, want) {
		t.Errorf("after DeleteBelow: %q, want %q", got, want)
	}
	if c.Stats().Entries != 3 {
		t.Errorf("Entries = %d", c.Stats().Entries)
	}
	if n := c.DeleteBelow("."); n != 3 || c.Stats().Entries != 0 {
		t.Errorf("DeleteBelow(.) removed %d, %d left", n, c.Stats().Entries)
	}
}
