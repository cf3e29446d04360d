package cache

import (
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
)

// shardSet is the sharded LRU under both caches: a power-of-two number of
// independently locked golang-lru caches, so there is no global lock.
type shardSet[K comparable, V comparable] struct {
	mask   uint64
	shards []shard[K, V]
}

// shard is one part of a shardSet. The LRU locks itself for reads; mu
// serialises writers' read-compare-write (rank checks, removal of expired
// entries) so that they cannot lose a concurrent update.
type shard[K comparable, V comparable] struct {
	mu  sync.Mutex
	lru *lru.Cache[K, V]
}

// newShardSet makes cfg.Shards shards holding cfg.MaxEntries in all (cfg
// has its defaults filled, so each shard holds at least one entry).
func newShardSet[K comparable, V comparable](cfg Config) shardSet[K, V] {
	ss := shardSet[K, V]{mask: uint64(cfg.Shards - 1), shards: make([]shard[K, V], cfg.Shards)}
	per := cfg.MaxEntries / cfg.Shards
	for i := range ss.shards {
		l, err := lru.New[K, V](per)
		if err != nil { // only for size <= 0, which shardCount rules out
			panic("cache: " + err.Error())
		}
		ss.shards[i].lru = l
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

// add stores v under k and reports whether that evicted another entry.
func (s *shard[K, V]) add(k K, v V) (evicted bool) {
	s.mu.Lock()
	evicted = s.lru.Add(k, v)
	s.mu.Unlock()
	return evicted
}
