package resolver

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
)

// question is a canonical question.
type question struct {
	name          string
	qtype, qclass uint16
}

func (q question) String() string {
	return q.name + " " + dns.TypeToString[q.qtype]
}

// resolution is the state of one client question: its Budget, its tracer
// and the lookups in progress (for loop detection).
type resolution struct {
	r      *Resolver
	budget *Budget
	trace  Tracer
	active []question
	// cacheOnly answers from local data and the cache only (RD=0).
	cacheOnly bool
	// zoneProbes are the failed zones this question was let through to
	// re-probe (see admitZone); released when it ends.
	zoneProbes []zoneKey
	// staleWindow, when not 0, lets a cache-only lookup answer from data
	// expired less than that long ago (serve-stale, stale.go);
	// servedStale says it did.
	staleWindow time.Duration
	servedStale bool
	// refresh bypasses the cache for the question's own chain (depth 0):
	// a prefetch of data about to expire (prefetch.go).
	refresh bool
	// from is the server whose reply queryServers returned last.
	from netip.Addr
	// background is work no client asked for (priming, RFC 5011
	// refreshes): its failures are not cached for clients.
	background bool
}

// outcome is a finished lookup: the structured answer (see answer.go).
type outcome struct {
	rcode int
	// sets are the answer's RRsets in chain order, with their entries.
	sets      []rrset
	authority []dns.RR
	// denial stands behind a negative answer at the end of the chain.
	denial *denial
}

// answer is the answer section of o.
func (o *outcome) answer() []dns.RR { return flatten(o.sets) }

// step is one name's lookup: data, a negative answer, or a CNAME/DNAME
// target (next) to restart at.
type step struct {
	rcode     int
	sets      []rrset
	authority []dns.RR
	denial    *denial
	next      string
	// one holds the single RRset of a cache hit, so that the step and
	// its sets are one allocation on the hot path.
	one [1]rrset
}

// cachedStep is a step answered by the RRset of entry e (under
// name/rtype, with ttl left), restarting at next unless it is empty.
func cachedStep(name string, rtype uint16, e *cache.Entry, ttl uint32, next string) *step {
	st := &step{next: next}
	if next == "" {
		st.authority = cache.WithTTL(e.Authority, ttl)
	}
	st.one[0] = cachedSet(name, rtype, e, ttl)
	st.sets = st.one[:]
	return st
}

// answer is the answer section of st.
func (st *step) answer() []dns.RR { return flatten(st.sets) }

// lookup resolves q, following CNAME/DNAME chains across zones. depth is
// the sub-resolution nesting. Each RRset appears once in the answer: a
// chain that passes one DNAME twice carries it once (its synthesised
// CNAMEs differ). On a CNAME or DNAME loop it returns the chain up to the
// loop with the error (for a client that asked with CD).
func (rs *resolution) lookup(ctx context.Context, q question, depth int) (*outcome, error) {
	if err := rs.budget.checkDepth(depth); err != nil {
		return nil, err
	}
	for _, a := range rs.active {
		if a == q {
			return nil, &Error{EDE: dns.ExtendedErrorCodeNoReachableAuthority,
				Text: fmt.Sprintf("delegation loop: %s needs itself", q), Cacheable: true}
		}
	}
	rs.active = append(rs.active, q)
	defer func() { rs.active = rs.active[:len(rs.active)-1] }()

	out := &outcome{}
	seen := map[string]bool{q.name: true}
	cur := q
	for {
		st, err := rs.lookupName(ctx, cur, depth)
		if err != nil {
			return nil, err
		}
		if out.sets == nil {
			out.sets = st.sets // the common single step: no copy
		} else {
			out.sets = appendNew(out.sets, st.sets)
		}
		if st.next == "" {
			out.rcode, out.authority, out.denial = st.rcode, st.authority, st.denial
			return out, nil
		}
		if err := rs.budget.spendHop(); err != nil {
			return nil, err
		}
		if seen[st.next] {
			return out, &Error{EDE: dns.ExtendedErrorCodeOther, Text: fmt.Sprintf("CNAME loop at %s", st.next)}
		}
		seen[st.next] = true
		cur.name = st.next
	}
}

// appendNew appends to sets those of more that it does not hold yet (by
// owner and type; a synthesised CNAME, unique to its name, always).
func appendNew(sets, more []rrset) []rrset {
	for _, s := range more {
		dup := false
		for _, have := range sets {
			if !s.synthesised && have.rtype == s.rtype && have.name == s.name {
				dup = true
				break
			}
		}
		if !dup {
			sets = append(sets, s)
		}
	}
	return sets
}

// lookupName answers one name (no restarts): special-use names, then the
// cache, then iteration. Failures that RFC 9520 calls cacheable are cached.
func (rs *resolution) lookupName(ctx context.Context, q question, depth int) (*step, error) {
	if rs.r.special {
		if st, ok := specialAnswer(q); ok {
			return st, nil
		}
	}
	st, err := rs.lookupUpstream(ctx, q, depth)
	if rs.r.localhostFallback && isSubdomain(q.name, "localhost.") && err != errNotCached &&
		(err != nil || st.rcode == dns.RcodeNameError) {
		// The operator's root does not serve localhost: it is still
		// loopback (RFC 6761 6.3).
		return localhostAnswer(q), nil
	}
	return st, err
}

// lookupUpstream answers one name from the cache or by iteration.
func (rs *resolution) lookupUpstream(ctx context.Context, q question, depth int) (*step, error) {
	if !rs.refresh || depth > 0 {
		if st, err, ok := rs.r.fromCache(q); ok {
			return st, err
		}
		if st, ok := rs.r.cachedNXDomain(q.name, q.qclass); ok {
			return st, nil
		}
		if st, ok := rs.r.aggressiveDenial(q, rs.budget); ok {
			return st, nil // RFC 8198: inside a validated NSEC range
		}
	}
	if rs.staleWindow > 0 {
		if st, ok := rs.staleFromCache(q); ok {
			return st, nil
		}
	}
	if rs.cacheOnly {
		return nil, errNotCached
	}
	st, err := rs.iterate(ctx, q, depth)
	if err != nil {
		if e := asError(err); e.Cacheable && !e.fromCache && !rs.background {
			rs.r.cache.Put(q.name, q.qtype, q.qclass, &cache.Entry{
				Rcode: dns.RcodeServerFailure, EDE: e.EDE, EDEText: e.Text,
			}, 0)
		}
		return nil, err
	}
	return st, nil
}

// fromCache answers q from the cache: a DNAME above q.name (first: it
// speaks for every name below its owner), data, negative, a cached
// failure, or a CNAME to follow.
func (r *Resolver) fromCache(q question) (*step, error, bool) {
	if st, ok := r.dnameFromCache(q); ok {
		return st, nil, true
	}
	if e, ok := r.cache.Get(q.name, q.qtype, q.qclass); ok {
		ttl := r.cache.Remaining(e)
		switch {
		case e.Failure():
			return nil, &Error{EDE: dns.ExtendedErrorCodeCachedError, Text: "cached failure: " + e.EDEText}, true
		case e.Negative():
			return &step{rcode: e.Rcode, authority: cache.WithTTL(e.Authority, ttl),
				denial: r.cachedDenial(entryRef{q.name, q.qtype, q.qclass, false, e})}, nil, true
		default:
			return cachedStep(q.name, q.qtype, e, ttl, ""), nil, true
		}
	}
	if q.qtype == dns.TypeCNAME {
		return nil, nil, false
	}
	if e, ok := r.cache.Get(q.name, dns.TypeCNAME, q.qclass); ok && !e.Negative() && !e.Failure() && len(e.RRs) == 1 {
		ttl := r.cache.Remaining(e)
		cn, _ := e.RRs[0].(*dns.CNAME)
		if cn != nil {
			return cachedStep(q.name, dns.TypeCNAME, e, ttl, canonical(cn.Target)), nil, true
		}
	}
	return nil, nil, false
}

// cachedDenial is the denial behind a negative answer read from (or
// stored as) the entry of ref.
func (r *Resolver) cachedDenial(ref entryRef) *denial {
	if r.dnssec == nil {
		return entrylessDenial // nothing marks it
	}
	return &denial{ref: ref}
}

// cachedSet is the RRset of entry e, stored under name/rtype, with the
// TTL it has left.
func cachedSet(name string, rtype uint16, e *cache.Entry, ttl uint32) rrset {
	return rrset{name: name, rtype: rtype, rrs: cache.WithTTL(e.RRs, ttl), sigs: cache.WithTTL(e.Sigs, ttl), entry: e}
}

// iterate resolves q from the closest known delegation down.
func (rs *resolution) iterate(ctx context.Context, q question, depth int) (*step, error) {
	d := rs.r.closestDelegation(q.name, q.qtype, q.qclass)
	qm := newQmin(rs.r.cfg.QNameMinimisation && q.qtype != dns.TypeDS)
	refetched := false
	for {
		if err := rs.budget.checkTime(ctx); err != nil {
			return nil, err
		}
		if !refetched && rs.r.addressless(d, q.qclass) {
			// The glue of the zone's name servers expired while the
			// delegation is still cached: ask the parent for it again,
			// fresh glue included, as Unbound gives up a delegation
			// point without addresses for its parent (issue 15 point 3).
			// Once per name: a parent that gives no glue fails as before.
			refetched = true
			d = rs.r.closestDelegation(d.zone, dns.TypeDS, q.qclass)
			continue
		}
		askName, askType := q.name, q.qtype
		minimised := false
		if n, ok := qm.next(d.zone, q.name); ok {
			askName, askType, minimised = n, dns.TypeA, true
		}
		resp, kind, child, err := rs.queryZone(ctx, d, question{askName, askType, q.qclass}, depth, minimised)
		if err != nil {
			if minimised && asError(err).Cacheable {
				// RFC 9156 3: servers that fail on minimised queries get
				// the full name.
				qm.disable()
				continue
			}
			return nil, err
		}
		switch {
		case kind == kindReferral:
			nd, err := rs.r.storeReferral(resp, d.zone, child, q.qclass)
			if err != nil {
				return nil, err
			}
			rs.noteReferral(d.zone, rs.from, child)
			d = nd
			continue
		case minimised && kind == kindNXDomain:
			// RFC 8020 says nothing exists below, but some servers give
			// NXDOMAIN for empty non-terminals: ask the full name to be sure.
			qm.disable()
			continue
		case minimised && kind == kindYXDomain:
			// A DNAME above the minimised name makes every name below it
			// YXDOMAIN too: ask the full name for its own answer.
			qm.disable()
			continue
		case minimised:
			// Data, NODATA or a CNAME at a minimised name: no zone cut
			// there; add labels.
			qm.advance(askName)
			continue
		}
		st, err := rs.storeAnswer(resp, kind, d.zone, q)
		if err == nil {
			rs.noteAnswer(d.zone, rs.from, st)
		}
		return st, err
	}
}
