package resolver

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/internal/dnstest"
)

// withoutAA answers from the zones of s with the AA flag cleared, as a
// badly run name server does (issue 15 point 2).
func withoutAA(s *testServer) func(w dns.ResponseWriter, r *dns.Msg) bool {
	return func(w dns.ResponseWriter, r *dns.Msg) bool {
		s.mu.Lock()
		zones := s.zones
		s.mu.Unlock()
		m := answerFrom(zones, r)
		m.Authoritative = false
		_ = w.WriteMsg(m)
		return true
	}
}

// TestNonAuthAnswersAccepted: the only server of a zone answers without
// AA. Data, a CNAME chain, NXDOMAIN with its SOA and NODATA with its SOA
// are the answer (as in Unbound and Knot Resolver), not a lame server and
// SERVFAIL; the data is cached below authoritative rank (RFC 2181 5.4.1).
func TestNonAuthAnswersAccepted(t *testing.T) {
	for _, tc := range []struct {
		name      string
		qname     string
		qtype     uint16
		rcode     int
		addrs     []string
		cachedFor string
	}{
		{"data", "www.example.test.", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.80"}, "www.example.test."},
		{"CNAME chain", "alias.example.test.", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.80"}, "alias.example.test."},
		{"NXDOMAIN with SOA", "nx.example.test.", dns.TypeA, dns.RcodeNameError, nil, ""},
		{"NODATA with SOA", "www.example.test.", dns.TypeTXT, dns.RcodeSuccess, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := memHierarchy(t, "alias.example.test. CNAME www.example.test.")
			h.zone.set(func(s *testServer) { s.hook = withoutAA(s) })
			r := h.resolver(t, nil)
			res, err := r.Resolve(ctxT(t), tc.qname, tc.qtype)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if res.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[res.Rcode], dns.RcodeToString[tc.rcode])
			}
			got := answerAddrs(res)
			if len(got) != len(tc.addrs) || len(got) > 0 && got[0] != tc.addrs[0] {
				t.Fatalf("answer %v, want %v", got, tc.addrs)
			}
			if tc.rcode == dns.RcodeSuccess && tc.addrs == nil && len(res.Answer) != 0 {
				t.Fatalf("NODATA with answer %v", res.Answer)
			}
			if tc.cachedFor == "" {
				return
			}
			rtype := dns.TypeA
			if tc.cachedFor != tc.qname || tc.qname == "alias.example.test." {
				rtype = dns.TypeCNAME
			}
			e, ok := r.cache.Get(tc.cachedFor, rtype, dns.ClassINET)
			if !ok || e.Rank != cache.RankAnswerNonAuth {
				t.Fatalf("cached %v (found %v), want rank %v", e, ok, cache.RankAnswerNonAuth)
			}
		})
	}
}

// chainReply answers alias.example.test./A with a CNAME to www and www's
// A record addr, with AA set or not (the name in the case asked, 0x20);
// other names go to the zones.
func chainReply(t testing.TB, aa bool, addr string) func(w dns.ResponseWriter, r *dns.Msg) bool {
	cname := dnstest.MustRR(t, "alias.example.test. 60 CNAME www.example.test.")
	a := dnstest.MustRR(t, "www.example.test. 60 A "+addr)
	return func(w dns.ResponseWriter, r *dns.Msg) bool {
		if len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, "alias.example.test.") {
			return false
		}
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = aa
		c := dns.Copy(cname)
		c.Header().Name = r.Question[0].Name
		m.Answer = []dns.RR{c, dns.Copy(a)}
		_ = w.WriteMsg(m)
		return true
	}
}

// wwwCached returns the cached address and rank of www.example.test./A.
func wwwCached(t *testing.T, r *Resolver) (string, cache.Rank) {
	t.Helper()
	e, ok := r.cache.Get("www.example.test.", dns.TypeA, dns.ClassINET)
	if !ok || len(e.RRs) != 1 {
		t.Fatalf("www.example.test./A not cached: %v", e)
	}
	return e.RRs[0].(*dns.A).A.String(), e.Rank
}

// TestNonAuthAnswerReplacedByAuthoritative: data cached from a reply
// without AA gives way to the same RRset from an authoritative reply
// (RFC 2181 5.4.1: higher credibility replaces lower).
func TestNonAuthAnswerReplacedByAuthoritative(t *testing.T) {
	h := memHierarchy(t)
	r := h.resolver(t, nil)
	h.zone.set(func(s *testServer) { s.hook = withoutAA(s) })
	res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA)
	if err != nil || res.Rcode != dns.RcodeSuccess {
		t.Fatalf("non-AA answer: rcode %d err %v", res.Rcode, err)
	}
	if addr, rank := wwwCached(t, r); addr != "192.0.2.80" || rank != cache.RankAnswerNonAuth {
		t.Fatalf("after the non-AA answer: %s at %v", addr, rank)
	}
	h.zone.set(func(s *testServer) { s.hook = chainReply(t, true, "192.0.2.81") })
	if res, err := r.Resolve(ctxT(t), "alias.example.test.", dns.TypeA); err != nil || res.Rcode != dns.RcodeSuccess {
		t.Fatalf("authoritative chain: %v %v", res, err)
	}
	if addr, rank := wwwCached(t, r); addr != "192.0.2.81" || rank != cache.RankAnswerAuth {
		t.Fatalf("after the authoritative answer: %s at %v, want 192.0.2.81 at %v", addr, rank, cache.RankAnswerAuth)
	}
}

// TestNonAuthAnswerNeverReplacesAuthoritative: a reply without AA is an
// answer, but its data never takes the place of authoritative data in the
// cache (RFC 2181 5.4.1).
func TestNonAuthAnswerNeverReplacesAuthoritative(t *testing.T) {
	h := memHierarchy(t)
	r := h.resolver(t, nil)
	if res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA); err != nil || res.Rcode != dns.RcodeSuccess {
		t.Fatalf("authoritative answer: %v %v", res, err)
	}
	if addr, rank := wwwCached(t, r); addr != "192.0.2.80" || rank != cache.RankAnswerAuth {
		t.Fatalf("after the authoritative answer: %s at %v", addr, rank)
	}
	h.zone.set(func(s *testServer) { s.hook = chainReply(t, false, "6.6.6.6") })
	res, err := r.Resolve(ctxT(t), "alias.example.test.", dns.TypeA)
	if err != nil || res.Rcode != dns.RcodeSuccess {
		t.Fatalf("non-AA chain: rcode %d err %v, want an answer", res.Rcode, err)
	}
	if e, ok := r.cache.Get("alias.example.test.", dns.TypeCNAME, dns.ClassINET); !ok || e.Rank != cache.RankAnswerNonAuth {
		t.Fatalf("non-AA CNAME cached %v (found %v), want rank %v", e, ok, cache.RankAnswerNonAuth)
	}
	if addr, rank := wwwCached(t, r); addr != "192.0.2.80" || rank != cache.RankAnswerAuth {
		t.Fatalf("the non-AA reply replaced authoritative data: %s at %v", addr, rank)
	}
}

// TestNonAuthNegativeRank: NXDOMAIN and NODATA without AA are cached
// below the rank of an authoritative denial.
func TestNonAuthNegativeRank(t *testing.T) {
	h := memHierarchy(t)
	h.zone.set(func(s *testServer) { s.hook = withoutAA(s) })
	r := h.resolver(t, nil)
	if res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeTXT); err != nil || res.Rcode != dns.RcodeSuccess || len(res.Answer) != 0 {
		t.Fatalf("non-AA NODATA: %v %v", res, err)
	}
	e, ok := r.cache.Get("www.example.test.", dns.TypeTXT, dns.ClassINET)
	if !ok || e.Rank != cache.RankAnswerNonAuth {
		t.Fatalf("NODATA cached %v (found %v), want rank %v", e, ok, cache.RankAnswerNonAuth)
	}
}
