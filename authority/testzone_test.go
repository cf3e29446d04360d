package authority

import (
	"crypto"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// This file signs small test zones directly with miekg/dns, independently
// of the package's signer, so that the serving side is tested against
// DNSSEC data built by other code.

type denialMode int

const (
	unsignedZone denialMode = iota
	nsecZone
	nsec3Zone
	nsec3OptOutZone
)

func (m denialMode) String() string {
	return [...]string{"unsigned", "nsec", "nsec3", "nsec3-optout"}[m]
}

type testZone struct {
	zone *Zone
	key  *dns.DNSKEY
	mode denialMode
}

func parseRecords(t testing.TB, origin, text string) []dns.RR {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "test")
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("parse test zone: %v", err)
	}
	return rrs
}

// testLess orders names canonically for the tests' own NSEC chain (test
// names have no escapes, so plain label strings suffice).
func testLess(a, b string) bool {
	la := dns.SplitDomainName(strings.ToLower(a))
	lb := dns.SplitDomainName(strings.ToLower(b))
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if la[i] != lb[j] {
			return la[i] < lb[j]
		}
	}
	return len(la) < len(lb)
}

// makeTestZone builds a zone from text, signed with one ECDSA P-256 key
// and the denial chain of mode.
func makeTestZone(t testing.TB, origin, text string, mode denialMode) *testZone {
	t.Helper()
	origin = dnsname.Canonical(origin)
	rrs := parseRecords(t, origin, text)
	for _, rr := range rrs {
		rr.Header().Name = dnsname.Canonical(rr.Header().Name)
	}
	if mode == unsignedZone {
		z, err := NewZone(origin, rrs)
		if err != nil {
			t.Fatalf("NewZone: %v", err)
		}
		return &testZone{zone: z, mode: mode}
	}

	key := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: origin, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags:     257,
		Protocol:  3,
		Algorithm: dns.ECDSAP256SHA256,
	}
	priv, err := key.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	rrs = append(rrs, key)

	var soa *dns.SOA
	byName := map[string]map[uint16][]dns.RR{}
	for _, rr := range rrs {
		h := rr.Header()
		if byName[h.Name] == nil {
			byName[h.Name] = map[uint16][]dns.RR{}
		}
		byName[h.Name][h.Rrtype] = append(byName[h.Name][h.Rrtype], rr)
		if s, ok := rr.(*dns.SOA); ok {
			soa = s
		}
	}
	isCut := func(name string) bool { return name != origin && byName[name][dns.TypeNS] != nil }
	occluded := func(name string) bool {
		for a := name; a != origin; {
			_, a, _ = strings.Cut(a, ".")
			if a == "" {
				a = "."
			}
			if isCut(a) {
				return true
			}
			if a == "." {
				break
			}
		}
		return false
	}
	var auth []string
	for name := range byName {
		if !occluded(name) {
			auth = append(auth, name)
		}
	}
	sort.Slice(auth, func(i, j int) bool { return testLess(auth[i], auth[j]) })

	// typesAt lists the authoritative types at an authoritative name.
	typesAt := func(name string) []uint16 {
		var ts []uint16
		for tp := range byName[name] {
			if isCut(name) && tp != dns.TypeNS && tp != dns.TypeDS {
				continue // glue at the cut is not authoritative
			}
			ts = append(ts, tp)
		}
		return ts
	}

	var denial []dns.RR
	switch mode {
	case nsecZone:
		for i, name := range auth {
			ts := append(typesAt(name), dns.TypeNSEC, dns.TypeRRSIG)
			sort.Slice(ts, func(a, b int) bool { return ts[a] < ts[b] })
			denial = append(denial, &dns.NSEC{
				Hdr:        dns.RR_Header{Name: name, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: soa.Minttl},
				NextDomain: auth[(i+1)%len(auth)],
				TypeBitMap: ts,
			})
		}
	case nsec3Zone, nsec3OptOutZone:
		const iterations, salt = 2, "abcd"
		optOut := mode == nsec3OptOutZone
		names := map[string]bool{}
		for _, name := range auth {
			if optOut && isCut(name) && byName[name][dns.TypeDS] == nil {
				continue // opt-out: insecure delegations are left out
			}
			for a := name; ; {
				names[a] = true
				if a == origin {
					break
				}
				_, a, _ = strings.Cut(a, ".")
				if a == "" {
					a = "."
				}
			}
		}
		type hashed struct {
			hash, name string
		}
		var hs []hashed
		for name := range names {
			hs = append(hs, hashed{dns.HashName(name, dns.SHA1, iterations, salt), name})
		}
		sort.Slice(hs, func(i, j int) bool { return hs[i].hash < hs[j].hash })
		var flags uint8
		if optOut {
			flags = 1
		}
		suffix := "." + origin
		if origin == "." {
			suffix = "."
		}
		for i, h := range hs {
			ts := typesAt(h.name)
			if len(ts) > 0 && (!isCut(h.name) || byName[h.name][dns.TypeDS] != nil) {
				ts = append(ts, dns.TypeRRSIG)
			}
			if h.name == origin {
				ts = append(ts, dns.TypeNSEC3PARAM)
			}
			sort.Slice(ts, func(a, b int) bool { return ts[a] < ts[b] })
			denial = append(denial, &dns.NSEC3{
				Hdr:        dns.RR_Header{Name: strings.ToLower(h.hash) + suffix, Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: soa.Minttl},
				Hash:       dns.SHA1,
				Flags:      flags,
				Iterations: iterations,
				SaltLength: uint8(len(salt) / 2),
				Salt:       salt,
				HashLength: 20,
				NextDomain: hs[(i+1)%len(hs)].hash,
				TypeBitMap: ts,
			})
		}
		param := &dns.NSEC3PARAM{
			Hdr:  dns.RR_Header{Name: origin, Rrtype: dns.TypeNSEC3PARAM, Class: dns.ClassINET, Ttl: 0},
			Hash: dns.SHA1, Iterations: iterations, SaltLength: uint8(len(salt) / 2), Salt: salt,
		}
		rrs = append(rrs, param)
		byName[origin][dns.TypeNSEC3PARAM] = []dns.RR{param}
	}

	// Sign every authoritative RRset and the denial records.
	signer := priv.(crypto.Signer)
	now := time.Now()
	sign := func(set []dns.RR) dns.RR {
		sig := &dns.RRSIG{
			Hdr:        dns.RR_Header{Ttl: set[0].Header().Ttl},
			Algorithm:  key.Algorithm,
			KeyTag:     key.KeyTag(),
			SignerName: origin,
			Inception:  uint32(now.Add(-time.Hour).Unix()),
			Expiration: uint32(now.Add(30 * 24 * time.Hour).Unix()),
		}
		if err := sig.Sign(signer, set); err != nil {
			t.Fatalf("sign %s: %v", set[0].Header().Name, err)
		}
		return sig
	}
	var sigs []dns.RR
	for _, name := range auth {
		for tp, set := range byName[name] {
			if isCut(name) && tp != dns.TypeDS {
				continue
			}
			sigs = append(sigs, sign(set))
		}
	}
	for _, rr := range denial {
		sigs = append(sigs, sign([]dns.RR{rr}))
	}
	all := append(append(rrs, denial...), sigs...)
	z, err := NewZone(origin, all)
	if err != nil {
		t.Fatalf("NewZone(signed %s): %v", mode, err)
	}
	if !z.Signed() {
		t.Fatalf("signed test zone not Signed()")
	}
	return &testZone{zone: z, key: key, mode: mode}
}
