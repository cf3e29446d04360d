package authority

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// escapedNS is one label, "ns.attacker", under example.: a name of the
// example. zone, not of attacker.example..
const escapedNS = `ns\.attacker.example.`

const attackerText = `
$ORIGIN attacker.example.
$TTL 3600
@       SOA ns1 hostmaster 1 7200 3600 1209600 300
@       NS  ns1
ns1     A   192.0.2.1
sub     NS  ns\.attacker.example.
sub     NS  ns.sub
ns.sub  A   192.0.2.7
www     CNAME ns\.attacker.example.
`

const exampleText = `
$ORIGIN example.
$TTL 3600
@       SOA ns1 hostmaster 1 7200 3600 1209600 300
@       NS  ns1
ns1     A   192.0.2.1
attacker NS ns1.attacker
ns1.attacker A 192.0.2.1
ns\.attacker A 192.0.2.99
`

func parseText(t *testing.T, text, origin string) *Zone {
	t.Helper()
	z, err := ParseZone(strings.NewReader(text), origin, origin+"zone")
	if err != nil {
		t.Fatalf("parse %s: %v", origin, err)
	}
	return z
}

// TestEscapedDotIsNotInZone: the zone attacker.example. can neither hold,
// answer for, give glue for nor chase a CNAME into ns\.attacker.example.
// (issue 9): a zone that could would let attacker.example.'s operator speak
// for a name of example..
func TestEscapedDotIsNotInZone(t *testing.T) {
	_, err := ParseZone(strings.NewReader(attackerText+escapedNS+" A 192.0.2.66\n"), "attacker.example.", "attacker.zone")
	if err == nil || !strings.Contains(err.Error(), "outside the zone") {
		t.Fatalf("a zone attacker.example. holding %s loaded: %v", escapedNS, err)
	}

	attacker := parseText(t, attackerText, "attacker.example.")
	alone := NewServer(attacker)
	if alone.Covers(escapedNS) {
		t.Errorf("attacker.example. claims %s", escapedNS)
	}
	for _, qname := range []string{escapedNS, "x." + escapedNS} {
		if m := alone.Answer(query(qname, dns.TypeA, false)); m.Rcode != dns.RcodeRefused || m.Authoritative {
			t.Errorf("%s from attacker.example. alone: rcode %s aa %v, want REFUSED", qname, dns.RcodeToString[m.Rcode], m.Authoritative)
		}
	}

	// Glue: only the in-zone name server of the delegation gets an address.
	m := alone.Answer(query("www.sub.attacker.example.", dns.TypeA, false))
	if len(m.Ns) != 2 {
		t.Fatalf("referral to sub.attacker.example.: %v", m)
	}
	for _, rr := range m.Extra {
		if rr.Header().Name != "ns.sub.attacker.example." {
			t.Errorf("glue for %s in the referral from attacker.example.", rr.Header().Name)
		}
	}
	if len(m.Extra) != 1 {
		t.Errorf("glue %v, want ns.sub.attacker.example. only", m.Extra)
	}

	// A CNAME into the name is not followed inside attacker.example..
	m = alone.Answer(query("www.attacker.example.", dns.TypeA, false))
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != dns.TypeCNAME {
		t.Errorf("CNAME to %s chased inside attacker.example.: %v", escapedNS, m)
	}

	// With example. served too, example. answers for the name.
	both := NewServer(attacker, parseText(t, exampleText, "example."))
	for _, tc := range []struct {
		qname string
		rcode int
	}{
		{escapedNS, dns.RcodeSuccess},
		{"x." + escapedNS, dns.RcodeNameError},
	} {
		m := both.Answer(query(tc.qname, dns.TypeA, false))
		if m.Rcode != tc.rcode || !m.Authoritative {
			t.Errorf("%s: rcode %s aa %v, want %s from example.", tc.qname, dns.RcodeToString[m.Rcode], m.Authoritative, dns.RcodeToString[tc.rcode])
		}
		if len(m.Ns) > 0 && m.Ns[0].Header().Name != "example." {
			t.Errorf("%s answered by %s, want example.", tc.qname, m.Ns[0].Header().Name)
		}
		if tc.rcode == dns.RcodeSuccess && (len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.99") {
			t.Errorf("%s: answer %v, want example.'s address", tc.qname, m.Answer)
		}
	}
	if m := both.Answer(query("www.attacker.example.", dns.TypeA, false)); len(m.Answer) != 1 {
		t.Errorf("CNAME chased across zones: %v", m.Answer)
	}
}
