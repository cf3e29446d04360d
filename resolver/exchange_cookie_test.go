package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// Upstream-cookie tests use 127.83.5.0/24 (ARCHITECTURE.md) for their
// fake servers, and BIND and Knot on 127.0.0.1 with free ports.

// cookieServer is a UDP server on addr whose answer function sees each
// query and returns the datagrams to send back, in order.
func cookieServer(t *testing.T, addr string, answer func(q *dns.Msg) []*dns.Msg) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			for _, r := range answer(q) {
				b, _ := r.Pack()
				pc.WriteTo(b, from)
			}
		}
	}()
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

// queryCookie returns the COOKIE option of m in hex, or "".
func queryCookie(m *dns.Msg) string {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if c, ok := o.(*dns.EDNS0_COOKIE); ok {
				return c.Cookie
			}
		}
	}
	return ""
}

// replyWith is the answer to q (one A record) with a COOKIE option of
// hexCookie ("" for none) and rcode.
func replyWith(q *dns.Msg, hexCookie string, rcode int) *dns.Msg {
	r := new(dns.Msg).SetRcode(q, rcode)
	if rcode == dns.RcodeSuccess {
		r.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 7)}}
	}
	r.SetEdns0(1232, false)
	if hexCookie != "" {
		r.IsEdns0().Option = append(r.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hexCookie})
	}
	r.Rcode = rcode
	return r
}

func cookieQuestion(server netip.AddrPort) outQuery {
	return outQuery{Name: "cookie.example.", Type: dns.TypeA, Class: dns.ClassINET, Server: server, EDNS: true, Timeout: 500 * time.Millisecond}
}

// TestUpstreamCookies: the resolver sends its Client Cookie, learns the
// Server Cookie and sends it back; once a server gave a cookie, a reply
// without our Client Cookie (or with another) sent ahead of the real one
// is dropped and the real one taken; a server that stops sending cookies
// costs one timeout, then is accepted; BADCOOKIE is retried with the
// fresh cookie.
func TestUpstreamCookies(t *testing.T) {
	const serverCookie = "0100000000000001aabbccddeeff0011"
	var mu sync.Mutex // guards seen and mode, shared with the server
	var seen []string
	mode := "normal"
	setMode := func(m string) { mu.Lock(); mode = m; mu.Unlock() }
	seenAt := func(i int) string { mu.Lock(); defer mu.Unlock(); return seen[i] }
	srv := cookieServer(t, "127.83.5.1:0", func(q *dns.Msg) []*dns.Msg {
		mu.Lock()
		defer mu.Unlock()
		c := queryCookie(q)
		seen = append(seen, c)
		if len(c) < 16 {
			return nil
		}
		cc := c[:16]
		switch mode {
		case "forged first":
			return []*dns.Msg{replyWith(q, "", 0), replyWith(q, "1111111111111111"+serverCookie, 0), replyWith(q, cc+serverCookie, 0)}
		case "no cookies":
			return []*dns.Msg{replyWith(q, "", 0)}
		case "badcookie":
			if len(c) == 16+len(serverCookie) && c[16:] == "0100000000000002aabbccddeeff0011" {
				return []*dns.Msg{replyWith(q, c, 0)}
			}
			return []*dns.Msg{replyWith(q, cc+"0100000000000002aabbccddeeff0011", dns.RcodeBadCookie)}
		}
		return []*dns.Msg{replyWith(q, cc+serverCookie, 0)}
	})
	x := newExchanger()
	ctx := context.Background()
	ask := func() (*dns.Msg, error) {
		r, _, err := x.exchange(ctx, cookieQuestion(srv))
		return r, err
	}
	if _, err := ask(); err != nil {
		t.Fatal(err)
	}
	cc := x.cookies.clientCookie(srv.Addr())
	if seenAt(0) != cc {
		t.Fatalf("first query cookie %q, want our client cookie %q alone", seenAt(0), cc)
	}
	if _, err := ask(); err != nil {
		t.Fatal(err)
	}
	if seenAt(1) != cc+serverCookie {
		t.Fatalf("second query cookie %q, want the server cookie sent back", seenAt(1))
	}

	setMode("forged first")
	r, err := ask()
	if err != nil || len(r.Answer) != 1 || queryCookie(r) != cc+serverCookie {
		t.Fatalf("with forged replies first: %v %v", err, r)
	}

	setMode("no cookies")
	if _, err := ask(); !errors.Is(err, errCookieMismatch) || !errors.Is(err, errTimeout) {
		t.Fatalf("server dropping cookies: err %v, want cookie mismatch timeout", err)
	}
	if _, err := ask(); err != nil {
		t.Fatalf("after forgetting the server's cookie: %v", err)
	}

	setMode("badcookie")
	r, err = ask()
	if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("BADCOOKIE retry: %v %v", err, r)
	}

	// Another server gets another client cookie.
	if other := x.cookies.clientCookie(netip.MustParseAddr("127.83.5.2")); other == cc {
		t.Fatal("two servers share a client cookie")
	}
}

const cookieZone = `$TTL 60
@ IN SOA ns.cookie.example. hostmaster.cookie.example. 1 3600 600 86400 60
@ IN NS ns.cookie.example.
ns IN A 127.0.0.1
www IN A 192.0.2.80
`

// TestUpstreamCookiesInterop: BIND 9 (require-server-cookie) and Knot DNS
// (mod-cookies with every invalid cookie answered BADCOOKIE) as
// authoritative servers. Each refuses an answer until the query returns
// its Server Cookie, so an answer proves the cookie round-tripped; the
// cookie learnt is theirs and stays valid for the next queries.
func TestUpstreamCookiesInterop(t *testing.T) {
	servers := []struct {
		name  string
		start func(t *testing.T, dir string, port int)
	}{
		{"bind", func(t *testing.T, dir string, port int) {
			dnstest.StartBIND(t, dnstest.BIND{Dir: dir, Port: port,
				Options: []string{"answer-cookie yes;", "require-server-cookie yes;"},
				Conf:    fmt.Sprintf("zone \"cookie.example\" { type primary; file %q; };\n", filepath.Join(dir, "zone"))})
		}},
		{"knot", func(t *testing.T, dir string, port int) {
			dnstest.StartKnot(t, dnstest.Knot{Dir: dir, Listen: fmt.Sprintf("127.0.0.1@%d", port), Conf: fmt.Sprintf(`mod-cookies:
  - id: strict
    badcookie-slip: 1
template:
  - id: default
    global-module: mod-cookies/strict
zone:
  - domain: cookie.example
    storage: %[1]q
    file: %[2]q
`, dir, filepath.Join(dir, "zone"))})
		}},
	}
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "zone"), []byte(cookieZone), 0o644); err != nil {
				t.Fatal(err)
			}
			port := dnstest.FreeLoopbackPort(t)
			s.start(t, dir, port)
			server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
			waitForServer(t, server)

			x := newExchanger()
			q := outQuery{Name: "www.cookie.example.", Type: dns.TypeA, Class: dns.ClassINET, Server: server, EDNS: true, Timeout: time.Second}
			for i := range 3 {
				r, _, err := x.exchange(context.Background(), q)
				if err != nil {
					t.Fatalf("query %d: %v", i, err)
				}
				if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
					t.Fatalf("query %d: %v", i, r)
				}
				got := strings.ToLower(queryCookie(r))
				cc := x.cookies.clientCookie(server.Addr())
				if !strings.HasPrefix(got, cc) || len(got) < 32 {
					t.Fatalf("query %d: reply cookie %q lacks our client cookie %s", i, got, cc)
				}
				x.cookies.mu.Lock()
				learnt := x.cookies.server[server.Addr()]
				x.cookies.mu.Unlock()
				if learnt != got[len(cc):] {
					t.Fatalf("query %d: learnt %q, reply had %q", i, learnt, got)
				}
			}
			// A query without our server cookie is refused by the strict
			// server: the cookies above were needed.
			raw := new(dns.Msg).SetQuestion("www.cookie.example.", dns.TypeA).SetEdns0(1232, false)
			raw.IsEdns0().Option = append(raw.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
			r, err := dns.Exchange(raw, server.String())
			if err != nil || r.Rcode != dns.RcodeBadCookie {
				t.Fatalf("strict server with a client cookie only: %v %v, want BADCOOKIE", err, r)
			}
		})
	}
}

// waitForServer waits until server answers over UDP.
func waitForServer(t *testing.T, server netip.AddrPort) {
	t.Helper()
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, _, err := c.Exchange(new(dns.Msg).SetQuestion("cookie.example.", dns.TypeSOA), server.String()); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never answered", server)
}
