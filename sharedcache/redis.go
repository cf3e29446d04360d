package sharedcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/redis/go-redis/v9"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/resolver"
)

// Defaults of Config.
const (
	// DefaultLookupTimeout is a lookup's deadline: Redis next door answers
	// in well under a millisecond, and an L2 lookup that takes longer than
	// a few is worth less than starting the resolution.
	DefaultLookupTimeout = 5 * time.Millisecond
	// DefaultWriteTimeout bounds a background write.
	DefaultWriteTimeout = 100 * time.Millisecond
	// DefaultMaxWrites bounds the writes in flight; more are dropped (and
	// counted): the answer is still served, only not shared.
	DefaultMaxWrites = 256
	// Circuit breaker: this many failures in a row stop the lookups for
	// breakerOpenFor, then one probe goes through.
	breakerFailures = 5
	breakerOpenFor  = 5 * time.Second
)

// Config configures a Cache.
type Config struct {
	// URL is the Redis or Valkey server, redis://[user:password@]host:port/db
	// (rediss:// for TLS).
	URL string
	// Key is the fleet key (at least MinKeyLen bytes) every instance
	// shares: entries are signed and checked with it.
	Key []byte
	// LookupTimeout, WriteTimeout and MaxWrites: 0 means the defaults.
	LookupTimeout, WriteTimeout time.Duration
	MaxWrites                   int
	// Clock is the DNS clock, for the Redis TTL of entries; nil is the
	// system clock.
	Clock  clock.Clock
	Logger *slog.Logger
}

// Cache is a resolver.SharedCache on Redis.
type Cache struct {
	cfg     Config
	client  *redis.Client
	breaker breaker
	writes  chan struct{} // a token per write in flight
	stats   counters
	lastLog atomic.Int64 // Unix nanoseconds of the last failure logged
}

// counters are the Cache's statistics.
type counters struct {
	hits, misses, forged, errors, skipped, writes, writesDropped atomic.Uint64
}

// Stats are a Cache's counters and its breaker's state.
type Stats struct {
	Hits, Misses  uint64 // lookups answered, and not (no entry or expired)
	Forged        uint64 // entries refused: not signed with the fleet key, or malformed
	Errors        uint64 // lookups and writes that failed or timed out
	Skipped       uint64 // lookups not sent while the breaker was open
	Writes        uint64 // entries written
	WritesDropped uint64 // entries not written: too many writes in flight, or the breaker open
	BreakerOpen   bool   // lookups are not being sent now
	BreakerOpened uint64 // times the breaker opened
}

var _ resolver.SharedCache = (*Cache)(nil)

// New connects to cfg.URL lazily (the first lookup dials): a fleet starts
// whether or not Redis is up.
func New(cfg Config) (*Cache, error) {
	if len(cfg.Key) < MinKeyLen {
		return nil, fmt.Errorf("sharedcache: the fleet key has %d bytes, want at least %d", len(cfg.Key), MinKeyLen)
	}
	opts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("sharedcache: %w", err)
	}
	if cfg.LookupTimeout <= 0 {
		cfg.LookupTimeout = DefaultLookupTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxWrites <= 0 {
		cfg.MaxWrites = DefaultMaxWrites
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// The deadlines are the context's; go-redis's own socket timeouts
	// only back them up, and it must not retry past them.
	opts.DialTimeout = 100 * time.Millisecond
	opts.ReadTimeout, opts.WriteTimeout = cfg.WriteTimeout, cfg.WriteTimeout
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = -1
	opts.PoolSize = max(opts.PoolSize, 2*cfg.MaxWrites)
	c := &Cache{cfg: cfg, client: redis.NewClient(opts), writes: make(chan struct{}, cfg.MaxWrites)}
	c.breaker = breaker{failuresToOpen: breakerFailures, openFor: breakerOpenFor, now: time.Now}
	return c, nil
}

// Close closes the connections to Redis.
func (c *Cache) Close() error { return c.client.Close() }

// Get looks q up, within the lookup deadline; any failure is a miss.
func (c *Cache) Get(ctx context.Context, q dns.Question) (*resolver.SharedAnswer, bool) {
	if !c.breaker.allow() {
		c.stats.skipped.Add(1)
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.LookupTimeout)
	defer cancel()
	key := redisKey(q)
	buf, err := c.client.Get(ctx, key).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		c.breaker.done(true)
		c.stats.misses.Add(1)
		return nil, false
	case err != nil:
		c.failed("lookup", err)
		return nil, false
	}
	c.breaker.done(true)
	a, err := decode(c.cfg.Key, key, buf)
	if err != nil {
		c.stats.forged.Add(1)
		c.logFailure("refused an entry from the shared cache", key, err)
		return nil, false
	}
	c.stats.hits.Add(1)
	return a, true
}

// Put stores a for q in the background, with a Redis TTL of what is left
// of its DNS TTL; it drops the write when too many are in flight or the
// breaker is open.
func (c *Cache) Put(q dns.Question, a *resolver.SharedAnswer) {
	ttl := a.Expires.Sub(c.cfg.Clock.Now())
	if ttl < time.Second {
		return
	}
	key := redisKey(q)
	buf, err := encode(c.cfg.Key, key, a)
	if err != nil {
		return
	}
	select {
	case c.writes <- struct{}{}:
	default:
		c.stats.writesDropped.Add(1)
		return
	}
	if !c.breaker.allow() {
		<-c.writes
		c.stats.writesDropped.Add(1)
		return
	}
	go func() {
		defer func() { <-c.writes }()
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.WriteTimeout)
		defer cancel()
		if err := c.client.Set(ctx, key, buf, ttl).Err(); err != nil {
			c.failed("write", err)
			return
		}
		c.breaker.done(true)
		c.stats.writes.Add(1)
	}()
}

// failed counts a failed call to Redis.
func (c *Cache) failed(what string, err error) {
	c.breaker.done(false)
	c.stats.errors.Add(1)
	c.logFailure("shared cache "+what+" failed", "", err)
}

// logFailure logs at most one failure every 10 seconds: a dead Redis must
// not flood the log.
func (c *Cache) logFailure(msg, key string, err error) {
	now := time.Now().UnixNano()
	last := c.lastLog.Load()
	if now-last < int64(10*time.Second) || !c.lastLog.CompareAndSwap(last, now) {
		return
	}
	open, _ := c.breaker.state()
	c.cfg.Logger.Warn(msg, "key", key, "err", err, "breaker_open", open)
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	open, opened := c.breaker.state()
	return Stats{
		Hits: c.stats.hits.Load(), Misses: c.stats.misses.Load(), Forged: c.stats.forged.Load(),
		Errors: c.stats.errors.Load(), Skipped: c.stats.skipped.Load(), Writes: c.stats.writes.Load(),
		WritesDropped: c.stats.writesDropped.Load(), BreakerOpen: open, BreakerOpened: opened,
	}
}
