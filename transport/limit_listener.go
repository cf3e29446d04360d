package transport

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
)

// limitListener puts a listener's connections through an admission
// (admission.go). Unlike netutil.LimitListener, which stops calling Accept
// at the limit and so leaves the next clients waiting in the kernel's
// accept queue until their own timeouts, it keeps accepting and resets
// each connection refused at once: the client learns straight away that
// it must go elsewhere or come back later. (An HTTP 503 would need a TLS
// handshake first, the very work the limit is there to bound.)
type limitListener struct {
	net.Listener
	adm *admission
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
		// Eviction closes with a reset too: an idle HTTP client has
		// nothing in flight to lose.
		slot := l.adm.admit(addrPortOf(c.RemoteAddr()).Addr(), func() { resetClose(c) })
		if slot == nil {
			resetClose(c)
			continue
		}
		return &limitConn{Conn: c, slot: slot}, nil
	}
}

// limitConn gives its slot back when closed.
type limitConn struct {
	net.Conn
	slot *connSlot
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.slot.release)
	return err
}

// slotKey is the context key of a request's connection slot.
type slotKey struct{}

// withConnSlot is the http.Server's ConnContext: it makes the connection's
// slot reachable from its requests, which mark it busy.
func withConnSlot(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if lc, ok := c.(*limitConn); ok {
		return context.WithValue(ctx, slotKey{}, lc.slot)
	}
	return ctx
}

// connSlotOf returns the slot of the connection a request came on, or nil.
func connSlotOf(ctx context.Context) *connSlot {
	s, _ := ctx.Value(slotKey{}).(*connSlot)
	return s
}
