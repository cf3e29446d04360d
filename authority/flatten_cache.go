package authority

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnsname"
)

// Limits of the flattening cache.
const (
	// maxFlatEntries bounds the targets remembered: each is one small
	// RRset, and a zone has few flattened CNAMEs.
	maxFlatEntries = 10000
	// flatTimeout bounds one resolution of a target (the resolver's
	// budget bounds its work; this bounds a client's wait).
	flatTimeout = 5 * time.Second
	// flatFailureTTL is how long a failure is remembered before the target
	// is tried again: enough to spare the resolver a retry per query (RFC
	// 9520 3.2 asks for at least one second), short enough to recover fast.
	flatFailureTTL = 5 * time.Second
	// maxFlatRefreshes bounds the background refreshes at once.
	maxFlatRefreshes = 8
	// flatRefreshShare: an entry is refreshed in the background once less
	// than this share (1/n) of its TTL remains, so that a target asked
	// often never expires in front of a client.
	flatRefreshShare = 4
)

// flatKey is one flattened question.
type flatKey struct {
	name  string // canonical
	qtype uint16
}

// flatResult is a target's records (owner the target's), or why not.
type flatResult struct {
	rrs []dns.RR
	ttl uint32 // seconds left, at the time of get
	err *FlattenError
	// entry is where it is cached (nil if not), with its full TTL and its
	// signatures (signed zones).
	entry *flatEntry
}

type flatEntry struct {
	rrs        []dns.RR
	ttl        uint32
	err        *FlattenError
	expires    time.Time
	refreshing bool
	// sigs are the RRSIGs made for this data under each flattened owner
	// of a signed zone: made once per owner and version of the data.
	sigs map[flatSigKey][]dns.RR
}

type flatSigKey struct {
	zone  *Zone
	owner string // canonical
}

// flatCall is a resolution in progress that others wait for.
type flatCall struct {
	done chan struct{}
	res  flatResult
}

// flatCacheState remembers flattened targets by name and type on the
// DNS clock, resolves each once for all concurrent askers, and refreshes
// those in use before they expire.
type flatCacheState struct {
	srv  *Server
	ext  Flattener
	clk  clock.Clock
	refr chan struct{} // one token per background refresh

	mu       sync.Mutex // held only for map work, never across I/O
	entries  map[flatKey]*flatEntry
	inflight map[flatKey]*flatCall
	// denials are the apex denial records signed online for flattened
	// NODATA answers of signed zones (proveFlatNoData).
	denials map[flatDenialKey]flatDenialEntry
}

type flatDenialKey struct {
	zone  *Zone
	qtype uint16
}

type flatDenialEntry struct {
	rrs  []dns.RR // the NSEC or NSEC3 and its RRSIGs
	made time.Time
}

// SetFlattener has CNAME flattening resolve targets outside the local
// zones through f, on clk (the resolver's clock, which TTLs follow). Zones
// built with ZoneOptions.Flatten need it; without it their flattened
// answers are SERVFAIL.
func (s *Server) SetFlattener(f Flattener, clk clock.Clock) {
	s.flat.Store(s.newFlatCache(f, clk))
}

func (s *Server) newFlatCache(f Flattener, clk clock.Clock) *flatCacheState {
	if clk == nil {
		clk = clock.System{}
	}
	return &flatCacheState{srv: s, ext: f, clk: clk, refr: make(chan struct{}, maxFlatRefreshes),
		entries: make(map[flatKey]*flatEntry), inflight: make(map[flatKey]*flatCall),
		denials: make(map[flatDenialKey]flatDenialEntry)}
}

// flatCache is the Server's flattening cache; one without a Flattener
// when SetFlattener was not called.
func (s *Server) flatCache() *flatCacheState {
	if c := s.flat.Load(); c != nil {
		return c
	}
	s.flat.CompareAndSwap(nil, s.newFlatCache(nil, nil))
	return s.flat.Load()
}

func (c *flatCacheState) lock()   { c.mu.Lock() }
func (c *flatCacheState) unlock() { c.mu.Unlock() }

// purge forgets every target: a change of the local zones may change
// the chains that run through them.
func (c *flatCacheState) purge() {
	c.lock()
	clear(c.entries)
	clear(c.denials)
	c.unlock()
}

// get returns the records of name/qtype: from the cache while fresh
// (starting a refresh when little time is left), else resolved now.
func (c *flatCacheState) get(name string, qtype uint16) flatResult {
	k := flatKey{name, qtype}
	now := c.clk.Now()
	c.lock()
	if e := c.entries[k]; e != nil && now.Before(e.expires) {
		res := flatResult{rrs: e.rrs, err: e.err, ttl: uint32(e.expires.Sub(now) / time.Second), entry: e}
		if e.err == nil && !e.refreshing && e.expires.Sub(now) < time.Duration(e.ttl)*time.Second/flatRefreshShare {
			c.startRefreshLocked(k, e)
		}
		c.unlock()
		return res
	}
	call := c.inflight[k]
	if call == nil {
		call = &flatCall{done: make(chan struct{})}
		c.inflight[k] = call
		c.unlock()
		c.resolve(k, call)
		return call.res
	}
	c.unlock()
	select {
	case <-call.done:
		return call.res
	case <-time.After(flatTimeout):
		// A chain that comes back here through the network waits for
		// itself: give up rather than wait forever.
		return flatResult{err: &FlattenError{EDE: dns.ExtendedErrorCodeNoReachableAuthority, Text: "timed out waiting for the target"}}
	}
}

// resolve runs call for k and stores its outcome.
func (c *flatCacheState) resolve(k flatKey, call *flatCall) {
	ctx, cancel := context.WithTimeout(context.Background(), flatTimeout)
	defer cancel()
	call.res = c.fetch(ctx, k)
	c.lock()
	delete(c.inflight, k)
	c.storeLocked(k, call.res)
	call.res.entry = c.entries[k] // nil when not kept (TTL 0)
	c.unlock()
	close(call.done)
}

// fetch resolves k, turning any error into a FlattenError.
func (c *flatCacheState) fetch(ctx context.Context, k flatKey) flatResult {
	rrs, ttl, err := c.srv.resolveTarget(ctx, c.ext, k.name, k.qtype)
	if err != nil {
		var fe *FlattenError
		if !errors.As(err, &fe) {
			fe = &FlattenError{EDE: dns.ExtendedErrorCodeOther, Text: err.Error()}
		}
		return flatResult{err: fe}
	}
	if ttl == ^uint32(0) {
		ttl = 0
	}
	return flatResult{rrs: rrs, ttl: ttl}
}

func (c *flatCacheState) storeLocked(k flatKey, res flatResult) {
	life := time.Duration(res.ttl) * time.Second
	if res.err != nil {
		life = flatFailureTTL
	}
	if life <= 0 {
		delete(c.entries, k)
		return
	}
	if _, ok := c.entries[k]; !ok && len(c.entries) >= maxFlatEntries {
		for old := range c.entries { // any one: map order is random
			delete(c.entries, old)
			break
		}
	}
	c.entries[k] = &flatEntry{rrs: res.rrs, ttl: res.ttl, err: res.err, expires: c.clk.Now().Add(life)}
}

// flatSigSlack widens a flattened RRset's signature validity on both
// sides of its life in the cache, for clocks that differ a little.
const flatSigSlack = time.Hour

// signatures are the RRSIGs over res's records under f's owner, made with
// the zone's keys (original TTL the largest TTL they are served with),
// kept with the cached data.
func (c *flatCacheState) signatures(res flatResult, f *flatRequest) ([]dns.RR, error) {
	if len(f.zone.flatKeys) == 0 {
		return nil, errors.New("no keys to sign it with") // an unsigned answer would be bogus
	}
	owner := dnsname.Canonical(f.owner)
	k := flatSigKey{f.zone, owner}
	if res.entry != nil {
		c.lock()
		sigs, ok := res.entry.sigs[k]
		c.unlock()
		if ok {
			return sigs, nil
		}
	}
	origTTL := min(f.ttl, res.ttl)
	expires := c.clk.Now().Add(time.Duration(res.ttl) * time.Second)
	if res.entry != nil {
		origTTL = min(f.ttl, res.entry.ttl)
		expires = res.entry.expires
	}
	rrset := make([]dns.RR, len(res.rrs))
	for i, rr := range res.rrs {
		rrset[i] = dns.Copy(rr)
		rrset[i].Header().Name = owner
		rrset[i].Header().Ttl = origTTL
	}
	inception := uint32(c.clk.Now().Add(-flatSigSlack).Unix())
	sigs, err := signRRset(signJob{rrset: rrset, keys: f.zone.flatKeys}, f.zone.origin, inception, uint32(expires.Add(flatSigSlack).Unix()))
	if err != nil {
		return nil, err
	}
	if res.entry != nil {
		c.lock()
		if res.entry.sigs == nil {
			res.entry.sigs = make(map[flatSigKey][]dns.RR)
		}
		res.entry.sigs[k] = sigs
		c.unlock()
	}
	return sigs, nil
}

// Validity of the apex denials signed online: made for a day, remade
// after an hour (so never served with less than 23 hours left).
const (
	flatDenialValidity = 24 * time.Hour
	flatDenialReuse    = time.Hour
)

// denial is z's apex NSEC or NSEC3 without qtype in its bitmap, with its
// signatures by z's keys; nil when the zone has no such record.
func (c *flatCacheState) denial(z *Zone, qtype uint16) ([]dns.RR, error) {
	k := flatDenialKey{z, qtype}
	now := c.clk.Now()
	c.lock()
	e, ok := c.denials[k]
	c.unlock()
	if ok && now.Sub(e.made) < flatDenialReuse {
		return e.rrs, nil
	}
	var set *rrset
	if z.nsec3 != nil {
		set = z.nsec3Match(z.origin)
	} else {
		set = z.apex.nsec
	}
	if set == nil || len(set.rrs) == 0 {
		return nil, nil
	}
	rec := dns.Copy(set.rrs[0])
	rec.Header().Ttl = z.negTTL
	drop := func(t uint16) bool { return t == qtype }
	switch d := rec.(type) {
	case *dns.NSEC:
		d.TypeBitMap = slices.DeleteFunc(slices.Clone(d.TypeBitMap), drop)
	case *dns.NSEC3:
		d.TypeBitMap = slices.DeleteFunc(slices.Clone(d.TypeBitMap), drop)
	default:
		return nil, nil
	}
	sigs, err := signRRset(signJob{rrset: []dns.RR{rec}, keys: z.flatKeys}, z.origin,
		uint32(now.Add(-flatSigSlack).Unix()), uint32(now.Add(flatDenialValidity).Unix()))
	if err != nil {
		return nil, err
	}
	rrs := append([]dns.RR{rec}, sigs...)
	c.lock()
	if len(c.denials) < maxFlatEntries {
		c.denials[k] = flatDenialEntry{rrs: rrs, made: now}
	}
	c.unlock()
	return rrs, nil
}

// startRefreshLocked resolves k again in the background, if a refresh
// slot is free; on failure the entry serves until it expires.
func (c *flatCacheState) startRefreshLocked(k flatKey, e *flatEntry) {
	select {
	case c.refr <- struct{}{}:
	default:
		return
	}
	e.refreshing = true
	go func() {
		defer func() { <-c.refr }()
		ctx, cancel := context.WithTimeout(context.Background(), flatTimeout)
		defer cancel()
		res := c.fetch(ctx, k)
		c.lock()
		defer c.unlock()
		if res.err == nil {
			c.storeLocked(k, res)
		} else if cur := c.entries[k]; cur == e {
			e.refreshing = false // try again on a later query
		}
	}()
}
