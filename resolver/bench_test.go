package resolver

import (
	"context"
	"testing"

	"github.com/miekg/dns"
)

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
