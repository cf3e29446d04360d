package resolver

import (
	"errors"
	"fmt"

	"github.com/miekg/dns"
)

// chainResult is what an authoritative answer says about a question.
type chainResult struct {
	// sets are the chain in order (CNAMEs, DNAMEs with their synthesised
	// CNAMEs, then the final RRset), with signatures; all but the
	// synthesised CNAMEs are owned within the zone and cached.
	sets []rrset
	// final is the last name of the chain within the reply.
	final string
	// done is true when the final RRset was found.
	done bool
	// next, if set, is a CNAME/DNAME target the reply could not answer
	// (outside the zone's bailiwick, or not included): resolve it anew.
	next string
	// hops is the number of CNAME/DNAME hops taken.
	hops int
	// yxdomain is true when the chain ends below a DNAME whose
	// substitution is longer than 255 octets and the server said so
	// (RCODE YXDOMAIN, RFC 6672 2.2): the DNAME, last in answer, is the
	// final answer.
	yxdomain bool
}

// maxChainInReply bounds the hops followed inside one reply; the client's
// Budget bounds them across replies.
const maxChainInReply = 16

// followChain walks an authoritative answer from a server of zone, starting
// at qname: the asked RRset, else a CNAME at the name, else a DNAME above it
// (RFC 6672, synthesising the CNAME). Only records owned within zone are
// used (the rest is unsolicited and dropped), and a chain that leaves the
// zone stops there, to be resolved from that zone's own servers.
func followChain(m *dns.Msg, zone, qname string, qtype, qclass uint16) (*chainResult, error) {
	res := &chainResult{final: qname}
	cur := qname
	seen := map[string]bool{cur: true}
	for range maxChainInReply {
		if qtype == dns.TypeCNAME {
			// The CNAME for a name below a DNAME is the synthesised one:
			// answer with the signed DNAME beside it, and cache only the
			// DNAME (see below).
			dn, cname, err := synthesiseDNAME(m, zone, cur, qclass)
			if err != nil {
				return nil, err
			}
			if dn != nil && cname == nil {
				return endYXDomain(res, m, dn, cur)
			}
			if dn != nil {
				res.addDNAME(m, dn, cname)
				res.final, res.done = cur, true
				return res, nil
			}
		}
		if set := rrsOf(m.Answer, cur, qtype, qclass); len(set) > 0 {
			res.sets = append(res.sets, rrset{name: cur, rtype: qtype, rrs: set, sigs: sigsOf(m.Answer, cur, qtype)})
			res.final, res.done = cur, true
			return res, nil
		}
		// A DNAME above cur comes first: the server's CNAME for cur is
		// synthesised and unsigned (RFC 6672 5.3.1), so the answer carries
		// the signed DNAME for the validator. The synthesised CNAME is not
		// cached: from the cache alone it could not be validated.
		dn, cname, err := synthesiseDNAME(m, zone, cur, qclass)
		if err != nil {
			return nil, err
		}
		if dn != nil && cname == nil {
			return endYXDomain(res, m, dn, cur)
		}
		target := ""
		if dn != nil {
			res.addDNAME(m, dn, cname)
			target = cname.Target
		}
		if target == "" && qtype != dns.TypeCNAME {
			if cn := rrsOf(m.Answer, cur, dns.TypeCNAME, qclass); len(cn) > 0 {
				target = cn[0].(*dns.CNAME).Target
				for _, rr := range cn[1:] {
					if rr.(*dns.CNAME).Target != target {
						return nil, &Error{EDE: dns.ExtendedErrorCodeInvalidData, Text: fmt.Sprintf("several CNAMEs at %s", cur), Cacheable: true}
					}
				}
				cn = cn[:1] // duplicates of one record are one record
				res.sets = append(res.sets, rrset{name: cur, rtype: dns.TypeCNAME, rrs: cn, sigs: sigsOf(m.Answer, cur, dns.TypeCNAME)})
			}
		}
		if target == "" {
			// Nothing more for cur in this reply.
			return res, nil
		}
		res.hops++
		if seen[target] {
			return nil, &Error{EDE: dns.ExtendedErrorCodeOther, Text: fmt.Sprintf("CNAME loop at %s", target), Cacheable: true}
		}
		seen[target] = true
		res.final = target
		if !isSubdomain(target, zone) {
			res.next = target
			return res, nil
		}
		cur = target
	}
	return nil, budgetError("CNAME chain longer than %d in one reply", maxChainInReply)
}

// endYXDomain ends the chain at cur, below dn, whose substitution is
// longer than 255 octets: with RCODE YXDOMAIN the DNAME (and its RRSIGs)
// is the answer, cached like any DNAME; with any other RCODE the server
// broke RFC 6672 2.2.
func endYXDomain(res *chainResult, m *dns.Msg, dn *dns.DNAME, cur string) (*chainResult, error) {
	if m.Rcode != dns.RcodeYXDomain {
		return nil, &Error{EDE: dns.ExtendedErrorCodeInvalidData, Cacheable: true,
			Text: fmt.Sprintf("DNAME substitution of %s via %s is longer than 255 octets, but the RCODE is %s, not YXDOMAIN",
				cur, dn.Hdr.Name, dns.RcodeToString[m.Rcode])}
	}
	res.addDNAME(m, dn, nil)
	res.final, res.yxdomain = cur, true
	return res, nil
}

// addDNAME appends the DNAME dn with its signatures and, unless nil, the
// CNAME it implies (synthesised: not cached, the DNAME stands for it).
func (res *chainResult) addDNAME(m *dns.Msg, dn *dns.DNAME, cname *dns.CNAME) {
	res.sets = append(res.sets, rrset{name: dn.Hdr.Name, rtype: dns.TypeDNAME, rrs: []dns.RR{dn}, sigs: sigsOf(m.Answer, dn.Hdr.Name, dns.TypeDNAME)})
	if cname != nil {
		res.sets = append(res.sets, rrset{name: cname.Hdr.Name, rtype: dns.TypeCNAME, rrs: []dns.RR{cname}, synthesised: true})
	}
}

// answer is the chain as an answer section.
func (res *chainResult) answer() []dns.RR { return flatten(res.sets) }

// synthesiseDNAME finds a DNAME owned above cur within zone and returns it
// with the CNAME it implies for cur (RFC 6672 2.2), or nil. A result longer
// than 255 octets returns the DNAME without a CNAME (YXDOMAIN); a result
// that is not a name is an error.
func synthesiseDNAME(m *dns.Msg, zone, cur string, qclass uint16) (*dns.DNAME, *dns.CNAME, error) {
	for _, rr := range m.Answer {
		dn, ok := rr.(*dns.DNAME)
		if !ok || dn.Hdr.Class != qclass || !strictSubdomain(cur, dn.Hdr.Name) || !isSubdomain(dn.Hdr.Name, zone) {
			continue
		}
		target, err := substituteDNAME(cur, dn.Hdr.Name, dn.Target)
		if errors.Is(err, errDNAMETooLong) {
			return dn, nil, nil
		}
		if err != nil {
			return nil, nil, &Error{EDE: dns.ExtendedErrorCodeInvalidData, Text: "DNAME substitution: " + err.Error(), Cacheable: true}
		}
		cname := &dns.CNAME{
			Hdr:    dns.RR_Header{Name: cur, Rrtype: dns.TypeCNAME, Class: qclass, Ttl: dn.Hdr.Ttl},
			Target: target,
		}
		return dn, cname, nil
	}
	return nil, nil, nil
}
