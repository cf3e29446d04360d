package resolver

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/validator"
)

// TestMarkEntriesHeld: validation marks the very entries the answer holds,
// each with its own piece's state, and leaves alone an entry another
// question replaced meanwhile (no second lookup finds "the same" data).
func TestMarkEntriesHeld(t *testing.T) {
	r := &Resolver{cache: cache.New(cache.Config{Clock: clock.System{}})}
	put := func(name string, rtype uint16, rr string) rrset {
		e := &cache.Entry{RRs: []dns.RR{dnstest.MustRR(t, rr)}, Rank: cache.RankAnswerAuth}
		if !r.cache.Put(name, rtype, dns.ClassINET, e, 300) {
			t.Fatalf("Put %s refused", rr)
		}
		return rrset{name: name, rtype: rtype, rrs: e.RRs, entry: e}
	}
	cname := put("alias.example.", dns.TypeCNAME, "alias.example. 300 IN CNAME www.example.")
	a := put("www.example.", dns.TypeA, "www.example. 300 IN A 192.0.2.1")
	out := &outcome{rcode: dns.RcodeSuccess, sets: []rrset{cname, a}}
	piece := func(st security.Status, ttl uint32) validator.Piece {
		return validator.Piece{Result: validator.Result{Status: st, EDE: validator.EDENone, TTL: ttl}, Checked: true}
	}
	res := validator.AnswerResult{
		Result: validator.Result{Status: security.Insecure, EDE: validator.EDENone},
		Sets:   []validator.Piece{piece(security.Secure, 100), piece(security.Insecure, 0)},
	}

	// Another question replaces the A RRset before the marks.
	fresh := put("www.example.", dns.TypeA, "www.example. 300 IN A 192.0.2.2")
	r.markEntries(out, res, dns.ClassINET)

	e, _ := r.cache.Get("alias.example.", dns.TypeCNAME, dns.ClassINET)
	if e.Security != security.Secure || r.cache.Remaining(e) > 100 {
		t.Errorf("CNAME: %v, TTL %d; want secure, capped at 100", e.Security, r.cache.Remaining(e))
	}
	if cname.entry.Security != security.Indeterminate {
		t.Error("the stored entry was modified in place")
	}
	e, _ = r.cache.Get("www.example.", dns.TypeA, dns.ClassINET)
	if e != fresh.entry || e.Security != security.Indeterminate {
		t.Errorf("the replacement was marked %v: only the entry validated may be", e.Security)
	}
}
