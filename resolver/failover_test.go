package resolver

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
)

// multiServerZone is root (.1) -> test. (.2) -> example.test. served by
// the given number of servers at .10, .11, ... each with glue, in
// 127.30.n.0/24 (hedgeZone there), and a resolver on it.
func multiServerZone(t *testing.T, n, servers int) (*hierarchy, []*testServer, *Resolver) {
	t.Helper()
	h, out := hedgeZone(t, "127.30."+itoa(n)+".", servers)
	return h, out, newTestResolver(t, h.hints, nil)
}

func TestDeadServerSkippedAfterTimeout(t *testing.T) {
	_, srv, r := multiServerZone(t, 10, 2)
	dead, alive := srv[0], srv[1]
	dead.set(func(s *testServer) { s.drop = true })
	// Make the dead server look best so that it is asked first.
	r.sel.probe = 0
	r.sel.success(dead.addr, time.Microsecond)
	r.sel.success(alive.addr, time.Millisecond)
	start := time.Now()
	for i := 0; i < 5; i++ {
		res, err := r.Resolve(ctxT(t), "n"+itoa(i)+".example.test.", dns.TypeA)
		if err != nil || res.Rcode != dns.RcodeNameError {
			t.Fatalf("query %d: rcode %d err %v", i, res.Rcode, err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("5 queries took %v: the dead server was not skipped", d)
	}
	if dead.count() != 1 {
		t.Fatalf("dead server got %d queries, want 1", dead.count())
	}
	if alive.count() != 5 {
		t.Fatalf("live server got %d queries, want 5", alive.count())
	}
}

func TestFailoverOnBadReplies(t *testing.T) {
	lame := func(w dns.ResponseWriter, r *dns.Msg) bool {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "test.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60}, Ns: "ns.nic.test."}}
		_ = w.WriteMsg(m) // no AA, upward referral
		return true
	}
	rcode := func(code int) func(w dns.ResponseWriter, r *dns.Msg) bool {
		return func(w dns.ResponseWriter, r *dns.Msg) bool {
			m := new(dns.Msg)
			m.SetRcode(r, code)
			_ = w.WriteMsg(m)
			return true
		}
	}
	selfReferral := func(w dns.ResponseWriter, r *dns.Msg) bool {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60}, Ns: "ns10.example.test."}}
		_ = w.WriteMsg(m) // no AA, referral to the zone asked, no SOA
		return true
	}
	mismatch := func(w dns.ResponseWriter, r *dns.Msg) bool {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Question[0].Name = "other.example.test."
		m.Authoritative = true
		_ = w.WriteMsg(m)
		return true
	}
	for i, tc := range []struct {
		name string
		hook func(w dns.ResponseWriter, r *dns.Msg) bool
	}{
		{"REFUSED", rcode(dns.RcodeRefused)},
		{"SERVFAIL", rcode(dns.RcodeServerFailure)},
		{"FORMERR", rcode(dns.RcodeFormatError)},
		{"lame upward referral", lame},
		{"referral to the zone asked without AA", selfReferral},
		{"mismatched question", mismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, srv, r := multiServerZone(t, 11+i, 2)
			bad, good := srv[0], srv[1]
			bad.set(func(s *testServer) { s.hook = tc.hook })
			// Make the bad server look best so it is asked first.
			r.sel.probe = 0
			r.sel.success(bad.addr, time.Microsecond)
			r.sel.success(good.addr, 50*time.Millisecond)
			res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got := answerAddrs(res); len(got) != 1 || got[0] != "192.0.2.80" {
				t.Fatalf("answer %v", res.Answer)
			}
			if bad.count() == 0 || good.count() == 0 {
				t.Fatalf("bad/good queries %d/%d: failover not exercised", bad.count(), good.count())
			}
			// The bad server is remembered (lame or backed off) and is
			// not asked first again.
			n := bad.count()
			if _, err := r.Resolve(ctxT(t), "other.example.test.", dns.TypeA); err != nil {
				t.Fatalf("second question: %v", err)
			}
			if bad.count() != n {
				t.Fatalf("the bad server was asked again first")
			}
		})
	}
}

func TestTruncatedRetriesOverTCP(t *testing.T) {
	h := basicHierarchy(t, 20)
	var sawTCP bool
	var mu sync.Mutex
	h.zone.set(func(s *testServer) {
		s.hook = func(w dns.ResponseWriter, r *dns.Msg) bool {
			if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
				m := new(dns.Msg)
				m.SetReply(r)
				m.Truncated = true
				_ = w.WriteMsg(m)
				return true
			}
			mu.Lock()
			sawTCP = true
			mu.Unlock()
			return false
		}
	})
	r := newTestResolver(t, h.hints, nil)
	var events []TraceEvent
	ctx := WithTrace(ctxT(t), func(e TraceEvent) { events = append(events, e) })
	res, err := r.Resolve(ctx, "www.example.test.", dns.TypeA)
	if err != nil || len(answerAddrs(res)) != 1 {
		t.Fatalf("answer %v err %v", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !sawTCP {
		t.Fatal("no TCP query")
	}
	last := events[len(events)-1]
	if !last.TCP || last.Outcome != "answer" {
		t.Fatalf("last trace event %v, want an answer over TCP", last)
	}
}

func TestEDNSFallback(t *testing.T) {
	h := basicHierarchy(t, 21)
	h.zone.set(func(s *testServer) {
		s.hook = func(w dns.ResponseWriter, r *dns.Msg) bool {
			if r.IsEdns0() == nil {
				return false
			}
			m := new(dns.Msg)
			m.SetRcode(r, dns.RcodeFormatError)
			_ = w.WriteMsg(m)
			return true
		}
	})
	r := newTestResolver(t, h.hints, nil)
	res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA)
	if err != nil || len(answerAddrs(res)) != 1 {
		t.Fatalf("answer %v err %v", res, err)
	}
	if !r.sel.noEDNS(h.zone.addr) {
		t.Fatal("server not remembered as rejecting EDNS")
	}
	if r.sel.noEDNS(h.tld.addr) {
		t.Fatal("a server that accepts EDNS lost it")
	}
}

func Test0x20(t *testing.T) {
	h := basicHierarchy(t, 22)
	r := newTestResolver(t, h.hints, nil)
	for i := 0; i < 8; i++ {
		if _, err := r.Resolve(ctxT(t), "n"+itoa(i)+".example.test.", dns.TypeA); err != nil {
			t.Fatal(err)
		}
	}
	mixed := false
	for _, q := range h.zone.Queries() {
		if q.Name != strings.ToLower(q.Name) {
			mixed = true
		}
	}
	if !mixed {
		t.Fatalf("no mixed-case query names seen: %v", h.zone.Queries())
	}
	// A server that does not echo case: after caseMismatchQuestions
	// questions with only wrong-case replies, a TCP check, then plain
	// queries (issue 8: one wrong-case reply proves nothing).
	h.zone.set(func(s *testServer) {
		s.hook = func(w dns.ResponseWriter, r *dns.Msg) bool {
			m := answerFrom(s.zones, r)
			m.Question[0].Name = strings.ToLower(m.Question[0].Name)
			_ = w.WriteMsg(m)
			return true
		}
	})
	for i := 1; i < caseMismatchQuestions; i++ {
		_, _ = r.Resolve(ctxT(t), "m"+itoa(i)+".example.test.", dns.TypeA)
		r.cfg.Clock.(*clock.Manual).Advance(6 * time.Minute) // past the zone's failure entry
	}
	res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA)
	if err != nil || len(answerAddrs(res)) != 1 {
		t.Fatalf("answer %v err %v", res, err)
	}
	if !r.sel.no0x20(h.zone.addr) {
		t.Fatal("server not remembered as not echoing case")
	}
}

func TestSpoofedRepliesDoNotEndTheWait(t *testing.T) {
	h := basicHierarchy(t, 23)
	spoofSrc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.30.23.3:5353")))
	if err != nil {
		t.Fatal(err)
	}
	defer spoofSrc.Close()
	h.zone.set(func(s *testServer) {
		s.hook = func(w dns.ResponseWriter, r *dns.Msg) bool {
			udp, ok := w.RemoteAddr().(*net.UDPAddr)
			if !ok {
				return false
			}
			bad := new(dns.Msg)
			bad.SetReply(r)
			bad.Authoritative = true
			bad.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(6, 6, 6, 6)}}
			// Right ID and question from the right address but another
			// port: the connected socket must drop it.
			wire, _ := bad.Pack()
			_, _ = spoofSrc.WriteToUDP(wire, udp)
			// Garbage, a wrong ID and a wrong question from the right
			// address and port: each must be ignored.
			_, _ = w.Write([]byte{0xde, 0xad, 0xbe, 0xef})
			wrongID := bad.Copy()
			wrongID.Id ^= 0x5555
			_ = w.WriteMsg(wrongID)
			wrongQ := bad.Copy()
			wrongQ.Question[0].Name = "evil.example.test."
			_ = w.WriteMsg(wrongQ)
			time.Sleep(20 * time.Millisecond)
			_ = w.WriteMsg(answerFrom(s.zones, r))
			return true
		}
	})
	r := newTestResolver(t, h.hints, nil)
	res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if got := answerAddrs(res); len(got) != 1 || got[0] != "192.0.2.80" {
		t.Fatalf("answer %v: a spoofed reply was accepted", got)
	}
}

func TestFastServerPreferred(t *testing.T) {
	_, srv, r := multiServerZone(t, 24, 2)
	slow, fast := srv[0], srv[1]
	slow.set(func(s *testServer) { s.delay = 15 * time.Millisecond })
	const n = 200
	for i := 0; i < n; i++ {
		if _, err := r.Resolve(context.Background(), "n"+itoa(i)+".example.test.", dns.TypeA); err != nil {
			t.Fatal(err)
		}
	}
	if f := fast.count(); f < n*85/100 {
		t.Fatalf("fast server got %d of %d queries (slow %d), want at least 85%%", f, n, slow.count())
	}
	if slow.count() == 0 {
		t.Fatal("the slow server was never probed")
	}
}

func TestSourceAddressesAndPorts(t *testing.T) {
	h := basicHierarchy(t, 25)
	src := netip.MustParseAddr("127.30.25.200")
	r := newTestResolver(t, h.hints, func(c *Config) { c.OutgoingAddrs = []netip.Addr{src} })
	const n = 40
	for i := 0; i < n; i++ {
		if _, err := r.Resolve(ctxT(t), "n"+itoa(i)+".example.test.", dns.TypeA); err != nil {
			t.Fatal(err)
		}
	}
	ports := map[uint16]bool{}
	for _, ap := range h.zone.Remotes() {
		if ap.Addr() != src {
			t.Fatalf("query from %v, want source %v", ap, src)
		}
		ports[ap.Port()] = true
	}
	if len(ports) < n-2 {
		t.Fatalf("%d distinct source ports in %d queries", len(ports), n)
	}
}
