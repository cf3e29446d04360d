package resolver

import (
	"context"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/validator"
)

// answerParts splits a finished answer into its RRsets (RRSIGs left out)
// and the name its CNAME chain ends at.
func answerParts(q dns.Question, answer []dns.RR) (sets [][]dns.RR, final string) {
	for _, rr := range answer {
		h := rr.Header()
		if h.Rrtype == dns.TypeRRSIG {
			continue
		}
		i := 0
		for ; i < len(sets); i++ { // answers hold a few RRsets: a scan beats a map
			s := sets[i][0].Header()
			if s.Rrtype == h.Rrtype && equalFold(s.Name, h.Name) {
				break
			}
		}
		if i == len(sets) {
			sets = append(sets, nil)
		}
		sets[i] = append(sets[i], rr)
	}
	final = canonical(q.Name)
	for range len(sets) + 1 { // bounded by the number of RRsets
		next := ""
		for _, set := range sets {
			if c, ok := set[0].(*dns.CNAME); ok && canonical(c.Hdr.Name) == final && q.Qtype != dns.TypeCNAME {
				next = canonical(c.Target)
				break
			}
		}
		if next == "" {
			break
		}
		final = next
	}
	return sets, final
}

// negativeAt reports whether the answer ends without data at final, so
// that a negative cache entry stands behind it.
func negativeAt(q dns.Question, rcode int, sets [][]dns.RR, final string) bool {
	switch rcode {
	case dns.RcodeNameError:
		return true
	case dns.RcodeYXDomain:
		return false // the DNAME's entry stands for the answer
	}
	for _, set := range sets {
		h := set[0].Header()
		if canonical(h.Name) == final && (h.Rrtype == q.Qtype || q.Qtype == dns.TypeANY) {
			return false
		}
	}
	return true
}

// sameRRs reports whether entry holds exactly the records of set (TTLs
// aside): the answer was built from this entry.
func sameRRs(entry, set []dns.RR) bool {
	if len(entry) != len(set) {
		return false
	}
	for _, rr := range set {
		found := false
		for _, e := range entry {
			if dns.IsDuplicate(rr, e) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// cachedEntries finds the cache entries an answer was built from: one per
// RRset (a CNAME synthesised from a DNAME of the answer has none: the
// DNAME's stands for it), and the negative entry at the end of the chain,
// or, when the question synthesised that denial from validated NSEC/NSEC3
// records (st, may be nil), a Secure entry standing for it. ok is false
// when any is missing or holds other data.
func (r *Resolver) cachedEntries(q dns.Question, rcode int, answer []dns.RR, st *dnssecState) (entries []*cache.Entry, ok bool) {
	sets, final := answerParts(q, answer)
	for _, set := range sets {
		if synthesisedCNAME(set, sets) {
			continue // the DNAME's entry stands for it
		}
		h := set[0].Header()
		e, found := r.cache.Get(canonical(h.Name), h.Rrtype, q.Qclass)
		if !found || e.Negative() || e.Failure() || !sameRRs(e.RRs, set) {
			return nil, false
		}
		entries = append(entries, e)
	}
	if negativeAt(q, rcode, sets, final) {
		if st.wasSynthesised(final, q.Qtype, q.Qclass, rcode) {
			return append(entries, &cache.Entry{Rcode: rcode, Security: security.Secure}), true
		}
		e, found := r.cache.Get(final, q.Qtype, q.Qclass)
		if (!found || e.Rcode != rcode) && rcode == dns.RcodeNameError {
			e, found = r.cache.Get(final, nxdomainType, q.Qclass)
		}
		if !found || !e.Negative() || e.Rcode != rcode {
			return nil, false
		}
		entries = append(entries, e)
	}
	return entries, len(entries) > 0
}

// cachedStatus answers for an answer built wholly from cache entries that
// a validation already marked (and denials st synthesised from validated
// records): their worst state, without checking a signature again. ok is
// false when anything is unmarked.
func (r *Resolver) cachedStatus(q dns.Question, rcode int, answer []dns.RR, st *dnssecState) (security.Status, *Error, bool) {
	entries, ok := r.cachedEntries(q, rcode, answer, st)
	if !ok {
		return 0, nil, false
	}
	worst := entries[0]
	for _, e := range entries {
		if e.Security == security.Indeterminate {
			return 0, nil, false
		}
		if e.Security.Worse(worst.Security) {
			worst = e
		}
	}
	switch {
	case worst.Security == security.Bogus:
		return security.Bogus, &Error{EDE: worst.EDE, Text: "cached bogus: " + worst.EDEText}, true
	case worst.EDE != 0:
		return worst.Security, &Error{EDE: worst.EDE, Text: worst.EDEText}, true
	}
	return worst.Security, nil, true
}

// markCache stores the result in the cache entries the answer came from:
// Security (so that cache hits keep it), the EDE of bogus and annotated
// insecure data, and a TTL no longer than the signatures allow
// (Result.TTL: RRSIG original TTL, signature expiration) or, for bogus
// data, the bogus TTL. Each entry gets the state of its own piece (parts):
// in a secure CNAME to an insecure or bogus target, the CNAME stays
// secure, and the next question through the chain, the worst of the
// marks, needs no signature check. When the pieces do not add up to the
// whole (the chain itself is wrong) or one is missing, only a single
// entry or an all-secure answer is marked, with the whole result.
func (r *Resolver) markCache(q dns.Question, rcode int, answer []dns.RR, res validator.Result, parts []validator.Part) {
	if res.Status == security.Indeterminate {
		return
	}
	entries, ok := r.cachedEntries(q, rcode, answer, nil)
	if !ok {
		return
	}
	results, byPart := entryResults(entries, res, parts)
	if !byPart && len(entries) > 1 && res.Status != security.Secure {
		return
	}
	c := r.cache
	for i, e := range entries {
		part := results[i]
		if part.Status == security.Indeterminate || part.Err != nil || e.Security == part.Status {
			// A piece cut short by this question's budget or a failed
			// key fetch is not remembered for others.
			continue
		}
		ttl := c.Remaining(e)
		switch {
		case part.Status == security.Bogus:
			ttl = min(ttl, uint32(maxBogusEntryTTL.Seconds()))
		case part.TTL > 0:
			ttl = min(ttl, part.TTL)
		}
		marked := *e
		marked.Security = part.Status
		if part.HasEDE() {
			marked.EDE, marked.EDEText = part.EDE, part.Reason
		}
		name, rtype := canonical(q.Name), q.Qtype
		switch {
		case len(e.RRs) > 0:
			name, rtype = canonical(e.RRs[0].Header().Name), e.RRs[0].Header().Rrtype
		default:
			_, name = answerParts(q, answer)
			if e.Rcode == dns.RcodeNameError {
				// Mark both the per-type entry and the RFC 8020 one.
				nx := marked
				c.Put(name, nxdomainType, q.Qclass, &nx, ttl)
			}
		}
		c.Put(name, rtype, q.Qclass, &marked, ttl)
	}
}

// entryResults pairs each cache entry with the validation of its piece.
// byPart is false, and every entry gets the whole result, when an entry
// has no Part or the worst Part is not the whole result (the chain was
// judged beyond its pieces).
func entryResults(entries []*cache.Entry, whole validator.Result, parts []validator.Part) (results []validator.Result, byPart bool) {
	results = make([]validator.Result, len(entries))
	worst := security.Secure
	byPart = true
	for i, e := range entries {
		p, ok := partOf(e, parts)
		if !ok {
			byPart = false
			break
		}
		results[i] = p.Result
		if p.Result.Status.Worse(worst) {
			worst = p.Result.Status
		}
	}
	if byPart && worst == whole.Status {
		return results, true
	}
	for i := range results {
		results[i] = whole
	}
	return results, false
}

// partOf finds the Part of a cache entry: an RRset entry's owner and type,
// or the denial for a negative entry.
func partOf(e *cache.Entry, parts []validator.Part) (validator.Part, bool) {
	for _, p := range parts {
		if len(e.RRs) == 0 {
			if p.Negative {
				return p, true
			}
			continue
		}
		h := e.RRs[0].Header()
		if !p.Negative && p.Type == h.Rrtype && equalFold(p.Name, h.Name) {
			return p, true
		}
	}
	return validator.Part{}, false
}

// cacheOnlySecurity gives an answer from the cache alone (RD=0, nothing
// asked upstream) its validation state from the cache marks. With
// validation on and CD=0, data no validation has marked is not given out
// (it may be bogus: a CD=1 resolution cached it); bogus data is SERVFAIL.
// b is the Budget the cache lookup drew from.
func (r *Resolver) cacheOnlySecurity(q dns.Question, res *Result, cd bool, b *Budget) *Result {
	if r.dnssec == nil || cd || !validatedRcode(res.Rcode) || r.answeredLocally(q) {
		return res
	}
	st, verr, ok := r.cachedStatus(q, res.Rcode, res.Answer, stateOf(b))
	switch {
	case !ok:
		return &Result{Rcode: dns.RcodeRefused, Err: errNotCached}
	case st == security.Bogus:
		return &Result{Rcode: dns.RcodeServerFailure, Security: st, Err: verr}
	}
	res.Security, res.Err = st, verr
	return res
}

// validatedCachedResult answers canonical q wholly from the cache when
// every part of the answer carries a validation mark that is not bogus,
// without a flight or a signature check; nil otherwise (bogus included:
// the full path gives its SERVFAIL).
func (r *Resolver) validatedCachedResult(ctx context.Context, q dns.Question) *Result {
	if r.dnssec == nil {
		return nil
	}
	r.maybeRefreshAnchors()
	b := newBudget(&r.limits, time.Now())
	res := r.cachedResultWith(ctx, q, b)
	if res == nil || !validatedRcode(res.Rcode) || r.answeredLocally(q) {
		return nil
	}
	st, verr, ok := r.cachedStatus(q, res.Rcode, res.Answer, stateOf(b))
	if !ok || st == security.Bogus {
		return nil
	}
	res.Security, res.Err = st, verr
	return res
}

// equalFold compares two domain names ignoring ASCII case.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
