package resolver

import (
	"errors"
	"fmt"

	"github.com/miekg/dns"
)

// errDNAMETooLong is a DNAME substitution longer than 255 octets: the
// answer is YXDOMAIN (RFC 6672 2.2).
var errDNAMETooLong = errors.New("DNAME substitution longer than 255 octets")

// substituteDNAME replaces the owner suffix of name (strictly below owner,
// both canonical) by the DNAME target (RFC 6672 2.2).
func substituteDNAME(name, owner, target string) (string, error) {
	if !strictSubdomain(name, owner) {
		return "", fmt.Errorf("%s is not below the DNAME at %s", name, owner)
	}
	prefix := name[:len(name)-len(owner)]
	out := prefix + target
	if target == "." {
		out = prefix
	}
	var buf [2 * 256]byte // wire form of at most 255 + 255 octets
	n, err := dns.PackDomainName(out, buf[:], 0, nil, false)
	switch {
	case err != nil:
		return "", fmt.Errorf("%s via the DNAME at %s: %q is not a domain name: %w", name, owner, out, err)
	case n > 255: // packing does not check the RFC 1035 limit
		return "", fmt.Errorf("%s via the DNAME at %s: %w", name, owner, errDNAMETooLong)
	}
	return out, nil
}

// dnameFromCache answers q below a cached DNAME as an authoritative server
// would (RFC 6672 3.2): the DNAME with its signatures, then the CNAME it
// implies for q.name (TTL that of the DNAME), then a restart at the target
// (or the end, for a CNAME question). The DNAME comes before any data
// cached at q.name itself: nothing may exist below a DNAME owner (RFC 6672
// 2.3), so such data is stale or broke that rule. The synthesised CNAME is
// never cached: it is as good as the DNAME it came from, whose cache entry
// carries the validation state (rrset.synthesised). A substitution over
// 255 octets answers YXDOMAIN.
func (r *Resolver) dnameFromCache(q question) (*step, bool) {
	owner, e, ok := r.cache.ClosestAbove(q.name, dns.TypeDNAME, q.qclass)
	if !ok || e.Failure() || len(e.RRs) != 1 {
		return nil, false
	}
	dn, ok := e.RRs[0].(*dns.DNAME)
	if !ok {
		return nil, false
	}
	ttl := r.cache.Remaining(e)
	sets := []rrset{cachedSet(owner, dns.TypeDNAME, e, ttl)}
	target, err := substituteDNAME(q.name, owner, canonical(dn.Target))
	switch {
	case errors.Is(err, errDNAMETooLong):
		return &step{rcode: dns.RcodeYXDomain, sets: sets}, true
	case err != nil:
		return nil, false // the servers can say what they make of it
	}
	sets = append(sets, rrset{name: q.name, rtype: dns.TypeCNAME, synthesised: true, rrs: []dns.RR{&dns.CNAME{
		Hdr:    dns.RR_Header{Name: q.name, Rrtype: dns.TypeCNAME, Class: q.qclass, Ttl: ttl},
		Target: target,
	}}})
	if q.qtype == dns.TypeCNAME {
		return &step{rcode: dns.RcodeSuccess, sets: sets}, true
	}
	return &step{sets: sets, next: target}, true
}
