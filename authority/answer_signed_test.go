package authority

import (
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestAnswerZonesFromSign runs every answer case against the test zone as
// the package's own signer (Sign) signs it, so that what the signer writes
// is what the server can serve.
func TestAnswerZonesFromSign(t *testing.T) {
	key, err := GenerateKey(testOrigin, dns.ECDSAP256SHA256, FlagsKSK)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rrs := parseRecords(t, testOrigin, testZoneText+"dangling CNAME nothere.example.\n")
	modes := []struct {
		mode  denialMode
		nsec3 *NSEC3Options
	}{
		{nsecZone, nil},
		{nsec3Zone, &NSEC3Options{Iterations: 1, Salt: "beef"}},
		{nsec3OptOutZone, &NSEC3Options{OptOut: true}},
	}
	for _, md := range modes {
		signed, err := Sign(testOrigin, rrs, SignOptions{
			Keys: []*Key{key}, Inception: now.Add(-time.Hour), Expiration: now.Add(24 * time.Hour), NSEC3: md.nsec3,
		})
		if err != nil {
			t.Fatalf("Sign %s: %v", md.mode, err)
		}
		z, err := NewZone(testOrigin, signed)
		if err != nil {
			t.Fatalf("NewZone(Sign %s): %v", md.mode, err)
		}
		if !z.Signed() {
			t.Fatalf("zone from Sign not Signed()")
		}
		tz := &testZone{zone: z, key: key.DNSKEY, mode: md.mode}
		s := NewServer(z)
		for _, tc := range answerCases {
			for _, do := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/do=%v", md.mode, tc.name, do), func(t *testing.T) {
					q := query(tc.qname, tc.qtype, do)
					checkResponse(t, tz, q, s.Answer(q), tc.want, do)
				})
			}
		}
	}
}
