package transport

import (
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// cookieQuery is a query for name with a COOKIE option of hexCookie.
func cookieQuery(name, hexCookie string) *dns.Msg {
	q := dnstest.Query(name, dns.TypeA)
	q.SetEdns0(1232, false)
	q.IsEdns0().Option = append(q.IsEdns0().Option, cookieOption(hexCookie))
	return q
}

// TestServerCookiesServed: over UDP (on the ready path, and on the full
// path when the ready answer has no OPT to put the cookie in) and TCP, a
// Client Cookie gets a Server Cookie; returning it gets it back as it is;
// a forged one is answered normally with a fresh one (no rate limit to
// slip); a query without a cookie gets none.
func TestServerCookiesServed(t *testing.T) {
	ck := NewServerCookies(RandomCookieSecret(), nil)
	ans := new(dns.Msg).SetQuestion("fast.example.", dns.TypeA)
	ans.Response = true
	ans.Answer = append(ans.Answer, &dns.A{Hdr: dns.RR_Header{Name: "fast.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)})
	noOPT := &readyHandler{answer: mustPack(t, ans)}
	withOPT := &readyHandler{answer: mustPack(t, ans.Copy().SetEdns0(1232, false))}
	udp, tcp, _ := startDo53(t, "127.83.0.4:0", Do53Config{ListenerConfig: ListenerConfig{Handler: withOPT, Cookies: ck}})
	udpNoOPT, _, _ := startDo53(t, "127.83.0.9:0", Do53Config{ListenerConfig: ListenerConfig{Handler: noOPT, Cookies: ck}})
	for _, network := range []string{"udp", "tcp", "udp without OPT"} {
		addr := udp
		switch network {
		case "tcp":
			addr = tcp
		case "udp without OPT":
			addr = udpNoOPT
		}
		c := &dns.Client{Net: strings.Fields(network)[0], Timeout: 2 * time.Second}
		ask := func(q *dns.Msg) *dns.Msg {
			t.Helper()
			r, _, err := c.Exchange(q, addr)
			if err != nil {
				t.Fatalf("%s: %v", network, err)
			}
			if r.Rcode != dns.RcodeSuccess {
				t.Fatalf("%s: rcode %s", network, dns.RcodeToString[r.Rcode])
			}
			return r
		}
		first := replyCookie(ask(cookieQuery("fast.example.", "a1a2a3a4a5a6a7a8")))
		if len(first) != 48 || !strings.HasPrefix(first, "a1a2a3a4a5a6a7a801000000") {
			t.Fatalf("%s: first cookie %q", network, first)
		}
		if again := replyCookie(ask(cookieQuery("fast.example.", first))); again != first {
			t.Errorf("%s: valid cookie answered with %q, want it back", network, again)
		}
		forged := first[:32] + "0000000000000000"
		if fresh := replyCookie(ask(cookieQuery("fast.example.", forged))); fresh == forged || len(fresh) != 48 {
			t.Errorf("%s: forged cookie answered with %q", network, fresh)
		}
		if none := replyCookie(ask(dnstest.Query("fast.example.", dns.TypeA).SetEdns0(1232, false))); none != "" {
			t.Errorf("%s: query without a cookie got %q", network, none)
		}
	}
	if s := ck.Stats(); s.ClientOnly != 3 || s.Valid != 3 || s.Invalid != 3 {
		t.Errorf("stats %+v, want 3 of each", s)
	}
	// Every UDP query took the ready path; the answers without an OPT went
	// on to the full path, which answered them. Over TCP the three cookie
	// queries took the full path (only UDP's ready path adds cookies) and
	// the one without a cookie the ready path.
	if r, f := withOPT.ready.Load(), withOPT.full.Load(); r != 5 || f != 3 {
		t.Errorf("ready path %d, full path %d (TCP); want 5 and 3", r, f)
	}
	if f := noOPT.full.Load(); f != 3 {
		t.Errorf("without an OPT: full path %d, want the 3 cookie queries", f)
	}
}

// TestReadyCookie: which queries with a COOKIE option the ready path
// takes, and the option appended to a ready answer parses.
func TestReadyCookie(t *testing.T) {
	withOpts := func(opts ...dns.EDNS0) []byte {
		q := dnstest.Query("example.", dns.TypeA).SetEdns0(1232, false)
		q.IsEdns0().Option = opts
		return mustPack(t, q)
	}
	cookie := func(n int) dns.EDNS0 { return cookieOption(strings.Repeat("ab", n)) }
	cases := []struct {
		name string
		raw  []byte
		ok   bool
	}{
		{"client cookie", withOpts(cookie(8)), true},
		{"client and 16-octet server cookie", withOpts(cookie(24)), true},
		{"a 32-octet server cookie: not ours", withOpts(cookie(40)), false},
		{"cookie and padding", withOpts(cookie(8), &dns.EDNS0_PADDING{Padding: make([]byte, 4)}), false},
		{"padding only", withOpts(&dns.EDNS0_PADDING{Padding: make([]byte, 4)}), false},
		{"no option", withOpts(), false},
	}
	for _, c := range cases {
		if _, _, ok := readyCookie(c.raw); ok != c.ok {
			t.Errorf("%s: ok %v, want %v", c.name, ok, c.ok)
		}
	}
	ans := new(dns.Msg).SetQuestion("example.", dns.TypeA)
	ans.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}}
	ans.Ns = []dns.RR{&dns.NS{Hdr: dns.RR_Header{Name: "example.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60}, Ns: "ns.example."}}
	ans.Compress = true
	var ck [fullCookieLen]byte
	for i := range ck {
		ck[i] = byte(i)
	}
	got, ok := appendCookieOption(mustPack(t, ans.Copy().SetEdns0(1232, true)), &ck)
	m := new(dns.Msg)
	if !ok || m.Unpack(got) != nil || replyCookie(m) != "000102030405060708090a0b0c0d0e0f1011121314151617" || !m.IsEdns0().Do() || len(m.Ns) != 1 {
		t.Fatalf("appended: ok %v, %v", ok, m)
	}
	if _, ok := appendCookieOption(mustPack(t, ans), &ck); ok {
		t.Fatal("appended a cookie to an answer without an OPT")
	}
	if _, ok := appendCookieOption(append(mustPack(t, ans.Copy().SetEdns0(1232, false)), 0), &ck); ok {
		t.Fatal("appended a cookie to an answer with trailing bytes")
	}
}

// cookieRE finds the cookie dig and kdig print in their OPT pseudosection.
var cookieRE = regexp.MustCompile(`COOKIE: ([0-9a-fA-F]+)`)

// TestDigKdigCookies: dig +cookie and kdig +cookie get a Server Cookie
// from Sextant, dig says it is "good" (our Client Cookie came back), and
// the cookie they get is accepted when sent back (returned unchanged).
func TestDigKdigCookies(t *testing.T) {
	dig := dnstest.RequireTool(t, "dig")
	kdig := dnstest.RequireTool(t, "kdig")
	ck := NewServerCookies(RandomCookieSecret(), nil)
	udp, tcp, _ := startDo53(t, "127.83.0.5:0", Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(1), Cookies: ck}})
	host, port, _ := net.SplitHostPort(udp)
	_, tport, _ := net.SplitHostPort(tcp)
	if tport != port {
		t.Fatalf("UDP port %s, TCP port %s", port, tport)
	}
	for _, tcpFlag := range []string{"+notcp", "+tcp"} {
		out := runClient(t, clientTimeout, dig, "@"+host, "-p", port, "+cookie", tcpFlag, "+tries=1", "+time=3", "cookie.example.", "A")
		m := cookieRE.FindStringSubmatch(out)
		if m == nil || len(m[1]) != 48 || !strings.Contains(out, "(good)") || !strings.Contains(out, "status: NOERROR") {
			t.Fatalf("dig %s: no good server cookie:\n%s", tcpFlag, out)
		}
		out = runClient(t, clientTimeout, dig, "@"+host, "-p", port, "+cookie="+m[1], tcpFlag, "+tries=1", "+time=3", "cookie.example.", "A")
		if again := cookieRE.FindStringSubmatch(out); again == nil || again[1] != m[1] {
			t.Errorf("dig %s sent back %s; got:\n%s", tcpFlag, m[1], out)
		}
	}
	// kdig prints the cookie in upper case.
	out := runClient(t, clientTimeout, kdig, "@"+host, "-p", port, "+cookie", "+retry=0", "+timeout=3", "cookie.example.", "A")
	m := cookieRE.FindStringSubmatch(out)
	if m != nil {
		m[1] = strings.ToLower(m[1])
	}
	if m == nil || len(m[1]) != 48 || !strings.Contains(out, "NOERROR") {
		t.Fatalf("kdig: no server cookie:\n%s", out)
	}
	out = runClient(t, clientTimeout, kdig, "@"+host, "-p", port, "+cookie="+m[1], "+retry=0", "+timeout=3", "cookie.example.", "A")
	if again := cookieRE.FindStringSubmatch(out); again == nil || strings.ToLower(again[1]) != m[1] {
		t.Errorf("kdig sent back %s; got:\n%s", m[1], out)
	}
	if s := ck.Stats(); s.ClientOnly < 3 || s.Valid < 3 || s.Invalid != 0 {
		t.Errorf("cookie stats %+v", s)
	}
}

// TestDigBadCookie: with every limited answer slipped, dig +cookie sending
// a stale Server Cookie while its /24 is over the limit gets BADCOOKIE
// with a fresh cookie (dig +nobadcookie shows it instead of retrying).
func TestDigBadCookie(t *testing.T) {
	dig := dnstest.RequireTool(t, "dig")
	l, err := NewRateLimiter(RateLimitConfig{Rate: 1, Burst: 1, Slip: 1})
	if err != nil {
		t.Fatal(err)
	}
	ck := NewServerCookies(RandomCookieSecret(), nil)
	udp, _, _ := startDo53(t, "127.83.0.6:0", Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(1), Cookies: ck, RateLimit: l}})
	host, port, _ := net.SplitHostPort(udp)
	// The first query spends dig's bucket of one (answered, with a fresh
	// cookie, since the stale one is invalid); the next ones are limited,
	// and with Slip 1 every limited one is slipped.
	stale := "0102030405060708" + "01000000" + "00000001" + "0000000000000000"
	var out string
	for range 3 {
		out = runClient(t, clientTimeout, dig, "@"+host, "-p", port, "+cookie="+stale, "+nobadcookie", "+tries=1", "+time=3", "cookie.example.", "A")
	}
	m := cookieRE.FindStringSubmatch(out)
	if !strings.Contains(out, "status: BADCOOKIE") || m == nil || len(m[1]) != 48 || m[1] == stale {
		t.Fatalf("dig with a stale cookie while limited: want BADCOOKIE with a fresh cookie:\n%s", out)
	}
	// Sending the fresh cookie back exempts dig from the limit.
	out = runClient(t, clientTimeout, dig, "@"+host, "-p", port, "+cookie="+m[1], "+tries=1", "+time=3", "cookie.example.", "A")
	if !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, "ANSWER: 1") {
		t.Fatalf("dig with the fresh cookie: want an answer despite the limit:\n%s", out)
	}
}
