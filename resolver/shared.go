package resolver

import (
	"context"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/security"
)

// SharedCache is a second cache tier shared by a fleet of resolvers
// (package sharedcache keeps it in Redis): on a miss of its own cache a
// resolver looks the question up there before it iterates, and offers
// every answer it validated. Implementations fail open: an error or a slow
// store is a miss, never a failure of the question.
type SharedCache interface {
	// Get returns the shared answer to q, canonical and of class IN, or
	// false.
	Get(ctx context.Context, q dns.Question) (*SharedAnswer, bool)
	// Put offers a for q. It must return at once (storing in the
	// background, or not at all when the store is unwell).
	Put(q dns.Question, a *SharedAnswer)
}

// SharedAnswer is an answer as the fleet shares it: the response sections
// with their TTLs when it was stored, its DNSSEC state, and when it was
// stored and expires by the DNS clock.
type SharedAnswer struct {
	Rcode             int
	Answer, Authority []dns.RR
	Security          security.Status
	Stored, Expires   time.Time
}

// SharedCache returns the fleet's shared cache the resolver uses (nil for
// none), for its statistics.
func (r *Resolver) SharedCache() SharedCache { return r.cfg.SharedCache }

// runShared resolves canonical q (CD clear) through the shared cache: its
// answer if it has one, else a resolution whose answer is offered to it.
func (r *Resolver) runShared(ctx context.Context, q dns.Question) *Result {
	if res := r.fromShared(ctx, q); res != nil {
		return res
	}
	res := r.run(ctx, q, false)
	r.toShared(q, res)
	return res
}

// fromShared answers canonical q from the shared cache, with the TTLs
// counted down since it was stored; nil on a miss. With validation on only
// Secure and Insecure answers are taken (what another validating instance
// judged); without, any, reported Indeterminate as every answer is then.
func (r *Resolver) fromShared(ctx context.Context, q dns.Question) *Result {
	a, ok := r.cfg.SharedCache.Get(ctx, q)
	if !ok {
		return nil
	}
	now := r.cfg.Clock.Now()
	if !now.Before(a.Expires) || now.Before(a.Stored) {
		return nil
	}
	st := a.Security
	switch {
	case r.dnssec == nil:
		st = security.Indeterminate
	case st != security.Secure && st != security.Insecure:
		return nil
	}
	elapsed := uint32(now.Sub(a.Stored) / time.Second)
	return &Result{Rcode: a.Rcode, Answer: countDown(a.Answer, elapsed), Authority: countDown(a.Authority, elapsed), Security: st}
}

// toShared offers res, the fresh answer to canonical q, to the shared
// cache: only answers (NOERROR, NXDOMAIN), validated or with validation
// off, never bogus, never stale, never local, with a TTL left.
func (r *Resolver) toShared(q dns.Question, res *Result) {
	if res.Rcode != dns.RcodeSuccess && res.Rcode != dns.RcodeNameError {
		return
	}
	if res.ede != nil && (res.ede.EDE == dns.ExtendedErrorCodeStaleAnswer || res.ede.EDE == dns.ExtendedErrorCodeStaleNXDOMAINAnswer) {
		return
	}
	if r.dnssec != nil && res.Security != security.Secure && res.Security != security.Insecure {
		return
	}
	if r.answeredLocally(q) {
		return
	}
	ttl, ok := minRRTTL(res.Answer, res.Authority)
	if !ok || ttl == 0 {
		return
	}
	now := r.cfg.Clock.Now()
	r.cfg.SharedCache.Put(q, &SharedAnswer{Rcode: res.Rcode, Answer: res.Answer, Authority: res.Authority,
		Security: res.Security, Stored: now, Expires: now.Add(time.Duration(ttl) * time.Second)})
}

// minRRTTL is the smallest TTL of the records; false when there are none.
func minRRTTL(sets ...[]dns.RR) (uint32, bool) {
	var ttl uint32
	found := false
	for _, rrs := range sets {
		for _, rr := range rrs {
			if t := rr.Header().Ttl; !found || t < ttl {
				ttl, found = t, true
			}
		}
	}
	return ttl, found
}

// countDown copies rrs with elapsed seconds taken off their TTLs.
func countDown(rrs []dns.RR, elapsed uint32) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		c := dns.Copy(rr)
		if h := c.Header(); h.Ttl > elapsed {
			h.Ttl -= elapsed
		} else {
			h.Ttl = 0
		}
		out[i] = c
	}
	return out
}
