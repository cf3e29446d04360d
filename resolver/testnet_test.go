package resolver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/roothints"
)

// The tests build small DNS hierarchies of test servers. Tests of
// resolution logic put them in an in-memory world (memHierarchy,
// memServer: Config.Upstream, no sockets); tests of what the wire adds
// (timeouts, TCP fallback, 0x20 and cookie spoofing, source ports) serve
// them on loopback port 53 in this package's block, 127.30.0.0/14, each
// test its own 127.30.N.0/24 (basicHierarchy, startServer).

// testZone is one zone of a test hierarchy, written as zone-file lines.
type testZone struct {
	origin string
	rrs    []dns.RR
	// extra is added to the additional section of every referral (for
	// poisoning attempts).
	extra []dns.RR
}

func zone(t testing.TB, origin string, lines ...string) *testZone {
	t.Helper()
	z, err := parseZone(origin, lines...)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func parseZone(origin string, lines ...string) (*testZone, error) {
	z := &testZone{origin: canonical(origin)}
	for _, l := range lines {
		rr, err := dns.NewRR("$ORIGIN " + z.origin + "\n$TTL 300\n" + l)
		if err != nil {
			return nil, fmt.Errorf("zone %s: %q: %w", origin, l, err)
		}
		z.rrs = append(z.rrs, rr)
	}
	return z, nil
}

// testServer is an authoritative server for a few test zones with hooks
// to misbehave.
type testServer struct {
	addr  netip.Addr
	zones []*testZone

	mu      sync.Mutex
	queries []dns.Question
	remotes []netip.AddrPort
	// hook, when set, may answer (true) instead of the zones.
	hook  func(w dns.ResponseWriter, r *dns.Msg) bool
	delay time.Duration
	drop  bool

	udp, tcp *dns.Server
}

func startServer(t testing.TB, addr string, zones ...*testZone) *testServer {
	t.Helper()
	s, err := listenServer(addr, zones...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

func (s *testServer) stop() {
	if s.udp == nil {
		return // in memory
	}
	_ = s.udp.Shutdown()
	_ = s.tcp.Shutdown()
}

// listenServer starts a test server on addr port 53 (UDP and TCP).
func listenServer(addr string, zones ...*testZone) (*testServer, error) {
	return listenServerPort(addr, "53", zones...)
}

// newTestServer is a test server's state, serving nowhere yet.
func newTestServer(addr string, zones ...*testZone) *testServer {
	s := &testServer{addr: netip.MustParseAddr(addr), zones: zones}
	slices.SortFunc(s.zones, func(a, b *testZone) int { return dns.CountLabel(b.origin) - dns.CountLabel(a.origin) })
	return s
}

// memServer puts a test server at addr port 53 of the in-memory world w:
// the same zones, hooks and knobs, no sockets (see memHierarchy).
func memServer(w *dnstest.World, addr string, zones ...*testZone) *testServer {
	s := newTestServer(addr, zones...)
	w.Handle(netip.AddrPortFrom(s.addr, 53), dns.HandlerFunc(s.serve))
	return s
}

// listenServerPort starts a test server on addr and port (UDP and TCP).
func listenServerPort(addr, port string, zones ...*testZone) (*testServer, error) {
	s := newTestServer(addr, zones...)
	h := dns.HandlerFunc(s.serve)
	pc, err := net.ListenPacket("udp", net.JoinHostPort(addr, port))
	if err != nil {
		return nil, fmt.Errorf("listen udp %s: %w", addr, err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, port))
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("listen tcp %s: %w", addr, err)
	}
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: ln, Handler: h}
	started := make(chan struct{}, 2)
	s.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	s.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go s.udp.ActivateAndServe()
	go s.tcp.ActivateAndServe()
	<-started
	<-started
	return s, nil
}

func (s *testServer) set(f func(s *testServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

// Queries returns the questions received so far.
func (s *testServer) Queries() []dns.Question {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.queries)
}

// addRecords adds records to the server's first zone.
func (s *testServer) addRecords(t testing.TB, lines ...string) {
	t.Helper()
	var rrs []dns.RR
	for _, l := range lines {
		rrs = append(rrs, dnstest.MustRR(t, l))
	}
	s.set(func(s *testServer) {
		z := *s.zones[0]
		z.rrs = append(slices.Clone(z.rrs), rrs...)
		s.zones = append([]*testZone{&z}, s.zones[1:]...)
	})
}

// Remotes returns the source addresses of the queries received.
func (s *testServer) Remotes() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.remotes)
}

func (s *testServer) count() int { return len(s.Queries()) }

func (s *testServer) reset() {
	s.mu.Lock()
	s.queries = nil
	s.mu.Unlock()
}

func (s *testServer) serve(w dns.ResponseWriter, r *dns.Msg) {
	s.mu.Lock()
	if len(r.Question) > 0 {
		s.queries = append(s.queries, r.Question[0])
	}
	if ap, err := netip.ParseAddrPort(w.RemoteAddr().String()); err == nil {
		s.remotes = append(s.remotes, ap)
	}
	hook, delay, drop, zones := s.hook, s.delay, s.drop, s.zones
	s.mu.Unlock()
	if drop {
		return
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	if hook != nil && hook(w, r) {
		return
	}
	_ = w.WriteMsg(answerFrom(zones, r))
}

// answer is a plain authoritative answer from the zones.
func answerFrom(zones []*testZone, r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(1232, opt.Do())
	}
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	q := r.Question[0]
	name := canonical(q.Name)
	var z *testZone
	for _, c := range zones {
		if isSubdomain(name, c.origin) {
			z = c
			break
		}
	}
	if z == nil {
		m.Rcode = dns.RcodeRefused
		return m
	}
	// A zone cut between the origin and the name: referral.
	var cut string
	for _, rr := range z.rrs {
		h := rr.Header()
		if h.Rrtype == dns.TypeNS && h.Name != z.origin && isSubdomain(name, h.Name) &&
			!(q.Qtype == dns.TypeDS && h.Name == name) {
			if cut == "" || dns.CountLabel(h.Name) < dns.CountLabel(cut) {
				cut = h.Name
			}
		}
	}
	if cut != "" {
		for _, rr := range z.rrs {
			if rr.Header().Name == cut && (rr.Header().Rrtype == dns.TypeNS || rr.Header().Rrtype == dns.TypeDS) {
				m.Ns = append(m.Ns, rr)
				if ns, ok := rr.(*dns.NS); ok {
					for _, g := range z.rrs {
						if g.Header().Name == ns.Ns && (g.Header().Rrtype == dns.TypeA || g.Header().Rrtype == dns.TypeAAAA) {
							m.Extra = append(m.Extra, g)
						}
					}
				}
			}
		}
		m.Extra = append(m.Extra, z.extra...)
		return m
	}
	m.Authoritative = true
	cur := name
	for hops := 0; hops < 8; hops++ {
		exists, found := false, false
		var cname *dns.CNAME
		for _, rr := range z.rrs {
			h := rr.Header()
			if h.Name == cur {
				exists = true
				if h.Rrtype == q.Qtype {
					m.Answer = append(m.Answer, rr)
					found = true
				} else if c, ok := rr.(*dns.CNAME); ok {
					cname = c
				}
			} else if strings.HasSuffix(h.Name, "."+cur) {
				exists = true // empty non-terminal
			}
		}
		if found {
			return m
		}
		if cname != nil {
			m.Answer = append(m.Answer, cname)
			if isSubdomain(cname.Target, z.origin) {
				cur = cname.Target
				continue
			}
			return m
		}
		for _, rr := range z.rrs {
			if rr.Header().Rrtype == dns.TypeSOA {
				m.Ns = append(m.Ns, rr)
			}
		}
		if !exists {
			m.Rcode = dns.RcodeNameError
		}
		return m
	}
	return m
}

// hintsFor makes root hints naming one root server at each address.
func hintsFor(addrs ...string) *roothints.Hints {
	h := &roothints.Hints{Addrs: map[string][]netip.Addr{}}
	for i, a := range addrs {
		name := string(rune('a'+i)) + ".root.test."
		h.NS = append(h.NS, &dns.NS{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 3600000}, Ns: name})
		h.Addrs[name] = []netip.Addr{netip.MustParseAddr(a)}
	}
	return h
}

// newTestResolver makes a resolver on the given hints with test-friendly
// settings (IPv4 only, a manual clock); QNAME minimisation stays on, as
// by default.
func newTestResolver(t testing.TB, h *roothints.Hints, mod func(*Config)) *Resolver {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Hints = h
	cfg.DisableUpstreamIPv6 = true
	cfg.Clock = clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// mustFail resolves name/qtype expecting SERVFAIL and returns why; it
// fails the test when the question was answered or got another rcode.
func mustFail(t testing.TB, r *Resolver, name string, qtype uint16) *Error {
	t.Helper()
	res, err := r.Resolve(ctxT(t), name, qtype)
	var re *Error
	if !errors.As(err, &re) || res != nil || re.Rcode != dns.RcodeServerFailure {
		t.Fatalf("%s %s: result %v, err %v; want a SERVFAIL error and no result", name, dns.TypeToString[qtype], res, err)
	}
	return re
}

// rcodeOf is the rcode a client would see for Resolve's res, err.
func rcodeOf(res *Result, err error) int {
	var re *Error
	switch {
	case res != nil:
		return res.Rcode
	case errors.As(err, &re):
		return re.Rcode
	}
	return -1
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// basicHierarchy is root (.1) -> test. (.2) -> example.test. (.3), with
// glue, in 127.30.<n>.0/24.
type hierarchy struct {
	root, tld, zone *testServer
	hints           *roothints.Hints
	// world is the in-memory network of a memHierarchy; nil on sockets.
	world *dnstest.World
}

// memHierarchy is basicHierarchy in an in-memory world of its own, for
// tests of resolution logic that the wire adds nothing to: no sockets, so
// no fixed addresses to share and no lock. Its resolvers come from
// h.resolver, which wires the world in as Config.Upstream.
func memHierarchy(t testing.TB, zoneLines ...string) *hierarchy {
	t.Helper()
	w := dnstest.NewWorld()
	h := buildHierarchy(t, memPrefix, func(addr string, z *testZone) *testServer { return memServer(w, addr, z) }, zoneLines...)
	h.world = w
	return h
}

// memPrefix is the /24 of every memHierarchy: loopback (127.98.0.0/16,
// this package's in-memory block), which nothing binds; each world is
// its own.
const memPrefix = "127.98.0."

// memAddr is the address of a further server in a memHierarchy's world.
func memAddr(host int) string { return memPrefix + itoa(host) }

// resolver makes a test resolver (newTestResolver) on h's hints and, for
// a memHierarchy, its world.
func (h *hierarchy) resolver(t testing.TB, mod func(*Config)) *Resolver {
	t.Helper()
	return newTestResolver(t, h.hints, func(c *Config) {
		if h.world != nil {
			c.Upstream = h.world
		}
		if mod != nil {
			mod(c)
		}
	})
}

func basicHierarchy(t testing.TB, n int, zoneLines ...string) *hierarchy {
	t.Helper()
	return basicHierarchyAt(t, "127.30."+itoa(n)+".", zoneLines...)
}

// basicHierarchyAt is basicHierarchy on the addresses p+"1", p+"2", p+"3"
// (p is a /24 prefix such as "127.73.1.").
func basicHierarchyAt(t testing.TB, p string, zoneLines ...string) *hierarchy {
	t.Helper()
	listen := func(addr string, z *testZone) *testServer { return startServer(t, addr, z) }
	return buildHierarchy(t, p, listen, zoneLines...)
}

// buildHierarchy builds basicHierarchy's zones on the servers serve makes.
func buildHierarchy(t testing.TB, p string, serve func(addr string, z *testZone) *testServer, zoneLines ...string) *hierarchy {
	t.Helper()
	root := serve(p+"1", zone(t, ".",
		". SOA a.root.test. hostmaster.root.test. 1 3600 600 86400 3600",
		". NS a.root.test.",
		"test. NS ns.nic.test.",
		"ns.nic.test. A "+p+"2",
	))
	tld := serve(p+"2", zone(t, "test.",
		"test. SOA ns.nic.test. hostmaster.nic.test. 1 3600 600 86400 600",
		"test. NS ns.nic.test.",
		"ns.nic.test. A "+p+"2",
		"example.test. NS ns1.example.test.",
		"ns1.example.test. A "+p+"3",
	))
	lines := append([]string{
		"example.test. SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 60",
		"example.test. NS ns1.example.test.",
		"ns1.example.test. A " + p + "3",
		"www.example.test. A 192.0.2.80",
	}, zoneLines...)
	z := serve(p+"3", zone(t, "example.test.", lines...))
	return &hierarchy{root: root, tld: tld, zone: z, hints: hintsFor(p + "1")}
}
