package resolver

import (
	"context"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/transport"
)

// nullWriter discards responses.
type nullWriter struct{ n int }

func (w *nullWriter) WriteMsg(m *dns.Msg) error { w.n++; return nil }
func (w *nullWriter) Write(b []byte) error      { w.n++; return nil }

// BenchmarkHandlerAnswerCacheHit is the hot path: a repeated question
// answered from the ready-to-send cache straight from the raw query.
func BenchmarkHandlerAnswerCacheHit(b *testing.B) {
	h := basicHierarchy(b, 95)
	r := newTestResolver(b, h.hints, nil)
	hd := NewHandler(r, nil)
	q := query("www.example.test.", dns.TypeA, true)
	raw, _ := q.Pack()
	req := &transport.Request{Msg: q, Raw: raw, Proto: transport.UDP, MaxSize: 1232}
	w := &nullWriter{}
	hd.ServeDNS(context.Background(), w, req) // resolve and store
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		hd.ServeDNS(context.Background(), w, req)
	}
}

// BenchmarkResolveRRsetCacheHit resolves a question answered from the
// RRset cache (the Resolve API, no answer cache).
func BenchmarkResolveRRsetCacheHit(b *testing.B) {
	h := basicHierarchy(b, 96)
	r := newTestResolver(b, h.hints, nil)
	ctx := context.Background()
	if _, err := r.Resolve(ctx, "www.example.test.", dns.TypeA); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := r.Resolve(ctx, "www.example.test.", dns.TypeA); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolveUncached resolves a new name each time: one upstream
// query over loopback to the zone's server (the delegation is cached).
func BenchmarkResolveUncached(b *testing.B) {
	h := basicHierarchy(b, 97)
	r := newTestResolver(b, h.hints, nil)
	ctx := context.Background()
	if _, err := r.Resolve(ctx, "www.example.test.", dns.TypeA); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _ = r.Resolve(ctx, "n"+itoa(i)+".example.test.", dns.TypeA)
	}
}
