package authority

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// signTestZone has an apex, plain names, a wildcard, empty non-terminals
// (ent, b.ent, wild), a secure and an insecure delegation with glue, a
// DNAME with dead data below it and an upper-case owner.
const signTestZone = `
$TTL 3600
@        7200 SOA ns1 hostmaster 1 7200 3600 1209600 300
@        NS   ns1
@        NS   ns2.other.test.
ns1      A    192.0.2.1
www      A    192.0.2.2
www      AAAA 2001:db8::2
WWW      A    192.0.2.2
*.wild   TXT  "wild"
a.b.ent  A    192.0.2.3
secure   NS   ns.secure
ns.secure A   192.0.2.4
insecure NS   ns.insecure
ns.insecure A 192.0.2.5
alias    CNAME www
d        DNAME other.test.
x.d      A    192.0.2.9
Upper    TXT  "case"
`

func TestSignRoundTrip(t *testing.T) {
	const origin = "z.test."
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	childKey := signMustKey(t, "secure.z.test.", dns.ECDSAP256SHA256, FlagsKSK)
	childDS := childKey.DS(dns.SHA256)

	nsecOwners := []string{"z.test.", "alias.z.test.", "d.z.test.", "a.b.ent.z.test.", "insecure.z.test.",
		"ns1.z.test.", "secure.z.test.", "upper.z.test.", "*.wild.z.test.", "www.z.test."}
	rrsigNSEC := []uint16{dns.TypeRRSIG, dns.TypeNSEC}

	for _, alg := range []uint8{dns.RSASHA256, dns.ECDSAP256SHA256, dns.ED25519, dns.ED448} {
		// One key pair per algorithm: RSA generation is slow.
		ksk, zsk := signMustKey(t, origin, alg, FlagsKSK), signMustKey(t, origin, alg, FlagsZSK)
		for _, split := range []bool{true, false} {
			for _, denial := range []string{"nsec", "nsec3", "nsec3-optout"} {
				name := fmt.Sprintf("alg%d/split=%v/%s", alg, split, denial)
				t.Run(name, func(t *testing.T) {
					keys := []*Key{ksk}
					if split {
						keys = append(keys, zsk)
					}
					rrs := parseRecords(t, origin, signTestZone)
					rrs = append(rrs, childDS)
					opts := SignOptions{Keys: keys, Inception: now.Add(-time.Hour), Expiration: now.Add(30 * 24 * time.Hour), PublishCDS: true}
					switch denial {
					case "nsec3":
						opts.NSEC3 = &NSEC3Options{Iterations: 0}
					case "nsec3-optout":
						opts.NSEC3 = &NSEC3Options{Iterations: 5, Salt: "aabbccdd", OptOut: true}
					}
					out, err := Sign(origin, rrs, opts)
					if err != nil {
						t.Fatal(err)
					}
					unsigned := map[signSetKey]bool{
						{"secure.z.test.", dns.TypeNS}:     true,
						{"insecure.z.test.", dns.TypeNS}:   true,
						{"ns.secure.z.test.", dns.TypeA}:   true,
						{"ns.insecure.z.test.", dns.TypeA}: true,
						{"x.d.z.test.", dns.TypeA}:         true,
					}
					signCheckSignatures(t, origin, out, unsigned, now)

					// The DS to give the parent matches the KSK.
					ds := ksk.DS(dns.SHA256)
					if want := ksk.DNSKEY.ToDS(dns.SHA256); ds.Digest != want.Digest || ds.KeyTag != want.KeyTag {
						t.Errorf("DS %v, want %v", ds, want)
					}
					signCheckCDS(t, out, ksk)

					apexTypes := []uint16{dns.TypeNS, dns.TypeSOA, dns.TypeDNSKEY, dns.TypeCDS, dns.TypeCDNSKEY}
					negTTL := uint32(300) // min(SOA TTL 7200, MINIMUM 300)
					if opts.NSEC3 == nil {
						signCheckNSECChain(t, origin, out, nsecOwners, map[string][]uint16{
							"z.test.":          signTypes(append(apexTypes, rrsigNSEC...)...),
							"secure.z.test.":   signTypes(dns.TypeNS, dns.TypeDS, dns.TypeRRSIG, dns.TypeNSEC),
							"insecure.z.test.": signTypes(dns.TypeNS, dns.TypeRRSIG, dns.TypeNSEC),
							"www.z.test.":      signTypes(dns.TypeA, dns.TypeAAAA, dns.TypeRRSIG, dns.TypeNSEC),
							"d.z.test.":        signTypes(dns.TypeDNAME, dns.TypeRRSIG, dns.TypeNSEC),
							"*.wild.z.test.":   signTypes(dns.TypeTXT, dns.TypeRRSIG, dns.TypeNSEC),
						}, negTTL)
						return
					}
					want := map[string][]uint16{
						"z.test.":         signTypes(append(apexTypes, dns.TypeNSEC3PARAM, dns.TypeRRSIG)...),
						"alias.z.test.":   signTypes(dns.TypeCNAME, dns.TypeRRSIG),
						"d.z.test.":       signTypes(dns.TypeDNAME, dns.TypeRRSIG),
						"a.b.ent.z.test.": signTypes(dns.TypeA, dns.TypeRRSIG),
						"b.ent.z.test.":   {},
						"ent.z.test.":     {},
						"ns1.z.test.":     signTypes(dns.TypeA, dns.TypeRRSIG),
						"secure.z.test.":  signTypes(dns.TypeNS, dns.TypeDS, dns.TypeRRSIG),
						"upper.z.test.":   signTypes(dns.TypeTXT, dns.TypeRRSIG),
						"*.wild.z.test.":  signTypes(dns.TypeTXT, dns.TypeRRSIG),
						"wild.z.test.":    {},
						"www.z.test.":     signTypes(dns.TypeA, dns.TypeAAAA, dns.TypeRRSIG),
					}
					if !opts.NSEC3.OptOut {
						want["insecure.z.test."] = signTypes(dns.TypeNS)
					}
					signCheckNSEC3Chain(t, origin, out, want, opts.NSEC3.Iterations, opts.NSEC3.Salt, opts.NSEC3.OptOut, negTTL)
				})
			}
		}
	}
}

// signCheckCDS checks that the CDS and CDNSKEY at the apex name exactly the KSK.
func signCheckCDS(t *testing.T, rrs []dns.RR, ksk *Key) {
	t.Helper()
	var cds []*dns.CDS
	var cdnskey []*dns.CDNSKEY
	for _, rr := range rrs {
		switch r := rr.(type) {
		case *dns.CDS:
			cds = append(cds, r)
		case *dns.CDNSKEY:
			cdnskey = append(cdnskey, r)
		}
	}
	want := ksk.DS(dns.SHA256)
	if len(cds) != 1 || cds[0].KeyTag != want.KeyTag || !strings.EqualFold(cds[0].Digest, want.Digest) || cds[0].DigestType != dns.SHA256 {
		t.Errorf("CDS %v, want one for %v", cds, want)
	}
	if len(cdnskey) != 1 || cdnskey[0].PublicKey != ksk.DNSKEY.PublicKey || cdnskey[0].Flags != ksk.DNSKEY.Flags {
		t.Errorf("CDNSKEY %v, want the KSK", cdnskey)
	}
}

func signMustKey(t *testing.T, origin string, alg uint8, flags uint16) *Key {
	t.Helper()
	k, err := GenerateKey(origin, alg, flags)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
