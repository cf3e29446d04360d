package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// streamServer serves DNS over byte streams with the 2-byte length framing
// of RFC 1035 4.2.2: plain TCP, and TLS (RFC 7858) through wrap. It follows
// RFC 7766: many queries per connection read ahead and answered out of
// order as each completes, an idle timeout, and limits on connections and
// on queries in flight per connection.
type streamServer struct {
	eng          *engine
	proto        Proto
	idleTimeout  time.Duration
	writeTimeout time.Duration
	maxInFlight  int
	// adm shares the connection slots among clients (admission.go).
	adm *admission
	// wrap, when set, turns an accepted connection into the one to serve
	// (the TLS handshake for DoT); it must honour the deadline on conn.
	wrap func(conn net.Conn) (net.Conn, error)
	// extras are the options added to answers (keepalive, padding).
	extras extras

	ctx      context.Context
	stopping *atomic.Bool
	wg       *sync.WaitGroup

	mu    sync.Mutex
	conns map[*streamConn]struct{}
	// pending are the connections of trusted load balancers whose PROXY
	// header is being read (proxy.go), not yet admitted.
	pending map[net.Conn]struct{}
}

// acceptLoop accepts connections on ln until it is closed.
func (s *streamServer) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			s.eng.log.Warn("accept", "addr", ln.Addr(), "err", err)
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE: do not spin
			continue
		}
		peer := addrPortOf(conn.RemoteAddr())
		if p := s.eng.proxy; p != nil && p.trusts(peer.Addr()) {
			s.acceptProxied(p, conn, peer)
			continue
		}
		c := s.admit(conn, peer, netip.AddrPort{})
		if c == nil {
			resetClose(conn)
			continue
		}
		go c.serve()
	}
}

// acceptProxied serves a connection from a trusted load balancer: its
// PROXY header is read first, in a goroutine of its own (bounded by the
// idle timeout, and in number by the admission's cap), and the client it
// names is the one admitted and served. A connection without a valid
// header is reset and counted.
func (s *streamServer) acceptProxied(p *ProxyProtocol, conn net.Conn, peer netip.AddrPort) {
	if !s.trackPending(conn, peer) {
		resetClose(conn)
		return
	}
	go func() {
		defer s.untrackPending(conn)
		h, served, err := s.readProxied(conn)
		if err != nil {
			if !s.stopping.Load() {
				p.refused(s.eng.log, s.adm.name, peer, true, err)
			}
			resetClose(conn)
			return
		}
		p.took(h)
		client := peer
		if h.relayed {
			client = h.src
		}
		c := s.admit(conn, client, peer)
		if c == nil {
			resetClose(conn)
			return
		}
		c.conn, c.wrapped = served, served != conn
		go c.serve()
	}()
}

// readProxied reads a trusted load balancer's PROXY header where it is:
// at the start of the connection, the protocol's own place (HAProxy's
// send-proxy-v2, before TLS too); or on DoT, when the connection starts
// with TLS instead, at the start of the TLS stream, where dnsdist puts it
// towards DoT backends. It returns the header and the connection to
// serve: conn, or the TLS layer over it. The idle timeout bounds it all.
func (s *streamServer) readProxied(conn net.Conn) (proxyHeader, net.Conn, error) {
	conn.SetDeadline(time.Now().Add(s.idleTimeout))
	defer conn.SetDeadline(time.Time{})
	pc := &prefixConn{Conn: conn}
	if n, err := io.ReadFull(conn, pc.prefix[:]); err != nil {
		if n == 0 { // closed or silent: a connect-only health check, say
			return proxyHeader{}, nil, fmt.Errorf("%w: %w", errProxyMissing, err)
		}
		return proxyHeader{}, nil, fmt.Errorf("reading PROXY header: %w", err)
	}
	if hasProxySignature(pc.prefix[:]) || s.wrap == nil {
		// The header is longer than the prefix: once read, conn goes on.
		h, err := readProxyHeader(pc)
		return h, conn, err
	}
	tc, err := s.wrap(pc)
	if err != nil {
		return proxyHeader{}, nil, fmt.Errorf("no PROXY header before TLS, and %w", err)
	}
	h, err := readProxyHeader(tc)
	if err != nil {
		return proxyHeader{}, nil, fmt.Errorf("in TLS: %w", err)
	}
	return h, tc, nil
}

// trackPending records conn as waiting for its PROXY header, unless the
// server is stopping or as many are already waiting as connections may
// be open.
func (s *streamServer) trackPending(conn net.Conn, peer netip.AddrPort) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() {
		return false
	}
	if len(s.pending) >= s.adm.max {
		s.adm.refused(refusedTotal, peer.Addr())
		return false
	}
	if s.pending == nil {
		s.pending = make(map[net.Conn]struct{})
	}
	s.pending[conn] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *streamServer) untrackPending(conn net.Conn) {
	s.mu.Lock()
	delete(s.pending, conn)
	s.mu.Unlock()
	s.wg.Done()
}

// admit registers a new connection from client (through the load
// balancer via, if valid), or returns nil when the admission refuses it
// or the server is stopping.
func (s *streamServer) admit(conn net.Conn, client, via netip.AddrPort) *streamConn {
	if s.stopping.Load() {
		return nil
	}
	ctx, cancel := context.WithCancel(s.ctx)
	c := &streamConn{
		srv:    s,
		raw:    conn,
		conn:   conn,
		remote: client,
		via:    via,
		local:  addrPortOf(conn.LocalAddr()),
		ctx:    ctx,
		cancel: cancel,
		sem:    make(chan struct{}, s.maxInFlight),
	}
	c.slot = s.adm.admit(c.remote.Addr(), c.abort)
	if c.slot == nil {
		cancel()
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() {
		c.slot.release()
		cancel()
		return nil
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return c
}

func (s *streamServer) forget(c *streamConn) {
	c.slot.release()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// wake makes every reader notice that the server is stopping.
func (s *streamServer) wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.raw.SetReadDeadline(time.Unix(1, 0))
	}
	for c := range s.pending {
		c.SetReadDeadline(time.Unix(1, 0))
	}
}

// closeAll closes every connection at once.
func (s *streamServer) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.abort()
	}
	for c := range s.pending {
		c.Close()
	}
}

// streamConn is one client connection.
type streamConn struct {
	srv *streamServer
	// raw is the accepted connection: what other goroutines (shutdown)
	// may touch. conn is what is served: raw itself, or the TLS layer
	// over it, set once before the reader starts.
	raw  net.Conn
	conn net.Conn
	// remote is the client; via the load balancer it came through with a
	// PROXY header, else zero.
	remote, via, local netip.AddrPort
	// wrapped: conn is already the TLS layer (readProxied).
	wrapped bool
	ctx     context.Context
	cancel  context.CancelFunc
	// slot is the connection's place in the admission: queries mark it
	// busy, so that only idle connections are evicted.
	slot *connSlot

	sem      chan struct{} // one token per query in flight
	inFlight atomic.Int32
	active   sync.WaitGroup

	wmu    sync.Mutex // serialises whole frames on the connection
	closed atomic.Bool
}

// serve reads queries until the client closes, idles out, breaks framing or
// the server stops; then it lets the queries in flight finish and closes.
func (c *streamConn) serve() {
	defer c.srv.forget(c)
	defer c.abort()
	defer func() {
		if p := recover(); p != nil {
			c.srv.eng.log.Error("stream connection panic", "panic", fmt.Sprint(p), "remote", c.remote)
		}
	}()
	if p := c.srv.eng.proxy; p != nil && !c.via.IsValid() {
		conn, err := refuseProxyHeader(c.conn, c.srv.idleTimeout)
		if err != nil {
			if errors.Is(err, errProxyUntrusted) {
				p.refused(c.srv.eng.log, c.srv.adm.name, c.remote, false, err)
			}
			return
		}
		c.conn = conn
	}
	if c.srv.wrap != nil && !c.wrapped {
		c.conn.SetDeadline(time.Now().Add(c.srv.idleTimeout))
		conn, err := c.srv.wrap(c.conn)
		if err != nil {
			c.srv.eng.log.Debug("handshake", "remote", c.remote, "err", err)
			return
		}
		c.conn = conn
		c.conn.SetDeadline(time.Time{})
	}
	c.readLoop()
	c.active.Wait()
}

func (c *streamConn) readLoop() {
	br := bufio.NewReaderSize(c.conn, 4096)
	rbuf := make([]byte, 0, 512) // grows to the largest query seen
	var hdr [2]byte
	for {
		c.conn.SetReadDeadline(time.Now().Add(c.srv.idleTimeout))
		// Checked after setting the deadline: wake sets stopping before it
		// moves the deadline to the past, so one of the two is seen.
		if c.srv.stopping.Load() {
			return
		}
		n, err := io.ReadFull(br, hdr[:])
		if err != nil {
			// RFC 7766 6.2.3: idle means no query outstanding either.
			if n == 0 && isTimeout(err) && c.inFlight.Load() > 0 && !c.srv.stopping.Load() {
				continue
			}
			return
		}
		size := int(binary.BigEndian.Uint16(hdr[:]))
		if size < headerLen {
			return // no DNS message is this short: the framing is lost
		}
		if size > cap(rbuf) {
			rbuf = make([]byte, 0, size)
		}
		if _, err := io.ReadFull(br, rbuf[:size]); err != nil {
			return
		}
		// Judged per query: the access list may change while a connection
		// lives (AccessList.Set).
		allowed := c.srv.eng.acl.allows(c.remote.Addr())
		if allowed {
			switch c.answerReady(rbuf[:size]) {
			case readySent:
				continue
			case readyClosing:
				return
			}
		}
		raw := append([]byte(nil), rbuf[:size]...) // handle keeps it
		select {
		case c.sem <- struct{}{}:
		case <-c.ctx.Done():
			return
		}
		if !c.slot.begin() {
			<-c.sem
			return // closed as idle just as this query came
		}
		c.inFlight.Add(1)
		c.active.Add(1)
		go c.handle(raw, allowed)
	}
}

// readyOutcome is what answerReady did with a query.
type readyOutcome uint8

const (
	readyNot     readyOutcome = iota // not answered: the full path takes it
	readySent                        // answered (or the write failed, which closed the connection)
	readyClosing                     // the connection is being closed as idle
)

// answerReady answers raw on the reader's goroutine when the Handler has
// the answer ready (ReadyAnswerer, as on UDP): no parsing, no goroutine,
// no packing. Only queries without EDNS options qualify, so none asks for
// keepalive, padding or a cookie. The answer is written at once, in order
// with the ones handlers write.
func (c *streamConn) answerReady(raw []byte) readyOutcome {
	ra, ok := c.srv.eng.handler.(ReadyAnswerer)
	if !ok {
		return readyNot
	}
	if _, ok := readySize(raw, maxMsgLen); !ok {
		return readyNot
	}
	if !c.slot.begin() {
		return readyClosing
	}
	defer c.slot.end()
	bp := c.srv.eng.bufs.get()
	defer c.srv.eng.bufs.put(bp)
	ans, ok := c.srv.eng.answerReady(ra, (*bp)[2:2], raw, maxMsgLen, c.remote)
	if !ok {
		return readyNot
	}
	c.srv.eng.responses.countWire(c.srv.proto, ans)
	if err := c.writeFrame(bp, ans); err != nil {
		c.srv.eng.log.Debug("stream ready answer", "remote", c.remote, "err", err)
	}
	return readySent
}

// handle screens and answers one query; it runs beside the reader so a
// slow query does not hold up the ones behind it.
func (c *streamConn) handle(raw []byte, allowed bool) {
	defer func() {
		if p := recover(); p != nil {
			c.srv.eng.log.Error("stream query panic", "panic", fmt.Sprint(p), "remote", c.remote)
		}
		<-c.sem
		c.inFlight.Add(-1)
		c.slot.end()
		c.active.Done()
	}()
	sc := screen(raw, allowed, c.srv.eng.notify && c.srv.proto == TCP)
	switch sc.verdict {
	case drop:
	case reject:
		if !allowed {
			c.srv.eng.logRefused(c.srv.proto, c.remote, c.via)
		}
		bp := c.srv.eng.bufs.get()
		defer c.srv.eng.bufs.put(bp)
		b, err := appendErrorReply((*bp)[2:], raw, sc.msg, sc.rcode, c.srv.eng.ednsSize)
		if err == nil {
			c.srv.eng.responses.count(c.srv.proto, sc.rcode)
			err = c.writeFrame(bp, b)
		}
		if err != nil {
			c.srv.eng.log.Debug("stream error reply", "remote", c.remote, "err", err)
		}
	case serve:
		w := &streamWriter{c: c, req: Request{
			Msg:     sc.msg,
			Raw:     raw,
			Remote:  c.remote,
			Via:     c.via,
			Local:   c.local,
			Proto:   c.srv.proto,
			MaxSize: maxMsgLen,
		}}
		c.srv.eng.call(c.ctx, w, &w.req)
	}
}

// writeFrame sends msg with its length prefix in one write. msg normally
// already sits in (*bp)[2:]; if not it is copied there.
func (c *streamConn) writeFrame(bp *[]byte, msg []byte) error {
	buf := *bp
	if len(msg) > maxMsgLen {
		return fmt.Errorf("response of %d bytes does not fit a stream frame", len(msg))
	}
	if len(msg) > 0 && &msg[0] != &buf[2] {
		copy(buf[2:], msg)
	}
	binary.BigEndian.PutUint16(buf, uint16(len(msg)))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return net.ErrClosed
	}
	c.conn.SetWriteDeadline(time.Now().Add(c.srv.writeTimeout))
	if _, err := c.conn.Write(buf[:2+len(msg)]); err != nil {
		c.abort() // a stalled or gone reader loses its connection, nobody else waits
		return fmt.Errorf("write to %s: %w", c.remote, err)
	}
	return nil
}

// abort closes the connection and cancels its queries.
func (c *streamConn) abort() {
	if c.closed.CompareAndSwap(false, true) {
		c.cancel()
		c.raw.Close()
	}
}

// streamWriter is the ResponseWriter for one query on a stream.
type streamWriter struct {
	c    *streamConn
	req  Request
	sent bool
}

func (w *streamWriter) WriteMsg(m *dns.Msg) error {
	if w.sent {
		return errAlreadyWritten
	}
	w.sent = true
	eng := w.c.srv.eng
	bp := eng.bufs.get()
	defer eng.bufs.put(bp)
	b, err := packAnswer(m, &w.req, eng.ednsSize, w.c.srv.extras, (*bp)[2:])
	if err != nil {
		return err
	}
	eng.responses.count(w.req.Proto, m.Rcode)
	return w.c.writeFrame(bp, b)
}

// Write sends b as it is, unless the query asked for an option (keepalive,
// padding) that b lacks: then b is unpacked and goes the WriteMsg way.
func (w *streamWriter) Write(b []byte) error {
	if w.sent {
		return errAlreadyWritten
	}
	if w.c.srv.extras.rewrites(&w.req) {
		m, err := unpackAnswer(b)
		if err != nil {
			w.sent = true
			return err
		}
		return w.WriteMsg(m)
	}
	w.sent = true
	w.c.srv.eng.responses.countWire(w.req.Proto, b)
	bp := w.c.srv.eng.bufs.get()
	defer w.c.srv.eng.bufs.put(bp)
	return w.c.writeFrame(bp, b)
}

func (w *streamWriter) written() bool { return w.sent }

// addrPortOf extracts the IP and port of a TCP or UDP address.
func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// resetClose closes a refused TCP connection with a reset: the client
// learns at once, and no TIME_WAIT is left on our side.
func resetClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
