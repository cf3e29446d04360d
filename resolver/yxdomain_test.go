package resolver

import (
	"context"
	"encoding/base64"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/internal/do53test"
	"github.com/sextant-dns/sextant/roothints"
	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/transport"
)

// RFC 6672 2.2: a name below a DNAME whose substitution is longer than 255
// octets gets YXDOMAIN with the DNAME. The lab's DNAME shortens names, so
// these tests build their own hierarchy on 127.37.0.0/16: a signed root
// (127.37.1.1) delegating the signed zones dn. (a good DNAME) and bad. (a
// DNAME with a broken signature), both on 127.37.1.2, and the unsigned
// liar. on 127.37.1.3, whose server says YXDOMAIN without cause.

const (
	yxRoot  = "127.37.1.1"
	yxZones = "127.37.1.2"
	yxLiar  = "127.37.1.3"
)

var (
	yxL63    = strings.Repeat("t", 63)
	yxL50    = strings.Repeat("y", 50)
	yxTarget = yxL63 + "." + yxL63 + ".dn." // 131 octets, the owner x.dn. 6
	// yxLong is 159 octets; substituted, 285.
	yxLong = yxL50 + "." + yxL50 + "." + yxL50 + ".x.dn."
)

// yxHierarchy serves the hierarchy and returns the root hints, the root's
// DS as trust anchor, and the count of queries the liar answered.
func yxHierarchy(t testing.TB) (*roothints.Hints, []dns.RR, *atomic.Int64) {
	t.Helper()
	now := time.Now()
	gen := func(origin string) *authority.Key {
		k, err := authority.GenerateKey(origin, dns.ECDSAP256SHA256, dns.ZONE|dns.SEP)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	sign := func(origin string, key *authority.Key, lines ...string) []dns.RR {
		signed, err := authority.Sign(origin, dnstest.MustRRs(t, lines...), authority.SignOptions{Keys: []*authority.Key{key},
			Inception: now.Add(-time.Hour), Expiration: now.Add(24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	rootKey, dnKey, badKey := gen("."), gen("dn."), gen("bad.")
	root := sign(".", rootKey,
		". 3600 IN SOA ns.root. h.root. 1 3600 600 86400 300",
		". 3600 IN NS ns.root.", "ns.root. 3600 IN A "+yxRoot,
		"dn. 3600 IN NS ns.dn.", "ns.dn. 3600 IN A "+yxZones,
		"bad. 3600 IN NS ns.bad.", "ns.bad. 3600 IN A "+yxZones,
		"liar. 3600 IN NS ns.liar.", "ns.liar. 3600 IN A "+yxLiar,
		dnKey.DS(dns.SHA256).String(), badKey.DS(dns.SHA256).String())
	dn := sign("dn.", dnKey,
		"dn. 3600 IN SOA ns.dn. h.dn. 1 3600 600 86400 300",
		"dn. 3600 IN NS ns.dn.", "ns.dn. 3600 IN A "+yxZones,
		"x.dn. 200 IN DNAME "+yxTarget,
		"www."+yxTarget+" 300 IN A 192.0.2.7",
		"*."+yxTarget+" 300 IN A 192.0.2.8") // minimised names below x.dn. exist
	bad := sign("bad.", badKey,
		"bad. 3600 IN SOA ns.bad. h.bad. 1 3600 600 86400 300",
		"bad. 3600 IN NS ns.bad.", "ns.bad. 3600 IN A "+yxZones,
		"x.bad. 200 IN DNAME "+yxL63+"."+yxL63+".bad.")
	for i, rr := range bad {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == dns.TypeDNAME {
			raw, err := base64.StdEncoding.DecodeString(sig.Signature)
			if err != nil {
				t.Fatal(err)
			}
			raw[0] ^= 1
			broken := *sig
			broken.Signature = base64.StdEncoding.EncodeToString(raw)
			bad[i] = &broken
		}
	}
	srv := func(zones ...[]dns.RR) transport.Handler {
		s := authority.NewServer()
		for _, rrs := range zones {
			z, err := authority.NewZone(rrs[0].Header().Name, rrs)
			if err != nil {
				t.Fatal(err)
			}
			s.Set(z)
		}
		return s
	}
	var liarQueries atomic.Int64
	yxServe(t, yxRoot, srv(root))
	yxServe(t, yxZones, srv(dn, bad))
	yxServe(t, yxLiar, transport.HandlerFunc(func(_ context.Context, w transport.ResponseWriter, r *transport.Request) {
		liarQueries.Add(1)
		m := new(dns.Msg)
		m.SetRcode(r.Msg, dns.RcodeYXDomain)
		m.Authoritative = true
		if q := r.Msg.Question[0]; dns.IsSubDomain("d.liar.", q.Name) && !strings.EqualFold(q.Name, "d.liar.") {
			// A DNAME whose substitution fits: YXDOMAIN is a lie.
			m.Answer = append(m.Answer, &dns.DNAME{Hdr: dns.RR_Header{Name: "d.liar.", Rrtype: dns.TypeDNAME, Class: dns.ClassINET, Ttl: 300}, Target: "t."})
		}
		_ = w.WriteMsg(m)
	}))
	ns, _ := dns.NewRR(". 3600 IN NS ns.root.")
	h := &roothints.Hints{NS: []*dns.NS{ns.(*dns.NS)}, Addrs: map[string][]netip.Addr{"ns.root.": {netip.MustParseAddr(yxRoot)}}}
	return h, []dns.RR{rootKey.DS(dns.SHA256)}, &liarQueries
}

func yxServe(t testing.TB, addr string, h transport.Handler) {
	t.Helper()
	do53test.Start(t, net.JoinHostPort(addr, "53"), h)
}

func newYXResolver(t testing.TB, h *roothints.Hints, anchors []dns.RR) *Resolver {
	t.Helper()
	var mod func(*Config)
	if anchors != nil {
		mod = func(c *Config) { c.DNSSEC = &DNSSECConfig{Anchors: anchors} }
	}
	return newTestResolver(t, h, func(c *Config) {
		c.Clock = clock.System{} // the signatures are dated now
		if mod != nil {
			mod(c)
		}
	})
}

// TestYXDOMAINFromSignedZone: the authoritative YXDOMAIN is the answer
// (DNAME, with its RRSIG for DO), secure; the DNAME is cached at the
// answer rank with its TTL, and the next long name below it is answered
// YXDOMAIN from the cache, secure, without a query or a signature check.
func TestYXDOMAINFromSignedZone(t *testing.T) {
	h, anchors, _ := yxHierarchy(t)
	r := newYXResolver(t, h, anchors)

	m, res := ask(t, r, yxLong, dns.TypeA, true, false, false)
	if m.Rcode != dns.RcodeYXDomain || !m.AuthenticatedData || res.Security != security.Secure {
		t.Fatalf("long name: %s AD=%v %v (%v), want YXDOMAIN AD secure", dns.RcodeToString[m.Rcode], m.AuthenticatedData, res.Security, res.ExtendedError())
	}
	if len(m.Answer) != 2 || m.Answer[0].Header().Rrtype != dns.TypeDNAME || m.Answer[0].Header().Name != "x.dn." || !hasType(m.Answer, dns.TypeRRSIG) {
		t.Fatalf("answer %v, want the DNAME at x.dn. and its RRSIG", m.Answer)
	}
	e, ok := r.Cache().Get("x.dn.", dns.TypeDNAME, dns.ClassINET)
	if !ok || e.Rank != cache.RankAnswerAuth || e.Security != security.Secure {
		t.Fatalf("cached DNAME: %v %+v, want rank answer-auth, secure", ok, e)
	}
	if ttl := r.Cache().Remaining(e); ttl == 0 || ttl > 200 {
		t.Fatalf("cached DNAME TTL %d, want the DNAME's 200 at most", ttl)
	}

	m, _ = ask(t, r, yxLong, dns.TypeAAAA, false, false, false)
	if m.Rcode != dns.RcodeYXDomain || len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != dns.TypeDNAME || m.AuthenticatedData {
		t.Fatalf("without DO: %s AD=%v %v, want YXDOMAIN with the DNAME alone", dns.RcodeToString[m.Rcode], m.AuthenticatedData, m.Answer)
	}

	other := "other." + yxLong
	b := newBudget(&r.limits, time.Now())
	res = r.runWith(ctxT(t), dns.Question{Name: other, Qtype: dns.TypeTXT, Qclass: dns.ClassINET}, false, b)
	if res.Rcode != dns.RcodeYXDomain || res.Security != security.Secure {
		t.Fatalf("second name: %s %v (%v), want YXDOMAIN secure", dns.RcodeToString[res.Rcode], res.Security, res.ExtendedError())
	}
	checks := 0
	if st := b.dnssec.Load(); st != nil {
		checks = st.budget.Validations()
	}
	if b.Queries() != 0 || checks != 0 {
		t.Fatalf("second name: %d upstream queries, %d signature checks, want 0 and 0", b.Queries(), checks)
	}

	// RD=0: from the cache alone, with the DNAME's validation mark.
	q := new(dns.Msg)
	q.SetQuestion("rd0."+yxLong, dns.TypeA)
	q.RecursionDesired = false
	q.SetEdns0(1232, true)
	if m, res := r.Exchange(ctxT(t), q); m.Rcode != dns.RcodeYXDomain || !m.AuthenticatedData {
		t.Fatalf("RD=0: %s AD=%v (%v), want YXDOMAIN AD", dns.RcodeToString[m.Rcode], m.AuthenticatedData, res.ExtendedError())
	}

	// A name whose substitution fits still follows the DNAME.
	m, res = ask(t, r, "www.x.dn.", dns.TypeA, true, false, false)
	if m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData || !hasType(m.Answer, dns.TypeA) {
		t.Fatalf("www.x.dn.: %s AD=%v %v (%v), want the A through the DNAME, secure", dns.RcodeToString[m.Rcode], m.AuthenticatedData, m.Answer, res.ExtendedError())
	}
}

// TestYXDOMAINBogusDNAME: a YXDOMAIN whose DNAME signature is broken is
// SERVFAIL when validating, and YXDOMAIN with CD.
func TestYXDOMAINBogusDNAME(t *testing.T) {
	h, anchors, _ := yxHierarchy(t)
	long := yxL50 + "." + yxL50 + "." + yxL50 + ".x.bad."
	r := newYXResolver(t, h, anchors)
	if m, res := ask(t, r, long, dns.TypeA, true, false, false); m.Rcode != dns.RcodeServerFailure || res.Security != security.Bogus {
		t.Fatalf("validating: %s %v, want SERVFAIL bogus", dns.RcodeToString[m.Rcode], res.Security)
	}
	r = newYXResolver(t, h, anchors)
	if m, _ := ask(t, r, long, dns.TypeA, true, true, false); m.Rcode != dns.RcodeYXDomain || m.AuthenticatedData {
		t.Fatalf("CD: %s AD=%v, want YXDOMAIN without AD", dns.RcodeToString[m.Rcode], m.AuthenticatedData)
	}
}

// TestYXDOMAINWithoutCause: YXDOMAIN without a DNAME above the name, or with
// one whose substitution fits, is the server's error (SERVFAIL); without a
// validator the true YXDOMAIN is still the answer, Indeterminate.
func TestYXDOMAINWithoutCause(t *testing.T) {
	h, _, liarQueries := yxHierarchy(t)
	for _, tc := range []struct {
		name  string
		qname string
		rcode int
	}{
		{"no DNAME", "www.liar.", dns.RcodeServerFailure},
		{"substitution fits", "www.d.liar.", dns.RcodeServerFailure},
		{"true YXDOMAIN, no validator", yxLong, dns.RcodeYXDomain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := liarQueries.Load()
			r := newYXResolver(t, h, nil)
			m, res := ask(t, r, tc.qname, dns.TypeA, true, false, false)
			if m.Rcode != tc.rcode || res.Security != security.Indeterminate {
				t.Fatalf("%s %v (%v), want %s", dns.RcodeToString[m.Rcode], res.Security, res.ExtendedError(), dns.RcodeToString[tc.rcode])
			}
			if tc.rcode == dns.RcodeServerFailure && liarQueries.Load() == before {
				t.Fatal("the liar was never asked")
			}
		})
	}
}

// TestClassifyYXDOMAIN: only an authoritative YXDOMAIN whose chain ends
// below a DNAME of the zone with a substitution over 255 octets is final.
func TestClassifyYXDOMAIN(t *testing.T) {
	dname := "x.dn. 200 DNAME " + yxTarget
	yx := dns.RcodeYXDomain
	for _, tc := range []struct {
		name  string
		m     *dns.Msg
		zone  string
		qname string
		want  replyKind
	}{
		{"DNAME, too long", msgWith(t, yx, true, []string{dname}, nil), "dn.", yxLong, kindYXDomain},
		{"through an in-zone CNAME", msgWith(t, yx, true, []string{"a.dn. 60 CNAME " + yxLong, dname}, nil), "dn.", "a.dn.", kindYXDomain},
		{"without AA", msgWith(t, yx, false, []string{dname}, nil), "dn.", yxLong, kindRcodeError},
		{"no DNAME", msgWith(t, yx, true, nil, nil), "dn.", yxLong, kindRcodeError},
		{"substitution fits", msgWith(t, yx, true, []string{dname}, nil), "dn.", "www.x.dn.", kindRcodeError},
		{"DNAME of another zone", msgWith(t, yx, true, []string{dname}, nil), "other.", yxLong, kindRcodeError},
		{"DNAME at the name", msgWith(t, yx, true, []string{dname}, nil), "dn.", "x.dn.", kindRcodeError},
		{"chain leaves the zone first", msgWith(t, yx, true, []string{"a.dn. 60 CNAME b.other.", dname}, nil), "dn.", "a.dn.", kindRcodeError},
	} {
		if got, _ := classify(tc.m, tc.zone, tc.qname, dns.TypeA); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// NOERROR with a substitution over 255 octets: the chain is refused.
	if _, err := followChain(msgWith(t, 0, true, []string{dname}, nil), "dn.", yxLong, dns.TypeA, dns.ClassINET); err == nil {
		t.Error("NOERROR with a too-long substitution: no error")
	}
}

// TestYXDOMAINQNameMinimisation: a minimised name that is already YXDOMAIN
// makes the resolver ask the full name at once, which gets its own
// YXDOMAIN; without minimisation the full name is asked directly.
func TestYXDOMAINQNameMinimisation(t *testing.T) {
	h, _, _ := yxHierarchy(t)
	qname := "a.b." + yxLong // two labels more than a YXDOMAIN name
	for _, qmin := range []bool{true, false} {
		r := newTestResolver(t, h, func(c *Config) { c.QNameMinimisation = qmin })
		var events []TraceEvent
		ctx := WithTrace(ctxT(t), func(e TraceEvent) { events = append(events, e) })
		res, _ := r.Resolve(ctx, qname, dns.TypeA)
		if res.Rcode != dns.RcodeYXDomain {
			t.Fatalf("qmin %v: %s (%v), want YXDOMAIN", qmin, dns.RcodeToString[res.Rcode], res.ExtendedError())
		}
		var yx []string
		for _, e := range events {
			if e.Outcome == kindYXDomain.String() {
				yx = append(yx, e.QName)
			}
		}
		want := []string{qname}
		if qmin {
			want = []string{yxLong, qname} // the first over 255 octets, then the full name
		}
		if len(yx) != len(want) || !strings.EqualFold(yx[0], want[0]) || !strings.EqualFold(yx[len(yx)-1], want[len(want)-1]) {
			t.Fatalf("qmin %v: YXDOMAIN replies for %v, want %v", qmin, yx, want)
		}
	}
}
