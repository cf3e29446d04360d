package transport

import (
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
	"github.com/quic-go/quic-go"
)

// DoQ error codes (RFC 9250 4.3).
const (
	doqNoError          quic.ApplicationErrorCode = 0x0
	doqInternalError    quic.ApplicationErrorCode = 0x1
	doqProtocolError    quic.ApplicationErrorCode = 0x2
	doqRequestCancelled quic.StreamErrorCode      = 0x3
	doqExcessiveLoad    quic.ApplicationErrorCode = 0x4
)

// DoQConfig configures a DNS over QUIC server (RFC 9250).
type DoQConfig struct {
	// ListenerConfig's Addrs are UDP addresses, port 853 by convention.
	// IdleTimeout closes a connection with no query for that long, with
	// DOQ_NO_ERROR (RFC 9250 5.5); QUIC PINGs do not count as activity.
	// MaxInFlight bounds the query streams open at once per connection.
	ListenerConfig
	// StreamTimeout bounds the arrival of one whole query (with its FIN);
	// default 5s. WriteTimeout bounds the write of its answer.
	StreamTimeout time.Duration
	// Disable0RTT refuses 0-RTT. With it on (the default) a query that
	// arrives as 0-RTT data is answered at once only if it is replay-safe
	// (opcode QUERY, not a zone transfer); others wait for the handshake.
	Disable0RTT bool
}

// defaultStreamTimeout bounds the arrival of one DoQ query: a few round
// trips, however slow the path.
const defaultStreamTimeout = 5 * time.Second

// Validate reports what is wrong with c, zero fields standing for their
// defaults.
func (c *DoQConfig) Validate() error {
	if err := c.ListenerConfig.Validate(); err != nil {
		return err
	}
	if c.StreamTimeout < 0 {
		return errors.New("negative stream timeout")
	}
	return nil
}

// DoQ is a DNS over QUIC server: one query per bidirectional stream.
type DoQ struct {
	cfg    DoQConfig
	eng    *engine
	certs  *TLSCertificates
	ctx    context.Context
	cancel context.CancelFunc

	stopping atomic.Bool
	wg       sync.WaitGroup

	adm *admission

	mu      sync.Mutex
	started bool
	quics   []*quicAcceptor
}

// NewDoQ checks cfg, fills in defaults and prepares the certificate.
func NewDoQ(cfg DoQConfig) (*DoQ, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("doq config: %w", err)
	}
	cfg.setDefaults(listenerDefaults{
		idleTimeout:  defaultQUICIdleTimeout,
		writeTimeout: defaultWriteTimeout,
		maxInFlight:  defaultStreams,
	})
	if cfg.StreamTimeout == 0 {
		cfg.StreamTimeout = defaultStreamTimeout
	}
	certs, err := certsOrSelfSigned(cfg.Certs, cfg.Addrs, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("doq: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &DoQ{cfg: cfg, certs: certs, ctx: ctx, cancel: cancel}
	s.eng = cfg.newEngine()
	// The admission's idle timer, not QUIC's, decides when a connection
	// is idle: a client's PINGs (RFC 9000 19.2) keep QUIC's alive.
	if s.adm, err = newAdmission("doq", cfg.MaxConns, cfg.Conns, cfg.IdleTimeout, s.eng.log); err != nil {
		cancel()
		return nil, fmt.Errorf("doq config: %w", err)
	}
	return s, nil
}

// ConnStats counts the connections open, refused and evicted.
func (s *DoQ) ConnStats() ConnStats { return s.adm.stats() }

// Certs returns the certificate source in use.
func (s *DoQ) Certs() *TLSCertificates { return s.certs }

// Start binds every address and serves; on any failure nothing stays bound.
func (s *DoQ) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("doq: already started")
	}
	qconf := &quic.Config{
		MaxIdleTimeout:     s.cfg.IdleTimeout,
		MaxIncomingStreams: int64(s.cfg.MaxInFlight),
		// DoQ uses no unidirectional streams; one is allowed only so that
		// a client opening it can be told DOQ_PROTOCOL_ERROR (RFC 9250
		// 4.3.3) instead of a bare QUIC STREAM_LIMIT_ERROR.
		MaxIncomingUniStreams: 1,
		Allow0RTT:             !s.cfg.Disable0RTT,
	}
	tlsConf := s.certs.serverTLSConfig("doq")
	var accs []*quicAcceptor
	for _, addr := range s.cfg.Addrs {
		pc, err := net.ListenPacket("udp", addr)
		if err == nil {
			var ln *quic.EarlyListener
			if ln, err = quic.ListenEarly(pc, tlsConf, qconf); err == nil {
				accs = append(accs, &quicAcceptor{
					pconn:    pc,
					ln:       ln,
					adm:      s.adm,
					busyCode: doqExcessiveLoad,
					doneCode: doqNoError,
					serve:    s.serveConn,
					log:      s.eng.log,
					wg:       &s.wg,
					stopping: &s.stopping,
					conns:    make(map[*quic.Conn]*connSlot),
				})
				continue
			}
			pc.Close()
		}
		for _, a := range accs {
			a.ln.Close()
			a.pconn.Close()
		}
		return fmt.Errorf("doq: listen on %s: %w", addr, err)
	}
	s.started = true
	s.quics = accs
	for _, a := range accs {
		s.wg.Add(1)
		go a.acceptLoop(s.ctx)
	}
	s.eng.log.Info("doq listening", "addrs", s.addrsLocked(), "pin", s.certs.Pin())
	return nil
}

// Addrs returns the bound UDP addresses.
func (s *DoQ) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrsLocked()
}

func (s *DoQ) addrsLocked() []net.Addr {
	var out []net.Addr
	for _, a := range s.quics {
		out = append(out, a.pconn.LocalAddr())
	}
	return out
}

// Shutdown stops accepting, cancels the handlers' context, lets the
// queries in flight be answered, then closes every connection with
// DOQ_NO_ERROR; at ctx's end it closes them at once.
func (s *DoQ) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopping.CompareAndSwap(false, true) {
		return nil
	}
	s.cancel()
	for _, a := range s.quics {
		a.stopAccepting()
	}
	err := waitGroupCtx(ctx, &s.wg)
	if err != nil {
		for _, a := range s.quics {
			a.closeAll(doqNoError)
		}
	}
	for _, a := range s.quics {
		a.pconn.Close()
	}
	if err != nil {
		return fmt.Errorf("doq shutdown: %w", err)
	}
	return nil
}

// serveConn accepts the streams of one connection, one query each; each
// stream marks the connection busy until it is answered.
func (s *DoQ) serveConn(c *quic.Conn, slot *connSlot) {
	remote := addrPortOf(c.RemoteAddr())
	local := addrPortOf(c.LocalAddr())
	var streams sync.WaitGroup
	defer streams.Wait()
	// Watches for a unidirectional stream; it ends with the connection,
	// which the acceptor closes as soon as serveConn returns.
	go func() {
		if _, err := c.AcceptUniStream(c.Context()); err == nil {
			s.eng.log.Debug("doq protocol error", "remote", remote, "why", "unidirectional stream")
			c.CloseWithError(doqProtocolError, "unidirectional stream")
		}
	}()
	for {
		st, err := c.AcceptStream(s.ctx)
		if err != nil {
			return
		}
		if !slot.begin() {
			return // closed as idle just as this stream came
		}
		// Judged per query: the access list may change while a connection
		// lives (AccessList.Set).
		allowed := s.eng.acl.allows(remote.Addr())
		streams.Add(1)
		go func() {
			defer streams.Done()
			defer slot.end()
			q := &doqQuery{s: s, conn: c, st: st, remote: remote, local: local}
			q.serve(allowed)
		}()
	}
}

// doqQuery is one stream: its query and the ResponseWriter for it.
type doqQuery struct {
	s             *DoQ
	conn          *quic.Conn
	st            *quic.Stream
	remote, local netip.AddrPort
	req           Request
	sent          bool
}

// protocolError closes the whole connection as RFC 9250 4.3.3 asks.
func (q *doqQuery) protocolError(why string) {
	q.s.eng.log.Debug("doq protocol error", "remote", q.remote, "why", why)
	q.conn.CloseWithError(doqProtocolError, why)
}

func (q *doqQuery) serve(allowed bool) {
	defer func() {
		if p := recover(); p != nil {
			q.s.eng.log.Error("doq query panic", "panic", fmt.Sprint(p), "remote", q.remote)
			q.conn.CloseWithError(doqInternalError, "")
		}
	}()
	in := q.s.eng.bufs.get()
	defer q.s.eng.bufs.put(in)
	raw, ok := q.readQuery(*in)
	if !ok {
		return
	}
	// 0-RTT data may be a replay (RFC 9250 4.5, RFC 8446 8): only
	// replay-safe queries are answered before the handshake completes.
	select {
	case <-q.conn.HandshakeComplete():
	default:
		if !replaySafe(raw) {
			select {
			case <-q.conn.HandshakeComplete():
			case <-q.conn.Context().Done():
				return
			}
		}
	}
	if allowed && q.answerReady(raw) {
		return
	}
	sc := screen(raw, allowed, false)
	switch sc.verdict {
	case drop:
		q.protocolError("not a query")
		return
	case reject:
		if sc.msg != nil && hasTCPKeepalive(sc.msg) {
			q.protocolError("edns-tcp-keepalive over DoQ")
			return
		}
		bp := q.s.eng.bufs.get()
		defer q.s.eng.bufs.put(bp)
		b, err := appendErrorReply((*bp)[2:], raw, sc.msg, sc.rcode, q.s.eng.ednsSize)
		if err == nil {
			q.s.eng.responses.count(QUIC, sc.rcode)
			err = q.writeFrame(bp, b)
		}
		if err != nil {
			q.s.eng.log.Debug("doq error reply", "remote", q.remote, "err", err)
		}
		return
	}
	if hasTCPKeepalive(sc.msg) {
		q.protocolError("edns-tcp-keepalive over DoQ") // RFC 9250 5.5.2
		return
	}
	q.req = Request{Msg: sc.msg, Raw: raw, Remote: q.remote, Local: q.local, Proto: QUIC, MaxSize: maxMsgLen}
	q.s.eng.call(q.st.Context(), q, &q.req)
	if !q.sent {
		q.st.CancelWrite(doqRequestCancelled)
	}
}

// answerReady sends the Handler's ready answer (ReadyAnswerer, as on UDP)
// without parsing the query. Only queries without EDNS(0) qualify: DoQ
// pads the answer to every EDNS(0) query (doqExtras), and an answer to a
// query without it must not be padded (RFC 7830 4).
func (q *doqQuery) answerReady(raw []byte) bool {
	ra, ok := q.s.eng.handler.(ReadyAnswerer)
	if !ok || binary.BigEndian.Uint16(raw[10:12]) != 0 { // ARCOUNT: no OPT
		return false
	}
	if _, ok := readySize(raw, maxMsgLen); !ok {
		return false
	}
	bp := q.s.eng.bufs.get()
	defer q.s.eng.bufs.put(bp)
	ans, ok := q.s.eng.answerReady(ra, (*bp)[2:2], raw, maxMsgLen, q.remote)
	if !ok {
		return false
	}
	q.s.eng.responses.countWire(QUIC, ans)
	q.sent = true
	if err := q.writeFrame(bp, ans); err != nil {
		q.s.eng.log.Debug("doq ready answer", "remote", q.remote, "err", err)
	}
	return true
}

// readQuery reads the one length-prefixed query of the stream and its FIN
// into buf (a pooled buffer of maxMsgLen+2 bytes), in as few reads as the
// data arrives in: usually one, since a query and its FIN come in one
// packet, and every read costs quic-go a wake-up of its connection.
// Framing faults are protocol errors that close the connection.
func (q *doqQuery) readQuery(buf []byte) ([]byte, bool) {
	q.st.SetReadDeadline(time.Now().Add(q.s.cfg.StreamTimeout))
	var extra [1]byte
	n, want := 0, -1 // want: 2 + the message's length, once known
	for {
		dst := buf[n:]
		if want >= 0 {
			dst = buf[n:want]
			if n == want {
				dst = extra[:] // anything but the FIN after the query is an error
			}
		}
		m, err := q.st.Read(dst)
		if n == want && m > 0 {
			q.protocolError("data after the query on its stream")
			return nil, false
		}
		n += m
		if want < 0 && n >= 2 {
			want = 2 + int(binary.BigEndian.Uint16(buf[:2]))
			if want-2 < headerLen {
				q.protocolError("message shorter than a DNS header")
				return nil, false
			}
			if n > want {
				q.protocolError("data after the query on its stream")
				return nil, false
			}
		}
		if err == nil {
			continue
		}
		switch {
		case errors.Is(err, io.EOF) && n == want:
		case isTimeout(err) && n == want:
			// The whole query came but no FIN within StreamTimeout: RFC
			// 9250 4.3.3 lists a missing STREAM FIN among the protocol
			// errors.
			q.protocolError("no STREAM FIN after the query")
			return nil, false
		default:
			q.readFailed(err)
			return nil, false
		}
		break
	}
	raw := buf[2:want]
	if raw[0] != 0 || raw[1] != 0 {
		q.protocolError("non-zero message ID") // RFC 9250 4.2.1
		return nil, false
	}
	return raw, true
}

// readFailed sorts out a failed read: FIN inside a message is a protocol
// error; a stalled stream is cancelled; a reset by the client is its right.
func (q *doqQuery) readFailed(err error) {
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		q.protocolError("stream FIN inside a message")
	case isTimeout(err):
		q.st.CancelRead(doqRequestCancelled)
		q.st.CancelWrite(doqRequestCancelled)
	}
}

// replaySafe reports whether a query may be answered from 0-RTT data: a
// plain QUERY that is not a zone transfer (RFC 9250 4.5).
func replaySafe(raw []byte) bool {
	if len(raw) < headerLen || (raw[2]>>3)&0xF != dns.OpcodeQuery {
		return false
	}
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil || len(m.Question) != 1 {
		return false
	}
	t := m.Question[0].Qtype
	return t != dns.TypeAXFR && t != dns.TypeIXFR
}

// doqExtras pads every answer to an EDNS(0) query: RFC 9250 5.4 makes
// padding a MUST for DoQ, and RFC 7830 4 lets a responder pad any EDNS(0)
// answer. No keepalive option: RFC 9250 5.5.2 forbids it.
func doqExtras() extras { return extras{padAll: true} }

func hasTCPKeepalive(m *dns.Msg) bool {
	opt := m.IsEdns0()
	if opt == nil {
		return false
	}
	for _, o := range opt.Option {
		if o.Option() == dns.EDNS0TCPKEEPALIVE {
			return true
		}
	}
	return false
}

func (q *doqQuery) written() bool { return q.sent }

func (q *doqQuery) WriteMsg(m *dns.Msg) error {
	if q.sent {
		return errAlreadyWritten
	}
	q.sent = true
	eng := q.s.eng
	bp := eng.bufs.get()
	defer eng.bufs.put(bp)
	b, err := packAnswer(m, &q.req, eng.ednsSize, doqExtras(), (*bp)[2:])
	if err != nil {
		q.st.CancelWrite(doqRequestCancelled)
		return err
	}
	eng.responses.count(QUIC, m.Rcode)
	return q.writeFrame(bp, b)
}

// Write sends b as it is, unless the query has EDNS(0): then b is
// unpacked and padded the WriteMsg way.
func (q *doqQuery) Write(b []byte) error {
	if q.sent {
		return errAlreadyWritten
	}
	if doqExtras().rewrites(&q.req) {
		m, err := unpackAnswer(b)
		if err != nil {
			q.sent = true
			q.st.CancelWrite(doqRequestCancelled)
			return err
		}
		return q.WriteMsg(m)
	}
	q.sent = true
	q.s.eng.responses.countWire(QUIC, b)
	bp := q.s.eng.bufs.get()
	defer q.s.eng.bufs.put(bp)
	return q.writeFrame(bp, b)
}

// writeFrame sends the length-prefixed answer and the FIN.
func (q *doqQuery) writeFrame(bp *[]byte, msg []byte) error {
	buf := *bp
	if len(msg) > maxMsgLen {
		q.st.CancelWrite(doqRequestCancelled)
		return fmt.Errorf("response of %d bytes does not fit a frame", len(msg))
	}
	if len(msg) > 0 && &msg[0] != &buf[2] {
		copy(buf[2:], msg)
	}
	binary.BigEndian.PutUint16(buf, uint16(len(msg)))
	q.st.SetWriteDeadline(time.Now().Add(q.s.cfg.WriteTimeout))
	if _, err := q.st.Write(buf[:2+len(msg)]); err != nil {
		q.st.CancelWrite(doqRequestCancelled)
		return fmt.Errorf("doq write to %s: %w", q.remote, err)
	}
	if err := q.st.Close(); err != nil {
		return fmt.Errorf("doq FIN to %s: %w", q.remote, err)
	}
	return nil
}
