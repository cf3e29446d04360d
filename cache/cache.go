// Package cache holds Sextant's two caches, in the spirit of Unbound's rrset
// and message caches:
//
//   - Cache, the RRset cache: RRsets with their trust rank and DNSSEC status,
//     NODATA and failure entries per type, names that do not exist
//     (PutNXDomain, RFC 8020) and zones that failed (PutZoneFailure, RFC
//     9520) as entries of their own kinds, and delegation points (NS, server
//     addresses and DS stored as ordinary RRsets), which the resolver builds
//     answers and iterations from; validation marks the entries it checked
//     (Mark).
//   - Answers, the ready-to-send answer cache: whole packed responses to hot
//     client questions, answered straight from a raw query with no parsing
//     into dns.Msg, no locks beyond one shard's and no allocation.
//
// Both are sharded LRUs (our own compact one, lru.go; one lock per shard,
// shard and LRU key a seeded hash of the lower-cased question), bounded by Config.MaxEntries
// and Config.MaxBytes (Config.Split divides one bound between the two, as
// `sextant serve` does with --cache-size and --cache-max-bytes), and count
// TTLs down from insertion by the injected DNS clock. MaxBytes is reckoned
// to follow the Go heap the entries really hold (bench/memory.sh checks
// it), so that a memory limit derived from it holds.
package cache

import (
	"hash/maphash"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// Cache is the RRset cache. It is safe for concurrent use; there is no
// global lock.
type Cache struct {
	cfg    Config
	seed   maphash.Seed // of the LRU keys: unpredictable, so no one can make keys collide
	shards shardSet[uint64, slot]
	stats  counters
	memos  memos // records and entries negative answers share (shared.go)
	// dnames counts the DNAME entries held (live or not yet noticed
	// expired), so that ClosestAbove costs nothing while there are none.
	dnames atomic.Int64
}

// Stats are the cache's counters since New.
type Stats struct {
	Hits      uint64 // Get (or Write) found a live entry
	Misses    uint64 // nothing, or only an expired entry
	Evictions uint64 // live or stale entries pushed out by the size bound
	Expired   uint64 // expired entries removed when looked up
	Entries   int    // entries held now (live or not yet noticed expired)
	Bytes     int64  // what those entries are counted for against Config.MaxBytes
}

type counters struct {
	hits, misses, evictions, expired atomic.Uint64
}

// New makes an RRset cache sized by cfg.
func New(cfg Config) *Cache {
	cfg = cfg.withDefaults()
	c := &Cache{cfg: cfg, seed: maphash.MakeSeed()}
	c.shards = newShardSet(cfg, slotBytes, func(_ uint64, v slot) {
		if v.isDNAME() {
			c.dnames.Add(-1)
		}
	})
	return c
}

// hash is the LRU key of k (its low bits pick the shard).
func (c *Cache) hash(k key) uint64 { return maphash.Comparable(c.seed, k) }

// peek reports whether k has an entry, live or not, without touching the
// LRU's order.
func (c *Cache) peek(k key) bool {
	h := c.hash(k)
	v, ok := c.shards.at(h).lru.Peek(h)
	return ok && v.holds(k)
}

// Get returns the live entry for name/qtype/qclass. The name is matched
// case-insensitively. An expired entry counts as a miss and is removed. The
// entry is shared and immutable: callers must not modify it (use WithTTL to
// build response RRs).
func (c *Cache) Get(name string, qtype, qclass uint16) (*Entry, bool) {
	return c.get(key{name: dnsname.Lower(name), qtype: qtype, qclass: qclass})
}

// get is Get for k, counting the hit or miss.
func (c *Cache) get(k key) (*Entry, bool) {
	e, ok := c.live(k, c.cfg.Clock.Now())
	if !ok {
		c.stats.misses.Add(1)
		return nil, false
	}
	c.stats.hits.Add(1)
	return e, true
}

// live looks k up, removing it if it has expired by now. It counts
// expirations, not hits or misses.
func (c *Cache) live(k key, now time.Time) (*Entry, bool) {
	h := c.hash(k)
	s := c.shards.at(h)
	v, ok := s.lru.Get(h)
	if !ok || !v.holds(k) {
		return nil, false
	}
	if v.e.expiredAt(now) {
		if !c.keptStale(v.e, now) {
			s.removeIf(h, v)
			c.stats.expired.Add(1)
		}
		return nil, false
	}
	return v.e, true
}

// Put stores e under name/qtype/qclass for ttl seconds, clamped by its kind
// (positive: MinTTL..MaxTTL; negative: at most MaxNegativeTTL, RFC 2308;
// failure: FailureTTL when ttl is 0, else ttl kept within RFC 9520's
// 1 s..5 min; Security Bogus: at most MaxBogusTTL). It sets e.Stored and
// e.Expires. Put copies nothing: the caller gives e up and must not touch it
// afterwards.
//
// It returns false, storing nothing, when the clamped TTL is 0, when the
// unexpired entry there may not be replaced (higher Rank, RFC 2181 5.4.1;
// at equal Rank a Secure entry by non-Secure data, a Bogus one by the same
// data: see replaces), or when the entry alone is larger than a shard's
// share of MaxBytes.
func (c *Cache) Put(name string, qtype, qclass uint16, e *Entry, ttl uint32) bool {
	return c.put(key{name: dnsname.Lower(name), qtype: qtype, qclass: qclass}, e, ttl)
}

// put is Put under k.
func (c *Cache) put(k key, e *Entry, ttl uint32) bool {
	if e == nil {
		return false
	}
	now := c.cfg.Clock.Now()
	life := c.cfg.ttlFor(e, ttl)
	if life <= 0 {
		return false
	}
	c.prepare(k, e, now, life)
	h := c.hash(k)
	s := c.shards.at(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.lru.Peek(h)
	had = had && old.holds(k) // else another key's entry with the same hash: it goes
	switch {
	case !had:
	case old.e.expiredAt(now):
		if e.Failure() && c.keptStale(old.e, now) {
			return false // a failure does not wipe out what serve-stale would answer
		}
	case old.e.nearExpiry(now):
		if e.Rank < old.e.Rank {
			return false
		}
	case !replaces(e, old.e):
		return false
	}
	evicted, stored := s.putLocked(h, slot{e: e, qtype: k.qtype, qclass: k.qclass, kind: k.kind})
	if stored {
		c.countDNAMEs(old, k)
	}
	c.stats.evictions.Add(uint64(evicted))
	return stored
}

// countDNAMEs keeps the DNAME count right when a slot holding old (or
// nothing) now holds an entry of k: a replacement in place does not go
// through the LRU's eviction callback.
func (c *Cache) countDNAMEs(old slot, k key) {
	if old.e != nil && old.isDNAME() {
		c.dnames.Add(-1)
	}
	if k.kind == kindRRset && k.qtype == dns.TypeDNAME {
		c.dnames.Add(1)
	}
}

// prepare readies e for storing under k: its times, its authority records
// shared with the zone's other negative entries, its size.
func (c *Cache) prepare(k key, e *Entry, now time.Time, life time.Duration) {
	e.Stored = now
	e.Expires = now.Add(life)
	var z *zoneAuth
	if len(e.Authority) > 0 && len(e.RRs) == 0 {
		e.Authority, z = c.memos.shareAuthority(e.Authority)
	}
	e.name = k.name
	e.size = int32(e.measure(z) + len(k.name))
}

// Delete removes the entry for name/qtype/qclass, if any (for example NS
// data found lame or bogus).
func (c *Cache) Delete(name string, qtype, qclass uint16) {
	c.delete(key{name: dnsname.Lower(name), qtype: qtype, qclass: qclass})
}

// delete is Delete of k.
func (c *Cache) delete(k key) {
	h := c.hash(k)
	s := c.shards.at(h)
	s.mu.Lock()
	if v, ok := s.lru.Peek(h); ok && v.holds(k) {
		s.lru.Remove(h)
	}
	s.mu.Unlock()
}

// Remaining is the TTL e has left by the clock, in whole seconds rounded up
// (a live entry never shows 0); 0 when expired.
func (c *Cache) Remaining(e *Entry) uint32 {
	now := c.cfg.Clock.Now()
	if e.expiredAt(now) {
		return 0
	}
	return remaining(e.Expires, now)
}

// Now is the cache's DNS clock reading, so callers compute TTLs by the same
// time the cache expires by.
func (c *Cache) Now() time.Time { return c.cfg.Clock.Now() }

// ClosestNS walks up the labels of name (a fully qualified name) and returns
// the deepest zone with a live, non-negative NS entry: the closest known
// delegation point. zone is lower case. It does not count misses on the way
// up, only the final outcome.
func (c *Cache) ClosestNS(name string, qclass uint16) (zone string, e *Entry, ok bool) {
	now := c.cfg.Clock.Now()
	for n := dnsname.Lower(dns.Fqdn(name)); ; n = dnsname.Parent(n) {
		k := key{name: n, qtype: dns.TypeNS, qclass: qclass}
		if e, ok := c.live(k, now); ok && len(e.RRs) > 0 {
			c.stats.hits.Add(1)
			return k.name, e, true
		}
		if n == "." {
			break
		}
	}
	c.stats.misses.Add(1)
	return "", nil, false
}

// Stats returns the counters and the current number of entries.
func (c *Cache) Stats() Stats {
	return c.stats.snapshot(c.shards.len(), c.shards.heldBytes())
}

func (s *counters) snapshot(entries int, bytes int64) Stats {
	return Stats{
		Hits:      s.hits.Load(),
		Misses:    s.misses.Load(),
		Evictions: s.evictions.Load(),
		Expired:   s.expired.Load(),
		Entries:   entries,
		Bytes:     bytes,
	}
}

// Purge drops every entry (operator flush). Counters are kept.
func (c *Cache) Purge() { c.shards.purge() }
