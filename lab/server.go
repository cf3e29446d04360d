package lab

import (
	"context"
	"math"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/transport"
)

// Server is one lab name server: one loopback address, port 53, UDP and
// TCP. Its misbehaviour knobs can be turned at any time, from any
// goroutine.
type Server struct {
	host  string   // primary host name
	names []string // every NS host name that points here
	addr  netip.Addr
	zones []string
	auth  *authority.Server
	do53  *transport.Do53

	delay   atomic.Int64  // nanoseconds added before answering
	loss    atomic.Uint64 // float64 bits: probability of dropping a query
	drop    atomic.Bool   // drop every query
	refuse  atomic.Bool   // answer REFUSED to every query
	forge   atomic.Bool   // corrupt every RRSIG it sends
	queries atomic.Uint64 // queries received, dropped ones included
	// onQuery, when set, sees every question received (tests count them).
	onQuery atomic.Pointer[func(dns.Question)]
}

// Host is the server's primary host name.
func (s *Server) Host() string { return s.host }

// Names lists every name-server host name that resolves to this server.
func (s *Server) Names() []string { return append([]string(nil), s.names...) }

// Addr is the server's loopback address; it listens on port 53.
func (s *Server) Addr() netip.Addr { return s.addr }

// AddrPort is Addr with port 53.
func (s *Server) AddrPort() netip.AddrPort { return netip.AddrPortFrom(s.addr, 53) }

// Zones lists the origins the server is authoritative for.
func (s *Server) Zones() []string { return append([]string(nil), s.zones...) }

// SetDelay makes the server wait d before answering each query.
func (s *Server) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

// Delay is the current added delay.
func (s *Server) Delay() time.Duration { return time.Duration(s.delay.Load()) }

// SetLoss makes the server drop each query with probability p (0..1).
func (s *Server) SetLoss(p float64) {
	p = math.Max(0, math.Min(1, p))
	s.loss.Store(math.Float64bits(p))
}

// SetDrop makes the server drop every query (a dead server that is still
// bound, so clients see timeouts, not ICMP errors).
func (s *Server) SetDrop(drop bool) { s.drop.Store(drop) }

// Dropping reports whether the server drops everything.
func (s *Server) Dropping() bool { return s.drop.Load() }

// SetRefuse makes the server answer REFUSED to every query.
func (s *Server) SetRefuse(refuse bool) { s.refuse.Store(refuse) }

// Refusing reports whether the server answers REFUSED to everything.
func (s *Server) Refusing() bool { return s.refuse.Load() }

// SetForgeSignatures makes the server corrupt the signature of every
// RRSIG it sends (answers, referrals' DS, denial proofs), as a broken or
// attacked secondary would, while its siblings serve the zone intact.
func (s *Server) SetForgeSignatures(forge bool) { s.forge.Store(forge) }

// SetOnQuery calls f with the question of every query received (dropped
// ones included); nil stops it. f must be safe for concurrent use.
func (s *Server) SetOnQuery(f func(dns.Question)) {
	if f == nil {
		s.onQuery.Store(nil)
		return
	}
	s.onQuery.Store(&f)
}

// Queries counts the queries received so far, dropped ones included.
func (s *Server) Queries() uint64 { return s.queries.Load() }

// ServeDNS applies the knobs, then lets the authoritative server answer.
func (s *Server) ServeDNS(ctx context.Context, w transport.ResponseWriter, r *transport.Request) {
	s.queries.Add(1)
	if f := s.onQuery.Load(); f != nil && len(r.Msg.Question) == 1 {
		(*f)(r.Msg.Question[0])
	}
	if s.drop.Load() {
		return
	}
	if p := math.Float64frombits(s.loss.Load()); p > 0 && rand.Float64() < p {
		return
	}
	if d := time.Duration(s.delay.Load()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
	if s.refuse.Load() {
		m := new(dns.Msg)
		m.SetRcode(r.Msg, dns.RcodeRefused)
		_ = w.WriteMsg(m)
		return
	}
	if s.forge.Load() {
		w = forgingWriter{w}
	}
	s.auth.ServeDNS(ctx, w, r)
}

// forgingWriter corrupts the RRSIGs of the responses written through it.
type forgingWriter struct{ transport.ResponseWriter }

func (f forgingWriter) WriteMsg(m *dns.Msg) error {
	m = m.Copy()
	for _, section := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range section {
			if sig, ok := rr.(*dns.RRSIG); ok {
				sig.Signature = corruptBase64(sig.Signature)
			}
		}
	}
	return f.ResponseWriter.WriteMsg(m)
}

func (f forgingWriter) Write(b []byte) error {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return err
	}
	return f.WriteMsg(m)
}
