package validator

import (
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/internal/sigdata"
)

// testNow is the DNS time every test validates at unless it moves it.
var testNow = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// testKey is a DNSKEY with its private half. ED448 keys are made with
// circl, since miekg/dns cannot sign them.
type testKey struct {
	dnskey *dns.DNSKEY
	priv   crypto.Signer
	ed448  ed448.PrivateKey
}

func keyBits(alg uint8) int {
	switch alg {
	case dns.ECDSAP384SHA384:
		return 384
	case dns.ECDSAP256SHA256, dns.ED25519:
		return 256
	}
	return 1024
}

func newTestKey(t testing.TB, zone string, alg uint8, flags uint16) *testKey {
	t.Helper()
	k := &dns.DNSKEY{
		Hdr:   dns.RR_Header{Name: dns.Fqdn(zone), Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: flags, Protocol: 3, Algorithm: alg,
	}
	if alg == dns.ED448 {
		pub, priv, err := ed448.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k.PublicKey = base64.StdEncoding.EncodeToString(pub)
		return &testKey{dnskey: k, ed448: priv}
	}
	priv, err := k.Generate(keyBits(alg))
	if err != nil {
		t.Fatalf("generate alg %d: %v", alg, err)
	}
	return &testKey{dnskey: k, priv: priv.(crypto.Signer)}
}

// signWindow signs rrset with an explicit validity window.
func (k *testKey) signWindow(t testing.TB, rrset []dns.RR, inception, expiration time.Time) *dns.RRSIG {
	t.Helper()
	sig := &dns.RRSIG{
		Algorithm:  k.dnskey.Algorithm,
		KeyTag:     k.dnskey.KeyTag(),
		SignerName: k.dnskey.Hdr.Name,
		Inception:  uint32(inception.Unix()),
		Expiration: uint32(expiration.Unix()),
	}
	if k.ed448 != nil {
		h0 := rrset[0].Header()
		sig.Hdr = dns.RR_Header{Name: h0.Name, Rrtype: dns.TypeRRSIG, Class: h0.Class, Ttl: h0.Ttl}
		sig.OrigTtl = h0.Ttl
		sig.TypeCovered = h0.Rrtype
		sig.Labels = uint8(sigdata.OwnerLabels(h0.Name))
		data, err := sigdata.Build(rrset, sig)
		if err != nil {
			t.Fatal(err)
		}
		sig.Signature = base64.StdEncoding.EncodeToString(ed448.Sign(k.ed448, data, ""))
		return sig
	}
	if err := sig.Sign(k.priv, rrset); err != nil {
		t.Fatalf("sign: %v", err)
	}
	sig.Hdr.Ttl = rrset[0].Header().Ttl
	return sig
}

// sign signs rrset valid from an hour before testNow to a day after.
func (k *testKey) sign(t testing.TB, rrset []dns.RR) *dns.RRSIG {
	return k.signWindow(t, rrset, testNow.Add(-time.Hour), testNow.Add(24*time.Hour))
}

// testZone is a signed zone: one KSK, one ZSK, and records.
type testZone struct {
	name     string
	ksk, zsk *testKey
}

func newTestZone(t testing.TB, name string, alg uint8) *testZone {
	return &testZone{
		name: dns.Fqdn(name),
		ksk:  newTestKey(t, name, alg, dns.ZONE|dns.SEP),
		zsk:  newTestKey(t, name, alg, dns.ZONE),
	}
}

func (z *testZone) keys() []*dns.DNSKEY { return []*dns.DNSKEY{z.ksk.dnskey, z.zsk.dnskey} }

func (z *testZone) dnskeyRRset() []dns.RR { return []dns.RR{z.ksk.dnskey, z.zsk.dnskey} }

// signedDNSKEY returns the DNSKEY RRset and its KSK signature.
func (z *testZone) signedDNSKEY(t testing.TB) []dns.RR {
	set := z.dnskeyRRset()
	return append(set, z.ksk.sign(t, set))
}

func (z *testZone) ds(digest uint8) *dns.DS { return z.ksk.dnskey.ToDS(digest) }

// signed returns rrset followed by its ZSK signature.
func (z *testZone) signed(t testing.TB, rrset ...dns.RR) []dns.RR {
	return append(slices.Clone(rrset), z.zsk.sign(t, rrset))
}

// signedAll groups records into RRsets and signs each.
func (z *testZone) signedAll(t testing.TB, records []dns.RR) []dns.RR {
	var out []dns.RR
	for _, set := range groupRRsets(records) {
		out = append(out, z.signed(t, set...)...)
	}
	return out
}

func groupRRsets(records []dns.RR) [][]dns.RR {
	var sets [][]dns.RR
	index := map[string]int{}
	for _, r := range records {
		key := dnsname.Lower(r.Header().Name) + "/" + dns.TypeToString[r.Header().Rrtype]
		i, ok := index[key]
		if !ok {
			i = len(sets)
			index[key] = i
			sets = append(sets, nil)
		}
		sets[i] = append(sets[i], r)
	}
	return sets
}

func sigsOf(records []dns.RR) []*dns.RRSIG {
	var out []*dns.RRSIG
	for _, r := range records {
		if s, ok := r.(*dns.RRSIG); ok {
			out = append(out, s)
		}
	}
	return out
}

func withoutSigs(records []dns.RR) []dns.RR {
	var out []dns.RR
	for _, r := range records {
		if _, ok := r.(*dns.RRSIG); !ok {
			out = append(out, r)
		}
	}
	return out
}

// nsecChain builds the NSEC chain of a zone whose names hold the given
// types (NSEC and RRSIG are added).
func nsecChain(zone string, names map[string][]uint16) []dns.RR {
	owners := make([]string, 0, len(names))
	for n := range names {
		owners = append(owners, dns.Fqdn(n))
	}
	slices.SortFunc(owners, dnsname.Compare)
	out := make([]dns.RR, len(owners))
	for i, o := range owners {
		types := append(slices.Clone(names[o]), dns.TypeNSEC, dns.TypeRRSIG)
		slices.Sort(types)
		out[i] = &dns.NSEC{
			Hdr:        dns.RR_Header{Name: o, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 600},
			NextDomain: owners[(i+1)%len(owners)],
			TypeBitMap: types,
		}
	}
	return out
}

// nsec3Chain builds an NSEC3 chain, adding empty non-terminals. Names in
// optOutSkip (unsigned delegations) are left out and every record gets the
// opt-out flag when optOut is set.
func nsec3Chain(zone string, names map[string][]uint16, iter uint16, salt string, optOut bool, optOutSkip ...string) []dns.RR {
	zone = dns.Fqdn(zone)
	all := map[string][]uint16{}
	for n, types := range names {
		n = dns.Fqdn(n)
		if slices.Contains(optOutSkip, n) {
			continue
		}
		all[n] = types
		for p := n; !dnsname.Equal(p, zone); p = dnsname.Parent(p) {
			if _, ok := all[p]; !ok {
				all[p] = nil
			}
		}
	}
	// Empty non-terminals above skipped delegations vanish with opt-out.
	type entry struct {
		hash  string
		types []uint16
	}
	var entries []entry
	for n, types := range all {
		bm := slices.Clone(types)
		if len(bm) > 0 && !(slices.Contains(bm, dns.TypeNS) && !slices.Contains(bm, dns.TypeSOA) && !slices.Contains(bm, dns.TypeDS)) {
			bm = append(bm, dns.TypeRRSIG)
		} else if slices.Contains(bm, dns.TypeDS) {
			bm = append(bm, dns.TypeRRSIG)
		}
		slices.Sort(bm)
		entries = append(entries, entry{dns.HashName(n, dns.SHA1, iter, salt), bm})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.hash, b.hash) })
	var flags uint8
	if optOut {
		flags = 1
	}
	out := make([]dns.RR, len(entries))
	for i, e := range entries {
		out[i] = &dns.NSEC3{
			Hdr:        dns.RR_Header{Name: strings.ToLower(e.hash) + "." + zone, Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: 600},
			Hash:       dns.SHA1,
			Flags:      flags,
			Iterations: iter,
			SaltLength: uint8(len(salt) / 2),
			Salt:       salt,
			HashLength: 20,
			NextDomain: entries[(i+1)%len(entries)].hash,
			TypeBitMap: e.types,
		}
	}
	return out
}

// nsec3For returns the record of chain matching or covering name.
func nsec3Find(t testing.TB, chain []dns.RR, name string, covering bool) dns.RR {
	t.Helper()
	first := chain[0].(*dns.NSEC3)
	h, _ := decodeHash(dns.HashName(name, dns.SHA1, first.Iterations, first.Salt))
	for _, r := range chain {
		n := r.(*dns.NSEC3)
		o, _ := decodeHash(n.Hdr.Name[:strings.IndexByte(n.Hdr.Name, '.')])
		nx, _ := decodeHash(n.NextDomain)
		s := &nsec3Set{owner: [][]byte{o}, next: [][]byte{nx}, recs: []*dns.NSEC3{n}}
		if !covering && s.match(h) == 0 || covering && s.cover(h) == 0 {
			return r
		}
	}
	t.Fatalf("no NSEC3 %s %s", map[bool]string{true: "covers", false: "matches"}[covering], name)
	return nil
}

func nsecFind(t testing.TB, chain []dns.RR, name string, covering bool) dns.RR {
	t.Helper()
	for _, r := range chain {
		n := r.(*dns.NSEC)
		if !covering && dnsname.Equal(n.Hdr.Name, name) || covering && NSECCovers(n, name) {
			return r
		}
	}
	t.Fatalf("no NSEC for %s", name)
	return nil
}
