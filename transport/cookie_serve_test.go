package transport

import (
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// cookieQuery is a query for name with a COOKIE option of hexCookie.
func cookieQuery(name, hexCookie string) *dns.Msg {
	q := query(name, dns.TypeA)
	q.SetEdns0(1232, false)
	q.IsEdns0().Option = append(q.IsEdns0().Option, cookieOption(hexCookie))
	return q
}

// TestServerCookiesServed: over UDP (full and fast-path handlers) and TCP,
// a Client Cookie gets a Server Cookie; returning it gets it back as it
// is; a forged one is answered normally with a fresh one (no rate limit
// to slip); a query without a cookie gets none, and on the fast path
// stays on it.
func TestServerCookiesServed(t *testing.T) {
	ck := NewServerCookies(RandomCookieSecret(), nil)
	h := &readyHandler{}
	ans := new(dns.Msg).SetQuestion("fast.example.", dns.TypeA)
	ans.Response = true
	ans.Answer = append(ans.Answer, &dns.A{Hdr: dns.RR_Header{Name: "fast.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)})
	h.answer = mustPack(t, ans)
	udp, tcp, _ := startDo53(t, "127.83.0.4:0", Do53Config{ListenerConfig: ListenerConfig{Handler: h, Cookies: ck}})
	for _, network := range []string{"udp", "tcp"} {
		addr := udp
		if network == "tcp" {
			addr = tcp
		}
		c := &dns.Client{Net: network, Timeout: 2 * time.Second}
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
		if none := replyCookie(ask(query("fast.example.", dns.TypeA).SetEdns0(1232, false))); none != "" {
			t.Errorf("%s: query without a cookie got %q", network, none)
		}
	}
	if s := ck.Stats(); s.ClientOnly != 2 || s.Valid != 2 || s.Invalid != 2 {
		t.Errorf("stats %+v, want 2 of each", s)
	}
	// Only the UDP query without a cookie took the fast path.
	if r := h.ready.Load(); r != 1 {
		t.Errorf("fast path answered %d, want 1", r)
	}
}

// cookieRE finds the cookie dig and kdig print in their OPT pseudosection.
var cookieRE = regexp.MustCompile(`COOKIE: ([0-9a-fA-F]+)`)

// TestDigKdigCookies: dig +cookie and kdig +cookie get a Server Cookie
// from Sextant, dig says it is "good" (our Client Cookie came back), and
// the cookie they get is accepted when sent back (returned unchanged).
func TestDigKdigCookies(t *testing.T) {
	dig := requireTool(t, "dig")
	kdig := requireTool(t, "kdig")
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
	dig := requireTool(t, "dig")
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
