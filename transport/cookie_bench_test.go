package transport

import (
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// BenchmarkDo53UDPReady measures the UDP cache-hit path (a ReadyAnswerer
// answering from raw bytes): bare; with server cookies and the rate
// limiter on, for a query without a cookie (still the fast path, plus the
// limiter's bucket); for a query returning a valid server cookie on the
// ready path (the cookie checked and appended to the ready answer's OPT);
// and the same query on the full path, as when the ready answer has no
// OPT (parse, check, repack with the cookie): the two designs compared.
// Then bare with the PROXY protocol on: from a client sending no header
// (the check that none is there), and from a load balancer putting one
// before every query (parsed on the ready path). Last, bare with the
// response counters on (ListenerConfig.Responses: one atomic add).
func BenchmarkDo53UDPReady(b *testing.B) {
	ck := NewServerCookies(RandomCookieSecret(), nil)
	cases := []struct {
		name    string
		cookies *ServerCookies
		limit   bool
		cookie  bool
		edns    bool // the ready answer has an OPT
		proxy   int  // 0: PROXY protocol off; 1: on, client direct; 2: through the load balancer
		counted bool // ListenerConfig.Responses set
	}{
		{"bare", nil, false, false, false, 0, false},
		{"limited", ck, true, false, false, 0, false},
		{"limited+cookie/ready", ck, true, true, true, 0, false},
		{"limited+cookie/full", ck, true, true, false, 0, false},
		{"proxy-on/direct", nil, false, false, false, 1, false},
		{"proxy-on/relayed", nil, false, false, false, 2, false},
		{"bare+counted", nil, false, false, false, 0, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			h := newCannedHandler(b)
			if c.edns {
				m := new(dns.Msg)
				if err := m.Unpack(h.answer); err != nil {
					b.Fatal(err)
				}
				h.answer = mustPack(b, m.SetEdns0(1232, false))
			}
			lc := ListenerConfig{Handler: cannedReady{h}, Cookies: c.cookies}
			if c.counted {
				lc.Responses = NewResponseCounters()
			}
			if c.limit {
				// Far above what the benchmark sends: it measures the cost, not the limit.
				l, err := NewRateLimiter(RateLimitConfig{Rate: 1 << 30})
				if err != nil {
					b.Fatal(err)
				}
				lc.RateLimit = l
			}
			src := &net.UDPAddr{IP: net.IPv4(127, 91, 0, 3)}
			if c.proxy > 0 {
				lc.Proxy = newTestProxy(b)
				lc.Allow = []netip.Prefix{netip.MustParsePrefix("127.91.0.0/16")}
			}
			if c.proxy == 2 {
				src.IP = net.IP(ppLB.AsSlice())
			}
			udp, _, _ := startDo53(b, "127.83.0.7:0", Do53Config{ListenerConfig: lc})
			q := dnstest.Query("bench.example.", dns.TypeA)
			if c.cookie {
				q = cookieQuery("bench.example.", "0102030405060708")
				r, err := dns.Exchange(q, udp)
				if err != nil {
					b.Fatal(err)
				}
				q = cookieQuery("bench.example.", replyCookie(r))
			}
			wire := mustPack(b, q)
			if c.proxy == 2 {
				wire = append(udpHeader(ppAllowed, udp), wire...)
			}
			benchUDPExchanges(b, func() (net.Conn, error) { return (&net.Dialer{LocalAddr: src}).Dial("udp", udp) }, wire)
		})
	}
}
