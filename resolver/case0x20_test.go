package resolver

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
)

// The 0x20 tests of issue 8 use 127.73.1-9.x.

// swapCase flips the case of every ASCII letter: a reply with the right ID
// but a case pattern that is certainly wrong.
func swapCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		if l := c | 0x20; l >= 'a' && l <= 'z' {
			b[i] ^= 0x20
		}
	}
	return string(b)
}

// forgedReply is what an attacker who saw the query would send: right ID
// and name, wrong case, a poisoned address.
func forgedReply(q *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	m.Question[0].Name = swapCase(q.Question[0].Name)
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: m.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600}, A: net.IPv4(6, 6, 6, 6)}}
	return m
}

func isUDP(w dns.ResponseWriter) bool {
	_, ok := w.RemoteAddr().(*net.UDPAddr)
	return ok
}

func manualClock(t *testing.T, r *Resolver) *clock.Manual {
	t.Helper()
	m, ok := r.cfg.Clock.(*clock.Manual)
	if !ok {
		t.Fatal("the test resolver has no manual clock")
	}
	return m
}

// shiftSelectorClock lets a test move the selector's (network) clock.
func shiftSelectorClock(r *Resolver) *atomic.Int64 {
	var off atomic.Int64
	r.sel.now = func() time.Time { return time.Now().Add(time.Duration(off.Load())) }
	return &off
}

// assertNotPoisoned fails if 6.6.6.6 reached a result or the cache.
func assertNotPoisoned(t *testing.T, r *Resolver, res *Result, names ...string) {
	t.Helper()
	if res != nil {
		for _, a := range answerAddrs(res) {
			if a == "6.6.6.6" {
				t.Fatalf("forged data accepted: %v", res.Answer)
			}
		}
	}
	for _, n := range names {
		if e, ok := r.Cache().Get(n, dns.TypeA, dns.ClassINET); ok {
			for _, rr := range e.RRs {
				if a, ok := rr.(*dns.A); ok && a.A.Equal(net.IPv4(6, 6, 6, 6)) {
					t.Fatalf("forged data cached for %s", n)
				}
			}
		}
	}
}

func mixedCase(qs []dns.Question) bool {
	for _, q := range qs {
		if q.Name != strings.ToLower(q.Name) {
			return true
		}
	}
	return false
}

// TestForgedWrongCaseReplyKeeps0x20 is the attack of issue 8: for every
// query a forger who sees it races a reply with the right ID and port but
// the wrong case, carrying a poisoned address, ahead of the real reply.
// The forged replies are dropped, the real data is returned, and 0x20 stays
// on (one forged reply used to turn it off for 15 minutes).
func TestForgedWrongCaseReplyKeeps0x20(t *testing.T) {
	h := basicHierarchyAt(t, "127.73.1.")
	h.zone.set(func(s *testServer) {
		s.hook = func(w dns.ResponseWriter, q *dns.Msg) bool {
			if !isUDP(w) {
				return false
			}
			_ = w.WriteMsg(forgedReply(q))
			time.Sleep(5 * time.Millisecond)
			_ = w.WriteMsg(answerFrom(s.zones, q))
			return true
		}
	})
	r := newTestResolver(t, h.hints, nil)
	names := []string{"www.example.test.", "n1.example.test.", "n2.example.test.", "n3.example.test.", "n4.example.test."}
	for _, n := range names {
		res, err := r.Resolve(ctxT(t), n, dns.TypeA)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		assertNotPoisoned(t, r, res, names...)
		if n == "www.example.test." {
			if got := answerAddrs(res); len(got) != 1 || got[0] != "192.0.2.80" {
				t.Fatalf("answer %v", got)
			}
		} else if res.Rcode != dns.RcodeNameError {
			t.Fatalf("%s: rcode %s, want the real NXDOMAIN", n, dns.RcodeToString[res.Rcode])
		}
	}
	if r.sel.no0x20(h.zone.addr) {
		t.Fatal("forged replies turned 0x20 off for the server")
	}
	if n := r.sel.caseEvidence(h.zone.addr); n != 0 {
		t.Fatalf("case evidence %d after exact echoes, want 0", n)
	}
	qs := h.zone.Queries()
	if len(qs) != len(names) {
		t.Fatalf("zone server got %d queries for %d names: retried without 0x20?", len(qs), len(names))
	}
	if !mixedCase(qs[len(qs)-2:]) {
		t.Fatalf("the last queries %v were not case-randomised", qs[len(qs)-2:])
	}
}

// TestOnlyForgedRepliesKeep0x20: the forger also suppresses the real UDP
// replies (or they are lost). The questions fail over (here: SERVFAIL, the
// zone has one server) without ever taking forged data; after
// caseMismatchQuestions questions the TCP check shows that the server does
// preserve case, so 0x20 stays on, and that question is answered from TCP.
func TestOnlyForgedRepliesKeep0x20(t *testing.T) {
	h := basicHierarchyAt(t, "127.73.2.")
	h.zone.set(func(s *testServer) {
		s.hook = func(w dns.ResponseWriter, q *dns.Msg) bool {
			if !isUDP(w) {
				return false // TCP: the real server, case preserved
			}
			_ = w.WriteMsg(forgedReply(q))
			return true
		}
	})
	r := newTestResolver(t, h.hints, func(c *Config) {
		c.Limits.UpstreamTimeoutInitial = 100 * time.Millisecond
		c.Limits.UpstreamTimeoutMin = 50 * time.Millisecond
	})
	clk := manualClock(t, r)
	names := []string{"n1.example.test.", "n2.example.test.", "www.example.test."}
	for i, n := range names {
		res, err := r.Resolve(ctxT(t), n, dns.TypeA)
		assertNotPoisoned(t, r, res, names...)
		if i < caseMismatchQuestions-1 {
			if err == nil {
				t.Fatalf("%s answered from forged replies only: %v", n, res.Answer)
			}
			if got := r.sel.caseEvidence(h.zone.addr); got != i+1 {
				t.Fatalf("case evidence %d after %d questions", got, i+1)
			}
			clk.Advance(6 * time.Minute) // past the zone's failure entry
			continue
		}
		if err != nil {
			t.Fatalf("%s after the TCP check: %v", n, err)
		}
		if got := answerAddrs(res); len(got) != 1 || got[0] != "192.0.2.80" {
			t.Fatalf("answer %v", got)
		}
	}
	if r.sel.no0x20(h.zone.addr) {
		t.Fatal("0x20 turned off for a server that preserves case")
	}
	if n := r.sel.caseEvidence(h.zone.addr); n != 0 {
		t.Fatalf("case evidence %d after the TCP check, want 0", n)
	}
	// The next question is still sent with a random case.
	h.zone.reset()
	clk.Advance(6 * time.Minute)
	res, _ := r.Resolve(ctxT(t), "n9.example.test.", dns.TypeA)
	assertNotPoisoned(t, r, res, "n9.example.test.")
	if qs := h.zone.Queries(); len(qs) == 0 || !mixedCase(qs[:1]) {
		t.Fatalf("queries after the check %v: 0x20 off", qs)
	}
}

// TestCaseLosingServerFallsBack: a real server that lower-cases every name
// (UDP and TCP) is resolved after caseMismatchQuestions questions and the
// TCP check, then plainly; its no-0x20 state ends after capabilityMemory.
func TestCaseLosingServerFallsBack(t *testing.T) {
	h := basicHierarchyAt(t, "127.73.3.")
	h.zone.set(func(s *testServer) {
		s.hook = func(w dns.ResponseWriter, q *dns.Msg) bool {
			m := answerFrom(s.zones, q)
			m.Question[0].Name = strings.ToLower(m.Question[0].Name)
			_ = w.WriteMsg(m)
			return true
		}
	})
	r := newTestResolver(t, h.hints, func(c *Config) {
		c.Limits.UpstreamTimeoutInitial = 100 * time.Millisecond
		c.Limits.UpstreamTimeoutMin = 50 * time.Millisecond
	})
	clk := manualClock(t, r)
	off := shiftSelectorClock(r)
	// The same question again is no new evidence.
	for i := 0; i < 2; i++ {
		if _, err := r.Resolve(ctxT(t), "a0.example.test.", dns.TypeA); err == nil {
			t.Fatal("answered from a wrong-case UDP reply")
		}
		r.Cache().Delete("a0.example.test.", dns.TypeA, dns.ClassINET)
		clk.Advance(6 * time.Minute)
		off.Add(int64(backoffMax)) // past the server's back-off
	}
	if n := r.sel.caseEvidence(h.zone.addr); n != 1 {
		t.Fatalf("case evidence %d from one question asked twice, want 1", n)
	}
	for i := 1; i < caseMismatchQuestions; i++ {
		if r.sel.no0x20(h.zone.addr) {
			t.Fatalf("0x20 off after %d questions, want %d", i, caseMismatchQuestions)
		}
		name := "www.example.test."
		if i < caseMismatchQuestions-1 {
			name = "a" + itoa(i) + ".example.test."
		}
		res, err := r.Resolve(ctxT(t), name, dns.TypeA)
		if i < caseMismatchQuestions-1 {
			if err == nil {
				t.Fatalf("question %d answered from a wrong-case UDP reply", i)
			}
			clk.Advance(6 * time.Minute)
			off.Add(int64(backoffMax)) // past the server's back-off
			continue
		}
		if err != nil || len(answerAddrs(res)) != 1 {
			t.Fatalf("after the TCP check: answer %v err %v", res, err)
		}
	}
	if !r.sel.no0x20(h.zone.addr) {
		t.Fatal("server not remembered as not preserving case")
	}
	// Plain queries now work at once: sent without 0x20 (a random case of
	// n1.example.test.'s 13 letters is all lower case once in 8192), so
	// there is no wrong-case reply to wait out.
	before := len(h.zone.Queries())
	res, err := r.Resolve(ctxT(t), "n1.example.test.", dns.TypeA)
	if err != nil || res.Rcode != dns.RcodeNameError {
		t.Fatalf("plain query: rcode %d err %v", res.Rcode, err)
	}
	if qs := h.zone.Queries()[before:]; len(qs) != 1 || qs[0].Name != "n1.example.test." {
		t.Fatalf("plain query sent as %v, want one query for n1.example.test. in lower case", qs)
	}
	// The fallback is bounded: after capabilityMemory 0x20 is tried again.
	off.Add(int64(capabilityMemory + time.Second))
	if r.sel.no0x20(h.zone.addr) {
		t.Fatal("no-0x20 state did not expire")
	}
	h.zone.reset()
	_, _ = r.Resolve(ctxT(t), "n2.example.test.", dns.TypeA)
	if qs := h.zone.Queries(); len(qs) == 0 || !mixedCase(qs[:1]) {
		t.Fatalf("queries after expiry %v: 0x20 not tried again", qs)
	}
}
