package cache

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// escapedNS is one label, "ns.attacker", under example.: a name of the
// example. zone, not of attacker.example..
const escapedNS = `ns\.attacker.example.`

// TestEscapedDotIsNotBelowAttackerZone: the cache's walks up the name tree
// step over ns\.attacker.example. as one label (issue 9). attacker.example.'s
// NS entry is not the closest delegation of that name, its DNAME does not
// rewrite names below it, and an answer for it is not stored for
// ns.attacker.example.. The same entries do apply to ns.attacker.example.,
// so each check can fail.
func TestEscapedDotIsNotBelowAttackerZone(t *testing.T) {
	c, _ := newTestCache(t, Config{})
	for _, zone := range []string{"example.", "attacker.example."} {
		e := &Entry{Rcode: dns.RcodeSuccess, Rank: RankGlue, RRs: []dns.RR{dnstest.MustRR(t, zone+" 3600 IN NS ns1.nameservers.net.")}}
		if !c.Put(zone, dns.TypeNS, dns.ClassINET, e, 3600) {
			t.Fatalf("Put NS %s refused", zone)
		}
	}
	dname := &Entry{RRs: []dns.RR{dnstest.MustRR(t, "attacker.example. 300 IN DNAME attacker.net.")}, Rank: RankAnswerAuth}
	if !c.Put("attacker.example.", dns.TypeDNAME, dns.ClassINET, dname, 300) {
		t.Fatal("Put DNAME refused")
	}
	for _, tc := range []struct{ name, ns, dname string }{
		{"ns.attacker.example.", "attacker.example.", "attacker.example."},
		{escapedNS, "example.", ""},
		{"x." + escapedNS, "example.", ""},
		{`NS\.Attacker.Example.`, "example.", ""},
	} {
		if zone, _, _ := c.ClosestNS(tc.name, dns.ClassINET); zone != tc.ns {
			t.Errorf("ClosestNS(%s) = %q, want %q", tc.name, zone, tc.ns)
		}
		if owner, _, _ := c.ClosestAbove(tc.name, dns.TypeDNAME, dns.ClassINET); owner != tc.dname {
			t.Errorf("ClosestAbove(%s, DNAME) = %q, want %q", tc.name, owner, tc.dname)
		}
	}

	a, _ := newTestAnswers(t, Config{})
	key := AnswerKey{Name: "ns.attacker.example.", Type: dns.TypeA, Class: dns.ClassINET}
	a.Put(key, response(t, escapedNS, dns.TypeA, false, false))
	if a.Stats().Entries != 0 {
		t.Errorf("an answer for %s was stored under %s", escapedNS, key.Name)
	}
	a.Put(key, response(t, "NS.attacker.example.", dns.TypeA, false, false))
	if a.Stats().Entries != 1 {
		t.Errorf("an answer for NS.attacker.example. was not stored under %s", key.Name)
	}
}
