package resolver

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// TestHostileReplies feeds the iterator replies that are wrong in many
// ways. None may panic, poison the cache or take long; each ends in a
// SERVFAIL or a sane answer.
func TestHostileReplies(t *testing.T) {
	rr := func(s string) dns.RR { return dnstest.MustRR(t, s) }
	many := func() []dns.RR {
		var out []dns.RR
		for i := 0; i < 300; i++ {
			out = append(out, rr("example.test. 60 NS ns"+itoa(i)+".nowhere.test."))
		}
		return out
	}()
	for _, tc := range []struct {
		name string
		edit func(m *dns.Msg)
	}{
		{"CNAME to the root", func(m *dns.Msg) {
			m.Authoritative = true
			m.Answer = []dns.RR{rr("www.example.test. 60 CNAME .")}
		}},
		{"DNAME onto itself", func(m *dns.Msg) {
			m.Authoritative = true
			m.Answer = []dns.RR{rr("example.test. 60 DNAME www.example.test.")}
		}},
		{"answer for another name only", func(m *dns.Msg) {
			m.Authoritative = true
			m.Answer = []dns.RR{rr("bank.test. 60 A 6.6.6.6")}
		}},
		{"wrong class", func(m *dns.Msg) {
			m.Authoritative = true
			m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "www.example.test.", Rrtype: dns.TypeA, Class: dns.ClassCHAOS, Ttl: 60}, A: []byte{6, 6, 6, 6}}}
		}},
		{"SOA of another zone in NXDOMAIN", func(m *dns.Msg) {
			m.Authoritative = true
			m.Rcode = dns.RcodeNameError
			m.Ns = []dns.RR{rr("bank.test. 60 SOA ns. h. 1 2 3 4 86400")}
		}},
		{"referral to 300 unreachable name servers", func(m *dns.Msg) {
			m.Authoritative = false
			m.Ns = many
		}},
		{"several CNAMEs", func(m *dns.Msg) {
			m.Authoritative = true
			m.Answer = []dns.RR{rr("www.example.test. 60 CNAME a.test."), rr("www.example.test. 60 CNAME b.test.")}
		}},
		{"TTL with the top bit set", func(m *dns.Msg) {
			m.Authoritative = true
			m.Answer = []dns.RR{rr("www.example.test. 2147483648 A 192.0.2.80")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := memHierarchy(t)
			// The tld misbehaves for www.example.test only.
			h.tld.set(func(s *testServer) {
				s.hook = func(w dns.ResponseWriter, q *dns.Msg) bool {
					if canonical(q.Question[0].Name) != "www.example.test." {
						return false
					}
					m := new(dns.Msg)
					m.SetReply(q)
					tc.edit(m)
					_ = w.WriteMsg(m)
					return true
				}
			})
			r := h.resolver(t, func(c *Config) {
				c.QNameMinimisation = false
				c.Limits.UpstreamTimeoutInitial = 50 * time.Millisecond
			})
			start := time.Now()
			res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA)
			if d := time.Since(start); d > 1500*time.Millisecond {
				t.Errorf("took %v", d)
			}
			if err != nil {
				res = &Result{} // a failure passes nothing on either
			}
			for _, rr := range res.Answer {
				if rr.Header().Ttl > maxTTL {
					t.Fatalf("TTL %d passed on (RFC 2181 8)", rr.Header().Ttl)
				}
			}
			for _, a := range answerAddrs(res) {
				if a == "6.6.6.6" {
					t.Fatalf("hostile data accepted: %v", res.Answer)
				}
			}
			if e, ok := r.Cache().Get("bank.test.", dns.TypeA, dns.ClassINET); ok {
				t.Fatalf("unsolicited data cached: %v", e)
			}
			if e, ok := r.Cache().Get("bank.test.", dns.TypeSOA, dns.ClassINET); ok {
				t.Fatalf("unsolicited SOA cached: %v", e)
			}
		})
	}
}
