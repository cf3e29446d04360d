package validator

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/security"
)

// TestNSECProofWithHighOctets: an NXDOMAIN for a name with octets >= 0x80
// in an NSEC-signed zone is proven, as the authority says; under Unicode
// lower-casing the three names below compared equal and the proof was
// bogus.
func TestNSECProofWithHighOctets(t *testing.T) {
	z := newTestZone(t, "example.", dns.ED25519)
	names := map[string][]uint16{
		"example.":          {dns.TypeSOA, dns.TypeNS, dns.TypeDNSKEY},
		"a.example.":        {dns.TypeA},
		`x\128.example.`:    {dns.TypeA},
		`x\255.example.`:    {dns.TypeA},
		`x\195.example.`:    {dns.TypeA},
		`\195\128.example.`: {dns.TypeA},
	}
	chain := nsecChain("example.", names)
	auth := append(z.signed(t, nsecFind(t, chain, `x\192.example.`, true)), z.signed(t, nsecFind(t, chain, "*.example.", true))...)
	res := ProveNXDOMAIN(`x\192.example.`, "example.", auth, z.keys(), testNow, NewBudget(DefaultLimits()))
	if res.Status != security.Secure {
		t.Fatalf(`NXDOMAIN for x\192.example.: %v EDE %d (%s), want secure`, res.Status, res.EDE, res.Reason)
	}
	// \195\160 (a grave) is not \195\128 (A grave): NODATA at the one
	// that exists is not a proof for the other.
	auth = append(z.signed(t, nsecFind(t, chain, `\195\160.example.`, true)), z.signed(t, nsecFind(t, chain, "*.example.", true))...)
	res = ProveNXDOMAIN(`\195\160.example.`, "example.", auth, z.keys(), testNow, NewBudget(DefaultLimits()))
	if res.Status != security.Secure {
		t.Fatalf(`NXDOMAIN for \195\160.example.: %v (%s), want secure`, res.Status, res.Reason)
	}
}
