// Package lab is a simulated DNSSEC-signed internet on loopback: a signed
// root, TLDs and second-level zones that exercise the cases a validating
// resolver must get right (see README.md), each name server on its own
// loopback address at port 53, with knobs for delay, loss and death.
package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/roothints"
	"github.com/sextant-dns/sextant/transport"
)

// Defaults for Config.
const (
	DefaultBulkHosts = 10000
	DefaultSlowDelay = 200 * time.Millisecond
	// MaxBulkHosts bounds BulkHosts (the addresses of 127.18.0.0/15).
	MaxBulkHosts = 1 << 17
)

// Config configures a lab.
type Config struct {
	// AddrBase is the start of the /16 the servers live in (127.x.0.0).
	// Zero: the first free one of 127.53.0.0/16 .. 127.62.0.0/16.
	AddrBase netip.Addr
	// Clock dates the signatures; default the system clock.
	Clock clock.Clock
	// BulkHosts is the number of h<i>.bulk.test names; 0 means
	// DefaultBulkHosts, negative none.
	BulkHosts int
	// SlowDelay is the delay of HostSlow; 0 means DefaultSlowDelay.
	SlowDelay time.Duration
	Logger    *slog.Logger
}

// Lab is a running lab.
type Lab struct {
	cfg  Config
	base netip.Addr
	// mu guards the zones' records and keys against Resign and the root
	// KSK rollover (rollover.go).
	mu      sync.RWMutex
	world   *world
	servers []*Server
	byHost  map[string]*Server
}

// Start builds and signs every zone and starts every server. It returns
// once all servers listen.
func Start(ctx context.Context, cfg Config) (*Lab, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.System{}
	}
	switch {
	case cfg.BulkHosts == 0:
		cfg.BulkHosts = DefaultBulkHosts
	case cfg.BulkHosts < 0:
		cfg.BulkHosts = 0
	case cfg.BulkHosts > MaxBulkHosts:
		return nil, fmt.Errorf("lab: BulkHosts %d over %d", cfg.BulkHosts, MaxBulkHosts)
	}
	if cfg.SlowDelay == 0 {
		cfg.SlowDelay = DefaultSlowDelay
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	base, err := chooseBase(cfg.AddrBase)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	w, err := buildWorld(cfg.Clock.Now(), base, cfg.BulkHosts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := &Lab{cfg: cfg, base: base, world: w, byHost: make(map[string]*Server)}
	if err := l.startServers(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// chooseBase returns the block to use: the configured one if set, else the
// first default block where every server address is free on port 53.
func chooseBase(want netip.Addr) (netip.Addr, error) {
	if want.IsValid() {
		if !want.Is4() || !want.IsLoopback() {
			return netip.Addr{}, fmt.Errorf("lab: AddrBase %s is not an IPv4 loopback address", want)
		}
		b := want.As4()
		b[2], b[3] = 0, 0
		base := netip.AddrFrom4(b)
		if err := probeBlock(base); err != nil {
			return netip.Addr{}, fmt.Errorf("lab: block %s/16 is taken: %w", base, err)
		}
		return base, nil
	}
	var errs []error
	for i := range 10 {
		base := netip.AddrFrom4([4]byte{127, byte(53 + i), 0, 0})
		err := probeBlock(base)
		if err == nil {
			return base, nil
		}
		errs = append(errs, err)
	}
	return netip.Addr{}, fmt.Errorf("lab: no free address block: %w", errors.Join(errs...))
}

// probeBlock binds, without SO_REUSEPORT, UDP and TCP port 53 on every
// server address of the block and lets go again. A plain bind fails where
// another lab's sockets are, even SO_REUSEPORT ones.
func probeBlock(base netip.Addr) error {
	for _, s := range labServers() {
		ap := netip.AddrPortFrom(serverAddr(base, s.offset), 53).String()
		u, err := net.ListenPacket("udp4", ap)
		if err != nil {
			return fmt.Errorf("probe %s: %w", ap, err)
		}
		u.Close()
		t, err := net.Listen("tcp4", ap)
		if err != nil {
			return fmt.Errorf("probe %s: %w", ap, err)
		}
		t.Close()
	}
	return nil
}

// startServers makes one Server per serverDef with the zones whose NS point
// at it, and starts them.
func (l *Lab) startServers() error {
	aliases := hostAliases()
	for _, def := range labServers() {
		s := &Server{host: def.host, names: []string{def.host}, addr: serverAddr(l.base, def.offset)}
		for alias, host := range aliases {
			if host == def.host {
				s.names = append(s.names, alias)
			}
		}
		sort.Strings(s.names[1:])
		var zones []*authority.Zone
		for _, z := range l.world.zones {
			if z.zone == nil {
				continue
			}
			for _, ns := range z.def.ns {
				if ns == def.host || aliases[ns] == def.host {
					zones = append(zones, z.zone)
					s.zones = append(s.zones, z.def.origin)
					break
				}
			}
		}
		s.auth = authority.NewServer(zones...)
		s.drop.Store(def.drop)
		s.refuse.Store(def.refuse)
		if def.slow {
			s.SetDelay(l.cfg.SlowDelay)
		}
		d, err := transport.NewDo53(transport.Do53Config{ListenerConfig: transport.ListenerConfig{
			Addrs:   []string{s.AddrPort().String()},
			Handler: s,
			Allow:   []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
			Logger:  l.cfg.Logger.With("lab-server", def.host),
		}})
		if err != nil {
			return fmt.Errorf("lab server %s: %w", def.host, err)
		}
		if err := d.Start(); err != nil {
			return fmt.Errorf("lab server %s: %w", def.host, err)
		}
		s.do53 = d
		l.servers = append(l.servers, s)
		for _, n := range s.names {
			l.byHost[n] = s
		}
	}
	return nil
}

// Close stops every server.
func (l *Lab) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var errs []error
	for _, s := range l.servers {
		if s.do53 != nil {
			if err := s.do53.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("lab server %s: %w", s.host, err))
			}
		}
	}
	return errors.Join(errs...)
}

// AddrBase is the block the lab's servers live in.
func (l *Lab) AddrBase() netip.Addr { return l.base }

// Server returns the server behind a name-server host name, or nil.
func (l *Lab) Server(host string) *Server { return l.byHost[dnsname.Canonical(host)] }

// Servers lists all servers in address order.
func (l *Lab) Servers() []*Server { return append([]*Server(nil), l.servers...) }

// ServersFor lists the servers authoritative for the zone origin, in the
// order of its NS records.
func (l *Lab) ServersFor(origin string) []*Server {
	z := l.world.by[dnsname.Canonical(origin)]
	if z == nil || z.def.delegationOnly {
		return nil
	}
	var out []*Server
	for _, ns := range z.def.ns {
		if s := l.Server(ns); s != nil && !containsServer(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func containsServer(list []*Server, s *Server) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Zones lists the origins of every zone in the lab, delegation-only ones
// (Lame) included.
func (l *Lab) Zones() []string {
	out := make([]string, 0, len(l.world.zones))
	for _, z := range l.world.zones {
		out = append(out, z.def.origin)
	}
	return out
}

// ZoneRecords returns a copy of the records a zone serves (signed and, for
// the bogus cases, broken), or nil for an unknown zone.
func (l *Lab) ZoneRecords(origin string) []dns.RR {
	l.mu.RLock()
	defer l.mu.RUnlock()
	z := l.world.by[dnsname.Canonical(origin)]
	if z == nil {
		return nil
	}
	out := make([]dns.RR, len(z.rrs))
	for i, rr := range z.rrs {
		out[i] = dns.Copy(rr)
	}
	return out
}

// Keys returns a zone's signing keys (nil for an unsigned zone).
func (l *Lab) Keys(origin string) []*authority.Key {
	l.mu.RLock()
	defer l.mu.RUnlock()
	z := l.world.by[dnsname.Canonical(origin)]
	if z == nil {
		return nil
	}
	return append([]*authority.Key(nil), z.keys...)
}

// Resign signs every zone again with the keys it has, dated by the
// clock's current time, and swaps the new zones in while serving. Tests
// that move the clock past the 30-day validity call it to keep the lab
// valid; the expired zone stays expired relative to the new time.
func (l *Lab) Resign() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.world.signAll(l.cfg.Clock.Now()); err != nil {
		return err
	}
	for _, s := range l.servers {
		for _, origin := range s.zones {
			s.auth.Set(l.world.by[origin].zone)
		}
	}
	return nil
}

// RootHints returns the NS records of the root and the A records of the
// root servers, as a root hints file has them.
func (l *Lab) RootHints() []dns.RR {
	var out []dns.RR
	root := l.world.by[Root]
	for _, ns := range root.def.ns {
		out = append(out, &dns.NS{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 3600000}, Ns: ns})
	}
	for _, ns := range root.def.ns {
		out = append(out, &dns.A{Hdr: dns.RR_Header{Name: ns, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 3600000}, A: l.Server(ns).Addr().AsSlice()})
	}
	return out
}

// TrustAnchors returns the root's DS (SHA-256) and its KSK DNSKEY.
func (l *Lab) TrustAnchors() []dns.RR {
	return append(l.RootDS(), l.RootKeys()...)
}

// RootDS returns the DS records of the root's KSK.
func (l *Lab) RootDS() []dns.RR {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []dns.RR
	for _, k := range l.world.by[Root].keys {
		if k.IsSEP() {
			out = append(out, k.DS(dns.SHA256))
		}
	}
	return out
}

// ZoneDS returns the DS records (SHA-256) of a signed zone's KSKs, the
// trust anchor of a zone no chain reaches (Island); nil for an unsigned
// or unknown zone.
func (l *Lab) ZoneDS(origin string) []dns.RR {
	l.mu.RLock()
	defer l.mu.RUnlock()
	z := l.world.by[dnsname.Canonical(origin)]
	if z == nil {
		return nil
	}
	var out []dns.RR
	for _, k := range z.keys {
		if k.IsSEP() {
			out = append(out, k.DS(dns.SHA256))
		}
	}
	return out
}

// RootKeys returns the root's KSK DNSKEY records.
func (l *Lab) RootKeys() []dns.RR {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []dns.RR
	for _, k := range l.world.by[Root].keys {
		if k.IsSEP() {
			out = append(out, dns.Copy(k.DNSKEY))
		}
	}
	return out
}

// Hints returns the lab's root hints (RootHints) as a resolver takes them.
func (l *Lab) Hints() *roothints.Hints {
	var b strings.Builder
	for _, rr := range l.RootHints() {
		b.WriteString(rr.String())
		b.WriteByte('\n')
	}
	h, err := roothints.ParseHints(strings.NewReader(b.String()), "lab root hints")
	if err != nil {
		panic(fmt.Sprintf("lab: its own root hints do not parse: %v", err)) // a bug in RootHints
	}
	return h
}
