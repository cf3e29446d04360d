package resolver

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/security"
)

func TestNegativeCachingUsesSOATTL(t *testing.T) {
	h := memHierarchy(t)
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := h.resolver(t, func(c *Config) { c.Clock = clk })
	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"nope.example.test.", dns.TypeA, dns.RcodeNameError},
		{"www.example.test.", dns.TypeTXT, dns.RcodeSuccess}, // NODATA
	} {
		h.zone.reset()
		res, err := r.Resolve(ctxT(t), tc.name, tc.qtype)
		if err != nil || res.Rcode != tc.rcode || len(res.Answer) != 0 {
			t.Fatalf("%s: rcode %d answer %v err %v", tc.name, res.Rcode, res, err)
		}
		soa, ok := res.Authority[0].(*dns.SOA)
		// The zone's SOA has TTL 300 and MINIMUM 60: RFC 2308 uses 60.
		if !ok || soa.Hdr.Ttl != 60 {
			t.Fatalf("%s: authority %v, want the SOA with TTL 60", tc.name, res.Authority)
		}
		clk.Advance(59 * time.Second)
		res, _ = r.Resolve(ctxT(t), tc.name, tc.qtype)
		if res.Rcode != tc.rcode || h.zone.count() != 1 {
			t.Fatalf("%s: within the negative TTL the zone got %d queries, want 1", tc.name, h.zone.count())
		}
		if ttl := res.Authority[0].Header().Ttl; ttl != 1 {
			t.Fatalf("%s: cached SOA TTL %d, want 1", tc.name, ttl)
		}
		clk.Advance(2 * time.Second)
		if res, _ = r.Resolve(ctxT(t), tc.name, tc.qtype); res.Rcode != tc.rcode || h.zone.count() != 2 {
			t.Fatalf("%s: after expiry zone queries %d, want 2", tc.name, h.zone.count())
		}
	}
}

func TestPositiveTTLExpiry(t *testing.T) {
	h := memHierarchy(t)
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := h.resolver(t, func(c *Config) { c.Clock = clk })
	if _, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA); err != nil {
		t.Fatal(err)
	}
	clk.Advance(299 * time.Second)
	res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA)
	if err != nil || h.zone.count() != 1 {
		t.Fatalf("within TTL: zone queries %d err %v", h.zone.count(), err)
	}
	if ttl := res.Answer[0].Header().Ttl; ttl != 1 {
		t.Fatalf("TTL %d, want 1", ttl)
	}
	clk.Advance(2 * time.Second)
	if _, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA); err != nil || h.zone.count() != 2 {
		t.Fatalf("after expiry: zone queries %d err %v", h.zone.count(), err)
	}
}

func TestDeadZoneFailureIsCached(t *testing.T) {
	h := memHierarchy(t)
	h.zone.set(func(s *testServer) { s.drop = true })
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := h.resolver(t, func(c *Config) {
		c.Clock = clk
		c.Limits.UpstreamTimeoutInitial = 100 * time.Millisecond
	})
	if re := mustFail(t, r, "www.example.test.", dns.TypeA); re.EDE != dns.ExtendedErrorCodeNoReachableAuthority {
		t.Fatalf("err %v, want SERVFAIL with EDE 22", re)
	}
	n := h.zone.count()
	start := time.Now()
	re := mustFail(t, r, "www.example.test.", dns.TypeA)
	if h.zone.count() != n || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("second query: zone queries %d -> %d: failure not cached", n, h.zone.count())
	}
	if re.EDE != dns.ExtendedErrorCodeCachedError {
		t.Fatalf("EDE %d, want 13 Cached Error", re.EDE)
	}
	// Other names in the dead zone do not contact its servers either.
	if mustFail(t, r, "other.example.test.", dns.TypeA); h.zone.count() != n {
		t.Fatalf("other name: zone queries %d -> %d: zone failure not cached", n, h.zone.count())
	}
	// RFC 9520: briefly. After the failure TTL it is tried again.
	clk.Advance(10 * time.Second)
	h.zone.set(func(s *testServer) { s.drop = false })
	if res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA); err != nil || len(answerAddrs(res)) != 1 {
		t.Fatalf("after the failure TTL: %v %v", res, err)
	}
}

func TestNXDOMAINCoversTypesAndNamesBelow(t *testing.T) {
	h := memHierarchy(t)
	r := h.resolver(t, nil)
	if res, _ := r.Resolve(ctxT(t), "gone.example.test.", dns.TypeA); res.Rcode != dns.RcodeNameError {
		t.Fatalf("rcode %d, want NXDOMAIN", res.Rcode)
	}
	n := h.zone.count()
	// RFC 8020: other types at the name do not exist either.
	res, _ := r.Resolve(ctxT(t), "gone.example.test.", dns.TypeMX)
	if res.Rcode != dns.RcodeNameError || len(res.Authority) == 0 || h.zone.count() != n {
		t.Fatalf("other type: rcode %d authority %v, zone queries %d -> %d", res.Rcode, res.Authority, n, h.zone.count())
	}
	// Names below an unproven NXDOMAIN are still asked (broken servers
	// deny empty non-terminals) ...
	if res, _ = r.Resolve(ctxT(t), "a.gone.example.test.", dns.TypeA); res.Rcode != dns.RcodeNameError || h.zone.count() == n {
		t.Fatalf("below, unproven: rcode %d, zone not asked", res.Rcode)
	}
	n = h.zone.count()
	// ... but not below one DNSSEC proved (as the validator will mark it).
	e, _ := r.Cache().GetNXDomain("gone.example.test.", dns.ClassINET)
	proven := *e
	proven.Security = security.Secure
	r.Cache().PutNXDomain("gone.example.test.", dns.ClassINET, &proven, 60)
	if res, _ = r.Resolve(ctxT(t), "x.y.gone.example.test.", dns.TypeA); res.Rcode != dns.RcodeNameError || h.zone.count() != n {
		t.Fatalf("below, proven: rcode %d, zone queries %d -> %d", res.Rcode, n, h.zone.count())
	}
}
