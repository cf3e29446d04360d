package resolver

import (
	"net/netip"
	"slices"

	"github.com/miekg/dns"
)

// rootServers is the root name-server set from the hints.
type rootServers struct {
	ns    []string                // canonical NS names
	addrs map[string][]netip.Addr // by canonical NS name
}

// delegation is a zone and its name servers, where iteration stands.
type delegation struct {
	zone string
	ns   []string // canonical NS names
	// hints are addresses known without the cache (the root hints).
	hints map[string][]netip.Addr
}

// closestDelegation returns the deepest cached delegation for name, or the
// root from the hints. For DS, which the parent serves, a delegation at
// name itself is skipped.
func (r *Resolver) closestDelegation(name string, qtype, qclass uint16) delegation {
	search := name
	if qtype == dns.TypeDS && name != "." {
		search = parentName(name)
	}
	if zone, e, ok := r.cache.ClosestNS(search, qclass); ok {
		d := delegation{zone: zone}
		for _, rr := range e.RRs {
			if ns, ok := rr.(*dns.NS); ok {
				d.ns = append(d.ns, canonical(ns.Ns))
			}
		}
		if zone == "." {
			// The hints stay a fallback behind the primed root NS set,
			// should its addresses expire or fail before it does.
			d.hints = r.roots.addrs
			for _, ns := range r.roots.ns {
				if !slices.Contains(d.ns, ns) {
					d.ns = append(d.ns, ns)
				}
			}
		}
		if len(d.ns) > 0 {
			return d
		}
	}
	r.rootMissing()
	return delegation{zone: ".", ns: r.roots.ns, hints: r.roots.addrs}
}

// knownAddrs returns the addresses of name server ns that the cache (or the
// hints) hold and the policy allows, and whether any address record (or a
// negative/failure entry) is known at all, so that a lookup would add
// nothing.
func (r *Resolver) knownAddrs(d delegation, ns string, qclass uint16) ([]netip.Addr, bool) {
	var out []netip.Addr
	settled := 0
	types := make([]uint16, 0, 2)
	if r.policy.ipv4 {
		types = append(types, dns.TypeA)
	}
	if r.policy.ipv6 {
		types = append(types, dns.TypeAAAA)
	}
	for _, t := range types {
		e, ok := r.cache.Get(ns, t, qclass)
		if !ok {
			continue
		}
		settled++
		for _, rr := range e.RRs {
			var a netip.Addr
			switch v := rr.(type) {
			case *dns.A:
				a, _ = netip.AddrFromSlice(v.A.To4())
			case *dns.AAAA:
				a, _ = netip.AddrFromSlice(v.AAAA)
			}
			if r.policy.allowed(a) {
				out = append(out, a.Unmap())
			}
		}
	}
	for _, a := range d.hints[ns] {
		if r.policy.allowed(a) && !slices.Contains(out, a.Unmap()) {
			out = append(out, a.Unmap())
		}
	}
	// The parent's glue, should the child's own address (which replaced
	// it in the cache) be wrong (issue 15 point 4, parentglue.go).
	glue, _ := r.glue.get(ns, qclass)
	for _, a := range glue {
		if r.policy.allowed(a) && !slices.Contains(out, a.Unmap()) {
			out = append(out, a.Unmap())
		}
	}
	return out, settled > 0 || len(d.hints[ns]) > 0 || len(glue) > 0
}

// addressless reports whether d, a delegation that is not the root, is
// of no use as it stands: every name server lies inside the zone (its
// address can only come as glue) and none has an address left, because
// the glue expired before the NS RRset (RFC 1034 5.3.3 lets each RRset
// live its own TTL).
func (r *Resolver) addressless(d delegation, qclass uint16) bool {
	if d.zone == "." || len(d.ns) == 0 {
		return false
	}
	for _, ns := range d.ns {
		if !isSubdomain(ns, d.zone) {
			return false // its address can be looked up
		}
		if addrs, _ := r.knownAddrs(d, ns, qclass); len(addrs) > 0 {
			return false
		}
		if _, known := r.glue.get(ns, qclass); known {
			return false // the parent gave no glue: asking it again will not help
		}
	}
	return true
}
