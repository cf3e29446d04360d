package cache

import (
	"github.com/sextant-dns/sextant/internal/dnsname"
)

// Operator views of the whole RRset cache (`sextant ctl dump-cache`, `flush
// --zone`). Neither holds a lock while the caller works: each shard's
// entries are copied out under its lock (pointers only: entries are
// immutable once stored) and looked at after it is released, so a slow
// writer of a dump delays no query.

// Kind says what a cached entry stands for.
type Kind uint8

const (
	// KindRRset is an RRset, a NODATA entry or a resolution failure for
	// one type (Item.Type).
	KindRRset Kind = iota
	// KindNXDomain is a name that does not exist, for any type (RFC 8020).
	KindNXDomain
	// KindZoneFailure is a zone whose servers all failed (RFC 9520).
	KindZoneFailure
)

// Item is one entry as Walk shows it. Entry is shared and must not be
// modified.
type Item struct {
	Name  string // lower case
	Type  uint16 // 0 for KindNXDomain and KindZoneFailure
	Class uint16
	Kind  Kind
	Entry *Entry
}

// Walk calls fn for each entry held, live or expired but not yet removed
// (Remaining tells), shard by shard, until fn returns false. Entries stored
// or removed during the walk may or may not be seen. No lock is held while
// fn runs, so fn may call into the cache.
func (c *Cache) Walk(fn func(Item) bool) {
	var buf []lruItem[uint64, slot]
	for i := range c.shards.shards {
		buf = c.shards.shards[i].lru.appendAll(buf[:0])
		for _, it := range buf {
			if !fn(itemOf(it.val)) {
				return
			}
		}
		clear(buf) // drop the entries for the collector before the next shard
	}
}

func itemOf(v slot) Item {
	return Item{Name: v.e.name, Type: v.qtype, Class: v.qclass, Kind: Kind(v.kind), Entry: v.e}
}

// DeleteBelow removes every entry whose name is zone or below it (any type,
// class and kind) and returns how many it removed. Names are compared
// label-wise and case-insensitively (dnsname.IsAtOrBelow).
func (c *Cache) DeleteBelow(zone string) int {
	zone = dnsname.Lower(zone)
	removed := 0
	var buf []lruItem[uint64, slot]
	for i := range c.shards.shards {
		s := &c.shards.shards[i]
		buf = s.lru.appendAll(buf[:0])
		for _, it := range buf {
			if !dnsname.IsAtOrBelow(it.val.e.name, zone) {
				continue
			}
			s.mu.Lock()
			// Only if it is still the same entry: a fresh Put survives.
			if cur, ok := s.lru.Peek(it.key); ok && cur == it.val {
				s.lru.Remove(it.key)
				removed++
			}
			s.mu.Unlock()
		}
		clear(buf)
	}
	return removed
}
