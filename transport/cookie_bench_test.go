package transport

import (
	"net"
	"testing"
	"time"

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
func BenchmarkDo53UDPReady(b *testing.B) {
	ck := NewServerCookies(RandomCookieSecret(), nil)
	cases := []struct {
		name    string
		cookies *ServerCookies
		limit   bool
		cookie  bool
		edns    bool // the ready answer has an OPT
	}{
		{"bare", nil, false, false, false},
		{"limited", ck, true, false, false},
		{"limited+cookie/ready", ck, true, true, true},
		{"limited+cookie/full", ck, true, true, false},
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
			if c.limit {
				// Far above what the benchmark sends: it measures the cost, not the limit.
				l, err := NewRateLimiter(RateLimitConfig{Rate: 1 << 30})
				if err != nil {
					b.Fatal(err)
				}
				lc.RateLimit = l
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
			b.ReportAllocs()
			b.SetParallelism(4)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				conn, err := net.Dial("udp", udp)
				if err != nil {
					b.Error(err)
					return
				}
				defer conn.Close()
				buf := make([]byte, 512)
				for pb.Next() {
					conn.SetReadDeadline(time.Now().Add(time.Second))
					if _, err := conn.Write(wire); err != nil {
						b.Error(err)
						return
					}
					if _, err := conn.Read(buf); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "queries/s")
		})
	}
}
