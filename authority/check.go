package authority

import (
	"fmt"
	"sort"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// check runs the zone rules of RFC 1034/1035, 2181, 4592, 6672 and 5155
// over a built zone. The first problem found (in name order, so the error
// is stable) is returned with the index of the record that shows it.
func (z *Zone) check(index map[dns.RR]int, nsec3Sets map[string]*rrset) *buildError {
	at := func(rr dns.RR, format string, args ...any) *buildError {
		i, ok := index[rr]
		if !ok {
			i = -1
		}
		return &buildError{i, fmt.Sprintf(format, args...)}
	}

	soa := z.apex.set(dns.TypeSOA)
	if soa == nil {
		return &buildError{-1, "no SOA record at the apex " + z.origin}
	}
	if len(soa.rrs) > 1 {
		return at(soa.rrs[1], "more than one SOA record at the apex")
	}
	if z.apex.set(dns.TypeNS) == nil {
		return at(soa.rrs[0], "no NS records at the apex %s", z.origin)
	}

	names := make([]string, 0, len(z.nodes))
	for name := range z.nodes {
		names = append(names, name)
	}
	sort.Strings(names)

	for _, name := range names {
		n := z.nodes[name]
		if err := z.checkNode(n, at); err != nil {
			return err
		}
	}

	// NSEC and NSEC3 chains must not be mixed, and NSEC3 work per query
	// must stay bounded.
	var anyNSEC dns.RR
	for _, name := range names {
		if s := z.nodes[name].set(dns.TypeNSEC); s != nil {
			anyNSEC = s.rrs[0]
			break
		}
	}
	owners := make([]string, 0, len(nsec3Sets))
	for owner := range nsec3Sets {
		owners = append(owners, owner)
	}
	sort.Strings(owners)
	for _, owner := range owners {
		for _, rr := range nsec3Sets[owner].rrs {
			n3 := rr.(*dns.NSEC3)
			if anyNSEC != nil {
				return at(rr, "zone has both NSEC and NSEC3 records")
			}
			if n3.Iterations > MaxNSEC3Iterations {
				return at(rr, "NSEC3 iterations %d exceed the limit %d", n3.Iterations, MaxNSEC3Iterations)
			}
			if n3.Hash != dns.SHA1 {
				return at(rr, "NSEC3 hash algorithm %d is not supported", n3.Hash)
			}
		}
	}
	if p := z.apex.set(dns.TypeNSEC3PARAM); p != nil {
		for _, rr := range p.rrs {
			param := rr.(*dns.NSEC3PARAM)
			if param.Iterations > MaxNSEC3Iterations {
				return at(rr, "NSEC3PARAM iterations %d exceed the limit %d", param.Iterations, MaxNSEC3Iterations)
			}
			if param.Hash != dns.SHA1 {
				return at(rr, "NSEC3PARAM hash algorithm %d is not supported", param.Hash)
			}
		}
	}
	return nil
}

func (z *Zone) checkNode(n *node, at func(dns.RR, string, ...any) *buildError) *buildError {
	if s := n.set(dns.TypeSOA); s != nil && n != z.apex {
		return at(s.rrs[0], "SOA record below the apex")
	}

	// RFC 2181 10.1: a CNAME is alone at its name, apart from DNSSEC's
	// RRSIG and NSEC (RFC 4035 2.5).
	if s := n.set(dns.TypeCNAME); s != nil {
		if len(s.rrs) > 1 {
			return at(s.rrs[1], "more than one CNAME record at %s", n.name)
		}
		for _, t := range n.types {
			if t == dns.TypeCNAME || t == dns.TypeNSEC {
				continue
			}
			if n == z.apex && z.flatten != FlattenOff {
				// Flattened, the apex CNAME is never sent: the apex keeps
				// its SOA, NS and the rest, and answers the flattened
				// types from the target, so it cannot hold those itself.
				if flattenedType(t) || t == dns.TypeDNAME {
					return at(s.rrs[0], "%s beside the flattened CNAME at the apex %s (its %s answers come from the CNAME's target)", dns.Type(t), n.name, dns.Type(t))
				}
				continue
			}
			if n == z.apex {
				return at(s.rrs[0], "CNAME beside other data (%s) at the apex %s (a CNAME at the apex needs CNAME flattening: --flatten %s, or an HTTPS/SVCB record in alias mode)", dns.Type(t), n.name, n.name)
			}
			return at(s.rrs[0], "CNAME beside other data (%s) at %s", dns.Type(t), n.name)
		}
	}
	// RFC 6672 2.4: one DNAME per name, and no names below it.
	if s := n.set(dns.TypeDNAME); s != nil && len(s.rrs) > 1 {
		return at(s.rrs[1], "more than one DNAME record at %s", n.name)
	}
	if n.dnameAt != "" && !n.empty() {
		return at(n.sets[n.types[0]].rrs[0], "data below the DNAME at %s", n.dnameAt)
	}
	// RFC 4592 4.2, 4.4: wildcard NS and DNAME are not defined.
	if dnsname.FirstLabel(n.name) == "*" {
		if s := n.set(dns.TypeNS); s != nil {
			return at(s.rrs[0], "NS records at a wildcard name")
		}
		if s := n.set(dns.TypeDNAME); s != nil {
			return at(s.rrs[0], "DNAME record at a wildcard name")
		}
	}

	switch {
	case n.belowCut:
		// Only glue below a delegation point.
		for _, t := range n.types {
			if t != dns.TypeA && t != dns.TypeAAAA {
				return at(n.sets[t].rrs[0], "%s record below a delegation point (only glue A/AAAA may be there)", dns.Type(t))
			}
		}
	case n.cut:
		for _, t := range n.types {
			switch t {
			case dns.TypeNS, dns.TypeDS, dns.TypeNSEC, dns.TypeA, dns.TypeAAAA:
			default:
				return at(n.sets[t].rrs[0], "%s record at the delegation point %s (only NS, DS, NSEC and glue may be there)", dns.Type(t), n.name)
			}
		}
	default:
		if s := n.set(dns.TypeDS); s != nil {
			return at(s.rrs[0], "DS record at %s, which is not a delegation point", n.name)
		}
	}

	// Name servers inside the zone need addresses here (glue for those
	// under a delegation, authoritative A/AAAA for the others).
	if s := n.set(dns.TypeNS); s != nil {
		for _, rr := range s.rrs {
			target := dnsname.Canonical(rr.(*dns.NS).Ns)
			if !dnsname.IsAtOrBelow(target, z.origin) {
				continue
			}
			z.nsTargets[target] = true
			t := z.nodes[target]
			if t == nil || (t.set(dns.TypeA) == nil && t.set(dns.TypeAAAA) == nil) {
				return at(rr, "name server %s is inside the zone but has no A/AAAA (glue) record", target)
			}
		}
	}
	return nil
}
