package resolver

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/validator"
)

// RFC 5011 managed trust anchors: the validator reads the anchors of the
// managed zones from a validator.ManagedAnchors and reports every DNSKEY
// set it validates with them; on top of that the zones' DNSKEY sets are
// fetched and applied on RFC 5011's refresh schedule (section 2.3), and the
// state is saved after each refresh that changed it.
//
// The refresh runs in the background when it is due by the DNS clock:
// checked on every client question and, once Resolver.Start has run, every
// anchorTick of real time, so that an idle resolver follows rollovers too.

const (
	// anchorTick is how often a started resolver checks, without traffic,
	// whether a refresh is due.
	anchorTick = 10 * time.Minute
	// anchorRefreshTimeout bounds one refresh of every managed zone.
	anchorRefreshTimeout = 10 * time.Second
	// anchorRetry is the wait after a failed refresh (RFC 5011 2.3: at
	// least one hour).
	anchorRetry = time.Hour
)

// anchorRefresh is the refresh schedule of the managed anchors.
type anchorRefresh struct {
	m        *validator.ManagedAnchors
	save     func(*validator.ManagedAnchors) error
	next     atomic.Int64 // DNS-clock Unix nanoseconds of the next refresh
	running  atomic.Bool
	ticking  atomic.Bool // the anchorTick loop runs
	mu       sync.Mutex  // guards lastSave
	lastSave []byte
	done     chan struct{} // closed after each refresh, for tests; replaced each time
}

// startAnchorTicker checks every anchorTick, until ctx ends, whether a
// refresh is due (and once at once). Resolver.Start calls it; later calls
// do nothing.
func (r *Resolver) startAnchorTicker(ctx context.Context) {
	if r.dnssec == nil {
		return
	}
	a := r.dnssec.anchors
	if a == nil || !a.ticking.CompareAndSwap(false, true) {
		return
	}
	r.bg.spawn(func() {
		t := time.NewTicker(anchorTick)
		defer t.Stop()
		for {
			r.maybeRefreshAnchors()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

// maybeRefreshAnchors starts a background refresh when one is due and
// none is running. r.dnssec is set.
func (r *Resolver) maybeRefreshAnchors() {
	a := r.dnssec.anchors
	clk := r.cfg.Clock
	if a == nil || clk.Now().UnixNano() < a.next.Load() || !a.running.CompareAndSwap(false, true) {
		return
	}
	refresh := func() {
		defer func() {
			if p := recover(); p != nil {
				r.log.Error("panic in trust-anchor refresh", "panic", p)
				a.next.Store(clk.Now().Add(anchorRetry).UnixNano())
			}
			a.mu.Lock()
			close(a.done)
			a.done = make(chan struct{})
			a.mu.Unlock()
			a.running.Store(false)
		}()
		ctx, cancel := context.WithTimeout(r.bg.ctx, anchorRefreshTimeout)
		defer cancel()
		wait := r.RefreshAnchors(ctx)
		a.next.Store(clk.Now().Add(wait).UnixNano())
	}
	if !r.bg.spawn(refresh) {
		a.running.Store(false) // closed: no refresh any more
	}
}

// anchorRefreshDone returns a channel closed when the refresh in progress
// (or the next one) ends.
func (d *dnssec) anchorRefreshDone() <-chan struct{} {
	d.anchors.mu.Lock()
	defer d.anchors.mu.Unlock()
	return d.anchors.done
}

// RefreshAnchors fetches the DNSKEY set of every managed zone
// (DNSSECConfig.Managed), validates it with the zone's current anchors,
// applies it (RFC 5011 section 4 events) and saves the state if it changed
// (DNSSECConfig.SaveManaged). It returns the time until the next refresh is
// due: RFC 5011's refresh interval for the zones refreshed, an hour after a
// failure or without managed anchors. The resolver runs it on that schedule
// itself; calling it is only needed to refresh at once.
func (r *Resolver) RefreshAnchors(ctx context.Context) time.Duration {
	if r.dnssec == nil || r.dnssec.anchors == nil {
		return anchorRetry
	}
	a := r.dnssec.anchors
	wait := time.Duration(0)
	for _, zone := range a.m.Zones() {
		w, err := r.refreshZone(ctx, zone)
		if err != nil {
			r.log.Warn("trust-anchor refresh failed", "zone", zone, "err", err)
			w = anchorRetry
		}
		if wait == 0 || w < wait {
			wait = w
		}
	}
	if wait == 0 {
		wait = anchorRetry
	}
	var buf bytes.Buffer
	if err := a.m.Save(&buf); err != nil {
		r.log.Error("trust-anchor state not saved", "err", err)
		return wait
	}
	a.mu.Lock()
	changed := !bytes.Equal(buf.Bytes(), a.lastSave)
	a.mu.Unlock()
	if changed && a.save != nil {
		if err := a.save(a.m); err != nil {
			r.log.Error("trust-anchor state not saved", "err", err)
			return min(wait, anchorRetry)
		}
		a.mu.Lock()
		a.lastSave = buf.Bytes()
		a.mu.Unlock()
	}
	return wait
}

// refreshZone applies one fresh DNSKEY set of zone (its self-signed
// revocations even when the rest does not validate any more) and returns
// RFC 5011's refresh interval for it.
func (r *Resolver) refreshZone(ctx context.Context, zone string) (time.Duration, error) {
	m, err := r.Query(backgroundContext(ctx), zone, dns.TypeDNSKEY) // no client asked: nothing cached of a failure
	if err != nil {
		return 0, err
	}
	var set []dns.RR
	var sigs []*dns.RRSIG
	for _, rr := range m.Answer {
		if canonical(rr.Header().Name) != zone {
			continue
		}
		switch x := rr.(type) {
		case *dns.DNSKEY:
			set = append(set, x)
		case *dns.RRSIG:
			if x.TypeCovered == dns.TypeDNSKEY {
				sigs = append(sigs, x)
			}
		}
	}
	now := r.cfg.Clock.Now()
	d := r.dnssec
	// Revocations the revoked keys signed count before validation (RFC 5011
	// 2.1): a revoked only anchor leaves the zone without anchors, and a set
	// signed by that key's unrevoked form no longer validates.
	b := validator.NewBudget(d.v.Limits())
	res, _ := d.anchors.m.VerifyDNSKEYs(zone, set, sigs, now, b)
	if res.Status != security.Secure {
		return 0, fmt.Errorf("DNSKEY set of %s does not validate with the managed anchors: %s", zone, res.Reason)
	}
	origTTL, expiry := uint32(0), time.Duration(0)
	for _, s := range sigs {
		if origTTL == 0 || s.OrigTtl < origTTL {
			origTTL = s.OrigTtl
		}
		left := time.Unix(int64(s.Expiration), 0).Sub(now)
		if expiry == 0 || left < expiry {
			expiry = left
		}
	}
	return validator.RefreshInterval(origTTL, expiry), nil
}
