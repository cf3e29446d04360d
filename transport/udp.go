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
	eng        *engine
	conn       *net.UDPConn
	local      netip.AddrPort
	ctx        context.Context
	stopping   *atomic.Bool
	wg         *sync.WaitGroup
	maxWorkers int

	jobs    chan *udpJob  // hands a job to an idle worker (unbuffered)
	done    chan struct{} // closed when the read loop has ended
	free    sync.Pool     // of *udpJob
	workers int           // touched by the read loop only
}

// udpJob is one UDP query in flight: its datagram, its Request and its
// ResponseWriter in one pooled object, so that a query costs no allocation
// beyond parsing it.
type udpJob struct {
	sock   *udpSocket
	in     [udpReadSize]byte
	n      int
	remote netip.AddrPort
	req    Request
	sent   bool
}

func (s *udpSocket) getJob() *udpJob {
	if j, ok := s.free.Get().(*udpJob); ok {
		return j
	}
	return &udpJob{sock: s}
}

func (s *udpSocket) putJob(j *udpJob) {
	j.req = Request{}
	s.free.Put(j)
}

// readLoop reads datagrams until the socket is closed or the server stops.
func (s *udpSocket) readLoop() {
	defer s.wg.Done()
	defer close(s.done)
	for {
		j := s.getJob()
		n, remote, err := s.conn.ReadFromUDPAddrPort(j.in[:])
		if err != nil {
			s.putJob(j)
			if s.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			s.eng.log.Debug("udp read", "local", s.local, "err", err)
			continue
		}
		j.n = n
		j.remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
		s.dispatch(j)
	}
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
	for {
		s.handle(j)
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
	raw := j.in[:j.n]
	sc := screen(raw, s.eng.acl.allows(j.remote.Addr()))
	switch sc.verdict {
	case drop:
	case reject:
		bp := s.eng.bufs.get()
		b, err := appendErrorReply(*bp, raw, sc.msg, sc.rcode, s.eng.ednsSize)
		if err == nil {
			_, err = s.conn.WriteToUDPAddrPort(b, j.remote)
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
			Local:   s.local,
			Proto:   UDP,
			MaxSize: maxUDPResponse(sc.msg, s.eng.ednsSize),
		}
		s.eng.call(s.ctx, j, &j.req)
	}
}

// WriteMsg packs m into a pooled buffer, truncating it to the client's size.
func (j *udpJob) WriteMsg(m *dns.Msg) error {
	if j.sent {
		return errAlreadyWritten
	}
	bp := j.sock.eng.bufs.get()
	defer j.sock.eng.bufs.put(bp)
	b, err := packReply(m, &j.req, j.sock.eng.ednsSize, *bp)
	if err != nil {
		return err
	}
	return j.send(b)
}

// Write sends b as it is.
func (j *udpJob) Write(b []byte) error {
	if j.sent {
		return errAlreadyWritten
	}
	return j.send(b)
}

func (j *udpJob) send(b []byte) error {
	j.sent = true
	if _, err := j.sock.conn.WriteToUDPAddrPort(b, j.remote); err != nil {
		return fmt.Errorf("udp write to %s: %w", j.remote, err)
	}
	return nil
}

func (j *udpJob) written() bool { return j.sent }
