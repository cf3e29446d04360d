package resolver

import (
	"context"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/security"
)

// Serve-stale defaults (RFC 8767).
const (
	// DefaultMaxStale is how long past expiry data may be served: RFC 8767
	// 5 suggests 1 to 3 days; one is enough for an outage to be noticed.
	DefaultMaxStale = 24 * time.Hour
	// DefaultStaleAnswerAfter is the client response timer (RFC 8767 5:
	// 1.8 s), after which a client waiting on a refresh gets stale data.
	DefaultStaleAnswerAfter = 1800 * time.Millisecond
	// staleTTL is the TTL of stale records (RFC 8767 4: 30 s), so that
	// the client's own cache asks again soon.
	staleTTL = 30
)

// StaleConfig turns on serve-stale (RFC 8767): when the servers of a name
// cannot be reached, or a refresh takes longer than AnswerAfter, clients
// get the expired data (never bogus data) with TTL 30 and Extended DNS
// Error 3 (Stale Answer), or 19 (Stale NXDOMAIN Answer), while the refresh
// goes on.
type StaleConfig struct {
	// MaxStale is how long past its expiry data may be served; 0 means
	// DefaultMaxStale.
	MaxStale time.Duration
	// AnswerAfter is how long a client waits for a refresh before it is
	// given stale data; 0 means DefaultStaleAnswerAfter.
	AnswerAfter time.Duration
	// Zones sets MaxStale at and below a zone, the longest match winning;
	// 0 turns serve-stale off there (for example for a zone whose data
	// must never be served old).
	Zones map[string]time.Duration
}

// withDefaults fills zero fields, with zone names canonical.
func (c StaleConfig) withDefaults() StaleConfig {
	if c.MaxStale <= 0 {
		c.MaxStale = DefaultMaxStale
	}
	if c.AnswerAfter <= 0 {
		c.AnswerAfter = DefaultStaleAnswerAfter
	}
	zones := make(map[string]time.Duration, len(c.Zones))
	for z, d := range c.Zones {
		zones[dnsname.Canonical(z)] = max(d, 0)
	}
	c.Zones = zones
	return c
}

// Longest is the longest stale window of c (defaults filled in): how long
// a cache given to the resolver must keep expired entries
// (cache.Config.ServeStale).
func (c StaleConfig) Longest() time.Duration {
	c = c.withDefaults()
	longest := c.MaxStale
	for _, d := range c.Zones {
		longest = max(longest, d)
	}
	return longest
}

// window is how long past expiry data of name may be served.
func (c StaleConfig) window(name string) time.Duration {
	for cur := name; ; cur = dnsname.Parent(cur) {
		if d, ok := c.Zones[cur]; ok {
			return d
		}
		if cur == "." {
			return c.MaxStale
		}
	}
}

// resolveOrStale runs the shared resolution of q (key, fn as for
// flights.do) and gives the client stale data when the resolution fails,
// or has not finished after AnswerAfter: then the resolution goes on for
// the cache, and the client is not kept waiting.
func (r *Resolver) resolveOrStale(ctx context.Context, q dns.Question, cd bool, key flightKey, fn func(context.Context) *Result) *Result {
	wait, cancel := context.WithTimeout(ctx, r.stale.AnswerAfter)
	defer cancel()
	res := r.flights.do(wait, key, r.limits.ClientDeadline, fn)
	if wait.Err() != nil && ctx.Err() == nil {
		if st := r.staleResult(ctx, q, cd); st != nil {
			return st
		}
		return r.flights.do(ctx, key, r.limits.ClientDeadline, fn) // nothing stale: wait on
	}
	if res.Rcode == dns.RcodeServerFailure && res.Security != security.Bogus {
		if st := r.staleResult(ctx, q, cd); st != nil {
			return st
		}
	}
	return res
}

// staleResult answers canonical q from the cache with data expired within
// its stale window, or returns nil. With validation on (and no CD), every
// part must carry a validation mark that is not bogus: data nobody
// validated is not given out stale either.
func (r *Resolver) staleResult(ctx context.Context, q dns.Question, cd bool) *Result {
	window := r.stale.window(q.Name)
	if window == 0 {
		return nil
	}
	rs := &resolution{r: r, budget: newBudget(&r.limits, time.Now()), cacheOnly: true, staleWindow: window}
	out, err := rs.lookup(ctx, question{q.Name, q.Qtype, q.Qclass}, 0)
	if err != nil || !rs.servedStale {
		return nil
	}
	res := &Result{Rcode: out.rcode, Answer: out.answer(), Authority: out.authority,
		ede: &Error{EDE: dns.ExtendedErrorCodeStaleAnswer, Text: "stale answer: the servers could not be reached"}}
	if out.rcode == dns.RcodeNameError {
		res.ede = &Error{EDE: dns.ExtendedErrorCodeStaleNXDOMAINAnswer, Text: "stale NXDOMAIN answer: the servers could not be reached"}
	}
	if r.dnssec != nil && !cd && !r.answeredLocally(q) {
		st, _, ok := markedStatus(out)
		if !ok || st == security.Bogus {
			return nil
		}
		res.Security = st
	}
	r.log.Debug("serving stale", "name", q.Name, "type", dns.TypeToString[q.Qtype])
	return res
}

// staleFromCache answers one name of a stale lookup from entries expired
// less than rs.staleWindow ago, with TTL 30: data, a negative answer, or a
// CNAME to follow.
func (rs *resolution) staleFromCache(q question) (*step, bool) {
	c := rs.r.cache
	now := c.Now()
	usable := func(e *cache.Entry, ok bool) bool {
		return ok && now.Sub(e.Expires) <= rs.staleWindow
	}
	if e, ok := c.GetStale(q.name, q.qtype, q.qclass); usable(e, ok) {
		rs.servedStale = true
		if e.Negative() {
			return &step{rcode: e.Rcode, authority: cache.WithTTL(e.Authority, staleTTL),
				denial: rs.r.cachedDenial(entryRef{q.name, q.qtype, q.qclass, false, e})}, true
		}
		return cachedStep(q.name, q.qtype, e, staleTTL, ""), true
	}
	if e, ok := c.GetStaleNXDomain(q.name, q.qclass); usable(e, ok) {
		rs.servedStale = true
		return &step{rcode: dns.RcodeNameError, authority: cache.WithTTL(e.Authority, staleTTL),
			denial: rs.r.cachedDenial(entryRef{name: q.name, qclass: q.qclass, nxdomain: true, entry: e})}, true
	}
	if q.qtype == dns.TypeCNAME {
		return nil, false
	}
	if e, ok := c.GetStale(q.name, dns.TypeCNAME, q.qclass); usable(e, ok) && !e.Negative() && len(e.RRs) == 1 {
		if cn, _ := e.RRs[0].(*dns.CNAME); cn != nil {
			rs.servedStale = true
			return cachedStep(q.name, dns.TypeCNAME, e, staleTTL, canonical(cn.Target)), true
		}
	}
	return nil, false
}
