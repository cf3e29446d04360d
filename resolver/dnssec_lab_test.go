package resolver

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/internal/labtest"
	"github.com/sextant-dns/sextant/lab"
	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/validator"
)

// dnssecLabBase is the block of this package's DNSSEC lab tests.
var dnssecLabBase = netip.MustParseAddr("127.36.0.0")

// startDNSSECLab starts a lab dated by labClock.
func startDNSSECLab(t testing.TB, labClock clock.Clock) *lab.Lab {
	t.Helper()
	return labtest.Start(t, lab.Config{AddrBase: dnssecLabBase, Clock: labClock, BulkHosts: 2, SlowDelay: 50 * time.Millisecond})
}

// newValidatingResolver makes a lab resolver that validates with the
// lab's root anchors on clk.
func newValidatingResolver(t testing.TB, l *lab.Lab, clk clock.Clock, opts ...validator.Option) (*Resolver, *dnssec) {
	t.Helper()
	r := newLabResolver(t, l, func(c *Config) {
		c.Clock = clk
		c.DNSSEC = &DNSSECConfig{Anchors: l.TrustAnchors(), Options: opts}
	})
	return r, r.dnssec
}

// ask sends one client query through Exchange with the given flags.
func ask(t testing.TB, r *Resolver, name string, qtype uint16, do, cd, ad bool) (*dns.Msg, *Result) {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(1232, do)
	q.CheckingDisabled = cd
	q.AuthenticatedData = ad
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, res := r.Exchange(ctx, q)
	return m, res
}

func hasType(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

// wantEDE is the Extended DNS Error each bogus or annotated case gets.
var wantEDE = map[string]int{
	"bogus-sig":         int(validator.EDEDNSSECBogus),
	"bogus-nosig":       int(validator.EDERRSIGsMissing),
	"expired":           int(validator.EDESignatureExpired),
	"future":            int(validator.EDESignatureNotYetValid),
	"bad-ds":            int(validator.EDEDNSKEYMissing),
	"unsigned-dnskey":   int(validator.EDERRSIGsMissing),
	"nodenial-nxdomain": int(validator.EDENSECMissing),
	"cname-bogus":       int(validator.EDEDNSSECBogus),
	"unknown-alg":       int(validator.EDEUnsupportedDNSKEYAlg),
	"unknown-digest":    int(validator.EDEUnsupportedDSDigest),
	"iter100-nxdomain":  int(validator.EDEUnsupportedNSEC3Iterations),
}

// checkCase checks one DO=1 answer against the lab's expectation.
func checkCase(t *testing.T, c lab.Case, m *dns.Msg, res *Result) {
	t.Helper()
	rc, ad, ede := m.Rcode, m.AuthenticatedData, dnstest.EDECode(m)
	data := len(m.Answer) > 0
	fail := func(what string) {
		t.Errorf("%s (%s %s): %s; got %s AD=%v EDE=%d answers=%d status=%v err=%v",
			c.Name, c.QName, dns.TypeToString[c.QType], what, dns.RcodeToString[rc], ad, ede, len(m.Answer), res.Security, res.ExtendedError())
	}
	switch c.Expect {
	case lab.ExpectSecure:
		if rc != dns.RcodeSuccess || !ad || !data || !hasType(m.Answer, dns.TypeRRSIG) {
			fail("want NOERROR, AD, data with RRSIGs")
		}
	case lab.ExpectInsecure:
		if rc != dns.RcodeSuccess || ad || !data {
			fail("want NOERROR without AD, with data")
		}
	case lab.ExpectBogus:
		if rc != dns.RcodeServerFailure || ad || data {
			fail("want SERVFAIL")
		}
	case lab.ExpectNXDomainSecure:
		if rc != dns.RcodeNameError || !ad {
			fail("want NXDOMAIN with AD")
		}
	case lab.ExpectNXDomainInsecure:
		if rc != dns.RcodeNameError || ad {
			fail("want NXDOMAIN without AD")
		}
	case lab.ExpectNXDomain:
		if rc != dns.RcodeNameError {
			fail("want NXDOMAIN")
		}
	case lab.ExpectNoDataSecure:
		if rc != dns.RcodeSuccess || !ad || data || !(hasType(m.Ns, dns.TypeNSEC) || hasType(m.Ns, dns.TypeNSEC3)) {
			fail("want NODATA with AD and the denial records")
		}
	case lab.ExpectServfail:
		if rc != dns.RcodeServerFailure {
			fail("want SERVFAIL")
		}
	}
	if want, ok := wantEDE[c.Name]; ok && ede != want {
		fail("want EDE " + dns.ExtendedErrorCodeToString[uint16(want)])
	}
}

// TestDNSSECLabCases runs every case of the lab's table through a
// validating resolver, twice (the second time from the cache, which must
// keep the status), and the bogus ones once more with CD=1.
func TestDNSSECLabCases(t *testing.T) {
	l := startDNSSECLab(t, clock.System{})
	r, _ := newValidatingResolver(t, l, clock.System{})
	for _, round := range []string{"cold", "cached"} {
		for _, c := range lab.Cases() {
			m, res := ask(t, r, c.QName, c.QType, true, false, false)
			t.Logf("%s %s: %s %s AD=%v EDE=%d status=%v", round, c.Name, c.QName, dns.RcodeToString[m.Rcode], m.AuthenticatedData, dnstest.EDECode(m), res.Security)
			checkCase(t, c, m, res)
		}
	}
	for _, c := range lab.Cases() {
		if c.Expect != lab.ExpectBogus {
			continue
		}
		m, res := ask(t, r, c.QName, c.QType, true, true, false)
		if c.Name == "nodenial-nxdomain" {
			if m.Rcode != dns.RcodeNameError || m.AuthenticatedData {
				t.Errorf("%s with CD=1: %s AD=%v, want the unvalidated NXDOMAIN", c.Name, dns.RcodeToString[m.Rcode], m.AuthenticatedData)
			}
			continue
		}
		if m.Rcode != dns.RcodeSuccess || m.AuthenticatedData || len(m.Answer) == 0 || res.Security != security.Indeterminate {
			t.Errorf("%s with CD=1: %s AD=%v answers=%d status=%v, want the data unvalidated", c.Name, dns.RcodeToString[m.Rcode], m.AuthenticatedData, len(m.Answer), res.Security)
		}
	}
}

// TestDNSSECClientFlags: AD only for DO or AD queries (RFC 6840 5.7),
// RRSIGs and NSEC only with DO, and the cache entry keeps the status.
func TestDNSSECClientFlags(t *testing.T) {
	l := startDNSSECLab(t, clock.System{})
	r, _ := newValidatingResolver(t, l, clock.System{})
	name := "www." + lab.SecureAlg13
	for _, tc := range []struct {
		do, ad       bool
		wantAD, sigs bool
	}{
		{false, false, false, false},
		{false, true, true, false},
		{true, false, true, true},
		{true, true, true, true},
	} {
		m, res := ask(t, r, name, dns.TypeA, tc.do, false, tc.ad)
		if m.Rcode != dns.RcodeSuccess || res.Security != security.Secure || m.AuthenticatedData != tc.wantAD || hasType(m.Answer, dns.TypeRRSIG) != tc.sigs {
			t.Errorf("DO=%v AD=%v: %s status %v AD=%v RRSIG=%v, want AD=%v RRSIG=%v", tc.do, tc.ad,
				dns.RcodeToString[m.Rcode], res.Security, m.AuthenticatedData, hasType(m.Answer, dns.TypeRRSIG), tc.wantAD, tc.sigs)
		}
	}
	e, ok := r.Cache().Get(name, dns.TypeA, dns.ClassINET)
	if !ok || e.Security != security.Secure {
		t.Fatalf("cache entry %v found=%v, want Security Secure", e, ok)
	}
	m, _ := ask(t, r, "nonexistent."+lab.SecureAlg13, dns.TypeA, false, false, false)
	if m.Rcode != dns.RcodeNameError || hasType(m.Ns, dns.TypeNSEC) || hasType(m.Ns, dns.TypeRRSIG) {
		t.Errorf("NXDOMAIN without DO: %s with NSEC/RRSIG in authority: %v", dns.RcodeToString[m.Rcode], m.Ns)
	}
	// Bogus data is cached briefly, marked: SERVFAIL again without a new
	// validation, the data for CD=1.
	bogus := "www." + lab.BogusSig
	ask(t, r, bogus, dns.TypeA, true, false, false)
	if e, ok := r.Cache().Get(bogus, dns.TypeA, dns.ClassINET); !ok || e.Security != security.Bogus || r.Cache().Remaining(e) > 60 {
		t.Fatalf("bogus entry: found=%v %+v", ok, e)
	}
	if m, _ := ask(t, r, bogus, dns.TypeA, true, false, false); m.Rcode != dns.RcodeServerFailure || dnstest.EDECode(m) != int(validator.EDEDNSSECBogus) {
		t.Errorf("cached bogus: %s EDE %d", dns.RcodeToString[m.Rcode], dnstest.EDECode(m))
	}
}

// TestDNSSECNegativeTrustAnchorAndOff: an NTA turns a bogus zone insecure
// (RFC 7646); without a validator nothing gets AD or SERVFAIL for DNSSEC.
func TestDNSSECNegativeTrustAnchorAndOff(t *testing.T) {
	l := startDNSSECLab(t, clock.System{})
	r, _ := newValidatingResolver(t, l, clock.System{}, validator.WithNegativeTrustAnchors(lab.BogusSig))
	m, res := ask(t, r, "www."+lab.BogusSig, dns.TypeA, true, false, false)
	if m.Rcode != dns.RcodeSuccess || m.AuthenticatedData || res.Security != security.Insecure {
		t.Errorf("under NTA: %s AD=%v %v, want insecure data", dns.RcodeToString[m.Rcode], m.AuthenticatedData, res.Security)
	}
	if m, _ := ask(t, r, "www."+lab.SecureAlg13, dns.TypeA, true, false, false); !m.AuthenticatedData {
		t.Errorf("outside the NTA: no AD")
	}
	off := newLabResolver(t, l, nil)
	for _, name := range []string{"www." + lab.BogusSig, "www." + lab.SecureAlg13} {
		m, res := ask(t, off, name, dns.TypeA, true, false, false)
		if m.Rcode != dns.RcodeSuccess || m.AuthenticatedData || res.Security != security.Indeterminate {
			t.Errorf("validation off, %s: %s AD=%v %v", name, dns.RcodeToString[m.Rcode], m.AuthenticatedData, res.Security)
		}
	}
}

// TestDNSSECClock moves the resolver's clock across the signature
// windows of a lab signed at t0: valid, expired (EDE 7), not yet valid
// (EDE 8); the future zone becomes secure once its window opens; and a
// re-signed lab is secure again at the later time.
func TestDNSSECClock(t *testing.T) {
	t0 := time.Now().UTC().Truncate(time.Second)
	labClock := clock.NewManual(t0)
	l := startDNSSECLab(t, labClock)
	name := "www." + lab.SecureAlg13
	for _, tc := range []struct {
		what   string
		at     time.Time
		name   string
		rcode  int
		ad     bool
		ede    int
		resign bool
	}{
		{"at signing", t0, name, dns.RcodeSuccess, true, -1, false},
		{"31 days later", t0.Add(31 * 24 * time.Hour), name, dns.RcodeServerFailure, false, int(validator.EDESignatureExpired), false},
		{"2 hours before", t0.Add(-2 * time.Hour), name, dns.RcodeServerFailure, false, int(validator.EDESignatureNotYetValid), false},
		{"future zone, at signing", t0, "www." + lab.Future, dns.RcodeServerFailure, false, int(validator.EDESignatureNotYetValid), false},
		{"future zone, 11 days later", t0.Add(11 * 24 * time.Hour), "www." + lab.Future, dns.RcodeSuccess, true, -1, false},
		{"31 days later, lab re-signed", t0.Add(31 * 24 * time.Hour), name, dns.RcodeSuccess, true, -1, true},
	} {
		if tc.resign {
			labClock.Set(tc.at)
			if err := l.Resign(); err != nil {
				t.Fatal(err)
			}
		}
		r, _ := newValidatingResolver(t, l, clock.NewManual(tc.at))
		m, _ := ask(t, r, tc.name, dns.TypeA, true, false, false)
		if m.Rcode != tc.rcode || m.AuthenticatedData != tc.ad || dnstest.EDECode(m) != tc.ede {
			t.Errorf("%s: %s AD=%v EDE=%d, want %s AD=%v EDE=%d", tc.what, dns.RcodeToString[m.Rcode], m.AuthenticatedData, dnstest.EDECode(m),
				dns.RcodeToString[tc.rcode], tc.ad, tc.ede)
		}
	}
}

// labQueryCount sums the queries every lab server received.
func labQueryCount(l *lab.Lab) uint64 {
	var n uint64
	for _, s := range l.Servers() {
		n += s.Queries()
	}
	return n
}

// TestDNSSECAggressiveNSEC: after one secure NXDOMAIN and one NODATA,
// other names and types inside the validated NSEC ranges are answered
// without any upstream query (RFC 8198), still with AD.
func TestDNSSECAggressiveNSEC(t *testing.T) {
	l := startDNSSECLab(t, clock.System{})
	r, _ := newValidatingResolver(t, l, clock.System{})
	for _, c := range []struct {
		name  string
		qtype uint16
	}{{"nonexistent." + lab.SecureAlg13, dns.TypeA}, {"www." + lab.SecureAlg13, dns.TypeTXT}} {
		if m, _ := ask(t, r, c.name, c.qtype, true, false, false); !m.AuthenticatedData {
			t.Fatalf("priming %s: %s without AD", c.name, dns.RcodeToString[m.Rcode])
		}
	}
	before := labQueryCount(l)
	for _, c := range []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"nonexistent2." + lab.SecureAlg13, dns.TypeA, dns.RcodeNameError},
		{"nonexistent3." + lab.SecureAlg13, dns.TypeAAAA, dns.RcodeNameError},
		{"www." + lab.SecureAlg13, dns.TypeMX, dns.RcodeSuccess},
	} {
		m, res := ask(t, r, c.name, c.qtype, true, false, false)
		if m.Rcode != c.rcode || !m.AuthenticatedData || len(m.Answer) != 0 || !hasType(m.Ns, dns.TypeNSEC) {
			t.Errorf("%s %s: %s AD=%v status %v err %v", c.name, dns.TypeToString[c.qtype], dns.RcodeToString[m.Rcode], m.AuthenticatedData, res.Security, res.ExtendedError())
		}
	}
	if after := labQueryCount(l); after != before {
		t.Errorf("lab servers got %d queries for names inside validated NSEC ranges, want 0", after-before)
	}
	// ANY is not a type any bitmap lists: never "NODATA" from a range.
	if m, _ := ask(t, r, "www."+lab.SecureAlg13, dns.TypeANY, true, false, false); m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
		t.Errorf("ANY at a name with a kept NSEC: %s with %d answers", dns.RcodeToString[m.Rcode], len(m.Answer))
	}
	// A name outside the ranges still goes upstream.
	if m, _ := ask(t, r, "zzz."+lab.SecureAlg15, dns.TypeA, true, false, false); m.Rcode != dns.RcodeNameError {
		t.Errorf("zzz.%s: %s", lab.SecureAlg15, dns.RcodeToString[m.Rcode])
	}
	if labQueryCount(l) == before {
		t.Errorf("a name in another zone was answered without asking")
	}
}

// TestDNSSECBudgetShared: the validation budget lives in the client's
// Budget and is spent by the key fetches too.
func TestDNSSECBudgetShared(t *testing.T) {
	l := startDNSSECLab(t, clock.System{})
	r, _ := newValidatingResolver(t, l, clock.System{})
	b := newBudget(&r.limits, time.Now())
	q := dns.Question{Name: "www." + lab.SecureAlg8, Qtype: dns.TypeA, Qclass: dns.ClassINET}
	res := r.runWith(ctxT(t), q, false, b)
	st := b.dnssec.Load()
	ok := st != nil
	if res.Security != security.Secure || !ok || st.budget.Validations() == 0 || b.Queries() < 5 {
		t.Fatalf("status %v, validation budget %v, queries %d", res.Security, st, b.Queries())
	}
	if r.dnssecState(b).budget != st.budget {
		t.Fatal("a second validation of the same question got a new budget")
	}
}

// TestDNSSECReferralDSReused: the DS records that came with the referrals
// (cached with their RRSIGs) serve the chain walk, so a cold secure
// resolution sends no DS query, only one DNSKEY query per zone.
func TestDNSSECReferralDSReused(t *testing.T) {
	l := startDNSSECLab(t, clock.System{})
	r := newLabResolver(t, l, func(c *Config) {
		c.DNSSEC = &DNSSECConfig{Anchors: l.TrustAnchors()}
		c.Limits.MaxHedges = -1 // exact query counts: a reply late on a loaded machine must not draw a hedge
	})
	byType := map[uint16][]string{}
	var mu sync.Mutex
	ctx := WithTrace(ctxT(t), func(e TraceEvent) {
		mu.Lock()
		defer mu.Unlock()
		byType[e.QType] = append(byType[e.QType], e.QName)
	})
	res, err := r.Resolve(ctx, "www."+lab.SecureAlg13, dns.TypeA)
	if err != nil || res.Security != security.Secure {
		t.Fatalf("%v %v", res.Security, err)
	}
	t.Logf("upstream queries: DS %v, DNSKEY %v, A %v", byType[dns.TypeDS], byType[dns.TypeDNSKEY], byType[dns.TypeA])
	if len(byType[dns.TypeDS]) != 0 {
		t.Errorf("DS queries %v: the referrals' DS were not used", byType[dns.TypeDS])
	}
	if len(byType[dns.TypeDNSKEY]) != 3 {
		t.Errorf("DNSKEY queries %v, want one each for ., test. and %s", byType[dns.TypeDNSKEY], lab.SecureAlg13)
	}
}

// TestDNSSECConcurrent: clients asking every case at once through one
// validating resolver (shared chain walks, cache marking, NSEC ranges)
// all get the expected answers; run with -race.
func TestDNSSECConcurrent(t *testing.T) {
	l := startDNSSECLab(t, clock.System{})
	r, _ := newValidatingResolver(t, l, clock.System{})
	cases := lab.Cases()
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for i := range cases {
				c := cases[(i+g*7)%len(cases)]
				m, res := ask(t, r, c.QName, c.QType, true, false, false)
				checkCase(t, c, m, res)
			}
		})
	}
	wg.Wait()
}

// askNoRD sends a query without recursion desired (answered from the
// cache alone).
func askNoRD(t testing.TB, r *Resolver, name string, qtype uint16, cd bool) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = false
	q.SetEdns0(1232, true)
	q.CheckingDisabled = cd
	m, _ := r.Exchange(ctxT(t), q)
	return m
}

// TestDNSSECCacheOnlyQueries: RD=0 answers carry the validation state of
// the cache marks; unvalidated data (cached by a CD=1 question) is not
// given to a CD=0 client, and data marked bogus is SERVFAIL.
func TestDNSSECCacheOnlyQueries(t *testing.T) {
	l := startDNSSECLab(t, clock.System{})
	r, _ := newValidatingResolver(t, l, clock.System{})
	secure, bogus := "www."+lab.SecureAlg13, "www."+lab.BogusSig
	ask(t, r, secure, dns.TypeA, true, false, false)
	if m := askNoRD(t, r, secure, dns.TypeA, false); m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData {
		t.Errorf("RD=0 secure: %s AD=%v", dns.RcodeToString[m.Rcode], m.AuthenticatedData)
	}
	ask(t, r, bogus, dns.TypeA, true, true, false) // CD=1: cached, not validated
	if m := askNoRD(t, r, bogus, dns.TypeA, false); m.Rcode != dns.RcodeRefused || len(m.Answer) != 0 {
		t.Errorf("RD=0 CD=0 after a CD=1 fetch: %s with %d answers, want REFUSED", dns.RcodeToString[m.Rcode], len(m.Answer))
	}
	if m := askNoRD(t, r, bogus, dns.TypeA, true); m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
		t.Errorf("RD=0 CD=1: %s with %d answers, want the data", dns.RcodeToString[m.Rcode], len(m.Answer))
	}
	ask(t, r, bogus, dns.TypeA, true, false, false) // validated: marked bogus
	if m := askNoRD(t, r, bogus, dns.TypeA, false); m.Rcode != dns.RcodeServerFailure || dnstest.EDECode(m) != int(validator.EDEDNSSECBogus) {
		t.Errorf("RD=0 after validation: %s EDE %d, want SERVFAIL EDE 6", dns.RcodeToString[m.Rcode], dnstest.EDECode(m))
	}
}

// TestDNSSECLocalNames: names the resolver answers itself (RFC 6761,
// RFC 6303, the localhost fallback) are not validated into SERVFAIL.
func TestDNSSECLocalNames(t *testing.T) {
	l := startDNSSECLab(t, clock.System{})
	for _, mode := range []SpecialNames{SpecialNamesLocal, SpecialNamesAuto} {
		r := newLabResolver(t, l, func(c *Config) {
			c.Clock = clock.System{}
			c.DNSSEC = &DNSSECConfig{Anchors: l.TrustAnchors()}
			c.SpecialNames = mode
		})
		for _, c := range []struct {
			name  string
			qtype uint16
			rcode int
			local bool // only answered locally with SpecialNamesLocal
		}{
			{"localhost.", dns.TypeA, dns.RcodeSuccess, false},
			{"x.invalid.", dns.TypeA, dns.RcodeNameError, true},
			{"1.0.0.127.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, true},
		} {
			if c.local && mode != SpecialNamesLocal {
				continue
			}
			m, res := ask(t, r, c.name, c.qtype, true, false, false)
			if m.Rcode != c.rcode || m.AuthenticatedData {
				t.Errorf("mode %d, %s: %s AD=%v %v %v", mode, c.name, dns.RcodeToString[m.Rcode], m.AuthenticatedData, res.Security, res.ExtendedError())
			}
		}
	}
}

// TestDNSSECAggressiveNSEC3: NSEC3 ranges answer too: NODATA for another
// type at a name whose NSEC3 was seen, and NXDOMAIN for fresh names once
// their hashes fall in kept ranges (found by asking until one does, which
// must happen within a few names: the zone has a handful of NSEC3 records).
func TestDNSSECAggressiveNSEC3(t *testing.T) {
	l := startDNSSECLab(t, clock.System{})
	r, _ := newValidatingResolver(t, l, clock.System{})
	if m, _ := ask(t, r, "www."+lab.NSEC3Zone, dns.TypeTXT, true, false, false); !m.AuthenticatedData {
		t.Fatalf("priming NODATA: %s without AD", dns.RcodeToString[m.Rcode])
	}
	before := labQueryCount(l)
	m, _ := ask(t, r, "www."+lab.NSEC3Zone, dns.TypeMX, true, false, false)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || !m.AuthenticatedData || !hasType(m.Ns, dns.TypeNSEC3) || labQueryCount(l) != before {
		t.Errorf("NODATA from NSEC3: %s AD=%v NSEC3=%v, %d upstream queries", dns.RcodeToString[m.Rcode], m.AuthenticatedData, hasType(m.Ns, dns.TypeNSEC3), labQueryCount(l)-before)
	}
	aggressive := 0
	for i := range 40 {
		before := labQueryCount(l)
		name := fmt.Sprintf("n%d.%s", i, lab.NSEC3Zone)
		m, res := ask(t, r, name, dns.TypeA, true, false, false)
		if m.Rcode != dns.RcodeNameError || !m.AuthenticatedData {
			t.Fatalf("%s: %s AD=%v %v", name, dns.RcodeToString[m.Rcode], m.AuthenticatedData, res.ExtendedError())
		}
		if labQueryCount(l) == before {
			aggressive++
		}
	}
	t.Logf("%d of 40 fresh names answered NXDOMAIN from kept NSEC3 ranges", aggressive)
	if aggressive == 0 {
		t.Error("no NXDOMAIN from kept NSEC3 ranges")
	}
	// Opt-out ranges are never kept: the insecure NXDOMAIN below an
	// opt-out span always goes upstream.
	for i := range 3 {
		before := labQueryCount(l)
		ask(t, r, fmt.Sprintf("n%d.%s", i, lab.OptOut), dns.TypeA, true, false, false)
		if labQueryCount(l) == before {
			t.Errorf("n%d.%s answered from an opt-out range", i, lab.OptOut)
		}
	}
}

// TestDNSSECDNAME: the CNAME question for a name below a DNAME is answered
// secure (signed DNAME, synthesised CNAME), and does not leave an unsigned
// CNAME in the cache that would break the next question through the DNAME.
func TestDNSSECDNAME(t *testing.T) {
	l := startDNSSECLab(t, clock.System{})
	r, _ := newValidatingResolver(t, l, clock.System{})
	name := "www.dname." + lab.SecureAlg13
	for _, qtype := range []uint16{dns.TypeCNAME, dns.TypeA, dns.TypeCNAME} {
		m, res := ask(t, r, name, qtype, true, false, false)
		if m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData || !hasType(m.Answer, dns.TypeDNAME) || !hasType(m.Answer, dns.TypeCNAME) {
			t.Errorf("%s %s: %s AD=%v %v\n%v", name, dns.TypeToString[qtype], dns.RcodeToString[m.Rcode], m.AuthenticatedData, res.ExtendedError(), m.Answer)
		}
	}
}

// TestDNSSECMixedChainCached: a chain whose pieces differ (secure CNAME to
// insecure or bogus data, insecure CNAME to secure data) is marked piece by
// piece, so the second question checks no signature and gets the same
// state as the first.
func TestDNSSECMixedChainCached(t *testing.T) {
	l := startDNSSECLab(t, clock.System{})
	r, _ := newValidatingResolver(t, l, clock.System{})
	for _, tc := range []struct {
		qname string
		want  security.Status
	}{
		{"cname-insecure." + lab.SecureAlg13, security.Insecure},
		{"cname-bogus." + lab.SecureAlg13, security.Bogus},
		{"cname-back." + lab.Insecure, security.Insecure},
		{"cname-secure." + lab.SecureAlg13, security.Secure},
	} {
		q := dns.Question{Name: tc.qname, Qtype: dns.TypeA, Qclass: dns.ClassINET}
		for i, round := range []string{"first", "second"} {
			b := newBudget(&r.limits, time.Now())
			res := r.runWith(ctxT(t), q, false, b)
			st := b.dnssec.Load()
			validations := 0
			if st != nil {
				validations = st.budget.Validations()
			}
			t.Logf("%s %s: %v, %d signature checks, %d queries", tc.qname, round, res.Security, validations, b.Queries())
			if res.Security != tc.want {
				t.Errorf("%s %s: %v (%v), want %v", tc.qname, round, res.Security, res.ExtendedError(), tc.want)
			}
			if i == 0 && validations == 0 {
				t.Errorf("%s first: no signature checked", tc.qname)
			}
			if i == 1 && (validations != 0 || b.Queries() != 0) {
				t.Errorf("%s second: %d signature checks and %d queries, want none (the pieces' marks answer)", tc.qname, validations, b.Queries())
			}
		}
	}
}
