package cache

import (
	"math/bits"
	"runtime"
	"time"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/security"
)

// Defaults for a zero Config field.
const (
	DefaultMaxEntries     = 100_000
	DefaultMaxBytes       = 256 << 20
	DefaultMaxTTL         = 24 * time.Hour // Unbound's cache-max-ttl
	DefaultMaxNegativeTTL = time.Hour      // Unbound's cache-max-negative-ttl
	DefaultFailureTTL     = 5 * time.Second
	DefaultMaxBogusTTL    = time.Minute // Unbound's val-bogus-ttl
	// RFC 9520 section 3.2: a resolution failure is cached for at least
	// 1 second and at most 5 minutes.
	minFailureTTL = time.Second
	maxFailureTTL = 5 * time.Minute
)

// Config sizes a Cache or an Answers cache. Zero fields take defaults.
type Config struct {
	// MaxEntries bounds the number of entries (spread evenly over shards;
	// the total never exceeds it).
	MaxEntries int
	// MaxBytes bounds the memory the entries hold (estimated), spread
	// evenly over shards: past it the least recently used go, and an entry
	// larger than a shard's share is not stored.
	MaxBytes int
	// Shards is the number of independently locked shards, rounded up to a
	// power of two; 0 means the next power of two >= 4*GOMAXPROCS. It is
	// lowered when MaxEntries is smaller.
	Shards int
	// MinTTL and MaxTTL clamp the TTL of positive entries.
	MinTTL, MaxTTL time.Duration
	// MaxNegativeTTL caps the TTL of negative entries (RFC 2308 5).
	MaxNegativeTTL time.Duration
	// MaxBogusTTL caps the TTL of entries whose Security is Bogus, so that
	// data that failed validation is retried soon (RFC 4035 4.7; Unbound's
	// val-bogus-ttl).
	MaxBogusTTL time.Duration
	// FailureTTL is how long a failure entry lives when Put is given TTL 0;
	// it is kept within RFC 9520's 1 s to 5 min.
	FailureTTL time.Duration
	// ServeStale is how long past its expiry an entry is kept for GetStale
	// (RFC 8767: serve stale data when the servers cannot be reached), if
	// it is data or a negative answer that did not fail validation; 0
	// keeps nothing past expiry. Kept entries count against the bounds like
	// live ones and are evicted first when cold.
	ServeStale time.Duration
	// Prefetch (Answers only) lets one query in an answer's last tenth of
	// life through as a miss, so that a resolver that prefetches sees the
	// question and refreshes the data before it expires for everyone.
	Prefetch bool
	// Clock is the DNS clock; nil means clock.System{}.
	Clock clock.Clock
}

// The ready-to-send answer cache's share of one bound given for both caches
// (Split). A name with one A record takes one RRset entry and one answer,
// an NXDOMAIN one entry (the name's, RFC 8020: PutNXDomain) and one
// answer; an answer holds about 60%
// of the bytes of either (BenchmarkMemoryPerName). Three eighths of the
// entries and bytes keep both caches filling at about the same pace.
const (
	answersShareNum = 3
	answersShareDen = 8
)

// Split divides c's MaxEntries and MaxBytes (defaults filled) between an
// RRset cache and a ready-to-send answer cache, so that the two together
// stay within them: the answers get three eighths, the RRsets the rest. The other
// fields are copied to both.
func (c Config) Split() (rrsets, answers Config) {
	if c.MaxEntries <= 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	rrsets, answers = c, c
	answers.MaxEntries = max(1, c.MaxEntries*answersShareNum/answersShareDen)
	answers.MaxBytes = max(1, c.MaxBytes*answersShareNum/answersShareDen)
	rrsets.MaxEntries = max(1, c.MaxEntries-answers.MaxEntries)
	rrsets.MaxBytes = max(1, c.MaxBytes-answers.MaxBytes)
	return rrsets, answers
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.MaxEntries <= 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxTTL <= 0 {
		c.MaxTTL = DefaultMaxTTL
	}
	if c.MinTTL < 0 {
		c.MinTTL = 0
	}
	if c.MinTTL > c.MaxTTL {
		c.MinTTL = c.MaxTTL
	}
	if c.MaxNegativeTTL <= 0 {
		c.MaxNegativeTTL = DefaultMaxNegativeTTL
	}
	if c.MaxBogusTTL <= 0 {
		c.MaxBogusTTL = DefaultMaxBogusTTL
	}
	if c.FailureTTL <= 0 {
		c.FailureTTL = DefaultFailureTTL
	}
	c.FailureTTL = clampDuration(c.FailureTTL, minFailureTTL, maxFailureTTL)
	c.ServeStale = max(c.ServeStale, 0)
	if c.Clock == nil {
		c.Clock = clock.System{}
	}
	c.Shards = shardCount(c.Shards, c.MaxEntries, runtime.GOMAXPROCS(0))
	return c
}

// shardCount picks a power-of-two shard count: the wanted one (or
// 4*procs), but no more shards than entries, so that each shard holds at
// least one entry and the total stays within maxEntries.
func shardCount(want, maxEntries, procs int) int {
	if want <= 0 {
		want = 4 * procs
	}
	n := nextPow2(want)
	for n > 1 && n > maxEntries {
		n >>= 1
	}
	return n
}

func nextPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

func clampDuration(d, lo, hi time.Duration) time.Duration {
	if d < lo {
		return lo
	}
	if d > hi {
		return hi
	}
	return d
}

// ttlFor turns the TTL given to Put into how long e lives, by its kind:
// positive data within MinTTL..MaxTTL, negative data at most MaxNegativeTTL,
// failures FailureTTL (or the given TTL kept within 1 s..5 min); bogus data
// at most MaxBogusTTL. RFC 2181 8: a TTL with the top bit set counts as 0.
func (c *Config) ttlFor(e *Entry, ttl uint32) time.Duration {
	if ttl > 1<<31-1 {
		ttl = 0
	}
	d := time.Duration(ttl) * time.Second
	switch {
	case e.Failure():
		if ttl == 0 {
			return c.FailureTTL
		}
		return clampDuration(d, minFailureTTL, maxFailureTTL)
	case e.Negative():
		d = min(d, c.MaxNegativeTTL)
	default:
		d = clampDuration(d, c.MinTTL, c.MaxTTL)
	}
	if e.Security == security.Bogus {
		d = min(d, c.MaxBogusTTL) // even below MinTTL
	}
	return d
}
