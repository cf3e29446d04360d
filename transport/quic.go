package transport

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go"
)

// quicListener is what quic.Listener and quic.EarlyListener share.
type quicListener interface {
	Accept(ctx context.Context) (*quic.Conn, error)
	Close() error
	Addr() net.Addr
}

// quicAcceptor accepts QUIC connections for one front end (DoQ, DoH over
// HTTP/3), refuses those past maxConns with the protocol's excessive-load
// code, and keeps track of the rest so Shutdown can close them.
type quicAcceptor struct {
	pconn    net.PacketConn
	ln       quicListener
	maxConns int
	busyCode quic.ApplicationErrorCode
	// doneCode closes a connection once serve has returned.
	doneCode quic.ApplicationErrorCode
	serve    func(*quic.Conn)
	log      *slog.Logger
	wg       *sync.WaitGroup
	stopping *atomic.Bool

	mu    sync.Mutex
	conns map[*quic.Conn]struct{}
}

func (a *quicAcceptor) acceptLoop(ctx context.Context) {
	defer a.wg.Done()
	for {
		c, err := a.ln.Accept(ctx)
		if err != nil {
			if !a.stopping.Load() && ctx.Err() == nil {
				a.log.Warn("quic accept", "addr", a.ln.Addr(), "err", err)
			}
			return
		}
		if !a.admit(c) {
			go a.refuse(c)
			continue
		}
		go func() {
			defer a.forget(c)
			defer func() {
				if p := recover(); p != nil {
					a.log.Error("quic connection panic", "panic", fmt.Sprint(p), "remote", c.RemoteAddr())
					c.CloseWithError(0, "")
				}
			}()
			a.serve(c)
			c.CloseWithError(a.doneCode, "")
		}()
	}
}

// refuse closes a connection over the limit with busyCode. It waits for
// the handshake first: an application close sent before it completes
// reaches the client only as a bare APPLICATION_ERROR (RFC 9000 10.2.3).
// The wait is bounded by quic-go's handshake timeout.
func (a *quicAcceptor) refuse(c *quic.Conn) {
	select {
	case <-c.HandshakeComplete():
	case <-c.Context().Done():
	}
	c.CloseWithError(a.busyCode, "too many connections")
}

func (a *quicAcceptor) admit(c *quic.Conn) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopping.Load() || len(a.conns) >= a.maxConns {
		return false
	}
	a.conns[c] = struct{}{}
	a.wg.Add(1)
	return true
}

func (a *quicAcceptor) forget(c *quic.Conn) {
	a.mu.Lock()
	delete(a.conns, c)
	a.mu.Unlock()
	a.wg.Done()
}

// stopAccepting closes the listener; connections stay.
func (a *quicAcceptor) stopAccepting() { a.ln.Close() }

// closeAll closes every connection with code and the socket.
func (a *quicAcceptor) closeAll(code quic.ApplicationErrorCode) {
	a.mu.Lock()
	for c := range a.conns {
		c.CloseWithError(code, "server shutting down")
	}
	a.mu.Unlock()
}

// listenUDPSamePort binds UDP on host:port of a TCP listener, for a
// protocol that serves both (DoH over TCP and HTTP/3).
func listenUDPSamePort(tcp net.Addr) (net.PacketConn, error) {
	pc, err := net.ListenPacket("udp", tcp.String())
	if err != nil {
		return nil, fmt.Errorf("listen udp on %s: %w", tcp, err)
	}
	return pc, nil
}
