package authority

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

func TestSignCanonicalCompare(t *testing.T) {
	// The example order of RFC 4034 6.1.
	want := []string{"example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.",
		"zABC.a.EXAMPLE.", "z.example.", "\\001.z.example.", "*.z.example.", "\\200.z.example."}
	for i := range want {
		for j := range want {
			got := dnsname.Compare(want[i], want[j])
			if (got < 0) != (i < j) || (got == 0) != (i == j) {
				t.Errorf("compare(%s, %s) = %d, positions %d, %d", want[i], want[j], got, i, j)
			}
		}
	}
	shuffled := slices.Clone(want)
	slices.Reverse(shuffled)
	signSortNames(shuffled)
	if !slices.Equal(shuffled, want) {
		t.Errorf("sorted %v", shuffled)
	}
}

func TestSignErrors(t *testing.T) {
	const origin = "z.test."
	now := time.Now()
	key := signMustKey(t, origin, dns.ECDSAP256SHA256, FlagsKSK)
	other := signMustKey(t, "other.test.", dns.ECDSAP256SHA256, FlagsKSK)
	soa := "@ 3600 SOA ns1 host 1 7200 3600 1209600 300\n"
	tests := []struct {
		name string
		zone string
		opts SignOptions
	}{
		{"no keys", soa, SignOptions{Inception: now, Expiration: now.Add(time.Hour)}},
		{"foreign key", soa, SignOptions{Keys: []*Key{other}, Inception: now, Expiration: now.Add(time.Hour)}},
		{"window backwards", soa, SignOptions{Keys: []*Key{key}, Inception: now, Expiration: now.Add(-time.Hour)}},
		{"no SOA", "www 60 A 192.0.2.1\n", SignOptions{Keys: []*Key{key}, Inception: now, Expiration: now.Add(time.Hour)}},
		{"out of zone", soa + "www.other.test. A 192.0.2.1\n", SignOptions{Keys: []*Key{key}, Inception: now, Expiration: now.Add(time.Hour)}},
		{"DS not at delegation", soa + "www DS 1 13 2 aabbccdd\n", SignOptions{Keys: []*Key{key}, Inception: now, Expiration: now.Add(time.Hour)}},
		{"too many iterations", soa, SignOptions{Keys: []*Key{key}, Inception: now, Expiration: now.Add(time.Hour), NSEC3: &NSEC3Options{Iterations: MaxNSEC3Iterations + 1}}},
		{"bad salt", soa, SignOptions{Keys: []*Key{key}, Inception: now, Expiration: now.Add(time.Hour), NSEC3: &NSEC3Options{Salt: "xyz"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Sign(origin, parseRecords(t, origin, tc.zone), tc.opts); err == nil {
				t.Error("Sign succeeded")
			}
		})
	}
}

// TestSignMultiAlgorithm signs with an RSA KSK+ZSK and an ECDSA CSK at once:
// every RRset must carry one signature per algorithm.
func TestSignMultiAlgorithm(t *testing.T) {
	const origin = "z.test."
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	keys := []*Key{
		signMustKey(t, origin, dns.ED25519, FlagsKSK),
		signMustKey(t, origin, dns.ED25519, FlagsZSK),
		signMustKey(t, origin, dns.ECDSAP256SHA256, FlagsKSK),
	}
	rrs := parseRecords(t, origin, "@ 3600 SOA ns1 host 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n")
	out, err := Sign(origin, rrs, SignOptions{Keys: keys, Inception: now.Add(-time.Hour), Expiration: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	signCheckSignatures(t, origin, out, nil, now)
	sets, sigs := signRRsets(out)
	for k := range sets {
		if n := len(sigs[k]); n != 2 {
			t.Errorf("%s/%s has %d RRSIGs, want 2 (one per algorithm)", k.name, dns.TypeToString[k.typ], n)
		}
	}
}

// TestSignDeterministicOrder: the output is in canonical order and signing
// the same input twice gives the same records apart from signatures.
func TestSignDeterministicOrder(t *testing.T) {
	const origin = "z.test."
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	key := signMustKey(t, origin, dns.ED25519, FlagsKSK)
	opts := SignOptions{Keys: []*Key{key}, Inception: now.Add(-time.Hour), Expiration: now.Add(time.Hour)}
	a, err := Sign(origin, parseRecords(t, origin, signTestZone), opts)
	if err != nil {
		t.Fatal(err)
	}
	rrs := parseRecords(t, origin, signTestZone)
	slices.Reverse(rrs)
	b, err := Sign(origin, rrs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatalf("%d vs %d records", len(a), len(b))
	}
	for i := range a {
		// Ed25519 signatures are deterministic, so even RRSIGs match.
		if a[i].String() != b[i].String() {
			t.Errorf("record %d: %s vs %s", i, a[i], b[i])
		}
		if i > 0 && dnsname.Compare(a[i-1].Header().Name, a[i].Header().Name) > 0 {
			t.Errorf("record %d (%s) sorts after %s", i, a[i].Header().Name, a[i-1].Header().Name)
		}
	}
}

// TestSignCDSDelete publishes the RFC 8078 delete signal.
func TestSignCDSDelete(t *testing.T) {
	const origin = "z.test."
	now := time.Now()
	key := signMustKey(t, origin, dns.ECDSAP256SHA256, FlagsKSK)
	rrs := parseRecords(t, origin, "@ 3600 SOA ns1 host 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n")
	out, err := Sign(origin, rrs, SignOptions{Keys: []*Key{key}, Inception: now.Add(-time.Hour), Expiration: now.Add(time.Hour), CDSDelete: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rr := range out {
		if t := rr.Header().Rrtype; t == dns.TypeCDS || t == dns.TypeCDNSKEY {
			got = append(got, strings.Join(strings.Fields(rr.String())[3:], " "))
		}
	}
	want := []string{"CDS 0 0 0 00", "CDNSKEY 0 3 0 AA=="}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	signCheckSignatures(t, origin, out, nil, now)
}

// TestSignedZoneLoads: what Sign produces is a zone the answering engine
// accepts.
func TestSignedZoneLoads(t *testing.T) {
	const origin = "z.test."
	now := time.Now()
	key := signMustKey(t, origin, dns.ECDSAP256SHA256, FlagsKSK)
	for _, n3 := range []*NSEC3Options{nil, {OptOut: true}} {
		rrs := parseRecords(t, origin, strings.ReplaceAll(signTestZone, "x.d      A    192.0.2.9\n", ""))
		rrs = append(rrs, signMustKey(t, "secure.z.test.", dns.ED25519, FlagsKSK).DS(dns.SHA256))
		out, err := Sign(origin, rrs, SignOptions{Keys: []*Key{key}, Inception: now.Add(-time.Hour), Expiration: now.Add(time.Hour), NSEC3: n3, PublishCDS: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewZone(origin, out); err != nil {
			t.Errorf("NSEC3 %v: NewZone: %v", n3, err)
		}
	}
}

// BenchmarkSign signs a zone of 1000 A records per algorithm and denial.
func BenchmarkSign(b *testing.B) {
	const origin = "bench.test."
	var zone strings.Builder
	zone.WriteString("@ 3600 SOA ns1 host 1 7200 3600 1209600 300\n@ 3600 NS ns1\nns1 3600 A 192.0.2.1\n")
	for i := range 1000 {
		fmt.Fprintf(&zone, "h%d 3600 A 198.18.%d.%d\n", i, i/256, i%256)
	}
	now := time.Now()
	for _, alg := range []uint8{dns.RSASHA256, dns.ECDSAP256SHA256, dns.ED25519} {
		key, err := GenerateKey(origin, alg, FlagsKSK)
		if err != nil {
			b.Fatal(err)
		}
		for _, n3 := range []*NSEC3Options{nil, {}} {
			b.Run(fmt.Sprintf("alg%d/nsec3=%v", alg, n3 != nil), func(b *testing.B) {
				zp := dns.NewZoneParser(strings.NewReader(zone.String()), origin, "bench")
				var rrs []dns.RR
				for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
					rrs = append(rrs, rr)
				}
				opts := SignOptions{Keys: []*Key{key}, Inception: now, Expiration: now.Add(time.Hour), NSEC3: n3}
				for b.Loop() {
					if _, err := Sign(origin, rrs, opts); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
