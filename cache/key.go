package cache

import "github.com/sextant-dns/sextant/internal/dnsname"

// key identifies an RRset cache entry: lower-cased owner name, type, class.
// The LRU is keyed by its seeded hash (Cache.hash), not by the key itself:
// an 8-byte map key instead of a 24-byte one with a string is most of a
// small entry's map and list memory. The name is kept once, in the Entry.
type key struct {
	name   string
	qtype  uint16
	qclass uint16
}

// slot is what the LRU holds under a key's hash: the entry and the type and
// class of the key (an NXDOMAIN entry may stand under two types).
type slot struct {
	e      *Entry
	qtype  uint16
	qclass uint16
}

// holds reports whether s is the entry of k and not of another key with
// the same hash.
func (s slot) holds(k key) bool {
	return s.e != nil && s.qtype == k.qtype && s.qclass == k.qclass && s.e.name == k.name
}

// lowerName lower-cases the ASCII letters of name only (RFC 4343), so that
// no two names fold onto one cache key.
func lowerName(name string) string { return dnsname.Lower(name) }

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
