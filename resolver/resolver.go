package resolver

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/roothints"
)

// SpecialNames says whether special-use names are answered locally.
type SpecialNames uint8

const (
	// SpecialNamesAuto answers them locally with the built-in root hints
	// and resolves them through the operator's root when hints are given
	// (a private root may delegate test. or a reverse zone); localhost. is
	// still loopback when that root does not have it.
	SpecialNamesAuto SpecialNames = iota
	// SpecialNamesLocal always answers them locally.
	SpecialNamesLocal
	// SpecialNamesResolve never answers them locally.
	SpecialNamesResolve
)

// Config configures a Resolver. Start from DefaultConfig, or use the zero
// Config, which works too: built-in root hints, both IPv4 and IPv6
// upstream, default limits, the system clock, a default cache, DNSSEC
// validation off, and QNAME minimisation and 0x20 off (DefaultConfig turns
// those two on).
type Config struct {
	// Hints are the root servers; nil means roothints.Default().
	Hints *roothints.Hints
	// Clock is the DNS clock for the cache it makes and for DNSSEC
	// (signature validity, RFC 5011 timers); nil means the system clock.
	// A Cache given here should run on the same clock. Network timeouts
	// use the real clock regardless.
	Clock clock.Clock
	// Cache is the RRset cache; nil makes one with default sizes.
	Cache *cache.Cache
	// QNameMinimisation sends each server only the labels it needs to see
	// (RFC 9156), with the RFC's fallbacks.
	QNameMinimisation bool
	// Use0x20 randomises the case of upstream query names and requires the
	// reply to echo it, falling back for servers that do not.
	Use0x20 bool
	// DisableUpstreamIPv4 and DisableUpstreamIPv6 keep the resolver from
	// querying servers of that address family; the zero value queries
	// both. Disabling both is an error.
	DisableUpstreamIPv4, DisableUpstreamIPv6 bool
	// OutgoingAddrs are source addresses for upstream queries (one is
	// picked per query, per family); empty lets the kernel choose.
	OutgoingAddrs []netip.Addr
	// UpstreamLoopback allows queries to loopback servers. It is implied
	// when every root hint address is loopback (a lab).
	UpstreamLoopback bool
	// UpstreamPort is the servers' port; 0 means 53.
	UpstreamPort uint16
	// SpecialNames chooses local answers for RFC 6761 / RFC 6303 names.
	SpecialNames SpecialNames
	// Limits bound the work of one client question.
	Limits Limits
	// Logger receives debug and warning logs; nil discards them.
	Logger *slog.Logger
	// DNSSEC turns on DNSSEC validation; nil leaves it off (every answer
	// is security.Indeterminate). &DNSSECConfig{} validates with the
	// built-in root anchors.
	DNSSEC *DNSSECConfig
	// ServeStale turns on serve-stale (RFC 8767, stale.go); nil leaves it
	// off: a name whose servers fail is SERVFAIL. A Cache given here must
	// keep expired entries at least as long (cache.Config.ServeStale).
	ServeStale *StaleConfig
	// SharedCache is a second cache tier shared by a fleet (shared.go,
	// package sharedcache); nil for none.
	SharedCache SharedCache
	// Prefetch refreshes data asked for in the last tenth of its lifetime
	// in the background (prefetch.go), so that popular names do not expire
	// for their clients.
	Prefetch bool
	// UpstreamTCPIdleTimeout is how long a TCP connection to a server stays
	// open without queries for the next ones to reuse (RFC 7766; queries
	// are pipelined on it); 0 means 5 s, negative turns reuse off (a
	// connection per query). UpstreamTCPMaxConnsPerServer (0: 2) and
	// UpstreamTCPMaxConns (0: 256) bound the connections kept open.
	UpstreamTCPIdleTimeout       time.Duration
	UpstreamTCPMaxConnsPerServer int
	UpstreamTCPMaxConns          int
	// Upstream, when set, carries each query to an authoritative server
	// instead of the network (an in-memory world for tests; see
	// UpstreamExchanger); nil sends them over UDP and TCP.
	Upstream UpstreamExchanger
}

// DefaultConfig returns the defaults: built-in root hints, QNAME
// minimisation and 0x20 on, IPv4 and IPv6, default limits.
func DefaultConfig() Config {
	return Config{
		QNameMinimisation: true,
		Use0x20:           true,
		Limits:            DefaultLimits(),
	}
}

// Resolver resolves questions iteratively. It is safe for concurrent use.
type Resolver struct {
	cfg     Config
	limits  Limits
	cache   *cache.Cache
	sel     *selector
	x       *exchanger
	policy  addrPolicy
	roots   rootServers
	port    uint16
	special bool
	// localhostFallback answers localhost locally when the operator's
	// root does not (SpecialNamesAuto with own hints).
	localhostFallback bool
	log               *slog.Logger
	flights           flightGroup
	// dnssec is the DNSSEC validation (Config.DNSSEC); nil when off.
	dnssec *dnssec
	// zoneFails is the failure history of zones (RFC 9520 back-off and
	// one probe at a time).
	zoneFails *zoneFailures
	// stale is Config.ServeStale with defaults; nil when off.
	stale *StaleConfig
	// prefetch tracks the prefetches running (Config.Prefetch).
	prefetch prefetcher
	// glue is the parent-side glue of name servers (parentglue.go).
	glue *glueStore
	// stats counts for metrics (stats.go).
	stats *stats

	// started is set by Start; priming is set while background priming
	// runs (primeUntilDone); primeKick cuts its back-off short.
	started   atomic.Bool
	priming   atomic.Bool
	primeKick chan struct{}
	primeMu   sync.Mutex
	primeCtx  context.Context // ends when Start's ctx or bgCtx ends

	// bg is the background work (priming, RFC 5011 refreshes and their
	// ticker); Close ends it.
	bg background
}

// New makes a Resolver from cfg.
func New(cfg Config) (*Resolver, error) {
	if cfg.DisableUpstreamIPv4 && cfg.DisableUpstreamIPv6 {
		return nil, fmt.Errorf("resolver: neither IPv4 nor IPv6 upstream is enabled")
	}
	builtin := cfg.Hints == nil
	if builtin {
		cfg.Hints = roothints.Default()
	}
	roots, err := rootsFrom(cfg.Hints)
	if err != nil {
		return nil, fmt.Errorf("resolver: root hints: %w", err)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	var stale *StaleConfig
	if cfg.ServeStale != nil {
		s := cfg.ServeStale.withDefaults()
		stale = &s
	}
	if cfg.Cache == nil {
		cc := cache.Config{Clock: cfg.Clock}
		if stale != nil {
			cc.ServeStale = stale.Longest()
		}
		cfg.Cache = cache.New(cc)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Resolver{
		cfg:    cfg,
		limits: cfg.Limits.withDefaults(),
		cache:  cfg.Cache,
		roots:  roots,
		port:   cfg.UpstreamPort,
		log:    cfg.Logger,
		x:      newExchanger(),
		stale:  stale,
		stats:  newStats(),
		policy: addrPolicy{
			ipv4:          !cfg.DisableUpstreamIPv4,
			ipv6:          !cfg.DisableUpstreamIPv6,
			allowLoopback: cfg.UpstreamLoopback || cfg.Hints.AllLoopback(),
		},
	}
	if r.port == 0 {
		r.port = 53
	}
	r.x.reuseTCP(cfg.UpstreamTCPIdleTimeout, cfg.UpstreamTCPMaxConnsPerServer, cfg.UpstreamTCPMaxConns)
	r.x.upstream = cfg.Upstream
	for _, a := range cfg.OutgoingAddrs {
		if a = a.Unmap(); a.Is4() {
			r.x.local4 = append(r.x.local4, a)
		} else {
			r.x.local6 = append(r.x.local6, a)
		}
	}
	switch cfg.SpecialNames {
	case SpecialNamesLocal:
		r.special = true
	case SpecialNamesAuto:
		r.special = builtin
		r.localhostFallback = !builtin
	}
	r.sel = newSelector(&r.limits)
	r.zoneFails = newZoneFailures()
	r.glue = newGlueStore(cfg.Clock)
	r.bg.ctx, r.bg.cancel = context.WithCancel(context.Background())
	r.primeCtx = r.bg.ctx
	r.primeKick = make(chan struct{}, 1)
	if cfg.DNSSEC != nil {
		d, err := newDNSSEC(cfg.DNSSEC, r)
		if err != nil {
			return nil, fmt.Errorf("resolver: %w", err)
		}
		r.dnssec = d
	}
	return r, nil
}

// Cache returns the RRset cache the resolver uses.
func (r *Resolver) Cache() *cache.Cache { return r.cache }

// Limits returns the limits in force (defaults filled in).
func (r *Resolver) Limits() Limits { return r.limits }

// Clock returns the DNS clock the resolver runs on (the one its cache and
// DNSSEC use), for the caches built beside it.
func (r *Resolver) Clock() clock.Clock { return r.cfg.Clock }
