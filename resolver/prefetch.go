package resolver

import (
	"context"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// maxPrefetches bounds the prefetches running at once: beyond it a data
// set near expiry is not refreshed early and expires as it would without
// prefetch.
const maxPrefetches = 64

// prefetcher refreshes popular data before it expires (Unbound's
// prefetch): a question answered from the cache with data in the last
// tenth of its lifetime is resolved again in the background, so that the
// clients asking it never meet an expired entry.
type prefetcher struct {
	mu      sync.Mutex
	running map[flightKey]struct{}
}

// maybePrefetch starts a background refresh of q when out, its answer from
// the cache, holds an entry near expiry (DNSKEY sets are answers like any
// other: a DNSKEY question, including the validator's, refreshes them).
func (r *Resolver) maybePrefetch(q dns.Question, cd bool, out *outcome) {
	if !r.cfg.Prefetch || out == nil || !r.nearExpiry(out) {
		return
	}
	key := flightKey{name: q.Name, qtype: q.Qtype, qclass: q.Qclass, cd: cd}
	p := &r.prefetch
	p.mu.Lock()
	if _, ok := p.running[key]; ok || len(p.running) >= maxPrefetches {
		p.mu.Unlock()
		return
	}
	if p.running == nil {
		p.running = make(map[flightKey]struct{})
	}
	p.running[key] = struct{}{}
	p.mu.Unlock()
	started := r.bg.spawn(func() {
		defer func() {
			p.mu.Lock()
			delete(p.running, key)
			p.mu.Unlock()
		}()
		r.flights.do(r.bg.ctx, key, r.limits.ClientDeadline, func(ctx context.Context) *Result {
			return r.resolveWith(ctx, q, cd, newBudget(&r.limits, time.Now()), true)
		})
	})
	if !started {
		p.mu.Lock()
		delete(p.running, key)
		p.mu.Unlock()
	}
}

// nearExpiry reports whether any entry behind out is in the last tenth of
// its lifetime.
func (r *Resolver) nearExpiry(out *outcome) bool {
	for _, s := range out.sets {
		if s.entry != nil && r.cache.NearExpiry(s.entry) {
			return true
		}
	}
	if d := out.denial; d != nil && d.ref.entry != nil {
		return r.cache.NearExpiry(d.ref.entry)
	}
	return false
}

// prefetchesRunning is the number of prefetches in progress (tests).
func (r *Resolver) prefetchesRunning() int {
	r.prefetch.mu.Lock()
	defer r.prefetch.mu.Unlock()
	return len(r.prefetch.running)
}
