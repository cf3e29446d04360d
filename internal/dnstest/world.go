package dnstest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// World is an in-memory network of DNS servers, each a dns.Handler at a
// netip.AddrPort. Its Exchange is a resolver.UpstreamExchanger: a resolver
// given it (Config.Upstream) queries the handlers directly, with no
// sockets, so tests of resolution logic run without the wire and without
// the loopback addresses real servers need. The same handler can serve on
// real sockets too (dns.Server), which is where the wire, timeouts and TCP
// fallback are tested.
//
// A server behaves as a handler makes it: one that writes nothing is a
// server that drops the query (Exchange waits for the ctx, the caller's
// timeout); one that sleeps is a slow server, cut short by the ctx; one
// that writes bytes that do not unpack sends junk, which ends no wait (as
// on UDP). An address with no handler never answers.
type World struct {
	mu      sync.RWMutex
	servers map[netip.AddrPort]*endpoint
}

type endpoint struct {
	h       dns.Handler
	queries atomic.Int64
}

// NewWorld returns an empty world.
func NewWorld() *World {
	return &World{servers: map[netip.AddrPort]*endpoint{}}
}

// Handle puts h at addr, replacing what was there.
func (w *World) Handle(addr netip.AddrPort, h dns.Handler) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.servers[addr] = &endpoint{h: h}
}

// Remove takes the server at addr off the world: it stops answering.
func (w *World) Remove(addr netip.AddrPort) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.servers, addr)
}

// Queries is how many queries the server at addr has been sent.
func (w *World) Queries(addr netip.AddrPort) int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if e := w.servers[addr]; e != nil {
		return int(e.queries.Load())
	}
	return 0
}

// clientAddr is the source address handlers see: loopback, the
// resolver's side of a wire that is not there.
var clientAddr = netip.MustParseAddrPort("127.0.0.1:40000")

// Exchange hands query to the handler at server and returns its reply,
// or ctx's error when ctx ends first (see World for how servers that do
// not answer behave).
func (w *World) Exchange(ctx context.Context, server netip.AddrPort, query *dns.Msg, tcp bool) (*dns.Msg, error) {
	w.mu.RLock()
	e := w.servers[server]
	w.mu.RUnlock()
	if e == nil {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	e.queries.Add(1)
	rw := &memWriter{server: server, tcp: tcp, reply: make(chan *dns.Msg, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.h.ServeDNS(rw, query)
	}()
	select {
	case m := <-rw.reply:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-done:
		select {
		case m := <-rw.reply:
			return m, nil
		default:
		}
	}
	// The handler returned with no reply: dropped.
	<-ctx.Done()
	return nil, ctx.Err()
}

// memWriter is the dns.ResponseWriter of one in-memory exchange. Its
// addresses are of the transport's type (*net.UDPAddr or *net.TCPAddr),
// as handlers tell UDP from TCP by them.
type memWriter struct {
	server netip.AddrPort
	tcp    bool
	once   sync.Once
	reply  chan *dns.Msg
}

func (m *memWriter) addr(ap netip.AddrPort) net.Addr {
	if m.tcp {
		return net.TCPAddrFromAddrPort(ap)
	}
	return net.UDPAddrFromAddrPort(ap)
}

func (m *memWriter) LocalAddr() net.Addr  { return m.addr(m.server) }
func (m *memWriter) RemoteAddr() net.Addr { return m.addr(clientAddr) }

// WriteMsg sends the reply; only the first one counts.
func (m *memWriter) WriteMsg(r *dns.Msg) error {
	m.once.Do(func() { m.reply <- r.Copy() })
	return nil
}

// Write sends a packed reply. Bytes that do not unpack are junk: dropped,
// as a resolver drops them from a socket.
func (m *memWriter) Write(b []byte) (int, error) {
	r := new(dns.Msg)
	if err := r.Unpack(b); err != nil {
		return len(b), nil
	}
	return len(b), m.WriteMsg(r)
}

func (m *memWriter) Close() error        { return nil }
func (m *memWriter) TsigStatus() error   { return errors.New("no TSIG in memory") }
func (m *memWriter) TsigTimersOnly(bool) {}
func (m *memWriter) Hijack()             {}
