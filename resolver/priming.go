package resolver

import (
	"context"
	"fmt"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
)

// primeRetry is the least time between a failed background priming
// attempt and the next.
const primeRetry = 5 * time.Second

// Start primes the root NS set in the background (RFC 8109) unless it is
// cached already (after a Prime), and arranges for it to be primed again
// whenever the cached root NS set has expired. Until priming succeeds the
// hints are used. It never blocks. The background work ends when ctx
// ends or at Close, whichever comes first; Close waits for it.
func (r *Resolver) Start(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	context.AfterFunc(r.bg.ctx, cancel) // Close ends it too
	r.primeMu.Lock()
	r.primeCtx = ctx
	r.primeMu.Unlock()
	r.started.Store(true)
	if _, ok := r.cache.Get(".", dns.TypeNS, dns.ClassINET); !ok {
		r.rootMissing()
	}
	r.startAnchorTicker(ctx) // RFC 5011 refreshes without traffic too
}

// rootMissing is called when iteration starts from the hints because no
// root NS set is cached; once started, it primes in the background.
func (r *Resolver) rootMissing() {
	if !r.started.Load() || !r.priming.CompareAndSwap(false, true) {
		return
	}
	r.primeMu.Lock()
	ctx := r.primeCtx
	if time.Since(r.lastPrimeFailure) < primeRetry {
		r.primeMu.Unlock()
		r.priming.Store(false)
		return
	}
	r.primeMu.Unlock()
	started := r.bg.spawn(func() {
		defer r.priming.Store(false)
		defer func() {
			if p := recover(); p != nil {
				r.log.Error("panic while priming", "panic", p)
			}
		}()
		if err := r.Prime(ctx); err != nil {
			r.log.Warn("priming failed; using the root hints", "err", err)
			r.primeMu.Lock()
			r.lastPrimeFailure = time.Now()
			r.primeMu.Unlock()
		}
	})
	if !started {
		r.priming.Store(false)
	}
}

// Prime asks the root servers of the hints for the root NS set and caches
// it with the addresses they give (RFC 8109).
func (r *Resolver) Prime(ctx context.Context) error {
	b := newBudget(&r.limits, time.Now())
	ctx, cancel := context.WithDeadline(ctx, b.Deadline())
	defer cancel()
	rs := &resolution{r: r, budget: b, trace: tracerFrom(ctx)}
	defer r.releaseZoneProbes(rs)
	d := delegation{zone: ".", ns: r.roots.ns, hints: r.roots.addrs}
	resp, kind, _, err := rs.queryZone(ctx, d, question{".", dns.TypeNS, dns.ClassINET}, 0, false)
	if err != nil {
		return fmt.Errorf("priming query: %w", err)
	}
	ns := rrsOf(resp.Answer, ".", dns.TypeNS, dns.ClassINET)
	if kind != kindAnswer || len(ns) == 0 {
		return fmt.Errorf("priming query: %s without a root NS set", kind)
	}
	r.cache.Put(".", dns.TypeNS, dns.ClassINET, &cache.Entry{RRs: ns, Sigs: sigsOf(resp.Answer, ".", dns.TypeNS), Rank: answerRank(resp)}, minTTL(ns))
	for _, rr := range ns {
		name := rr.(*dns.NS).Ns
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			if addrs := rrsOf(resp.Extra, name, t, dns.ClassINET); len(addrs) > 0 {
				r.cache.Put(name, t, dns.ClassINET, &cache.Entry{RRs: addrs, Rank: cache.RankAdditional}, minTTL(addrs))
			}
		}
	}
	return nil
}
