package resolver

import (
	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
)

// The structured answer: iteration hands the validator the RRsets it used,
// in chain order, each with the cache entry it was read from or stored as,
// and the entries behind the denial at the end; the resolver then marks
// exactly those entries with the states the validator returns (cache.Mark).
// Nothing is looked up again: a marked entry is the one the answer came
// from, or nothing is marked.

// rrset is one RRset of an answer (or of a reply to cache), with its
// signatures and the cache entry holding it.
type rrset struct {
	name string
	rrs  []dns.RR
	sigs []dns.RR
	// entry is the cache entry the set was read from or stored as; nil
	// when there is none (local data, data the cache did not keep).
	entry *cache.Entry
	rtype uint16
	// synthesised marks the CNAME a DNAME implies (RFC 6672 2.2): never
	// cached and unsigned, it is as good as the DNAME before it, whose
	// entry stands for it.
	synthesised bool
}

// flatten is the answer section of sets: each RRset, then its RRSIGs. A
// lone unsigned RRset is returned as it is (no copy).
func flatten(sets []rrset) []dns.RR {
	if len(sets) == 1 && len(sets[0].sigs) == 0 {
		return sets[0].rrs
	}
	n := 0
	for _, s := range sets {
		n += len(s.rrs) + len(s.sigs)
	}
	if n == 0 {
		return nil
	}
	out := make([]dns.RR, 0, n)
	for _, s := range sets {
		out = append(append(out, s.rrs...), s.sigs...)
	}
	return out
}

// entryRef is a cache entry with the key it is stored under: an RRset or
// NODATA entry (name, qtype, qclass), or the NXDOMAIN entry of name
// (nxdomain, RFC 8020).
type entryRef struct {
	name          string
	qtype, qclass uint16
	nxdomain      bool
	entry         *cache.Entry
}

// denial is what stands behind a negative answer (NXDOMAIN, NODATA); a
// positive answer has none (nil).
type denial struct {
	// ref is the negative cache entry the answer was read from or stored
	// as: NODATA for the question's type, or NXDOMAIN for the name (RFC
	// 8020). Its entry is nil when the cache keeps none (no SOA, RFC 2308
	// 5).
	ref entryRef
	// secure marks a denial synthesised from validated NSEC/NSEC3 ranges
	// (RFC 8198), secure without a signature check.
	secure bool
}

// entrylessDenial stands behind a negative answer whose entries nobody
// marks: local answers, and every answer when validation is off. It is
// shared and never modified, so that those cost no allocation.
var entrylessDenial = &denial{}
