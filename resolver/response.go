package resolver

import (
	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
)

// replyKind is what an upstream reply means for the question asked.
type replyKind uint8

const (
	// kindLame: an upward or sideways referral, a reply without AA that
	// neither answers nor denies with an SOA, or data that does not answer
	// the question. Try another server.
	kindLame replyKind = iota
	// kindRcodeError: SERVFAIL, REFUSED, FORMERR, NOTIMP, ... Try another.
	kindRcodeError
	// kindAnswer: data (possibly a CNAME/DNAME chain), with or without AA.
	kindAnswer
	// kindNXDomain: name error, authoritative or with the zone's SOA.
	kindNXDomain
	// kindNoData: NOERROR without the data, authoritative or with the
	// zone's SOA.
	kindNoData
	// kindReferral: a delegation to a zone below the one asked, above or at
	// the query name.
	kindReferral
	// kindYXDomain: authoritative YXDOMAIN whose chain from the query name
	// ends below a DNAME of the zone with a substitution longer than 255
	// octets (RFC 6672 2.2): final, the DNAME is the answer.
	kindYXDomain
)

func (k replyKind) String() string {
	switch k {
	case kindLame:
		return "lame"
	case kindRcodeError:
		return "rcode error"
	case kindAnswer:
		return "answer"
	case kindNXDomain:
		return "NXDOMAIN"
	case kindNoData:
		return "NODATA"
	case kindReferral:
		return "referral"
	case kindYXDomain:
		return "YXDOMAIN"
	}
	return "unknown"
}

// classify tells what reply m from a server of zone means for the question
// qname/qtype (canonical names; m canonicalised). For a referral it also
// returns the child zone.
func classify(m *dns.Msg, zone, qname string, qtype uint16) (replyKind, string) {
	switch m.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	case dns.RcodeYXDomain:
		if m.Authoritative && endsInLongDNAME(m, zone, qname, qtype) {
			return kindYXDomain, ""
		}
		return kindRcodeError, ""
	default:
		return kindRcodeError, ""
	}
	if answersQuestion(m, zone, qname, qtype) {
		// With or without AA: a reply from a server we were sent to that
		// answers the question is the answer, as in Unbound and Knot
		// Resolver. Without AA it ranks below authoritative data
		// (RFC 2181 5.4.1, answerRank) and DNSSEC still decides its
		// security.
		if m.Rcode == dns.RcodeNameError {
			// A CNAME chain ending in a name that does not exist.
			return kindNXDomain, ""
		}
		return kindAnswer, ""
	}
	if m.Rcode == dns.RcodeNameError {
		if m.Authoritative || nonAuthDenial(m, zone, qname) {
			return kindNXDomain, ""
		}
		return kindLame, ""
	}
	if m.Authoritative && hasSOA(m.Ns) {
		// An authoritative negative answer, even with the zone's NS
		// records beside the SOA.
		return kindNoData, ""
	}
	if child := referralChild(m, zone, qname); child != "" {
		if qtype == dns.TypeDS && child == qname {
			// DS lives on the parent side: a referral to the child for
			// its own DS is lame.
			return kindLame, ""
		}
		return kindReferral, child
	}
	if m.Authoritative || nonAuthDenial(m, zone, qname) {
		return kindNoData, ""
	}
	// No AA and neither data, a denial with its SOA nor a referral
	// below zone: an upward or sideways referral, or an empty reply.
	return kindLame, ""
}

// nonAuthDenial reports whether a reply without AA and without an answer
// is a negative answer all the same: it carries the SOA of zone (or below
// it, at or above qname) that makes a denial cacheable (RFC 2308 5), as
// Unbound and Knot Resolver accept. Without that SOA (an upward or
// sideways referral, an empty reply) the server is lame.
func nonAuthDenial(m *dns.Msg, zone, qname string) bool {
	if len(m.Answer) != 0 {
		return false
	}
	soa, _ := negativeSOA(m, zone, qname)
	return soa != nil
}

// answerRank is the cache rank of a reply's answer-section data
// (RFC 2181 5.4.1): below authoritative data without AA, so an
// authoritative copy replaces it and it never replaces one.
func answerRank(m *dns.Msg) cache.Rank {
	if m.Authoritative {
		return cache.RankAnswerAuth
	}
	return cache.RankAnswerNonAuth
}

// negativeRank is the cache rank of a negative answer: the authority
// section of an AA reply, or below every authoritative rank without AA.
func negativeRank(m *dns.Msg) cache.Rank {
	if m.Authoritative {
		return cache.RankAuthorityAuth
	}
	return cache.RankAnswerNonAuth
}

// endsInLongDNAME reports whether a YXDOMAIN reply is one RFC 6672 2.2
// allows: its chain from qname, within zone, reaches a name below a DNAME
// of zone whose substitution is longer than 255 octets. Any other
// YXDOMAIN (no such DNAME, or one whose substitution fits) is a server
// error.
func endsInLongDNAME(m *dns.Msg, zone, qname string, qtype uint16) bool {
	qclass := uint16(dns.ClassINET)
	if len(m.Question) == 1 {
		qclass = m.Question[0].Qclass
	}
	ch, err := followChain(m, zone, qname, qtype, qclass)
	return err == nil && ch.yxdomain
}

// answersQuestion reports whether the answer section holds data for qname:
// the asked type, a CNAME at qname or a DNAME above it within zone.
func answersQuestion(m *dns.Msg, zone, qname string, qtype uint16) bool {
	for _, rr := range m.Answer {
		h := rr.Header()
		switch {
		case h.Name == qname && (h.Rrtype == qtype || qtype == dns.TypeANY || h.Rrtype == dns.TypeCNAME):
			return true
		case h.Rrtype == dns.TypeDNAME && strictSubdomain(qname, h.Name) && isSubdomain(h.Name, zone):
			return true
		}
	}
	return false
}

// referralChild returns the delegated zone if m is a referral from a server
// of zone: no answer, NS records in the authority section whose owner is
// below zone and at or above qname. Upward and sideways referrals give "".
func referralChild(m *dns.Msg, zone, qname string) string {
	if len(m.Answer) != 0 {
		return ""
	}
	child := ""
	for _, rr := range m.Ns {
		if rr.Header().Rrtype != dns.TypeNS {
			continue
		}
		owner := rr.Header().Name
		if !strictSubdomain(owner, zone) || !isSubdomain(qname, owner) {
			return ""
		}
		if child != "" && owner != child {
			return ""
		}
		child = owner
	}
	return child
}

// rrsOf returns the records of section with owner name and type t (every
// type but RRSIG for ANY).
func rrsOf(section []dns.RR, name string, t, class uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range section {
		h := rr.Header()
		if (h.Rrtype == t || t == dns.TypeANY && h.Rrtype != dns.TypeRRSIG) && h.Name == name && h.Class == class {
			out = append(out, rr)
		}
	}
	return out
}

// sigsOf returns the RRSIGs in section over name/t (over every type at
// name for ANY, as rrsOf takes every type: the validator needs them).
func sigsOf(section []dns.RR, name string, t uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range section {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.Hdr.Name == name && (sig.TypeCovered == t || t == dns.TypeANY) {
			out = append(out, rr)
		}
	}
	return out
}

// minTTL returns the smallest TTL of rrs (0 for none).
func minTTL(rrs []dns.RR) uint32 {
	var m uint32
	for i, rr := range rrs {
		if t := rr.Header().Ttl; i == 0 || t < m {
			m = t
		}
	}
	return m
}

// negativeSOA finds the SOA that makes a negative answer for name from a
// server of zone cacheable (RFC 2308 5): its owner must be at or above name
// and within zone. It returns the SOA and the negative TTL, min(SOA TTL,
// SOA MINIMUM).
func negativeSOA(m *dns.Msg, zone, name string) (*dns.SOA, uint32) {
	for _, rr := range m.Ns {
		soa, ok := rr.(*dns.SOA)
		if !ok {
			continue
		}
		if isSubdomain(name, soa.Hdr.Name) && isSubdomain(soa.Hdr.Name, zone) {
			return soa, min(soa.Hdr.Ttl, soa.Minttl)
		}
	}
	return nil, 0
}

// hasSOA reports whether section holds an SOA record.
func hasSOA(section []dns.RR) bool {
	for _, rr := range section {
		if rr.Header().Rrtype == dns.TypeSOA {
			return true
		}
	}
	return false
}
