package resolver

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/lab"
)

// BenchmarkDNSSECCachedExchange: a validated answer from the caches
// (RRset cache with its marks, no signature check), against the same
// without validation.
func BenchmarkDNSSECCachedExchange(b *testing.B) {
	l := startDNSSECLab(b, clock.System{})
	for _, v := range []struct {
		name     string
		validate bool
	}{{"validating", true}, {"off", false}} {
		b.Run(v.name, func(b *testing.B) {
			r := newLabResolver(b, l, nil)
			if v.validate {
				r, _ = newValidatingResolver(b, l, clock.System{})
			}
			name := "www." + lab.SecureAlg13
			if m, _ := ask(b, r, name, dns.TypeA, true, false, false); m.AuthenticatedData != v.validate {
				b.Fatalf("AD=%v", m.AuthenticatedData)
			}
			b.ReportAllocs()
			for b.Loop() {
				if m, _ := ask(b, r, name, dns.TypeA, true, false, false); m.AuthenticatedData != v.validate {
					b.Fatalf("AD=%v", m.AuthenticatedData)
				}
			}
		})
	}
}
