package validator

import (
	"context"
	"testing"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/security"
)

func BenchmarkVerifyRRset(b *testing.B) {
	for _, alg := range []uint8{dns.RSASHA256, dns.ECDSAP256SHA256, dns.ED25519, dns.ED448} {
		b.Run(dns.AlgorithmToString[alg], func(b *testing.B) {
			k := newTestKey(b, "example.", alg, dns.ZONE)
			set := dnstest.MustRRs(b, "www.example. 300 IN A 192.0.2.1", "www.example. 300 IN A 192.0.2.2")
			sigs := []*dns.RRSIG{k.sign(b, set)}
			keys := []*dns.DNSKEY{k.dnskey}
			lim := DefaultLimits()
			lim.MaxValidations = 1 << 30
			budget := NewBudget(lim)
			b.ReportAllocs()
			for b.Loop() {
				if res := VerifyRRset(set, sigs, keys, "example.", testNow, budget); res.Status != security.Secure {
					b.Fatal(res.Reason)
				}
			}
		})
	}
}

// BenchmarkValidateResponseWarm: a signed answer two zone cuts down, with
// the chain of trust already cached (one signature check per response).
func BenchmarkValidateResponseWarm(b *testing.B) {
	w := testWorld(b)
	v, _ := newTestValidator(b, w)
	abx := w.zones["a.b.example."]
	resp := msg(0, abx.signed(b, dnstest.MustRR(b, "www.a.b.example. 300 IN A 192.0.2.2")), nil)
	v.ValidateResponse(context.Background(), "www.a.b.example.", dns.TypeA, resp, nil)
	b.ReportAllocs()
	for b.Loop() {
		if res := v.ValidateResponse(context.Background(), "www.a.b.example.", dns.TypeA, resp, NewBudget(DefaultLimits())); res.Status != security.Secure {
			b.Fatal(res.Reason)
		}
	}
}
