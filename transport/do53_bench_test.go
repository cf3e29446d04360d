package transport

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// cannedHandler answers every query with the same packed answer, only the
// ID patched in, through Write: the shape of a cache hit.
type cannedHandler struct {
	answer []byte
	bufs   sync.Pool
}

func newCannedHandler(tb testing.TB) *cannedHandler {
	m := new(dns.Msg)
	m.SetReply(dnstest.Query("bench.example.", dns.TypeA))
	m.Answer = []dns.RR{&dns.A{
		Hdr: dns.RR_Header{Name: "bench.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
		A:   net.IPv4(192, 0, 2, 1).To4(),
	}}
	h := &cannedHandler{answer: mustPack(tb, m)}
	h.bufs.New = func() any { b := make([]byte, len(h.answer)); return &b }
	return h
}

func (h *cannedHandler) ServeDNS(_ context.Context, w ResponseWriter, r *Request) {
	bp := h.bufs.Get().(*[]byte)
	b := *bp
	copy(b, h.answer)
	b[0], b[1] = r.Raw[0], r.Raw[1]
	w.Write(b)
	h.bufs.Put(bp)
}

// BenchmarkDo53UDP measures queries/s and allocations per query through
// the UDP path: parse, screen, handler, write. Client and server share the
// machine, so the figure is a floor.
func BenchmarkDo53UDP(b *testing.B) {
	udp, _, _ := startDo53(b, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: newCannedHandler(b)}})
	benchUDPExchanges(b, func() (net.Conn, error) { return net.Dial("udp", udp) },
		mustPack(b, dnstest.Query("bench.example.", dns.TypeA)))
}

// benchUDPExchanges sends wire and reads its answer b.N times, from four
// sockets per processor that dial opens, and reports queries per second
// beside the allocations.
func benchUDPExchanges(b *testing.B, dial func() (net.Conn, error), wire []byte) {
	b.ReportAllocs()
	b.SetParallelism(4)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c, err := dial()
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		buf := make([]byte, 512)
		for pb.Next() {
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Write(wire); err != nil {
				b.Error(err)
				return
			}
			if _, err := c.Read(buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "queries/s")
}
