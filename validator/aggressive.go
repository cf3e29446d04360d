package validator

import (
	"github.com/miekg/dns"
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
	b = orDefault(b)
	qname = dns.Fqdn(qname)
	if !isSubdomain(qname, zone) {
		return DenialNone, nil
	}
	d := collectDenial(records, zone)
	if len(d.nsec) > 0 {
		if _, res := nsecNODATA(d, qname, qtype); res.Status == security.Secure {
			return DenialNODATA, nil
		}
		if _, res := nsecNXDOMAIN(d, qname); res.Status == security.Secure {
			return DenialNXDOMAIN, nil
		}
		return DenialNone, nil
	}
	s, _ := newNSEC3Set(d.nsec3, d.zone, b)
	if s == nil || s.iter > b.lim.MaxNSEC3Iterations {
		return DenialNone, nil
	}
	_, res, err := nsec3NODATA(s, qname, qtype)
	if err != nil {
		return DenialNone, err
	}
	if res.Status == security.Secure {
		return DenialNODATA, nil
	}
	_, res, err = nsec3NXDOMAIN(s, qname)
	if err != nil {
		return DenialNone, err
	}
	if res.Status == security.Secure {
		return DenialNXDOMAIN, nil
	}
	return DenialNone, nil
}
