package cache

// key identifies an RRset cache entry: lower-cased owner name, type, class.
type key struct {
	name   string
	qtype  uint16
	qclass uint16
}

// lowerName returns name with its ASCII letters in lower case, as DNS
// compares names (RFC 4343): other octets are left alone, so that no name
// folds onto another one (strings.ToLower would turn the Kelvin sign into
// "k"). It does not allocate when name is already lower case.
func lowerName(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			b := []byte(name)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return name
}

// FNV-1a, inlined so that hashing allocates nothing.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashKey picks a shard: FNV-1a over the lower-cased name bytes and the type.
// The name must already be lower case.
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
