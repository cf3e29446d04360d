package authority

import (
	"encoding/base64"
	"math/rand/v2"
	"testing"

	"github.com/miekg/dns"
)

// TestUsableTags: keys whose tag is 0 (miekg/dns will not sign with them),
// or whose revoked form's tag is 0 for a KSK, are regenerated.
func TestUsableTags(t *testing.T) {
	key := func(flags uint16, pub string) *dns.DNSKEY {
		return &dns.DNSKEY{Hdr: dns.RR_Header{Name: "z.test.", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET},
			Flags: flags, Protocol: 3, Algorithm: dns.ED25519, PublicKey: pub}
	}
	// Search small public keys for tags of 0, so the test does not depend
	// on a lucky generator.
	var zeroZSK, zeroRevoked *dns.DNSKEY
	rng := rand.New(rand.NewPCG(1, 2))
	raw := make([]byte, 32)
	for i := 0; i < 1<<20 && (zeroZSK == nil || zeroRevoked == nil); i++ {
		for j := range raw {
			raw[j] = byte(rng.Uint32())
		}
		pub := base64.StdEncoding.EncodeToString(raw)
		if k := key(FlagsZSK, pub); zeroZSK == nil && k.KeyTag() == 0 {
			zeroZSK = k
		}
		r := key(FlagsKSK|dns.REVOKE, pub)
		if k := key(FlagsKSK, pub); zeroRevoked == nil && r.KeyTag() == 0 && k.KeyTag() != 0 {
			zeroRevoked = k
		}
	}
	if zeroZSK == nil || zeroRevoked == nil {
		t.Fatal("no zero-tag key among the candidates (the seeded search should find both)")
	}
	if usableTags(zeroZSK) {
		t.Error("a key with tag 0 was taken as usable")
	}
	if usableTags(zeroRevoked) {
		t.Error("a KSK whose revoked tag is 0 was taken as usable")
	}
	ordinary := key(FlagsKSK, base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if ordinary.KeyTag() != 0 && !usableTags(ordinary) {
		t.Error("an ordinary key was refused")
	}
}
