package secondary

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// FuzzXFRParser feeds the transfer parser whatever answer messages a
// hostile primary could send: it must return a zone or an error, never
// panic, and never a zone outside the limits or not framed by one SOA.
func FuzzXFRParser(f *testing.F) {
	seed := func(rrs ...string) {
		m := new(dns.Msg)
		for _, s := range rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				f.Fatal(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, true)
		f.Add(b, false)
	}
	soa1 := "x.test. 300 IN SOA ns.x.test. h.x.test. 1 3600 600 86400 300"
	soa2 := "x.test. 300 IN SOA ns.x.test. h.x.test. 2 3600 600 86400 300"
	seed(soa2, "x.test. 300 IN NS ns.x.test.", "a.x.test. 300 IN A 192.0.2.1", soa2)
	seed(soa2, soa1, "a.x.test. 300 IN A 192.0.2.1", soa2, "a.x.test. 300 IN A 192.0.2.2", soa2)
	seed(soa1)
	have := []dns.RR{}
	for _, s := range []string{soa1, "x.test. 300 IN NS ns.x.test.", "a.x.test. 300 IN A 192.0.2.1"} {
		rr, _ := dns.NewRR(s)
		have = append(have, rr)
	}
	f.Fuzz(func(t *testing.T, wire []byte, ixfr bool) {
		m := new(dns.Msg)
		if m.Unpack(wire) != nil {
			return
		}
		op := "AXFR"
		if ixfr {
			op = "IXFR"
		}
		limits := Limits{MaxRecords: 50, MaxBytes: 1 << 20}
		p := &xfrParser{zone: "x.test.", op: op, limits: limits, haveSerial: 1}
		if err := p.add(m.Answer); err != nil || !p.done {
			return
		}
		res, err := p.finish(have)
		if err != nil || res.upToDate {
			return
		}
		if len(res.rrs) > limits.MaxRecords {
			t.Fatalf("%d records over the limit", len(res.rrs))
		}
		soas := 0
		for _, rr := range res.rrs {
			if !dnsname.IsAtOrBelow(dnsname.Canonical(rr.Header().Name), "x.test.") {
				t.Fatalf("record outside the zone: %v", rr)
			}
			if rr.Header().Rrtype == dns.TypeSOA {
				soas++
			}
		}
		if soas != 1 || res.rrs[0].Header().Rrtype != dns.TypeSOA {
			t.Fatalf("zone with %d SOAs, first %v", soas, res.rrs[0])
		}
	})
}
