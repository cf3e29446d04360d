package validator

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/security"
)

// metaTypes are the types no type bitmap can prove absent (RFC 6895 3.1
// meta-types and QTYPEs, reserved 0 and 65535, RRSIG); ANY is tested
// apart, since an empty non-terminal has nothing for it.
var metaTypes = []uint16{
	dns.TypeNone, dns.TypeOPT, dns.TypeRRSIG, 128, dns.TypeTKEY, dns.TypeTSIG,
	dns.TypeIXFR, dns.TypeAXFR, dns.TypeMAILB, dns.TypeMAILA, dns.TypeReserved,
}

func TestDeniableType(t *testing.T) {
	for _, tc := range []struct {
		qtype uint16
		want  bool
	}{
		{dns.TypeA, true}, {dns.TypeAAAA, true}, {dns.TypeDS, true}, {dns.TypeNSEC, true},
		{dns.TypeCAA, true}, {127, true}, {256, true}, {dns.TypeANY, true},
		{dns.TypeNone, false}, {dns.TypeOPT, false}, {dns.TypeRRSIG, false}, {128, false},
		{dns.TypeTKEY, false}, {dns.TypeTSIG, false}, {dns.TypeIXFR, false}, {dns.TypeAXFR, false},
		{dns.TypeMAILB, false}, {dns.TypeMAILA, false}, {dns.TypeReserved, false},
	} {
		if got := deniableType(tc.qtype); got != tc.want {
			t.Errorf("deniableType(%d %s) = %v, want %v", tc.qtype, dns.TypeToString[tc.qtype], got, tc.want)
		}
	}
}

// TestAggressiveDenialMetaTypes: RFC 8198 never synthesises NODATA for a
// meta-type from a bitmap (which cannot list them), nor for ANY at a name
// that owns data; ANY at an empty non-terminal is NODATA.
func TestAggressiveDenialMetaTypes(t *testing.T) {
	chains := map[string][]dns.RR{
		"NSEC":  nsecChain("example.", denialNames),
		"NSEC3": nsec3Chain("example.", denialNames, 0, "", false),
	}
	type tc struct {
		qname string
		qtype uint16
		want  Denial
	}
	var cases []tc
	for _, qt := range metaTypes {
		cases = append(cases,
			tc{"a.example.", qt, DenialNone},      // name with data
			tc{"c.example.", qt, DenialNone},      // empty non-terminal
			tc{"x.w.example.", qt, DenialNone},    // wildcard match
			tc{"nx.example.", qt, DenialNXDOMAIN}, // the name is gone whatever the type
		)
	}
	cases = append(cases,
		tc{"a.example.", dns.TypeANY, DenialNone},
		tc{"example.", dns.TypeANY, DenialNone},
		tc{"x.w.example.", dns.TypeANY, DenialNone},
		tc{"c.example.", dns.TypeANY, DenialNODATA},
		tc{"nx.example.", dns.TypeANY, DenialNXDOMAIN},
	)
	for chainName, chain := range chains {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/%s/%d", chainName, c.qname, c.qtype), func(t *testing.T) {
				got, err := AggressiveDenial(c.qname, c.qtype, "example.", chain, NewBudget(DefaultLimits()))
				if err != nil || got != c.want {
					t.Fatalf("%s %s: got %v, %v; want %v", c.qname, dns.TypeToString[c.qtype], got, err, c.want)
				}
			})
		}
	}
}

// TestProveNODATAMetaTypes: a signed NODATA response for a meta-type is
// bogus whatever the records say; for ANY only an empty non-terminal is.
func TestProveNODATAMetaTypes(t *testing.T) {
	z := newTestZone(t, "example.", dns.ED25519)
	nsec := nsecChain("example.", denialNames)
	nsec3 := nsec3Chain("example.", denialNames, 0, "", false)
	nsecAuth := func(steps ...proofStep) []dns.RR {
		var auth []dns.RR
		for _, s := range steps {
			auth = append(auth, z.signed(t, nsecFind(t, nsec, s.name, s.covering))...)
		}
		return auth
	}
	nsec3Auth := func(steps ...proofStep) []dns.RR {
		var auth []dns.RR
		for _, s := range steps {
			auth = append(auth, z.signed(t, nsec3Find(t, nsec3, s.name, s.covering))...)
		}
		return auth
	}
	type tc struct {
		name   string
		qname  string
		qtype  uint16
		auth   []dns.RR
		status security.Status
	}
	var cases []tc
	for _, qt := range metaTypes {
		s := dns.TypeToString[qt]
		cases = append(cases,
			tc{"NSEC match " + s, "a.example.", qt, nsecAuth(match("a.example.")), security.Bogus},
			tc{"NSEC ENT " + s, "c.example.", qt, nsecAuth(cover("c.example.")), security.Bogus},
			tc{"NSEC wildcard " + s, "x.w.example.", qt, nsecAuth(cover("x.w.example."), match("*.w.example.")), security.Bogus},
			tc{"NSEC3 match " + s, "a.example.", qt, nsec3Auth(match("a.example.")), security.Bogus},
			tc{"NSEC3 ENT " + s, "c.example.", qt, nsec3Auth(match("c.example.")), security.Bogus},
			tc{"NSEC3 wildcard " + s, "x.w.example.", qt, nsec3Auth(match("w.example."), cover("x.w.example."), match("*.w.example.")), security.Bogus},
		)
	}
	cases = append(cases,
		tc{"NSEC match ANY", "a.example.", dns.TypeANY, nsecAuth(match("a.example.")), security.Bogus},
		tc{"NSEC wildcard ANY", "x.w.example.", dns.TypeANY, nsecAuth(cover("x.w.example."), match("*.w.example.")), security.Bogus},
		tc{"NSEC ENT ANY", "c.example.", dns.TypeANY, nsecAuth(cover("c.example.")), security.Secure},
		tc{"NSEC3 match ANY", "a.example.", dns.TypeANY, nsec3Auth(match("a.example.")), security.Bogus},
		tc{"NSEC3 wildcard ANY", "x.w.example.", dns.TypeANY, nsec3Auth(match("w.example."), cover("x.w.example."), match("*.w.example.")), security.Bogus},
		tc{"NSEC3 ENT ANY", "c.example.", dns.TypeANY, nsec3Auth(match("c.example.")), security.Secure},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := ProveNODATA(c.qname, c.qtype, "example.", c.auth, z.keys(), testNow, NewBudget(DefaultLimits()))
			if res.Status != c.status {
				t.Fatalf("got %v (%s), want %v", res.Status, res.Reason, c.status)
			}
		})
	}
}

// TestNSECHelpersMetaTypes: the exported RFC 8198 helpers follow the same
// rule.
func TestNSECHelpersMetaTypes(t *testing.T) {
	chain := nsecChain("example.", denialNames)
	get := func(name string, covering bool) *dns.NSEC { return nsecFind(t, chain, name, covering).(*dns.NSEC) }
	for _, qt := range metaTypes {
		if NSECProvesNODATA("a.example.", qt, get("a.example.", false)) {
			t.Errorf("%s proven absent by a matching NSEC", dns.TypeToString[qt])
		}
		if NSECProvesNODATA("c.example.", qt, get("c.example.", true)) {
			t.Errorf("%s proven absent at an empty non-terminal", dns.TypeToString[qt])
		}
		if NSECProvesWildcardNODATA("x.w.example.", qt, get("x.w.example.", true), get("*.w.example.", false)) {
			t.Errorf("%s proven absent by a wildcard NSEC", dns.TypeToString[qt])
		}
	}
	if NSECProvesNODATA("a.example.", dns.TypeANY, get("a.example.", false)) {
		t.Error("ANY proven absent at a name with data")
	}
	if !NSECProvesNODATA("c.example.", dns.TypeANY, get("c.example.", true)) {
		t.Error("ANY not proven absent at an empty non-terminal")
	}
	if NSECProvesWildcardNODATA("x.w.example.", dns.TypeANY, get("x.w.example.", true), get("*.w.example.", false)) {
		t.Error("ANY proven absent by a wildcard NSEC")
	}
}
