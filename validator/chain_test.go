package validator

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/security"
)

// testWorld is a small signed internet:
//
//	.               ED25519, NSEC: example. (DS), nsec3tld. (DS), optout. (DS), unsigned. (no DS)
//	example.        ECDSAP256, NSEC: www, alias CNAME, *.wild TXT, a.b (DS, b. is an ENT), insec (no DS)
//	a.b.example.    ED448, NSEC: www
//	nsec3tld.       RSASHA256, NSEC3 (salt, 5 iterations): signed (DS), insec3 (no DS)
//	signed.nsec3tld ECDSAP384, NSEC
//	optout.         ED25519, NSEC3 opt-out: child (no DS, left out of the chain)
//	hiiter.         ED25519, NSEC3 with 51 iterations (above the RFC 9276 limit)
func testWorld(t testing.TB) *fakeWorld {
	w := newWorld(t)
	w.addZone(".", dns.ED25519, map[string][]uint16{
		"example.":  {dns.TypeNS, dns.TypeDS},
		"nsec3tld.": {dns.TypeNS, dns.TypeDS},
		"optout.":   {dns.TypeNS, dns.TypeDS},
		"unsigned.": {dns.TypeNS},
		"hiiter.":   {dns.TypeNS, dns.TypeDS},
	})
	w.addZone("example.", dns.ECDSAP256SHA256, map[string][]uint16{
		"www.example.":    {dns.TypeA},
		"alias.example.":  {dns.TypeCNAME},
		"*.wild.example.": {dns.TypeTXT},
		"a.b.example.":    {dns.TypeNS, dns.TypeDS},
		"insec.example.":  {dns.TypeNS},
	})
	w.addZone("a.b.example.", dns.ED448, map[string][]uint16{
		"www.a.b.example.": {dns.TypeA},
	})
	n3 := w.addZone("nsec3tld.", dns.RSASHA256, map[string][]uint16{
		"signed.nsec3tld.": {dns.TypeNS, dns.TypeDS},
		"insec3.nsec3tld.": {dns.TypeNS},
	})
	n3.nsec3, n3.iter, n3.salt = true, 5, "CAFE"
	w.addZone("signed.nsec3tld.", dns.ECDSAP384SHA384, map[string][]uint16{
		"www.signed.nsec3tld.": {dns.TypeA},
	})
	oo := w.addZone("optout.", dns.ED25519, map[string][]uint16{
		"child.optout.": {dns.TypeNS},
	})
	oo.nsec3, oo.optOut, oo.skip = true, true, []string{"child.optout."}
	hi := w.addZone("hiiter.", dns.ED25519, map[string][]uint16{
		"www.hiiter.": {dns.TypeA},
	})
	hi.nsec3, hi.iter = true, 51
	w.finish()
	return w
}

func rootAnchor(w *fakeWorld) []dns.RR { return []dns.RR{w.zones["."].ds(dns.SHA256)} }

func newTestValidator(t testing.TB, w *fakeWorld, opts ...Option) (*Validator, *clock.Manual) {
	t.Helper()
	clk := clock.NewManual(testNow)
	v, err := New(rootAnchor(w), w, clk, DefaultLimits(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v, clk
}

func TestChainOfTrust(t *testing.T) {
	w := testWorld(t)
	v, _ := newTestValidator(t, w)
	tests := []struct {
		zone    string
		status  security.Status
		ede     uint16
		wantKey *testZone
	}{
		{".", security.Secure, EDENone, w.zones["."].testZone},
		{"example.", security.Secure, EDENone, w.zones["example."].testZone},
		{"a.b.example.", security.Secure, EDENone, w.zones["a.b.example."].testZone},
		{"signed.nsec3tld.", security.Secure, EDENone, w.zones["signed.nsec3tld."].testZone},
		{"insec.example.", security.Insecure, EDENone, nil},
		{"deep.below.insec.example.", security.Insecure, EDENone, nil},
		{"insec3.nsec3tld.", security.Insecure, EDENone, nil},
		{"child.optout.", security.Insecure, EDENone, nil},
		{"unsigned.", security.Insecure, EDENone, nil},
		{"www.example.", security.Bogus, EDEDNSKEYMissing, nil}, // no zone cut
		{"nx.example.", security.Bogus, EDEDNSKEYMissing, nil},  // does not exist
	}
	for _, tc := range tests {
		t.Run(tc.zone, func(t *testing.T) {
			keys, status, res := v.Keys(context.Background(), tc.zone, NewBudget(DefaultLimits()))
			if status != tc.status || res.Status != tc.status || res.EDE != tc.ede {
				t.Fatalf("got %v/%v EDE %d (%s), want %v EDE %d", status, res.Status, res.EDE, res.Reason, tc.status, tc.ede)
			}
			if tc.wantKey != nil && (len(keys) != 2 || keys[0].PublicKey != tc.wantKey.ksk.dnskey.PublicKey) {
				t.Fatalf("keys %v are not the zone's", keys)
			}
			if status != security.Secure && keys != nil {
				t.Fatalf("keys returned with status %v", status)
			}
		})
	}
}

func TestChainOfTrustCachesAndExpires(t *testing.T) {
	w := testWorld(t)
	v, clk := newTestValidator(t, w)
	b := NewBudget(DefaultLimits())
	if _, st, res := v.Keys(context.Background(), "a.b.example.", b); st != security.Secure {
		t.Fatalf("cold walk: %+v", res)
	}
	// DNSKEY ., DS example., DNSKEY example., DS b.example. (ENT),
	// DS a.b.example., DNSKEY a.b.example.
	if got := w.queries.Load(); got != 6 {
		t.Fatalf("cold walk made %d queries, want 6", got)
	}
	t.Logf("cold 3-level walk: %d queries, %d validations", w.queries.Load(), b.Validations())
	if _, st, _ := v.Keys(context.Background(), "a.b.example.", NewBudget(DefaultLimits())); st != security.Secure || w.queries.Load() != 6 {
		t.Fatalf("warm walk: status %v, %d queries", st, w.queries.Load())
	}
	// The DNSKEY TTL is 3600 s: after it the walk refetches.
	clk.Advance(2 * time.Hour)
	if _, st, _ := v.Keys(context.Background(), "a.b.example.", NewBudget(DefaultLimits())); st != security.Secure || w.queries.Load() <= 6 {
		t.Fatalf("after expiry: status %v, %d queries", st, w.queries.Load())
	}
	// Signatures expire a day after testNow: two days on, the chain is bogus.
	clk.Advance(48 * time.Hour)
	if _, st, res := v.Keys(context.Background(), "a.b.example.", NewBudget(DefaultLimits())); st != security.Bogus || res.EDE != EDESignatureExpired {
		t.Fatalf("with expired signatures: %v %+v", st, res)
	}
}

func TestChainOfTrustTransportErrorNotCached(t *testing.T) {
	w := testWorld(t)
	v, _ := newTestValidator(t, w)
	w.fail["example."] = true
	_, st, res := v.Keys(context.Background(), "example.", NewBudget(DefaultLimits()))
	if st != security.Bogus || !errors.Is(res.Err, errFakeTransport) {
		t.Fatalf("with failing transport: %v %+v", st, res)
	}
	delete(w.fail, "example.")
	if _, st, res := v.Keys(context.Background(), "example.", NewBudget(DefaultLimits())); st != security.Secure {
		t.Fatalf("after the transport recovered: %+v", res)
	}
}

func TestChainOfTrustBrokenDS(t *testing.T) {
	w := testWorld(t)
	// example. rolls its KSK without telling the root.
	w.zones["example."].ksk = newTestKey(t, "example.", dns.ECDSAP256SHA256, dns.ZONE|dns.SEP)
	v, _ := newTestValidator(t, w)
	_, st, res := v.Keys(context.Background(), "a.b.example.", NewBudget(DefaultLimits()))
	if st != security.Bogus || res.EDE != EDEDNSKEYMissing {
		t.Fatalf("got %v %+v, want bogus EDE 9", st, res)
	}
}

func TestNegativeTrustAnchorAndNoAnchor(t *testing.T) {
	w := testWorld(t)
	v, _ := newTestValidator(t, w, WithNegativeTrustAnchors("Example."))
	if _, st, res := v.Keys(context.Background(), "a.b.example.", NewBudget(DefaultLimits())); st != security.Insecure || w.queries.Load() != 0 {
		t.Fatalf("below a negative trust anchor: %v %+v after %d queries", st, res, w.queries.Load())
	}
	// An island of trust at example. leaves the rest indeterminate.
	v2, err := New([]dns.RR{w.zones["example."].ksk.dnskey}, w, clock.NewManual(testNow), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if _, st, res := v2.Keys(context.Background(), "a.b.example.", NewBudget(DefaultLimits())); st != security.Secure {
		t.Fatalf("below a DNSKEY anchor: %+v", res)
	}
	if _, st, _ := v2.Keys(context.Background(), "nsec3tld.", NewBudget(DefaultLimits())); st != security.Indeterminate {
		t.Fatalf("outside every anchor: %v", st)
	}
	if _, err := New([]dns.RR{dnstest.MustRR(t, "example. 300 IN A 192.0.2.1")}, w, clock.NewManual(testNow), DefaultLimits()); err == nil {
		t.Fatal("an A record accepted as trust anchor")
	}
}

func TestUnsupportedAlgorithmZoneIsInsecure(t *testing.T) {
	w := testWorld(t)
	// The root publishes a DS for example. with an algorithm we do not know.
	root := w.zones["."]
	ds := w.zones["example."].ds(dns.SHA256)
	ds.Algorithm = 253
	root.dsFor["example."] = root.testZone.signed(t, ds)
	v, _ := newTestValidator(t, w)
	_, st, res := v.Keys(context.Background(), "a.b.example.", NewBudget(DefaultLimits()))
	if st != security.Insecure || res.EDE != EDEUnsupportedDNSKEYAlg {
		t.Fatalf("got %v %+v", st, res)
	}
}

// A long name below a proven non-existent one costs one DS query, not one
// per label.
func TestChainWalkStopsAtNXDOMAIN(t *testing.T) {
	w := testWorld(t)
	v, _ := newTestValidator(t, w)
	v.Keys(context.Background(), "example.", nil)
	before := w.queries.Load()
	deep := "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.nx.example."
	_, st, res := v.Keys(context.Background(), deep, NewBudget(DefaultLimits()))
	if st != security.Bogus || res.EDE != EDEDNSKEYMissing {
		t.Fatalf("deep name below NXDOMAIN: %v %+v", st, res)
	}
	if q := w.queries.Load() - before; q != 1 {
		t.Fatalf("%d queries, want 1 (DS nx.example.)", q)
	}
}

// countingSource counts the fetches it passes on to a KeySource.
type countingSource struct {
	src KeySource
	n   int
}

func (c *countingSource) Query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	c.n++
	return c.src.Query(ctx, name, qtype)
}

// TestBudgetKeySource: a walk fetches through its Budget's KeySource
// (Budget.FetchKeysWith) rather than the Validator's, and fails, without a
// panic, when neither has one.
func TestBudgetKeySource(t *testing.T) {
	w := testWorld(t)
	v, err := New(rootAnchor(w), nil, clock.NewManual(testNow), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if _, st, res := v.Keys(context.Background(), "example.", NewBudget(DefaultLimits())); st != security.Bogus || !errors.Is(res.Err, errNoKeySource) {
		t.Fatalf("without a key source: %v %+v", st, res)
	}
	per := &countingSource{src: w}
	if _, st, res := v.Keys(context.Background(), "example.", NewBudget(DefaultLimits()).FetchKeysWith(per)); st != security.Secure || per.n == 0 {
		t.Fatalf("with the budget's key source: %v after %d fetches (%s)", st, per.n, res.Reason)
	}

	// The budget's source wins over the Validator's.
	def := &countingSource{src: w}
	v, err = New(rootAnchor(w), def, clock.NewManual(testNow), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	per = &countingSource{src: w}
	if _, st, _ := v.Keys(context.Background(), "a.b.example.", NewBudget(DefaultLimits()).FetchKeysWith(per)); st != security.Secure || per.n == 0 || def.n != 0 {
		t.Fatalf("%v: %d fetches through the budget's source, %d through the validator's", st, per.n, def.n)
	}
}
