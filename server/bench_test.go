package server

import (
	"context"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/lab"
	"github.com/sextant-dns/sextant/transport"
)

// nullWriter discards responses.
type nullWriter struct{ n int }

func (w *nullWriter) WriteMsg(m *dns.Msg) error { w.n++; return nil }
func (w *nullWriter) Write(b []byte) error      { w.n++; return nil }

// BenchmarkHandlerAnswerCacheHit is the hot path: a repeated question
// answered from the ready-to-send cache straight from the raw query,
// through ServeDNS and through the UDP front end's AnswerReady, with the
// latency histograms off and on (metrics: one hit in 64 timed, by ID).
func BenchmarkHandlerAnswerCacheHit(b *testing.B) {
	l := startLab(b, labBase, clock.System{})
	off := New(newResolver(b, l, clock.System{}, false), Config{})
	on := New(newResolver(b, l, clock.System{}, false), Config{Latency: NewLatency()})
	// Off and on alternate, so that a loaded machine slows both alike.
	for _, ready := range []bool{true, false} {
		path := map[bool]string{true: "AnswerReady", false: "ServeDNS"}[ready]
		b.Run(path+"/metrics-off", func(b *testing.B) { benchCacheHit(b, off, ready) })
		b.Run(path+"/metrics-on", func(b *testing.B) { benchCacheHit(b, on, ready) })
	}
}

// benchCacheHit asks hd the same question b.N times after a first miss,
// through ServeDNS or AnswerReady.
func benchCacheHit(b *testing.B, hd *Handler, ready bool) {
	q := dnstest.Query("www."+lab.SecureAlg13, dns.TypeA, dnstest.EDNS(4096, false))
	raw, _ := q.Pack()
	req := &transport.Request{Msg: q, Raw: raw, Proto: transport.UDP, MaxSize: 1232}
	w := &nullWriter{}
	hd.ServeDNS(context.Background(), w, req) // resolve and store
	buf := make([]byte, 0, 1500)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A new ID each time, as clients send (it picks the hits timed).
		q.Id, raw[0], raw[1] = uint16(i), byte(i>>8), byte(i)
		if ready {
			hd.AnswerReady(buf, raw, 1232)
			continue
		}
		hd.ServeDNS(context.Background(), w, req)
	}
}

// BenchmarkHandlerLocalZoneReady is a repeated question for a co-located
// zone: answered from the ready-to-send cache like a cache hit.
func BenchmarkHandlerLocalZoneReady(b *testing.B) {
	z, err := authority.ParseZone(strings.NewReader(corpZone), "corp.internal.", "bench")
	if err != nil {
		b.Fatal(err)
	}
	l := startLab(b, labBase, clock.System{})
	hd := New(newResolver(b, l, clock.System{}, false), Config{Local: authority.NewServer(z)})
	q := dnstest.Query("www.corp.internal.", dns.TypeA, dnstest.EDNS(4096, false))
	raw, _ := q.Pack()
	req := &transport.Request{Msg: q, Raw: raw, Proto: transport.UDP, MaxSize: 1232}
	w := &nullWriter{}
	hd.ServeDNS(context.Background(), w, req) // answer and store
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		hd.ServeDNS(context.Background(), w, req)
	}
}
