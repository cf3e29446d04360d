package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On Linux a UDP socket is read with recvmmsg, up to udpBatchLen datagrams
// per system call. Cache hits (the ReadyAnswerer fast path) are answered in
// the read goroutine and their answers leave together with one sendmmsg;
// every other query goes to the worker pool as one read on its own would.
// On a busy resolver most queries are cache hits, and one recvfrom plus one
// sendto per query was most of their cost.
//
// The system calls are made directly, not through golang.org/x/net's
// ReadBatch, because that allocates a net.UDPAddr per datagram; here all
// headers, addresses and answer buffers are preallocated per socket.
//
// The answers leave through the socket's send-only companion (sendFD,
// bindUDP), bound to the same address in the socket's SO_REUSEPORT group,
// which the group's steering program never gives a query (steerToFirst).
// Go's poller registers every socket it owns for EPOLLOUT, edge-triggered,
// and the kernel frees a sent datagram's buffer as soon as it leaves
// (loopback_xmit, or the NIC's completion), waking whoever waits on the
// socket for write space: every answer sent through the read socket woke
// the runtime's poller thread for an event nobody waits for. Under dnsperf
// that was about a tenth of the server's CPU (perf: sock_wfree ->
// ep_poll_callback in sendmmsg, the poller's epoll_pwait returning and the
// context switches that go with them). The send-only socket is not in the
// poller, so its write space wakes no one.

// udpBatchLen is how many datagrams one recvmmsg takes at most.
const udpBatchLen = 64

// udpBatchOutSize is the room first set aside for each answer of a batch:
// the default EDNSSize. A server advertising more grows a slot when an answer
// needs it, up to its EDNSSize, instead of setting aside 32 times 64 KiB.
const udpBatchOutSize = DefaultEDNSSize

// udpBatch is the batch reader of one socket. Whoever holds mu touches it:
// the read loop, or a worker helping (help).
type udpBatch struct {
	mu sync.Mutex
	s  *udpSocket
	rc syscall.RawConn

	// Reading: slot i receives into jobs[i], its sender's address into
	// names[i] and, with pktinfo, its destination into jobs[i].oob.
	jobs  [udpBatchLen]*udpJob
	names [udpBatchLen][unix.SizeofSockaddrInet6]byte
	rhdrs [udpBatchLen]unix.Mmsghdr
	riov  [udpBatchLen]unix.Iovec

	// Writing: answer k is outs[k], sent to the address of the slot it
	// answers.
	whdrs   [udpBatchLen]unix.Mmsghdr
	wiov    [udpBatchLen]unix.Iovec
	outs    [udpBatchLen][]byte
	remotes [udpBatchLen]netip.AddrPort
	nw      int
	// rcodes tallies the queued answers by rcode (the header's low four
	// bits), added to the ResponseCounters once per batch: one shared
	// counter written by every socket's every answer is a cache line all
	// cores fight over (issue 16, scaling with cores).
	rcodes [16]uint16

	// Queries for the worker pool, handed over after the answers are sent.
	slow  [udpBatchLen]*udpJob
	nslow int

	// State of the system call in flight; recvF and sendF are bound once so
	// that a call allocates no closure.
	n, from      int
	errno        error
	recvF, sendF func(fd uintptr) bool
	helpF        func(fd uintptr)
}

// newUDPBatch sets up batch reading for s, or returns nil if the socket does
// not allow it (then s is read one datagram at a time).
func newUDPBatch(s *udpSocket) *udpBatch {
	rc, err := s.conn.SyscallConn()
	if err != nil {
		s.eng.log.Debug("udp batch reads unavailable", "local", s.local, "err", err)
		return nil
	}
	b := &udpBatch{s: s, rc: rc}
	b.recvF, b.sendF, b.helpF = b.lockAndRecv, b.sendmmsg, b.recvNow
	size := min(s.eng.ednsSize, udpBatchOutSize)
	backing := make([]byte, udpBatchLen*size)
	for k := range b.outs {
		b.outs[k] = backing[k*size : (k+1)*size : (k+1)*size]
	}
	for i := range b.jobs {
		b.jobs[i] = s.getJob()
	}
	return b
}

// loop reads batches until the socket is closed or the server stops.
func (b *udpBatch) loop() {
	s := b.s
	s.batch.Store(b)
	for {
		n, err := b.read()
		if err != nil {
			if s.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			s.eng.log.Debug("udp read", "local", s.local, "err", err)
			continue
		}
		b.serve(n)
		b.mu.Unlock()
	}
}

// read waits for datagrams and takes up to udpBatchLen of them. It returns
// holding mu, unless with an error.
func (b *udpBatch) read() (int, error) {
	if err := b.rc.Read(b.recvF); err != nil {
		return 0, err
	}
	if b.errno != nil {
		b.mu.Unlock()
		return 0, fmt.Errorf("udp read: %w", os.NewSyscallError("recvmmsg", b.errno))
	}
	return b.n, nil
}

// lockAndRecv is the RawConn.Read callback: it takes mu and tries
// recvmmsg. With nothing to read it lets mu go again and reports false
// ("wait until readable"), so that no one waits for the lock while the
// read loop sleeps.
func (b *udpBatch) lockAndRecv(fd uintptr) bool {
	b.mu.Lock()
	b.n, b.errno = 0, nil
	b.prepare()
	if !b.recvmmsg(fd) {
		b.mu.Unlock()
		return false
	}
	return true
}

// help is the worker pool's part in reading the socket. A worker calls it
// around each query it resolves: if no one is reading the socket, it takes
// what is waiting, without waiting itself, and serves it like the read loop.
//
// Why: the read loop sleeps in Go's network poller when the socket is
// empty, and the runtime looks at the poller only when its run queues are
// empty (or every 10 ms, from sysmon). A burst of cache misses fills the
// run queues with resolution work for milliseconds, and a cache hit that
// arrives then waited behind all of it: a random-subdomain flood at 10% of
// the CPU gave another client's cached answers a p99 of 8 to 11 ms (issue
// 10, bench/flood.sh). Workers are on a processor exactly when that work is
// queued, so a read from them finds the hit within one query's work.
//
// A helper whose read finds queries for the pool waits, like the read loop,
// until a worker takes each: a sole worker would wait for itself, so with a
// pool of one only the read loop reads.
func (b *udpBatch) help() {
	if b.s.maxWorkers < 2 || !b.mu.TryLock() {
		return // the read loop or another worker is at it
	}
	defer b.mu.Unlock()
	b.n, b.errno = 0, nil
	b.prepare()
	if err := b.rc.Control(b.helpF); err != nil || b.errno != nil || b.n == 0 {
		return
	}
	b.serve(b.n)
}

// recvNow is help's RawConn.Control callback: recvmmsg without waiting.
func (b *udpBatch) recvNow(fd uintptr) { b.recvmmsg(fd) }

// prepare points the read headers at the slots' jobs.
func (b *udpBatch) prepare() {
	for i, j := range b.jobs {
		h := &b.rhdrs[i]
		h.Len = 0
		h.Hdr.Name = &b.names[i][0]
		h.Hdr.Namelen = uint32(len(b.names[i]))
		b.riov[i].Base = &j.in[0]
		b.riov[i].SetLen(len(j.in))
		h.Hdr.Iov = &b.riov[i]
		h.Hdr.SetIovlen(1)
		h.Hdr.Control = nil
		h.Hdr.SetControllen(0)
		if len(j.oob) > 0 {
			h.Hdr.Control = &j.oob[0]
			h.Hdr.SetControllen(len(j.oob))
		}
		h.Hdr.Flags = 0
	}
}

// recvmmsg reads into the prepared slots; false means nothing to read.
func (b *udpBatch) recvmmsg(fd uintptr) bool {
	return b.mmsg(unix.SYS_RECVMMSG, fd, unsafe.Pointer(&b.rhdrs[0]), len(b.rhdrs))
}

// mmsg runs recvmmsg or sendmmsg (trap) over n headers at hdrs, retrying on
// EINTR. It records the count or the error in b and reports false only for
// EAGAIN, which RawConn takes as "wait until ready".
func (b *udpBatch) mmsg(trap, fd uintptr, hdrs unsafe.Pointer, n int) bool {
	for {
		r, _, e := unix.Syscall6(trap, fd, uintptr(hdrs), uintptr(n), 0, 0, 0)
		switch e {
		case 0:
			b.n = int(r)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			b.errno = e
			return true
		}
	}
}

// serve answers the ready queries of a batch of n datagrams with one
// sendmmsg, then hands the others to the worker pool.
func (b *udpBatch) serve(n int) {
	s := b.s
	for i := range n {
		j := b.jobs[i]
		h := &b.rhdrs[i].Hdr
		remote, ok := sockaddrAddrPort(b.names[i][:min(int(h.Namelen), len(b.names[i]))])
		if !ok {
			continue // no address to answer to
		}
		j.n = min(int(b.rhdrs[i].Len), len(j.in))
		if !s.setClient(j, remote) {
			continue // the job stays in its slot for the next batch
		}
		j.local, j.ifindex = s.local, 0
		if s.pktinfo {
			if dst, ifindex, ok := parsePktinfo(j.oob[:min(int(h.Controllen), len(j.oob))]); ok {
				j.local, j.ifindex = netip.AddrPortFrom(dst, s.local.Port()), ifindex
			}
		}
		if s.eng.acl.allows(j.remote.Addr()) {
			j.readyTried = true
			if b.answerReady(i, j) {
				continue
			}
		}
		b.slow[b.nslow] = j
		b.nslow++
		b.jobs[i] = s.getJob()
	}
	b.flush()
	for k := range b.nslow {
		s.dispatch(b.slow[k])
		b.slow[k] = nil
	}
	b.nslow = 0
}

// answerReady tries the ReadyAnswerer on slot i's query and, if there is an
// answer, queues it for flush. A panic in the ReadyAnswerer drops the query,
// as on the one-at-a-time path, and the server goes on.
func (b *udpBatch) answerReady(i int, j *udpJob) (answered bool) {
	s := b.s
	defer func() {
		if p := recover(); p != nil {
			s.eng.log.Error("udp query panic", "panic", fmt.Sprint(p), "remote", j.remote)
			answered = true
		}
	}()
	k := b.nw
	out, ok := s.readyAnswer(j, b.outs[k], j.in[j.off:j.n])
	if !ok {
		return false
	}
	if len(out) == 0 {
		return true // nothing to send
	}
	if cap(out) > cap(b.outs[k]) && len(out) <= s.eng.ednsSize {
		b.outs[k] = out[:0] // grown by append: keep it for the next batch
	}
	b.wiov[k].Base = &out[0]
	b.wiov[k].SetLen(len(out))
	w := &b.whdrs[k]
	w.Len = 0
	w.Hdr.Name = &b.names[i][0]
	w.Hdr.Namelen = b.rhdrs[i].Hdr.Namelen
	w.Hdr.Iov = &b.wiov[k]
	w.Hdr.SetIovlen(1)
	w.Hdr.Control = nil
	w.Hdr.SetControllen(0)
	if s.pktinfo && j.local.Addr() != s.local.Addr() {
		oob := appendPktinfo(j.oob, j.local.Addr(), j.ifindex)
		w.Hdr.Control = &oob[0]
		w.Hdr.SetControllen(len(oob))
	}
	w.Hdr.Flags = 0
	b.remotes[k] = j.remote
	b.nw++
	if len(out) >= headerLen {
		b.rcodes[out[3]&0xF]++
	}
	return true
}

// flush sends the queued answers. An answer the kernel refuses is logged and
// skipped; the rest still go.
func (b *udpBatch) flush() {
	b.countAnswers()
	for from := 0; from < b.nw; {
		b.n, b.from, b.errno = 0, from, nil
		if !b.sendDirect() {
			if err := b.rc.Write(b.sendF); err != nil {
				b.s.eng.log.Debug("udp ready answers", "local", b.s.local, "lost", b.nw-from, "err", err)
				break // the socket is closed
			}
		}
		from += b.n
		if b.errno != nil || b.n == 0 {
			if from < b.nw {
				b.s.eng.log.Debug("udp ready answer", "remote", b.remotes[from], "err", os.NewSyscallError("sendmmsg", b.errno))
			}
			from++
		}
	}
	for k := range b.nw {
		b.wiov[k].Base, b.whdrs[k].Hdr.Name, b.whdrs[k].Hdr.Control = nil, nil, nil
	}
	b.nw = 0
}

// countAnswers adds the batch's tally of answers to the response
// counters, before they are sent, so that a client that has its answer
// finds it counted.
func (b *udpBatch) countAnswers() {
	for rc, n := range b.rcodes {
		if n > 0 {
			b.s.eng.responses.add(UDP, rc, uint64(n))
			b.rcodes[rc] = 0
		}
	}
}

// sendDirect runs sendmmsg on the send-only companion, and reports false
// when there is none or its send buffer is full (EAGAIN): then the read
// socket's RawConn.Write sends, waiting for room as needed.
func (b *udpBatch) sendDirect() bool {
	return b.s.sendFD >= 0 && b.sendmmsg(uintptr(b.s.sendFD))
}

// sendmmsg is the RawConn.Write callback; false means "wait until writable".
func (b *udpBatch) sendmmsg(fd uintptr) bool {
	return b.mmsg(unix.SYS_SENDMMSG, fd, unsafe.Pointer(&b.whdrs[b.from]), b.nw-b.from)
}

// sockaddrAddrPort decodes a sockaddr_in or sockaddr_in6 as the kernel
// wrote it; IPv4-mapped addresses come out as IPv4, as from
// ReadFromUDPAddrPort.
func sockaddrAddrPort(sa []byte) (netip.AddrPort, bool) {
	if len(sa) < 2 {
		return netip.AddrPort{}, false
	}
	switch binary.NativeEndian.Uint16(sa[0:2]) {
	case unix.AF_INET:
		if len(sa) < unix.SizeofSockaddrInet4 {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), binary.BigEndian.Uint16(sa[2:4])), true
	case unix.AF_INET6:
		if len(sa) < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}, false
		}
		addr := netip.AddrFrom16([16]byte(sa[8:24])).Unmap()
		if scope := binary.NativeEndian.Uint32(sa[24:28]); scope != 0 && addr.Is6() {
			addr = addr.WithZone(strconv.FormatUint(uint64(scope), 10))
		}
		return netip.AddrPortFrom(addr, binary.BigEndian.Uint16(sa[2:4])), true
	}
	return netip.AddrPort{}, false
}
