package lab

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnsname"
)

// Test blocks inside this package's 127.20.0.0/14.
var (
	testBlockMain  = netip.MustParseAddr("127.20.0.0")
	testBlockKnobs = netip.MustParseAddr("127.21.0.0")
)

const testSlowDelay = 300 * time.Millisecond

func startTestLab(t *testing.T, base netip.Addr, now time.Time, bulk int) *Lab {
	t.Helper()
	t0 := time.Now()
	l, err := Start(context.Background(), Config{AddrBase: base, Clock: clock.NewManual(now), BulkHosts: bulk, SlowDelay: testSlowDelay})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	t.Logf("lab Start (%d bulk hosts) took %v", bulk, took)
	if took > 5*time.Second {
		t.Logf("WARNING: Start took over 5 s")
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

func TestLab(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	const bulk = 500
	l := startTestLab(t, testBlockMain, now, bulk)
	c := newChain(t, l, now)

	t.Run("every data address is loopback", func(t *testing.T) {
		// A client that follows a lab answer must stay on this machine.
		for _, origin := range l.Zones() {
			for _, rr := range l.ZoneRecords(origin) {
				var a netip.Addr
				switch v := rr.(type) {
				case *dns.A:
					a, _ = netip.AddrFromSlice(v.A.To4())
				case *dns.AAAA:
					a, _ = netip.AddrFromSlice(v.AAAA)
				default:
					continue
				}
				if !a.IsLoopback() {
					t.Errorf("%s: %s is not a loopback address", origin, rr)
				}
			}
		}
	})

	t.Run("every server answers over UDP and TCP", func(t *testing.T) {
		a := asker{t: t, lab: l}
		for _, s := range l.Servers() {
			if s.Dropping() {
				continue
			}
			for _, proto := range []string{"udp", "tcp"} {
				for _, z := range s.Zones() {
					r := a.mustAsk(s, proto, z, dns.TypeSOA)
					want := dns.RcodeSuccess
					if s.Refusing() {
						want = dns.RcodeRefused
					}
					if r.Rcode != want {
						t.Errorf("%s SOA @%s over %s: %s, want %s", z, s.Host(), proto, dns.RcodeToString[r.Rcode], dns.RcodeToString[want])
					}
					if want == dns.RcodeSuccess && (!r.Authoritative || len(r.Answer) == 0) {
						t.Errorf("%s SOA @%s over %s: not an authoritative answer: %v", z, s.Host(), proto, r)
					}
				}
			}
		}
	})

	t.Run("secure zones chain to the root DS", func(t *testing.T) {
		c.t = t
		for _, origin := range []string{TLDTest, TLDExample, SecureAlg8, SecureAlg13, SecureAlg15, SecureAlg16, NSEC3Zone, OptOut,
			OptOutSecureChild, Wildcard, Glueless, DeadNS, RefusedNS, SlowNS, Bulk, HighIterations} {
			for _, proto := range []string{"udp", "tcp"} {
				if _, err := c.secureAnswer(origin, proto, "www."+origin, dns.TypeA); err != nil {
					t.Errorf("www.%s over %s: %v", origin, proto, err)
				}
			}
		}
		if _, err := c.secureAnswer(BogusSig, "udp", "ok."+BogusSig, dns.TypeA); err != nil {
			t.Errorf("ok.%s: %v", BogusSig, err)
		}
	})

	t.Run("algorithms", func(t *testing.T) {
		c.t = t
		for origin, alg := range map[string]uint8{SecureAlg8: dns.RSASHA256, SecureAlg13: dns.ECDSAP256SHA256, SecureAlg15: dns.ED25519, SecureAlg16: dns.ED448, Root: dns.ECDSAP256SHA256} {
			keys, err := c.zoneKeys(origin)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				if k.Algorithm != alg {
					t.Errorf("%s key %d has algorithm %d, want %d", origin, k.KeyTag(), k.Algorithm, alg)
				}
			}
		}
	})

	t.Run("signature window follows the clock", func(t *testing.T) {
		for _, rr := range l.ZoneRecords(SecureAlg13) {
			if s, ok := rr.(*dns.RRSIG); ok {
				if int64(s.Inception) != now.Add(-time.Hour).Unix() || int64(s.Expiration) != now.Add(30*24*time.Hour).Unix() {
					t.Fatalf("RRSIG window %d..%d, want now-1h..now+30d", s.Inception, s.Expiration)
				}
			}
		}
	})

	t.Run("NXDOMAIN with NSEC", func(t *testing.T) {
		c.t = t
		name := "nonexistent." + SecureAlg13
		r := c.mustAsk(c.primary(SecureAlg13), "udp", name, dns.TypeA)
		if r.Rcode != dns.RcodeNameError {
			t.Fatalf("rcode %s", dns.RcodeToString[r.Rcode])
		}
		if err := c.verifySection(SecureAlg13, r.Ns, dns.TypeNSEC, dns.TypeSOA); err != nil {
			t.Fatal(err)
		}
		covered := false
		for _, rr := range r.Ns {
			if n, ok := rr.(*dns.NSEC); ok && nsecCovers(n, name) {
				covered = true
			}
		}
		if !covered {
			t.Errorf("no NSEC covers %s: %v", name, r.Ns)
		}
	})

	t.Run("NXDOMAIN with NSEC3", func(t *testing.T) {
		c.t = t
		name := "nonexistent." + NSEC3Zone
		r := c.mustAsk(c.primary(NSEC3Zone), "udp", name, dns.TypeA)
		if r.Rcode != dns.RcodeNameError {
			t.Fatalf("rcode %s", dns.RcodeToString[r.Rcode])
		}
		if err := c.verifySection(NSEC3Zone, r.Ns, dns.TypeNSEC3, dns.TypeSOA); err != nil {
			t.Fatal(err)
		}
		var covers, matchesEncloser bool
		for _, rr := range r.Ns {
			if n, ok := rr.(*dns.NSEC3); ok {
				covers = covers || n.Cover(name)
				matchesEncloser = matchesEncloser || n.Match(NSEC3Zone)
				if n.Iterations != 0 || n.Salt != "" {
					t.Errorf("NSEC3 params %d/%q, want 0/none", n.Iterations, n.Salt)
				}
			}
		}
		if !covers || !matchesEncloser {
			t.Errorf("NSEC3 proof incomplete (covers %v, encloser %v): %v", covers, matchesEncloser, r.Ns)
		}
	})

	t.Run("empty non-terminals", func(t *testing.T) {
		c.t = t
		for _, tc := range []struct{ origin, name string }{{SecureAlg13, "ent." + SecureAlg13}, {NSEC3Zone, "ent." + NSEC3Zone}} {
			r := c.mustAsk(c.primary(tc.origin), "udp", tc.name, dns.TypeA)
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
				t.Errorf("%s: rcode %s, %d answers; want NODATA", tc.name, dns.RcodeToString[r.Rcode], len(r.Answer))
			}
			if err := c.verifySection(tc.origin, r.Ns, dns.TypeSOA); err != nil {
				t.Error(err)
			}
			if tc.origin == NSEC3Zone {
				found := false
				for _, rr := range r.Ns {
					if n, ok := rr.(*dns.NSEC3); ok && n.Match(tc.name) && len(n.TypeBitMap) == 0 {
						found = true
					}
				}
				if !found {
					t.Errorf("%s: no NSEC3 with empty bitmap matches: %v", tc.name, r.Ns)
				}
			}
		}
	})

	t.Run("wildcards", func(t *testing.T) {
		c.t = t
		for _, tc := range []struct {
			origin, name string
			qtype        uint16
			labels       uint8
		}{
			{Wildcard, "anything." + Wildcard, dns.TypeA, 2},
			{NSEC3Zone, "x.wild." + NSEC3Zone, dns.TypeTXT, 3},
		} {
			r, err := c.secureAnswer(tc.origin, "udp", tc.name, tc.qtype)
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			_, sigs := rrsetOf(r.Answer, tc.name, tc.qtype)
			if len(sigs) == 0 || sigs[0].Labels != tc.labels {
				t.Errorf("%s: RRSIG labels %v, want %d (wildcard expansion)", tc.name, sigs, tc.labels)
			}
			if err := c.verifySection(tc.origin, r.Ns); err != nil {
				t.Errorf("%s: authority: %v", tc.name, err)
			}
		}
	})

	t.Run("opt-out", func(t *testing.T) {
		c.t = t
		r := c.mustAsk(c.primary(OptOut), "udp", "www."+OptOutInsecureChild, dns.TypeA)
		var ns, ds, optOut int
		for _, rr := range r.Ns {
			switch x := rr.(type) {
			case *dns.NS:
				ns++
			case *dns.DS:
				ds++
			case *dns.NSEC3:
				if x.Flags&1 == 1 {
					optOut++
				}
			}
		}
		if ns == 0 || ds != 0 || optOut == 0 {
			t.Errorf("referral to %s: %d NS, %d DS, %d opt-out NSEC3: %v", OptOutInsecureChild, ns, ds, optOut, r.Ns)
		}
		if err := c.verifySection(OptOut, r.Ns, dns.TypeNSEC3); err != nil {
			t.Error(err)
		}
		r = c.mustAsk(c.primary(OptOutInsecureChild), "udp", "www."+OptOutInsecureChild, dns.TypeA)
		if _, sigs := rrsetOf(r.Answer, "www."+OptOutInsecureChild, dns.TypeA); len(r.Answer) == 0 || len(sigs) != 0 {
			t.Errorf("insecure child answer: %v", r.Answer)
		}
	})

	t.Run("insecure delegation", func(t *testing.T) {
		c.t = t
		r := c.mustAsk(c.primary(TLDTest), "udp", Insecure, dns.TypeDS)
		if len(r.Answer) != 0 {
			t.Fatalf("DS for %s: %v", Insecure, r.Answer)
		}
		if err := c.verifySection(TLDTest, r.Ns, dns.TypeNSEC); err != nil {
			t.Fatal(err)
		}
		proved := false
		for _, rr := range r.Ns {
			if n, ok := rr.(*dns.NSEC); ok && dnsname.Equal(n.Hdr.Name, Insecure) {
				proved = !hasType(n.TypeBitMap, dns.TypeDS) && hasType(n.TypeBitMap, dns.TypeNS)
			}
		}
		if !proved {
			t.Errorf("no NSEC proves the absence of DS at %s: %v", Insecure, r.Ns)
		}
		r = c.mustAsk(c.primary(Insecure), "udp", "www."+Insecure, dns.TypeA)
		if len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeA {
			t.Errorf("www.%s: %v", Insecure, r.Answer)
		}
	})

	t.Run("bogus zones are broken as intended", func(t *testing.T) {
		c.t = t
		// www's signature does not verify with the (valid) zone key.
		if _, err := c.secureAnswer(BogusSig, "udp", "www."+BogusSig, dns.TypeA); err == nil || !strings.Contains(err.Error(), "verif") {
			t.Errorf("www.%s: %v, want a verification failure", BogusSig, err)
		}
		r := c.mustAsk(c.primary(BogusSig), "udp", "nosig."+BogusSig, dns.TypeA)
		if set, sigs := rrsetOf(r.Answer, "nosig."+BogusSig, dns.TypeA); len(set) != 1 || len(sigs) != 0 {
			t.Errorf("nosig.%s: %v, want an unsigned A", BogusSig, r.Answer)
		}

		// Expired: signatures verify but their window is past.
		if _, err := c.zoneKeys(Expired); err == nil || !strings.Contains(err.Error(), "validity") {
			t.Errorf("%s: %v, want expired signatures", Expired, err)
		}
		if _, err := newChain(t, l, now.Add(-45*24*time.Hour)).zoneKeys(Expired); err != nil && !strings.Contains(err.Error(), "validity") {
			// 45 days ago the zone's own signatures were valid (its
			// parents' were not yet); any error must be about time.
			t.Errorf("%s 45 days ago: %v", Expired, err)
		}

		// Future: signatures verify but are not valid yet.
		if _, err := c.zoneKeys(Future); err == nil || !strings.Contains(err.Error(), "validity") {
			t.Errorf("%s: %v, want not-yet-valid signatures", Future, err)
		}
		if _, err := newChain(t, l, now.Add(futureStart+time.Hour)).secureAnswer(Future, "udp", "www."+Future, dns.TypeA); err != nil {
			t.Errorf("%s after the window opens: %v", Future, err)
		}
		// Unknown digest: the DS names the KSK, with digest type 200.
		r = c.mustAsk(c.primary(TLDTest), "udp", UnknownDigest, dns.TypeDS)
		if set, _ := rrsetOf(r.Answer, UnknownDigest, dns.TypeDS); len(set) != 1 || set[0].(*dns.DS).DigestType != DigestUnknown ||
			set[0].(*dns.DS).KeyTag != l.Keys(UnknownDigest)[0].Tag() {
			t.Errorf("%s DS %v", UnknownDigest, r.Answer)
		}
		// No denial: positive answers are fine, NXDOMAIN comes without proof.
		if _, err := c.secureAnswer(NoDenial, "udp", "www."+NoDenial, dns.TypeA); err != nil {
			t.Errorf("www.%s: %v", NoDenial, err)
		}
		r = c.mustAsk(c.primary(NoDenial), "udp", "nonexistent."+NoDenial, dns.TypeA)
		for _, rr := range r.Ns {
			if t3 := rr.Header().Rrtype; t3 == dns.TypeNSEC || t3 == dns.TypeNSEC3 {
				t.Errorf("%s NXDOMAIN carries a denial record: %v", NoDenial, rr)
			}
		}
		if r.Rcode != dns.RcodeNameError {
			t.Errorf("%s: rcode %s", NoDenial, dns.RcodeToString[r.Rcode])
		}

		// Bad DS: the DS is properly signed but matches no DNSKEY.
		if _, err := c.zoneKeys(BadDS); err == nil || !strings.Contains(err.Error(), "matches its DS") {
			t.Errorf("%s: %v, want DS mismatch", BadDS, err)
		}
		// Unsigned DNSKEY RRset: the DS matches, the RRset has no RRSIG.
		if _, err := c.zoneKeys(UnsignedDNSKEY); err == nil || !strings.Contains(err.Error(), "no RRSIG") {
			t.Errorf("%s: %v, want an unsigned DNSKEY RRset", UnsignedDNSKEY, err)
		}
		// Unknown algorithm: DNSKEY and DS say 253 and match each other.
		r = c.mustAsk(c.primary(UnknownAlgorithm), "udp", UnknownAlgorithm, dns.TypeDNSKEY)
		set, _ := rrsetOf(r.Answer, UnknownAlgorithm, dns.TypeDNSKEY)
		ds := c.mustAsk(c.primary(TLDTest), "udp", UnknownAlgorithm, dns.TypeDS)
		dsSet, _ := rrsetOf(ds.Answer, UnknownAlgorithm, dns.TypeDS)
		if len(set) == 0 || len(dsSet) != 1 {
			t.Fatalf("%s: DNSKEY %v, DS %v", UnknownAlgorithm, set, dsSet)
		}
		matched := false
		for _, rr := range set {
			k := rr.(*dns.DNSKEY)
			if k.Algorithm != AlgUnknown {
				t.Errorf("%s key algorithm %d", UnknownAlgorithm, k.Algorithm)
			}
			if d := k.ToDS(dns.SHA256); d != nil && strings.EqualFold(d.Digest, dsSet[0].(*dns.DS).Digest) {
				matched = true
			}
		}
		if !matched || dsSet[0].(*dns.DS).Algorithm != AlgUnknown {
			t.Errorf("%s: DS %v does not match the algorithm-253 key", UnknownAlgorithm, dsSet)
		}
	})

	t.Run("CNAME and DNAME", func(t *testing.T) {
		c.t = t
		for _, tc := range []struct{ name, target string }{
			{"cname-secure." + SecureAlg13, "www." + SecureAlg15},
			{"cname-insecure." + SecureAlg13, "www." + Insecure},
			{"cname-example." + SecureAlg13, "www." + TLDExample},
			{"chain." + SecureAlg13, "chain." + SecureAlg8},
			{"loop." + SecureAlg13, "loop." + SecureAlg15},
			{"www.dname." + SecureAlg13, "www." + SecureAlg15},
		} {
			r := c.mustAsk(c.primary(SecureAlg13), "udp", tc.name, dns.TypeA)
			found := false
			for _, rr := range r.Answer {
				if cn, ok := rr.(*dns.CNAME); ok && dnsname.Equal(cn.Hdr.Name, tc.name) && dnsname.Equal(cn.Target, tc.target) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: no CNAME to %s in %v", tc.name, tc.target, r.Answer)
			}
			if err := c.verifySection(SecureAlg13, r.Answer, dns.TypeDNAME); err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
		}
		// The other halves of the chain and the loop.
		for _, tc := range []struct{ origin, name, target string }{
			{SecureAlg8, "chain." + SecureAlg8, "www." + NSEC3Zone},
			{SecureAlg15, "loop." + SecureAlg15, "loop." + SecureAlg13},
		} {
			r, err := c.secureAnswer(tc.origin, "udp", tc.name, dns.TypeCNAME)
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			if cn, ok := r.Answer[0].(*dns.CNAME); !ok || !dnsname.Equal(cn.Target, tc.target) {
				t.Errorf("%s: %v, want CNAME %s", tc.name, r.Answer, tc.target)
			}
		}
	})

	t.Run("glueless delegation", func(t *testing.T) {
		c.t = t
		r := c.mustAsk(c.primary(TLDTest), "udp", "www."+Glueless, dns.TypeA)
		var targets []string
		for _, rr := range r.Ns {
			if ns, ok := rr.(*dns.NS); ok {
				targets = append(targets, ns.Ns)
			}
		}
		for _, rr := range r.Extra {
			if rr.Header().Rrtype == dns.TypeA || rr.Header().Rrtype == dns.TypeAAAA {
				t.Errorf("glue in a glueless referral: %v", rr)
			}
		}
		if len(targets) != 2 || !dnsname.IsAtOrBelow(targets[0], TLDExample) || !dnsname.IsAtOrBelow(targets[1], TLDExample) {
			t.Fatalf("referral NS %v, want two in %s", targets, TLDExample)
		}
		for _, host := range targets {
			r, err := c.secureAnswer(TLDExample, "udp", host, dns.TypeA)
			if err != nil {
				t.Fatalf("%s: %v", host, err)
			}
			if a := r.Answer[0].(*dns.A); netip.MustParseAddr(a.A.String()) != l.Server(host).Addr() {
				t.Errorf("%s A %s, server at %s", host, a.A, l.Server(host).Addr())
			}
		}
	})

	t.Run("dead, refusing, lame and slow servers", func(t *testing.T) {
		a := asker{t: t, lab: l}
		dead := l.Server(HostDead)
		before := dead.Queries()
		m := new(dns.Msg)
		m.SetQuestion("www."+DeadNS, dns.TypeA)
		cl := &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
		if _, _, err := cl.Exchange(m, dead.AddrPort().String()); err == nil {
			t.Error("the dead server answered")
		}
		if dead.Queries() <= before {
			t.Error("the dead server did not count the query it dropped")
		}
		cl.Net = "tcp"
		if _, _, err := cl.Exchange(m, dead.AddrPort().String()); err == nil {
			t.Error("the dead server answered over TCP")
		}
		if _, err := c.secureAnswer(DeadNS, "udp", "www."+DeadNS, dns.TypeA); err != nil {
			t.Errorf("working server of %s: %v", DeadNS, err)
		}

		for _, proto := range []string{"udp", "tcp"} {
			r := a.mustAsk(l.Server(HostRefused), proto, "www."+RefusedNS, dns.TypeA)
			if r.Rcode != dns.RcodeRefused {
				t.Errorf("refusing server over %s: %s", proto, dns.RcodeToString[r.Rcode])
			}
		}
		r := a.mustAsk(c.primary(TLDTest), "udp", "www."+Lame, dns.TypeA)
		if len(r.Ns) == 0 || r.Ns[0].(*dns.NS).Ns != HostRefused {
			t.Errorf("referral to %s: %v", Lame, r.Ns)
		}

		slow, fast := l.Server(HostSlow), l.Server(HostZones1)
		_, slowRTT, err := a.ask(slow, "udp", "www."+SlowNS, dns.TypeA)
		if err != nil {
			t.Fatal(err)
		}
		_, fastRTT, err := a.ask(fast, "udp", "www."+SlowNS, dns.TypeA)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("slow server %v, fast server %v", slowRTT, fastRTT)
		if slowRTT < testSlowDelay*9/10 || fastRTT >= testSlowDelay {
			t.Errorf("slow server took %v, fast %v; configured delay %v", slowRTT, fastRTT, testSlowDelay)
		}
	})

	t.Run("large answer", func(t *testing.T) {
		c.t = t
		name := "big." + SecureAlg13
		r := c.mustAsk(c.primary(SecureAlg13), "udp", name, dns.TypeTXT)
		if !r.Truncated {
			t.Errorf("UDP answer for %s not truncated (%d answers)", name, len(r.Answer))
		}
		r, err := c.secureAnswer(SecureAlg13, "tcp", name, dns.TypeTXT)
		if err != nil {
			t.Fatal(err)
		}
		if n := r.Len(); n <= 1232 || len(r.Answer) != BigTXTCount+1 {
			t.Errorf("TCP answer %d bytes, %d records", n, len(r.Answer))
		}
	})

	t.Run("bulk hosts", func(t *testing.T) {
		c.t = t
		n := 0
		for _, rr := range l.ZoneRecords(Bulk) {
			if rr.Header().Rrtype == dns.TypeA && strings.HasPrefix(rr.Header().Name, "h") {
				n++
			}
		}
		if n != bulk {
			t.Errorf("%d bulk hosts, want %d", n, bulk)
		}
		if _, err := c.secureAnswer(Bulk, "udp", BulkName(bulk-1), dns.TypeA); err != nil {
			t.Error(err)
		}
		r := c.mustAsk(c.primary(Bulk), "udp", BulkName(bulk), dns.TypeA)
		if r.Rcode != dns.RcodeNameError {
			t.Errorf("%s: %s, want NXDOMAIN", BulkName(bulk), dns.RcodeToString[r.Rcode])
		}
	})

	t.Run("high NSEC3 iterations", func(t *testing.T) {
		c.t = t
		r := c.mustAsk(c.primary(HighIterations), "udp", "nonexistent."+HighIterations, dns.TypeA)
		if r.Rcode != dns.RcodeNameError {
			t.Fatalf("rcode %s", dns.RcodeToString[r.Rcode])
		}
		for _, rr := range r.Ns {
			if n, ok := rr.(*dns.NSEC3); ok && n.Iterations != 100 {
				t.Errorf("NSEC3 iterations %d, want 100", n.Iterations)
			}
		}
		if err := c.verifySection(HighIterations, r.Ns, dns.TypeNSEC3); err != nil {
			t.Error(err)
		}
	})

	t.Run("CDS and CDNSKEY", func(t *testing.T) {
		c.t = t
		keys, err := c.zoneKeys(SecureAlg13)
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.secureAnswer(SecureAlg13, "udp", SecureAlg13, dns.TypeCDS)
		if err != nil {
			t.Fatal(err)
		}
		cds := r.Answer[0].(*dns.CDS)
		if want := keys[0].ToDS(dns.SHA256); !strings.EqualFold(cds.Digest, want.Digest) {
			t.Errorf("CDS %v, want %v", cds, want)
		}
	})

	t.Run("every documented case is answered as its kind says", func(t *testing.T) {
		c.t = t
		for _, tc := range Cases() {
			origin := l.world.parentOf(dns.Fqdn("x." + tc.QName))
			z := l.world.by[origin]
			if z.def.delegationOnly {
				r := c.mustAsk(l.Server(z.def.ns[0]), "udp", tc.QName, tc.QType)
				if r.Rcode != dns.RcodeRefused || tc.Expect != ExpectServfail {
					t.Errorf("case %s: %s from the lame server, expect %s", tc.Name, dns.RcodeToString[r.Rcode], tc.Expect)
				}
				continue
			}
			r := c.mustAsk(c.primary(origin), "tcp", tc.QName, tc.QType)
			var wantRcode int
			wantData := true
			switch tc.Expect {
			case ExpectNXDomain, ExpectNXDomainSecure, ExpectNXDomainInsecure:
				wantRcode, wantData = dns.RcodeNameError, false
			case ExpectNoDataSecure:
				wantData = false
			}
			if strings.HasPrefix(tc.QName, "nonexistent.") {
				// A bogus denial is still NXDOMAIN at the authority.
				wantRcode, wantData = dns.RcodeNameError, false
			}
			if r.Rcode != wantRcode || (len(r.Answer) > 0) != wantData || !r.Authoritative {
				t.Errorf("case %s (%s %s at %s): rcode %s, AA %v, %d answers; expect %s", tc.Name, tc.QName,
					dns.TypeToString[tc.QType], origin, dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Answer), tc.Expect)
			}
		}
	})

	t.Run("root hints, trust anchors and files", func(t *testing.T) {
		hints := l.RootHints()
		var ns, addrs int
		for _, rr := range hints {
			switch x := rr.(type) {
			case *dns.NS:
				ns++
				if l.Server(x.Ns) == nil {
					t.Errorf("hint NS %s is no lab server", x.Ns)
				}
			case *dns.A:
				addrs++
				if s := l.Server(x.Hdr.Name); s == nil || s.Addr() != netip.MustParseAddr(x.A.String()) {
					t.Errorf("hint %v does not match the server", x)
				}
			}
		}
		if ns != 2 || addrs != 2 {
			t.Errorf("root hints %v", hints)
		}
		dir := t.TempDir()
		if err := l.WriteFiles(dir); err != nil {
			t.Fatal(err)
		}
		for file, want := range map[string]int{FileRootHints: 4, FileRootDS: 1, FileRootKey: 1} {
			text, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			zp := dns.NewZoneParser(strings.NewReader(string(text)), "", file)
			n := 0
			for _, ok := zp.Next(); ok; _, ok = zp.Next() {
				n++
			}
			if zp.Err() != nil || n != want {
				t.Errorf("%s: %d records, err %v; want %d", file, n, zp.Err(), want)
			}
		}
		ta := l.TrustAnchors()
		if len(ta) != 2 || ta[0].(*dns.DS).Digest != ta[1].(*dns.DNSKEY).ToDS(dns.SHA256).Digest {
			t.Errorf("trust anchors %v", ta)
		}
	})
}

func hasType(ts []uint16, t uint16) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// TestServerKnobs turns each knob of one server at run time.
func TestServerKnobs(t *testing.T) {
	l := startTestLab(t, testBlockKnobs, time.Now(), -1)
	a := asker{t: t, lab: l}
	s := l.Server(HostZones2)
	ask := func() (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetQuestion("www."+SecureAlg13, dns.TypeA)
		r, _, err := (&dns.Client{Net: "udp", Timeout: 250 * time.Millisecond}).Exchange(m, s.AddrPort().String())
		return r, err
	}
	if r, err := ask(); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("healthy server: %v %v", r, err)
	}
	n := s.Queries()

	s.SetDrop(true)
	if _, err := ask(); err == nil {
		t.Error("answered while dropping")
	}
	s.SetDrop(false)

	s.SetLoss(1)
	if _, err := ask(); err == nil {
		t.Error("answered with loss 1")
	}
	s.SetLoss(0)

	// Loss 0.5 drops some, not all (40 tries: the odds of fewer than 5 or
	// more than 35 answers are about 1e-7).
	s.SetLoss(0.5)
	answered := 0
	for range 40 {
		m := new(dns.Msg)
		m.SetQuestion("www."+SecureAlg13, dns.TypeA)
		if _, _, err := (&dns.Client{Net: "udp", Timeout: 80 * time.Millisecond}).Exchange(m, s.AddrPort().String()); err == nil {
			answered++
		}
	}
	s.SetLoss(0)
	if answered < 5 || answered > 35 {
		t.Errorf("loss 0.5: %d of 40 answered", answered)
	}
	n += 40

	s.SetRefuse(true)
	if r, err := ask(); err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("refuse mode: %v %v", r, err)
	}
	s.SetRefuse(false)

	s.SetDelay(150 * time.Millisecond)
	t0 := time.Now()
	if _, err := ask(); err != nil {
		t.Error(err)
	}
	if d := time.Since(t0); d < 140*time.Millisecond {
		t.Errorf("delayed answer after %v", d)
	}
	s.SetDelay(0)

	if got := s.Queries() - n; got != 4 {
		t.Errorf("counted %d queries, want 4", got)
	}
	// TCP too.
	if r := a.mustAsk(s, "tcp", "www."+SecureAlg13, dns.TypeA); r.Rcode != dns.RcodeSuccess {
		t.Errorf("tcp after knobs: %v", r)
	}
}

// TestStartTwiceSameBlock: a second lab on a taken block fails cleanly.
func TestStartTwiceSameBlock(t *testing.T) {
	base := netip.MustParseAddr("127.22.0.0")
	startTestLab(t, base, time.Now(), -1)
	if l, err := Start(context.Background(), Config{AddrBase: base, BulkHosts: -1}); err == nil {
		l.Close()
		t.Error("a second lab started on a taken block")
	}
}

// TestResign moves the clock past the signatures' expiry and re-signs: the
// served signatures follow the new time.
func TestResign(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	clk := clock.NewManual(start)
	l, err := Start(context.Background(), Config{AddrBase: testBlockKnobs, Clock: clk, BulkHosts: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	later := start.Add(40 * 24 * time.Hour)
	clk.Set(later)
	if _, err := newChain(t, l, later).secureAnswer(SecureAlg13, "udp", "www."+SecureAlg13, dns.TypeA); err == nil {
		t.Fatal("signatures still valid 40 days on")
	}
	if err := l.Resign(); err != nil {
		t.Fatal(err)
	}
	c := newChain(t, l, later)
	if _, err := c.secureAnswer(SecureAlg13, "udp", "www."+SecureAlg13, dns.TypeA); err != nil {
		t.Fatalf("after Resign: %v", err)
	}
	if _, err := c.zoneKeys(Expired); err == nil {
		t.Error("the expired zone is valid after Resign")
	}
}

// A lab left running (sextant lab) re-signs on its own, so its signatures
// do not run out 30 days after Start.
func TestKeepSigned(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	clk := clock.NewManual(start)
	l, err := Start(context.Background(), Config{AddrBase: netip.MustParseAddr("127.40.0.0"), Clock: clk, BulkHosts: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	later := start.Add(40 * 24 * time.Hour)
	clk.Set(later)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.keepSigned(ctx, 20*time.Millisecond) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := newChain(t, l, later).secureAnswer(SecureAlg13, "udp", "www."+SecureAlg13, dns.TypeA); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("signatures not renewed 40 days on")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
