package authority

import (
	"fmt"
	"slices"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// signNode is one owner name of a zone being signed, with its RRsets.
type signNode struct {
	name string
	sets map[uint16][]dns.RR
	// delegation: a zone cut below the apex (NS present).
	delegation bool
	// dname: a DNAME owner; names below it are not authoritative.
	dname bool
	// occluded: below a delegation or DNAME, so glue or dead data that is
	// neither signed nor in the denial chain.
	occluded bool
}

// types lists the node's RR types in ascending order.
func (n *signNode) types() []uint16 {
	ts := make([]uint16, 0, len(n.sets))
	for t := range n.sets {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

// add puts rr into its RRset unless an identical record is there already.
func (n *signNode) add(rr dns.RR) {
	t := rr.Header().Rrtype
	for _, old := range n.sets[t] {
		if dns.IsDuplicate(old, rr) {
			return
		}
	}
	n.sets[t] = append(n.sets[t], rr)
}

// signZone is the working form of a zone during Sign.
type signZone struct {
	origin string
	nodes  map[string]*signNode
	soa    *dns.SOA
	// negTTL is the TTL of NSEC/NSEC3 records: min(SOA TTL, SOA MINIMUM)
	// as RFC 9077 asks.
	negTTL uint32
	keyTTL uint32
}

// newSignZone copies the input records into nodes, adds the keys (and
// CDS/CDNSKEY if asked) and classifies every name.
func newSignZone(origin string, rrs []dns.RR, opts SignOptions) (*signZone, error) {
	z := &signZone{origin: origin, nodes: make(map[string]*signNode)}
	for _, rr := range rrs {
		if rr == nil {
			continue
		}
		h := rr.Header()
		switch h.Rrtype {
		case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3, dns.TypeNSEC3PARAM:
			continue // regenerated
		case dns.TypeCDS, dns.TypeCDNSKEY:
			if opts.PublishCDS || opts.CDSDelete {
				continue // regenerated
			}
		}
		name := dnsname.Canonical(h.Name)
		if !dnsname.IsAtOrBelow(name, origin) {
			return nil, fmt.Errorf("record %s is outside the zone", name)
		}
		if h.Class != dns.ClassINET {
			return nil, fmt.Errorf("record %s has class %s, want IN", name, dns.ClassToString[h.Class])
		}
		c := dns.Copy(rr)
		c.Header().Name = name
		z.node(name).add(c)
	}
	apex := z.nodes[origin]
	if apex == nil || len(apex.sets[dns.TypeSOA]) != 1 {
		return nil, fmt.Errorf("need exactly one SOA at the apex")
	}
	z.soa = apex.sets[dns.TypeSOA][0].(*dns.SOA)
	z.negTTL = min(z.soa.Hdr.Ttl, z.soa.Minttl)
	z.keyTTL = opts.KeyTTL
	if z.keyTTL == 0 {
		z.keyTTL = z.soa.Hdr.Ttl
	}
	for _, k := range opts.Keys {
		if slices.Contains(opts.Unpublished, k) {
			continue
		}
		c := dns.Copy(k.DNSKEY)
		c.Header().Name = origin
		apex.add(c)
	}
	var dnskeys []*dns.DNSKEY
	for _, rr := range apex.sets[dns.TypeDNSKEY] {
		rr.Header().Ttl = z.keyTTL
		dnskeys = append(dnskeys, rr.(*dns.DNSKEY))
	}
	switch {
	case opts.PublishCDS:
		for _, rr := range signCDSRecords(dnskeys, z.keyTTL) {
			apex.add(rr)
		}
	case opts.CDSDelete:
		for _, rr := range signCDSDeleteRecords(origin, z.keyTTL) {
			apex.add(rr)
		}
	}
	z.normalizeTTLs()
	if err := z.classify(); err != nil {
		return nil, err
	}
	return z, nil
}

// node returns the node for name, creating it.
func (z *signZone) node(name string) *signNode {
	n := z.nodes[name]
	if n == nil {
		n = &signNode{name: name, sets: make(map[uint16][]dns.RR)}
		z.nodes[name] = n
	}
	return n
}

// normalizeTTLs gives every RRset one TTL, the lowest of its records
// (RFC 2181 5.2), so that the RRSIG's original TTL fits every record.
func (z *signZone) normalizeTTLs() {
	for _, n := range z.nodes {
		for _, set := range n.sets {
			ttl := set[0].Header().Ttl
			for _, rr := range set[1:] {
				ttl = min(ttl, rr.Header().Ttl)
			}
			for _, rr := range set {
				rr.Header().Ttl = ttl
			}
		}
	}
}

// classify marks delegations, DNAME owners and occluded names.
func (z *signZone) classify() error {
	for name, n := range z.nodes {
		if name == z.origin {
			if len(n.sets[dns.TypeDS]) > 0 {
				return fmt.Errorf("DS at the apex")
			}
			continue
		}
		n.delegation = len(n.sets[dns.TypeNS]) > 0
		n.dname = len(n.sets[dns.TypeDNAME]) > 0
	}
	for name, n := range z.nodes {
		for p := dnsname.Parent(name); len(p) > len(z.origin); p = dnsname.Parent(p) {
			if a := z.nodes[p]; a != nil && (a.delegation || a.dname) {
				n.occluded = true
				break
			}
		}
		if !n.occluded && !n.delegation && len(n.sets[dns.TypeDS]) > 0 {
			return fmt.Errorf("DS at %s, which is not a delegation", name)
		}
	}
	return nil
}

// authoritativeNames lists, in canonical order, the names that own
// authoritative data: every non-occluded node, delegation points included.
func (z *signZone) authoritativeNames() []string {
	names := make([]string, 0, len(z.nodes))
	for name, n := range z.nodes {
		if !n.occluded {
			names = append(names, name)
		}
	}
	signSortNames(names)
	return names
}

// records returns every record of the zone, glue included.
func (z *signZone) records() []dns.RR {
	var out []dns.RR
	for _, n := range z.nodes {
		for _, set := range n.sets {
			out = append(out, set...)
		}
	}
	return out
}
