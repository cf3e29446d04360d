package authority

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
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
}

type flatEntry struct {
	rrs        []dns.RR
	ttl        uint32
	err        *FlattenError
	expires    time.Time
	refreshing bool
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
		entries: make(map[flatKey]*flatEntry), inflight: make(map[flatKey]*flatCall)}
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
	c.unlock()
}

// get returns the records of name/qtype: from the cache while fresh
// (starting a refresh when little time is left), else resolved now.
func (c *flatCacheState) get(name string, qtype uint16) flatResult {
	k := flatKey{name, qtype}
	now := c.clk.Now()
	c.lock()
	if e := c.entries[k]; e != nil && now.Before(e.expires) {
		res := flatResult{rrs: e.rrs, err: e.err, ttl: uint32(e.expires.Sub(now) / time.Second)}
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
