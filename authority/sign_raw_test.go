package authority

import (
	"crypto/ed25519"
	"encoding/base64"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/internal/sigdata"
)

// TestSignDataMatchesMiekg checks the hand-built signed data against
// miekg/dns both ways with Ed25519 (same message-signing scheme as ED448):
// what signRaw signs, miekg verifies; what miekg signs, verifies over
// sigdata.Build. RRsets cover name lower-casing in RDATA, canonical RDATA order
// with different lengths, duplicates and wildcard owners.
func TestSignDataMatchesMiekg(t *testing.T) {
	const origin = "z.test."
	key := signMustKey(t, origin, dns.ED25519, FlagsKSK)
	sets := map[string]string{
		"mx":       "www 300 MX 10 Mail.Z.test.\nwww 300 MX 5 b.z.test.\nwww 300 MX 10 a.z.test.\n",
		"txt":      "t 300 TXT \"bbbb\"\nt 300 TXT \"a\"\nt 300 TXT \"a\"\n",
		"soa":      "@ 300 SOA NS1.z.test. Host.z.test. 1 2 3 4 5\n",
		"wildcard": "*.wild 300 A 192.0.2.1\n*.wild 300 A 192.0.2.0\n",
		"upper":    "UPPER 300 CNAME Target.Example.\n",
	}
	now := time.Now()
	for name, text := range sets {
		t.Run(name, func(t *testing.T) {
			rrset := parseRecords(t, origin, text)
			mk := func() *dns.RRSIG {
				return &dns.RRSIG{Algorithm: dns.ED25519, KeyTag: key.Tag(), SignerName: origin,
					Inception: uint32(now.Unix()), Expiration: uint32(now.Add(time.Hour).Unix())}
			}
			ours := mk()
			if err := signRaw(ours, key.Private, rrset); err != nil {
				t.Fatal(err)
			}
			if err := ours.Verify(key.DNSKEY, rrset); err != nil {
				t.Errorf("miekg rejects signRaw's signature: %v", err)
			}
			theirs := mk()
			if err := theirs.Sign(key.Private, rrset); err != nil {
				t.Fatal(err)
			}
			if theirs.Labels != ours.Labels || theirs.OrigTtl != ours.OrigTtl {
				t.Errorf("labels/TTL %d/%d, miekg %d/%d", ours.Labels, ours.OrigTtl, theirs.Labels, theirs.OrigTtl)
			}
			data, err := sigdata.Build(rrset, theirs)
			if err != nil {
				t.Fatal(err)
			}
			pub, _ := base64.StdEncoding.DecodeString(key.DNSKEY.PublicKey)
			raw, _ := base64.StdEncoding.DecodeString(theirs.Signature)
			if !ed25519.Verify(pub, data, raw) {
				t.Error("miekg's signature does not verify over sigdata.Build")
			}
		})
	}
}

// TestVerifyED448 rejects a tampered ED448 signature and a wrong key.
func TestVerifyED448(t *testing.T) {
	const origin = "z.test."
	key := signMustKey(t, origin, dns.ED448, FlagsKSK)
	other := signMustKey(t, origin, dns.ED448, FlagsKSK)
	rrset := parseRecords(t, origin, "www 300 A 192.0.2.1\n")
	now := time.Now()
	sig := &dns.RRSIG{Algorithm: dns.ED448, KeyTag: key.Tag(), SignerName: origin,
		Inception: uint32(now.Unix()), Expiration: uint32(now.Add(time.Hour).Unix())}
	if err := signWith(sig, key, rrset); err != nil {
		t.Fatal(err)
	}
	if err := VerifySignature(sig, key.DNSKEY, rrset); err != nil {
		t.Fatalf("good signature: %v", err)
	}
	if len(sig.Signature) != base64.StdEncoding.EncodedLen(114) {
		t.Errorf("signature %d base64 chars, want 114 octets", len(sig.Signature))
	}
	if err := VerifySignature(sig, other.DNSKEY, rrset); err == nil {
		t.Error("verified with another key")
	}
	changed := parseRecords(t, origin, "www 300 A 192.0.2.2\n")
	if err := VerifySignature(sig, key.DNSKEY, changed); err == nil {
		t.Error("verified over changed data")
	}
}
