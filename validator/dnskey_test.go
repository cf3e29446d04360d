package validator

import (
	"testing"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/security"
)

func TestVerifyDNSKEYs(t *testing.T) {
	z := newTestZone(t, "example.", dns.ECDSAP256SHA256)
	signed := z.signedDNSKEY(t)
	keys, sigs := withoutSigs(signed), sigsOf(signed)
	// The DNSKEY set signed by the ZSK only: the DS vouches for the KSK.
	zskSigned := append(z.dnskeyRRset(), z.zsk.sign(t, z.dnskeyRRset()))

	otherZone := newTestZone(t, "example.", dns.ECDSAP256SHA256)
	unknownDigest := z.ds(dns.SHA256)
	unknownDigest.DigestType = 3 // GOST R 34.11-94, not validated (RFC 8624)
	unknownAlg := z.ds(dns.SHA256)
	unknownAlg.Algorithm = 12 // ECC-GOST
	unknownAlg.KeyTag = 1

	tests := []struct {
		name    string
		keys    []dns.RR
		sigs    []*dns.RRSIG
		ds      []*dns.DS
		anchors []*dns.DNSKEY
		status  security.Status
		ede     uint16
	}{
		{"DS SHA-1", keys, sigs, []*dns.DS{z.ds(dns.SHA1)}, nil, security.Secure, EDENone},
		{"DS SHA-256", keys, sigs, []*dns.DS{z.ds(dns.SHA256)}, nil, security.Secure, EDENone},
		{"DS SHA-384", keys, sigs, []*dns.DS{z.ds(dns.SHA384)}, nil, security.Secure, EDENone},
		{"anchor DNSKEY", keys, sigs, nil, []*dns.DNSKEY{z.ksk.dnskey}, security.Secure, EDENone},
		{"DS matches no key", keys, sigs, []*dns.DS{otherZone.ds(dns.SHA256)}, nil, security.Bogus, EDEDNSKEYMissing},
		{"signed by a key the DS does not name", keys, sigsOf(zskSigned), []*dns.DS{z.ds(dns.SHA256)}, nil, security.Bogus, EDEDNSKEYMissing},
		{"no signature", keys, nil, []*dns.DS{z.ds(dns.SHA256)}, nil, security.Bogus, EDERRSIGsMissing},
		{"only unsupported digest", keys, sigs, []*dns.DS{unknownDigest}, nil, security.Insecure, EDEUnsupportedDSDigest},
		{"only unsupported algorithm", keys, sigs, []*dns.DS{unknownAlg}, nil, security.Insecure, EDEUnsupportedDNSKEYAlg},
		{"unsupported and good DS", keys, sigs, []*dns.DS{unknownDigest, z.ds(dns.SHA256)}, nil, security.Secure, EDENone},
		{"SHA-1 DS ignored beside SHA-256 (RFC 4509)", keys, sigs, []*dns.DS{z.ds(dns.SHA1), otherZone.ds(dns.SHA256)}, nil, security.Bogus, EDEDNSKEYMissing},
		{"no DNSKEY", nil, sigs, []*dns.DS{z.ds(dns.SHA256)}, nil, security.Bogus, EDEDNSKEYMissing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, trusted := VerifyDNSKEYs(tc.keys, tc.sigs, tc.ds, tc.anchors, testNow, NewBudget(DefaultLimits()))
			if res.Status != tc.status || res.EDE != tc.ede {
				t.Fatalf("got %v EDE %d (%s), want %v EDE %d", res.Status, res.EDE, res.Reason, tc.status, tc.ede)
			}
			if (res.Status == security.Secure) != (len(trusted) == 2) {
				t.Fatalf("status %v with %d trusted keys", res.Status, len(trusted))
			}
		})
	}
}

func TestVerifyDNSKEYsSmallRSABehindDSIsInsecure(t *testing.T) {
	z := newTestZone(t, "example.", dns.RSASHA256) // 1024-bit keys
	signed := z.signedDNSKEY(t)
	lim := DefaultLimits()
	lim.MinRSABits = 2048
	res, trusted := VerifyDNSKEYs(withoutSigs(signed), sigsOf(signed), []*dns.DS{z.ds(dns.SHA256)}, nil, testNow, NewBudget(lim))
	if res.Status != security.Insecure || res.EDE != EDEUnsupportedDNSKEYAlg || trusted != nil {
		t.Fatalf("got %+v, %d keys", res, len(trusted))
	}
}

func TestRevokedKeyIsNotTrusted(t *testing.T) {
	z := newTestZone(t, "example.", dns.ED25519)
	z.zsk.dnskey.Flags |= dns.REVOKE
	signed := z.signedDNSKEY(t)
	res, trusted := VerifyDNSKEYs(withoutSigs(signed), sigsOf(signed), []*dns.DS{z.ds(dns.SHA256)}, nil, testNow, nil)
	if res.Status != security.Secure || len(trusted) != 1 || trusted[0] != z.ksk.dnskey {
		t.Fatalf("got %+v with %d trusted keys", res, len(trusted))
	}
}
