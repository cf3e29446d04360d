package secondary

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
)

const failZone = "fail.test."

// failureSetup: a fake primary on 127.77.<net>.1:53 whose serial-1 zone
// Sextant has transferred; it then moves to serial 2 in a broken way.
func failureSetup(t *testing.T, net int, limits Limits, key *Key) (*fakePrimary, *secondaryUnderTest) {
	t.Helper()
	p := startFakePrimary(t, fmt.Sprintf("127.77.%d.1:53", net), failZone, testZone(failZone, 1, 3))
	if key != nil {
		p.useKey(key.Name, key.Secret)
	}
	p.listen(t)
	zone := &Zone{Origin: failZone, Primaries: []netip.AddrPort{p.addr}, Key: key}
	sut := startSecondary(t, zone, sutOptions{limits: limits, firstRetry: time.Hour})
	sut.waitSerial(t, failZone, 1, 3*time.Second)
	return p, sut
}

// TestTransferRejected: each kind of bad transfer is rejected whole, the
// old version keeps serving, and the error is reported in words.
func TestTransferRejected(t *testing.T) {
	v2 := func(t *testing.T) []dns.RR { return parseText(t, testZone(failZone, 2, 3)) }
	cases := []struct {
		name   string
		net    int
		limits Limits
		key    *Key // the secondary's key (the primary's differs)
		break_ func(t *testing.T, p *fakePrimary)
		want   string
	}{
		{name: "refused", net: 30, break_: func(t *testing.T, p *fakePrimary) {
			p.setZone(t, testZone(failZone, 2, 3))
			p.set(func(p *fakePrimary) { p.refuseX = true })
		}, want: "primary 127.77.30.1:53 REFUSED the AXFR: is this server's address allowed to transfer?"},
		{name: "out of zone", net: 31, break_: func(t *testing.T, p *fakePrimary) {
			rrs := v2(t)
			rrs = append(rrs, parseText(t, "evil.example. 300 IN A 203.0.113.66\n")...)
			p.set(func(p *fakePrimary) { p.rrs = rrs })
		}, want: "the transfer holds a record outside the zone fail.test.: evil.example."},
		{name: "too many records", net: 32, limits: Limits{MaxRecords: 15}, break_: func(t *testing.T, p *fakePrimary) {
			p.setZone(t, testZone(failZone, 2, 20))
		}, want: "the transfer exceeds the limit of 15 records"},
		{name: "too many bytes", net: 33, limits: Limits{MaxBytes: 2000}, break_: func(t *testing.T, p *fakePrimary) {
			p.setZone(t, testZone(failZone, 2, 200))
		}, want: "the transfer exceeds the limit of 2000 bytes"},
		{name: "different closing SOA", net: 34, break_: func(t *testing.T, p *fakePrimary) {
			rrs := v2(t)
			end := dns.Copy(rrs[0]).(*dns.SOA)
			end.Serial = 3
			p.set(func(p *fakePrimary) {
				p.rrs = rrs
				p.axfr = func(q *dns.Msg) []*dns.Msg {
					m := new(dns.Msg)
					m.Answer = append(append([]dns.RR{}, rrs...), end)
					return []*dns.Msg{m}
				}
			})
		}, want: "starts with SOA serial 2 and ends with serial 3"},
		{name: "no closing SOA", net: 35, break_: func(t *testing.T, p *fakePrimary) {
			rrs := v2(t)
			p.set(func(p *fakePrimary) {
				p.rrs = rrs
				p.axfr = func(q *dns.Msg) []*dns.Msg { // and then the connection closes
					return []*dns.Msg{{Answer: append([]dns.RR{}, rrs...)}}
				}
			})
		}, want: "the AXFR stopped after 9 records without its closing SOA"},
		{name: "not starting with SOA", net: 36, break_: func(t *testing.T, p *fakePrimary) {
			rrs := v2(t)
			p.set(func(p *fakePrimary) {
				p.rrs = rrs
				p.axfr = func(q *dns.Msg) []*dns.Msg {
					return []*dns.Msg{{Answer: append(append([]dns.RR{}, rrs[1:]...), rrs[0])}}
				}
			})
		}, want: "does not start with the zone's SOA"},
		{name: "fails the zone checks", net: 37, break_: func(t *testing.T, p *fakePrimary) {
			rrs := append(v2(t), parseText(t, "www.fail.test. 300 IN CNAME elsewhere.example.\n")...)
			p.set(func(p *fakePrimary) { p.rrs = rrs })
		}, want: "the transferred zone fails the zone checks"},
		{name: "TSIG secrets differ", net: 38, key: &Key{Name: "xfr-key.", Algorithm: dns.HmacSHA256, Secret: testSecret}, break_: func(t *testing.T, p *fakePrimary) {
			p.setZone(t, testZone(failZone, 2, 3))
			p.set(func(p *fakePrimary) { p.secret = "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0zMg==" })
			p.restart(t)
		}, want: "TSIG BADSIG: the key names or secrets differ"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, sut := failureSetup(t, tc.net, tc.limits, tc.key)
			before := sut.ask("www."+failZone, dns.TypeA)
			tc.break_(t, p)
			since := time.Now()
			sut.m.Refresh(failZone)
			rec := sut.log.waitLog(t, since, 5*time.Second, "secondary zone refresh failed", tc.want)
			if got := sut.serial(failZone); got != 1 {
				t.Fatalf("serving serial %d after a rejected transfer, want the old 1", got)
			}
			after := sut.ask("www."+failZone, dns.TypeA)
			if after.Rcode != dns.RcodeSuccess || len(after.Answer) != 1 || after.Answer[0].String() != before.Answer[0].String() {
				t.Fatalf("www after the rejected transfer: %v", after)
			}
			st := sut.m.Status()[0]
			if !strings.Contains(st.LastError, tc.want) {
				t.Fatalf("status error %q, want %q", st.LastError, tc.want)
			}
			t.Logf("reported: %s", rec.text)
		})
	}
}

// TestNotLoadedServfail: before the first transfer the zone answers
// SERVFAIL with an EDE that says why (here: the primary refuses).
func TestNotLoadedServfail(t *testing.T) {
	p := startFakePrimary(t, "127.77.40.1:53", failZone, testZone(failZone, 1, 3))
	p.set(func(p *fakePrimary) { p.refuseX = true })
	p.listen(t)
	sut := startSecondary(t, &Zone{Origin: failZone, Primaries: []netip.AddrPort{p.addr}}, sutOptions{firstRetry: time.Hour})
	sut.log.waitLog(t, time.Time{}, 3*time.Second, "REFUSED the AXFR")
	r := sut.ask("www."+failZone, dns.TypeA)
	if r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	if ede := dnstest.EDE(r); ede == nil || !strings.Contains(ede.ExtraText, "not yet transferred") || !strings.Contains(ede.ExtraText, "REFUSED the AXFR") {
		t.Fatalf("EDE %v", ede)
	}
	// The primary lets us in: the next refresh serves the zone.
	p.set(func(p *fakePrimary) { p.refuseX = false })
	sut.m.Refresh(failZone)
	sut.waitSerial(t, failZone, 1, 3*time.Second)
}

// TestExpiry: a zone without a successful refresh for the SOA's expire
// time (DNS clock) answers SERVFAIL with an EDE and the log says why; a
// later successful refresh serves it again.
func TestExpiry(t *testing.T) {
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	p := startFakePrimary(t, "127.77.41.1:53", failZone, testZone(failZone, 1, 3))
	p.listen(t)
	sut := startSecondary(t, &Zone{Origin: failZone, Primaries: []netip.AddrPort{p.addr}}, sutOptions{clock: clk, firstRetry: time.Hour})
	sut.waitSerial(t, failZone, 1, 3*time.Second)

	p.set(func(p *fakePrimary) { p.rrs[0].(*dns.SOA).Serial = 2; p.refuseX = true })
	clk.Advance(86400*time.Second - time.Second) // expire is 86400
	since := time.Now()
	sut.m.Refresh(failZone)
	sut.log.waitLog(t, since, 3*time.Second, "refresh failed")
	if got := sut.serial(failZone); got != 1 {
		t.Fatalf("before expire: serial %d, want 1", got)
	}
	clk.Advance(2 * time.Second)
	since = time.Now()
	// A Refresh asked while the zone's loop still winds down the last
	// failed one can be absorbed by it on a loaded machine: ask again
	// until the expiry is seen.
	for i := 0; i < 10; i++ {
		sut.m.Refresh(failZone)
		if _, ok := sut.log.find(since, "secondary zone expired"); ok {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	rec := sut.log.waitLog(t, since, 3*time.Second, "secondary zone expired")
	r := sut.ask("www."+failZone, dns.TypeA)
	if r.Rcode != dns.RcodeServerFailure || dnstest.EDE(r) == nil || !strings.Contains(dnstest.EDE(r).ExtraText, "expired") {
		t.Fatalf("after expire: %v", r)
	}
	t.Logf("reported: %s", rec.text)

	p.set(func(p *fakePrimary) { p.refuseX = false })
	sut.m.Refresh(failZone)
	sut.waitSerial(t, failZone, 2, 3*time.Second)
}

// TestIXFRRefusedFallsBackToAXFR: a primary that does not do IXFR
// (NOTIMP) still gets the new version across, by AXFR.
func TestIXFRRefusedFallsBackToAXFR(t *testing.T) {
	p := startFakePrimary(t, "127.77.45.1:53", failZone, testZone(failZone, 1, 3))
	p.listen(t) // noIXFR: IXFR answered NOTIMP
	sut := startSecondary(t, &Zone{Origin: failZone, Primaries: []netip.AddrPort{p.addr}}, sutOptions{firstRetry: time.Hour})
	sut.waitSerial(t, failZone, 1, 3*time.Second)
	p.setZone(t, testZone(failZone, 2, 5))
	since := time.Now()
	sut.m.Refresh(failZone)
	sut.waitSerial(t, failZone, 2, 3*time.Second)
	sut.log.waitLog(t, since, time.Second, "IXFR failed; trying AXFR", "NOTIMP")
	sut.log.waitLog(t, since, time.Second, "secondary zone transferred", "serial=2", "kind=AXFR")
	if r := sut.ask("host4."+failZone, dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("host4 after the AXFR: %v", r)
	}
}
