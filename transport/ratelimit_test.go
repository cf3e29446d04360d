package transport

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// Cookie and rate-limit tests use 127.83.0.0/16 (ARCHITECTURE.md): the
// server on 127.83.0.x, clients in 127.83.1-9.x, one /24 each where a test
// needs distinct prefixes.

// fakeNow is a settable monotonic clock for the limiter.
type fakeNow struct{ ns int64 }

func (f *fakeNow) now() int64 { return f.ns }

func limiterAt(t *testing.T, c RateLimitConfig) (*RateLimiter, *fakeNow) {
	t.Helper()
	l, err := NewRateLimiter(c)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNow{}
	l.now = f.now
	return l, f
}

// TestRateLimiterBucket: a prefix gets Burst answers at once, then Rate
// per second; its limited answers slip every Slip-th; another prefix, and
// an exempt one, are untouched.
func TestRateLimiterBucket(t *testing.T) {
	l, clk := limiterAt(t, RateLimitConfig{Rate: 10, Burst: 5, Slip: 3,
		Exempt: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}})
	a := netip.MustParseAddr("192.0.2.1")
	sameNet := netip.MustParseAddr("192.0.2.200")
	other := netip.MustParseAddr("203.0.113.1")
	for i := range 5 {
		if v := l.admit(a); v != ratePass {
			t.Fatalf("answer %d of the burst: verdict %d", i, v)
		}
	}
	var got []rateVerdict
	for range 6 {
		got = append(got, l.admit(sameNet))
	}
	want := []rateVerdict{rateDrop, rateDrop, rateSlip, rateDrop, rateDrop, rateSlip}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("limited verdicts %v, want %v", got, want)
		}
	}
	if v := l.admit(other); v != ratePass {
		t.Fatalf("another prefix: verdict %d", v)
	}
	clk.ns += int64(100 * time.Millisecond) // one more token at 10/s
	if v := l.admit(a); v != ratePass {
		t.Fatalf("after 100 ms: verdict %d", v)
	}
	if v := l.admit(a); v == ratePass {
		t.Fatal("the refilled token was spent twice")
	}
	for range 100 {
		if v := l.admit(netip.MustParseAddr("198.51.100.7")); v != ratePass {
			t.Fatal("exempt client limited")
		}
	}
	s := l.Stats()
	if s.Passed != 7 || s.Exempt != 100 || s.Slipped != 2 || s.Dropped != 5 {
		t.Fatalf("stats %+v", s)
	}
}

// TestRateLimiterPrefixes: /24 and /56 group clients; IPv4-mapped IPv6
// counts as IPv4.
func TestRateLimiterPrefixes(t *testing.T) {
	l, _ := limiterAt(t, RateLimitConfig{})
	cases := []struct {
		a, b string
		same bool
	}{
		{"192.0.2.1", "192.0.2.254", true},
		{"192.0.2.1", "192.0.3.1", false},
		{"192.0.2.1", "::ffff:192.0.2.9", true},
		{"2001:db8:0:ab00::1", "2001:db8:0:abff:ffff::1", true},
		{"2001:db8:0:ab00::1", "2001:db8:0:ac00::1", false},
		{"0.0.0.1", "::1", false},
	}
	for _, c := range cases {
		ka, kb := l.key(netip.MustParseAddr(c.a)), l.key(netip.MustParseAddr(c.b))
		if (ka == kb) != c.same || ka == 0 || kb == 0 {
			t.Errorf("%s %s: keys %x %x, want same=%v", c.a, c.b, ka, kb, c.same)
		}
	}
}

// TestRateLimiterBoundedMemory: a million spoofed prefixes fill no more
// than the fixed table, and a prefix over its limit that another prefix
// pushes out of its slot starts again with a full bucket (never tighter).
func TestRateLimiterBoundedMemory(t *testing.T) {
	l, _ := limiterAt(t, RateLimitConfig{Rate: 1, Burst: 1, Slots: 1024})
	before := 0
	for i := range l.shards {
		before += len(l.shards[i].slots)
	}
	for i := range 1 << 20 {
		l.admit(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), 1}))
	}
	after := 0
	for i := range l.shards {
		after += len(l.shards[i].slots)
	}
	if before != after || after > 1024 {
		t.Fatalf("slots %d then %d, want fixed at most 1024", before, after)
	}
}

func TestRateLimitConfigValidate(t *testing.T) {
	bad := []RateLimitConfig{{Rate: -1}, {Slip: -2}, {IPv4Prefix: 33}, {IPv6Prefix: 65}, {Slots: -1}}
	for _, c := range bad {
		if _, err := NewRateLimiter(c); err == nil {
			t.Errorf("%+v: accepted", c)
		}
	}
}

// cannedReady answers every query on the ReadyAnswerer fast path with a
// canned answer (a cache hit), and on the full path likewise.
type cannedReady struct{ *cannedHandler }

func (h cannedReady) AnswerReady(dst, query []byte, maxSize int) ([]byte, bool) {
	if len(h.answer) > maxSize {
		return dst, false
	}
	dst = append(dst, h.answer...)
	dst[0], dst[1] = query[0], query[1]
	return dst, true
}

// udpFrom opens a UDP socket from src to dst.
func udpFrom(t *testing.T, src, dst string) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(src)), net.UDPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// flood sends n copies of q from src to dst over d and counts what came
// back (dnstest.FloodUDP).
func flood(t *testing.T, src, dst string, q *dns.Msg, n int, d time.Duration) floodResult {
	t.Helper()
	r := dnstest.FloodUDP(t, src, dst, n, d, func(int) *dns.Msg { return q })
	return floodResult{sent: r.Sent, answered: r.Answered, truncated: r.Truncated, badCookie: r.BadCookie}
}

// floodResult is what flood's callers read.
type floodResult struct{ sent, answered, truncated, badCookie int }

// askAll sends n queries from src to dst one after another, spaced by gap,
// and returns how many got a full (not truncated) answer.
func askAll(t *testing.T, src, dst string, n int, gap time.Duration) int {
	t.Helper()
	c := udpFrom(t, src, dst)
	answered := 0
	buf := make([]byte, 2048)
	for range n {
		q := dnstest.Query("victim.example.", dns.TypeA)
		c.Write(mustPack(t, q))
		c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			k, err := c.Read(buf)
			if err != nil {
				break
			}
			r := new(dns.Msg)
			if r.Unpack(buf[:k]) == nil && r.Id == q.Id {
				if !r.Truncated && len(r.Answer) > 0 {
					answered++
				}
				break
			}
		}
		time.Sleep(gap)
	}
	return answered
}

// TestRateLimitFlood: one /24 floods at 10x its limit (1000 queries/s
// against 100/s with a burst of 100) for a second, on both the fast path
// (ReadyAnswerer) and the full path. It gets about Burst + Rate answers,
// and half of the rest truncated (slip 2); a client of another /24 asking
// meanwhile gets every answer; an exempt /24 flooding as hard is never
// limited; and TCP from the flooded source is still answered.
func TestRateLimitFlood(t *testing.T) {
	handlers := []struct {
		name string
		h    Handler
		addr string
	}{
		{"full path", newCannedHandler(t), "127.83.0.1:0"},
		{"ready path", cannedReady{newCannedHandler(t)}, "127.83.0.2:0"},
	}
	for i, hc := range handlers {
		t.Run(hc.name, func(t *testing.T) {
			l, err := NewRateLimiter(RateLimitConfig{Rate: 100, Burst: 100, Slip: 2,
				Exempt: []netip.Prefix{netip.MustParsePrefix("127.83.9.0/24")}})
			if err != nil {
				t.Fatal(err)
			}
			udp, tcp, _ := startDo53(t, hc.addr, Do53Config{ListenerConfig: ListenerConfig{Handler: hc.h, RateLimit: l}})
			attacker := netip.AddrFrom4([4]byte{127, 83, 1, byte(10 + i)})
			var wg sync.WaitGroup
			var victim int
			wg.Add(1)
			go func() {
				defer wg.Done()
				victim = askAll(t, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 83, 2, byte(10 + i)}), 0).String(), udp, 50, 15*time.Millisecond)
			}()
			res := flood(t, netip.AddrPortFrom(attacker, 0).String(), udp, dnstest.Query("bench.example.", dns.TypeA), 1000, time.Second)
			wg.Wait()
			t.Logf("flooder: %+v; victim answered %d/50; stats %+v", res, victim, l.Stats())
			if victim != 50 {
				t.Errorf("victim in another /24 answered %d/50, want all", victim)
			}
			// Burst 100 + 100/s over about a second (the flood takes a
			// little longer than its nominal second on a loaded machine).
			if passed := int(l.Stats().Passed) - 50; passed < 150 || passed > 320 || res.answered > passed {
				t.Errorf("flooder answered %d (server: %d) of %d, want about 200", res.answered, passed, res.sent)
			}
			// Of the limited answers every second one slipped. The
			// counts are the server's: on a loaded machine the kernel may
			// drop a few datagrams either way.
			s := l.Stats()
			if d := int(s.Dropped) - int(s.Slipped); d < 0 || d > 1 {
				t.Errorf("stats %+v: want as many slipped as dropped (slip 2)", s)
			}
			if res.truncated > int(s.Slipped) || int(s.Passed) < res.answered {
				t.Errorf("stats %+v disagree with what the flooder got %+v", s, res)
			}

			exempt := flood(t, "127.83.9.1:0", udp, dnstest.Query("bench.example.", dns.TypeA), 1000, time.Second)
			after := l.Stats()
			if exempt.truncated != 0 || after.Slipped != s.Slipped || after.Dropped != s.Dropped || int(after.Exempt) < exempt.answered || after.Exempt < 100 {
				t.Errorf("exempt /24: %+v, stats %+v: want none limited", exempt, after)
			}

			// TCP proves the source: answered in full right after the flood.
			askTCPFrom(t, attacker, tcp, dnstest.Query("bench.example.", dns.TypeA), 20)
		})
	}
}

// TestRateLimitCookies: a flooding client that returns a valid Server
// Cookie is not limited; one that sends only a Client Cookie gets
// BADCOOKIE with a fresh cookie on its slip turns, instead of TC.
func TestRateLimitCookies(t *testing.T) {
	l, err := NewRateLimiter(RateLimitConfig{Rate: 100, Burst: 100, Slip: 2})
	if err != nil {
		t.Fatal(err)
	}
	ck := NewServerCookies(RandomCookieSecret(), nil)
	udp, _, _ := startDo53(t, "127.83.0.3:0", Do53Config{ListenerConfig: ListenerConfig{Handler: newCannedHandler(t), RateLimit: l, Cookies: ck}})

	withCookie := func(cookie string) *dns.Msg { return cookieQuery("bench.example.", cookie) }
	full := learnCookie(t, "127.83.3.1:0", udp)

	// The counts are the server's: on a loaded machine the kernel may
	// drop a few datagrams either way.
	good := flood(t, "127.83.3.1:0", udp, withCookie(full), 1000, time.Second)
	if s := l.Stats(); good.truncated != 0 || good.badCookie != 0 || s.Slipped != 0 || s.Dropped != 0 || int(s.Exempt) < good.answered || s.Exempt < 100 {
		t.Errorf("client with a valid server cookie: %+v, stats %+v, want none limited", good, s)
	}
	bad := flood(t, "127.83.4.1:0", udp, withCookie("0102030405060708"), 1000, time.Second)
	s := ck.Stats()
	if bad.truncated != 0 || bad.badCookie == 0 || bad.badCookie > int(s.BadCookie) || s.BadCookie < 50 || bad.answered > 320 {
		t.Errorf("client cookie only: %+v, cookie stats %+v: want about 400 BADCOOKIE, no TC", bad, s)
	}
	if ls := l.Stats(); ls.Slipped != s.BadCookie || ls.Dropped < ls.Slipped || ls.Dropped > ls.Slipped+1 {
		t.Errorf("limiter stats %+v, cookie stats %+v: every slip a BADCOOKIE", ls, s)
	}
}

// replyCookie returns the COOKIE option of r in hex, or "".
func replyCookie(r *dns.Msg) string {
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if c, ok := o.(*dns.EDNS0_COOKIE); ok {
				return c.Cookie
			}
		}
	}
	return ""
}

// askTCPFrom asks q n times over one TCP connection from the address from
// and fails the test unless every answer comes whole (one record, TC
// clear): TCP proves the source, so no rate limit applies to it.
func askTCPFrom(t *testing.T, from netip.Addr, server string, q *dns.Msg, n int) {
	t.Helper()
	c, err := net.DialTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), net.TCPAddrFromAddrPort(netip.MustParseAddrPort(server)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	raw := mustPack(t, q)
	for range n {
		if err := writeFramed(c, raw); err != nil {
			t.Fatal(err)
		}
		b, err := readFramed(c)
		r := new(dns.Msg)
		if err != nil || r.Unpack(b) != nil || len(r.Answer) != 1 || r.Truncated {
			t.Fatalf("TCP from %s: %v %v", from, err, r)
		}
	}
}
