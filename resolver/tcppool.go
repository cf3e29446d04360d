package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Upstream TCP reuse (RFC 7766 6.2.1: a client should reuse a connection
// for several queries, and may pipeline them, matching replies by ID).
// A TC=1 answer or a TCP-only server then costs one handshake per idle
// period rather than one per question. Each connection has a reader
// goroutine that hands replies to their waiters by message ID; a
// connection without queries closes after the idle time (before most
// servers' own idle limits, so that we rarely send into a connection the
// server is closing). Connections are bounded per server and in total.

// Upstream TCP defaults (Config.UpstreamTCP*).
const (
	// defaultTCPIdle is how long an unused connection stays open: short,
	// since servers close idle ones after a few seconds (RFC 7766 6.2.3
	// asks servers for idle timeouts of seconds; miekg/dns uses 8 s).
	defaultTCPIdle = 5 * time.Second
	// defaultTCPPerServer bounds connections to one server: one carries
	// pipelined queries, a second opens only when it is busy.
	defaultTCPPerServer = 2
	// defaultTCPTotal bounds all pooled connections (file descriptors and
	// reader goroutines).
	defaultTCPTotal = 256
	// tcpPipelineBusy is the number of queries out on a connection past
	// which another connection to the server is opened, if the bound
	// allows; otherwise queries keep sharing the least loaded one.
	tcpPipelineBusy = 16
)

var (
	// errTCPConnLost: the connection closed or failed before the reply.
	errTCPConnLost = errors.New("connection lost")
	// errTCPPoolFull: every pooled connection is in use and the bounds
	// allow no new one; nothing was sent. Not the server's fault.
	errTCPPoolFull = errors.New("upstream TCP connections exhausted")
	// errTCPPoolClosed: the pool was closed (Resolver.Close).
	errTCPPoolClosed = errors.New("upstream TCP pool closed")
)

// tcpPool keeps TCP connections to servers for reuse.
type tcpPool struct {
	idle      time.Duration
	perServer int
	total     int
	// dial opens a connection (with the exchanger's source address).
	dial func(ctx context.Context, server netip.AddrPort, deadline time.Time) (net.Conn, error)

	mu      sync.Mutex
	conns   map[netip.AddrPort][]*tcpConn
	dialing map[netip.AddrPort]int
	open    int // connections open or being dialled
	closed  bool
	readers sync.WaitGroup
}

// tcpConn is one pooled connection.
type tcpConn struct {
	pool   *tcpPool
	server netip.AddrPort
	c      net.Conn
	wmu    sync.Mutex // one frame written at a time

	mu      sync.Mutex
	pending map[uint16]chan tcpReply
	// broken: no new queries (failed, closed, or a query timed out on it).
	broken bool
	idle   *time.Timer
	// removed is set, under the pool's lock, once the pool forgot it.
	removed bool
}

// tcpReply is a reply frame or why none will come.
type tcpReply struct {
	msg []byte
	err error
}

func newTCPPool(idle time.Duration, perServer, total int, dial func(context.Context, netip.AddrPort, time.Time) (net.Conn, error)) *tcpPool {
	return &tcpPool{idle: idle, perServer: perServer, total: total, dial: dial,
		conns: make(map[netip.AddrPort][]*tcpConn), dialing: make(map[netip.AddrPort]int)}
}

// exchange sends the DNS message wire to server over a pooled connection
// and returns the reply and the message ID it went with (the pool picks
// an ID free on the connection; the caller matches the reply with it).
// A reused connection that turns out closed is replaced once.
func (p *tcpPool) exchange(ctx context.Context, server netip.AddrPort, wire []byte, deadline time.Time) ([]byte, uint16, error) {
	for attempt := 0; ; attempt++ {
		tc, fresh, err := p.get(ctx, server, deadline)
		if err != nil {
			return nil, 0, err
		}
		reply, id, err := tc.roundTrip(ctx, wire, deadline)
		if err != nil && errors.Is(err, errTCPConnLost) && !fresh && attempt == 0 {
			continue // the server closed it while idle (RFC 7766 6.2.3)
		}
		return reply, id, err
	}
}

// get returns a connection to server: the least loaded open one, or a
// new one when none is open or all are busy and the bounds allow. fresh
// says it was just dialled.
func (p *tcpPool) get(ctx context.Context, server netip.AddrPort, deadline time.Time) (*tcpConn, bool, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, errTCPPoolClosed
	}
	best, load := p.leastLoadedLocked(server)
	if best != nil && load < tcpPipelineBusy {
		p.mu.Unlock()
		return best, false, nil
	}
	mine := len(p.conns[server]) + p.dialing[server]
	if mine >= p.perServer || p.open >= p.total && !p.evictIdleLocked() {
		p.mu.Unlock()
		if best != nil {
			return best, false, nil // busy, but the bounds allow no other
		}
		return nil, false, fmt.Errorf("%s: %w", server, errTCPPoolFull)
	}
	p.open++
	p.dialing[server]++
	p.mu.Unlock()

	c, err := p.dial(ctx, server, deadline)

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dialing[server]--; p.dialing[server] == 0 {
		delete(p.dialing, server)
	}
	if err != nil {
		p.open--
		return nil, false, err
	}
	tc := &tcpConn{pool: p, server: server, c: c, pending: make(map[uint16]chan tcpReply)}
	if p.closed {
		p.open--
		tc.removed = true
		_ = c.Close()
		return nil, false, errTCPPoolClosed
	}
	p.conns[server] = append(p.conns[server], tc)
	p.readers.Add(1)
	go tc.readLoop()
	return tc, true, nil
}

// leastLoadedLocked returns server's usable connection with the fewest
// queries out, and that number.
func (p *tcpPool) leastLoadedLocked(server netip.AddrPort) (*tcpConn, int) {
	var best *tcpConn
	load := 0
	for _, tc := range p.conns[server] {
		tc.mu.Lock()
		n, ok := len(tc.pending), !tc.broken
		tc.mu.Unlock()
		if ok && (best == nil || n < load) {
			best, load = tc, n
		}
	}
	return best, load
}

// evictIdleLocked closes one connection without queries out, of any
// server, to make room under the total bound; false when there is none.
func (p *tcpPool) evictIdleLocked() bool {
	for _, list := range p.conns {
		for _, tc := range list {
			tc.mu.Lock()
			idle := len(tc.pending) == 0
			if idle {
				tc.broken = true
			}
			tc.mu.Unlock()
			if idle {
				p.removeLocked(tc)
				_ = tc.c.Close()
				return true
			}
		}
	}
	return false
}

// removeLocked forgets tc (once).
func (p *tcpPool) removeLocked(tc *tcpConn) {
	if tc.removed {
		return
	}
	tc.removed = true
	p.open--
	list := p.conns[tc.server]
	for i, x := range list {
		if x == tc {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(p.conns, tc.server)
	} else {
		p.conns[tc.server] = list
	}
}

// stats returns the connections open (or being dialled), for tests.
func (p *tcpPool) stats() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open
}

// close closes every connection and waits for their readers; later
// exchanges get errTCPPoolClosed.
func (p *tcpPool) close() {
	p.mu.Lock()
	p.closed = true
	var all []*tcpConn
	for _, list := range p.conns {
		all = append(all, list...)
	}
	p.mu.Unlock()
	for _, tc := range all {
		tc.fail(errTCPPoolClosed)
	}
	p.readers.Wait()
}

// roundTrip sends one query on tc and waits for its reply until deadline.
func (tc *tcpConn) roundTrip(ctx context.Context, wire []byte, deadline time.Time) ([]byte, uint16, error) {
	ch := make(chan tcpReply, 1)
	id, ok := tc.register(binary.BigEndian.Uint16(wire), ch)
	if !ok {
		return nil, 0, fmt.Errorf("%s tcp: %w", tc.server, errTCPConnLost)
	}
	frame := make([]byte, 2+len(wire))
	binary.BigEndian.PutUint16(frame, uint16(len(wire)))
	copy(frame[2:], wire)
	binary.BigEndian.PutUint16(frame[2:], id)
	tc.wmu.Lock()
	_ = tc.c.SetWriteDeadline(deadline)
	_, err := tc.c.Write(frame)
	tc.wmu.Unlock()
	if err != nil {
		tc.fail(err)
		return nil, 0, fmt.Errorf("send tcp %s: %w: %w", tc.server, errTCPConnLost, err)
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case r := <-ch:
		return r.msg, id, r.err
	case <-timer.C:
		// The server may be stuck on this connection: no new queries
		// go on it; it closes once the others are answered.
		tc.unregister(id, true)
		return nil, 0, fmt.Errorf("%s tcp: %w", tc.server, errTimeout)
	case <-ctx.Done():
		tc.unregister(id, false)
		return nil, 0, ctx.Err()
	}
}

// register reserves a message ID for a query on tc: want if free, else
// another random one (IDs must be unique among a connection's queries
// out, RFC 7766 7). False when tc takes no more queries.
func (tc *tcpConn) register(want uint16, ch chan tcpReply) (uint16, bool) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.broken {
		return 0, false
	}
	id := want
	for {
		if _, taken := tc.pending[id]; !taken {
			break
		}
		id = randUint16()
	}
	tc.pending[id] = ch
	if tc.idle != nil {
		tc.idle.Stop()
	}
	return id, true
}

// unregister drops a query that stopped waiting; broken takes tc out of
// use for new queries.
func (tc *tcpConn) unregister(id uint16, broken bool) {
	tc.mu.Lock()
	delete(tc.pending, id)
	if broken {
		tc.broken = true
	}
	tc.armIdleLocked()
	tc.mu.Unlock()
}

// armIdleLocked starts the idle timer when no query is out: an unused
// connection closes after the pool's idle time, a broken one at once.
func (tc *tcpConn) armIdleLocked() {
	if len(tc.pending) > 0 {
		return
	}
	wait := tc.pool.idle
	if tc.broken {
		wait = 0
	}
	if tc.idle == nil {
		tc.idle = time.AfterFunc(wait, tc.closeIfIdle)
		return
	}
	tc.idle.Reset(wait)
}

// closeIfIdle closes tc if still no query is out.
func (tc *tcpConn) closeIfIdle() {
	tc.mu.Lock()
	idle := len(tc.pending) == 0
	tc.mu.Unlock()
	if idle {
		tc.fail(errTCPConnLost)
	}
}

// fail closes tc and tells the queries out on it, once the pool forgot
// it (so that a retry cannot pick it again).
func (tc *tcpConn) fail(cause error) {
	p := tc.pool
	p.mu.Lock()
	p.removeLocked(tc)
	p.mu.Unlock()
	tc.mu.Lock()
	tc.broken = true
	for id, ch := range tc.pending {
		ch <- tcpReply{err: fmt.Errorf("%s tcp: %w (%w)", tc.server, errTCPConnLost, cause)}
		delete(tc.pending, id)
	}
	if tc.idle != nil {
		tc.idle.Stop()
	}
	tc.mu.Unlock()
	_ = tc.c.Close()
}

// readLoop hands each reply frame to the query with its ID; frames for no
// query out (late replies to queries that gave up, junk) are dropped, and
// past maxJunkReplies of them the connection is given up: a server that
// streams frames nobody asked for does not keep us reading.
func (tc *tcpConn) readLoop() {
	defer tc.pool.readers.Done()
	var lenBuf [2]byte
	for junk := 0; ; {
		if junk > maxJunkReplies {
			tc.fail(errMalformed)
			return
		}
		if _, err := io.ReadFull(tc.c, lenBuf[:]); err != nil {
			tc.fail(err)
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(tc.c, msg); err != nil {
			tc.fail(err)
			return
		}
		// Shorter than a DNS header, or for no query out: junk.
		if len(msg) < 12 || !tc.deliver(binary.BigEndian.Uint16(msg), msg) {
			junk++
		}
	}
}

// deliver gives msg to the query out with id; false when there is none.
func (tc *tcpConn) deliver(id uint16, msg []byte) bool {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	ch, ok := tc.pending[id]
	if !ok {
		return false
	}
	delete(tc.pending, id)
	ch <- tcpReply{msg: msg}
	tc.armIdleLocked()
	return true
}
