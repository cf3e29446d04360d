package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// udpReadSize bounds a UDP query. Queries are small; a datagram longer than
// this is cut by the kernel and then fails to parse (FORMERR).
const udpReadSize = 4096

// udpSocket serves one UDP socket: a read loop that hands each datagram to a
// bounded pool of workers that grows on demand up to maxWorkers. With the
// pool full the read loop waits, so a flood backs up in the kernel's socket
// buffer instead of in goroutines.
type udpSocket struct {
	eng  *engine
	conn *net.UDPConn
	// sendFD is the socket's send-only companion in its SO_REUSEPORT
	// group (bindUDP), -1 if none; the read loop closes it when it ends.
	sendFD     int
	local      netip.AddrPort
	ctx        context.Context
	stopping   *atomic.Bool
	wg         *sync.WaitGroup
	maxWorkers int
	// pktinfo: the socket is bound to a wildcard address and learns each
	// query's destination, to answer from it.
	pktinfo bool

	// batch is the socket's batch reader, once its read loop runs; its
	// workers help it read (udpBatch.help).
	batch   atomic.Pointer[udpBatch]
	jobs    chan *udpJob  // hands a job to an idle worker (unbuffered)
	done    chan struct{} // closed when the read loop has ended
	free    sync.Pool     // of *udpJob
	workers int           // touched by whoever reads the socket
}

// udpJob is one UDP query in flight: its datagram, its Request and its
// ResponseWriter in one pooled object, so that a query costs no allocation
// beyond parsing it.
type udpJob struct {
	sock *udpSocket
	in   [udpReadSize]byte
	n    int
	// peer sent the datagram and gets the answer. remote is the client:
	// the peer, or the client a trusted load balancer's PROXY header
	// names (proxy.go), whose DNS message starts at off; then via is the
	// peer.
	peer, remote, via netip.AddrPort
	off               int
	req               Request
	sent              bool
	// readyTried: the batch reader already asked the ReadyAnswerer, in
	// vain; the worker goes straight to the full path.
	readyTried bool
	// rated: the fast path already asked the rate limiter, whose verdict
	// is rate.
	rated bool
	rate  rateVerdict
	// cookieValid: the query returned a valid Server Cookie (RRL exempts it).
	cookieValid bool
	// With pktinfo: where the query was sent, and room for control data.
	local   netip.AddrPort
	ifindex uint32
	oob     []byte
}

func (s *udpSocket) getJob() *udpJob {
	if j, ok := s.free.Get().(*udpJob); ok {
		return j
	}
	j := &udpJob{sock: s, local: s.local}
	if s.pktinfo {
		j.oob = make([]byte, pktinfoOOBLen)
	}
	return j
}

func (s *udpSocket) putJob(j *udpJob) {
	j.req = Request{}
	j.readyTried = false
	j.rated = false
	j.cookieValid = false
	s.free.Put(j)
}

// readLoop reads datagrams until the socket is closed or the server stops:
// many per system call where the platform can (udp_batch_linux.go), else
// one at a time.
func (s *udpSocket) readLoop() {
	defer s.wg.Done()
	defer close(s.done)
	defer func() { closeSendOnly(s.sendFD) }()
	if b := newUDPBatch(s); b != nil {
		b.loop()
		return
	}
	for {
		j := s.getJob()
		n, remote, err := s.read(j)
		if err != nil {
			s.putJob(j)
			if s.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			s.eng.log.Debug("udp read", "local", s.local, "err", err)
			continue
		}
		j.n = n
		if !s.setClient(j, netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())) {
			s.putJob(j)
			continue
		}
		s.dispatch(j)
	}
}

// read reads one datagram into j, with its destination when pktinfo.
func (s *udpSocket) read(j *udpJob) (int, netip.AddrPort, error) {
	if !s.pktinfo {
		return s.conn.ReadFromUDPAddrPort(j.in[:])
	}
	n, oobn, _, remote, err := s.conn.ReadMsgUDPAddrPort(j.in[:], j.oob)
	if err != nil {
		return 0, remote, err
	}
	j.local, j.ifindex = s.local, 0
	if dst, ifindex, ok := parsePktinfo(j.oob[:oobn]); ok {
		j.local, j.ifindex = netip.AddrPortFrom(dst, s.local.Port()), ifindex
	}
	return n, remote, nil
}

// setClient records peer as the sender of j's datagram and finds its
// client: the peer itself, or with the PROXY protocol on (proxy.go) the
// one named by the header a trusted load balancer must put first. It
// reports false when the datagram must be dropped: a header missing or
// malformed from a load balancer, or sent by anyone else.
func (s *udpSocket) setClient(j *udpJob, peer netip.AddrPort) bool {
	j.peer, j.remote, j.via, j.off = peer, peer, netip.AddrPort{}, 0
	p := s.eng.proxy
	if p == nil {
		return true
	}
	if !p.trusts(peer.Addr()) {
		if hasProxySignature(j.in[:j.n]) {
			p.refused(s.eng.log, "udp", peer, false, errProxyUntrusted)
			return false
		}
		return true
	}
	h, err := parseProxyHeader(j.in[:j.n])
	if err != nil {
		p.refused(s.eng.log, "udp", peer, true, err)
		return false
	}
	p.took(h)
	j.via, j.off = peer, h.len
	if h.relayed {
		j.remote = h.src
	}
	return true
}

// writeTo sends b to the peer of j, from the query's destination when
// the socket is a wildcard one.
func (s *udpSocket) writeTo(j *udpJob, b []byte) error {
	var err error
	if s.pktinfo && j.local.Addr() != s.local.Addr() {
		_, _, err = s.conn.WriteMsgUDPAddrPort(b, appendPktinfo(j.oob, j.local.Addr(), j.ifindex), j.peer)
	} else {
		_, err = s.conn.WriteToUDPAddrPort(b, j.peer)
	}
	if err != nil {
		return fmt.Errorf("udp write to %s: %w", j.remote, err)
	}
	return nil
}

// dispatch gives j to an idle worker, starts a new one while under the
// limit, or else waits for one to come free.
func (s *udpSocket) dispatch(j *udpJob) {
	select {
	case s.jobs <- j:
		return
	default:
	}
	if s.workers < s.maxWorkers {
		s.workers++
		s.wg.Add(1)
		go s.worker(j)
		return
	}
	select {
	case s.jobs <- j:
	case <-s.ctx.Done():
		s.putJob(j)
	}
}

func (s *udpSocket) worker(j *udpJob) {
	defer s.wg.Done()
	b := s.batch.Load()
	for {
		if b != nil {
			b.help()
		}
		s.handle(j)
		if b != nil {
			b.help()
		}
		select {
		case j = <-s.jobs:
		case <-s.done:
			return
		}
	}
}

// handle screens one datagram and answers it, itself or through the Handler.
func (s *udpSocket) handle(j *udpJob) {
	defer s.putJob(j)
	defer func() {
		if p := recover(); p != nil {
			s.eng.log.Error("udp query panic", "panic", fmt.Sprint(p), "remote", j.remote)
		}
	}()
	raw := j.in[j.off:j.n]
	allowed := s.eng.acl.allows(j.remote.Addr())
	if allowed && !j.readyTried && s.answerReady(j, raw) {
		return
	}
	sc := screen(raw, allowed, s.eng.notify)
	switch sc.verdict {
	case drop:
	case reject:
		if !allowed {
			s.eng.logRefused(UDP, j.remote, j.via)
		}
		bp := s.eng.bufs.get()
		b, err := appendErrorReply(*bp, raw, sc.msg, sc.rcode, s.eng.ednsSize)
		if err == nil {
			s.eng.responses.count(UDP, sc.rcode)
			err = s.writeTo(j, b)
		}
		s.eng.bufs.put(bp)
		if err != nil {
			s.eng.log.Debug("udp error reply", "remote", j.remote, "err", err)
		}
	case serve:
		j.sent = false
		j.req = Request{
			Msg:     sc.msg,
			Raw:     raw,
			Remote:  j.remote,
			Via:     j.via,
			Local:   j.local,
			Proto:   UDP,
			MaxSize: maxUDPResponse(sc.msg, s.eng.ednsSize),
		}
		if s.admit(j) {
			s.eng.call(s.ctx, j, &j.req)
		}
	}
}

// admit checks the query's cookie and applies the rate limit to a parsed
// query in j.req, and reports whether the Handler answers it. A query with
// a valid Server Cookie is not limited (its source is proven). A limited
// query is dropped, or on its slip turn answered here: with BADCOOKIE and
// a fresh cookie when it carried a Client Cookie (RFC 7873 5.2.3 allows
// it; BIND does this), else truncated (TC=1, no records).
func (s *udpSocket) admit(j *udpJob) bool {
	var ck cookieCheck
	if c := s.eng.cookies; c != nil {
		ck = c.check(j.req.Msg, j.remote.Addr())
		j.req.cookie = ck.reply
		j.cookieValid = ck.state == cookieValid
	}
	l := s.eng.limiter
	if l == nil {
		return true
	}
	v := j.rate
	if !j.rated {
		if ck.state == cookieValid {
			l.exempted(j.remote.Addr())
			return true
		}
		v = l.admit(j.remote.Addr())
	}
	switch v {
	case ratePass:
		return true
	case rateDrop:
		return false
	}
	var r *dns.Msg
	if ck.state == cookieClientOnly || ck.state == cookieInvalid {
		r = errorReply(j.req.Msg, dns.RcodeBadCookie, s.eng.ednsSize)
		s.eng.cookies.badCookie.Add(1)
	} else {
		r = errorReply(j.req.Msg, dns.RcodeSuccess, s.eng.ednsSize)
		r.Truncated = true
	}
	if err := j.WriteMsg(r); err != nil {
		s.eng.log.Debug("udp rate-limited reply", "remote", j.remote, "err", err)
	}
	return false
}

// WriteMsg packs m into a pooled buffer, truncating it to the client's
// size. UDP answers get no keepalive option (RFC 7828 3.3.1 and 3.3.2);
// padded queries get padded answers within the client's size (RFC 7830 4).
func (j *udpJob) WriteMsg(m *dns.Msg) error {
	if j.sent {
		return errAlreadyWritten
	}
	bp := j.sock.eng.bufs.get()
	defer j.sock.eng.bufs.put(bp)
	b, err := packAnswer(m, &j.req, j.sock.eng.ednsSize, extras{}, *bp)
	if err != nil {
		return err
	}
	return j.sendLimited(b, true, m.Rcode)
}

// Write sends b as it is, unless the query was padded: then b is unpacked
// and padded the WriteMsg way.
func (j *udpJob) Write(b []byte) error {
	if j.sent {
		return errAlreadyWritten
	}
	if (extras{}).rewrites(&j.req) {
		m, err := unpackAnswer(b)
		if err != nil {
			j.sent = true
			return err
		}
		return j.WriteMsg(m)
	}
	rcode := 0
	if len(b) >= headerLen {
		rcode = int(b[3] & 0xF)
	}
	return j.sendLimited(b, false, rcode)
}

func (j *udpJob) send(b []byte) error {
	j.sent = true
	return j.sock.writeTo(j, b)
}

func (j *udpJob) written() bool { return j.sent }
