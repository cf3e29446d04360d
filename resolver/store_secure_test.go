package resolver

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/lab"
	"github.com/sextant-dns/sextant/security"
)

// TestForgedAnswerKeepsSecureEntry: an unsigned reply of the same rank for
// data whose validated answer is cached (a forged or stray reply reaching
// the store path) does not replace the Secure entry: the next question is
// still answered from it, secure, with nothing asked or checked. Once the
// Secure entry has expired, new data for the name is stored again (a zone
// that changes is not stuck with its old answer).
func TestForgedAnswerKeepsSecureEntry(t *testing.T) {
	l := startCacheLab(t)
	clk := clock.NewManual(time.Now())
	r, _ := newValidatingResolver(t, l, clk)
	for _, tc := range []struct {
		name          string
		qname         string
		zone          string
		forged        []string
		owner         string // the cache entry the forgery aims at
		rtype         uint16
		wantInAnswer  string // the genuine answer's data
		forgedPresent string // text only the forged data has
	}{
		{
			name: "A record", qname: "www." + lab.SecureAlg13, zone: lab.SecureAlg13,
			forged: []string{"www." + lab.SecureAlg13 + " 300 IN A 198.51.100.66"},
			owner:  "www." + lab.SecureAlg13, rtype: dns.TypeA,
			wantInAnswer: "127.0.2.13", forgedPresent: "198.51.100.66",
		},
		{
			name: "DNAME", qname: "www.dname." + lab.SecureAlg13, zone: lab.SecureAlg13,
			forged: []string{"dname." + lab.SecureAlg13 + " 300 IN DNAME evil.test.", "www.dname." + lab.SecureAlg13 + " 300 IN CNAME www.evil.test."},
			owner:  "dname." + lab.SecureAlg13, rtype: dns.TypeDNAME,
			wantInAnswer: lab.SecureAlg15, forgedPresent: "evil.test.",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := dns.Question{Name: tc.qname, Qtype: dns.TypeA, Qclass: dns.ClassINET}
			if res := r.runWith(ctxT(t), q, false, newBudget(&r.limits, time.Now())); res.Security != security.Secure {
				t.Fatalf("first answer %v %v", res.Security, res.ExtendedError())
			}
			if e, ok := r.cache.Get(tc.owner, tc.rtype, dns.ClassINET); !ok || e.Security != security.Secure {
				t.Fatalf("%s %s not cached secure", tc.owner, dns.TypeToString[tc.rtype])
			}
			m := new(dns.Msg)
			m.SetQuestion(tc.qname, dns.TypeA)
			m.Response, m.Authoritative = true, true
			m.Answer = dnstest.MustRRs(t, tc.forged...)
			rs := &resolution{r: r, budget: newBudget(&r.limits, time.Now())}
			if _, err := rs.storeAnswer(m, kindAnswer, tc.zone, question{tc.qname, dns.TypeA, dns.ClassINET}); err != nil {
				t.Fatalf("storeAnswer: %v", err)
			}
			e, ok := r.cache.Get(tc.owner, tc.rtype, dns.ClassINET)
			if !ok || e.Security != security.Secure || containsText(e.RRs, tc.forgedPresent) {
				t.Fatalf("after the forged reply the cache holds %v (%v)", e.RRs, e.Security)
			}

			before := labQueryCount(l)
			b := newBudget(&r.limits, time.Now())
			res := r.runWith(ctxT(t), q, false, b)
			checks := 0
			if st := b.dnssec.Load(); st != nil {
				checks = st.budget.Validations()
			}
			if res.Security != security.Secure || !containsText(res.Answer, tc.wantInAnswer) || containsText(res.Answer, tc.forgedPresent) {
				t.Fatalf("second answer %v %v\n%v", res.Security, res.ExtendedError(), res.Answer)
			}
			if n := labQueryCount(l) - before; n != 0 || checks != 0 {
				t.Errorf("second answer: %d lab queries, %d signature checks, want none", n, checks)
			}
		})
	}

	// After the Secure entries expire, new data is stored again.
	clk.Advance(24 * time.Hour)
	m := new(dns.Msg)
	m.SetQuestion("www."+lab.SecureAlg13, dns.TypeA)
	m.Response, m.Authoritative = true, true
	m.Answer = dnstest.MustRRs(t, "www."+lab.SecureAlg13+" 300 IN A 198.51.100.77")
	rs := &resolution{r: r, budget: newBudget(&r.limits, time.Now())}
	if _, err := rs.storeAnswer(m, kindAnswer, lab.SecureAlg13, question{"www." + lab.SecureAlg13, dns.TypeA, dns.ClassINET}); err != nil {
		t.Fatalf("storeAnswer: %v", err)
	}
	if e, ok := r.cache.Get("www."+lab.SecureAlg13, dns.TypeA, dns.ClassINET); !ok || !containsText(e.RRs, "198.51.100.77") || e.Security != security.Indeterminate {
		t.Fatalf("changed data after expiry not stored: %v", e)
	}
}

// containsText reports whether any record's text contains s.
func containsText(rrs []dns.RR, s string) bool {
	for _, rr := range rrs {
		if rr != nil && strings.Contains(rr.String(), s) {
			return true
		}
	}
	return false
}
