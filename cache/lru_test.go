package cache

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
)

// lruLog records what an lru's onEvict hears.
type lruLog struct{ evicted []uint64 }

func (g *lruLog) onEvict(k uint64, _ string) { g.evicted = append(g.evicted, k) }

// order lists l's keys from most to least recently used, by walking the
// list both ways (the two must agree).
func lruOrder(t testing.TB, l *lru[uint64, string]) []uint64 {
	t.Helper()
	var fwd, back []uint64
	for i := l.nodes[0].next; i != 0; i = l.nodes[i].next {
		fwd = append(fwd, l.nodes[i].key)
	}
	for i := l.nodes[0].prev; i != 0; i = l.nodes[i].prev {
		back = append(back, l.nodes[i].key)
	}
	slices.Reverse(back)
	if !slices.Equal(fwd, back) {
		t.Fatalf("list forwards %v, backwards %v", fwd, back)
	}
	return fwd
}

// checkLRUIndex fails unless the index holds exactly the listed entries,
// each findable, and is at most half full, and every other node of the
// slab is free and cleared (holding no value the collector must keep).
func checkLRUIndex(t testing.TB, l *lru[uint64, string]) {
	t.Helper()
	used := 0
	for _, i := range l.index {
		if i != 0 {
			used++
		}
	}
	keys := lruOrder(t, l)
	if used != len(keys) || l.n != len(keys) {
		t.Fatalf("index holds %d, list %d, n %d", used, len(keys), l.n)
	}
	if 2*used > len(l.index) {
		t.Fatalf("index %d of %d slots used", used, len(l.index))
	}
	for _, k := range keys {
		if _, i := l.find(k); i == 0 || l.nodes[i].key != k {
			t.Fatalf("key %#x listed but not found", k)
		}
	}
	free := 0
	for i := l.free; i != 0; i = l.nodes[i].next {
		if n := l.nodes[i]; n.key != 0 || n.val != "" {
			t.Fatalf("free node %d still holds %#x %q", i, n.key, n.val)
		}
		free++
	}
	if 1+used+free != len(l.nodes) {
		t.Fatalf("slab of %d nodes: %d used, %d free", len(l.nodes), used, free)
	}
	if len(l.nodes) > l.limit+1 || cap(l.nodes) > l.limit+1 {
		t.Fatalf("slab len %d cap %d over limit %d+1", len(l.nodes), cap(l.nodes), l.limit)
	}
}

// lruOp is one step of TestLRU: op is "add", "get", "peek", "remove",
// "oldest" or "purge"; want is the order after it, most recent first;
// evicted the keys onEvict heard of in this step.
type lruOp struct {
	op      string
	key     uint64
	val     string
	wantOK  bool   // get, peek, remove, oldest: found; add: evicted
	wantVal string // get, peek, oldest
	want    []uint64
	evicted []uint64
}

func TestLRU(t *testing.T) {
	tests := []struct {
		name  string
		limit int
		ops   []lruOp
	}{
		{"order by use", 3, []lruOp{
			{op: "add", key: 1, val: "a", want: []uint64{1}},
			{op: "add", key: 2, val: "b", want: []uint64{2, 1}},
			{op: "add", key: 3, val: "c", want: []uint64{3, 2, 1}},
			{op: "get", key: 1, wantOK: true, wantVal: "a", want: []uint64{1, 3, 2}},
			{op: "peek", key: 2, wantOK: true, wantVal: "b", want: []uint64{1, 3, 2}},
			{op: "get", key: 9, want: []uint64{1, 3, 2}},
			{op: "peek", key: 9, want: []uint64{1, 3, 2}},
		}},
		{"eviction by count takes the least recent", 2, []lruOp{
			{op: "add", key: 1, val: "a", want: []uint64{1}},
			{op: "add", key: 2, val: "b", want: []uint64{2, 1}},
			{op: "get", key: 1, wantOK: true, wantVal: "a", want: []uint64{1, 2}},
			{op: "add", key: 3, val: "c", wantOK: true, want: []uint64{3, 1}, evicted: []uint64{2}},
			{op: "add", key: 4, val: "d", wantOK: true, want: []uint64{4, 3}, evicted: []uint64{1}},
		}},
		{"replace in place keeps count, moves to front, no callback", 2, []lruOp{
			{op: "add", key: 1, val: "a", want: []uint64{1}},
			{op: "add", key: 2, val: "b", want: []uint64{2, 1}},
			{op: "add", key: 1, val: "A", want: []uint64{1, 2}},
			{op: "peek", key: 1, wantOK: true, wantVal: "A", want: []uint64{1, 2}},
		}},
		{"remove", 3, []lruOp{
			{op: "add", key: 1, val: "a", want: []uint64{1}},
			{op: "add", key: 2, val: "b", want: []uint64{2, 1}},
			{op: "add", key: 3, val: "c", want: []uint64{3, 2, 1}},
			{op: "remove", key: 2, wantOK: true, want: []uint64{3, 1}, evicted: []uint64{2}},
			{op: "remove", key: 2, want: []uint64{3, 1}},
			{op: "add", key: 4, val: "d", want: []uint64{4, 3, 1}},
			{op: "add", key: 5, val: "e", wantOK: true, want: []uint64{5, 4, 3}, evicted: []uint64{1}},
		}},
		{"remove oldest", 3, []lruOp{
			{op: "oldest", want: nil},
			{op: "add", key: 1, val: "a", want: []uint64{1}},
			{op: "add", key: 2, val: "b", want: []uint64{2, 1}},
			{op: "oldest", wantOK: true, key: 1, wantVal: "a", want: []uint64{2}, evicted: []uint64{1}},
		}},
		{"purge tells of every entry, oldest first", 4, []lruOp{
			{op: "add", key: 1, val: "a", want: []uint64{1}},
			{op: "add", key: 2, val: "b", want: []uint64{2, 1}},
			{op: "add", key: 3, val: "c", want: []uint64{3, 2, 1}},
			{op: "purge", want: nil, evicted: []uint64{1, 2, 3}},
			{op: "get", key: 1, want: nil},
			{op: "add", key: 1, val: "a", want: []uint64{1}},
		}},
		{"one entry", 1, []lruOp{
			{op: "add", key: 1, val: "a", want: []uint64{1}},
			{op: "add", key: 2, val: "b", wantOK: true, want: []uint64{2}, evicted: []uint64{1}},
			{op: "add", key: 2, val: "B", want: []uint64{2}},
		}},
		{"keys sharing their top bits probe past each other", 8, []lruOp{
			{op: "add", key: 7 << 60, val: "a", want: []uint64{7 << 60}},
			{op: "add", key: 7<<60 | 1, val: "b", want: []uint64{7<<60 | 1, 7 << 60}},
			{op: "add", key: 7<<60 | 2, val: "c", want: []uint64{7<<60 | 2, 7<<60 | 1, 7 << 60}},
			{op: "remove", key: 7 << 60, wantOK: true, want: []uint64{7<<60 | 2, 7<<60 | 1}, evicted: []uint64{7 << 60}},
			{op: "peek", key: 7<<60 | 2, wantOK: true, wantVal: "c", want: []uint64{7<<60 | 2, 7<<60 | 1}},
			{op: "peek", key: 7<<60 | 1, wantOK: true, wantVal: "b", want: []uint64{7<<60 | 2, 7<<60 | 1}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log lruLog
			l := newLRU(tt.limit, log.onEvict)
			for n, op := range tt.ops {
				log.evicted = nil
				var ok bool
				var val string
				switch op.op {
				case "add":
					ok = l.Add(op.key, op.val)
				case "get":
					val, ok = l.Get(op.key)
				case "peek":
					val, ok = l.Peek(op.key)
				case "remove":
					ok = l.Remove(op.key)
				case "oldest":
					var k uint64
					k, val, ok = l.RemoveOldest()
					if ok && k != op.key {
						t.Errorf("step %d: RemoveOldest key %d, want %d", n, k, op.key)
					}
				case "purge":
					l.Purge()
				}
				if ok != op.wantOK || val != op.wantVal {
					t.Errorf("step %d %s %d: got %q %v, want %q %v", n, op.op, op.key, val, ok, op.wantVal, op.wantOK)
				}
				if got := lruOrder(t, l); !slices.Equal(got, op.want) {
					t.Errorf("step %d %s %d: order %v, want %v", n, op.op, op.key, got, op.want)
				}
				if !slices.Equal(log.evicted, op.evicted) {
					t.Errorf("step %d %s %d: evicted %v, want %v", n, op.op, op.key, log.evicted, op.evicted)
				}
				if l.Len() != len(op.want) {
					t.Errorf("step %d: Len %d, want %d", n, l.Len(), len(op.want))
				}
				checkLRUIndex(t, l)
			}
		})
	}
}

// lruModel is the reference TestLRURandom and FuzzLRU check against: a
// slice of keys, most recent first, and a map of values.
type lruModel struct {
	limit int
	order []uint64
	vals  map[uint64]string
}

func (m *lruModel) touch(k uint64) {
	m.order = slices.DeleteFunc(m.order, func(x uint64) bool { return x == k })
	m.order = slices.Insert(m.order, 0, k)
}

func (m *lruModel) drop(k uint64) {
	m.order = slices.DeleteFunc(m.order, func(x uint64) bool { return x == k })
	delete(m.vals, k)
}

// runLRUOps applies the operations coded in data to an lru and the model
// and fails at the first difference. Keys come from a small space whose
// members share their top bits, so that probes collide and wrap.
func runLRUOps(t testing.TB, limit int, data []byte) {
	var log lruLog
	l := newLRU(limit, log.onEvict)
	m := &lruModel{limit: limit, vals: map[uint64]string{}}
	for step := 0; len(data) >= 2; step, data = step+1, data[2:] {
		op, b := data[0]%16, data[1]
		k := uint64(b%8)<<61 | uint64(b>>3) // 8 homes at most, 32 keys each
		v := string(rune('a' + step%26))
		log.evicted = nil
		var want []uint64
		switch {
		case op < 7: // add
			_, had := m.vals[k]
			var wantEvicted bool
			if !had && len(m.order) >= limit {
				oldest := m.order[len(m.order)-1]
				m.drop(oldest)
				want, wantEvicted = []uint64{oldest}, true
			}
			m.vals[k] = v
			m.touch(k)
			if got := l.Add(k, v); got != wantEvicted {
				t.Fatalf("step %d: Add(%#x) evicted %v, want %v", step, k, got, wantEvicted)
			}
		case op < 13: // get (Get below 11), peek
			wantV, wantOK := m.vals[k]
			var got string
			var ok bool
			if op < 11 {
				got, ok = l.Get(k)
				if wantOK {
					m.touch(k)
				}
			} else {
				got, ok = l.Peek(k)
			}
			if got != wantV || ok != wantOK {
				t.Fatalf("step %d: get/peek(%#x) = %q %v, want %q %v", step, k, got, ok, wantV, wantOK)
			}
		case op < 15: // remove
			_, had := m.vals[k]
			if had {
				m.drop(k)
				want = []uint64{k}
			}
			if got := l.Remove(k); got != had {
				t.Fatalf("step %d: Remove(%#x) = %v, want %v", step, k, got, had)
			}
		case b%8 == 0: // purge, now and then
			for i := len(m.order) - 1; i >= 0; i-- {
				want = append(want, m.order[i])
			}
			m.order, m.vals = nil, map[uint64]string{}
			l.Purge()
		default: // remove oldest
			var wantK uint64
			wantOK := len(m.order) > 0
			if wantOK {
				wantK = m.order[len(m.order)-1]
				want = []uint64{wantK}
				m.drop(wantK)
			}
			if gotK, _, ok := l.RemoveOldest(); ok != wantOK || gotK != wantK {
				t.Fatalf("step %d: RemoveOldest = %#x %v, want %#x %v", step, gotK, ok, wantK, wantOK)
			}
		}
		if !slices.Equal(log.evicted, want) {
			t.Fatalf("step %d: onEvict heard %#x, want %#x", step, log.evicted, want)
		}
		if got := lruOrder(t, l); !slices.Equal(got, m.order) {
			t.Fatalf("step %d: order %#x, want %#x", step, got, m.order)
		}
		checkLRUIndex(t, l)
	}
}

func TestLRURandom(t *testing.T) {
	for _, limit := range []int{1, 2, 7, 40, 300} {
		r := rand.New(rand.NewPCG(uint64(limit), 1))
		data := make([]byte, 20000)
		for i := 0; i+8 <= len(data); i += 8 {
			binary.LittleEndian.PutUint64(data[i:], r.Uint64())
		}
		runLRUOps(t, limit, data)
	}
}

func FuzzLRU(f *testing.F) {
	f.Add(byte(3), []byte{0, 1, 0, 9, 0, 17, 0, 25, 13, 9, 7, 1, 15, 0})
	f.Add(byte(40), []byte{0, 0, 0, 8, 0, 16, 13, 0, 7, 16, 15, 1, 15, 8})
	f.Fuzz(func(t *testing.T, limit byte, data []byte) {
		runLRUOps(t, int(limit%64)+1, data)
	})
}

// TestLRUGrowsToItsLimitOnly checks that the slab grows in steps as entries
// come and stops at the bound.
func TestLRUGrowsToItsLimitOnly(t *testing.T) {
	const limit = 1000
	l := newLRU[uint64, string](limit, nil)
	if cap(l.nodes) > lruMinNodes+1 {
		t.Fatalf("new lru has %d nodes", cap(l.nodes))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 5*limit; i++ {
		l.Add(r.Uint64(), "x")
		if cap(l.nodes) > limit+1 {
			t.Fatalf("after %d adds the slab has %d nodes for %d entries", i+1, cap(l.nodes), limit)
		}
	}
	if l.Len() != limit || len(l.nodes) != limit+1 {
		t.Fatalf("Len %d, slab %d, want %d and %d", l.Len(), len(l.nodes), limit, limit+1)
	}
	if len(l.index) != 2048 {
		t.Fatalf("index %d slots, want 2048", len(l.index))
	}
}

func TestLRUHitsDoNotAllocate(t *testing.T) {
	l := newLRU[uint64, string](100, nil)
	for k := range uint64(100) {
		l.Add(k<<40, "x")
	}
	allocs := testing.AllocsPerRun(100, func() {
		l.Get(5 << 40)
		l.Peek(6 << 40)
		l.Add(7<<40, "y")
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per hit", allocs)
	}
}

// BenchmarkLRUGet and BenchmarkLRUPeek, run in parallel on one shard-sized
// lru, bound what a hit could save by not moving the entry to the front
// (as CLOCK's reference bit would): Peek is Get without the move.
func BenchmarkLRUGet(b *testing.B)  { benchLRU(b, (*lru[uint64, string]).Get) }
func BenchmarkLRUPeek(b *testing.B) { benchLRU(b, (*lru[uint64, string]).Peek) }

func benchLRU(b *testing.B, look func(*lru[uint64, string], uint64) (string, bool)) {
	const keys = 1024
	l := newLRU[uint64, string](keys, nil)
	r := rand.New(rand.NewPCG(1, 1))
	ks := make([]uint64, keys)
	for i := range ks {
		ks[i] = r.Uint64()
		l.Add(ks[i], "x")
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := look(l, ks[i%keys]); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
}
