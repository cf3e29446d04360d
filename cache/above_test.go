package cache

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

func TestClosestAbove(t *testing.T) {
	c, clk := newTestCache(t, Config{})
	put := func(owner, target string, ttl uint32) {
		t.Helper()
		e := &Entry{RRs: []dns.RR{dnstest.MustRR(t, owner+" 300 IN DNAME "+target)}, Rank: RankAnswerAuth}
		if !c.Put(owner, dns.TypeDNAME, dns.ClassINET, e, ttl) {
			t.Fatalf("Put %s refused", owner)
		}
	}
	put("example.", "example.net.", 300)
	put("b.a.example.", "other.net.", 100)
	// A negative DNAME entry (NODATA) rewrites nothing.
	c.Put("z.example.", dns.TypeDNAME, dns.ClassINET, &Entry{Rcode: dns.RcodeSuccess, Rank: RankAuthorityAuth}, 300)
	tests := []struct {
		name, want string
	}{
		{"x.b.a.example.", "b.a.example."},
		{"X.B.A.Example.", "b.a.example."},
		{"b.a.example.", "example."}, // the owner itself is not below its DNAME
		{"y.z.example.", "example."},
		{"example.", ""},
		{"x.example.org.", ""},
		{".", ""},
	}
	for _, tc := range tests {
		owner, _, ok := c.ClosestAbove(tc.name, dns.TypeDNAME, dns.ClassINET)
		if owner != tc.want || ok != (tc.want != "") {
			t.Errorf("ClosestAbove(%s) = %q %v, want %q", tc.name, owner, ok, tc.want)
		}
	}
	misses := c.Stats().Misses
	clk.Advance(150 * time.Second) // b.a.example's DNAME runs out
	if owner, _, _ := c.ClosestAbove("x.b.a.example.", dns.TypeDNAME, dns.ClassINET); owner != "example." {
		t.Errorf("after expiry: %q, want example.", owner)
	}
	if c.Stats().Misses != misses {
		t.Error("probing counted misses")
	}
}

// TestDNAMECount: the count that lets ClosestAbove skip its walk follows
// every way a DNAME entry comes and goes.
func TestDNAMECount(t *testing.T) {
	c, clk := newTestCache(t, Config{MaxEntries: 64, Shards: 1})
	dname := func(owner string) *Entry {
		return &Entry{RRs: []dns.RR{dnstest.MustRR(t, owner+" 300 IN DNAME example.net.")}, Rank: RankAnswerAuth}
	}
	check := func(step string, want int64) {
		t.Helper()
		if got := c.dnames.Load(); got != want {
			t.Fatalf("%s: %d DNAME entries counted, want %d", step, got, want)
		}
	}
	check("empty", 0)
	c.Put("a.example.", dns.TypeDNAME, dns.ClassINET, dname("a.example."), 300)
	c.Put("b.example.", dns.TypeDNAME, dns.ClassINET, dname("b.example."), 100)
	c.Put("a.example.", dns.TypeA, dns.ClassINET, positive(t, RankAnswerAuth, "192.0.2.1"), 300)
	check("two stored", 2)
	c.Put("a.example.", dns.TypeDNAME, dns.ClassINET, dname("a.example."), 300)
	check("replaced in place", 2)
	c.Delete("a.example.", dns.TypeDNAME, dns.ClassINET)
	check("deleted", 1)
	clk.Advance(101 * time.Second)
	if _, _, ok := c.ClosestAbove("x.b.example.", dns.TypeDNAME, dns.ClassINET); ok {
		t.Fatal("expired DNAME found")
	}
	check("expired and removed", 0)
	for i := range 100 { // more than MaxEntries: the LRU evicts
		owner := fmt.Sprintf("d%d.example.", i)
		c.Put(owner, dns.TypeDNAME, dns.ClassINET, dname(owner), 300)
	}
	check("after evictions", int64(c.Stats().Entries))
	c.Purge()
	check("purged", 0)
}
