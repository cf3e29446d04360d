package validator

import (
	"testing"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/security"
)

// TestProofsHoldOnlyVerifiedRecords: a secure denial names, as its Proof,
// exactly the records whose signatures it checked. An extra NSEC slipped
// into the authority section (forged signature, or none) is not among
// them, so a resolver that keeps Proofs for RFC 8198 synthesis, without
// checking their signatures again, never keeps it. Proofs that are not
// secure name nothing.
func TestProofsHoldOnlyVerifiedRecords(t *testing.T) {
	z := newTestZone(t, "example.", dns.ED25519)
	stranger := newTestZone(t, "example.", dns.ED25519)
	chain := nsecChain("example.", denialNames)
	covering := nsecFind(t, chain, "nx.example.", true)
	wild := nsecFind(t, chain, "*.example.", true)
	// Denies www.example. and every other name between sub.example. and
	// zz.example., had it been believed; the proof for nx.example. does
	// not need it.
	forged := dnstest.MustRR(t, "sub.example. 3600 IN NSEC zz.example. NS DS RRSIG NSEC")
	proof := append(z.signed(t, covering), z.signed(t, wild)...)
	for _, tc := range []struct {
		name  string
		extra []dns.RR
	}{
		{"forged signature", stranger.signed(t, forged)},
		{"no signature", []dns.RR{forged}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth := append(append([]dns.RR{}, tc.extra...), proof...)
			res := ProveNXDOMAIN("nx.example.", "example.", auth, z.keys(), testNow, nil)
			if res.Status != security.Secure || len(res.Proofs) != 1 {
				t.Fatalf("got %v with %d proofs (%s)", res.Status, len(res.Proofs), res.Reason)
			}
			p := res.Proofs[0]
			if p.Zone != "example." {
				t.Errorf("zone %q", p.Zone)
			}
			want := []dns.RR{covering, wild}
			if dns.IsDuplicate(covering, wild) {
				want = want[:1]
			}
			if len(p.Records) != len(want) {
				t.Fatalf("proof records %v, want %v", p.Records, want)
			}
			for _, r := range p.Records {
				if dns.IsDuplicate(r, forged) {
					t.Fatalf("the unverified NSEC %v is in the proof", forged)
				}
				if !dns.IsDuplicate(r, covering) && !dns.IsDuplicate(r, wild) {
					t.Errorf("unexpected record %v", r)
				}
			}
		})
	}

	t.Run("bogus proof", func(t *testing.T) {
		auth := append(z.signed(t, covering), stranger.signed(t, wild)...)
		if res := ProveNXDOMAIN("nx.example.", "example.", auth, z.keys(), testNow, nil); res.Status != security.Bogus || len(res.Proofs) != 0 {
			t.Fatalf("got %v with %d proofs", res.Status, len(res.Proofs))
		}
	})
	t.Run("insecure opt-out proof", func(t *testing.T) {
		n3 := nsec3Chain("example.", denialNames, 0, "", true, "insec.example.")
		var auth []dns.RR
		for _, s := range []proofStep{match("example."), cover("nx.example."), cover("*.example.")} {
			auth = append(auth, z.signed(t, nsec3Find(t, n3, s.name, s.covering))...)
		}
		res := ProveNXDOMAIN("nx.example.", "example.", auth, z.keys(), testNow, nil)
		if res.Status != security.Insecure || len(res.Proofs) != 0 {
			t.Fatalf("got %v (%s) with %d proofs", res.Status, res.Reason, len(res.Proofs))
		}
	})
	t.Run("combined parts", func(t *testing.T) {
		a := secure(300)
		a.Proofs = []Proof{{Zone: "a."}}
		b := secure(200)
		b.Proofs = []Proof{{Zone: "b."}}
		if got := combine(a, b); got.Status != security.Secure || len(got.Proofs) != 2 || len(a.Proofs) != 1 {
			t.Errorf("secure + secure: %d proofs (first part now %d)", len(got.Proofs), len(a.Proofs))
		}
		if got := combine(a, insecure(EDENone, "x")); len(got.Proofs) != 0 {
			t.Errorf("secure + insecure kept %d proofs", len(got.Proofs))
		}
		if got := combine(insecure(EDENone, "x"), b); len(got.Proofs) != 0 {
			t.Errorf("insecure + secure kept %d proofs", len(got.Proofs))
		}
	})
}
