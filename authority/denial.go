package authority

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// This file builds the authenticated denial of existence chains: NSEC
// (RFC 4034 4, RFC 4035 2.3) and NSEC3 (RFC 5155 7.1).

// withoutFlattenedCNAME makes the apex's type bitmap (apex: the node has
// the SOA) of a zone whose apex CNAME is flattened (flatten.go): the CNAME,
// never served, is left out, since a bitmap naming it would make every
// NODATA proof at the apex bogus (RFC 4035 5.4); the flattened types are
// put in, since the apex answers them, and a resolver that uses NSEC
// aggressively (RFC 8198) would otherwise deny them from this record. A
// target without one of them gets a NODATA proved by a copy of this
// record without that type, signed online (flatDenial).
func withoutFlattenedCNAME(ts []uint16, apex bool) []uint16 {
	if !apex || !slices.Contains(ts, dns.TypeCNAME) {
		return ts
	}
	ts = slices.DeleteFunc(ts, func(t uint16) bool { return t == dns.TypeCNAME })
	ts = append(ts, dns.TypeA, dns.TypeAAAA, dns.TypeHTTPS)
	slices.Sort(ts)
	return slices.Compact(ts)
}

// signNSECTypes is the type bitmap of the NSEC record at node n: at a
// delegation only NS and DS (plus the NSEC and its RRSIG), elsewhere every
// type present.
func signNSECTypes(n *signNode) []uint16 {
	var ts []uint16
	if n.delegation {
		ts = append(ts, dns.TypeNS)
		if len(n.sets[dns.TypeDS]) > 0 {
			ts = append(ts, dns.TypeDS)
		}
	} else {
		ts = withoutFlattenedCNAME(n.types(), len(n.sets[dns.TypeSOA]) > 0)
	}
	ts = append(ts, dns.TypeRRSIG, dns.TypeNSEC)
	slices.Sort(ts)
	return slices.Compact(ts)
}

// addNSECChain links every authoritative name to the next in canonical
// order, the last back to the apex. Empty non-terminals own no NSEC.
func (z *signZone) addNSECChain() {
	names := z.authoritativeNames()
	for i, name := range names {
		n := z.nodes[name]
		next := names[(i+1)%len(names)]
		n.sets[dns.TypeNSEC] = []dns.RR{&dns.NSEC{
			Hdr:        dns.RR_Header{Name: name, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: z.negTTL},
			NextDomain: next,
			TypeBitMap: signNSECTypes(n),
		}}
	}
}

// signNSEC3Salt checks a hex salt and returns it in the form miekg/dns wants
// ("" for none).
func signNSEC3Salt(salt string) (string, error) {
	if salt == "-" || salt == "" {
		return "", nil
	}
	if len(salt) > 2*255 {
		return "", fmt.Errorf("NSEC3 salt longer than 255 octets")
	}
	if _, err := hex.DecodeString(salt); err != nil {
		return "", fmt.Errorf("NSEC3 salt %q is not hex: %w", salt, err)
	}
	return strings.ToUpper(salt), nil
}

// signNSEC3Link is one name of the NSEC3 chain before linking.
type signNSEC3Link struct {
	hash  string // lower-case base32hex, the first label of the owner
	types []uint16
}

// addNSEC3Chain adds NSEC3PARAM at the apex and one NSEC3 per
// authoritative name and empty non-terminal, in hash order. With opt-out,
// insecure delegations (and the empty non-terminals only they create) are
// left out.
func (z *signZone) addNSEC3Chain(o NSEC3Options) error {
	salt, err := signNSEC3Salt(o.Salt)
	if err != nil {
		return err
	}
	var flags uint8
	if o.OptOut {
		flags = 1
	}
	apex := z.nodes[z.origin]
	apex.sets[dns.TypeNSEC3PARAM] = []dns.RR{&dns.NSEC3PARAM{
		Hdr:        dns.RR_Header{Name: z.origin, Rrtype: dns.TypeNSEC3PARAM, Class: dns.ClassINET, Ttl: 0},
		Hash:       dns.SHA1,
		Iterations: o.Iterations,
		SaltLength: uint8(len(salt) / 2),
		Salt:       salt,
	}}

	owners := make(map[string][]uint16) // name -> bitmap; nil bitmap = empty non-terminal
	for _, name := range z.authoritativeNames() {
		n := z.nodes[name]
		secure := !n.delegation || len(n.sets[dns.TypeDS]) > 0
		if o.OptOut && !secure {
			continue
		}
		owners[name] = signNSEC3Types(n)
		for p := dnsname.Parent(name); len(p) > len(z.origin); p = dnsname.Parent(p) {
			if _, ok := owners[p]; ok {
				continue
			}
			if a := z.nodes[p]; a == nil || len(a.sets) == 0 {
				owners[p] = nil // empty non-terminal
			}
		}
	}

	entries := make([]signNSEC3Link, 0, len(owners))
	for name, types := range owners {
		h := dns.HashName(name, dns.SHA1, o.Iterations, salt)
		if h == "" {
			return fmt.Errorf("cannot hash %s", name)
		}
		entries = append(entries, signNSEC3Link{hash: strings.ToLower(h), types: types})
	}
	slices.SortFunc(entries, func(a, b signNSEC3Link) int { return strings.Compare(a.hash, b.hash) })
	for i := 1; i < len(entries); i++ {
		if entries[i].hash == entries[i-1].hash {
			return fmt.Errorf("NSEC3 hash collision on %s", entries[i].hash)
		}
	}
	for i, e := range entries {
		owner := e.hash + "." + z.origin
		if z.nodes[owner] != nil {
			return fmt.Errorf("NSEC3 owner %s clashes with a zone name", owner)
		}
		z.node(owner).sets[dns.TypeNSEC3] = []dns.RR{&dns.NSEC3{
			Hdr:        dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: z.negTTL},
			Hash:       dns.SHA1,
			Flags:      flags,
			Iterations: o.Iterations,
			SaltLength: uint8(len(salt) / 2),
			Salt:       salt,
			HashLength: 20,
			NextDomain: entries[(i+1)%len(entries)].hash,
			TypeBitMap: e.types,
		}}
	}
	return nil
}

// signNSEC3Types is the type bitmap of the NSEC3 record for node n. Unlike
// NSEC, the NSEC3's own RRSIG lives at the hashed owner, so RRSIG is listed
// only where the original name has signed data: not at an insecure
// delegation (RFC 5155 3.2).
func signNSEC3Types(n *signNode) []uint16 {
	var ts []uint16
	if n.delegation {
		ts = append(ts, dns.TypeNS)
		if len(n.sets[dns.TypeDS]) > 0 {
			ts = append(ts, dns.TypeDS, dns.TypeRRSIG)
		}
		return ts
	}
	ts = append(withoutFlattenedCNAME(n.types(), len(n.sets[dns.TypeSOA]) > 0), dns.TypeRRSIG)
	slices.Sort(ts)
	ts = slices.Compact(ts)
	if ts == nil {
		ts = []uint16{}
	}
	return ts
}
