package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The DoH front end's own HTTP/2 server (RFC 9113), for connections that
// negotiate "h2": net/http hands them over after the TLS handshake
// (http.Server.TLSNextProto); HTTP/1.1 stays with net/http.
//
// Why not net/http's HTTP/2: under h2load, 80% of the server's CPU per
// answer (58 us in all, against 15 us for Unbound) went to net/http's
// machinery rather than to DNS: a goroutine and a growing stack per
// stream, an http.Request with its header map and URL, a pipe for the
// body, channel round trips through the connection's serve loop, and a
// goroutine plus a flush per written frame. Here the connection's reader
// parses frames itself and answers a cached question (the ReadyAnswerer
// fast path, as on UDP) in place, without a goroutine, and the answers
// of a batch of requests leave in one TLS write. Every other request
// (errors, JSON, cache misses) becomes an http.Request for DoH.ServeHTTP,
// in a goroutine of its own, so that RFC 8484's semantics live in one
// place for HTTP/1.1, HTTP/2 and HTTP/3.

const (
	// h2StreamWindow is the flow-control window of each request stream
	// (SETTINGS_INITIAL_WINDOW_SIZE): room for the largest DNS message
	// and a little more, so that a body over maxMsgLen is seen (413)
	// rather than stalling on a closed window.
	h2StreamWindow = 2 * maxMsgLen
	// h2ConnWindow is the connection's receive window: bodies are taken
	// as they come, so it only needs to hold the bodies of many
	// concurrent POSTs between our WINDOW_UPDATEs.
	h2ConnWindow = 1 << 20
	// h2WriteBuffer holds a batch of answers for one TLS write; a full
	// TLS record is 16 KiB.
	h2WriteBuffer = 16 << 10
	// h2ReadBuffer is the reader's buffer over the TLS connection.
	h2ReadBuffer = 16 << 10
	// h2MaxFrameRead is the largest frame we take (the protocol's
	// default, which we do not raise).
	h2MaxFrameRead = 16 << 10
)

// serveH2 returns the TLSNextProto function for "h2" of one listener,
// whose answers carry altSvc.
func (s *DoH) serveH2(altSvc string) func(*http.Server, *tls.Conn, http.Handler) {
	general := altSvcHandler{doh: s, altSvc: altSvc}
	return func(_ *http.Server, tc *tls.Conn, _ http.Handler) {
		c := newH2Conn(s, tc, altSvc, general)
		c.serve()
	}
}

// h2Conn is one HTTP/2 connection.
type h2Conn struct {
	doh     *DoH
	altSvc  string
	general http.Handler
	tc      *tls.Conn
	slot    *connSlot
	remote  netip.AddrPort
	local   netip.AddrPort
	// ctx carries the connection's slot and local address to general
	// requests (as net/http's contexts do); cancelled when the
	// connection ends.
	ctx      context.Context
	cancel   context.CancelFunc
	shutting atomic.Bool // the server is stopping: GOAWAY and close

	// The reader's own state.
	in         countingReader // the TLS connection, counting what was read
	br         *bufio.Reader
	fr         *http2.Framer
	lastStream uint32             // highest client stream ID seen
	bodies     map[uint32]*h2Body // streams whose request body is arriving
	recvWindow int64              // what the client may still send on the connection
	unacked    int64              // received bytes not yet given back by WINDOW_UPDATE
	scratch    []byte             // ?dns= copied for decoding
	decoded    []byte             // the decoded query
	handlers   sync.WaitGroup     // general requests in flight
	inFlight   atomic.Int32       // requests between their last frame and their answer
	gotPreface bool               // the client's first SETTINGS arrived
	lastActive time.Time          // when a request was last seen in flight

	// mu guards the writing side: the framer's writes, the hpack
	// encoder, the send windows and the streams awaiting an answer.
	mu           sync.Mutex
	cond         sync.Cond // window grown, stream reset or connection closed
	bw           *bufio.Writer
	henc         *hpack.Encoder
	hbuf         bytes.Buffer
	sendWindow   int64
	peerWindow   int64  // the client's SETTINGS_INITIAL_WINDOW_SIZE
	peerMaxFrame uint32 // the client's SETTINGS_MAX_FRAME_SIZE
	streams      map[uint32]*h2Stream
	closed       bool
	waitSince    time.Time // when the oldest writer started to wait for window; zero when none waits
	waiters      int
}

// h2Body is a request whose body is still arriving.
type h2Body struct {
	head     *h2Head
	body     []byte
	deadline time.Time // ReadTimeout from the request's HEADERS
	tooLarge bool
}

// h2Stream is a request awaiting its answer.
type h2Stream struct {
	id         uint32
	sendWindow int64
	reset      bool               // the client reset it: nothing more is sent
	remoteOpen bool               // the client has not ended its side (answered early: 413)
	cancel     context.CancelFunc // a general request's context
}

// h2Head is a request's header block, decoded.
type h2Head struct {
	method, scheme, authority, path string
	contentType                     string
	contentLength                   int64 // -1: none
	wireOnly                        bool  // no Accept, or only application/dns-message
	fields                          []hpack.HeaderField
	truncated                       bool // past maxHeaderBytes: 431
}

func newH2Conn(s *DoH, tc *tls.Conn, altSvc string, general http.Handler) *h2Conn {
	c := &h2Conn{
		doh:          s,
		altSvc:       altSvc,
		general:      general,
		tc:           tc,
		remote:       addrPortOf(tc.RemoteAddr()),
		local:        addrPortOf(tc.LocalAddr()),
		bodies:       make(map[uint32]*h2Body),
		streams:      make(map[uint32]*h2Stream),
		recvWindow:   h2ConnWindow,
		sendWindow:   65535, // RFC 9113 6.9.2: the initial connection window
		peerWindow:   65535,
		peerMaxFrame: 16384,
	}
	var slotVal any = c.slot
	if lc, ok := tc.NetConn().(*limitConn); ok {
		c.slot = lc.slot.Load() // stored once the PROXY header (if any) was read, before TLS
		slotVal = lc            // connSlotOf and viaOf read it
	}
	ctx := context.WithValue(context.Background(), slotKey{}, slotVal)
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, tc.LocalAddr())
	c.ctx, c.cancel = context.WithCancel(ctx)
	c.cond.L = &c.mu
	c.in.r = tc
	c.br = bufio.NewReaderSize(&c.in, h2ReadBuffer)
	c.bw = bufio.NewWriterSize(tc, h2WriteBuffer)
	c.fr = http2.NewFramer(c.bw, c.br)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(h2MaxFrameRead)
	c.fr.MaxHeaderListSize = maxHeaderBytes
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.henc = hpack.NewEncoder(&c.hbuf)
	return c
}

// serve runs the connection until the client leaves, it idles out, a
// protocol error ends it or the server stops.
func (c *h2Conn) serve() {
	stop := context.AfterFunc(c.doh.ctx, c.beginShutdown)
	defer stop()
	defer c.close()
	defer func() {
		if p := recover(); p != nil {
			c.doh.eng.log.Error("doh h2 connection panic", "panic", fmt.Sprint(p), "remote", c.remote)
		}
	}()
	if err := c.start(); err != nil {
		c.doh.eng.log.Debug("doh h2 preface", "remote", c.remote, "err", err)
		return
	}
	err := c.readLoop()
	code := http2.ErrCodeNo
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		code = http2.ErrCode(ce)
		c.doh.eng.log.Debug("doh h2 connection error", "remote", c.remote, "err", err)
	}
	// GOAWAY names the last stream we took; those in flight are answered
	// before the connection closes (RFC 9113 6.8).
	c.mu.Lock()
	c.writeLocked(func() error { return c.fr.WriteGoAway(c.lastStream, code, nil) })
	c.flushLocked()
	c.mu.Unlock()
	if errors.Is(err, errGoingAway) {
		c.drain()
	}
}

// errGoingAway ends the reading when the server stops or the client sent
// GOAWAY: the requests in flight are still answered.
var errGoingAway = errors.New("going away")

// drain waits for the requests in flight, at most WriteTimeout: their
// answers may wait for WINDOW_UPDATEs nobody reads any more.
func (c *h2Conn) drain() {
	done := make(chan struct{})
	go func() {
		c.handlers.Wait()
		close(done)
	}()
	t := time.NewTimer(c.doh.cfg.WriteTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// start reads the client's connection preface and sends our SETTINGS
// (RFC 9113 3.4), within HeaderTimeout.
func (c *h2Conn) start() error {
	c.tc.SetReadDeadline(time.Now().Add(c.doh.cfg.HeaderTimeout))
	var preface [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.br, preface[:]); err != nil {
		return fmt.Errorf("reading the preface: %w", err)
	}
	if string(preface[:]) != http2.ClientPreface {
		return errors.New("not the HTTP/2 preface")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeLocked(func() error {
		return c.fr.WriteSettings(
			http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: uint32(c.doh.cfg.MaxInFlight)},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2StreamWindow},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: maxHeaderBytes},
		)
	})
	c.writeLocked(func() error { return c.fr.WriteWindowUpdate(0, h2ConnWindow-65535) })
	c.recvWindow = h2ConnWindow
	c.lastActive = time.Now()
	return c.flushLocked()
}

// beginShutdown makes the reader notice that the server is stopping.
func (c *h2Conn) beginShutdown() {
	c.shutting.Store(true)
	c.tc.SetReadDeadline(time.Unix(1, 0))
}

// close ends the connection: nothing more is written, general requests
// are cancelled, writers waiting for window give up.
func (c *h2Conn) close() {
	c.cancel()
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	c.tc.Close()
}

// readLoop reads and handles frames; it returns the reason to stop, a
// ConnectionError for a protocol violation.
func (c *h2Conn) readLoop() error {
	for {
		// A timeout inside a frame leaves the framing lost: only one
		// between frames lets the connection go on.
		atFrame := c.in.n - int64(c.br.Buffered())
		if c.br.Buffered() == 0 {
			// About to block: send what the batch answered, and bound
			// the wait.
			c.mu.Lock()
			err := c.flushLocked()
			c.mu.Unlock()
			if err != nil {
				return err
			}
			if c.shutting.Load() {
				return errGoingAway
			}
			c.tc.SetReadDeadline(c.readDeadline())
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			if isTimeout(err) && c.in.n-int64(c.br.Buffered()) == atFrame {
				if c.shutting.Load() {
					return errGoingAway
				}
				if err := c.timedOut(); err != nil {
					return err
				}
				continue
			}
			var se http2.StreamError
			if errors.As(err, &se) {
				if se.StreamID%2 == 1 && se.StreamID > c.lastStream {
					c.lastStream = se.StreamID
				}
				c.resetStream(se.StreamID, se.Code)
				continue
			}
			return err
		}
		if !c.gotPreface {
			if _, ok := f.(*http2.SettingsFrame); !ok {
				return http2.ConnectionError(http2.ErrCodeProtocol)
			}
			c.gotPreface = true
		}
		if err := c.handleFrame(f); err != nil {
			return err
		}
	}
}

// errIdle ends a connection that had nothing to do for IdleTimeout.
var errIdle = errors.New("idle")

// readDeadline is when the next read gives up: ReadTimeout after the
// oldest request whose body is still arriving, or IdleTimeout after the
// last request seen in flight (PINGs and SETTINGS do not keep a
// connection open, as with net/http).
func (c *h2Conn) readDeadline() time.Time {
	now := time.Now()
	if c.inFlight.Load() > 0 || len(c.bodies) > 0 {
		c.lastActive = now
	}
	d := c.lastActive.Add(c.doh.cfg.IdleTimeout)
	for _, b := range c.bodies {
		if b.deadline.Before(d) {
			d = b.deadline
		}
	}
	return d
}

// timedOut handles a read deadline: bodies past ReadTimeout are reset, a
// writer stalled past WriteTimeout by a closed flow-control window ends
// the connection, and so does idleness with no request in flight.
func (c *h2Conn) timedOut() error {
	now := time.Now()
	for id, b := range c.bodies {
		if !now.Before(b.deadline) {
			delete(c.bodies, id)
			c.resetStream(id, http2.ErrCodeCancel)
		}
	}
	c.mu.Lock()
	stalled := c.waiters > 0 && now.Sub(c.waitSince) > c.doh.cfg.WriteTimeout
	c.mu.Unlock()
	if stalled {
		return errors.New("client keeps its flow-control window closed")
	}
	if len(c.bodies) == 0 && c.inFlight.Load() == 0 && now.Sub(c.lastActive) >= c.doh.cfg.IdleTimeout {
		return errIdle
	}
	return nil
}

// handleFrame acts on one frame from the client.
func (c *h2Conn) handleFrame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return c.onHeaders(f)
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.writeLocked(func() error { return c.fr.WritePing(true, f.Data) })
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.RSTStreamFrame:
		c.onReset(f.StreamID)
		return nil
	case *http2.GoAwayFrame:
		// The client opens no more streams; those in flight are
		// answered (serve waits for them).
		return errGoingAway
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // clients do not push (RFC 9113 8.4)
	}
	return nil // PRIORITY and unknown types are ignored (RFC 9113 5.5)
}

// onSettings applies the client's settings and acknowledges them.
func (c *h2Conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			// RFC 9113 6.9.2: the change applies to every open stream.
			delta := int64(s.Val) - c.peerWindow
			c.peerWindow = int64(s.Val)
			for _, st := range c.streams {
				st.sendWindow += delta
				if st.sendWindow > 1<<31-1 {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
			}
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame = s.Val
		case http2.SettingHeaderTableSize:
			c.henc.SetMaxDynamicTableSize(s.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.cond.Broadcast()
	return c.writeLocked(c.fr.WriteSettingsAck)
}

// onWindowUpdate grows a send window (RFC 9113 6.9).
func (c *h2Conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID == 0 {
		c.sendWindow += int64(f.Increment)
		if c.sendWindow > 1<<31-1 {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
	} else if st := c.streams[f.StreamID]; st != nil {
		st.sendWindow += int64(f.Increment)
		if st.sendWindow > 1<<31-1 {
			st.reset = true
			c.writeLocked(func() error { return c.fr.WriteRSTStream(f.StreamID, http2.ErrCodeFlowControl) })
		}
	}
	c.cond.Broadcast()
	return nil
}

// onReset forgets a stream the client reset: its body, and any answer
// not yet sent (a general request's handler is cancelled).
func (c *h2Conn) onReset(id uint32) {
	delete(c.bodies, id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.streams[id]; st != nil {
		st.reset = true
		if st.cancel != nil {
			st.cancel()
		}
		c.cond.Broadcast()
	}
}

// resetStream sends RST_STREAM for a stream we give up on.
func (c *h2Conn) resetStream(id uint32, code http2.ErrCode) {
	delete(c.bodies, id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.streams[id]; st != nil {
		st.reset = true
		c.cond.Broadcast()
	}
	c.writeLocked(func() error { return c.fr.WriteRSTStream(id, code) })
}

// onHeaders opens a stream with a request's header block.
func (c *h2Conn) onHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 || id <= c.lastStream {
		// Trailers on a stream receiving its body are a request's end;
		// anything else reuses or invents a stream (RFC 9113 5.1.1).
		if b := c.bodies[id]; b != nil && f.StreamEnded() {
			delete(c.bodies, id)
			c.request(id, b.head, b.body, b.tooLarge, false)
			return nil
		}
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	c.lastStream = id
	if c.shutting.Load() {
		c.resetStream(id, http2.ErrCodeRefusedStream)
		return nil
	}
	// Streams in flight are bounded by SETTINGS_MAX_CONCURRENT_STREAMS;
	// a client past it gets REFUSED_STREAM (RFC 9113 5.1.2), which also
	// bounds the rapid-reset attack: a reset stream's handler still
	// counts until it returns.
	if int(c.inFlight.Load())+len(c.bodies) >= c.doh.cfg.MaxInFlight {
		c.resetStream(id, http2.ErrCodeRefusedStream)
		return nil
	}
	h, err := decodeH2Head(f)
	if err != nil {
		c.resetStream(id, http2.ErrCodeProtocol)
		return nil
	}
	c.lastActive = time.Now()
	if f.StreamEnded() {
		c.request(id, h, nil, false, false)
		return nil
	}
	if h.contentLength > maxMsgLen {
		// Answered (413) before the body comes; the stream is then reset.
		c.request(id, h, nil, true, true)
		return nil
	}
	c.bodies[id] = &h2Body{head: h, deadline: time.Now().Add(c.doh.cfg.ReadTimeout)}
	return nil
}

// onData takes a piece of a request body. Flow control counts the whole
// frame, padding included (RFC 9113 6.9.1).
func (c *h2Conn) onData(f *http2.DataFrame) error {
	n := int64(f.Length)
	c.recvWindow -= n
	if c.recvWindow < 0 {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.unacked += n
	if c.unacked >= h2ConnWindow/4 {
		c.recvWindow += c.unacked
		inc := uint32(c.unacked)
		c.unacked = 0
		c.mu.Lock()
		err := c.writeLocked(func() error { return c.fr.WriteWindowUpdate(0, inc) })
		c.mu.Unlock()
		if err != nil {
			return err
		}
	}
	b := c.bodies[f.StreamID]
	if b == nil {
		if f.StreamID == 0 || f.StreamID > c.lastStream {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return nil // a stream already answered, reset or refused: dropped
	}
	if !b.tooLarge {
		if len(b.body)+len(f.Data()) > maxMsgLen {
			b.tooLarge = true
			b.body = nil
		} else {
			b.body = append(b.body, f.Data()...)
		}
	}
	if b.tooLarge || f.StreamEnded() {
		delete(c.bodies, f.StreamID)
		c.request(f.StreamID, b.head, b.body, b.tooLarge, !f.StreamEnded())
	}
	return nil
}

// decodeH2Head picks a request's pseudo-header fields and the few fields
// the fast path looks at. The framer has already checked the fields'
// syntax and the pseudo-headers' place and uniqueness.
func decodeH2Head(f *http2.MetaHeadersFrame) (*h2Head, error) {
	h := &h2Head{contentLength: -1, wireOnly: true, truncated: f.Truncated, fields: f.Fields}
	for _, hf := range f.Fields {
		switch hf.Name {
		case ":method":
			h.method = hf.Value
		case ":scheme":
			h.scheme = hf.Value
		case ":authority":
			h.authority = hf.Value
		case ":path":
			h.path = hf.Value
		case ":status", ":protocol":
			return nil, errors.New("not a request pseudo-header")
		case "content-type":
			h.contentType = hf.Value
		case "content-length":
			n, err := strconv.ParseInt(hf.Value, 10, 64)
			if err != nil || n < 0 || (h.contentLength >= 0 && h.contentLength != n) {
				return nil, errors.New("bad content-length")
			}
			h.contentLength = n
		case "accept":
			if hf.Value != mimeDNSMessage {
				h.wireOnly = false
			}
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return nil, errors.New("connection-specific header") // RFC 9113 8.2.2
		case "te":
			if hf.Value != "trailers" {
				return nil, errors.New("connection-specific header")
			}
		}
	}
	if h.method == "" || h.path == "" || h.scheme == "" {
		if !h.truncated {
			return nil, errors.New("missing pseudo-header") // RFC 9113 8.3.1
		}
	}
	if h.method == http.MethodConnect {
		return nil, errors.New("CONNECT")
	}
	return h, nil
}

// request answers a request whose last frame arrived: in place when the
// Handler has the answer ready, otherwise through DoH.ServeHTTP.
// remoteOpen: the client has not ended its side yet (an early 413).
func (c *h2Conn) request(id uint32, h *h2Head, body []byte, tooLarge, remoteOpen bool) {
	if !tooLarge && h.contentLength >= 0 && int64(len(body)) != h.contentLength {
		c.resetStream(id, http2.ErrCodeProtocol) // malformed (RFC 9113 8.1.1)
		return
	}
	st := &h2Stream{id: id, remoteOpen: remoteOpen}
	c.mu.Lock()
	st.sendWindow = c.peerWindow
	c.streams[id] = st
	c.mu.Unlock()
	c.inFlight.Add(1)
	if !tooLarge && c.answerReady(st, h, body) {
		return
	}
	c.startGeneral(st, h, body, tooLarge)
}

// answerReady is the fast path of GET ?dns= and POST
// application/dns-message: the ReadyAnswerer's answer straight from the
// raw query, on the reader's goroutine. Anything unusual (other
// parameters, JSON, an Accept beyond application/dns-message, a query
// with EDNS options, a client the ACL refuses, an answer not ready) is
// left to the general path, which says what is wrong.
func (c *h2Conn) answerReady(st *h2Stream, h *h2Head, body []byte) bool {
	ra, ok := c.doh.eng.handler.(ReadyAnswerer)
	if !ok || !h.wireOnly || h.truncated || !c.doh.eng.acl.allows(c.remote.Addr()) { // the ACL may change while a connection lives
		return false
	}
	raw, ok := c.fastQuery(h, body)
	if !ok {
		return false
	}
	if _, ok := readySize(raw, maxMsgLen); !ok {
		return false
	}
	if !c.slot.begin() {
		return false // being closed as idle: the general path does what net/http did
	}
	defer c.slot.end()
	bp := c.doh.eng.bufs.get()
	defer c.doh.eng.bufs.put(bp)
	ans, ok := c.doh.eng.answerReady(ra, (*bp)[:0], raw, maxMsgLen, c.remote)
	if !ok {
		return false
	}
	c.doh.eng.responses.countWire(HTTPS, ans)
	c.respondWire(st, ans, wireMinTTL(ans))
	return true
}

// fastQuery returns the wire query of a GET whose only parameter is a
// ?dns= of plain base64url, or of a POST of application/dns-message.
func (c *h2Conn) fastQuery(h *h2Head, body []byte) ([]byte, bool) {
	switch h.method {
	case http.MethodPost:
		if h.contentType != mimeDNSMessage || h.path != c.doh.cfg.Path {
			return nil, false
		}
		return body, true
	case http.MethodGet:
		rest, ok := strings.CutPrefix(h.path, c.doh.cfg.Path)
		if !ok {
			return nil, false
		}
		v, ok := strings.CutPrefix(rest, "?dns=")
		if !ok || v == "" || len(v) > base64.RawURLEncoding.EncodedLen(maxMsgLen) {
			return nil, false
		}
		c.scratch = append(c.scratch[:0], v...)
		n := base64.RawURLEncoding.DecodedLen(len(c.scratch))
		if cap(c.decoded) < n {
			c.decoded = make([]byte, n)
		}
		// '&', '=', '%' and every other byte outside base64url fail the
		// decoding: such queries take the general path.
		n, err := base64.RawURLEncoding.Decode(c.decoded[:n], c.scratch)
		if err != nil {
			return nil, false
		}
		return c.decoded[:n], true
	}
	return nil, false
}

// respondWire sends a ready answer: 200 application/dns-message, with
// Cache-Control for ttl >= 0 (RFC 8484 5.1) and the listener's Alt-Svc,
// the same fields dohWriter sends.
func (c *h2Conn) respondWire(st *h2Stream, ans []byte, ttl int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || st.reset {
		c.finishLocked(st)
		return
	}
	c.hbuf.Reset()
	c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	c.henc.WriteField(hpack.HeaderField{Name: "content-type", Value: mimeDNSMessage})
	c.henc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(ans))})
	c.henc.WriteField(hpack.HeaderField{Name: "date", Value: httpDate()})
	if ttl >= 0 {
		c.henc.WriteField(hpack.HeaderField{Name: "cache-control", Value: "max-age=" + strconv.Itoa(ttl)})
	}
	if c.altSvc != "" {
		c.henc.WriteField(hpack.HeaderField{Name: "alt-svc", Value: c.altSvc})
	}
	c.sendLocked(st, ans, false)
}

// sendLocked writes the header block in c.hbuf and body on st. On the
// reader's goroutine (wait false) a body the flow-control windows do not
// let through yet is handed to a goroutine of its own.
func (c *h2Conn) sendLocked(st *h2Stream, body []byte, wait bool) {
	block := c.hbuf.Bytes()
	first := true
	for first || len(block) > 0 {
		n := min(len(block), int(c.peerMaxFrame))
		frag, end := block[:n], n == len(block)
		block = block[n:]
		if first {
			c.writeLocked(func() error {
				return c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: st.id, BlockFragment: frag, EndStream: len(body) == 0, EndHeaders: end})
			})
			first = false
		} else {
			c.writeLocked(func() error { return c.fr.WriteContinuation(st.id, end, frag) })
		}
	}
	c.sendDataLocked(st, body, wait)
}

// sendDataLocked writes body as DATA frames as the windows allow.
func (c *h2Conn) sendDataLocked(st *h2Stream, body []byte, wait bool) {
	for len(body) > 0 {
		if c.closed || st.reset {
			break
		}
		n := min(int64(len(body)), int64(c.peerMaxFrame), c.sendWindow, st.sendWindow)
		if n <= 0 {
			if !wait {
				rest := append([]byte(nil), body...) // body is the caller's buffer
				c.handlers.Add(1)
				go func() {
					defer c.handlers.Done()
					c.mu.Lock()
					defer c.mu.Unlock()
					c.sendDataLocked(st, rest, true)
					c.flushLocked()
				}()
				return
			}
			c.waitWindowLocked()
			continue
		}
		chunk, end := body[:n], n == int64(len(body))
		c.writeLocked(func() error { return c.fr.WriteData(st.id, end, chunk) })
		c.sendWindow -= n
		st.sendWindow -= n
		body = body[n:]
	}
	c.finishLocked(st)
}

// waitWindowLocked waits for a WINDOW_UPDATE, a SETTINGS, a reset or the
// end of the connection; the reader closes a connection whose window
// stays shut past WriteTimeout.
func (c *h2Conn) waitWindowLocked() {
	// What was written so far must reach the client, or it has nothing
	// to give window back for.
	if c.flushLocked() != nil {
		return
	}
	if c.waiters == 0 {
		c.waitSince = time.Now()
	}
	c.waiters++
	c.cond.Wait()
	c.waiters--
}

// finishLocked forgets an answered stream; if the client had not finished
// sending (an early 413), the stream is reset so that it stops (RFC 9113
// 8.1).
func (c *h2Conn) finishLocked(st *h2Stream) {
	if _, ok := c.streams[st.id]; !ok {
		return
	}
	delete(c.streams, st.id)
	c.inFlight.Add(-1)
	if st.remoteOpen && !st.reset && !c.closed {
		c.writeLocked(func() error { return c.fr.WriteRSTStream(st.id, http2.ErrCodeNo) })
	}
}

// writeLocked runs one framer write; after a write error the connection is
// closed and further writes are skipped.
func (c *h2Conn) writeLocked(write func() error) error {
	if c.closed {
		return net.ErrClosed
	}
	if err := write(); err != nil {
		c.abortLocked()
		return err
	}
	return nil
}

// flushLocked sends what is buffered, within WriteTimeout.
func (c *h2Conn) flushLocked() error {
	if c.closed {
		return net.ErrClosed
	}
	if c.bw.Buffered() == 0 {
		return nil
	}
	c.tc.SetWriteDeadline(time.Now().Add(c.doh.cfg.WriteTimeout))
	if err := c.bw.Flush(); err != nil {
		c.abortLocked()
		return fmt.Errorf("write to %s: %w", c.remote, err)
	}
	return nil
}

// abortLocked closes the connection after a write failed: a stalled or
// gone reader loses it, nobody else waits.
func (c *h2Conn) abortLocked() {
	c.closed = true
	c.cond.Broadcast()
	c.tc.NetConn().Close()
}

// startGeneral serves a request through DoH.ServeHTTP in a goroutine of its
// own: every error status, the JSON API, and queries whose answer is not
// ready.
func (c *h2Conn) startGeneral(st *h2Stream, h *h2Head, body []byte, tooLarge bool) {
	ctx, cancel := context.WithCancel(c.ctx)
	c.mu.Lock()
	st.cancel = cancel
	c.mu.Unlock()
	c.handlers.Add(1)
	go func() {
		defer c.handlers.Done()
		defer cancel()
		w := &h2ResponseWriter{c: c, st: st, header: make(http.Header), head: h.method == http.MethodHead}
		defer func() {
			if p := recover(); p != nil {
				c.doh.eng.log.Error("doh h2 request panic", "panic", fmt.Sprint(p), "remote", c.remote)
				c.mu.Lock()
				st.remoteOpen = false
				c.finishLocked(st)
				c.writeLocked(func() error { return c.fr.WriteRSTStream(st.id, http2.ErrCodeInternal) })
				c.flushLocked()
				c.mu.Unlock()
			}
		}()
		if req := c.newRequest(ctx, h, body, tooLarge); req != nil {
			c.general.ServeHTTP(w, req)
		} else if h.truncated {
			http.Error(w, "request header fields too large", http.StatusRequestHeaderFieldsTooLarge)
		} else {
			http.Error(w, "bad request", http.StatusBadRequest)
		}
		w.finish()
	}()
}

// newRequest builds the http.Request of h, or nil when its header block
// was truncated or its path is not a URL.
func (c *h2Conn) newRequest(ctx context.Context, h *h2Head, body []byte, tooLarge bool) *http.Request {
	if h.truncated {
		return nil
	}
	u, err := url.ParseRequestURI(h.path)
	if err != nil {
		return nil
	}
	hdr := make(http.Header, len(h.fields))
	for _, f := range h.fields {
		if !strings.HasPrefix(f.Name, ":") {
			hdr.Add(f.Name, f.Value)
		}
	}
	r := &http.Request{
		Method:        h.method,
		URL:           u,
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
		Header:        hdr,
		Body:          http.NoBody,
		ContentLength: h.contentLength,
		Host:          h.authority,
		RemoteAddr:    c.tc.RemoteAddr().String(),
		RequestURI:    h.path,
	}
	if len(body) > 0 || tooLarge {
		if tooLarge {
			// More than any DNS message: DoH.ServeHTTP answers 413 on
			// reading past maxMsgLen.
			body = make([]byte, maxMsgLen+1)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if r.ContentLength < 0 {
			r.ContentLength = int64(len(body))
		}
	}
	state := c.tc.ConnectionState()
	r.TLS = &state
	return r.WithContext(ctx)
}

// h2ResponseWriter collects a general request's answer, which goes out
// whole when the handler returns.
type h2ResponseWriter struct {
	c      *h2Conn
	st     *h2Stream
	header http.Header
	status int
	body   []byte
	head   bool
}

func (w *h2ResponseWriter) Header() http.Header { return w.header }

func (w *h2ResponseWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
}

func (w *h2ResponseWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, p...)
	return len(p), nil
}

// finish sends the status, the header fields (Content-Type sniffed and
// Content-Length set as net/http would) and the body.
func (w *h2ResponseWriter) finish() {
	w.WriteHeader(http.StatusOK)
	if _, ok := w.header["Content-Type"]; !ok && len(w.body) > 0 {
		w.header.Set("Content-Type", http.DetectContentType(w.body))
	}
	if w.header.Get("Content-Length") == "" {
		w.header.Set("Content-Length", strconv.Itoa(len(w.body)))
	}
	if _, ok := w.header["Date"]; !ok {
		w.header.Set("Date", httpDate())
	}
	body := w.body
	if w.head {
		body = nil // a HEAD answer has the fields of a GET's, no content
	}
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || w.st.reset {
		c.finishLocked(w.st)
		return
	}
	c.hbuf.Reset()
	c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: strconv.Itoa(w.status)})
	for k, vs := range w.header {
		name := strings.ToLower(k)
		switch name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			continue // not in HTTP/2 (RFC 9113 8.2.2)
		}
		for _, v := range vs {
			c.henc.WriteField(hpack.HeaderField{Name: name, Value: v})
		}
	}
	c.sendLocked(w.st, body, true)
	c.flushLocked()
}

// httpDate is the Date field of our answers (RFC 9110 6.6.1: an origin
// server with a clock sends it), formatted once a second.
func httpDate() string {
	now := time.Now()
	if d := cachedDate.Load(); d != nil && d.unix == now.Unix() {
		return d.text
	}
	d := &httpDateText{unix: now.Unix(), text: now.UTC().Format(http.TimeFormat)}
	cachedDate.Store(d)
	return d.text
}

type httpDateText struct {
	unix int64
	text string
}

var cachedDate atomic.Pointer[httpDateText]

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
