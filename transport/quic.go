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
// HTTP/3), refuses those its admission refuses with the protocol's
// excessive-load code, and keeps track of the rest so Shutdown can close
// them.
type quicAcceptor struct {
	pconn    net.PacketConn
	ln       quicListener
	adm      *admission
	busyCode quic.ApplicationErrorCode
	// doneCode closes a connection once serve has returned, or when it
	// is closed as idle (RFC 9250 5.5: DOQ_NO_ERROR for idle ones).
	doneCode quic.ApplicationErrorCode
	serve    func(*quic.Conn, *connSlot)
	log      *slog.Logger
	wg       *sync.WaitGroup
	stopping *atomic.Bool

	mu    sync.Mutex
	conns map[*quic.Conn]*connSlot
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
		slot := a.admit(c)
		if slot == nil {
			go a.refuse(c)
			continue
		}
		go func() {
			defer a.forget(c, slot)
			defer func() {
				if p := recover(); p != nil {
					a.log.Error("quic connection panic", "panic", fmt.Sprint(p), "remote", c.RemoteAddr())
					c.CloseWithError(0, "")
				}
			}()
			a.serve(c, slot)
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

// admit takes a slot for c, or returns nil if it must be refused. An
// evicted connection is closed from its own goroutine: CloseWithError
// waits for the connection to wind down.
func (a *quicAcceptor) admit(c *quic.Conn) *connSlot {
	if a.stopping.Load() {
		return nil
	}
	slot := a.adm.admit(addrPortOf(c.RemoteAddr()).Addr(), func() {
		go c.CloseWithError(a.doneCode, "idle")
	})
	if slot == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopping.Load() {
		slot.release()
		return nil
	}
	a.conns[c] = slot
	a.wg.Add(1)
	return slot
}

func (a *quicAcceptor) forget(c *quic.Conn, slot *connSlot) {
	slot.release()
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
