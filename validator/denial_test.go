package validator

import (
	"errors"
	"testing"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/security"
)

// denialZone is the zone every denial test proves against:
//
//	example.          SOA NS DNSKEY
//	a.example.        A
//	b.c.example.      A        (c.example. is an empty non-terminal)
//	insec.example.    NS       (unsigned delegation)
//	sub.example.      NS DS    (signed delegation)
//	*.w.example.      TXT      (w.example. is an empty non-terminal)
//	z.example.        A
var denialNames = map[string][]uint16{
	"example.":       {dns.TypeSOA, dns.TypeNS, dns.TypeDNSKEY},
	"a.example.":     {dns.TypeA},
	"b.c.example.":   {dns.TypeA},
	"insec.example.": {dns.TypeNS},
	"sub.example.":   {dns.TypeNS, dns.TypeDS},
	"*.w.example.":   {dns.TypeTXT},
	"z.example.":     {dns.TypeA},
}

// proofStep names one denial record of a proof: the record matching
// (covering=false) or covering (covering=true) a name.
type proofStep struct {
	name     string
	covering bool
}

func match(n string) proofStep { return proofStep{n, false} }
func cover(n string) proofStep { return proofStep{n, true} }

type denialCase struct {
	name     string
	kind     string // nxdomain, nodata, wildcard, nods
	qname    string
	qtype    uint16
	wildcard string
	steps    []proofStep
	status   security.Status
	ede      uint16
}

func (tc denialCase) run(t *testing.T, z *testZone, auth []dns.RR, b *Budget) Result {
	t.Helper()
	switch tc.kind {
	case "nxdomain":
		return ProveNXDOMAIN(tc.qname, z.name, auth, z.keys(), testNow, b)
	case "nodata":
		return ProveNODATA(tc.qname, tc.qtype, z.name, auth, z.keys(), testNow, b)
	case "wildcard":
		return ProveWildcardAnswer(tc.qname, tc.wildcard, z.name, auth, z.keys(), testNow, b)
	case "nods":
		return ProveNoDS(tc.qname, z.name, auth, z.keys(), testNow, b)
	}
	t.Fatalf("unknown kind %q", tc.kind)
	return Result{}
}

func TestNSECProofs(t *testing.T) {
	z := newTestZone(t, "example.", dns.ED25519)
	chain := nsecChain("example.", denialNames)
	tests := []denialCase{
		{"NXDOMAIN", "nxdomain", "nx.example.", 0, "", []proofStep{cover("nx.example."), cover("*.example.")}, security.Secure, EDENone},
		{"NXDOMAIN without wildcard proof", "nxdomain", "nx.example.", 0, "", []proofStep{cover("nx.example.")}, security.Bogus, EDENSECMissing},
		{"NXDOMAIN for an existing name", "nxdomain", "a.example.", 0, "", []proofStep{match("a.example."), cover("*.example.")}, security.Bogus, EDENSECMissing},
		{"NXDOMAIN for an empty non-terminal", "nxdomain", "c.example.", 0, "", []proofStep{cover("c.example."), cover("*.example.")}, security.Bogus, EDEDNSSECBogus},
		{"NXDOMAIN below an insecure delegation", "nxdomain", "host.insec.example.", 0, "", []proofStep{match("insec.example."), cover("*.example.")}, security.Bogus, EDENSECMissing},
		{"no records", "nxdomain", "nx.example.", 0, "", nil, security.Bogus, EDENSECMissing},
		{"NODATA", "nodata", "a.example.", dns.TypeAAAA, "", []proofStep{match("a.example.")}, security.Secure, EDENone},
		{"NODATA for a type that exists", "nodata", "a.example.", dns.TypeA, "", []proofStep{match("a.example.")}, security.Bogus, EDEDNSSECBogus},
		{"NODATA at an empty non-terminal", "nodata", "c.example.", dns.TypeA, "", []proofStep{cover("c.example.")}, security.Secure, EDENone},
		{"NODATA below a delegation from the parent NSEC", "nodata", "sub.example.", dns.TypeA, "", []proofStep{match("sub.example.")}, security.Bogus, EDEDNSSECBogus},
		{"NODATA for DS at an unsigned delegation", "nodata", "insec.example.", dns.TypeDS, "", []proofStep{match("insec.example.")}, security.Secure, EDENone},
		{"NODATA for DS that exists", "nodata", "sub.example.", dns.TypeDS, "", []proofStep{match("sub.example.")}, security.Bogus, EDEDNSSECBogus},
		{"NODATA for DS from the child apex NSEC", "nodata", "example.", dns.TypeDS, "", []proofStep{match("example.")}, security.Bogus, EDEDNSSECBogus},
		{"wildcard NODATA", "nodata", "x.w.example.", dns.TypeMX, "", []proofStep{cover("x.w.example."), match("*.w.example.")}, security.Secure, EDENone},
		{"wildcard NODATA for a type the wildcard has", "nodata", "x.w.example.", dns.TypeTXT, "", []proofStep{cover("x.w.example."), match("*.w.example.")}, security.Bogus, EDENSECMissing},
		{"wildcard answer", "wildcard", "x.w.example.", 0, "*.w.example.", []proofStep{cover("x.w.example.")}, security.Secure, EDENone},
		{"deep wildcard answer", "wildcard", "y.x.w.example.", 0, "*.w.example.", []proofStep{cover("y.x.w.example.")}, security.Secure, EDENone},
		{"wildcard answer without denial", "wildcard", "x.w.example.", 0, "*.w.example.", nil, security.Bogus, EDENSECMissing},
		{"wildcard answer where a closer name exists", "wildcard", "q.c.example.", 0, "*.example.", []proofStep{cover("q.c.example.")}, security.Bogus, EDENSECMissing},
		{"no DS at unsigned delegation", "nods", "insec.example.", 0, "", []proofStep{match("insec.example.")}, security.Insecure, EDENone},
		{"no DS claimed where DS exists", "nods", "sub.example.", 0, "", []proofStep{match("sub.example.")}, security.Bogus, EDEDNSSECBogus},
		{"no DS at a name that is no delegation", "nods", "a.example.", 0, "", []proofStep{match("a.example.")}, security.Bogus, EDEDNSSECBogus},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var auth []dns.RR
			for _, s := range tc.steps {
				auth = append(auth, z.signed(t, nsecFind(t, chain, s.name, s.covering))...)
			}
			res := tc.run(t, z, auth, NewBudget(DefaultLimits()))
			if res.Status != tc.status || res.EDE != tc.ede {
				t.Fatalf("got %v EDE %d (%s), want %v EDE %d", res.Status, res.EDE, res.Reason, tc.status, tc.ede)
			}
		})
	}
}

func TestNSECProofRejectsBadSignature(t *testing.T) {
	z := newTestZone(t, "example.", dns.ED25519)
	other := newTestZone(t, "example.", dns.ED25519)
	chain := nsecChain("example.", denialNames)
	auth := append(z.signed(t, nsecFind(t, chain, "nx.example.", true)), other.signed(t, nsecFind(t, chain, "*.example.", true))...)
	res := ProveNXDOMAIN("nx.example.", "example.", auth, z.keys(), testNow, nil)
	if res.Status != security.Bogus || res.EDE != EDEDNSKEYMissing {
		t.Fatalf("NSEC signed by a stranger: %+v", res)
	}
	unsigned := append(withoutSigs(auth), z.signed(t, nsecFind(t, chain, "nx.example.", true))...)
	res = ProveNXDOMAIN("nx.example.", "example.", unsigned, z.keys(), testNow, nil)
	if res.Status != security.Bogus || res.EDE != EDERRSIGsMissing {
		t.Fatalf("unsigned NSEC: %+v", res)
	}
}

func TestNSEC3Proofs(t *testing.T) {
	z := newTestZone(t, "example.", dns.ECDSAP256SHA256)
	plain := nsec3Chain("example.", denialNames, 0, "", false)
	salted := nsec3Chain("example.", denialNames, 5, "AABBCCDD", false)
	optOut := nsec3Chain("example.", denialNames, 0, "", true, "insec.example.")
	chains := map[string][]dns.RR{"plain": plain, "salted": salted}

	tests := []denialCase{
		{"NXDOMAIN", "nxdomain", "nx.example.", 0, "", []proofStep{match("example."), cover("nx.example."), cover("*.example.")}, security.Secure, EDENone},
		{"deep NXDOMAIN", "nxdomain", "x.y.nx.example.", 0, "", []proofStep{match("example."), cover("nx.example."), cover("*.example.")}, security.Secure, EDENone},
		{"NXDOMAIN below an ENT", "nxdomain", "q.c.example.", 0, "", []proofStep{match("c.example."), cover("q.c.example."), cover("*.c.example.")}, security.Secure, EDENone},
		{"NXDOMAIN without wildcard proof", "nxdomain", "nx.example.", 0, "", []proofStep{match("example."), cover("nx.example.")}, security.Bogus, EDENSECMissing},
		{"NXDOMAIN without closest encloser", "nxdomain", "nx.example.", 0, "", []proofStep{cover("nx.example."), cover("*.example.")}, security.Bogus, EDENSECMissing},
		{"NXDOMAIN for an existing name", "nxdomain", "a.example.", 0, "", []proofStep{match("a.example.")}, security.Bogus, EDEDNSSECBogus},
		{"NXDOMAIN below a delegation", "nxdomain", "host.insec.example.", 0, "", []proofStep{match("insec.example."), cover("host.insec.example."), cover("*.insec.example.")}, security.Bogus, EDEDNSSECBogus},
		{"NODATA", "nodata", "a.example.", dns.TypeAAAA, "", []proofStep{match("a.example.")}, security.Secure, EDENone},
		{"NODATA for a type that exists", "nodata", "a.example.", dns.TypeA, "", []proofStep{match("a.example.")}, security.Bogus, EDEDNSSECBogus},
		{"NODATA at an empty non-terminal", "nodata", "c.example.", dns.TypeA, "", []proofStep{match("c.example.")}, security.Secure, EDENone},
		{"NODATA below a delegation from the parent NSEC3", "nodata", "insec.example.", dns.TypeA, "", []proofStep{match("insec.example.")}, security.Bogus, EDEDNSSECBogus},
		{"NODATA for DS at unsigned delegation", "nodata", "insec.example.", dns.TypeDS, "", []proofStep{match("insec.example.")}, security.Secure, EDENone},
		{"NODATA for DS from the child apex", "nodata", "example.", dns.TypeDS, "", []proofStep{match("example.")}, security.Bogus, EDEDNSSECBogus},
		{"wildcard NODATA", "nodata", "x.w.example.", dns.TypeMX, "", []proofStep{match("w.example."), cover("x.w.example."), match("*.w.example.")}, security.Secure, EDENone},
		{"wildcard NODATA for a type the wildcard has", "nodata", "x.w.example.", dns.TypeTXT, "", []proofStep{match("w.example."), cover("x.w.example."), match("*.w.example.")}, security.Bogus, EDEDNSSECBogus},
		{"wildcard answer", "wildcard", "x.w.example.", 0, "*.w.example.", []proofStep{cover("x.w.example.")}, security.Secure, EDENone},
		{"deep wildcard answer", "wildcard", "y.x.w.example.", 0, "*.w.example.", []proofStep{cover("x.w.example.")}, security.Secure, EDENone},
		{"wildcard answer without denial", "wildcard", "x.w.example.", 0, "*.w.example.", []proofStep{match("a.example.")}, security.Bogus, EDENSECMissing},
		{"no DS at unsigned delegation", "nods", "insec.example.", 0, "", []proofStep{match("insec.example.")}, security.Insecure, EDENone},
		{"no DS claimed where DS exists", "nods", "sub.example.", 0, "", []proofStep{match("sub.example.")}, security.Bogus, EDEDNSSECBogus},
		{"no DS at a name that does not exist", "nods", "nx.example.", 0, "", []proofStep{match("example."), cover("nx.example.")}, security.Bogus, EDEDNSSECBogus},
	}
	for chainName, chain := range chains {
		for _, tc := range tests {
			t.Run(chainName+"/"+tc.name, func(t *testing.T) {
				var auth []dns.RR
				for _, s := range tc.steps {
					auth = append(auth, z.signed(t, nsec3Find(t, chain, s.name, s.covering))...)
				}
				b := NewBudget(DefaultLimits())
				res := tc.run(t, z, auth, b)
				if res.Status != tc.status || res.EDE != tc.ede {
					t.Fatalf("got %v EDE %d (%s), want %v EDE %d", res.Status, res.EDE, res.Reason, tc.status, tc.ede)
				}
				if b.Hashes() == 0 || b.Hashes() > 8 {
					t.Fatalf("%d NSEC3 hashes for one proof", b.Hashes())
				}
			})
		}
	}

	optOutTests := []denialCase{
		{"no DS under opt-out", "nods", "insec.example.", 0, "", []proofStep{match("example."), cover("insec.example.")}, security.Insecure, EDENone},
		{"DS NODATA under opt-out", "nodata", "insec.example.", dns.TypeDS, "", []proofStep{match("example."), cover("insec.example.")}, security.Insecure, EDENone},
		{"NXDOMAIN under opt-out", "nxdomain", "nx.example.", 0, "", []proofStep{match("example."), cover("nx.example."), cover("*.example.")}, security.Insecure, EDENone},
		{"signed delegation still proven", "nodata", "sub.example.", dns.TypeA, "", []proofStep{match("sub.example.")}, security.Bogus, EDEDNSSECBogus},
	}
	for _, tc := range optOutTests {
		t.Run("opt-out/"+tc.name, func(t *testing.T) {
			var auth []dns.RR
			for _, s := range tc.steps {
				auth = append(auth, z.signed(t, nsec3Find(t, optOut, s.name, s.covering))...)
			}
			res := tc.run(t, z, auth, NewBudget(DefaultLimits()))
			if res.Status != tc.status || res.EDE != tc.ede {
				t.Fatalf("got %v EDE %d (%s), want %v EDE %d", res.Status, res.EDE, res.Reason, tc.status, tc.ede)
			}
		})
	}
}

// RFC 9276: above the iteration limit the proof is insecure with EDE 27,
// decided before any hashing, but only after the records' signatures hold.
func TestNSEC3IterationLimit(t *testing.T) {
	z := newTestZone(t, "example.", dns.ED25519)
	chain := nsec3Chain("example.", denialNames, 51, "AB", false)
	var auth []dns.RR
	for _, s := range []proofStep{match("example."), cover("nx.example."), cover("*.example.")} {
		auth = append(auth, z.signed(t, nsec3Find(t, chain, s.name, s.covering))...)
	}
	b := NewBudget(DefaultLimits())
	res := ProveNXDOMAIN("nx.example.", "example.", auth, z.keys(), testNow, b)
	if res.Status != security.Insecure || res.EDE != EDEUnsupportedNSEC3Iterations {
		t.Fatalf("51 iterations: %+v", res)
	}
	if b.Hashes() != 0 {
		t.Fatalf("%d NSEC3 hashes computed above the iteration limit", b.Hashes())
	}
	// A forged iteration count (signature no longer matches) is bogus.
	forged := make([]dns.RR, len(auth))
	copy(forged, auth)
	n3 := dns.Copy(forged[0]).(*dns.NSEC3)
	n3.Iterations = 500
	forged[0] = n3
	for i, r := range forged[2:] {
		if n, ok := r.(*dns.NSEC3); ok {
			m := dns.Copy(n).(*dns.NSEC3)
			m.Iterations = 500
			forged[2+i] = m
		}
	}
	b = NewBudget(DefaultLimits())
	res = ProveNXDOMAIN("nx.example.", "example.", forged, z.keys(), testNow, b)
	if res.Status != security.Bogus || b.Hashes() != 0 {
		t.Fatalf("forged iterations: %+v, %d hashes", res, b.Hashes())
	}
	// Raising the limit makes the same proof secure.
	lim := DefaultLimits()
	lim.MaxNSEC3Iterations = 100
	if res := ProveNXDOMAIN("nx.example.", "example.", auth, z.keys(), testNow, NewBudget(lim)); res.Status != security.Secure {
		t.Fatalf("51 iterations under a limit of 100: %+v", res)
	}
}

func TestNSEC3HashBudget(t *testing.T) {
	z := newTestZone(t, "example.", dns.ED25519)
	chain := nsec3Chain("example.", denialNames, 0, "", false)
	var auth []dns.RR
	for _, s := range []proofStep{match("example."), cover("nx.example."), cover("*.example.")} {
		auth = append(auth, z.signed(t, nsec3Find(t, chain, s.name, s.covering))...)
	}
	lim := DefaultLimits()
	lim.MaxNSEC3Hashes = 10
	b := NewBudget(lim)
	qname := "a.b.c.d.e.f.g.h.i.j.k.l.m.nx.example."
	res := ProveNXDOMAIN(qname, "example.", auth, z.keys(), testNow, b)
	if res.Status != security.Bogus || !errors.Is(res.Err, ErrBudgetExhausted) {
		t.Fatalf("15-label name with 10 hashes allowed: %+v", res)
	}
	if b.Hashes() != 11 {
		t.Fatalf("hashes = %d, want the cap+1 = 11", b.Hashes())
	}
}

func TestNSECAggressiveHelpers(t *testing.T) {
	chain := nsecChain("example.", denialNames)
	get := func(name string, covering bool) *dns.NSEC { return nsecFind(t, chain, name, covering).(*dns.NSEC) }
	if !NSECProvesNXDOMAIN("nx.example.", get("nx.example.", true), get("*.example.", true)) {
		t.Error("nx.example. not proven NXDOMAIN")
	}
	if NSECProvesNXDOMAIN("c.example.", get("c.example.", true), get("*.example.", true)) {
		t.Error("empty non-terminal proven NXDOMAIN")
	}
	if NSECProvesNXDOMAIN("nx.example.", get("nx.example.", true), get("nx.example.", true)) {
		t.Error("NXDOMAIN proven without a wildcard denial")
	}
	if !NSECProvesNODATA("a.example.", dns.TypeMX, get("a.example.", false)) {
		t.Error("a.example. MX not proven NODATA")
	}
	if NSECProvesNODATA("a.example.", dns.TypeA, get("a.example.", false)) {
		t.Error("a.example. A proven NODATA")
	}
	if !NSECProvesNODATA("c.example.", dns.TypeA, get("c.example.", true)) {
		t.Error("empty non-terminal not proven NODATA")
	}
	if NSECProvesNODATA("sub.example.", dns.TypeA, get("sub.example.", false)) {
		t.Error("parent-side delegation NSEC used for child data")
	}
	if NSECCovers(get("insec.example.", false), "www.insec.example.") {
		t.Error("delegation NSEC covers a name below the cut")
	}
}
