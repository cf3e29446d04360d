package validator

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/security"
)

// escapedNS is one label, "ns.attacker", under example.: a name of the
// example. zone, not of attacker.example..
const escapedNS = `ns\.attacker.example.`

// TestEscapedDotIsNotSignedByAttackerZone: attacker.example.'s keys can
// neither sign ns\.attacker.example. (RFC 4035 5.3.1: the signer must be at
// or above the owner) nor deny it with the NSEC that wraps to its apex
// (issue 9). The same signatures and chain over ns.attacker.example., which
// is in the zone, do validate, so each check can fail.
func TestEscapedDotIsNotSignedByAttackerZone(t *testing.T) {
	z := newTestZone(t, "attacker.example.", dns.ED25519)
	for _, tc := range []struct {
		owner string
		want  security.Status
	}{
		{"ns.attacker.example.", security.Secure},
		{escapedNS, security.Bogus},
		{"x." + escapedNS, security.Bogus},
	} {
		set := dnstest.MustRRs(t, tc.owner+" 3600 IN A 192.0.2.66")
		sig := z.zsk.sign(t, set)
		for _, signer := range []string{"", "attacker.example."} {
			if res := VerifyRRset(set, []*dns.RRSIG{sig}, z.keys(), signer, testNow, nil); res.Status != tc.want {
				t.Errorf("%s signed by attacker.example. (signer %q): %v (%s), want %v", tc.owner, signer, res.Status, res.Reason, tc.want)
			}
		}
	}

	names := map[string][]uint16{
		"attacker.example.":     {dns.TypeSOA, dns.TypeNS},
		"www.attacker.example.": {dns.TypeA},
	}
	chain := nsecChain("attacker.example.", names)
	last := chain[len(chain)-1].(*dns.NSEC)
	if last.NextDomain != "attacker.example." {
		t.Fatalf("test chain: last NSEC %v does not wrap to the apex", last)
	}
	if !NSECCovers(last, "zz.attacker.example.") {
		t.Fatalf("the last NSEC does not cover zz.attacker.example.")
	}
	if NSECCovers(last, escapedNS) {
		t.Errorf("attacker.example.'s last NSEC covers %s", escapedNS)
	}
	auth := z.signedAll(t, chain)
	if res := ProveNXDOMAIN("zz.attacker.example.", "attacker.example.", auth, z.keys(), testNow, nil); res.Status != security.Secure {
		t.Fatalf("NSEC NXDOMAIN for zz.attacker.example.: %v (%s)", res.Status, res.Reason)
	}
	if res := ProveNXDOMAIN(escapedNS, "attacker.example.", auth, z.keys(), testNow, nil); res.Status == security.Secure {
		t.Errorf("attacker.example.'s NSEC chain proved %s does not exist", escapedNS)
	}

	auth3 := z.signedAll(t, nsec3Chain("attacker.example.", names, 0, "", false))
	if res := ProveNXDOMAIN(escapedNS, "attacker.example.", auth3, z.keys(), testNow, nil); res.Status == security.Secure {
		t.Errorf("attacker.example.'s NSEC3 chain proved %s does not exist", escapedNS)
	}
}
