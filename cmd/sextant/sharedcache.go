package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/sharedcache"
)

// sharedCacheOptions are the flags of the fleet's shared cache (package
// sharedcache, on Redis or Valkey).
type sharedCacheOptions struct {
	url     string
	keyFile string
	timeout time.Duration
}

func (o *sharedCacheOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.url, "shared-cache", "", "Redis or Valkey `URL` (redis://host:port/db) of a cache shared by a fleet of resolvers: looked up before resolving, written with every validated answer (default: none)")
	fs.StringVar(&o.keyFile, "shared-cache-key-file", "", "`FILE` with the fleet key, 64 or more hex digits, the same on every instance: shared entries are signed and checked with it")
	fs.DurationVar(&o.timeout, "shared-cache-timeout", sharedcache.DefaultLookupTimeout, "how long a lookup in the shared cache may take before the question is resolved without it")
}

// open connects the shared cache the flags ask for; nil when none.
func (o *sharedCacheOptions) open(clk clock.Clock, log *slog.Logger) (*sharedcache.Cache, error) {
	if o.url == "" {
		if o.keyFile != "" {
			return nil, fmt.Errorf("--shared-cache-key-file needs --shared-cache")
		}
		return nil, nil
	}
	if o.keyFile == "" {
		return nil, fmt.Errorf("--shared-cache needs --shared-cache-key-file: entries are signed with the fleet key")
	}
	b, err := os.ReadFile(o.keyFile)
	if err != nil {
		return nil, fmt.Errorf("--shared-cache-key-file: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < sharedcache.MinKeyLen {
		return nil, fmt.Errorf("--shared-cache-key-file %s: want %d or more hex digits", o.keyFile, 2*sharedcache.MinKeyLen)
	}
	return sharedcache.New(sharedcache.Config{URL: o.url, Key: key, LookupTimeout: o.timeout, Clock: clk, Logger: log})
}

// writeSharedCacheStats adds the shared cache's counters to ctl stats.
func writeSharedCacheStats(b *strings.Builder, res *resolver.Resolver) {
	sc, ok := res.SharedCache().(*sharedcache.Cache)
	if !ok {
		return
	}
	st := sc.Stats()
	open := 0
	if st.BreakerOpen {
		open = 1
	}
	fmt.Fprintf(b, "sharedcache.hits=%d\nsharedcache.misses=%d\nsharedcache.forged=%d\nsharedcache.errors=%d\nsharedcache.skipped=%d\nsharedcache.writes=%d\nsharedcache.writes_dropped=%d\nsharedcache.breaker_open=%d\nsharedcache.breaker_opened=%d\n",
		st.Hits, st.Misses, st.Forged, st.Errors, st.Skipped, st.Writes, st.WritesDropped, open, st.BreakerOpened)
}
