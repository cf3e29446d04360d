package resolver

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/lab"
	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/validator"
)

// synthesisCost resolves name/qtype once with validation (the flight path,
// not the cache-only fast path) and reports the upstream queries the lab
// got and the signature checks the question spent.
func synthesisCost(t *testing.T, r *Resolver, l *lab.Lab, name string, qtype uint16) (res *Result, queries uint64, checks int) {
	t.Helper()
	before := labQueryCount(l)
	b := newBudget(&r.limits, time.Now())
	res = r.runWith(ctxT(t), dns.Question{Name: name, Qtype: qtype, Qclass: dns.ClassINET}, false, b)
	if st := stateOf(b); st != nil {
		checks = st.budget.Validations()
	}
	return res, labQueryCount(l) - before, checks
}

// denialOwners returns the owners of the NSEC/NSEC3 records of rrs.
func denialOwners(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if t := rr.Header().Rrtype; t == dns.TypeNSEC || t == dns.TypeNSEC3 {
			out = append(out, rr)
		}
	}
	return out
}

// TestAggressiveSynthesisChecksNoSignature: once a denial was validated,
// NXDOMAIN and NODATA (plain and from a wildcard) inside its NSEC or NSEC3
// ranges are synthesised with no upstream query and no signature check
// (issue 8: a random-subdomain flood at a signed zone cost an ECDSA verify
// per name), still secure, with AD and the proof for the client.
func TestAggressiveSynthesisChecksNoSignature(t *testing.T) {
	l := startAggressiveLab(t, clock.System{})
	r, _ := newValidatingResolver(t, l, clock.System{})
	for _, tc := range []struct {
		name         string
		prime        string // validated first, upstream
		primeType    uint16
		qname        string // then synthesised
		qtype        uint16
		rcode        int
		denialRRType uint16
	}{
		{"NSEC NXDOMAIN", "nonexistent." + lab.SecureAlg13, dns.TypeA, "nonexistent2." + lab.SecureAlg13, dns.TypeAAAA, dns.RcodeNameError, dns.TypeNSEC},
		{"NSEC NODATA", "www." + lab.SecureAlg13, dns.TypeTXT, "www." + lab.SecureAlg13, dns.TypeMX, dns.RcodeSuccess, dns.TypeNSEC},
		{"NSEC wildcard NODATA", "anything." + lab.Wildcard, dns.TypeMX, "b." + lab.Wildcard, dns.TypeMX, dns.RcodeSuccess, dns.TypeNSEC},
		{"NSEC3 NODATA", "www." + lab.NSEC3Zone, dns.TypeTXT, "www." + lab.NSEC3Zone, dns.TypeMX, dns.RcodeSuccess, dns.TypeNSEC3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, queries, checks := synthesisCost(t, r, l, tc.prime, tc.primeType)
			if res.Security != security.Secure || checks == 0 || queries == 0 {
				t.Fatalf("priming %s: %v, %d queries, %d signature checks", tc.prime, res.Security, queries, checks)
			}
			for _, round := range []string{"first", "second"} {
				res, queries, checks = synthesisCost(t, r, l, tc.qname, tc.qtype)
				t.Logf("%s %s %s: %s %v, %d queries, %d signature checks", round, tc.qname, dns.TypeToString[tc.qtype], dns.RcodeToString[res.Rcode], res.Security, queries, checks)
				if res.Rcode != tc.rcode || res.Security != security.Secure || len(res.Answer) != 0 || !hasType(res.Authority, tc.denialRRType) || !hasType(res.Authority, dns.TypeRRSIG) || !hasType(res.Authority, dns.TypeSOA) {
					t.Fatalf("%s: %s %v %v\n%v", round, dns.RcodeToString[res.Rcode], res.Security, res.ExtendedError(), res.Authority)
				}
				if queries != 0 || checks != 0 {
					t.Errorf("%s: %d upstream queries, %d signature checks; want none", round, queries, checks)
				}
			}
			// The client path (the cache-only fast path): AD, no query.
			before := labQueryCount(l)
			if m, res := ask(t, r, tc.qname, tc.qtype, true, false, false); m.Rcode != tc.rcode || !m.AuthenticatedData || !hasType(m.Ns, tc.denialRRType) {
				t.Errorf("client: %s AD=%v %v", dns.RcodeToString[m.Rcode], m.AuthenticatedData, res.ExtendedError())
			}
			// Without RD the cache alone answers, secure.
			if m := askNoRD(t, r, tc.qname, tc.qtype, false); m.Rcode != tc.rcode || !m.AuthenticatedData {
				t.Errorf("RD=0: %s AD=%v", dns.RcodeToString[m.Rcode], m.AuthenticatedData)
			}
			if n := labQueryCount(l) - before; n != 0 {
				t.Errorf("client queries: %d upstream queries", n)
			}
		})
	}
	// NSEC3 NXDOMAIN: fresh names fall in kept ranges once a few were
	// validated (the zone has a handful of NSEC3 records).
	synthesised := 0
	for i := range 60 {
		name := fmt.Sprintf("n%d.%s", i, lab.NSEC3Zone)
		res, queries, checks := synthesisCost(t, r, l, name, dns.TypeA)
		if res.Rcode != dns.RcodeNameError || res.Security != security.Secure {
			t.Fatalf("%s: %s %v %v", name, dns.RcodeToString[res.Rcode], res.Security, res.ExtendedError())
		}
		if queries == 0 {
			synthesised++
			if checks != 0 || !hasType(res.Authority, dns.TypeNSEC3) {
				t.Errorf("%s synthesised with %d signature checks, NSEC3 %v", name, checks, hasType(res.Authority, dns.TypeNSEC3))
			}
		}
	}
	if synthesised < 30 {
		t.Errorf("%d of 60 fresh NSEC3 names synthesised", synthesised)
	}
}

// TestAggressiveUsesOnlySecureEntries: synthesis uses an NSEC only while
// its RRset cache entry is there, marked Secure and unchanged. An entry
// that is not Secure (fetched with CD=1, marked bogus, or flushed) sends
// the question upstream to be validated, which marks the NSEC Secure again.
func TestAggressiveUsesOnlySecureEntries(t *testing.T) {
	l := startAggressiveLab(t, clock.System{})
	r, _ := newValidatingResolver(t, l, clock.System{})
	prime := "nonexistent." + lab.SecureAlg13
	if res, _, _ := synthesisCost(t, r, l, prime, dns.TypeA); res.Security != security.Secure {
		t.Fatalf("priming: %v", res.Security)
	}
	qname := "nonexistent2." + lab.SecureAlg13
	res, queries, _ := synthesisCost(t, r, l, qname, dns.TypeA)
	if queries != 0 {
		t.Fatalf("not synthesised: %d queries", queries)
	}
	nsecs := denialOwners(res.Authority)
	if len(nsecs) == 0 {
		t.Fatal("no NSEC in the synthesised answer")
	}
	for _, nsec := range nsecs {
		e, ok := r.Cache().Get(nsec.Header().Name, dns.TypeNSEC, dns.ClassINET)
		if !ok || e.Security != security.Secure {
			t.Fatalf("NSEC %s: cache entry found=%v, want Secure", nsec.Header().Name, ok)
		}
	}
	owner := nsecs[0].Header().Name
	for _, tc := range []struct {
		name    string
		replace func()
	}{
		{"indeterminate", func() {
			e, _ := r.Cache().Get(owner, dns.TypeNSEC, dns.ClassINET)
			r.Cache().Delete(owner, dns.TypeNSEC, dns.ClassINET)
			r.Cache().Put(owner, dns.TypeNSEC, dns.ClassINET, &cache.Entry{RRs: e.RRs, Sigs: e.Sigs, Rank: cache.RankAnswerAuth}, 300)
		}},
		{"bogus", func() {
			e, _ := r.Cache().Get(owner, dns.TypeNSEC, dns.ClassINET)
			r.Cache().Delete(owner, dns.TypeNSEC, dns.ClassINET)
			r.Cache().Put(owner, dns.TypeNSEC, dns.ClassINET, &cache.Entry{RRs: e.RRs, Sigs: e.Sigs, Rank: cache.RankAnswerAuth, Security: security.Bogus}, 30)
		}},
		{"other data", func() {
			e, _ := r.Cache().Get(owner, dns.TypeNSEC, dns.ClassINET)
			other := dns.Copy(e.RRs[0]).(*dns.NSEC)
			other.NextDomain = "zzzz." + lab.SecureAlg13
			r.Cache().Delete(owner, dns.TypeNSEC, dns.ClassINET)
			r.Cache().Put(owner, dns.TypeNSEC, dns.ClassINET, &cache.Entry{RRs: []dns.RR{other}, Sigs: e.Sigs, Rank: cache.RankAnswerAuth, Security: security.Secure}, 300)
		}},
		{"flushed", func() { r.Cache().Delete(owner, dns.TypeNSEC, dns.ClassINET) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.replace()
			fresh := fmt.Sprintf("nonexistent-%s.%s", tc.name[:3], lab.SecureAlg13)
			res, queries, checks := synthesisCost(t, r, l, fresh, dns.TypeA)
			t.Logf("%s: %s %v, %d queries, %d signature checks", fresh, dns.RcodeToString[res.Rcode], res.Security, queries, checks)
			if res.Rcode != dns.RcodeNameError || res.Security != security.Secure {
				t.Fatalf("%s %v %v", dns.RcodeToString[res.Rcode], res.Security, res.ExtendedError())
			}
			if queries == 0 || checks == 0 {
				t.Errorf("answered from an NSEC whose cache entry is %s: %d queries, %d checks", tc.name, queries, checks)
			}
			// The validation marked it Secure again: synthesis resumes.
			if _, queries, checks := synthesisCost(t, r, l, fresh+"x", dns.TypeA); queries != 0 || checks != 0 {
				t.Errorf("after revalidation: %d queries, %d checks", queries, checks)
			}
		})
	}
}

// TestAggressiveExpires: synthesis from a range stops when its records
// expire, at the negative TTL of the zone's SOA (min of SOA TTL and
// MINIMUM, RFC 9077 3.4) even where the NSEC TTL is longer, and no
// synthesised TTL outlives the records it rests on.
func TestAggressiveExpires(t *testing.T) {
	l := startAggressiveLab(t, clock.System{})
	clk := clock.NewManual(time.Now())
	r, _ := newValidatingResolver(t, l, clk)
	res, _, _ := synthesisCost(t, r, l, "nonexistent."+lab.SecureAlg13, dns.TypeA)
	if res.Security != security.Secure {
		t.Fatalf("priming: %v", res.Security)
	}
	var negTTL, nsecTTL uint32
	for _, rr := range res.Authority {
		switch x := rr.(type) {
		case *dns.SOA:
			negTTL = min(x.Hdr.Ttl, x.Minttl)
		case *dns.NSEC:
			nsecTTL = x.Hdr.Ttl
		}
	}
	t.Logf("negative TTL %d, NSEC TTL %d", negTTL, nsecTTL)
	if negTTL == 0 || negTTL > 600 {
		t.Fatalf("negative TTL %d: the test wants a short one", negTTL)
	}
	clk.Advance(time.Duration(negTTL/2) * time.Second)
	res, queries, checks := synthesisCost(t, r, l, "nonexistent2."+lab.SecureAlg13, dns.TypeA)
	if queries != 0 || checks != 0 || res.Security != security.Secure {
		t.Fatalf("half-way: %v, %d queries, %d checks", res.Security, queries, checks)
	}
	for _, rr := range res.Authority {
		if h := rr.Header(); h.Ttl > negTTL-negTTL/2 {
			t.Errorf("%s %s TTL %d after %d s, beyond the negative TTL %d", h.Name, dns.TypeToString[h.Rrtype], h.Ttl, negTTL/2, negTTL)
		}
	}
	clk.Advance(time.Duration(negTTL-negTTL/2) * time.Second)
	res, queries, checks = synthesisCost(t, r, l, "nonexistent3."+lab.SecureAlg13, dns.TypeA)
	t.Logf("after %d s: %s %v, %d queries, %d checks", negTTL, dns.RcodeToString[res.Rcode], res.Security, queries, checks)
	if queries == 0 || checks == 0 {
		t.Errorf("synthesised from an expired range: %d queries, %d checks", queries, checks)
	}
	if res.Rcode != dns.RcodeNameError || res.Security != security.Secure {
		t.Errorf("after expiry: %s %v %v", dns.RcodeToString[res.Rcode], res.Security, res.ExtendedError())
	}
}

// TestDenialStoreAdd: what a proof leaves in the index. Records live no
// longer than the zone's negative TTL (RFC 9077 3.4: an NSEC TTL of 3600
// under SOA MINIMUM 300 gives 300) nor the validated TTL; records without
// an RRSIG from the proof's zone, outside it, opt-out NSEC3 and NSEC3 over
// the iteration limit are not kept.
func TestDenialStoreAdd(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := clock.NewManual(start)
	s := newDenialStore(clk)
	rrs := func(lines ...string) []dns.RR {
		var out []dns.RR
		for _, l := range lines {
			rr, err := dns.NewRR(l)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, rr)
		}
		return out
	}
	sig := func(owner, covered, signer string) string {
		return fmt.Sprintf("%s 3600 IN RRSIG %s 13 2 3600 20270101000000 20251201000000 1 %s AAAA", owner, covered, signer)
	}
	records := rrs(
		"example. 3600 IN SOA ns.example. h.example. 1 7200 3600 1209600 300",
		"a.example. 3600 IN NSEC c.example. A RRSIG NSEC",
		"c.example. 3600 IN NSEC e.example. A RRSIG NSEC",    // signed by another zone
		"e.example. 3600 IN NSEC example. A RRSIG NSEC",      // no RRSIG at all
		"x.other. 3600 IN NSEC z.other. A RRSIG NSEC",        // outside the zone
		"1ABC.example. 3600 IN NSEC3 1 1 0 - 2ABC A RRSIG",   // opt-out
		"3ABC.example. 3600 IN NSEC3 1 0 200 - 4ABC A RRSIG", // too many iterations
	)
	authority := append(append([]dns.RR{}, records...), rrs(
		sig("example.", "SOA", "example."),
		sig("a.example.", "NSEC", "example."),
		sig("c.example.", "NSEC", "other."),
		sig("x.other.", "NSEC", "example."),
		sig("1ABC.example.", "NSEC3", "example."),
		sig("3ABC.example.", "NSEC3", "example."),
	)...)
	kept := s.add(validator.Proof{Zone: "example.", Records: records}, authority, 1000, 50)
	if len(kept) != 1 || kept[0].rr.Header().Name != "a.example." || len(kept[0].sigs) != 1 {
		t.Fatalf("kept %v", kept)
	}
	if got := kept[0].expires.Sub(start); got != 300*time.Second {
		t.Errorf("NSEC kept for %v, want the negative TTL 300 s", got)
	}
	snap, ok := s.snapshot("b.example.")
	if !ok || snap.zone != "example." || snap.soaTTL != 300 || len(snap.records) != 1 || len(snap.soa) != 2 {
		t.Fatalf("snapshot %+v ok=%v", snap, ok)
	}
	// A validated TTL shorter than the negative TTL caps both.
	s2 := newDenialStore(clk)
	if kept := s2.add(validator.Proof{Zone: "example.", Records: records}, authority, 100, 50); len(kept) != 1 || kept[0].expires.Sub(start) != 100*time.Second {
		t.Errorf("validated TTL 100: %v", kept)
	}
	if snap, _ := s2.snapshot("b.example."); snap.soaTTL != 100 {
		t.Errorf("SOA TTL %d, want 100", snap.soaTTL)
	}
	clk.Advance(300 * time.Second)
	if _, ok := s.snapshot("b.example."); ok {
		t.Error("snapshot after the negative TTL ran out")
	}
}
