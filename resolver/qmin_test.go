package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

func TestQminNext(t *testing.T) {
	m := newQmin(true)
	var got []string
	for {
		n, ok := m.next(".", "a.b.c.d.e.f.g.h.i.j.k.l.m.n.example.")
		if !ok {
			break
		}
		got = append(got, n)
		m.advance(n)
	}
	if len(got) == 0 || got[0] != "example." || got[1] != "n.example." || len(got) > maxMinimiseCount {
		t.Fatalf("minimised names %v", got)
	}
	m = newQmin(true)
	if n, ok := m.next("example.org.", "_25._tcp.mail.example.org."); !ok || n != "mail.example.org." {
		t.Fatalf("first step %q %v", n, ok)
	}
	m.advance("mail.example.org.")
	if n, ok := m.next("example.org.", "_25._tcp.mail.example.org."); ok {
		t.Fatalf("underscore label minimised to %q, want the full name", n)
	}
	if m := newQmin(true); true {
		if n, ok := m.next("example.", "www.example."); ok {
			t.Fatalf("one label below the zone: got %q, want the full name", n)
		}
	}
}

func TestQNameMinimisation(t *testing.T) {
	h := memHierarchy(t, "a.b.example.test. A 192.0.2.5")
	r := h.resolver(t, func(c *Config) { c.QNameMinimisation = true })
	res, err := r.Resolve(ctxT(t), "a.b.example.test.", dns.TypeAAAA)
	if err != nil || res.Rcode != dns.RcodeSuccess {
		t.Fatalf("rcode %d err %v", res.Rcode, err)
	}
	for _, tc := range []struct {
		s    *testServer
		want string
	}{{h.root, "test."}, {h.tld, "example.test."}} {
		for _, q := range tc.s.Queries() {
			if canonical(q.Name) != tc.want || q.Qtype != dns.TypeA {
				t.Fatalf("server %s saw %s %s, want only %s A", tc.s.addr, q.Name, dns.TypeToString[q.Qtype], tc.want)
			}
		}
	}
	// The zone sees b.example.test (an empty non-terminal) first, then the
	// full name with the real type.
	qs := h.zone.Queries()
	if len(qs) != 2 || canonical(qs[0].Name) != "b.example.test." || canonical(qs[1].Name) != "a.b.example.test." || qs[1].Qtype != dns.TypeAAAA {
		t.Fatalf("zone saw %v", qs)
	}
}

func TestQNameMinimisationFallbackOnNXDOMAIN(t *testing.T) {
	h := memHierarchy(t, "a.b.example.test. A 192.0.2.5")
	// A broken server: NXDOMAIN for the empty non-terminal.
	h.zone.set(func(s *testServer) {
		s.hook = func(w dns.ResponseWriter, r *dns.Msg) bool {
			if canonical(r.Question[0].Name) != "b.example.test." {
				return false
			}
			m := new(dns.Msg)
			m.SetRcode(r, dns.RcodeNameError)
			m.Authoritative = true
			_ = w.WriteMsg(m)
			return true
		}
	})
	r := h.resolver(t, func(c *Config) { c.QNameMinimisation = true })
	res, err := r.Resolve(ctxT(t), "a.b.example.test.", dns.TypeA)
	if err != nil || len(answerAddrs(res)) != 1 {
		t.Fatalf("answer %v rcode %d err %v", res.Answer, res.Rcode, err)
	}
}

func TestQNameMinimisationFallbackOnREFUSED(t *testing.T) {
	h := memHierarchy(t)
	h.tld.set(func(s *testServer) {
		s.hook = func(w dns.ResponseWriter, r *dns.Msg) bool {
			if r.Question[0].Qtype == dns.TypeA && canonical(r.Question[0].Name) == "example.test." {
				m := new(dns.Msg)
				m.SetRcode(r, dns.RcodeRefused)
				_ = w.WriteMsg(m)
				return true
			}
			return false
		}
	})
	r := h.resolver(t, func(c *Config) { c.QNameMinimisation = true })
	res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA)
	if err != nil || len(answerAddrs(res)) != 1 {
		t.Fatalf("answer %v err %v", res, err)
	}
}
