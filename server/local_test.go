package server

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
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

// countingFlattener answers every flattened target with one address and
// counts the questions.
type countingFlattener struct{ asked atomic.Int32 }

func (f *countingFlattener) Flatten(_ context.Context, name string, qtype uint16) ([]dns.RR, uint32, error) {
	f.asked.Add(1)
	return []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 9)}}, 60, nil
}

// TestFlattenedAnswersBypassTheReadyPath: a flattened CNAME's answer holds
// another zone's data with its TTL, so it must not be kept in the
// ready-to-send cache until the zones change, as the zones' own are.
func TestFlattenedAnswersBypassTheReadyPath(t *testing.T) {
	l := startLab(t, labBase, clock.System{})
	z, err := authority.NewZoneWith("corp.internal.", dnstest.MustZoneText(t, "corp.internal.", corpZone+"@ CNAME cdn.elsewhere.test.\n"),
		authority.ZoneOptions{Flatten: authority.FlattenApex})
	if err != nil {
		t.Fatal(err)
	}
	zones := authority.NewServer(z)
	f := &countingFlattener{}
	zones.SetFlattener(f, clock.System{})
	h := New(newResolver(t, l, clock.System{}, false), Config{Local: zones})
	for i := range 2 {
		w := serve(t, h, dnstest.Query("corp.internal.", dns.TypeA, dnstest.EDNS(4096, false)))
		if w.raw != nil || len(w.msg.Answer) != 1 || w.msg.Answer[0].(*dns.A).A.String() != "192.0.2.9" {
			t.Fatalf("query %d: from the ready path %v: %v", i, w.raw != nil, w.msg)
		}
	}
	// The zone's own answers still take the ready path.
	for i := range 2 {
		if w := serve(t, h, dnstest.Query("corp.internal.", dns.TypeSOA, dnstest.EDNS(4096, false))); (w.raw != nil) != (i == 1) {
			t.Fatalf("SOA %d: from the ready path %v", i, w.raw != nil)
		}
	}
}
