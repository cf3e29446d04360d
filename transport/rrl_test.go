package transport

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// RRL tests use 127.107.0.0/16 (ARCHITECTURE.md): servers on 127.107.0.x,
// clients in 127.107.1-9.x, one /24 each where a test needs distinct
// prefixes.

// authAnswer is an authoritative (AA) answer for name, or a plain one.
func authAnswer(t testing.TB, name string, aa bool) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetReply(dnstest.Query(name, dns.TypeA))
	m.Authoritative = aa
	m.Answer = []dns.RR{&dns.A{
		Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
		A:   net.IPv4(192, 0, 2, 1).To4(),
	}}
	return mustPack(t, m)
}

// negative is an authoritative NXDOMAIN or NODATA answer for name with
// zone's SOA in the authority section (compressed against the question
// where it can be).
func negative(t testing.TB, name, zone string, rcode int) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetReply(dnstest.Query(name, dns.TypeA))
	m.Authoritative, m.Rcode, m.Compress = true, rcode, true
	m.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
		Ns: "ns." + zone, Mbox: "hostmaster." + zone, Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 300}}
	return mustPack(t, m)
}

// TestRRLResponseKey: identical responses share a key and others do not;
// NXDOMAIN and NODATA answers are keyed by their zone (random names under
// one zone are one bucket); case does not matter; non-authoritative
// answers are not judged.
func TestRRLResponseKey(t *testing.T) {
	r, err := NewResponseRateLimiter(RRLConfig{Rate: 10})
	if err != nil {
		t.Fatal(err)
	}
	a1, a2, b1 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.200"), netip.MustParseAddr("198.51.100.1")
	key := func(resp []byte, client netip.Addr) uint64 {
		t.Helper()
		k, ok := r.responseKey(resp, client)
		if !ok {
			t.Fatalf("no key for %x", resp)
		}
		return k
	}
	www := authAnswer(t, "www.zone.example.", true)
	servfail := func(name string) []byte {
		m := new(dns.Msg).SetRcode(dnstest.Query(name, dns.TypeA), dns.RcodeServerFailure)
		m.Authoritative = true
		return mustPack(t, m)
	}
	aaaa := func() []byte {
		m := new(dns.Msg)
		m.SetReply(dnstest.Query("www.zone.example.", dns.TypeAAAA))
		m.Authoritative = true
		m.Answer = []dns.RR{&dns.AAAA{Hdr: dns.RR_Header{Name: "www.zone.example.", Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 300}, AAAA: net.ParseIP("2001:db8::1")}}
		return mustPack(t, m)
	}()
	same := []struct {
		name string
		a, b []byte
		ca   netip.Addr
		cb   netip.Addr
	}{
		{"one answer, one /24", www, www, a1, a2},
		{"answer, name case", www, authAnswer(t, "WWW.Zone.EXAMPLE.", true), a1, a1},
		{"NXDOMAIN, random names of one zone", negative(t, "x1.zone.example.", "zone.example.", dns.RcodeNameError), negative(t, "qq9.zone.example.", "zone.example.", dns.RcodeNameError), a1, a2},
		{"NODATA, names of one zone", negative(t, "a.zone.example.", "zone.example.", dns.RcodeSuccess), negative(t, "b.c.zone.example.", "ZONE.example.", dns.RcodeSuccess), a1, a1},
		{"errors, whatever the name", servfail("a.zone.example."), servfail("b.other.example."), a1, a1},
	}
	for _, c := range same {
		if key(c.a, c.ca) != key(c.b, c.cb) {
			t.Errorf("%s: keys differ", c.name)
		}
	}
	differ := []struct {
		name string
		a, b []byte
		ca   netip.Addr
		cb   netip.Addr
	}{
		{"another /24", www, www, a1, b1},
		{"another name", www, authAnswer(t, "mail.zone.example.", true), a1, a1},
		{"another type", www, aaaa, a1, a1},
		{"NXDOMAIN of another zone", negative(t, "x.zone.example.", "zone.example.", dns.RcodeNameError), negative(t, "x.other.example.", "other.example.", dns.RcodeNameError), a1, a1},
		{"NXDOMAIN and NODATA", negative(t, "x.zone.example.", "zone.example.", dns.RcodeNameError), negative(t, "x.zone.example.", "zone.example.", dns.RcodeSuccess), a1, a1},
		{"answer and NXDOMAIN", www, negative(t, "www.zone.example.", "www.zone.example.", dns.RcodeNameError), a1, a1},
	}
	for _, c := range differ {
		if key(c.a, c.ca) == key(c.b, c.cb) {
			t.Errorf("%s: same key", c.name)
		}
	}
	for name, resp := range map[string][]byte{
		"not authoritative": authAnswer(t, "www.zone.example.", false),
		"query":             mustPack(t, dnstest.Query("www.zone.example.", dns.TypeA)),
		"short":             www[:5],
		"cut in question":   www[:headerLen+4],
	} {
		if _, ok := r.responseKey(resp, a1); ok {
			t.Errorf("%s: judged", name)
		}
	}
}

// TestLowerNameLoop: a compression loop or a name past 255 octets is
// refused, not followed for ever.
func TestLowerNameLoop(t *testing.T) {
	var dst [maxNameWire]byte
	loop := []byte{0xC0, 0x02, 0xC0, 0x00}
	if _, ok := lowerName(dst[:], loop, 0); ok {
		t.Error("a pointer loop gave a name")
	}
	long := bytes.Repeat([]byte{63}, 1)
	long = append(long, bytes.Repeat([]byte{'a'}, 63)...)
	long = bytes.Repeat(long, 5) // 320 octets of labels
	long = append(long, 0)
	if _, ok := lowerName(dst[:], long, 0); ok {
		t.Error("a 320-octet name fit")
	}
}

// TestAppendTruncated: the slip answer keeps the header, the question
// and the OPT (with its cookie), sets TC and drops every other record.
func TestAppendTruncated(t *testing.T) {
	m := new(dns.Msg)
	m.SetReply(dnstest.Query("www.zone.example.", dns.TypeA))
	m.Authoritative = true
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "www.zone.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, 1).To4()}}
	m.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "zone.example.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 300}, Ns: "ns.zone.example."}}
	m.SetEdns0(1232, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, cookieOption("0102030405060708"+"01000000aabbccdd0011223344556677"))
	for _, withOPT := range []bool{true, false} {
		mm := m.Copy()
		if !withOPT {
			mm.Extra = nil
		}
		wire := mustPack(t, mm)
		out, ok := appendTruncated(wire[:0], wire) // in place
		if !ok {
			t.Fatal("not truncated")
		}
		r := new(dns.Msg)
		if err := r.Unpack(out); err != nil {
			t.Fatalf("truncated answer does not parse: %v", err)
		}
		if !r.Truncated || !r.Authoritative || len(r.Answer)+len(r.Ns) != 0 || r.Question[0].Name != "www.zone.example." {
			t.Errorf("truncated answer:\n%v", r)
		}
		if withOPT && replyCookie(r) != "0102030405060708"+"01000000aabbccdd0011223344556677" {
			t.Errorf("OPT or cookie lost:\n%v", r)
		}
		if !withOPT && len(r.Extra) != 0 {
			t.Errorf("records left in additional:\n%v", r)
		}
	}
}

// authHandler answers every query with one canned authoritative answer
// (as the local zones do), on the full path by Write of a buffer of its
// own, which it checks is handed back untouched, and on the ready path.
type authHandler struct {
	answer  []byte
	mutated atomic.Bool
}

func (h *authHandler) ServeDNS(_ context.Context, w ResponseWriter, r *Request) {
	b := append([]byte(nil), h.answer...)
	b[0], b[1] = r.Raw[0], r.Raw[1]
	w.Write(b)
	if !bytes.Equal(b[2:], h.answer[2:]) {
		h.mutated.Store(true)
	}
}

type authReady struct{ *authHandler }

func (h authReady) AnswerReady(dst, query []byte, maxSize int) ([]byte, bool) {
	if len(h.answer) > maxSize {
		return dst, false
	}
	dst = append(dst, h.answer...)
	dst[0], dst[1] = query[0], query[1]
	return dst, true
}

// TestRRLFlood: one /24 floods a local zone's name at 10x RRL's rate (500
// queries/s against 50/s) for a second, on the full path and the ready
// path. It gets about a second's burst plus the rate of answers, half of
// the rest truncated (slip 2); a client of another /24 asking meanwhile
// gets every answer; TCP from the flooded source is answered; a client
// returning a valid Server Cookie is exempt; and the resolver's answers
// (AA clear) are not limited at all.
func TestRRLFlood(t *testing.T) {
	cases := []struct {
		name  string
		h     func(*authHandler) Handler
		addr  string
		third byte
	}{
		{"full path", func(h *authHandler) Handler { return h }, "127.107.0.1:0", 10},
		{"ready path", func(h *authHandler) Handler { return authReady{h} }, "127.107.0.2:0", 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rrl, err := NewResponseRateLimiter(RRLConfig{Rate: 50, Slip: 2})
			if err != nil {
				t.Fatal(err)
			}
			ah := &authHandler{answer: authAnswer(t, "www.zone.example.", true)}
			ck := NewServerCookies(RandomCookieSecret(), nil)
			udp, tcp, _ := startDo53(t, tc.addr, Do53Config{ListenerConfig: ListenerConfig{Handler: tc.h(ah), RRL: rrl, Cookies: ck}})
			attacker := netip.AddrFrom4([4]byte{127, 107, 1, tc.third})
			var wg sync.WaitGroup
			var victim int
			wg.Add(1)
			go func() {
				defer wg.Done()
				victim = askAll(t, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 107, 2, tc.third}), 0).String(), udp, 30, 20*time.Millisecond)
			}()
			res := flood(t, netip.AddrPortFrom(attacker, 0).String(), udp, dnstest.Query("www.zone.example.", dns.TypeA), 500, time.Second)
			wg.Wait()
			s := rrl.Stats()
			t.Logf("flooder: %+v; victim answered %d/30; stats %+v", res, victim, s)
			if victim != 30 {
				t.Errorf("client in another /24 answered %d/30, want all", victim)
			}
			// 50 at once + 50/s over about a second (longer on a loaded
			// machine).
			if passed := int(s.Passed) - 30; passed < 90 || passed > 200 || res.answered > passed {
				t.Errorf("flooder answered %d (server: %d) of %d, want about 100", res.answered, passed, res.sent)
			}
			if d := int(s.Dropped) - int(s.Slipped); d < 0 || d > 1 || res.truncated == 0 || res.truncated > int(s.Slipped) {
				t.Errorf("stats %+v, flooder %+v: want as many slipped as dropped (slip 2), the slipped truncated", s, res)
			}
			if ah.mutated.Load() {
				t.Error("a slip truncated the handler's own buffer")
			}

			// TCP proves the source: answered in full right after the flood.
			askTCPFrom(t, attacker, tcp, dnstest.Query("www.zone.example.", dns.TypeA), 20)

			// A client returning a valid Server Cookie is exempt.
			cookieClient := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 107, 3, tc.third}), 0).String()
			full := learnCookie(t, cookieClient, udp)
			before := rrl.Stats()
			good := flood(t, cookieClient, udp, cookieQuery("www.zone.example.", full), 300, 500*time.Millisecond)
			after := rrl.Stats()
			if good.truncated != 0 || after.Slipped != before.Slipped || after.Dropped != before.Dropped || after.Exempt-before.Exempt < 100 {
				t.Errorf("client with a valid cookie: %+v, stats %+v: want none limited", good, after)
			}
		})
	}

	t.Run("resolver answers", func(t *testing.T) {
		rrl, err := NewResponseRateLimiter(RRLConfig{Rate: 50, Slip: 2})
		if err != nil {
			t.Fatal(err)
		}
		ah := &authHandler{answer: authAnswer(t, "www.zone.example.", false)}
		udp, _, _ := startDo53(t, "127.107.0.3:0", Do53Config{ListenerConfig: ListenerConfig{Handler: authReady{ah}, RRL: rrl}})
		res := flood(t, "127.107.4.1:0", udp, dnstest.Query("www.zone.example.", dns.TypeA), 300, 300*time.Millisecond)
		if s := rrl.Stats(); res.truncated != 0 || s != (RRLStats{}) || res.answered < 250 {
			t.Errorf("non-authoritative flood: %+v, stats %+v: want none judged", res, s)
		}
	})
}

// learnCookie asks dst from src with a Client Cookie and returns the full
// cookie of the answer.
func learnCookie(t *testing.T, src, dst string) string {
	t.Helper()
	c := udpFrom(t, src, dst)
	defer c.Close()
	c.Write(mustPack(t, cookieQuery("www.zone.example.", "0102030405060708")))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil {
		t.Fatal(err)
	}
	full := replyCookie(r)
	if len(full) != 48 || full[:16] != "0102030405060708" {
		t.Fatalf("reply cookie %q", full)
	}
	return full
}

// TestRRLOff: a disabled limiter judges nothing, and Reconfigure turns it
// on.
func TestRRLOff(t *testing.T) {
	r, err := NewResponseRateLimiter(RRLConfig{})
	if err != nil {
		t.Fatal(err)
	}
	www := authAnswer(t, "www.zone.example.", true)
	client := netip.MustParseAddr("192.0.2.1")
	for range 100 {
		if v := r.judge(www, client, false); v != ratePass {
			t.Fatal("disabled limiter limited")
		}
	}
	if s := r.Stats(); s != (RRLStats{}) {
		t.Fatalf("disabled limiter counted %+v", s)
	}
	if err := r.Reconfigure(RRLConfig{Rate: 5, Slip: -1}); err != nil {
		t.Fatal(err)
	}
	limited := 0
	for range 100 {
		if r.judge(www, client, false) != ratePass {
			limited++
		}
	}
	if limited < 90 || r.Stats().Slipped != 0 {
		t.Fatalf("after Reconfigure: %d of 100 limited, stats %+v; want about 95 dropped", limited, r.Stats())
	}
	if err := (RRLConfig{Rate: -1}).Validate(); err == nil {
		t.Error("negative rate accepted")
	}
}

// TestRRLAllocs: judging a response, and cutting one to its slip answer,
// allocate nothing (the UDP hot path).
func TestRRLAllocs(t *testing.T) {
	r, err := NewResponseRateLimiter(RRLConfig{Rate: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddr("192.0.2.1")
	for name, resp := range map[string][]byte{
		"answer":   authAnswer(t, "www.zone.example.", true),
		"nxdomain": negative(t, "x.zone.example.", "zone.example.", dns.RcodeNameError),
		"resolver": authAnswer(t, "www.zone.example.", false),
	} {
		if n := testing.AllocsPerRun(100, func() { r.judge(resp, client, false) }); n != 0 {
			t.Errorf("%s: %v allocations per judge", name, n)
		}
		buf := make([]byte, len(resp))
		if n := testing.AllocsPerRun(100, func() { copy(buf, resp); appendTruncated(buf[:0], buf) }); n != 0 {
			t.Errorf("%s: %v allocations per truncation", name, n)
		}
	}
}

// BenchmarkRRLJudge is the cost RRL adds to one UDP answer: an
// authoritative answer and NXDOMAIN (parsed, hashed, a bucket taken), a
// resolver's answer (the AA bit looked at), and RRL off.
func BenchmarkRRLJudge(b *testing.B) {
	on, err := NewResponseRateLimiter(RRLConfig{Rate: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	off, err := NewResponseRateLimiter(RRLConfig{})
	if err != nil {
		b.Fatal(err)
	}
	client := netip.MustParseAddr("192.0.2.1")
	for _, c := range []struct {
		name string
		r    *ResponseRateLimiter
		resp []byte
	}{
		{"answer", on, authAnswer(b, "www.zone.example.", true)},
		{"nxdomain", on, negative(b, "x.zone.example.", "zone.example.", dns.RcodeNameError)},
		{"resolver", on, authAnswer(b, "www.zone.example.", false)},
		{"off", off, authAnswer(b, "www.zone.example.", true)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.r.judge(c.resp, client, false)
			}
		})
	}
}

// BenchmarkDo53UDPRRL measures the UDP ready path answering an
// authoritative answer without RRL, with RRL off (built, disabled: what
// serve runs by default) and on (a rate far above what the benchmark
// sends: it measures the cost, not the limit).
func BenchmarkDo53UDPRRL(b *testing.B) {
	for i, c := range []struct {
		name string
		cfg  *RRLConfig
	}{
		{"none", nil},
		{"off", &RRLConfig{}},
		{"on", &RRLConfig{Rate: 1 << 30}},
	} {
		b.Run(c.name, func(b *testing.B) {
			lc := ListenerConfig{Handler: authReady{&authHandler{answer: authAnswer(b, "www.zone.example.", true)}}}
			if c.cfg != nil {
				r, err := NewResponseRateLimiter(*c.cfg)
				if err != nil {
					b.Fatal(err)
				}
				lc.RRL = r
			}
			udp, _, _ := startDo53(b, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 107, 0, byte(100 + i)}), 0).String(), Do53Config{ListenerConfig: lc})
			benchUDPExchanges(b, func() (net.Conn, error) { return net.Dial("udp", udp) },
				mustPack(b, dnstest.Query("www.zone.example.", dns.TypeA)))
		})
	}
}
