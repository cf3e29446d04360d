package sigdata

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// TestBuild signs RRsets as a zone holds them with miekg/dns (Ed25519
// signs the message itself) and checks that Build, given the RRset as a
// resolver receives it, yields the bytes that were signed: owner and RDATA
// names in another case, TTLs counted down, wildcard expansion, another
// order, duplicates. Changes that alter the signed data must not verify.
func TestBuild(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := &dns.DNSKEY{Hdr: dns.RR_Header{Name: "z.test.", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: 257, Protocol: 3, Algorithm: dns.ED25519, PublicKey: base64.StdEncoding.EncodeToString(pub)}
	now := time.Now()
	cases := []struct {
		name     string
		signed   string // the RRset as the zone signs it
		received string // the RRset as a validator gets it
		verifies bool
	}{
		{"same records", "a 300 A 192.0.2.1\na 300 A 192.0.2.2\n", "a 300 A 192.0.2.1\na 300 A 192.0.2.2\n", true},
		{"owner case, TTL counted down, order", "a 300 A 192.0.2.1\na 300 A 192.0.2.2\n", "A 17 A 192.0.2.2\nA 17 A 192.0.2.1\n", true},
		{"duplicates dropped", "a 300 TXT \"x\"\n", "a 300 TXT \"x\"\na 300 TXT \"x\"\n", true},
		{"MX target case", "m 300 MX 10 Mail.Z.test.\n", "m 300 MX 10 mAIL.z.TEST.\n", true},
		{"SRV target case", "_x._tcp 300 SRV 0 0 53 Host.Z.test.\n", "_x._tcp 300 SRV 0 0 53 host.z.test.\n", true},
		{"DNAME target case", "d 300 DNAME Other.Test.\n", "d 300 DNAME other.test.\n", true},
		{"NSEC next name keeps its case (RFC 6840 5.1)", "n 300 NSEC Next.z.test. A RRSIG NSEC\n", "n 300 NSEC next.z.test. A RRSIG NSEC\n", false},
		{"wildcard expanded one label", "*.w 300 A 192.0.2.9\n", "x.w 300 A 192.0.2.9\n", true},
		{"wildcard expanded three labels", "*.w 300 A 192.0.2.9\n", "a.b.c.w 300 A 192.0.2.9\n", true},
		{"wildcard expanded elsewhere", "*.w 300 A 192.0.2.9\n", "x.v 300 A 192.0.2.9\n", false},
		{"RDATA changed", "a 300 A 192.0.2.1\n", "a 300 A 192.0.2.3\n", false},
		{"record missing", "a 300 A 192.0.2.1\na 300 A 192.0.2.2\n", "a 300 A 192.0.2.1\n", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			signed := dnstest.MustZoneText(t, "z.test.", tc.signed)
			sig := &dns.RRSIG{Algorithm: dns.ED25519, KeyTag: key.KeyTag(), SignerName: "z.test.",
				Inception: uint32(now.Unix()), Expiration: uint32(now.Add(time.Hour).Unix())}
			if err := sig.Sign(priv, signed); err != nil {
				t.Fatal(err)
			}
			if err := sig.Verify(key, signed); err != nil {
				t.Fatalf("miekg/dns cannot verify its own signature: %v", err)
			}
			data, err := Build(dnstest.MustZoneText(t, "z.test.", tc.received), sig)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := base64.StdEncoding.DecodeString(sig.Signature)
			if got := ed25519.Verify(pub, data, raw); got != tc.verifies {
				t.Errorf("signature over Build(received) verifies = %v, want %v", got, tc.verifies)
			}
		})
	}
}

func TestBuildRootWildcard(t *testing.T) {
	// Labels 0: the owner becomes "*." whatever was asked.
	sig := &dns.RRSIG{TypeCovered: dns.TypeA, Labels: 0, OrigTtl: 60, SignerName: "."}
	a, err := Build(dnstest.MustZoneText(t, "z.test.", "x. 60 A 192.0.2.1\n"), sig)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(dnstest.MustZoneText(t, "z.test.", "*. 60 A 192.0.2.1\n"), sig)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Error("expansion of the root wildcard differs from the wildcard itself")
	}
}

func TestLastLabels(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		want string
	}{
		{"a.b.c.", 2, "b.c."}, {"a.b.c.", 3, "a.b.c."}, {"a.b.c.", 5, "a.b.c."}, {"a.b.c.", 0, "."}, {"a.b.c", 1, "c"},
	} {
		if got := LastLabels(tc.name, tc.n); got != tc.want {
			t.Errorf("LastLabels(%q, %d) = %q, want %q", tc.name, tc.n, got, tc.want)
		}
	}
}
