package cache

import (
	"slices"
	"testing"
)

// TestShardBounds checks one shard's two bounds and its accounting: every
// way out returns the entry's bytes and tells removed, a replacement in
// place does neither for the old value, and an entry over the byte budget
// alone is refused.
func TestShardBounds(t *testing.T) {
	type step struct {
		op        string // "add", "removeIf", "purge"
		key       uint64
		val       string // its length is its size in bytes
		wantEvict int
		wantStore bool
		wantBytes int64
		wantKeys  []uint64 // most recent first
		removed   []uint64 // what removed heard in this step
	}
	steps := []step{
		{op: "add", key: 1, val: "aaa", wantStore: true, wantBytes: 3, wantKeys: []uint64{1}},
		{op: "add", key: 2, val: "bbb", wantStore: true, wantBytes: 6, wantKeys: []uint64{2, 1}},
		{op: "add", key: 3, val: "ccc", wantStore: true, wantBytes: 9, wantKeys: []uint64{3, 2, 1}},
		// Over 10 bytes: the least recent goes.
		{op: "add", key: 4, val: "ddd", wantEvict: 1, wantStore: true, wantBytes: 9, wantKeys: []uint64{4, 3, 2}, removed: []uint64{1}},
		// Replaced in place and grown: the old value's bytes come back
		// without a callback, then the least recent goes for the new.
		{op: "add", key: 2, val: "BBBBB", wantEvict: 1, wantStore: true, wantBytes: 8, wantKeys: []uint64{2, 4}, removed: []uint64{3}},
		// Alone over the budget: refused, nothing changes.
		{op: "add", key: 5, val: "eeeeeeeeeee", wantBytes: 8, wantKeys: []uint64{2, 4}},
		{op: "removeIf", key: 2, val: "bbb", wantBytes: 8, wantKeys: []uint64{2, 4}},
		{op: "removeIf", key: 2, val: "BBBBB", wantBytes: 3, wantKeys: []uint64{4}, removed: []uint64{2}},
		// The entry bound (3 per shard) before the byte bound.
		{op: "add", key: 6, val: "f", wantStore: true, wantBytes: 4, wantKeys: []uint64{6, 4}},
		{op: "add", key: 7, val: "g", wantStore: true, wantBytes: 5, wantKeys: []uint64{7, 6, 4}},
		{op: "add", key: 8, val: "h", wantEvict: 1, wantStore: true, wantBytes: 3, wantKeys: []uint64{8, 7, 6}, removed: []uint64{4}},
		{op: "purge", wantBytes: 0, removed: []uint64{6, 7, 8}},
	}
	var heard []uint64
	ss := newShardSet(Config{MaxEntries: 3, MaxBytes: 10, Shards: 1},
		func(_ uint64, v string) int { return len(v) },
		func(k uint64, _ string) { heard = append(heard, k) })
	s := ss.at(0)
	for n, st := range steps {
		heard = nil
		switch st.op {
		case "add":
			evicted, stored := s.add(st.key, st.val)
			if evicted != st.wantEvict || stored != st.wantStore {
				t.Errorf("step %d: add(%d, %q) = %d, %v; want %d, %v", n, st.key, st.val, evicted, stored, st.wantEvict, st.wantStore)
			}
		case "removeIf":
			s.removeIf(st.key, st.val)
		case "purge":
			ss.purge()
		}
		if got := ss.heldBytes(); got != st.wantBytes {
			t.Errorf("step %d: %d bytes held, want %d", n, got, st.wantBytes)
		}
		s.lru.mu.Lock()
		keys := lruKeys(s.lru)
		s.lru.mu.Unlock()
		if !slices.Equal(keys, st.wantKeys) || ss.len() != len(st.wantKeys) {
			t.Errorf("step %d: keys %v (len %d), want %v", n, keys, ss.len(), st.wantKeys)
		}
		if !slices.Equal(heard, st.removed) {
			t.Errorf("step %d: removed heard %v, want %v", n, heard, st.removed)
		}
	}
}

// lruKeys lists l's keys, most recent first.
func lruKeys[K ~uint64, V comparable](l *lru[K, V]) []K {
	var keys []K
	for i := l.nodes[0].next; i != 0; i = l.nodes[i].next {
		keys = append(keys, l.nodes[i].key)
	}
	return keys
}
