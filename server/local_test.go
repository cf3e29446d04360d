package server

import (
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/lab"
)

func parseZone(t *testing.T, text string) *authority.Zone {
	t.Helper()
	z, err := authority.ParseZone(strings.NewReader(text), "corp.internal.", "test")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

const corpZone = `$TTL 3600
@ SOA ns hostmaster 1 3600 600 86400 300
@ NS ns
ns A 127.0.0.1
www A 127.0.0.2
`

// TestLocalZonesOnTheReadyPath: a repeated question for a co-located zone
// is answered from the ready-to-send cache like a cache hit, with the
// zone's TTLs as they are, until the zone changes.
func TestLocalZonesOnTheReadyPath(t *testing.T) {
	l := startLab(t, labBase, clock.System{})
	zones := authority.NewServer(parseZone(t, corpZone))
	h := New(newResolver(t, l, clock.System{}, false), Config{Local: zones})

	for i, want := range []struct {
		ready bool
		addr  string
	}{{false, "127.0.0.2"}, {true, "127.0.0.2"}} {
		w := serve(t, h, dnstest.Query("WWW.corp.internal.", dns.TypeA, dnstest.EDNS(4096, false)))
		if (w.raw != nil) != want.ready || len(w.msg.Answer) != 1 || !w.msg.Authoritative || !w.msg.RecursionAvailable {
			t.Fatalf("query %d: from the ready path %v, want %v: %v", i, w.raw != nil, want.ready, w.msg)
		}
		if a := w.msg.Answer[0].(*dns.A); a.A.String() != want.addr || a.Hdr.Ttl != 3600 || w.msg.Question[0].Name != "WWW.corp.internal." {
			t.Fatalf("query %d: %v", i, w.msg)
		}
	}
	// NXDOMAIN takes the ready path too.
	for i := 0; i < 2; i++ {
		if w := serve(t, h, dnstest.Query("nope.corp.internal.", dns.TypeA, dnstest.EDNS(4096, false))); w.msg.Rcode != dns.RcodeNameError || (w.raw != nil) != (i == 1) {
			t.Fatalf("NXDOMAIN %d: %v (ready %v)", i, w.msg, w.raw != nil)
		}
	}

	// The zone changes: the next answer is the new data.
	zones.Set(parseZone(t, strings.Replace(corpZone, "www A 127.0.0.2", "www A 127.0.0.3", 1)))
	w := serve(t, h, dnstest.Query("www.corp.internal.", dns.TypeA, dnstest.EDNS(4096, false)))
	if w.raw != nil || w.msg.Answer[0].(*dns.A).A.String() != "127.0.0.3" {
		t.Fatalf("after the change: %v (ready %v), want the new address resolved afresh", w.msg, w.raw != nil)
	}
}

// TestAddedZoneRetiresResolverAnswers: once a zone is served locally, the
// resolver's ready answers for its names are not served any more.
func TestAddedZoneRetiresResolverAnswers(t *testing.T) {
	l := startLab(t, labBase, clock.System{})
	zones := authority.NewServer()
	h := New(newResolver(t, l, clock.System{}, false), Config{Local: zones})
	name := "www." + lab.SecureAlg13
	for i := 0; i < 2; i++ {
		if w := serve(t, h, dnstest.Query(name, dns.TypeA, dnstest.EDNS(4096, false))); (w.raw != nil) != (i == 1) {
			t.Fatalf("query %d: ready %v", i, w.raw != nil)
		}
	}
	z, err := authority.ParseZone(strings.NewReader("$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 127.0.0.1\nwww A 127.0.0.9\n"), lab.SecureAlg13, "test")
	if err != nil {
		t.Fatal(err)
	}
	zones.Set(z)
	w := serve(t, h, dnstest.Query(name, dns.TypeA, dnstest.EDNS(4096, false)))
	if w.raw != nil || !w.msg.Authoritative || w.msg.Answer[0].(*dns.A).A.String() != "127.0.0.9" {
		t.Fatalf("after adding the zone: %v (ready %v), want the local answer", w.msg, w.raw != nil)
	}
}
