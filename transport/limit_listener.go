package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// limitListener puts a listener's connections through an admission
// (admission.go). Unlike netutil.LimitListener, which stops calling Accept
// at the limit and so leaves the next clients waiting in the kernel's
// accept queue until their own timeouts, it keeps accepting and resets
// each connection refused at once: the client learns straight away that
// it must go elsewhere or come back later. (An HTTP 503 would need a TLS
// handshake first, the very work the limit is there to bound.)
//
// With the PROXY protocol (proxy.go) a trusted load balancer's connection
// is admitted only once its header names the client, and that is read in
// the connection's own goroutine, not in Accept (limitConn.setup).
type limitListener struct {
	net.Listener
	adm *admission
	// proxy, when set, takes PROXY headers; headerTimeout bounds their
	// reading, log reports the refused ones.
	proxy         *ProxyProtocol
	headerTimeout time.Duration
	log           *slog.Logger
}

func newLimitListener(l net.Listener, adm *admission) *limitListener {
	return &limitListener{Listener: l, adm: adm}
}

// Accept returns the next connection admitted; the others are reset
// without a word.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &limitConn{Conn: c, l: l}
		peer := addrPortOf(c.RemoteAddr())
		if l.proxy != nil {
			lc.peer, lc.trusted, lc.needSetup = peer, l.proxy.trusts(peer.Addr()), true
			if lc.trusted {
				if !l.adm.startPending() {
					l.adm.refused(refusedTotal, peer.Addr())
					resetClose(c)
					continue
				}
				return lc, nil // admitted by setup
			}
		}
		// Eviction closes with a reset too: an idle HTTP client has
		// nothing in flight to lose.
		slot := l.adm.admit(peer.Addr(), func() { resetClose(c) })
		if slot == nil {
			resetClose(c)
			continue
		}
		lc.slot.Store(slot)
		return lc, nil
	}
}

// errConnRefused fails the reads of a connection the admission refused
// after its PROXY header.
var errConnRefused = errors.New("connection refused by the admission")

// limitConn gives its slot back when closed. With the PROXY protocol it
// first reads the header (trusted peer) or makes sure there is none
// (others), in setup, which the first Read, Write or RemoteAddr runs: the
// HTTP server asks for RemoteAddr first thing in the connection's
// goroutine.
type limitConn struct {
	net.Conn
	l      *limitListener
	slot   atomic.Pointer[connSlot]
	closed atomic.Bool

	needSetup, trusted bool
	peer               netip.AddrPort
	setupOnce          sync.Once
	// Set by setup: the client and the load balancer (via) when a header
	// named one, the bytes read ahead of the stream, the error that fails
	// every read and write.
	client, via netip.AddrPort
	ahead       *prefixConn
	setupErr    error
}

func (c *limitConn) setup() {
	if !c.needSetup {
		return
	}
	c.setupOnce.Do(func() {
		l := c.l
		if !c.trusted {
			pc, err := refuseProxyHeader(c.Conn, l.headerTimeout)
			if errors.Is(err, errProxyUntrusted) {
				l.proxy.refused(l.log, l.adm.name, c.peer, false, err)
			}
			c.ahead, c.setupErr = nil, err
			if err == nil {
				c.ahead = pc.(*prefixConn)
			}
			return
		}
		defer l.adm.endPending()
		c.Conn.SetReadDeadline(time.Now().Add(l.headerTimeout))
		h, err := readProxyHeader(c.Conn)
		c.Conn.SetReadDeadline(time.Time{})
		if err != nil {
			if !c.closed.Load() {
				l.proxy.refused(l.log, l.adm.name, c.peer, true, err)
			}
			c.setupErr = err
			resetClose(c.Conn)
			return
		}
		l.proxy.took(h)
		c.client, c.via = c.peer, c.peer
		if h.relayed {
			c.client = h.src
		}
		slot := l.adm.admit(c.client.Addr(), func() { resetClose(c.Conn) })
		if slot == nil {
			c.setupErr = errConnRefused
			resetClose(c.Conn)
			return
		}
		c.slot.Store(slot)
		if c.closed.Load() { // closed meanwhile: Close found no slot
			c.slot.Swap(nil).release()
		}
	})
}

func (c *limitConn) Read(b []byte) (int, error) {
	c.setup()
	if c.setupErr != nil {
		return 0, c.setupErr
	}
	if c.ahead != nil {
		return c.ahead.Read(b)
	}
	return c.Conn.Read(b)
}

func (c *limitConn) Write(b []byte) (int, error) {
	c.setup()
	if c.setupErr != nil {
		return 0, c.setupErr
	}
	return c.Conn.Write(b)
}

// RemoteAddr is the client: the one a PROXY header named, if any.
func (c *limitConn) RemoteAddr() net.Addr {
	c.setup()
	if c.client.IsValid() {
		return net.TCPAddrFromAddrPort(c.client)
	}
	return c.Conn.RemoteAddr()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.closed.Store(true)
	if c.needSetup {
		// Closed before setup ran: it never will, and a trusted peer's
		// connection stops waiting. (Running, setup fails at once now.)
		c.setupOnce.Do(func() {
			c.setupErr = net.ErrClosed
			if c.trusted {
				c.l.adm.endPending()
			}
		})
	}
	if s := c.slot.Swap(nil); s != nil {
		s.release()
	}
	return err
}

// slotKey is the context key of a request's connection: a *limitConn
// (HTTP/1.1 and HTTP/2) or the *connSlot of an HTTP/3 connection.
type slotKey struct{}

// withConnSlot is the http.Server's ConnContext: it makes the connection
// reachable from its requests, which mark its slot busy. It runs in the
// accept loop, so it must not wait for setup.
func withConnSlot(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if lc, ok := c.(*limitConn); ok {
		return context.WithValue(ctx, slotKey{}, lc)
	}
	return ctx
}

// connSlotOf returns the slot of the connection a request came on, or nil.
func connSlotOf(ctx context.Context) *connSlot {
	switch v := ctx.Value(slotKey{}).(type) {
	case *connSlot:
		return v
	case *limitConn:
		return v.slot.Load()
	}
	return nil
}

// viaOf returns the load balancer a request came through with a PROXY
// header, or zero.
func viaOf(ctx context.Context) netip.AddrPort {
	if lc, ok := ctx.Value(slotKey{}).(*limitConn); ok {
		return lc.via
	}
	return netip.AddrPort{}
}
