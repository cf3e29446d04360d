package cache

import (
	"sync"
	"sync/atomic"
)

// shardSet is the sharded LRU under both caches: a power-of-two number of
// independently locked LRUs (lru.go), so there is no global lock. Each
// shard is bounded twice: by entries (cfg.MaxEntries) and by the bytes its
// entries hold (cfg.MaxBytes), since one entry may be a few bytes or 64 KiB
// and an attacker picks which.
type shardSet[K ~uint64, V comparable] struct {
	mask   uint64
	shards []shard[K, V]
}

// shard is one part of a shardSet. The LRU locks itself for reads; mu
// serialises writers' read-compare-write (rank checks, removal of expired
// entries, the byte budget) so that they cannot lose a concurrent update.
type shard[K ~uint64, V comparable] struct {
	mu       sync.Mutex
	lru      *lru[K, V]
	size     func(K, V) int // the bytes an entry holds under a key; fixed once it is stored
	maxBytes int64
	bytes    atomic.Int64 // held by the shard's entries now
	// hits counts the ready-answer cache's hits in this shard. A counter
	// per shard, not one for the cache: a global one is a cache line that
	// every core's every hit writes, which bends scaling with cores (issue
	// 16); a shard's is written only by the hits on its names.
	hits atomic.Uint64
}

// newShardSet makes cfg.Shards shards holding cfg.MaxEntries entries and
// cfg.MaxBytes bytes in all (cfg has its defaults filled, so each shard
// holds at least one entry). size tells the bytes of an entry under a key
// (an entry stored under two keys may count in full under one); removed,
// when not nil, hears of every entry that leaves (not of one replaced in
// place under its key).
func newShardSet[K ~uint64, V comparable](cfg Config, size func(K, V) int, removed func(K, V)) shardSet[K, V] {
	ss := shardSet[K, V]{mask: uint64(cfg.Shards - 1), shards: make([]shard[K, V], cfg.Shards)}
	per := cfg.MaxEntries / cfg.Shards
	for i := range ss.shards {
		s := &ss.shards[i]
		s.size, s.maxBytes = size, int64(cfg.MaxBytes/cfg.Shards)
		// Every way out of the LRU (eviction, Remove, Purge) returns the
		// entry's bytes; Add over an existing key does not call this, so
		// put accounts for that itself.
		s.lru = newLRU(per, func(k K, v V) {
			s.bytes.Add(-int64(size(k, v)))
			if removed != nil {
				removed(k, v)
			}
		})
	}
	return ss
}

// at is the shard for hash h.
func (ss *shardSet[K, V]) at(h uint64) *shard[K, V] {
	return &ss.shards[h&ss.mask]
}

// len is the number of entries in all shards.
func (ss *shardSet[K, V]) len() int {
	n := 0
	for i := range ss.shards {
		n += ss.shards[i].lru.Len()
	}
	return n
}

// hits is the sum of the shards' hit counters.
func (ss *shardSet[K, V]) hits() uint64 {
	var n uint64
	for i := range ss.shards {
		n += ss.shards[i].hits.Load()
	}
	return n
}

// heldBytes is the bytes the entries of all shards are counted for.
func (ss *shardSet[K, V]) heldBytes() int64 {
	var n int64
	for i := range ss.shards {
		n += ss.shards[i].bytes.Load()
	}
	return n
}

// purge empties every shard.
func (ss *shardSet[K, V]) purge() {
	for i := range ss.shards {
		s := &ss.shards[i]
		s.mu.Lock()
		s.lru.Purge()
		s.mu.Unlock()
	}
}

// removeIf removes k only if it still maps to v, so that a fresh value Put
// meanwhile survives.
func (s *shard[K, V]) removeIf(k K, v V) {
	s.mu.Lock()
	if cur, ok := s.lru.Peek(k); ok && cur == v {
		s.lru.Remove(k)
	}
	s.mu.Unlock()
}

// add stores v under k and reports how many other entries that evicted;
// stored is false, and nothing changes, when v alone is over the shard's
// byte budget.
func (s *shard[K, V]) add(k K, v V) (evicted int, stored bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.putLocked(k, v)
}

// putLocked is add for a caller that holds s.mu. Past the entry bound the
// LRU evicts by itself; past the byte budget the least recently used
// entries go until the shard fits.
func (s *shard[K, V]) putLocked(k K, v V) (evicted int, stored bool) {
	n := int64(s.size(k, v))
	if n > s.maxBytes {
		return 0, false
	}
	if old, ok := s.lru.Peek(k); ok {
		s.bytes.Add(-int64(s.size(k, old))) // replaced in place, no eviction callback
	}
	s.bytes.Add(n)
	if s.lru.Add(k, v) {
		evicted++
	}
	for s.bytes.Load() > s.maxBytes {
		if _, _, ok := s.lru.RemoveOldest(); !ok {
			break
		}
		evicted++
	}
	return evicted, true
}
