package resolver

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"

	"github.com/sextant-dns/sextant/internal/siphash"
)

// Errors an exchange reports; the iterator uses them to update server
// selection and to decide on fallbacks.
var (
	// errTimeout: no acceptable reply before the deadline.
	errTimeout = errors.New("timeout")
	// errCaseMismatch: the wait ended with no acceptable reply, and at
	// least one reply matched address, port, ID and question except for the
	// 0x20 case pattern. Such a reply is forged or comes from a server that
	// does not preserve case; its data is never used. It always comes
	// wrapped with errTimeout.
	errCaseMismatch = errors.New("only replies with the wrong 0x20 case")
	// errServerResting: the server timed out repeatedly and is not asked
	// now (backed off, or another question probes it); nothing was sent.
	errServerResting = errors.New("server resting after repeated timeouts")
	// errMalformed: the server answered, but only with unparseable or
	// mismatched data.
	errMalformed = errors.New("malformed or mismatched reply")
	// errCookieMismatch: the wait ended with no acceptable reply, and at
	// least one reply lacked our DNS Client Cookie, from a server that
	// had sent us a Server Cookie before (RFC 7873 5.3): forged, or the
	// server stopped doing cookies (then it is forgotten, and the next
	// query accepts its replies). Always wrapped with errTimeout.
	errCookieMismatch = errors.New("only replies without our DNS cookie")
)

// ednsUDPSize is the EDNS buffer size we advertise upstream (DNS Flag Day
// 2020: 1232 avoids IP fragmentation on common paths).
const ednsUDPSize = 1232

// maxJunkReplies bounds how many non-matching datagrams one exchange reads
// before it gives up on the socket; the deadline bounds it too.
const maxJunkReplies = 256

// outQuery is one query to one server.
type outQuery struct {
	// Name is the query name, sent as given (lower-case, or a case
	// pattern the caller chose) unless Use0x20 randomises it.
	Name   string
	Type   uint16
	Class  uint16
	Server netip.AddrPort
	// EDNS adds an OPT record (buffer ednsUDPSize); DO sets its DO bit.
	EDNS, DO bool
	// Use0x20 randomises the query name's case over UDP and demands an
	// exact echo.
	Use0x20 bool
	// TCP sends the query over TCP instead of UDP.
	TCP     bool
	Timeout time.Duration
}

// exchanger sends single queries to single servers with the spoofing
// defences: random ID and source port per query, connected UDP sockets (the
// kernel drops datagrams from other addresses and ports), replies matched on
// ID and question, and junk that does not end the wait (TuDoor).
type exchanger struct {
	// local4 and local6 are source addresses to bind (zero = any).
	local4, local6 []netip.Addr
	// bufs are receive buffers big enough for any datagram. Unpack copies
	// what it keeps, so a buffer goes back when the exchange ends.
	bufs sync.Pool
	// cookies are the DNS cookies sent with EDNS queries.
	cookies *upstreamCookies
	// tcp keeps connections for reuse; nil when reuse is off.
	tcp *tcpPool
	// upstream, when set (Config.Upstream), carries the queries instead
	// of sockets.
	upstream UpstreamExchanger
}

// newExchanger makes an exchanger without TCP reuse (see reuseTCP).
func newExchanger() *exchanger {
	x := &exchanger{cookies: newUpstreamCookies()}
	x.bufs.New = func() any { b := make([]byte, dns.MaxMsgSize); return &b }
	return x
}

// reuseTCP turns TCP connection reuse on (tcppool.go), unless idle is
// negative; zero values take the defaults.
func (x *exchanger) reuseTCP(idle time.Duration, perServer, total int) {
	if idle < 0 {
		return
	}
	if idle == 0 {
		idle = defaultTCPIdle
	}
	if perServer <= 0 {
		perServer = defaultTCPPerServer
	}
	if total <= 0 {
		total = defaultTCPTotal
	}
	x.tcp = newTCPPool(idle, perServer, total, x.dialTCP)
}

// close closes the pooled TCP connections (later TCP queries use a
// connection each).
func (x *exchanger) close() {
	if x.tcp != nil {
		x.tcp.close()
	}
}

// exchange sends q and returns the matching reply and the round-trip time.
// A truncated UDP reply is returned as is (TC set) for the caller to retry
// over TCP. A BADCOOKIE reply (the server wants the fresh Server Cookie it
// just sent) is retried once with it, then over TCP (RFC 7873 5.3).
func (x *exchanger) exchange(ctx context.Context, q outQuery) (*dns.Msg, time.Duration, error) {
	reply, rtt, err := x.exchangeOnce(ctx, q)
	for retry := 0; err == nil && reply.Rcode == dns.RcodeBadCookie && q.EDNS && !q.TCP && retry < 2; retry++ {
		q.TCP = retry == 1
		reply, rtt, err = x.exchangeOnce(ctx, q)
	}
	return reply, rtt, err
}

func (x *exchanger) exchangeOnce(ctx context.Context, q outQuery) (*dns.Msg, time.Duration, error) {
	m := new(dns.Msg)
	m.Id = randUint16()
	m.Opcode = dns.OpcodeQuery
	wireName := q.Name
	if q.Use0x20 && !q.TCP {
		wireName = randomCase(q.Name)
	}
	m.Question = []dns.Question{{Name: wireName, Qtype: q.Type, Qclass: q.Class}}
	if q.EDNS {
		m.SetEdns0(ednsUDPSize, q.DO)
		m.IsEdns0().Option = append(m.IsEdns0().Option, x.cookies.option(q.Server.Addr()))
	}
	wire, err := m.Pack()
	if err != nil {
		return nil, 0, fmt.Errorf("pack query %s/%s: %w", q.Name, dns.TypeToString[q.Type], err)
	}
	deadline := time.Now().Add(q.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if x.upstream != nil {
		return x.exchangeUpstream(ctx, q, m, deadline)
	}
	if q.TCP {
		return x.exchangeTCP(ctx, q, m, wire, deadline)
	}
	return x.exchangeUDP(ctx, q, m, wire, deadline)
}

// localAddr picks a source address of the server's family.
func (x *exchanger) localAddr(server netip.Addr) netip.Addr {
	list := x.local4
	if server.Is6() && !server.Is4In6() {
		list = x.local6
	}
	if len(list) == 0 {
		return netip.Addr{}
	}
	return list[randIntn(len(list))]
}

// dialUDP opens a UDP socket connected to server from a random source port
// (retrying a few ports that are taken, then letting the kernel choose).
func (x *exchanger) dialUDP(server netip.AddrPort) (*net.UDPConn, error) {
	network := "udp4"
	if server.Addr().Is6() && !server.Addr().Is4In6() {
		network = "udp6"
	}
	raddr := net.UDPAddrFromAddrPort(server)
	local := x.localAddr(server.Addr())
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := randSourcePort()
		if attempt == 4 {
			port = 0
		}
		laddr := &net.UDPAddr{Port: port}
		if local.IsValid() {
			laddr.IP = local.AsSlice()
		}
		c, err := net.DialUDP(network, laddr, raddr)
		if err == nil {
			return c, nil
		}
		lastErr = err
		if !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EACCES) {
			break
		}
	}
	return nil, fmt.Errorf("open UDP socket to %s: %w", server, lastErr)
}

func (x *exchanger) exchangeUDP(ctx context.Context, q outQuery, m *dns.Msg, wire []byte, deadline time.Time) (*dns.Msg, time.Duration, error) {
	c, err := x.dialUDP(q.Server)
	if err != nil {
		return nil, 0, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := c.SetDeadline(deadline); err != nil {
		return nil, 0, fmt.Errorf("set deadline: %w", err)
	}
	start := time.Now()
	if _, err := c.Write(wire); err != nil {
		return nil, 0, fmt.Errorf("send to %s: %w", q.Server, err)
	}
	bp := x.bufs.Get().(*[]byte)
	defer x.bufs.Put(bp)
	buf := *bp
	var sawJunk, sawRefused, sawWrongCase, sawNoCookie bool
	for junk := 0; junk < maxJunkReplies; junk++ {
		n, err := c.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, 0, ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				// An ICMP error can be forged as easily as a reply (TuDoor):
				// it does not end the wait for the real answer.
				sawRefused = true
				continue
			}
			return nil, 0, fmt.Errorf("read from %s: %w", q.Server, err)
		}
		rtt := time.Since(start)
		reply := new(dns.Msg)
		if err := reply.Unpack(buf[:n]); err != nil {
			sawJunk = true
			continue
		}
		switch matchReply(m, reply, q.Use0x20) {
		case replyMatches:
			if q.EDNS && !x.cookies.accept(q.Server.Addr(), reply, false) {
				// Like a wrong case: dropped, and the wait goes on.
				sawNoCookie = true
				continue
			}
			return reply, rtt, nil
		case replyCaseMismatch:
			// A wrong case is a spoofing signal, not a capability fact: an
			// attacker who guessed ID and port cannot guess the case. The
			// reply is dropped and the wait goes on for the real one; the
			// caller weighs repeated mismatches (see resolution.ask).
			sawWrongCase = true
		default:
			sawJunk = true
		}
	}
	if sawWrongCase {
		return nil, 0, fmt.Errorf("%s: %w (%w)", q.Server, errTimeout, errCaseMismatch)
	}
	if sawNoCookie {
		x.cookies.forget(q.Server.Addr())
		return nil, 0, fmt.Errorf("%s: %w (%w)", q.Server, errTimeout, errCookieMismatch)
	}
	if sawRefused {
		return nil, 0, fmt.Errorf("%s: %w (port unreachable)", q.Server, errTimeout)
	}
	if sawJunk {
		return nil, 0, fmt.Errorf("%s: %w (and %w)", q.Server, errTimeout, errMalformed)
	}
	return nil, 0, fmt.Errorf("%s: %w", q.Server, errTimeout)
}

// exchangeTCP sends the query over a pooled connection (tcppool.go), or a
// connection of its own when reuse is off or the pool is closed.
func (x *exchanger) exchangeTCP(ctx context.Context, q outQuery, m *dns.Msg, wire []byte, deadline time.Time) (*dns.Msg, time.Duration, error) {
	if x.tcp == nil {
		return x.exchangeTCPOnce(ctx, q, m, wire, deadline)
	}
	start := time.Now()
	buf, id, err := x.tcp.exchange(ctx, q.Server, wire, deadline)
	if errors.Is(err, errTCPPoolClosed) {
		return x.exchangeTCPOnce(ctx, q, m, wire, deadline)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		return nil, 0, err
	}
	m.Id = id
	return x.tcpReply(q, m, buf, time.Since(start))
}

// dialTCP opens a TCP connection to server from the configured source
// address; a dial that times out is errTimeout.
func (x *exchanger) dialTCP(ctx context.Context, server netip.AddrPort, deadline time.Time) (net.Conn, error) {
	d := net.Dialer{Deadline: deadline}
	if l := x.localAddr(server.Addr()); l.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: l.AsSlice()}
	}
	c, err := d.DialContext(ctx, "tcp", server.String())
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("%s tcp: %w", server, errTimeout)
		}
		return nil, fmt.Errorf("dial tcp %s: %w", server, err)
	}
	return c, nil
}

// exchangeTCPOnce sends the query over a connection of its own.
func (x *exchanger) exchangeTCPOnce(ctx context.Context, q outQuery, m *dns.Msg, wire []byte, deadline time.Time) (*dns.Msg, time.Duration, error) {
	start := time.Now()
	c, err := x.dialTCP(ctx, q.Server, deadline)
	if err != nil {
		return nil, 0, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	_ = c.SetDeadline(deadline)
	frame := make([]byte, 2+len(wire))
	binary.BigEndian.PutUint16(frame, uint16(len(wire)))
	copy(frame[2:], wire)
	if _, err := c.Write(frame); err != nil {
		return nil, 0, fmt.Errorf("send tcp %s: %w", q.Server, err)
	}
	var lenBuf [2]byte
	if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
		return nil, 0, tcpReadErr(ctx, q.Server, err)
	}
	buf := make([]byte, binary.BigEndian.Uint16(lenBuf[:]))
	if _, err := io.ReadFull(c, buf); err != nil {
		return nil, 0, tcpReadErr(ctx, q.Server, err)
	}
	return x.tcpReply(q, m, buf, time.Since(start))
}

// tcpReply unpacks and checks a TCP reply to m.
func (x *exchanger) tcpReply(q outQuery, m *dns.Msg, buf []byte, rtt time.Duration) (*dns.Msg, time.Duration, error) {
	reply := new(dns.Msg)
	if err := reply.Unpack(buf); err != nil {
		return nil, rtt, fmt.Errorf("tcp reply from %s: %w: %w", q.Server, errMalformed, err)
	}
	if matchReply(m, reply, false) != replyMatches || (q.EDNS && !x.cookies.accept(q.Server.Addr(), reply, true)) {
		return nil, rtt, fmt.Errorf("tcp reply from %s: %w", q.Server, errMalformed)
	}
	return reply, rtt, nil
}

// upstreamCookies are the DNS cookies (RFC 7873) sent to authoritative
// servers: a Client Cookie per server address, SipHash-2-4 of the address
// under a secret of this process (RFC 9018 Appendix A's derivation; no
// client address in it, so it does not follow the resolver across
// networks in a way the secret does not), and the Server Cookie each server
// last returned, sent back to it. A server that gave us a cookie proves
// its replies with it: one without our Client Cookie is forged, off-path
// spoofing that had to guess ID, port and case before and now 64 more bits.
type upstreamCookies struct {
	secret [16]byte
	mu     sync.Mutex
	server map[netip.Addr]string // hex Server Cookie per server address
}

// maxCookieServers bounds the Server Cookies remembered; past it they are
// all forgotten (each server's next reply teaches its cookie again), which
// a resolver asking fewer servers than that never sees.
const maxCookieServers = 16384

func newUpstreamCookies() *upstreamCookies {
	u := &upstreamCookies{server: make(map[netip.Addr]string)}
	_, _ = crand.Read(u.secret[:]) // crypto/rand never fails
	return u
}

// clientCookie is our Client Cookie for server, in hex.
func (u *upstreamCookies) clientCookie(server netip.Addr) string {
	var cc [8]byte
	binary.LittleEndian.PutUint64(cc[:], siphash.Sum64(&u.secret, server.Unmap().AsSlice()))
	return hex.EncodeToString(cc[:])
}

// option is the COOKIE option of a query to server.
func (u *upstreamCookies) option(server netip.Addr) *dns.EDNS0_COOKIE {
	u.mu.Lock()
	sc := u.server[server.Unmap()]
	u.mu.Unlock()
	return &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: u.clientCookie(server) + sc}
}

// accept checks the cookie of a reply from server and learns its Server
// Cookie. It refuses a reply whose COOKIE option does not carry our
// Client Cookie, or is malformed (RFC 7873 5.3), and, over UDP, a reply
// without one from a server that sent us a Server Cookie before.
func (u *upstreamCookies) accept(server netip.Addr, reply *dns.Msg, tcp bool) bool {
	server = server.Unmap()
	var got *dns.EDNS0_COOKIE
	if opt := reply.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if c, ok := o.(*dns.EDNS0_COOKIE); ok {
				got = c
				break
			}
		}
	}
	if got == nil {
		if tcp {
			return true
		}
		u.mu.Lock()
		_, known := u.server[server]
		u.mu.Unlock()
		return !known
	}
	cookie := strings.ToLower(got.Cookie)
	cc := u.clientCookie(server)
	// 8 to 32 octets of Server Cookie (RFC 7873 4), in hex.
	if !strings.HasPrefix(cookie, cc) || len(cookie) < len(cc)+16 || len(cookie) > len(cc)+64 {
		return false
	}
	u.mu.Lock()
	if len(u.server) >= maxCookieServers {
		clear(u.server)
	}
	u.server[server] = cookie[len(cc):]
	u.mu.Unlock()
	return true
}

// forget drops server's Server Cookie: it stopped sending cookies.
func (u *upstreamCookies) forget(server netip.Addr) {
	u.mu.Lock()
	delete(u.server, server.Unmap())
	u.mu.Unlock()
}

func tcpReadErr(ctx context.Context, server netip.AddrPort, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s tcp: %w", server, errTimeout)
	}
	return fmt.Errorf("read tcp %s: %w", server, err)
}

type replyMatch uint8

const (
	replyMismatch replyMatch = iota
	replyMatches
	replyCaseMismatch
)

// matchReply checks a reply against the query: QR set, same ID, opcode and
// one identical question. With exactCase the name must match byte for byte
// (0x20); a reply that differs only in case is told apart, as evidence.
func matchReply(q, r *dns.Msg, exactCase bool) replyMatch {
	if !r.Response || r.Id != q.Id || r.Opcode != q.Opcode {
		return replyMismatch
	}
	if len(r.Question) != 1 {
		// FORMERR and NOTIMP replies may come without a question; accept
		// them when the rcode says the server refused the form of our query.
		if len(r.Question) == 0 && (r.Rcode == dns.RcodeFormatError || r.Rcode == dns.RcodeNotImplemented) {
			return replyMatches
		}
		return replyMismatch
	}
	want, got := q.Question[0], r.Question[0]
	if got.Qtype != want.Qtype || got.Qclass != want.Qclass {
		return replyMismatch
	}
	if got.Name == want.Name {
		return replyMatches
	}
	if !dnsname.Equal(got.Name, want.Name) {
		return replyMismatch
	}
	if exactCase {
		return replyCaseMismatch
	}
	return replyMatches
}
