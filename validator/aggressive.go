package validator

import (
	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/security"
)

// Denial is what cached denial records prove about a question.
type Denial int

const (
	// DenialNone: the records prove nothing; ask upstream.
	DenialNone Denial = iota
	// DenialNXDOMAIN: the name does not exist (and no wildcard covers it).
	DenialNXDOMAIN
	// DenialNODATA: the name (or the wildcard that would answer it) exists
	// without the type.
	DenialNODATA
)

// AggressiveDenial implements the check of RFC 8198 (aggressive use of the
// DNSSEC-validated cache): given NSEC or NSEC3 records of zone that were
// validated Secure earlier (no signatures needed here) and are still within
// their TTL, does it follow that (qname, qtype) is NXDOMAIN or NODATA?
// Storing and finding the records is the cache's job.
//
// Opt-out spans, NSEC3 above the iteration limit and parent-side delegation
// records never prove anything here (RFC 8198 section 4.3; RFC 9276). NSEC3
// hashing is charged to b; err wraps ErrBudgetExhausted when it runs out.
func AggressiveDenial(qname string, qtype uint16, zone string, records []dns.RR, b *Budget) (Denial, error) {
	d, _, err := AggressiveProof(qname, qtype, zone, records, b)
	return d, err
}

// AggressiveProof is AggressiveDenial that also returns the records the
// proof used (the matching or covering record, the wildcard's, the closest
// encloser's), for the synthesised answer's authority section and for the
// caller to check that each is still validated in its cache.
func AggressiveProof(qname string, qtype uint16, zone string, records []dns.RR, b *Budget) (Denial, []dns.RR, error) {
	b = orDefault(b)
	qname = dns.Fqdn(qname)
	if !dnsname.IsAtOrBelow(qname, zone) {
		return DenialNone, nil, nil
	}
	d := collectDenial(records, zone)
	if len(d.nsec) > 0 {
		if used, res := nsecNODATA(d, qname, qtype); res.Status == security.Secure {
			return DenialNODATA, used, nil
		}
		if used, res := nsecNXDOMAIN(d, qname); res.Status == security.Secure {
			return DenialNXDOMAIN, used, nil
		}
		return DenialNone, nil, nil
	}
	s, _ := newNSEC3Set(d.nsec3, d.zone, b)
	if s == nil || s.iter > b.lim.MaxNSEC3Iterations {
		return DenialNone, nil, nil
	}
	used, res, err := nsec3NODATA(s, qname, qtype)
	if err != nil {
		return DenialNone, nil, err
	}
	if res.Status == security.Secure {
		return DenialNODATA, used, nil
	}
	used, res, err = nsec3NXDOMAIN(s, qname)
	if err != nil {
		return DenialNone, nil, err
	}
	if res.Status == security.Secure {
		return DenialNXDOMAIN, used, nil
	}
	return DenialNone, nil, nil
}
