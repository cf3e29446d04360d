package authority

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// This file holds checks of a signed zone that do not reuse the signer's
// code: they rebuild RRsets, verify every RRSIG with miekg/dns and walk the
// denial chains from the records alone.

type signSetKey struct {
	name string
	typ  uint16
}

// rrsets groups records by lower-cased owner and type; RRSIGs are grouped
// by the type they cover, under the RRSIG type's own map.
func signRRsets(rrs []dns.RR) (sets map[signSetKey][]dns.RR, sigs map[signSetKey][]*dns.RRSIG) {
	sets = make(map[signSetKey][]dns.RR)
	sigs = make(map[signSetKey][]*dns.RRSIG)
	for _, rr := range rrs {
		name := strings.ToLower(rr.Header().Name)
		if s, ok := rr.(*dns.RRSIG); ok {
			k := signSetKey{name, s.TypeCovered}
			sigs[k] = append(sigs[k], s)
			continue
		}
		k := signSetKey{name, rr.Header().Rrtype}
		sets[k] = append(sets[k], rr)
	}
	return sets, sigs
}

// signCheckSignatures verifies every RRSIG against the apex DNSKEYs and checks
// that exactly the RRsets not named in unsigned carry signatures, that
// each is signed once per algorithm, by a SEP key for the DNSKEY RRset and
// by a non-SEP key for others when the zone has both.
func signCheckSignatures(t *testing.T, origin string, rrs []dns.RR, unsigned map[signSetKey]bool, at time.Time) {
	t.Helper()
	sets, sigs := signRRsets(rrs)
	keys := map[uint16]*dns.DNSKEY{}
	algs := map[uint8]bool{}
	hasZSK := map[uint8]bool{}
	for _, rr := range sets[signSetKey{origin, dns.TypeDNSKEY}] {
		k := rr.(*dns.DNSKEY)
		keys[k.KeyTag()] = k
		algs[k.Algorithm] = true
		if k.Flags&dns.SEP == 0 {
			hasZSK[k.Algorithm] = true
		}
	}
	if len(keys) == 0 {
		t.Fatalf("no DNSKEY at %s", origin)
	}
	for k, set := range sets {
		got := sigs[k]
		if unsigned[k] {
			if len(got) != 0 {
				t.Errorf("%s/%s is signed, want unsigned", k.name, dns.TypeToString[k.typ])
			}
			continue
		}
		seen := map[uint8]bool{}
		for _, sig := range got {
			key := keys[sig.KeyTag]
			if key == nil {
				t.Errorf("%s/%s: RRSIG by unknown key %d", k.name, dns.TypeToString[k.typ], sig.KeyTag)
				continue
			}
			// miekg/dns verifies all but ED448; ED448 goes through
			// circl with the signed data that TestSignDataMatchesMiekg
			// checks against miekg/dns.
			if err := VerifySignature(sig, key, set); err != nil {
				t.Errorf("%s/%s: RRSIG by %d does not verify: %v", k.name, dns.TypeToString[k.typ], sig.KeyTag, err)
			}
			if !sig.ValidityPeriod(at) {
				t.Errorf("%s/%s: RRSIG not valid at %v", k.name, dns.TypeToString[k.typ], at)
			}
			if sig.Hdr.Ttl != set[0].Header().Ttl || sig.OrigTtl != set[0].Header().Ttl {
				t.Errorf("%s/%s: RRSIG TTL %d/%d, RRset TTL %d", k.name, dns.TypeToString[k.typ], sig.Hdr.Ttl, sig.OrigTtl, set[0].Header().Ttl)
			}
			isKeySet := k.typ == dns.TypeDNSKEY || k.typ == dns.TypeCDS || k.typ == dns.TypeCDNSKEY
			sep := key.Flags&dns.SEP != 0
			if hasZSK[key.Algorithm] && isKeySet != sep {
				t.Errorf("%s/%s signed by key %d (SEP=%v)", k.name, dns.TypeToString[k.typ], sig.KeyTag, sep)
			}
			seen[sig.Algorithm] = true
		}
		for a := range algs {
			if !seen[a] {
				t.Errorf("%s/%s: no RRSIG of algorithm %d", k.name, dns.TypeToString[k.typ], a)
			}
		}
	}
	for k := range sigs {
		if sets[k] == nil {
			t.Errorf("RRSIG covers %s/%s, which does not exist", k.name, dns.TypeToString[k.typ])
		}
	}
}

// signCheckNSECChain walks the NSEC records from the apex: it must visit
// exactly wantOwners in that order and come back to the apex. wantTypes
// gives the expected bitmaps of some owners.
func signCheckNSECChain(t *testing.T, origin string, rrs []dns.RR, wantOwners []string, wantTypes map[string][]uint16, ttl uint32) {
	t.Helper()
	nsecs := map[string]*dns.NSEC{}
	for _, rr := range rrs {
		if n, ok := rr.(*dns.NSEC); ok {
			name := strings.ToLower(n.Hdr.Name)
			if nsecs[name] != nil {
				t.Errorf("two NSEC at %s", name)
			}
			nsecs[name] = n
			if n.Hdr.Ttl != ttl {
				t.Errorf("NSEC %s TTL %d, want %d", name, n.Hdr.Ttl, ttl)
			}
		}
	}
	if len(nsecs) != len(wantOwners) {
		t.Errorf("%d NSEC records, want %d", len(nsecs), len(wantOwners))
	}
	name := origin
	for i := range wantOwners {
		if name != wantOwners[i] {
			t.Fatalf("NSEC chain step %d at %s, want %s", i, name, wantOwners[i])
		}
		n := nsecs[name]
		if n == nil {
			t.Fatalf("no NSEC at %s", name)
		}
		name = strings.ToLower(n.NextDomain)
	}
	if name != origin {
		t.Errorf("NSEC chain does not close: last next is %s", name)
	}
	for owner, want := range wantTypes {
		n := nsecs[owner]
		if n == nil {
			t.Errorf("no NSEC at %s", owner)
			continue
		}
		if !slices.Equal(n.TypeBitMap, want) {
			t.Errorf("NSEC %s types %v, want %v", owner, signTypeNames(n.TypeBitMap), signTypeNames(want))
		}
	}
}

// signCheckNSEC3Chain hashes wantNames itself, checks that each is an NSEC3
// owner exactly once with the expected bitmap, that the records link in
// hash order into one ring and carry the given parameters.
func signCheckNSEC3Chain(t *testing.T, origin string, rrs []dns.RR, want map[string][]uint16, iter uint16, salt string, optOut bool, ttl uint32) {
	t.Helper()
	byHash := map[string]*dns.NSEC3{}
	var params []*dns.NSEC3PARAM
	for _, rr := range rrs {
		switch r := rr.(type) {
		case *dns.NSEC3:
			h, zone, _ := strings.Cut(strings.ToLower(r.Hdr.Name), ".")
			if zone != strings.TrimPrefix(origin, ".") && !(origin == "." && zone == "") {
				t.Errorf("NSEC3 %s not directly below %s", r.Hdr.Name, origin)
			}
			if byHash[h] != nil {
				t.Errorf("two NSEC3 at %s", h)
			}
			byHash[h] = r
			if r.Iterations != iter || !strings.EqualFold(r.Salt, salt) || r.Hash != dns.SHA1 {
				t.Errorf("NSEC3 %s params %d/%q/%d", h, r.Iterations, r.Salt, r.Hash)
			}
			if (r.Flags&1 == 1) != optOut {
				t.Errorf("NSEC3 %s flags %d, opt-out want %v", h, r.Flags, optOut)
			}
			if r.Hdr.Ttl != ttl {
				t.Errorf("NSEC3 %s TTL %d, want %d", h, r.Hdr.Ttl, ttl)
			}
		case *dns.NSEC3PARAM:
			params = append(params, r)
		}
	}
	if len(params) != 1 || params[0].Iterations != iter || !strings.EqualFold(params[0].Salt, salt) || params[0].Flags != 0 {
		t.Errorf("NSEC3PARAM %v", params)
	}
	if len(byHash) != len(want) {
		t.Errorf("%d NSEC3 records, want %d", len(byHash), len(want))
	}
	for name, types := range want {
		h := strings.ToLower(dns.HashName(name, dns.SHA1, iter, salt))
		n := byHash[h]
		if n == nil {
			t.Errorf("no NSEC3 for %s (%s)", name, h)
			continue
		}
		if !slices.Equal(n.TypeBitMap, types) {
			t.Errorf("NSEC3 for %s types %v, want %v", name, signTypeNames(n.TypeBitMap), signTypeNames(types))
		}
		if !n.Match(name) {
			t.Errorf("NSEC3 for %s does not Match it", name)
		}
	}
	// Walk the ring in hash order.
	hashes := make([]string, 0, len(byHash))
	for h := range byHash {
		hashes = append(hashes, h)
	}
	slices.Sort(hashes)
	for i, h := range hashes {
		next := hashes[(i+1)%len(hashes)]
		if got := strings.ToLower(byHash[h].NextDomain); got != next {
			t.Errorf("NSEC3 %s next %s, want %s", h, got, next)
		}
	}
}

func signTypeNames(ts []uint16) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = dns.TypeToString[t]
	}
	return out
}

func signTypes(ts ...uint16) []uint16 {
	out := slices.Clone(ts)
	slices.Sort(out)
	return out
}
