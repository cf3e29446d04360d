package cache

import (
	"math/bits"
	"sync"
)

// lru is the least-recently-used map under one shard: hash keys to values,
// at most a fixed number of entries, most recently used first. It is our
// own rather than golang-lru because it is the hot structure of the whole
// cache and its memory is most of a cached name's: golang-lru costs about
// 115 bytes per key (an 80-byte list element, a third of it expirable-TTL
// fields never used here, plus a map slot of key and pointer); this costs
// 24 or 32 bytes of slab node with int32 links plus 8 to 16 bytes of an
// open-addressing index of int32s, and has no pointers of its own for the
// garbage collector to follow. Through `sextant serve` a million cached
// names take 483 B of live heap each as NXDOMAINs (708 B with golang-lru)
// and 492 B with one A record (654 B) (bench/memory.sh). A hit is also
// cheaper: 11 to 34 ns against 44 to 122 ns for golang-lru's Get, two
// goroutines on one LRU of 1024 keys on a loaded 2-core machine. Moving the
// entry to the front is about 7 of those ns (BenchmarkLRUGet against
// BenchmarkLRUPeek), so a CLOCK reference bit would save little and give up
// exact LRU order.
//
// The keys are seeded 64-bit hashes already, so the index takes their top
// bits as they are (the shard was picked by the low ones). It is safe for
// concurrent use (one mutex). onEvict hears of every entry that leaves by
// eviction, Remove, RemoveOldest or Purge (not of one replaced in place by
// Add), under that mutex, so it must not call back into the lru.
type lru[K ~uint64, V comparable] struct {
	mu sync.Mutex
	// nodes is the slab: nodes[0] is the sentinel of the circular list
	// (its next is the most recently used entry, its prev the least); the
	// others hold entries or are on the free list. It grows up to limit+1
	// nodes and no further.
	nodes []lruNode[K, V]
	free  int32 // first free node (linked by next); 0 when none
	// index holds node numbers (0: empty) by linear probing from the
	// key's top bits; it is kept at most half full.
	index   []int32
	shift   uint // 64 - log2(len(index))
	n       int  // entries held
	limit   int
	onEvict func(K, V)
}

// lruNode is one entry of the slab, linked to its neighbours by number.
type lruNode[K ~uint64, V comparable] struct {
	key        K
	prev, next int32
	val        V
}

const (
	// The slab and index start small (a shard may never be used); the
	// slab then grows by a quarter, as append grows large slices, so at
	// most a fifth of it is unused, and never past the entry bound.
	lruMinNodes = 16
	lruMinIndex = 32
	// lruKeyBytes is a key's memory in an lru beside its node, for the
	// byte budget: 2 to 4 index slots of 4 bytes (the index is a quarter
	// to half full) and its share of the slab's unused end (at most a
	// fifth of it while growing).
	lruKeyBytes = 16
	// maxLRUEntries keeps node numbers, and the index's size, in int32.
	maxLRUEntries = 1 << 29
)

// newLRU makes an lru holding at most limit entries (at least one).
func newLRU[K ~uint64, V comparable](limit int, onEvict func(K, V)) *lru[K, V] {
	l := &lru[K, V]{limit: min(max(limit, 1), maxLRUEntries), onEvict: onEvict}
	l.reset()
	return l
}

// reset empties the lru and gives its memory back.
func (l *lru[K, V]) reset() {
	l.nodes = make([]lruNode[K, V], 1, min(l.limit, lruMinNodes)+1)
	l.free, l.n = 0, 0
	l.setIndex(lruMinIndex)
}

// Len is the number of entries held.
func (l *lru[K, V]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// Get returns k's value and makes it the most recently used.
func (l *lru[K, V]) Get(k K) (v V, ok bool) {
	l.mu.Lock()
	if _, i := l.find(k); i != 0 {
		l.unlink(i)
		l.pushFront(i)
		v, ok = l.nodes[i].val, true
	}
	l.mu.Unlock()
	return v, ok
}

// Peek returns k's value without changing the order.
func (l *lru[K, V]) Peek(k K) (v V, ok bool) {
	l.mu.Lock()
	if _, i := l.find(k); i != 0 {
		v, ok = l.nodes[i].val, true
	}
	l.mu.Unlock()
	return v, ok
}

// Add stores v under k as the most recently used entry and reports whether
// that evicted the least recently used one. A value already under k is
// replaced in place, without onEvict.
func (l *lru[K, V]) Add(k K, v V) (evicted bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, i := l.find(k); i != 0 {
		l.nodes[i].val = v
		l.unlink(i)
		l.pushFront(i)
		return false
	}
	if l.n >= l.limit {
		l.removeOldestLocked()
		evicted = true
	}
	if 2*(l.n+1) > len(l.index) {
		l.setIndex(2 * len(l.index))
	}
	i := l.alloc()
	l.nodes[i].key, l.nodes[i].val = k, v
	l.pushFront(i)
	pos, _ := l.find(k)
	l.index[pos] = i
	l.n++
	return evicted
}

// Remove deletes k's entry, if any, and reports whether there was one.
func (l *lru[K, V]) Remove(k K) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	pos, i := l.find(k)
	if i == 0 {
		return false
	}
	l.removeLocked(pos, i)
	return true
}

// RemoveOldest deletes the least recently used entry and returns it.
func (l *lru[K, V]) RemoveOldest() (k K, v V, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.removeOldestLocked()
}

// Purge deletes every entry, oldest first, and gives the memory back.
func (l *lru[K, V]) Purge() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.onEvict != nil {
		for i := l.nodes[0].prev; i != 0; i = l.nodes[i].prev {
			l.onEvict(l.nodes[i].key, l.nodes[i].val)
		}
	}
	l.reset()
}

func (l *lru[K, V]) removeOldestLocked() (k K, v V, ok bool) {
	i := l.nodes[0].prev
	if i == 0 {
		return k, v, false
	}
	k, v = l.nodes[i].key, l.nodes[i].val
	pos, _ := l.find(k)
	l.removeLocked(pos, i)
	return k, v, true
}

// removeLocked deletes node i, found at index slot pos, and tells onEvict.
func (l *lru[K, V]) removeLocked(pos int, i int32) {
	k, v := l.nodes[i].key, l.nodes[i].val
	l.deleteSlot(pos)
	l.unlink(i)
	l.nodes[i] = lruNode[K, V]{next: l.free} // drops v for the collector
	l.free = i
	l.n--
	if l.onEvict != nil {
		l.onEvict(k, v)
	}
}

// find returns k's node number (0 when absent) and its index slot, or the
// empty slot where k would go.
func (l *lru[K, V]) find(k K) (pos int, i int32) {
	mask := len(l.index) - 1
	pos = int(uint64(k) >> l.shift)
	for {
		i = l.index[pos]
		if i == 0 || l.nodes[i].key == k {
			return pos, i
		}
		pos = (pos + 1) & mask
	}
}

// home is the index slot k's probe starts from.
func (l *lru[K, V]) home(k K) int { return int(uint64(k) >> l.shift) }

// deleteSlot empties index slot pos and shifts back the entries after it
// that probed past it, so that lookups need no tombstones.
func (l *lru[K, V]) deleteSlot(pos int) {
	mask := len(l.index) - 1
	for next := (pos + 1) & mask; l.index[next] != 0; next = (next + 1) & mask {
		// The entry at next may move to pos unless its home lies
		// cyclically in (pos, next].
		h := l.home(l.nodes[l.index[next]].key)
		if (next > pos && (h <= pos || h > next)) || (next < pos && h <= pos && h > next) {
			l.index[pos] = l.index[next]
			pos = next
		}
	}
	l.index[pos] = 0
}

// setIndex makes a new index of size slots (a power of two) and puts every
// entry in it.
func (l *lru[K, V]) setIndex(size int) {
	l.index = make([]int32, size)
	l.shift = uint(64 - bits.TrailingZeros(uint(size)))
	for i := l.nodes[0].next; i != 0; i = l.nodes[i].next {
		pos, _ := l.find(l.nodes[i].key)
		l.index[pos] = i
	}
}

// alloc returns an unused node, from the free list or the slab's end.
func (l *lru[K, V]) alloc() int32 {
	if i := l.free; i != 0 {
		l.free = l.nodes[i].next
		return i
	}
	if len(l.nodes) == cap(l.nodes) {
		grown := make([]lruNode[K, V], len(l.nodes), min(l.limit+1, len(l.nodes)+max(len(l.nodes)/4, lruMinNodes)))
		copy(grown, l.nodes)
		l.nodes = grown
	}
	l.nodes = l.nodes[:len(l.nodes)+1]
	return int32(len(l.nodes) - 1)
}

func (l *lru[K, V]) pushFront(i int32) {
	first := l.nodes[0].next
	l.nodes[i].prev, l.nodes[i].next = 0, first
	l.nodes[first].prev = i
	l.nodes[0].next = i
}

func (l *lru[K, V]) unlink(i int32) {
	p, n := l.nodes[i].prev, l.nodes[i].next
	l.nodes[p].next = n
	l.nodes[n].prev = p
}

// appendAll appends every entry, most recently used first, to dst, under
// the lock (no callback runs there), so that the caller can look at them
// after it is released.
func (l *lru[K, V]) appendAll(dst []lruItem[K, V]) []lruItem[K, V] {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := l.nodes[0].next; i != 0; i = l.nodes[i].next {
		dst = append(dst, lruItem[K, V]{l.nodes[i].key, l.nodes[i].val})
	}
	return dst
}

// lruItem is one key and value copied out by appendAll.
type lruItem[K ~uint64, V comparable] struct {
	key K
	val V
}
