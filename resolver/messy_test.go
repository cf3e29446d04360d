package resolver

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/lab"
	"github.com/sextant-dns/sextant/security"
)

// Issue 15 ("resolve the messy internet like Unbound and Knot Resolver
// do"): the lab for its validation points runs on 127.97.0.0/16; the fake
// hierarchies of its other points on 127.97.10.0 and up, one /24 each.
var messyLabBase = netip.MustParseAddr("127.97.0.0")

// startMessyLab starts the lab on the block, on the system clock.
func startMessyLab(t testing.TB) *lab.Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := lab.Start(ctx, lab.Config{AddrBase: messyLabBase, Clock: clock.System{}, BulkHosts: -1})
	if err != nil {
		t.Fatalf("lab.Start: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// newMessyResolver makes a validating resolver on the lab with the root
// anchors and any more anchors given, without random server probing.
func newMessyResolver(t testing.TB, l *lab.Lab, more ...dns.RR) *Resolver {
	t.Helper()
	r := newLabResolver(t, l, func(c *Config) {
		c.DNSSEC = &DNSSECConfig{Anchors: append(l.TrustAnchors(), more...)}
	})
	r.sel.probe = 0
	return r
}

// questionCounter counts the questions lab servers receive.
type questionCounter struct {
	mu sync.Mutex
	n  map[string]int
}

// countQuestions counts what the servers receive until the test ends.
func countQuestions(t testing.TB, servers ...*lab.Server) *questionCounter {
	c := &questionCounter{n: map[string]int{}}
	for _, s := range servers {
		s.SetOnQuery(func(q dns.Question) {
			c.mu.Lock()
			c.n[strings.ToLower(q.Name)+" "+dns.TypeToString[q.Qtype]]++
			c.mu.Unlock()
		})
		t.Cleanup(func() { s.SetOnQuery(nil) })
	}
	return c
}

// of returns how many times name/qtype was asked.
func (c *questionCounter) of(name string, qtype uint16) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[strings.ToLower(name)+" "+dns.TypeToString[qtype]]
}

// wantStatus asks name/qtype with DO=1 and checks the rcode and whether AD
// is set.
func wantStatus(t *testing.T, r *Resolver, name string, qtype uint16, rcode int, ad bool) *Result {
	t.Helper()
	m, res := ask(t, r, name, qtype, true, false, false)
	if m.Rcode != rcode || m.AuthenticatedData != ad {
		t.Fatalf("%s %s: %s AD=%v (status %v, EDE %v), want %s AD=%v", name, dns.TypeToString[qtype],
			dns.RcodeToString[m.Rcode], m.AuthenticatedData, res.Security, res.ExtendedError(), dns.RcodeToString[rcode], ad)
	}
	return res
}

// TestInsecureDelegationProvenByReferral (issue 15 point 8): the NSEC (RFC
// 4035 5.2) or matching NSEC3 (RFC 5155 8.9) that comes with a referral to
// an unsigned child proves there is no DS. That proof is kept: validating
// the child's data sends no DS query, nor does a client's DS question.
func TestInsecureDelegationProvenByReferral(t *testing.T) {
	l := startMessyLab(t)
	for _, tc := range []struct{ name, child string }{
		{"NSEC", lab.Insecure},
		{"NSEC3", lab.InsecureNSEC3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newMessyResolver(t, l)
			c := countQuestions(t, l.ServersFor(dns.Fqdn(strings.SplitN(tc.child, ".", 2)[1]))...)
			wantStatus(t, r, "www."+tc.child, dns.TypeA, dns.RcodeSuccess, false)
			wantStatus(t, r, tc.child, dns.TypeDS, dns.RcodeSuccess, true)
			if n := c.of(tc.child, dns.TypeDS); n != 0 {
				t.Fatalf("%d DS queries for %s upstream; the referral's proof should have answered", n, tc.child)
			}
			wantStatus(t, r, "other."+tc.child, dns.TypeA, dns.RcodeNameError, false)
			if n := c.of(tc.child, dns.TypeDS); n != 0 {
				t.Fatalf("%d DS queries for %s after it was proven insecure", n, tc.child)
			}
		})
	}
}

// TestIslandOfSecurity (issue 15 point 9): a trust anchor for a signed zone
// below an unsigned TLD validates the zone from its anchor (RFC 4033 5,
// RFC 4035 4.3); the unsigned parent's missing DS makes nothing bogus.
// Without that anchor the same zone is insecure.
func TestIslandOfSecurity(t *testing.T) {
	l := startMessyLab(t)
	t.Run("own anchor", func(t *testing.T) {
		r := newMessyResolver(t, l, l.ZoneDS(lab.Island)...)
		wantStatus(t, r, "www."+lab.Island, dns.TypeA, dns.RcodeSuccess, true)
		wantStatus(t, r, "nonexistent."+lab.Island, dns.TypeA, dns.RcodeNameError, true)
		wantStatus(t, r, lab.Island, dns.TypeDNSKEY, dns.RcodeSuccess, true)
		res := wantStatus(t, r, lab.Island, dns.TypeDS, dns.RcodeSuccess, false)
		if res.Security != security.Insecure {
			t.Fatalf("DS of the island in its unsigned parent: %v, want insecure", res.Security)
		}
		wantStatus(t, r, "www."+lab.TLDUnsigned, dns.TypeA, dns.RcodeSuccess, false)
		wantStatus(t, r, "www."+lab.Island, dns.TypeA, dns.RcodeSuccess, true)
	})
	t.Run("DS first", func(t *testing.T) {
		r := newMessyResolver(t, l, l.ZoneDS(lab.Island)...)
		wantStatus(t, r, lab.Island, dns.TypeDS, dns.RcodeSuccess, false)
		wantStatus(t, r, "www."+lab.Island, dns.TypeA, dns.RcodeSuccess, true)
	})
	t.Run("root anchor only", func(t *testing.T) {
		r := newMessyResolver(t, l)
		wantStatus(t, r, "www."+lab.Island, dns.TypeA, dns.RcodeSuccess, false)
	})
}

// preferServer makes the selector rank first before second (both known,
// first faster), so that a test knows which server a question meets
// first.
func preferServer(r *Resolver, first, second *lab.Server) {
	r.sel.success(first.Addr(), time.Millisecond)
	r.sel.success(second.Addr(), 50*time.Millisecond)
}

// TestBogusRetriedAtOtherServer (issue 15 point 5): one server of a zone
// corrupts every signature it sends while its sibling serves the zone
// intact. The bogus reply is not the answer: the question asks the other
// server, and nothing bogus is cached. Before, one forged reply to a TLD
// question on a cold cache made every name below it SERVFAIL ("cached
// bogus") for about 70 s.
func TestBogusRetriedAtOtherServer(t *testing.T) {
	l := startMessyLab(t)
	for _, tc := range []struct {
		name        string
		bad, good   string
		first, next string
	}{
		// DNSKEY of test. and the DS of secure13.test. (in the referral
		// and the DS answer) come forged from the TLD server asked first.
		{"TLD server", lab.HostNIC1, lab.HostNIC2, "www." + lab.SecureAlg13, "www." + lab.SecureAlg15},
		// The DNSKEY and the data of the zone come forged.
		{"zone server", lab.HostZones1, lab.HostZones2, "www." + lab.SecureAlg16, "nonexistent." + lab.SecureAlg16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newMessyResolver(t, l)
			bad, good := l.Server(tc.bad), l.Server(tc.good)
			preferServer(r, bad, good)
			bad.SetForgeSignatures(true)
			t.Cleanup(func() { bad.SetForgeSignatures(false) })
			before := good.Queries()
			wantStatus(t, r, tc.first, dns.TypeA, dns.RcodeSuccess, true)
			if good.Queries() == before {
				t.Fatal("the good server was never asked")
			}
			rcode := dns.RcodeSuccess
			if strings.HasPrefix(tc.next, "nonexistent.") {
				rcode = dns.RcodeNameError
			}
			// The server that sent bogus data is remembered (lame for the
			// zone): the next question of the zone does not meet it.
			before = bad.Queries()
			wantStatus(t, r, tc.next, dns.TypeA, rcode, true)
			if n := bad.Queries() - before; n != 0 {
				t.Fatalf("the server that forged was asked %d more times by the next question", n)
			}
		})
	}
	t.Run("TLD and zone server", func(t *testing.T) {
		// Both the first TLD server and the first zone server forge:
		// what the excluded servers sent is dropped with the data that
		// failed, so that a few rounds reach the good servers.
		for range 5 {
			r := newMessyResolver(t, l)
			for _, h := range []string{lab.HostNIC1, lab.HostZones1} {
				s := l.Server(h)
				s.SetForgeSignatures(true)
				t.Cleanup(func() { s.SetForgeSignatures(false) })
			}
			preferServer(r, l.Server(lab.HostNIC1), l.Server(lab.HostNIC2))
			preferServer(r, l.Server(lab.HostZones1), l.Server(lab.HostZones2))
			wantStatus(t, r, "www."+lab.SecureAlg13, dns.TypeA, dns.RcodeSuccess, true)
		}
	})
	t.Run("every server bad", func(t *testing.T) {
		r := newMessyResolver(t, l)
		for _, h := range []string{lab.HostZones1, lab.HostZones2} {
			s := l.Server(h)
			s.SetForgeSignatures(true)
			t.Cleanup(func() { s.SetForgeSignatures(false) })
		}
		zones := l.ServersFor(lab.SecureAlg13)
		before := zones[0].Queries() + zones[1].Queries()
		wantStatus(t, r, "www."+lab.SecureAlg13, dns.TypeA, dns.RcodeServerFailure, false)
		asked := zones[0].Queries() + zones[1].Queries() - before
		if asked > 6 {
			t.Fatalf("%d queries to the zone's two servers for one question: the retries are not bounded", asked)
		}
		// It stayed bogus at every server: cached bogus now, no more
		// queries for the same question.
		before = zones[0].Queries() + zones[1].Queries()
		wantStatus(t, r, "www."+lab.SecureAlg13, dns.TypeA, dns.RcodeServerFailure, false)
		if n := zones[0].Queries() + zones[1].Queries() - before; n != 0 {
			t.Fatalf("%d more queries: what stayed bogus after the retries should be cached as bogus", n)
		}
	})
}

// TestPrimeBackoff (issue 15 point 1): priming attempts are spaced under
// a second at first, doubling to at most a minute.
func TestPrimeBackoff(t *testing.T) {
	if d := primeBackoff(1); d >= time.Second || d <= 0 {
		t.Fatalf("first back-off %v, want under 1 s", d)
	}
	for n := 2; n < 40; n++ {
		if d, prev := primeBackoff(n), primeBackoff(n-1); d < prev || d > time.Minute {
			t.Fatalf("back-off %d: %v after %v, want growing to at most 60 s", n, d, prev)
		}
	}
	if d := primeBackoff(1000); d != time.Minute {
		t.Fatalf("back-off after many failures %v, want 60 s", d)
	}
}

// TestFailuresNobodyAskedAreNotServed (issue 15 point 1): priming fails
// because no root server is up yet (or a background resolution finds
// every server of a zone down). Once the servers are up, the first client
// question makes a real attempt and is answered: the failure nobody asked
// about was not cached for the root zone (RFC 9520) nor for the name, and
// the selector did not back the servers off for it.
func TestFailuresNobodyAskedAreNotServed(t *testing.T) {
	t.Run("priming", func(t *testing.T) {
		p := "127.97.10."
		h := basicHierarchyAt(t, p)
		zones := h.root.zones
		h.root.stop()
		r := newTestResolver(t, h.hints, nil)
		for range 3 {
			if err := r.Prime(ctxT(t)); err == nil {
				t.Fatal("priming without a root server succeeded")
			}
		}
		startServer(t, p+"1", zones...)
		res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA)
		if err != nil || len(answerAddrs(res)) != 1 {
			t.Fatalf("first client question after the failed priming: %v %v", res, err)
		}
	})
	t.Run("zone", func(t *testing.T) {
		p := "127.97.11."
		h := basicHierarchyAt(t, p)
		zones := h.zone.zones
		h.zone.stop()
		r := newTestResolver(t, h.hints, nil)
		if _, err := r.Query(backgroundContext(ctxT(t)), "www.example.test.", dns.TypeA); err == nil {
			t.Fatal("a zone without servers answered")
		}
		startServer(t, p+"3", zones...)
		res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA)
		if err != nil || len(answerAddrs(res)) != 1 {
			t.Fatalf("first client question after the background failure: %v %v", res, err)
		}
	})
}
