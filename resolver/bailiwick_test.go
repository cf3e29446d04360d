package resolver

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// TestEscapedDotIsNotBailiwick: ns\.attacker.example. is one label
// "ns.attacker" under example., not a name below attacker.example.. A
// server of attacker.example. that refers to a child with that name server
// and sends an address for it as glue must not get the address cached: the
// name belongs to example.'s data. Glue for a real in-bailiwick name is
// still kept.
func TestEscapedDotIsNotBailiwick(t *testing.T) {
	r := newTestResolver(t, hintsFor("127.76.0.1"), nil)
	m := new(dns.Msg)
	m.SetQuestion("www.sub.attacker.example.", dns.TypeA)
	m.Response = true
	m.Ns = []dns.RR{
		dnstest.MustRR(t, `sub.attacker.example. 3600 IN NS ns\.attacker.example.`),
		dnstest.MustRR(t, `sub.attacker.example. 3600 IN NS ns.sub.attacker.example.`),
	}
	m.Extra = []dns.RR{
		dnstest.MustRR(t, `ns\.attacker.example. 3600 IN A 127.76.0.66`),
		dnstest.MustRR(t, `ns.sub.attacker.example. 3600 IN A 127.76.0.2`),
	}
	d, err := r.storeReferral(m, "attacker.example.", "sub.attacker.example.", dns.ClassINET)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := r.cache.Get(`ns\.attacker.example.`, dns.TypeA, dns.ClassINET); ok {
		t.Fatalf("out-of-bailiwick glue for ns\\.attacker.example. cached: %v", e.RRs)
	}
	if len(d.hints[`ns\.attacker.example.`]) != 0 {
		t.Fatalf("out-of-bailiwick glue used as a hint: %v", d.hints)
	}
	if _, ok := r.cache.Get("ns.sub.attacker.example.", dns.TypeA, dns.ClassINET); !ok {
		t.Fatal("in-bailiwick glue for ns.sub.attacker.example. not cached")
	}
	for _, tt := range []struct {
		child, parent string
		want          bool
	}{
		{`ns\.attacker.example.`, "attacker.example.", false},
		{`ns\.attacker.example.`, "example.", true},
		{"ns.attacker.example.", "attacker.example.", true},
	} {
		if got := isSubdomain(tt.child, tt.parent); got != tt.want {
			t.Errorf("isSubdomain(%q, %q) = %v", tt.child, tt.parent, got)
		}
	}
}
