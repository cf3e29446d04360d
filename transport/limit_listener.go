package transport

import (
	"net"
	"sync"
	"sync/atomic"
)

// limitListener bounds the open connections of a listener. Unlike
// netutil.LimitListener, which stops calling Accept at the limit and so
// leaves the next clients waiting in the kernel's accept queue until their
// own timeouts, it keeps accepting and resets each connection over the
// limit at once: the client learns straight away that it must go
// elsewhere or come back later. (An HTTP 503 would need a TLS handshake
// first, the very work the limit is there to bound.)
type limitListener struct {
	net.Listener
	max  int64
	open atomic.Int64
	// refused counts connections reset at the limit, for tests and logs.
	refused atomic.Int64
}

func newLimitListener(l net.Listener, max int) *limitListener {
	return &limitListener{Listener: l, max: int64(max)}
}

// Accept returns the next connection under the limit; those over it are
// reset without a word.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.refused.Add(1)
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // RST: no TIME_WAIT left behind on our side
			}
			c.Close()
			continue
		}
		return &limitConn{Conn: c, l: l}, nil
	}
}

// limitConn gives its slot back when closed, once.
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
