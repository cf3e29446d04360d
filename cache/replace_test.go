package cache

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/security"
)

// TestSecurityReplacement: at equal rank a live Secure entry keeps its
// place against everything but Secure data, a live Bogus one against the
// same data unvalidated; rank still comes first, and expiry frees the key.
func TestSecurityReplacement(t *testing.T) {
	const (
		addr1, addr2 = "192.0.2.1", "192.0.2.2"
		sig1         = "www.example. 300 IN RRSIG A 13 2 300 20300201000000 20300101000000 1 example. AAAA"
		sig2         = "www.example. 300 IN RRSIG A 13 2 300 20300201000000 20300101000000 1 example. BBBB"
	)
	type side struct {
		rank Rank
		sec  security.Status
		addr string
		sig  string
	}
	tests := []struct {
		name     string
		old, new side
		expire   bool
		wantPut  bool
	}{
		{"unvalidated does not replace secure", side{RankAnswerAuth, security.Secure, addr1, sig1}, side{RankAnswerAuth, security.Indeterminate, addr2, ""}, false, false},
		{"bogus does not replace secure", side{RankAnswerAuth, security.Secure, addr1, sig1}, side{RankAnswerAuth, security.Bogus, addr2, sig2}, false, false},
		{"insecure does not replace secure", side{RankAnswerAuth, security.Secure, addr1, sig1}, side{RankAnswerAuth, security.Insecure, addr2, ""}, false, false},
		{"identical unvalidated keeps secure (no TTL refresh)", side{RankAnswerAuth, security.Secure, addr1, sig1}, side{RankAnswerAuth, security.Indeterminate, addr1, sig1}, false, false},
		{"secure replaces secure", side{RankAnswerAuth, security.Secure, addr1, sig1}, side{RankAnswerAuth, security.Secure, addr2, sig2}, false, true},
		{"secure replaces unvalidated", side{RankAnswerAuth, security.Indeterminate, addr1, sig1}, side{RankAnswerAuth, security.Secure, addr1, sig1}, false, true},
		{"validation marks unvalidated bogus", side{RankAnswerAuth, security.Indeterminate, addr1, sig1}, side{RankAnswerAuth, security.Bogus, addr1, sig1}, false, true},
		{"unvalidated replaces unvalidated", side{RankAnswerAuth, security.Indeterminate, addr1, ""}, side{RankAnswerAuth, security.Indeterminate, addr2, ""}, false, true},
		{"unvalidated replaces insecure", side{RankAnswerAuth, security.Insecure, addr1, ""}, side{RankAnswerAuth, security.Indeterminate, addr2, ""}, false, true},
		{"unvalidated replaces expired secure", side{RankAnswerAuth, security.Secure, addr1, sig1}, side{RankAnswerAuth, security.Indeterminate, addr2, ""}, true, true},
		{"higher rank replaces secure", side{RankGlue, security.Secure, addr1, sig1}, side{RankAnswerAuth, security.Indeterminate, addr2, ""}, false, true},
		{"secure of lower rank does not replace", side{RankAnswerAuth, security.Indeterminate, addr1, ""}, side{RankGlue, security.Secure, addr2, sig2}, false, false},
		{"identical unvalidated keeps bogus", side{RankAnswerAuth, security.Bogus, addr1, sig1}, side{RankAnswerAuth, security.Indeterminate, addr1, sig1}, false, false},
		{"re-signed data replaces bogus", side{RankAnswerAuth, security.Bogus, addr1, sig1}, side{RankAnswerAuth, security.Indeterminate, addr1, sig2}, false, true},
		{"other data replaces bogus", side{RankAnswerAuth, security.Bogus, addr1, sig1}, side{RankAnswerAuth, security.Indeterminate, addr2, sig1}, false, true},
		{"secure replaces bogus", side{RankAnswerAuth, security.Bogus, addr1, sig1}, side{RankAnswerAuth, security.Secure, addr1, sig1}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, clk := newTestCache(t, Config{})
			entry := func(s side) *Entry {
				e := positive(t, s.rank, s.addr)
				e.Security = s.sec
				if s.sig != "" {
					e.Sigs = []dns.RR{dnstest.MustRR(t, s.sig)}
				}
				return e
			}
			first := entry(tc.old)
			if !c.Put("www.example.", dns.TypeA, dns.ClassINET, first, 300) {
				t.Fatal("first Put refused")
			}
			wantLeft := c.Remaining(first) - 10
			clk.Advance(10 * time.Second)
			if tc.expire {
				clk.Advance(300 * time.Second)
			}
			if got := c.Put("www.example.", dns.TypeA, dns.ClassINET, entry(tc.new), 300); got != tc.wantPut {
				t.Fatalf("second Put = %v, want %v", got, tc.wantPut)
			}
			e, ok := c.Get("www.example.", dns.TypeA, dns.ClassINET)
			if !ok {
				t.Fatal("Get missed")
			}
			want := tc.old
			if tc.wantPut {
				want = tc.new
			}
			if a := e.RRs[0].(*dns.A).A.String(); a != want.addr || e.Security != want.sec || e.Rank != want.rank {
				t.Fatalf("cached %s %v rank %v, want %s %v rank %v", a, e.Security, e.Rank, want.addr, want.sec, want.rank)
			}
			if !tc.wantPut && c.Remaining(e) != wantLeft {
				t.Fatalf("kept entry has %d s left, want %d (no refresh)", c.Remaining(e), wantLeft)
			}
		})
	}
}

// TestSecureNegativeKept: a live secure denial is not replaced by an
// unvalidated one, nor by forged data at the same rank.
func TestSecureNegativeKept(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	soa := dnstest.MustRR(t, "example. 300 IN SOA ns.example. host.example. 1 2 3 4 300")
	secure := &Entry{Rcode: dns.RcodeNameError, Authority: []dns.RR{soa}, Rank: RankAuthorityAuth, Security: security.Secure}
	if !c.Put("nx.example.", dns.TypeA, dns.ClassINET, secure, 300) {
		t.Fatal("first Put refused")
	}
	for _, e := range []*Entry{
		{Rcode: dns.RcodeNameError, Authority: []dns.RR{soa}, Rank: RankAuthorityAuth},
		{Rcode: dns.RcodeSuccess, RRs: []dns.RR{dnstest.MustRR(t, "nx.example. 300 IN A 192.0.2.9")}, Rank: RankAuthorityAuth},
	} {
		if c.Put("nx.example.", dns.TypeA, dns.ClassINET, e, 300) {
			t.Errorf("unvalidated %s replaced the secure denial", dns.RcodeToString[e.Rcode])
		}
	}
	if e, ok := c.Get("nx.example.", dns.TypeA, dns.ClassINET); !ok || e != secure {
		t.Fatalf("secure denial gone: %+v", e)
	}
}
