// Package authority is Sextant's authoritative engine: it loads and checks
// zone files, answers queries for its zones per RFC 1034 4.3.2 (with
// wildcards, DNAME, referrals and negative answers) and serves pre-signed
// DNSSEC data with its NSEC or NSEC3 proofs, flattening CNAMEs where asked
// (flatten.go: a target's records through an injected Flattener, signed
// online in zones signed online). A Server implements
// transport.Handler and answers from an atomically replaceable set of
// immutable Zones.
package authority

import (
	"fmt"
	"hash/maphash"
	"sort"
	"sync"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// MaxNSEC3Iterations is the largest NSEC3 iteration count a zone may use:
// every negative answer hashes two or three names with it, so it bounds the
// work a query can cause (at 500 a hash took 35 us, at 150 10 us). RFC 9276
// recommends 0 and validators treat counts above 50..150 as insecure
// anyway; 150 is BIND's limit since 9.16.16.
const MaxNSEC3Iterations = 150

// rrset is one owner's records of one type, with the RRSIGs that cover
// that type.
type rrset struct {
	rrs  []dns.RR
	sigs []dns.RR
}

// node is everything stored at one owner name. A node without sets is an
// empty non-terminal.
type node struct {
	name  string // canonical
	sets  map[uint16]*rrset
	types []uint16 // types with records, ascending (RRSIG excluded)

	cut      bool   // NS below the apex: a delegation point
	belowCut bool   // at or below a delegation point's descendants (glue or occluded)
	dnameAt  string // the nearest proper ancestor owning a DNAME, if any (RFC 6672 2.4: nothing may be there)
	cname    *dns.CNAME
	dname    *dns.DNAME
	wildcard *node // the child "*" node, when present

	nsec   *rrset // the NSEC RRset here with its RRSIGs (NSEC zones)
	nsec3h string

	// fp fingerprints the node's records other than DNSSEC's (owner,
	// type, TTL and RDATA as on the wire), summed so that their order does
	// not count: ChangedNames compares versions by it (NewZone's nodes
	// only; see patched).
	fp uint64
}

// fingerprintSeed keys node fingerprints: random per process, so that
// nobody who controls zone content can make two versions collide.
var fingerprintSeed = maphash.MakeSeed()

func (n *node) set(t uint16) *rrset {
	if s := n.sets[t]; s != nil && len(s.rrs) > 0 {
		return s
	}
	return nil
}

func (n *node) empty() bool { return len(n.types) == 0 }

// Zone is one zone's data, immutable after construction and safe for
// concurrent reads.
type Zone struct {
	origin    string
	originLen int // labels in origin
	records   []dns.RR
	// patched: the zone was made by Resign from another version, and
	// records is filled from the nodes on first use (recordsOnce), so
	// that a change costs what it changes rather than a walk of the zone.
	patched     bool
	recordsOnce sync.Once
	nodes       map[string]*node
	apex        *node
	soa         *dns.SOA
	soaSet      *rrset
	negTTL      uint32 // min(SOA TTL, SOA MINIMUM): negative answers and their proofs (RFC 2308 3, RFC 9077)
	signed      bool

	// nsTargets are the in-zone names some NS record names: their
	// addresses are glue or needed beside it (checkNode).
	nsTargets map[string]bool

	nsecIndex []nsecEntry // NSEC owners in canonical order
	nsec3     *nsec3Chain // nil unless the zone is signed with NSEC3

	// flatten is how its CNAMEs are answered (flatten.go), and flatKeys
	// sign those answers when the zone is signed.
	flatten  FlattenMode
	flatKeys []*Key

	// unavailable is set on an UnavailableZone: no data, every answer SERVFAIL.
	unavailable *unavailability
}

type nsecEntry struct {
	labels [][]byte
	node   *node
}

// nsec3Chain is the zone's NSEC3 records indexed by hashed owner.
type nsec3Chain struct {
	hash       uint8
	iterations uint16
	salt       string
	entries    []nsec3Entry // ascending hash
}

type nsec3Entry struct {
	hash string // upper-case base32hex, as dns.HashName returns
	set  *rrset
}

// buildError is a problem with one input record (index into the caller's
// slice, -1 for the zone as a whole).
type buildError struct {
	index int
	msg   string
}

// NewZone builds a zone from rrs and runs every check of check.go. Errors
// name the offending record. rrs is not modified or retained.
func NewZone(origin string, rrs []dns.RR) (*Zone, error) {
	return NewZoneWith(origin, rrs, ZoneOptions{})
}

// ZoneOptions are the choices of how a zone is served that change what
// its data may hold.
type ZoneOptions struct {
	// Flatten answers CNAMEs with their targets' addresses (flatten.go),
	// which lets the apex hold a CNAME beside its SOA and NS.
	Flatten FlattenMode
	// FlattenKeys sign the flattened answers of a signed zone online
	// (the keys that sign its data; an online signer passes its active
	// keys). A signed zone cannot be flattened without them.
	FlattenKeys []*Key
}

// NewZoneWith is NewZone with options.
func NewZoneWith(origin string, rrs []dns.RR, opts ZoneOptions) (*Zone, error) {
	z, berr := buildZone(origin, rrs, opts)
	if berr != nil {
		if berr.index >= 0 && berr.index < len(rrs) && rrs[berr.index] != nil {
			return nil, fmt.Errorf("zone %s: %s: %s", dnsname.Canonical(origin), berr.msg, rrs[berr.index].String())
		}
		return nil, fmt.Errorf("zone %s: %s", dnsname.Canonical(origin), berr.msg)
	}
	return z, nil
}

// buildZone is NewZone with errors that keep the record index, so that
// ParseZone can turn them into file:line.
func buildZone(origin string, in []dns.RR, opts ZoneOptions) (*Zone, *buildError) {
	if origin == "" {
		origin = "."
	}
	origin = dns.Fqdn(origin)
	if _, ok := dns.IsDomainName(origin); !ok || nameTooLong(origin) {
		return nil, &buildError{-1, fmt.Sprintf("bad origin %q", origin)}
	}
	origin = dnsname.Canonical(origin)
	z := &Zone{
		origin:    origin,
		originLen: dnsname.CountLabels(origin),
		nodes:     make(map[string]*node),
		nsTargets: make(map[string]bool),
		flatten:   opts.Flatten,
	}
	z.apex = z.nodeFor(origin)
	index := make(map[dns.RR]int, len(in))
	packBuf := make([]byte, dns.MaxMsgSize)
	var nsec3Sets = make(map[string]*rrset)

	for i, orig := range in {
		if orig == nil || orig.Header() == nil {
			return nil, &buildError{i, "empty record"}
		}
		rr := dns.Copy(orig)
		h := rr.Header()
		h.Name = dnsname.Canonical(h.Name)
		if h.Class != dns.ClassINET {
			return nil, &buildError{i, fmt.Sprintf("class %s is not IN", dns.Class(h.Class))}
		}
		if !dnsname.IsAtOrBelow(h.Name, origin) {
			return nil, &buildError{i, fmt.Sprintf("owner %s is outside the zone %s", h.Name, origin)}
		}
		switch h.Rrtype {
		case dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR, dns.TypeNone:
			return nil, &buildError{i, fmt.Sprintf("type %s cannot appear in a zone", dns.Type(h.Rrtype))}
		}
		// The zone parser lets some bad RDATA through (an odd-length hex
		// digest); such a record would fail every answer that holds it.
		packed, err := dns.PackRR(rr, packBuf, 0, nil, false)
		if err != nil {
			return nil, &buildError{i, fmt.Sprintf("record cannot be written to the wire: %v", err)}
		}
		index[rr] = i

		covered := h.Rrtype
		if sig, ok := rr.(*dns.RRSIG); ok {
			covered = sig.TypeCovered
		}
		// NSEC3 records and their signatures live beside the name tree:
		// their owners are hashes, not names that exist (RFC 5155 7.2.9).
		if covered == dns.TypeNSEC3 {
			if dnsname.Parent(h.Name) != origin {
				return nil, &buildError{i, "NSEC3 owner is not a hash label directly below the apex"}
			}
			s := nsec3Sets[h.Name]
			if s == nil {
				s = &rrset{}
				nsec3Sets[h.Name] = s
			}
			if s.add(rr) {
				z.records = append(z.records, rr)
			}
			continue
		}

		n := z.nodeFor(h.Name)
		s := n.sets[covered]
		if s == nil {
			s = &rrset{}
			n.sets[covered] = s
		}
		if s.add(rr) {
			z.records = append(z.records, rr)
			if !dnssecType(covered) {
				n.fp += maphash.Bytes(fingerprintSeed, packBuf[:packed])
			}
		}
	}

	for _, n := range z.nodes {
		for t, s := range n.sets {
			if len(s.rrs) > 0 {
				n.types = append(n.types, t)
			}
		}
		sort.Slice(n.types, func(a, b int) bool { return n.types[a] < n.types[b] })
		if s := n.set(dns.TypeCNAME); s != nil {
			n.cname = s.rrs[0].(*dns.CNAME)
		}
		if s := n.set(dns.TypeDNAME); s != nil {
			n.dname = s.rrs[0].(*dns.DNAME)
		}
		if n != z.apex && n.set(dns.TypeNS) != nil {
			n.cut = true
		}
		n.nsec = n.set(dns.TypeNSEC)
		if n.name != origin {
			if p := z.nodes[dnsname.Parent(n.name)]; p != nil && dnsname.FirstLabel(n.name) == "*" {
				p.wildcard = n
			}
		}
	}
	for _, n := range z.nodes {
		for a := n.name; a != origin; {
			a = dnsname.Parent(a)
			p := z.nodes[a]
			if p.cut {
				n.belowCut = true
			}
			if p.dname != nil && n.dnameAt == "" {
				n.dnameAt = a
			}
		}
	}

	if err := z.check(index, nsec3Sets); err != nil {
		return nil, err
	}
	z.soaSet = z.apex.set(dns.TypeSOA)
	z.soa = z.soaSet.rrs[0].(*dns.SOA)
	z.negTTL = min(z.soa.Hdr.Ttl, z.soa.Minttl)
	z.signed = z.apex.set(dns.TypeDNSKEY) != nil && hasSigs(z.apex)
	if z.signed && z.flatten != FlattenOff {
		// A flattened answer is made per query from another zone's data:
		// it must be signed then, with the keys of an online signer.
		if z.flatten == FlattenAll {
			// A NODATA answer at a name below the apex that holds a CNAME
			// cannot be proven: its NSEC names the CNAME.
			return nil, &buildError{-1, "flattening every CNAME of a signed zone is not supported (only the apex CNAME: flatten mode apex)"}
		}
		_, z.flatKeys = signKeyRoles(opts.FlattenKeys)
		if len(z.flatKeys) == 0 {
			return nil, &buildError{-1, "CNAME flattening of a pre-signed zone is not supported (flattened answers need online signing: --sign)"}
		}
	}

	z.indexNSEC()
	if err := z.indexNSEC3(nsec3Sets, index); err != nil {
		return nil, err
	}
	return z, nil
}

// nodeFor returns the node for a canonical name in the zone, creating it
// and any missing ancestors (empty non-terminals) up to the apex.
func (z *Zone) nodeFor(name string) *node {
	n := z.nodes[name]
	if n != nil {
		return n
	}
	n = &node{name: name, sets: make(map[uint16]*rrset)}
	z.nodes[name] = n
	if name != z.origin {
		z.nodeFor(dnsname.Parent(name))
	}
	return n
}

// add puts rr (a record of the set's type, or an RRSIG covering it) into
// the set unless an identical one is there, and reports whether it did.
func (s *rrset) add(rr dns.RR) bool {
	list := &s.rrs
	if rr.Header().Rrtype == dns.TypeRRSIG {
		list = &s.sigs
	}
	for _, have := range *list {
		if dns.IsDuplicate(have, rr) {
			return false
		}
	}
	*list = append(*list, rr)
	return true
}

func hasSigs(n *node) bool {
	for _, s := range n.sets {
		if len(s.sigs) > 0 {
			return true
		}
	}
	return false
}

func (z *Zone) indexNSEC() {
	for _, n := range z.nodes {
		if n.nsec == nil {
			continue
		}
		labels, ok := dnsname.CanonicalLabels(n.name)
		if !ok {
			continue
		}
		z.nsecIndex = append(z.nsecIndex, nsecEntry{labels: labels, node: n})
	}
	sort.Slice(z.nsecIndex, func(a, b int) bool {
		return dnsname.CompareLabels(z.nsecIndex[a].labels, z.nsecIndex[b].labels) < 0
	})
}

// indexNSEC3 builds the hash-ordered chain for the parameters the apex
// NSEC3PARAM names (or, without one, those of the first NSEC3 record), and
// precomputes the hash of every name in the tree so that answers only hash
// names that do not exist.
func (z *Zone) indexNSEC3(sets map[string]*rrset, index map[dns.RR]int) *buildError {
	if len(sets) == 0 {
		return nil
	}
	c := &nsec3Chain{}
	if p := z.apex.set(dns.TypeNSEC3PARAM); p != nil {
		param := p.rrs[0].(*dns.NSEC3PARAM)
		c.hash, c.iterations, c.salt = param.Hash, param.Iterations, param.Salt
	} else {
		first := ""
		for owner, s := range sets {
			if len(s.rrs) > 0 && (first == "" || owner < first) {
				first = owner
			}
		}
		if first == "" {
			return nil
		}
		rr := sets[first].rrs[0].(*dns.NSEC3)
		c.hash, c.iterations, c.salt = rr.Hash, rr.Iterations, rr.Salt
	}
	if c.hash != dns.SHA1 {
		return &buildError{-1, fmt.Sprintf("NSEC3 hash algorithm %d is not supported", c.hash)}
	}
	for owner, s := range sets {
		if len(s.rrs) == 0 {
			continue
		}
		rr := s.rrs[0].(*dns.NSEC3)
		if rr.Hash != c.hash || rr.Iterations != c.iterations || !equalFoldHex(rr.Salt, c.salt) {
			continue
		}
		c.entries = append(c.entries, nsec3Entry{hash: upperASCII(dnsname.FirstLabel(owner)), set: s})
	}
	sort.Slice(c.entries, func(a, b int) bool { return c.entries[a].hash < c.entries[b].hash })
	for _, n := range z.nodes {
		n.nsec3h = c.hashName(n.name)
	}
	z.nsec3 = c
	return nil
}

func (c *nsec3Chain) hashName(name string) string {
	return dns.HashName(name, c.hash, c.iterations, c.salt)
}

func upperASCII(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if ch >= 'a' && ch <= 'z' {
			b[i] = ch - ('a' - 'A')
		}
	}
	return string(b)
}

func equalFoldHex(a, b string) bool {
	return upperASCII(a) == upperASCII(b)
}

// Origin returns the zone's apex as a canonical lower-case FQDN.
func (z *Zone) Origin() string { return z.origin }

// Records returns every record of the zone (owner names in canonical form:
// ASCII lower-cased, other octets as \DDD escapes; duplicates removed) as
// fresh copies the caller may change.
func (z *Zone) Records() []dns.RR {
	if z.patched {
		z.recordsOnce.Do(z.collectRecords)
	}
	out := make([]dns.RR, len(z.records))
	for i, rr := range z.records {
		out[i] = dns.Copy(rr)
	}
	return out
}

// Signed reports whether the zone is DNSSEC-signed: its apex has a DNSKEY
// RRset and RRSIGs.
func (z *Zone) Signed() bool { return z.signed }

// SOA returns a copy of the zone's SOA record (nil for an UnavailableZone).
func (z *Zone) SOA() *dns.SOA {
	if z.soa == nil {
		return nil
	}
	return dns.Copy(z.soa).(*dns.SOA)
}
