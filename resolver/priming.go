package resolver

import (
	"context"
	"fmt"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
)

// Starting before the network (issue 15 point 1). A resolver that starts
// at boot may find no root server reachable: the network is not up yet,
// or the servers come up after it. Priming then runs in the background
// until it succeeds, its attempts spaced by primeBackoff (under a second
// at first, doubling to a minute), and the first client question after a
// failed attempt starts the next one at once. Priming is background work
// (backgroundContext): its failures are neither cached for the root zone
// (RFC 9520) nor held against the servers by the selector, so no client
// question is answered from a failure that happened while nobody asked;
// each one makes its own attempt from the root hints.

// Priming back-off: primeRetryFirst after the first failed attempt,
// doubling to primeRetryMax. Unbound and Knot Resolver prime on demand,
// when a question needs the root; the timer here also brings a resolver
// that nobody asks yet up to date once the network is there.
const (
	primeRetryFirst = 500 * time.Millisecond
	primeRetryMax   = time.Minute
)

// primeBackoff is the wait after the failures-th failed priming attempt
// in a row.
func primeBackoff(failures int) time.Duration {
	return min(primeRetryFirst<<min(max(failures-1, 0), 16), primeRetryMax)
}

// Start primes the root NS set in the background (RFC 8109) unless it is
// cached already (after a Prime), retrying with back-off until it is, and
// arranges for it to be primed again whenever the cached root NS set has
// expired. Until priming succeeds the hints are used. It never blocks.
// The background work ends when ctx ends or at Close, whichever comes
// first; Close waits for it.
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
// root NS set is cached; once started, it primes in the background, or
// cuts the back-off of the priming under way short (a question is
// waiting: the first after a failed attempt gets a fresh one).
func (r *Resolver) rootMissing() {
	if !r.started.Load() {
		return
	}
	if !r.priming.CompareAndSwap(false, true) {
		select {
		case r.primeKick <- struct{}{}:
		default:
		}
		return
	}
	r.primeMu.Lock()
	ctx := r.primeCtx
	r.primeMu.Unlock()
	if !r.bg.spawn(func() { r.primeUntilDone(ctx) }) {
		r.priming.Store(false)
	}
}

// primeUntilDone primes until it succeeds or ctx ends, waiting
// primeBackoff between failed attempts unless a question cuts it short.
func (r *Resolver) primeUntilDone(ctx context.Context) {
	defer r.priming.Store(false)
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("panic while priming", "panic", p)
		}
	}()
	select { // a kick from before this attempt is answered by it
	case <-r.primeKick:
	default:
	}
	for failures := 1; ; failures++ {
		err := r.Prime(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		wait := primeBackoff(failures)
		r.log.Warn("priming failed; using the root hints", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-r.primeKick:
			t.Stop()
		}
		if _, ok := r.cache.Get(".", dns.TypeNS, dns.ClassINET); ok {
			return // primed meanwhile (an explicit Prime)
		}
	}
}

// Prime asks the root servers of the hints for the root NS set and caches
// it with the addresses they give (RFC 8109). It is background work: a
// failure is not cached for client questions.
func (r *Resolver) Prime(ctx context.Context) error {
	b := newBudget(&r.limits, time.Now())
	ctx, cancel := context.WithDeadline(backgroundContext(ctx), b.Deadline())
	defer cancel()
	rs := &resolution{r: r, budget: b, trace: tracerFrom(ctx), background: true}
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

// backgroundKey marks the context of work no client asked for.
type backgroundKey struct{}

// backgroundContext marks ctx as background work (priming, RFC 5011
// refreshes): resolutions under it cache no failure for client questions
// (RFC 9520 zone failures, failure entries) and do not back servers off,
// so that failures nobody asked about never answer a client.
func backgroundContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundKey{}, true)
}

// isBackground reports whether ctx is background work.
func isBackground(ctx context.Context) bool {
	b, _ := ctx.Value(backgroundKey{}).(bool)
	return b
}
