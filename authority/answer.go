package authority

import (
	"sort"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// Limits of one answer.
const (
	// EDNSSize is the UDP payload size we advertise (DNS flag day 2020).
	EDNSSize = 1232
	// maxChain bounds the CNAME/DNAME hops followed inside a zone.
	maxChain = 8
)

// matchKind says where the lookup of a name in a zone ended.
type matchKind uint8

const (
	matchExact    matchKind = iota // the name exists (possibly an empty non-terminal)
	matchWildcard                  // the name does not exist; a wildcard at its closest encloser does
	matchReferral                  // the name is at or below a delegation point
	matchDNAME                     // an ancestor owns a DNAME
	matchNX                        // the name does not exist and no wildcard applies
)

type match struct {
	kind matchKind
	node *node  // exact or wildcard node, delegation point, DNAME owner
	ce   string // closest encloser (wildcard and NX)
}

// responder carries one response under construction.
type responder struct {
	m  *dns.Msg
	do bool
	// proofTTL caps the TTL of NSEC and NSEC3 records and their RRSIGs:
	// the zone's negative TTL (RFC 9077), whatever a pre-signed zone says.
	proofTTL int64
	// proofs already placed in the authority section, so that one NSEC or
	// NSEC3 that proves two things is sent once.
	proofs []*rrset
	// ede is the Extended DNS Error to add when the client speaks EDNS.
	ede *dns.EDNS0_EDE
	// flat is a flattened CNAME's answer for the Server to finish.
	flat *flatRequest
	// noFlatten follows flattened CNAMEs as CNAMEs: the Server's own
	// lookups of a target's chain, which must not flatten again.
	noFlatten bool
}

// lookup walks from the apex down to cn (canonical, inside the zone) as
// RFC 1034 4.3.2 step 3 does: the first delegation point or DNAME on the
// way wins; a missing label ends the walk at the closest encloser, where a
// wildcard may apply (RFC 4592 3.3.1: only when the name does not exist and
// no delegation is crossed).
func (z *Zone) lookup(cn string, qtype uint16) match {
	if cn == z.origin {
		return match{kind: matchExact, node: z.apex}
	}
	if z.apex.dname != nil {
		return match{kind: matchDNAME, node: z.apex}
	}
	offs := dns.Split(cn)
	ce := z.apex
	for i := len(offs) - z.originLen - 1; i >= 0; i-- {
		n := z.nodes[cn[offs[i]:]]
		if n == nil {
			if ce.wildcard != nil {
				return match{kind: matchWildcard, node: ce.wildcard, ce: ce.name}
			}
			return match{kind: matchNX, ce: ce.name}
		}
		if i == 0 {
			// A DS query at a delegation point is answered by the parent
			// side, authoritatively (RFC 4035 3.1.4.1).
			if n.cut && qtype != dns.TypeDS {
				return match{kind: matchReferral, node: n}
			}
			return match{kind: matchExact, node: n}
		}
		if n.cut {
			return match{kind: matchReferral, node: n}
		}
		if n.dname != nil {
			return match{kind: matchDNAME, node: n}
		}
		ce = n
	}
	// Not reached for names inside the zone.
	return match{kind: matchNX, ce: z.origin}
}

// answer fills r.m for the question (qname as asked, FQDN) from this zone.
func (z *Zone) answer(r *responder, qname string, qtype uint16) {
	m := r.m
	m.Authoritative = true
	r.proofTTL = int64(z.negTTL)
	name := qname
	var visited [maxChain]string
	for hop := 0; hop < maxChain; hop++ {
		cn := dnsname.Canonical(name)
		for _, v := range visited[:hop] {
			if v == cn {
				return // CNAME loop: stop with the chain so far
			}
		}
		visited[hop] = cn

		mt := z.lookup(cn, qtype)
		switch mt.kind {
		case matchReferral:
			if hop == 0 {
				m.Authoritative = false
			}
			z.referral(r, mt.node)
			return

		case matchDNAME:
			d := mt.node.dname
			r.addSet(&m.Answer, mt.node.set(dns.TypeDNAME), "")
			target := replaceSuffix(name, mt.node.name, d.Target)
			if nameTooLong(target) {
				m.Rcode = dns.RcodeYXDomain // RFC 6672 2.2
				return
			}
			// RFC 6672 3.1: the synthesised CNAME has the DNAME's TTL and
			// no signature.
			m.Answer = append(m.Answer, &dns.CNAME{
				Hdr:    dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: d.Hdr.Ttl},
				Target: target,
			})
			if qtype == dns.TypeCNAME || !dnsname.IsAtOrBelow(dnsname.Canonical(target), z.origin) {
				return
			}
			name = target

		case matchNX:
			m.Rcode = dns.RcodeNameError
			z.addNegativeSOA(r)
			if r.do {
				z.proveNXDomain(r, cn, mt.ce)
			}
			return

		case matchExact, matchWildcard:
			n := mt.node
			wild := mt.kind == matchWildcard
			// RFC 1034 4.3.2 3a: a CNAME is followed unless the type asked
			// matches it (ANY does) or is one of DNSSEC's types beside it.
			if n.cname != nil && z.flattens(n) && !(r.noFlatten && flattenedType(qtype)) && z.answerFlattened(r, n, name, qtype) {
				return
			}
			if n.cname != nil && qtype != dns.TypeCNAME && qtype != dns.TypeANY && qtype != dns.TypeRRSIG && qtype != dns.TypeNSEC {
				r.addSet(&m.Answer, n.set(dns.TypeCNAME), name)
				if wild && r.do {
					z.proveWildcardAnswer(r, cn, mt.ce)
				}
				target := dns.Fqdn(n.cname.Target)
				if !dnsname.IsAtOrBelow(dnsname.Canonical(target), z.origin) {
					return
				}
				name = target
				continue
			}
			if z.answerNode(r, n, name, qtype) {
				if wild && r.do {
					z.proveWildcardAnswer(r, cn, mt.ce)
				}
				return
			}
			z.addNegativeSOA(r)
			if r.do {
				if wild {
					z.proveWildcardNoData(r, cn, mt.ce, n)
				} else {
					z.proveNoData(r, cn, n)
				}
			}
			return
		}
	}
}

// answerNode adds the RRset of qtype at n (owner rewritten to name) and
// reports whether there was one.
func (z *Zone) answerNode(r *responder, n *node, name string, qtype uint16) bool {
	m := r.m
	switch qtype {
	case dns.TypeANY:
		// RFC 8482: one RRset is enough.
		for _, t := range n.types {
			if t != dns.TypeNSEC {
				qtype = t
				break
			}
		}
		if qtype == dns.TypeANY {
			return false
		}
	case dns.TypeRRSIG:
		// Asked for explicitly: every signature at the name.
		before := len(m.Answer)
		for _, t := range sortedSigTypes(n) {
			r.addRecords(&m.Answer, n.sets[t].sigs, name, keepTTL)
		}
		return len(m.Answer) > before
	}
	s := n.set(qtype)
	if s == nil {
		return false
	}
	r.addSet(&m.Answer, s, name)
	switch qtype {
	case dns.TypeNS:
		z.addAddresses(r, s)
	case dns.TypeSVCB, dns.TypeHTTPS:
		z.addServiceHints(r, s, dnsname.Canonical(name))
	}
	return true
}

func sortedSigTypes(n *node) []uint16 {
	var ts []uint16
	for t, s := range n.sets {
		if len(s.sigs) > 0 {
			ts = append(ts, t)
		}
	}
	sort.Slice(ts, func(a, b int) bool { return ts[a] < ts[b] })
	return ts
}

// referral adds the delegation at cut: its NS RRset, then with DO its DS
// RRset and signatures or the proof that it has none, and the addresses of
// its in-zone name servers.
func (z *Zone) referral(r *responder, cut *node) {
	m := r.m
	ns := cut.set(dns.TypeNS)
	r.addRecords(&m.Ns, ns.rrs, "", keepTTL)
	if r.do {
		if ds := cut.set(dns.TypeDS); ds != nil {
			r.addSet(&m.Ns, ds, "")
		} else {
			z.proveNoDS(r, cut)
		}
	}
	z.addAddresses(r, ns)
}

// addAddresses adds A and AAAA records of in-zone name servers to the
// additional section: glue (unsigned) or authoritative data (signed with DO).
func (z *Zone) addAddresses(r *responder, ns *rrset) {
	for _, rr := range ns.rrs {
		target := dnsname.Canonical(rr.(*dns.NS).Ns)
		if !dnsname.IsAtOrBelow(target, z.origin) {
			continue
		}
		n := z.nodes[target]
		if n == nil {
			continue
		}
		for _, t := range [2]uint16{dns.TypeA, dns.TypeAAAA} {
			s := n.set(t)
			if s == nil {
				continue
			}
			r.addRecords(&r.m.Extra, s.rrs, "", keepTTL)
			if r.do && !n.belowCut && !n.cut {
				r.addRecords(&r.m.Extra, s.sigs, "", keepTTL)
			}
		}
	}
}

// addNegativeSOA adds the SOA for a negative answer, its TTL lowered to
// the SOA MINIMUM when that is smaller (RFC 2308 3).
func (z *Zone) addNegativeSOA(r *responder) {
	r.addRecords(&r.m.Ns, z.soaSet.rrs, "", int64(z.negTTL))
	if r.do {
		r.addRecords(&r.m.Ns, z.soaSet.sigs, "", int64(z.negTTL))
	}
}

// keepTTL tells addRecords to keep the stored TTLs.
const keepTTL = -1

// addSet appends copies of s's records, and with DO its signatures, to
// sec. A non-empty owner replaces the stored owner name (query case,
// wildcard expansion).
func (r *responder) addSet(sec *[]dns.RR, s *rrset, owner string) {
	if s == nil {
		return
	}
	r.addRecords(sec, s.rrs, owner, keepTTL)
	if r.do {
		r.addRecords(sec, s.sigs, owner, keepTTL)
	}
}

// addRecords appends copies of rrs to sec: the zone's records are never
// handed out, so callers may change the response freely. TTLs above
// maxTTL are lowered to it, unless it is keepTTL (a lowered TTL does not
// break a signature: validators use the RRSIG's original TTL).
func (r *responder) addRecords(sec *[]dns.RR, rrs []dns.RR, owner string, maxTTL int64) {
	for _, rr := range rrs {
		c := dns.Copy(rr)
		if owner != "" {
			c.Header().Name = owner
		}
		if maxTTL != keepTTL && int64(c.Header().Ttl) > maxTTL {
			c.Header().Ttl = uint32(maxTTL)
		}
		*sec = append(*sec, c)
	}
}

// addProof adds an NSEC or NSEC3 RRset with its signatures to the
// authority section once.
func (r *responder) addProof(s *rrset) {
	if s == nil {
		return
	}
	for _, have := range r.proofs {
		if have == s {
			return
		}
	}
	r.proofs = append(r.proofs, s)
	r.addRecords(&r.m.Ns, s.rrs, "", r.proofTTL)
	r.addRecords(&r.m.Ns, s.sigs, "", r.proofTTL)
}
