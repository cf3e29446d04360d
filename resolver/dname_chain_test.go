package resolver

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/lab"
)

// countRRsets counts the RRsets (owner, type) of an answer section.
func countRRsets(rrs []dns.RR) map[string]int {
	n := map[string]int{}
	seen := map[dns.RR]bool{}
	for _, rr := range rrs {
		if seen[rr] {
			continue
		}
		seen[rr] = true
		if rr.Header().Rrtype == dns.TypeRRSIG {
			continue
		}
		n[canonical(rr.Header().Name)+" "+dns.TypeToString[rr.Header().Rrtype]]++
	}
	return n
}

// TestDNAMEAnswers (issue 15 point 7): a chain that passes one DNAME twice
// carries it once; a DNAME loop is SERVFAIL with an EDE (and, with CD,
// the chain up to the loop); AD is never set on an answer any part of
// which is insecure.
func TestDNAMEAnswers(t *testing.T) {
	l := startMessyLab(t)
	t.Run("DNAME passed twice", func(t *testing.T) {
		r := newMessyResolver(t, l)
		m, _ := ask(t, r, "back.dname."+lab.SecureAlg13, dns.TypeA, true, false, false)
		if m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData {
			t.Fatalf("%s AD=%v, want NOERROR AD\n%v", dns.RcodeToString[m.Rcode], m.AuthenticatedData, m)
		}
		for set, n := range countRRsets(m.Answer) {
			if n > 1 && set == "dname."+lab.SecureAlg13+" DNAME" {
				t.Fatalf("%s %d times in the answer\n%v", set, n, m)
			}
		}
		t.Logf("%v", m.Answer)
	})
	t.Run("DNAME loop", func(t *testing.T) {
		for _, cd := range []bool{false, true} {
			r := newMessyResolver(t, l)
			m, _ := ask(t, r, "x.dloop."+lab.SecureAlg13, dns.TypeA, true, cd, false)
			t.Logf("CD=%v: %s EDE %d answers %d", cd, dns.RcodeToString[m.Rcode], dnstest.EDECode(m), len(m.Answer))
			if m.Rcode != dns.RcodeServerFailure || dnstest.EDECode(m) < 0 {
				t.Fatalf("CD=%v: %s EDE %d, want SERVFAIL with an EDE", cd, dns.RcodeToString[m.Rcode], dnstest.EDECode(m))
			}
			if cd && !hasType(m.Answer, dns.TypeDNAME) {
				t.Fatalf("CD=1: the chain up to the loop is missing\n%v", m)
			}
			if m, _ := ask(t, r, "x.dloop."+lab.SecureAlg13, dns.TypeA, true, cd, false); cd && !hasType(m.Answer, dns.TypeDNAME) {
				t.Fatalf("CD=1 from the cache: the chain up to the loop is missing\n%v", m)
			}
		}
	})
	t.Run("DNAME to insecure", func(t *testing.T) {
		r := newMessyResolver(t, l)
		m, _ := ask(t, r, "www.dname-insecure."+lab.SecureAlg13, dns.TypeA, true, false, false)
		if m.Rcode != dns.RcodeSuccess || m.AuthenticatedData || len(m.Answer) == 0 {
			t.Fatalf("%s AD=%v, want NOERROR without AD\n%v", dns.RcodeToString[m.Rcode], m.AuthenticatedData, m)
		}
		// Again from the cache.
		m, _ = ask(t, r, "www.dname-insecure."+lab.SecureAlg13, dns.TypeA, true, false, false)
		if m.AuthenticatedData {
			t.Fatalf("AD set from the cache\n%v", m)
		}
	})
	t.Run("CNAME loop", func(t *testing.T) {
		for _, cd := range []bool{false, true} {
			r := newMessyResolver(t, l)
			m, _ := ask(t, r, "loop."+lab.SecureAlg13, dns.TypeA, true, cd, false)
			t.Logf("CD=%v: %s EDE %d answers %d", cd, dns.RcodeToString[m.Rcode], dnstest.EDECode(m), len(m.Answer))
			if m.Rcode != dns.RcodeServerFailure || dnstest.EDECode(m) < 0 {
				t.Fatalf("CD=%v: %s EDE %d, want SERVFAIL with an EDE", cd, dns.RcodeToString[m.Rcode], dnstest.EDECode(m))
			}
			if cd && !hasType(m.Answer, dns.TypeCNAME) {
				t.Fatalf("CD=1: the chain up to the loop is missing\n%v", m)
			}
		}
	})
}
