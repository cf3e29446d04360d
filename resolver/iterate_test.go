package resolver

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/internal/dnstest"
)

// twoTLDs is root (.1) delegating test. (.2) and org. (.5); example.test.
// (.3) and host.org. data in org. itself, at 127.30.<n>.0/24 of an
// in-memory world.
type twoTLDs struct {
	root, test, org, zone *testServer
	r                     *Resolver
	world                 *dnstest.World
}

func startTwoTLDs(t *testing.T, n int, testLines, orgLines, zoneLines []string, extra []dns.RR) *twoTLDs {
	t.Helper()
	p := "127.30." + itoa(n) + "."
	world := dnstest.NewWorld()
	startServer := func(_ testing.TB, addr string, z *testZone) *testServer { return memServer(world, addr, z) }
	root := startServer(t, p+"1", zone(t, ".",
		". SOA a.root.test. h.root.test. 1 3600 600 86400 3600",
		". NS a.root.test.",
		"test. NS ns.nic.test.", "ns.nic.test. A "+p+"2",
		"org. NS ns.nic.org.", "ns.nic.org. A "+p+"5",
	))
	tz := zone(t, "test.", append([]string{
		"test. SOA ns.nic.test. h.nic.test. 1 3600 600 86400 600",
		"test. NS ns.nic.test.", "ns.nic.test. A " + p + "2",
	}, testLines...)...)
	tz.extra = extra
	tld := startServer(t, p+"2", tz)
	org := startServer(t, p+"5", zone(t, "org.", append([]string{
		"org. SOA ns.nic.org. h.nic.org. 1 3600 600 86400 600",
		"org. NS ns.nic.org.", "ns.nic.org. A " + p + "5",
	}, orgLines...)...))
	z := startServer(t, p+"3", zone(t, "example.test.", append([]string{
		"example.test. SOA ns1.example.test. h.example.test. 1 3600 600 86400 60",
		"example.test. NS ns.host.org.",
		"www.example.test. A 192.0.2.80",
	}, zoneLines...)...))
	r := newTestResolver(t, hintsFor(p+"1"), func(c *Config) { c.Upstream = world })
	return &twoTLDs{root: root, test: tld, org: org, zone: z, r: r, world: world}
}

func TestGluelessNameServer(t *testing.T) {
	p := "127.30.2."
	w := startTwoTLDs(t, 2,
		[]string{"example.test. NS ns.host.org."},
		[]string{"ns.host.org. A " + p + "3"}, nil, nil)
	res, err := w.r.Resolve(ctxT(t), "www.example.test.", dns.TypeA)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if got := answerAddrs(res); len(got) != 1 || got[0] != "192.0.2.80" {
		t.Fatalf("answer %v", res.Answer)
	}
	if w.org.count() == 0 {
		t.Fatal("the glueless NS was not resolved through org.")
	}
}

func TestOutOfBailiwickGlueIgnored(t *testing.T) {
	p := "127.30.3."
	poison := []dns.RR{
		dnstest.MustRR(t, "ns.host.org. 300 A "+p+"66"),
		dnstest.MustRR(t, "www.victim.org. 300 A 6.6.6.6"),
	}
	w := startTwoTLDs(t, 3,
		[]string{"example.test. NS ns.host.org."},
		[]string{"ns.host.org. A " + p + "3"}, nil, poison)
	evil := memServer(w.world, p+"66", zone(t, "example.test.",
		"example.test. SOA ns.evil. h.evil. 1 3600 600 86400 60",
		"www.example.test. A 6.6.6.6"))
	res, err := w.r.Resolve(ctxT(t), "www.example.test.", dns.TypeA)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if got := answerAddrs(res); len(got) != 1 || got[0] != "192.0.2.80" {
		t.Fatalf("answer %v: the poisoned glue was used", res.Answer)
	}
	if evil.count() != 0 {
		t.Fatalf("the address from out-of-bailiwick glue got %d queries", evil.count())
	}
	if e, ok := w.r.Cache().Get("www.victim.org.", dns.TypeA, dns.ClassINET); ok {
		t.Fatalf("unsolicited record cached: %v", e.RRs)
	}
	e, ok := w.r.Cache().Get("ns.host.org.", dns.TypeA, dns.ClassINET)
	if !ok || e.Rank != cache.RankAnswerAuth || e.RRs[0].(*dns.A).A.String() != p+"3" {
		t.Fatalf("ns.host.org A in cache = %v, %v; want the authoritative %s3", e, ok, p)
	}
}

func TestCNAMEAcrossZones(t *testing.T) {
	p := "127.30.4."
	w := startTwoTLDs(t, 4,
		[]string{"example.test. NS ns.host.org."},
		[]string{"ns.host.org. A " + p + "3", "www.host.org. A 192.0.2.99"},
		[]string{"alias.example.test. CNAME www.host.org.", "inzone.example.test. CNAME www.example.test."}, nil)
	for _, tc := range []struct {
		name      string
		wantChain int
		want      string
	}{
		{"alias.example.test.", 1, "192.0.2.99"},
		{"inzone.example.test.", 1, "192.0.2.80"},
	} {
		res, err := w.r.Resolve(ctxT(t), tc.name, dns.TypeA)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		cn := 0
		for _, rr := range res.Answer {
			if rr.Header().Rrtype == dns.TypeCNAME {
				cn++
			}
		}
		if got := answerAddrs(res); cn != tc.wantChain || len(got) != 1 || got[0] != tc.want {
			t.Fatalf("%s: answer %v", tc.name, res.Answer)
		}
	}
}

func TestCNAMELoopFailsFast(t *testing.T) {
	p := "127.30.5."
	w := startTwoTLDs(t, 5,
		[]string{"example.test. NS ns.host.org."},
		[]string{"ns.host.org. A " + p + "3", "b.host.org. CNAME a.example.test."},
		[]string{"a.example.test. CNAME b.host.org.", "x.example.test. CNAME y.example.test.", "y.example.test. CNAME x.example.test."}, nil)
	for _, name := range []string{"a.example.test.", "x.example.test."} {
		start := time.Now()
		if re := mustFail(t, w.r, name, dns.TypeA); !strings.Contains(re.Text, "CNAME") {
			t.Fatalf("%s: error %v does not say CNAME", name, re)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Fatalf("%s: took %v", name, d)
		}
	}
}

func TestLongCNAMEChainHitsLimit(t *testing.T) {
	var lines []string
	for i := 0; i < 20; i++ {
		lines = append(lines, "c"+itoa(i)+".example.test. CNAME c"+itoa(i+1)+".example.test.")
	}
	lines = append(lines, "c20.example.test. A 192.0.2.1")
	h := memHierarchy(t, lines...)
	r := h.resolver(t, nil)
	if re := mustFail(t, r, "c0.example.test.", dns.TypeA); !strings.Contains(re.Text, "CNAME chain") {
		t.Fatalf("err %v, want SERVFAIL for the chain length", re)
	}
	// A chain within the limit resolves.
	res, err := r.Resolve(ctxT(t), "c10.example.test.", dns.TypeA)
	if err != nil || len(answerAddrs(res)) != 1 {
		t.Fatalf("c10: %v %v", res, err)
	}
}

func TestDelegationLoopFailsFastAndIsCached(t *testing.T) {
	h := memHierarchy(t)
	// Cyclic glueless delegations (tsuNAME): a.test via ns.b.test, b.test
	// via ns.a.test.
	h.tld.addRecords(t, "a.test. 300 NS ns.b.test.", "b.test. 300 NS ns.a.test.")
	r := h.resolver(t, nil)
	start := time.Now()
	re := mustFail(t, r, "www.a.test.", dns.TypeA)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("loop took %v", d)
	}
	if re.EDE != dns.ExtendedErrorCodeNoReachableAuthority {
		t.Fatalf("EDE %d (%s), want 22", re.EDE, re.Text)
	}
	before := h.root.count() + h.tld.count()
	// RFC 9520: the failure is cached; neither the same question nor
	// another name in the cyclic zones contacts the servers again.
	for _, name := range []string{"www.a.test.", "other.a.test.", "www.b.test."} {
		mustFail(t, r, name, dns.TypeA)
	}
	if after := h.root.count() + h.tld.count(); after != before {
		t.Fatalf("servers above the loop got %d more queries", after-before)
	}
}

func TestDNAME(t *testing.T) {
	h := memHierarchy(t, "old.example.test. DNAME new.example.test.", "www.new.example.test. A 192.0.2.7")
	r := h.resolver(t, nil)
	// The test server does not synthesise: the resolver must.
	h.zone.set(func(s *testServer) {
		s.hook = func(w dns.ResponseWriter, q *dns.Msg) bool {
			if canonical(q.Question[0].Name) != "www.old.example.test." {
				return false
			}
			m := new(dns.Msg)
			m.SetReply(q)
			m.Authoritative = true
			m.Answer = []dns.RR{dnstest.MustRR(t, "old.example.test. 300 DNAME new.example.test.")}
			_ = w.WriteMsg(m)
			return true
		}
	})
	res, err := r.Resolve(ctxT(t), "www.old.example.test.", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if got := answerAddrs(res); len(got) != 1 || got[0] != "192.0.2.7" {
		t.Fatalf("answer %v", res.Answer)
	}
}

func TestInZoneNameServerWithoutGlue(t *testing.T) {
	h := memHierarchy(t)
	// A delegation whose only name server is inside the zone, with no glue.
	h.tld.addRecords(t, "noglue.test. 300 NS ns.noglue.test.")
	r := h.resolver(t, nil)
	start := time.Now()
	if re := mustFail(t, r, "www.noglue.test.", dns.TypeA); re.EDE != dns.ExtendedErrorCodeNoReachableAuthority || time.Since(start) > 200*time.Millisecond {
		t.Fatalf("err %v after %v, want a quick SERVFAIL with EDE 22", re, time.Since(start))
	}
	n := h.tld.count()
	if mustFail(t, r, "other.noglue.test.", dns.TypeA); h.tld.count() != n {
		t.Fatalf("second name: tld queries %d -> %d", n, h.tld.count())
	}
}
