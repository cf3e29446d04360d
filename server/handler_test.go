package server

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/internal/do53test"
	"github.com/sextant-dns/sextant/internal/labtest"
	"github.com/sextant-dns/sextant/lab"
	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/transport"
)

// Loopback blocks of this package's tests (ARCHITECTURE.md): the labs
// live in 127.94.0.0/16 and 127.96.0.0/16, front ends on 127.94.255.x.
var (
	labBase       = netip.MustParseAddr("127.94.0.0")
	manualLabBase = netip.MustParseAddr("127.96.0.0")
)

// startLab starts the lab on base, dated by clk.
func startLab(t testing.TB, base netip.Addr, clk clock.Clock) *lab.Lab {
	t.Helper()
	return labtest.Start(t, lab.Config{AddrBase: base, Clock: clk, BulkHosts: -1})
}

// newResolver makes a resolver for the lab on clk, validating with the
// lab's anchors when dnssec.
func newResolver(t testing.TB, l *lab.Lab, clk clock.Clock, dnssec bool) *resolver.Resolver {
	t.Helper()
	cfg := resolver.DefaultConfig()
	cfg.Hints = l.Hints()
	cfg.DisableUpstreamIPv6 = true
	cfg.Clock = clk
	if dnssec {
		cfg.DNSSEC = &resolver.DNSSECConfig{Anchors: l.TrustAnchors()}
	}
	r, err := resolver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// zoneQueries sums the queries the servers of zone received.
func zoneQueries(l *lab.Lab, zone string) uint64 {
	var n uint64
	for _, s := range l.ServersFor(zone) {
		n += s.Queries()
	}
	return n
}

// recorder is a transport.ResponseWriter that keeps what was written.
type recorder struct {
	msg *dns.Msg
	raw []byte
}

func (w *recorder) WriteMsg(m *dns.Msg) error { w.msg = m; return nil }
func (w *recorder) Write(b []byte) error {
	w.raw = append([]byte(nil), b...)
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return err
	}
	w.msg = m
	return nil
}

func serve(t *testing.T, h transport.Handler, q *dns.Msg) *recorder {
	t.Helper()
	raw, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	req := &transport.Request{Msg: q, Raw: raw, Remote: netip.MustParseAddrPort("127.0.0.1:5000"),
		Local: netip.MustParseAddrPort("127.0.0.1:53"), Proto: transport.UDP, MaxSize: 1232}
	w := &recorder{}
	h.ServeDNS(context.Background(), w, req)
	if w.msg == nil {
		t.Fatal("no response written")
	}
	return w
}

// fakeLocal is a local zone backend serving one name, or panicking.
type fakeLocal struct {
	zone  string
	panic bool
}

func (f fakeLocal) Covers(name string) bool { return dnsname.IsAtOrBelow(name, f.zone) }
func (f fakeLocal) Answer(q *dns.Msg) *dns.Msg {
	if f.panic {
		panic("local zone bug")
	}
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{"local"}}}
	return m
}

func TestHandler(t *testing.T) {
	l := startLab(t, labBase, clock.System{})
	r := newResolver(t, l, clock.System{}, false)
	h := New(r, Config{Local: fakeLocal{zone: "corp.internal."}})
	name := "www." + lab.SecureAlg13

	// Resolution: RA set, RD echoed, question as asked, OPT when asked.
	asked := "WwW.SeCuRe13.TeSt."
	w := serve(t, h, dnstest.Query(asked, dns.TypeA, dnstest.EDNS(4096, false)))
	m := w.msg
	if !m.RecursionAvailable || !m.RecursionDesired || m.Question[0].Name != asked || m.IsEdns0() == nil || m.IsEdns0().UDPSize() != transport.DefaultEDNSSize {
		t.Fatalf("response header/question/OPT wrong:\n%v", m)
	}
	if len(m.Answer) != 1 || w.raw != nil {
		t.Fatalf("answer %v (from the answer cache: %v)", m.Answer, w.raw != nil)
	}
	n := zoneQueries(l, lab.SecureAlg13)
	// The same question again: the ready-to-send cache answers from the
	// raw query, with the new ID and case.
	q2 := dnstest.Query("www.SECURE13.test.", dns.TypeA, dnstest.EDNS(4096, false))
	w = serve(t, h, q2)
	if w.raw == nil {
		t.Fatal("second response did not come from the answer cache")
	}
	if w.msg.Id != q2.Id || w.msg.Question[0].Name != "www.SECURE13.test." || zoneQueries(l, lab.SecureAlg13) != n {
		t.Fatalf("cached response wrong: %v", w.msg)
	}
	// Without EDNS: no OPT.
	if w = serve(t, h, dnstest.Query(name, dns.TypeA)); w.msg.IsEdns0() != nil {
		t.Fatal("OPT in the response to a query without EDNS")
	}
	// Local zones answer first, without the network.
	before := zoneQueries(l, lab.Root)
	w = serve(t, h, dnstest.Query("host.corp.internal.", dns.TypeTXT))
	if len(w.msg.Answer) != 1 || !w.msg.RecursionAvailable || zoneQueries(l, lab.Root) != before {
		t.Fatalf("local answer wrong: %v", w.msg)
	}
	// SERVFAIL carries an EDE, and is not kept in the answer cache.
	for i := 0; i < 2; i++ {
		w = serve(t, h, dnstest.Query("www."+lab.Lame, dns.TypeA, dnstest.EDNS(4096, false)))
		if w.msg.Rcode != dns.RcodeServerFailure || w.raw != nil {
			t.Fatalf("rcode %s (from the answer cache: %v), want SERVFAIL resolved", dns.RcodeToString[w.msg.Rcode], w.raw != nil)
		}
		if ede := dnstest.EDE(w.msg); ede == nil || ede.InfoCode == dns.ExtendedErrorCodeOther || ede.ExtraText == "" {
			t.Fatalf("EDE %v, want a specific code with text", ede)
		}
	}
}

// TestHandlerRecoversFromPanic: a bug below the handler costs one SERVFAIL
// with an EDE, not the server.
func TestHandlerRecoversFromPanic(t *testing.T) {
	l := startLab(t, labBase, clock.System{})
	h := New(newResolver(t, l, clock.System{}, false), Config{Local: fakeLocal{zone: "corp.internal.", panic: true}})
	w := serve(t, h, dnstest.Query("host.corp.internal.", dns.TypeTXT, dnstest.EDNS(4096, false)))
	if w.msg.Rcode != dns.RcodeServerFailure || dnstest.EDE(w.msg) == nil || dnstest.EDE(w.msg).ExtraText == "" {
		t.Fatalf("%v, want SERVFAIL with an EDE saying why", w.msg)
	}
}

// TestHandlerBehindDo53 serves the resolver with the real Do53 front end
// and queries it as a stub would.
func TestHandlerBehindDo53(t *testing.T) {
	l := startLab(t, labBase, clock.System{})
	r := newResolver(t, l, clock.System{}, false)
	srv := do53test.Start(t, "127.94.255.1:0", New(r, Config{}))
	addr := srv.Addrs()[0].String()
	before := zoneQueries(l, lab.SecureAlg8)
	for _, proto := range []string{"udp", "tcp", "udp"} {
		c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
		q := dnstest.Query("WWW.secure8.test.", dns.TypeA, dnstest.EDNS(4096, false))
		m, _, err := c.Exchange(q, addr)
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || !m.RecursionAvailable || m.Question[0].Name != "WWW.secure8.test." {
			t.Fatalf("%s: response %v", proto, m)
		}
	}
	if n := zoneQueries(l, lab.SecureAlg8) - before; n != 1 {
		t.Fatalf("zone got %d queries for three identical client queries, want 1", n)
	}
}

// TestTTLCappedBySignature: data whose signatures expire in 100 s is
// cached, and answered (also from the ready-to-send answer cache), with a
// TTL of at most 100 s, whatever its own TTL says.
func TestTTLCappedBySignature(t *testing.T) {
	t0 := time.Now().UTC().Truncate(time.Second)
	l := startLab(t, manualLabBase, clock.NewManual(t0))
	name := "www." + lab.SecureAlg13
	for _, rr := range l.ZoneRecords(lab.SecureAlg13) {
		if rr.Header().Name == name && rr.Header().Rrtype == dns.TypeA && rr.Header().Ttl <= 100 {
			t.Fatalf("%v: the zone's TTL must exceed 100 s to show the cap", rr)
		}
	}
	expiry := t0.Add(30 * 24 * time.Hour) // the lab's signature lifetime
	clk := clock.NewManual(expiry.Add(-100 * time.Second))
	r := newResolver(t, l, clk, true)
	h := New(r, Config{})
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeA)
	q.SetEdns0(1232, true)
	for i, from := range []string{"resolution", "answer cache"} {
		w := serve(t, h, q)
		if !w.msg.AuthenticatedData || len(w.msg.Answer) == 0 || (i == 1) != (w.raw != nil) {
			t.Fatalf("%s: %v (raw %v)", from, w.msg, w.raw != nil)
		}
		for _, rr := range w.msg.Answer {
			if rr.Header().Ttl > 100 {
				t.Errorf("%s: %v, want TTLs capped at 100 s", from, rr)
			}
		}
	}
	e, ok := r.Cache().Get(name, dns.TypeA, dns.ClassINET)
	if !ok || e.Security != security.Secure {
		t.Fatalf("cache entry found=%v", ok)
	}
	if rem := r.Cache().Remaining(e); rem > 100 {
		t.Errorf("cached for %d s, beyond the signature expiration in 100 s", rem)
	}
}
