package transport

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// The PROXY protocol tests use 127.91.0.0/16: the server on .0.1, the
// trusted load balancer on .0.2, an untrusted peer on .0.3; the clients
// the load balancer relays for are on .1.x (allowed by the ACL) and .2.x
// (not allowed).
var (
	ppLB        = netip.MustParseAddr("127.91.0.2")
	ppStranger  = netip.MustParseAddr("127.91.0.3")
	ppAllowed   = netip.MustParseAddrPort("127.91.1.5:5353")
	ppAllowed2  = netip.MustParseAddrPort("127.91.1.6:5354")
	ppForbidden = netip.MustParseAddrPort("127.91.2.5:5353")
	ppAllowNet  = netip.MustParsePrefix("127.91.1.0/24")
)

// seenHandler answers every query with an A record and records who asked
// and through which load balancer.
type seenHandler struct {
	mu           sync.Mutex
	remotes, via []netip.AddrPort
}

func (h *seenHandler) ServeDNS(_ context.Context, w ResponseWriter, r *Request) {
	h.mu.Lock()
	h.remotes, h.via = append(h.remotes, r.Remote), append(h.via, r.Via)
	h.mu.Unlock()
	m := new(dns.Msg).SetReply(r.Msg)
	m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Msg.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)})
	w.WriteMsg(m)
}

func (h *seenHandler) last() (remote, via netip.AddrPort) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.remotes) == 0 {
		return netip.AddrPort{}, netip.AddrPort{}
	}
	return h.remotes[len(h.remotes)-1], h.via[len(h.via)-1]
}

func newTestProxy(t testing.TB) *ProxyProtocol {
	t.Helper()
	p, err := NewProxyProtocol([]netip.Prefix{netip.PrefixFrom(ppLB, 32)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// proxyListener is the configuration of the PROXY tests' servers: the
// ACL allows only 127.91.1.0/24, the load balancer is trusted.
func proxyListener(h Handler, p *ProxyProtocol) ListenerConfig {
	return ListenerConfig{Handler: h, Allow: []netip.Prefix{ppAllowNet}, Proxy: p}
}

// udpHeader is the header a load balancer puts before a datagram of
// client's, sent to server.
func udpHeader(client netip.AddrPort, server string) []byte {
	return proxyV2(ppProxy, ppInet|ppDgram, client, netip.MustParseAddrPort(server), nil)
}

// askUDPFrom sends prefix+query from src to dst and returns the answer, or
// nil if none comes within wait.
func askUDPFrom(t *testing.T, src netip.Addr, dst string, prefix []byte, q *dns.Msg, wait time.Duration) *dns.Msg {
	t.Helper()
	c := udpFrom(t, netip.AddrPortFrom(src, 0).String(), dst)
	defer c.Close()
	if _, err := c.Write(append(append([]byte(nil), prefix...), mustPack(t, q)...)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil {
		t.Fatalf("answer: %v", err)
	}
	return r
}

// TestProxyUDP: over UDP the ACL judges the client a trusted load
// balancer's header names, the handler sees it (and the load balancer as
// Via), and the answer goes back to the load balancer; a datagram from
// the load balancer without a header or with a bad one is dropped, and so
// is a header from anyone else; every refusal is counted.
func TestProxyUDP(t *testing.T) {
	h := &seenHandler{}
	p := newTestProxy(t)
	udp, _, _ := startDo53(t, "127.91.0.1:0", Do53Config{ListenerConfig: proxyListener(h, p)})
	const wait = 2 * time.Second
	const short = 300 * time.Millisecond

	r := askUDPFrom(t, ppLB, udp, udpHeader(ppAllowed, udp), dnstest.Query("a.example.", dns.TypeA), wait)
	if r == nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("relayed allowed client: %v", r)
	}
	if remote, via := h.last(); remote != ppAllowed || via.Addr() != ppLB {
		t.Errorf("handler saw %v via %v, want %v via %v", remote, via, ppAllowed, ppLB)
	}
	if r := askUDPFrom(t, ppLB, udp, udpHeader(ppForbidden, udp), dnstest.Query("b.example.", dns.TypeA), wait); r == nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("relayed client outside the ACL: %v, want REFUSED", r)
	}
	local := proxyV2(ppLocal, ppUnspec, netip.AddrPort{}, netip.AddrPort{}, nil)
	if r := askUDPFrom(t, ppLB, udp, local, dnstest.Query("c.example.", dns.TypeA), wait); r == nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("LOCAL header (the load balancer itself, not allowed): %v, want REFUSED", r)
	}
	if r := askUDPFrom(t, ppLB, udp, nil, dnstest.Query("d.example.", dns.TypeA), short); r != nil {
		t.Errorf("no header from the load balancer answered: %v", r)
	}
	bad := udpHeader(ppAllowed, udp)
	bad[12] = 0x22 // command 2
	if r := askUDPFrom(t, ppLB, udp, bad, dnstest.Query("e.example.", dns.TypeA), short); r != nil {
		t.Errorf("malformed header answered: %v", r)
	}
	if r := askUDPFrom(t, ppStranger, udp, udpHeader(ppAllowed, udp), dnstest.Query("f.example.", dns.TypeA), short); r != nil {
		t.Errorf("header from an untrusted peer answered: %v", r)
	}
	// An untrusted peer without a header is an ordinary client: here one
	// the ACL refuses.
	if r := askUDPFrom(t, ppStranger, udp, nil, dnstest.Query("g.example.", dns.TypeA), wait); r == nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("direct client outside the ACL: %v, want REFUSED", r)
	}
	want := ProxyStats{Relayed: 2, Local: 1, Untrusted: 1, Missing: 1, Malformed: 1}
	if st := p.Stats(); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

// TestProxyUDPRateLimit: the rate limiter counts the relayed clients,
// not the load balancer: one client flooding through it is limited while
// another client of another /24 through the same load balancer is not.
// Without the PROXY protocol both would share the load balancer's bucket.
// On the fast path (ReadyAnswerer) and the full path.
func TestProxyUDPRateLimit(t *testing.T) {
	for _, ready := range []bool{true, false} {
		var h Handler = newCannedHandler(t)
		if ready {
			h = cannedReady{newCannedHandler(t)}
		}
		lim, err := NewRateLimiter(RateLimitConfig{Rate: 1, Burst: 3, Slip: -1})
		if err != nil {
			t.Fatal(err)
		}
		p := newTestProxy(t)
		lc := proxyListener(h, p)
		lc.Allow = []netip.Prefix{netip.MustParsePrefix("127.91.0.0/16")}
		lc.RateLimit = lim
		udp, _, _ := startDo53(t, "127.91.0.1:0", Do53Config{ListenerConfig: lc})

		c := udpFrom(t, netip.AddrPortFrom(ppLB, 0).String(), udp)
		flooder := udpHeader(ppAllowed, udp)
		for i := range 20 {
			q := dnstest.Query("flood.example.", dns.TypeA)
			q.Id = uint16(i + 1)
			c.Write(append(append([]byte(nil), flooder...), mustPack(t, q)...))
		}
		answered := 0
		buf := make([]byte, 4096)
		for {
			c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			if _, err := c.Read(buf); err != nil {
				break
			}
			answered++
		}
		// 3 of burst, and one a second on a slow machine.
		if answered < 3 || answered > 10 {
			t.Errorf("ready %v: flooding client got %d of 20 answers, want about 3", ready, answered)
		}
		other := netip.MustParseAddrPort("127.91.3.9:999")
		for i := range 3 {
			if r := askUDPFrom(t, ppLB, udp, udpHeader(other, udp), dnstest.Query("other.example.", dns.TypeA), 2*time.Second); r == nil {
				t.Fatalf("ready %v: another client through the same load balancer limited at query %d", ready, i)
			}
		}
	}
}

// TestProxyUDPCookies: a Server Cookie is bound to the relayed client's
// address: the client gets it back valid through the load balancer, and
// the same cookie presented for another client is not valid.
func TestProxyUDPCookies(t *testing.T) {
	ck := NewServerCookies(RandomCookieSecret(), nil)
	lc := proxyListener(&seenHandler{}, newTestProxy(t))
	lc.Cookies = ck
	udp, _, _ := startDo53(t, "127.91.0.1:0", Do53Config{ListenerConfig: lc})
	ask := func(client netip.AddrPort, cookie string) string {
		r := askUDPFrom(t, ppLB, udp, udpHeader(client, udp), cookieQuery("c.example.", cookie), 2*time.Second)
		if r == nil {
			t.Fatal("no answer")
		}
		return replyCookie(r)
	}
	full := ask(ppAllowed, "a1a2a3a4a5a6a7a8")
	if got := ask(ppAllowed, full); got != full {
		t.Errorf("own cookie answered with %q, want it back", got)
	}
	if got := ask(ppAllowed2, full); got == full {
		t.Error("another client's cookie taken as valid")
	}
	if st := ck.Stats(); st.ClientOnly != 1 || st.Valid != 1 || st.Invalid != 1 {
		t.Errorf("cookie stats %+v, want one of each", st)
	}
}

// tcpFrom opens a TCP connection from src to dst.
func tcpFrom(t *testing.T, src netip.Addr, dst string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", dst)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// streamAsk sends a framed query on c and returns the answer, or nil when
// the connection is closed or nothing comes within wait.
func streamAsk(t *testing.T, c net.Conn, q *dns.Msg, wait time.Duration) *dns.Msg {
	t.Helper()
	c.SetDeadline(time.Now().Add(wait))
	if err := writeFramed(c, mustPack(t, q)); err != nil {
		return nil
	}
	b, err := readFramed(c)
	if err != nil {
		return nil
	}
	r := new(dns.Msg)
	if err := r.Unpack(b); err != nil {
		t.Fatal(err)
	}
	return r
}

// tcpHeader is the header a load balancer sends first on a connection of
// client's to server.
func tcpHeader(client netip.AddrPort, server string) []byte {
	return proxyV2(ppProxy, ppInet|ppStream, client, netip.MustParseAddrPort(server), nil)
}

// TestProxyTCPAndDoT: on Do53 TCP and DoT (the header before TLS, or on
// DoT inside it, as dnsdist sends it), the ACL and the handler see the
// relayed client; a connection from the load balancer without a header,
// or with a header from anyone else, is closed and counted; an untrusted
// peer without a header is served as itself.
func TestProxyTCPAndDoT(t *testing.T) {
	certs, ctls := testCerts(t)
	ctls.ServerName = "127.0.0.1" // the self-signed certificate's name
	for _, proto := range []string{"tcp", "dot"} {
		t.Run(proto, func(t *testing.T) {
			h := &seenHandler{}
			p := newTestProxy(t)
			lc := proxyListener(h, p)
			var addr string
			if proto == "tcp" {
				_, addr, _ = startDo53(t, "127.91.0.1:0", Do53Config{ListenerConfig: lc})
			} else {
				lc.Certs = certs
				addr, _ = startDoT(t, "127.91.0.1:0", DoTConfig{ListenerConfig: lc})
			}
			open := func(src netip.Addr, header []byte) net.Conn {
				c := tcpFrom(t, src, addr)
				if header != nil {
					c.Write(header)
				}
				if proto == "dot" {
					tc := tls.Client(c, ctls.Clone())
					tc.SetDeadline(time.Now().Add(2 * time.Second))
					if err := tc.Handshake(); err != nil {
						return nil
					}
					return tc
				}
				return c
			}
			c := open(ppLB, tcpHeader(ppAllowed, addr))
			if c == nil {
				t.Fatal("handshake through the load balancer failed")
			}
			for i := range 2 { // two queries on one connection
				if r := streamAsk(t, c, dnstest.Query("a.example.", dns.TypeA), 2*time.Second); r == nil || r.Rcode != dns.RcodeSuccess {
					t.Fatalf("query %d of the relayed allowed client: %v", i, r)
				}
			}
			if remote, via := h.last(); remote != ppAllowed || via.Addr() != ppLB {
				t.Errorf("handler saw %v via %v, want %v via %v", remote, via, ppAllowed, ppLB)
			}
			relayed := 2
			if proto == "dot" {
				c := open(ppLB, nil)
				if c == nil {
					t.Fatal("handshake of the load balancer failed")
				}
				c.Write(tcpHeader(ppAllowed2, addr))
				if r := streamAsk(t, c, dnstest.Query("in-tls.example.", dns.TypeA), 2*time.Second); r == nil || r.Rcode != dns.RcodeSuccess {
					t.Fatalf("header inside TLS: %v", r)
				}
				if remote, _ := h.last(); remote != ppAllowed2 {
					t.Errorf("header inside TLS: handler saw %v, want %v", remote, ppAllowed2)
				}
				relayed++
			}
			if c := open(ppLB, tcpHeader(ppForbidden, addr)); c == nil {
				t.Error("handshake of the relayed forbidden client failed")
			} else if r := streamAsk(t, c, dnstest.Query("b.example.", dns.TypeA), 2*time.Second); r == nil || r.Rcode != dns.RcodeRefused {
				t.Errorf("relayed client outside the ACL: %v, want REFUSED", r)
			}
			if c := open(ppLB, nil); c != nil && streamAsk(t, c, dnstest.Query("c.example.", dns.TypeA), time.Second) != nil {
				t.Error("connection from the load balancer without a header answered")
			}
			if c := open(ppStranger, tcpHeader(ppAllowed, addr)); c != nil && streamAsk(t, c, dnstest.Query("d.example.", dns.TypeA), time.Second) != nil {
				t.Error("header from an untrusted peer answered")
			}
			if c := open(ppStranger, nil); c == nil {
				t.Error("handshake of a direct client failed")
			} else if r := streamAsk(t, c, dnstest.Query("e.example.", dns.TypeA), 2*time.Second); r == nil || r.Rcode != dns.RcodeRefused {
				t.Errorf("direct client outside the ACL: %v, want REFUSED", r)
			}
			waitFor(t, func() bool {
				st := p.Stats()
				return st.Relayed == int64(relayed) && st.Untrusted == 1 && st.Missing+st.Malformed == 1
			}, func() string { return fmt.Sprintf("stats %+v", p.Stats()) })
		})
	}
}

// waitFor polls cond for up to 5 seconds (the server counts after the
// client has seen the close).
func waitFor(t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: condition not met", what())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestProxyTCPAdmission: the connection shares count relayed clients, not
// the load balancer: with one connection per client, a client's second
// connection through the load balancer is refused, another client's is
// taken.
func TestProxyTCPAdmission(t *testing.T) {
	lc := proxyListener(&seenHandler{}, newTestProxy(t))
	lc.Conns = ConnLimits{PerClient: 1}
	_, addr, s := startDo53(t, "127.91.0.1:0", Do53Config{ListenerConfig: lc})
	first := tcpFrom(t, ppLB, addr)
	first.Write(tcpHeader(ppAllowed, addr))
	if r := streamAsk(t, first, dnstest.Query("a.example.", dns.TypeA), 2*time.Second); r == nil {
		t.Fatal("first connection not served")
	}
	second := tcpFrom(t, ppLB, addr)
	second.Write(tcpHeader(ppAllowed, addr))
	if r := streamAsk(t, second, dnstest.Query("a.example.", dns.TypeA), time.Second); r != nil {
		t.Error("second connection of one client served past its share")
	}
	other := tcpFrom(t, ppLB, addr)
	other.Write(tcpHeader(ppAllowed2, addr))
	if r := streamAsk(t, other, dnstest.Query("a.example.", dns.TypeA), 2*time.Second); r == nil {
		t.Error("another client through the same load balancer refused")
	}
	if st := s.TCPConnStats(); st.RefusedClient != 1 || st.Open != 2 {
		t.Errorf("conn stats %+v, want one refused for its client and two open", st)
	}
}

// TestProxyDoH: over DoH (HTTP/1.1 and HTTP/2, the header before TLS) the
// ACL and the handler see the relayed client; a header from an untrusted
// peer fails the connection and is counted.
func TestProxyDoH(t *testing.T) {
	certs, ctls := testCerts(t)
	ctls.ServerName = "127.0.0.1" // the self-signed certificate's name
	h := &seenHandler{}
	p := newTestProxy(t)
	lc := proxyListener(h, p)
	lc.Certs = certs
	addr, _, s := startDoH(t, "127.91.0.1:0", DoHConfig{ListenerConfig: lc, DisableHTTP3: true})
	client := func(src netip.Addr, header []byte, h2 bool) *http.Client {
		tr := &http.Transport{TLSClientConfig: ctls.Clone(), Protocols: new(http.Protocols)}
		tr.Protocols.SetHTTP1(!h2)
		tr.Protocols.SetHTTP2(h2)
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}
			c, err := d.DialContext(ctx, network, addr)
			if err == nil && header != nil {
				_, err = c.Write(header)
			}
			return c, err
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 3 * time.Second}
	}
	ask := func(c *http.Client, name string) (*dns.Msg, error) {
		raw := mustPack(t, dnstest.Query(name, dns.TypeA))
		resp, err := c.Get("https://" + addr + "/dns-query?dns=" + base64.RawURLEncoding.EncodeToString(raw))
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		r := new(dns.Msg)
		return r, r.Unpack(b)
	}
	for _, h2 := range []bool{false, true} {
		r, err := ask(client(ppLB, tcpHeader(ppAllowed, addr), h2), "a.example.")
		if err != nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("h2 %v: relayed allowed client: %v %v", h2, r, err)
		}
		if remote, via := h.last(); remote != ppAllowed || via.Addr() != ppLB {
			t.Errorf("h2 %v: handler saw %v via %v, want %v via %v", h2, remote, via, ppAllowed, ppLB)
		}
		if r, err := ask(client(ppLB, tcpHeader(ppForbidden, addr), h2), "b.example."); err != nil || r.Rcode != dns.RcodeRefused {
			t.Errorf("h2 %v: relayed client outside the ACL: %v %v, want REFUSED", h2, r, err)
		}
	}
	if _, err := ask(client(ppStranger, tcpHeader(ppAllowed, addr), true), "c.example."); err == nil {
		t.Error("header from an untrusted peer served")
	}
	if _, err := ask(client(ppLB, nil, true), "d.example."); err == nil {
		t.Error("load balancer without a header served")
	}
	if r, err := ask(client(ppStranger, nil, true), "e.example."); err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("direct client outside the ACL: %v %v, want REFUSED", r, err)
	}
	waitFor(t, func() bool {
		st := p.Stats()
		return st.Relayed == 4 && st.Untrusted == 1 && st.Missing+st.Malformed == 1
	}, func() string { return fmt.Sprintf("stats %+v", p.Stats()) })
	// No connection is left counted as waiting for its header.
	waitFor(t, func() bool { return s.tcpAdm.pending.Load() == 0 }, func() string {
		return fmt.Sprintf("%d connections waiting for a header", s.tcpAdm.pending.Load())
	})
}

// TestProxyTCPShutdownWhileReadingHeader: a load balancer's connection
// whose header has not come yet does not hold Shutdown for the idle
// timeout (10 s): it is woken and closed, uncounted.
func TestProxyTCPShutdownWhileReadingHeader(t *testing.T) {
	p := newTestProxy(t)
	cfg := Do53Config{ListenerConfig: proxyListener(&seenHandler{}, p)}
	cfg.Addrs = []string{"127.91.0.1:0"}
	s, err := NewDo53(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	var tcp string
	for _, a := range s.Addrs() {
		if a.Network() == "tcp" {
			tcp = a.String()
		}
	}
	c := tcpFrom(t, ppLB, tcp)
	waitFor(t, func() bool {
		s.tcp.mu.Lock()
		defer s.tcp.mu.Unlock()
		return len(s.tcp.pending) == 1
	}, func() string { return "connection waiting for its header" })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("connection still open after shutdown: %v", err)
	}
	if st := p.Stats(); st != (ProxyStats{}) {
		t.Errorf("stats %+v, want nothing counted", st)
	}
}
