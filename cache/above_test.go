package cache

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestClosestAbove(t *testing.T) {
	c, clk := newTestCache(t, Config{})
	put := func(owner, target string, ttl uint32) {
		t.Helper()
		e := &Entry{RRs: []dns.RR{mustRR(t, owner+" 300 IN DNAME "+target)}, Rank: RankAnswerAuth}
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
