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
	queries atomic.Uint64 // queries received, dropped ones included
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

// Queries counts the queries received so far, dropped ones included.
func (s *Server) Queries() uint64 { return s.queries.Load() }

// ServeDNS applies the knobs, then lets the authoritative server answer.
func (s *Server) ServeDNS(ctx context.Context, w transport.ResponseWriter, r *transport.Request) {
	s.queries.Add(1)
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
	s.auth.ServeDNS(ctx, w, r)
}
