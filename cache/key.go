package cache

import "github.com/miekg/dns"

// key identifies a cache entry: lower-cased owner name, type, class, and
// what the entry stands for (kind). The LRU is keyed by its seeded hash
// (Cache.hash), not by the key itself: an 8-byte map key instead of a
// 24-byte one with a string is most of a small entry's map and list memory.
// The name is kept once, in the Entry.
type key struct {
	name   string
	qtype  uint16
	qclass uint16
	kind   kind
}

// kind is what an entry stands for. Names that do not exist and zones that
// failed are entries of their own, not RRsets of a reserved type, so that
// no type, however odd, meets them.
type kind uint8

const (
	// kindRRset: an RRset, NODATA or a resolution failure for one type.
	kindRRset kind = iota
	// kindNXDomain: the name does not exist, for any type (RFC 8020).
	kindNXDomain
	// kindZoneFailure: no server of the zone gave a usable reply (RFC
	// 9520).
	kindZoneFailure
)

// slot is what the LRU holds under a key's hash: the entry and the type,
// class and kind of the key (an entry may stand under two keys).
type slot struct {
	e      *Entry
	qtype  uint16
	qclass uint16
	kind   kind
}

// holds reports whether s is the entry of k and not of another key with
// the same hash.
func (s slot) holds(k key) bool {
	return s.e != nil && s.qtype == k.qtype && s.qclass == k.qclass && s.kind == k.kind && s.e.name == k.name
}

// isDNAME reports whether s holds a DNAME RRset (counted for ClosestAbove).
func (s slot) isDNAME() bool { return s.kind == kindRRset && s.qtype == dns.TypeDNAME }

// FNV-1a, inlined so that hashing allocates nothing.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashKey picks a slot of the sharing memos (shared.go): FNV-1a over the
// lower-cased name bytes and the type. The name must already be lower case.
// A collision there only costs sharing; the LRUs use seeded hashes.
func hashKey(name string, qtype uint16) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= fnvPrime
	}
	h ^= uint64(qtype)
	h *= fnvPrime
	h ^= uint64(qtype >> 8)
	h *= fnvPrime
	// Mix the high bits down: the shard index takes the low bits.
	h ^= h >> 32
	return h
}
