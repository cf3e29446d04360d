package bench

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/lab"
	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/roothints"
	"github.com/sextant-dns/sextant/server"
	"github.com/sextant-dns/sextant/transport"
)

// labBase is this package's loopback block (ARCHITECTURE.md); run.sh uses 127.60.0.0.
var labBase = netip.MustParseAddr("127.61.0.0")

// startSextant starts the lab and a Do53 server with the resolver's handler
// on an ephemeral port, and returns the server's UDP address.
func startSextant(tb testing.TB, bulk int) string {
	tb.Helper()
	return startServer(tb, startLab(tb, bulk), false)
}

// startLab starts the lab with bulk names.
func startLab(tb testing.TB, bulk int) *lab.Lab {
	tb.Helper()
	l, err := lab.Start(context.Background(), lab.Config{AddrBase: labBase, BulkHosts: bulk})
	if err != nil {
		tb.Fatalf("lab: %v", err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

// startServer starts a resolver for l and a Do53 server around its handler
// on an ephemeral port, with what --metrics-listen turns on (response
// counters, answer latencies) when metrics, and returns the UDP address.
func startServer(tb testing.TB, l *lab.Lab, metrics bool) string {
	tb.Helper()
	hints, err := roothints.ParseHints(rrReader(l.RootHints()), "lab")
	if err != nil {
		tb.Fatal(err)
	}
	cfg := resolver.DefaultConfig()
	cfg.Hints = hints
	res, err := resolver.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	lc := transport.ListenerConfig{Addrs: []string{"127.0.0.1:0"}, Handler: server.New(res, server.Config{})}
	if metrics {
		lc.Handler = server.New(res, server.Config{Latency: server.NewLatency()})
		lc.Responses = transport.NewResponseCounters()
	}
	srv, err := transport.NewDo53(transport.Do53Config{ListenerConfig: lc})
	if err != nil {
		tb.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Shutdown(context.Background()) })
	for _, a := range srv.Addrs() {
		if a.Network() == "udp" {
			return a.String()
		}
	}
	tb.Fatal("no UDP listener")
	return ""
}

// TestEndToEndThroughLab checks the benchmark's setup: bulk names resolve
// through the lab, and a repeated question is answered from cache.
func TestEndToEndThroughLab(t *testing.T) {
	addr := startSextant(t, 5)
	c := &dns.Client{Timeout: 2 * time.Second}
	for i := 0; i < 5; i++ {
		q := new(dns.Msg).SetQuestion(lab.BulkName(i), dns.TypeA)
		resp, _, err := c.Exchange(q, addr)
		if err != nil {
			t.Fatalf("%s: %v", lab.BulkName(i), err)
		}
		if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
			t.Fatalf("%s: %v", lab.BulkName(i), resp)
		}
	}
	// A cached answer's TTL counts down but the data is the same.
	q := new(dns.Msg).SetQuestion(lab.BulkName(0), dns.TypeA)
	resp, _, err := c.Exchange(q, addr)
	if err != nil || len(resp.Answer) != 1 {
		t.Fatalf("repeat: %v %v", err, resp)
	}
}

// BenchmarkDo53UDPCacheHit sends real UDP queries for cached names, one in
// flight at a time per goroutine: the whole client path of a cache hit,
// with metrics off and on (what --metrics-listen turns on: response
// counters and answer latencies), servers side by side on one lab.
func BenchmarkDo53UDPCacheHit(b *testing.B) {
	const names = 100
	l := startLab(b, names)
	servers := map[bool]string{false: startServer(b, l, false), true: startServer(b, l, true)}
	for _, metrics := range []bool{false, true} {
		b.Run(map[bool]string{false: "metrics-off", true: "metrics-on"}[metrics], func(b *testing.B) {
			benchCacheHit(b, servers[metrics], names)
		})
	}
}

// benchCacheHit asks addr for the names in turn, each with a new ID (the
// hits timed with metrics on are picked by ID).
func benchCacheHit(b *testing.B, addr string, names int) {
	queries := make([][]byte, names)
	c := &dns.Client{Timeout: 2 * time.Second}
	for i := range queries {
		q := new(dns.Msg).SetQuestion(lab.BulkName(i), dns.TypeA)
		q.SetEdns0(1232, false)
		if _, _, err := c.Exchange(q, addr); err != nil { // warm the cache
			b.Fatal(err)
		}
		queries[i], _ = q.Pack()
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.Dial("udp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		buf := make([]byte, 2048)
		mine := make([][]byte, names) // the ID is rewritten: a copy per goroutine
		for i, q := range queries {
			mine[i] = append([]byte(nil), q...)
		}
		i := 0
		for pb.Next() {
			q := mine[i%names]
			q[0], q[1] = byte(i>>8), byte(i)
			if _, err := conn.Write(q); err != nil {
				b.Error(err)
				return
			}
			conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := conn.Read(buf); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}

// rrReader renders records as a zone file for the hints parser.
func rrReader(rrs []dns.RR) *strings.Reader {
	var sb strings.Builder
	for _, rr := range rrs {
		sb.WriteString(rr.String())
		sb.WriteByte('\n')
	}
	return strings.NewReader(sb.String())
}
