package resolver

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/internal/labtest"
	"github.com/sextant-dns/sextant/lab"
	"github.com/sextant-dns/sextant/roothints"
	"github.com/sextant-dns/sextant/security"
)

// cacheLabBase is the block of this file's lab tests.
var cacheLabBase = netip.MustParseAddr("127.35.0.0")

// startCacheLab starts a lab on this file's block.
func startCacheLab(t testing.TB) *lab.Lab {
	t.Helper()
	l := labtest.Start(t, lab.Config{AddrBase: cacheLabBase, Clock: clock.System{}, BulkHosts: -1, SlowDelay: 50 * time.Millisecond})
	return l
}

// newCacheOnlyResolver makes a resolver whose root server is never asked:
// the tests fill its cache by hand and answer from it alone.
func newCacheOnlyResolver(t *testing.T) *Resolver {
	t.Helper()
	ns, _ := dns.NewRR(". 3600 IN NS ns.root.")
	h := &roothints.Hints{NS: []*dns.NS{ns.(*dns.NS)}, Addrs: map[string][]netip.Addr{"ns.root.": {netip.MustParseAddr("127.35.255.1")}}}
	return newTestResolver(t, h, nil)
}

// TestDNAMESynthesisFromCache: names below a cached DNAME are answered
// from the cache with the DNAME, a synthesised CNAME of the DNAME's TTL and
// the target's data; the DNAME wins over data cached at the name itself;
// the closest DNAME wins; a substitution over 255 octets is YXDOMAIN.
func TestDNAMESynthesisFromCache(t *testing.T) {
	long := strings.Repeat("l", 60) + "." + strings.Repeat("l", 60) + "." + strings.Repeat("l", 60) + "."
	tests := []struct {
		name      string
		cached    []string // RRsets, one per line, stored at rank answer-auth
		qname     string
		qtype     uint16
		rcode     int
		wantChain []string // owner type target/data, in order (RRSIGs aside)
	}{
		{
			name:   "A below a DNAME",
			cached: []string{"d.example. 300 IN DNAME example.net.", "www.example.net. 200 IN A 192.0.2.1"},
			qname:  "www.d.example.", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			wantChain: []string{"d.example. DNAME example.net.", "www.d.example. CNAME www.example.net.", "www.example.net. A 192.0.2.1"},
		},
		{
			name:   "CNAME question ends at the synthesised CNAME",
			cached: []string{"d.example. 300 IN DNAME example.net."},
			qname:  "www.d.example.", qtype: dns.TypeCNAME, rcode: dns.RcodeSuccess,
			wantChain: []string{"d.example. DNAME example.net.", "www.d.example. CNAME www.example.net."},
		},
		{
			name: "DNAME wins over data cached at the name",
			cached: []string{"d.example. 300 IN DNAME example.net.", "www.example.net. 200 IN A 192.0.2.1",
				"www.d.example. 300 IN A 198.51.100.66", "www.d.example. 300 IN CNAME elsewhere.example.org."},
			qname: "www.d.example.", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			wantChain: []string{"d.example. DNAME example.net.", "www.d.example. CNAME www.example.net.", "www.example.net. A 192.0.2.1"},
		},
		{
			name:   "the DNAME owner itself is not rewritten",
			cached: []string{"d.example. 300 IN DNAME example.net.", "d.example. 300 IN A 192.0.2.7"},
			qname:  "d.example.", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			wantChain: []string{"d.example. A 192.0.2.7"},
		},
		{
			name:   "closest DNAME wins",
			cached: []string{"example. 300 IN DNAME example.org.", "d.example. 300 IN DNAME example.net.", "www.example.net. 200 IN A 192.0.2.1"},
			qname:  "www.d.example.", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			wantChain: []string{"d.example. DNAME example.net.", "www.d.example. CNAME www.example.net.", "www.example.net. A 192.0.2.1"},
		},
		{
			name:   "DNAME to a DNAME",
			cached: []string{"d.example. 300 IN DNAME e.example.", "e.example. 100 IN DNAME example.net.", "www.example.net. 200 IN A 192.0.2.1"},
			qname:  "www.d.example.", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			wantChain: []string{"d.example. DNAME e.example.", "www.d.example. CNAME www.e.example.", "e.example. DNAME example.net.", "www.e.example. CNAME www.example.net.", "www.example.net. A 192.0.2.1"},
		},
		{
			name:   "substitution over 255 octets",
			cached: []string{"d.example. 300 IN DNAME " + long + long[:50] + "."},
			qname:  strings.Repeat("q", 63) + "." + strings.Repeat("q", 20) + ".d.example.", qtype: dns.TypeA, rcode: dns.RcodeYXDomain,
			wantChain: []string{"d.example. DNAME " + long + long[:50] + "."},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newCacheOnlyResolver(t)
			for _, line := range tc.cached {
				rrs := dnstest.MustRRs(t, line)
				h := rrs[0].Header()
				if !r.cache.Put(h.Name, h.Rrtype, h.Class, &cache.Entry{RRs: rrs, Rank: cache.RankAnswerAuth}, h.Ttl) {
					t.Fatalf("Put %s refused", line)
				}
			}
			_, res := r.cachedLookup(ctxT(t), dns.Question{Name: tc.qname, Qtype: tc.qtype, Qclass: dns.ClassINET}, newBudget(&r.limits, time.Now()))
			if res == nil {
				t.Fatal("not answered from the cache")
			}
			var chain []string
			for _, rr := range res.Answer {
				var v string
				switch x := rr.(type) {
				case *dns.DNAME:
					v = x.Target
				case *dns.CNAME:
					v = x.Target
				case *dns.A:
					v = x.A.String()
				}
				chain = append(chain, rr.Header().Name+" "+dns.TypeToString[rr.Header().Rrtype]+" "+v)
			}
			if res.Rcode != tc.rcode || strings.Join(chain, "\n") != strings.Join(tc.wantChain, "\n") {
				t.Fatalf("%s:\n%s\nwant %s:\n%s", dns.RcodeToString[res.Rcode], strings.Join(chain, "\n"), dns.RcodeToString[tc.rcode], strings.Join(tc.wantChain, "\n"))
			}
			// The synthesised CNAME has the TTL of its DNAME.
			for i, rr := range res.Answer {
				if dn, ok := rr.(*dns.DNAME); ok && i+1 < len(res.Answer) {
					if cn, ok := res.Answer[i+1].(*dns.CNAME); ok && cn.Hdr.Ttl != dn.Hdr.Ttl {
						t.Errorf("CNAME TTL %d, DNAME TTL %d", cn.Hdr.Ttl, dn.Hdr.Ttl)
					}
				}
			}
		})
	}
}

// TestSynthesisedCNAMEHasNoEntry: the CNAME below a DNAME in an answer is
// the one the resolver makes from the DNAME (RFC 6672 2.2), marked
// synthesised and never cached, so that the DNAME's cache entry stands
// for it; a server's CNAME that is not the substitution is never taken,
// nor cached.
func TestSynthesisedCNAMEHasNoEntry(t *testing.T) {
	for _, server := range []string{
		"www.d.example. 300 IN CNAME www.example.net.",
		"www.d.example. 300 IN CNAME evil.example.org.",
	} {
		m := msgWith(t, 0, true, []string{"d.example. 300 IN DNAME example.net.", server}, nil)
		ch, err := followChain(m, "example.", "www.d.example.", dns.TypeA, dns.ClassINET)
		if err != nil {
			t.Fatal(err)
		}
		if len(ch.sets) != 2 || ch.sets[0].rtype != dns.TypeDNAME || ch.sets[0].synthesised {
			t.Fatalf("%s: sets %+v", server, ch.sets)
		}
		cn, ok := ch.sets[1].rrs[0].(*dns.CNAME)
		if !ok || !ch.sets[1].synthesised || cn.Target != "www.example.net." || ch.next != "www.example.net." {
			t.Errorf("%s: CNAME set %+v, next %q: want the synthesised substitution", server, ch.sets[1], ch.next)
		}
	}
	// storeAnswer caches the DNAME only.
	r := &Resolver{cache: cache.New(cache.Config{Clock: clock.System{}}), limits: DefaultLimits()}
	rs := &resolution{r: r, budget: newBudget(&r.limits, time.Now())}
	m := msgWith(t, 0, true, []string{"d.example. 300 IN DNAME example.net.", "www.d.example. 300 IN CNAME evil.example.org."}, nil)
	st, err := rs.storeAnswer(m, kindAnswer, "example.", question{"www.d.example.", dns.TypeA, dns.ClassINET})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.cache.Get("www.d.example.", dns.TypeCNAME, dns.ClassINET); ok {
		t.Error("a CNAME below a DNAME was cached")
	}
	if len(st.sets) != 2 || st.sets[0].entry == nil || st.sets[1].entry != nil {
		t.Errorf("entries: DNAME %v, CNAME %v; want the DNAME's only", st.sets[0].entry, st.sets[1].entry)
	}
}

// TestDNAMECachedSecure: the second question below the lab's signed DNAME
// (www.dname.secure13.test -> www.secure15.test) is answered wholly from
// the cache: no upstream query, no signature check, still secure with AD.
func TestDNAMECachedSecure(t *testing.T) {
	l := startCacheLab(t)
	r, _ := newValidatingResolver(t, l, clock.System{})
	name := "www.dname." + lab.SecureAlg13
	for _, tc := range []struct {
		qname string
		qtype uint16
		rcode int
		final uint16 // the type the answer ends with; 0 for none
	}{
		{name, dns.TypeA, dns.RcodeSuccess, dns.TypeA},
		{name, dns.TypeCNAME, dns.RcodeSuccess, dns.TypeCNAME},
		{"nonexistent.dname." + lab.SecureAlg13, dns.TypeA, dns.RcodeNameError, 0},
	} {
		q := dns.Question{Name: tc.qname, Qtype: tc.qtype, Qclass: dns.ClassINET}
		for round := range 2 {
			before := labQueryCount(l)
			b := newBudget(&r.limits, time.Now())
			res := r.runWith(ctxT(t), q, false, b)
			checks := 0
			if st := b.dnssec.Load(); st != nil {
				checks = st.budget.Validations()
			}
			queries := labQueryCount(l) - before
			t.Logf("%s %s round %d: %s %v, %d lab queries, %d signature checks", tc.qname, dns.TypeToString[tc.qtype], round+1, dns.RcodeToString[res.Rcode], res.Security, queries, checks)
			if res.Rcode != tc.rcode || res.Security != security.Secure || !hasType(res.Answer, dns.TypeDNAME) || !hasType(res.Answer, dns.TypeCNAME) || !hasType(res.Answer, dns.TypeRRSIG) {
				t.Fatalf("round %d: %s %v %v\n%v", round+1, dns.RcodeToString[res.Rcode], res.Security, res.ExtendedError(), res.Answer)
			}
			if tc.final != 0 && !hasType(res.Answer, tc.final) {
				t.Fatalf("round %d: no %s record: %v", round+1, dns.TypeToString[tc.final], res.Answer)
			}
			if round == 1 && (queries != 0 || checks != 0) {
				t.Errorf("second %s %s: %d lab queries, %d signature checks, want none", tc.qname, dns.TypeToString[tc.qtype], queries, checks)
			}
		}
	}
	// Through the client path: AD set, nothing sent upstream.
	before := labQueryCount(l)
	m, res := ask(t, r, name, dns.TypeA, true, false, false)
	if m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData || !hasType(m.Answer, dns.TypeA) {
		t.Errorf("client query: %s AD=%v %v", dns.RcodeToString[m.Rcode], m.AuthenticatedData, res.ExtendedError())
	}
	if n := labQueryCount(l) - before; n != 0 {
		t.Errorf("client query: %d lab queries, want 0", n)
	}
	// Without RD: the cache alone answers, with AD.
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	q.RecursionDesired = false
	q.SetEdns0(1232, true)
	if m, res := r.Exchange(ctxT(t), q); m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData || !hasType(m.Answer, dns.TypeA) {
		t.Errorf("RD=0: %s AD=%v %v", dns.RcodeToString[m.Rcode], m.AuthenticatedData, res.ExtendedError())
	}
}

// TestSubstituteDNAMELength: 255 wire octets is the most a substitution
// may have (RFC 1035 2.3.4); one more is YXDOMAIN.
func TestSubstituteDNAMELength(t *testing.T) {
	target := strings.Repeat("t", 63) + "." + strings.Repeat("t", 63) + "." + strings.Repeat("t", 63) + "." // 193 octets
	for _, tc := range []struct {
		prefixLen int // length of the one label replacing the owner
		tooLong   bool
	}{
		{61, false}, // 1+61 + 193 = 255
		{62, true},  // 256
	} {
		name := strings.Repeat("p", tc.prefixLen) + ".d.example."
		got, err := substituteDNAME(name, "d.example.", target)
		if tc.tooLong != errors.Is(err, errDNAMETooLong) || (!tc.tooLong && got != name[:tc.prefixLen+1]+target) {
			t.Errorf("prefix %d: %q %v", tc.prefixLen, got, err)
		}
	}
	if got, err := substituteDNAME("www.d.example.", "d.example.", "."); err != nil || got != "www." {
		t.Errorf("DNAME to the root: %q %v", got, err)
	}
}
