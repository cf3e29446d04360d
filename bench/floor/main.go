// Command floor is the bench's lower bound: a bare UDP DNS responder that
// answers every query with one fixed A record, copying the query's ID and
// question. It does nothing a resolver must (no parsing beyond the question,
// no cache, no ACL, no EDNS), so its CPU per answer under dnsperf is what the
// kernel and a Go recvmmsg/sendmmsg loop cost on this machine: the floor
// Sextant's cache-hit path is compared with (issue 16).
//
// One SO_REUSEPORT socket and reader per core, batches through
// golang.org/x/net/ipv4 ReadBatch/WriteBatch (recvmmsg/sendmmsg on Linux).
// Used only by bench/run.sh; it listens where it is told and nowhere else.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

const (
	// batchSize is how many datagrams one recvmmsg/sendmmsg moves, as in
	// the transport package's UDP batches.
	batchSize = 64
	// maxQuery is the largest query read; larger ones are truncated by the
	// kernel and dropped here as malformed.
	maxQuery = 512
	// headerLen is the DNS header size (RFC 1035 4.1.1).
	headerLen = 12
	// answerTTL is the fixed answer's TTL in seconds.
	answerTTL = 300
)

// answerRR is the fixed answer record: a pointer to the question name at
// offset 12 (RFC 1035 4.1.4), type A, class IN, TTL, RDLENGTH 4, 127.0.2.1
// (a loopback address, like every lab data address).
var answerRR = func() []byte {
	rr := []byte{0xc0, headerLen, 0, 1, 0, 1}
	rr = binary.BigEndian.AppendUint32(rr, answerTTL)
	return append(rr, 0, 4, 127, 0, 2, 1)
}()

// respond writes into out the answer to query and returns its length, or 0
// if query is not a one-question DNS query that fits.
func respond(query, out []byte) int {
	if len(query) < headerLen+5 || query[2]&0x80 != 0 || binary.BigEndian.Uint16(query[4:]) != 1 {
		return 0
	}
	qend := questionEnd(query)
	if qend == 0 || qend+len(answerRR) > len(out) {
		return 0
	}
	copy(out, query[:2])          // ID
	out[2] = 0x80 | query[2]&0x79 // QR, opcode and RD echoed, AA/TC off
	out[3] = 0x80                 // RA, NOERROR
	binary.BigEndian.PutUint16(out[4:], 1)
	binary.BigEndian.PutUint16(out[6:], 1)
	binary.BigEndian.PutUint32(out[8:], 0) // no authority, no additional (no EDNS)
	n := copy(out[headerLen:], query[headerLen:qend]) + headerLen
	return n + copy(out[n:], answerRR)
}

// questionEnd returns the offset just past the first question (uncompressed
// name, type, class), or 0 if the question is malformed.
func questionEnd(m []byte) int {
	i := headerLen
	for i < len(m) {
		l := int(m[i])
		switch {
		case l == 0:
			if i+5 > len(m) {
				return 0
			}
			return i + 5
		case l > 63:
			return 0 // a pointer or an extended label has no place in a question
		}
		i += l + 1
	}
	return 0
}

// serve answers on c until it is closed.
func serve(c net.PacketConn) error {
	pc := ipv4.NewPacketConn(c)
	in := make([]ipv4.Message, batchSize)
	out := make([]ipv4.Message, batchSize)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, maxQuery)}
		out[i].Buffers = [][]byte{make([]byte, maxQuery)}
	}
	replies := make([]ipv4.Message, 0, batchSize)
	for {
		n, err := pc.ReadBatch(in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read batch: %w", err)
		}
		replies = replies[:0]
		for i := range in[:n] {
			o := &out[len(replies)]
			l := respond(in[i].Buffers[0][:in[i].N], o.Buffers[0][:maxQuery])
			if l == 0 {
				continue
			}
			o.Buffers[0] = o.Buffers[0][:l]
			o.Addr = in[i].Addr
			replies = append(replies, *o)
		}
		for len(replies) > 0 {
			sent, err := pc.WriteBatch(replies, 0)
			if err != nil {
				sent = 1 // the first reply failed (client gone): drop it, send the rest
			}
			replies = replies[sent:]
		}
		for i := range out {
			out[i].Buffers[0] = out[i].Buffers[0][:maxQuery]
		}
	}
}

// listen opens n SO_REUSEPORT sockets on addr.
func listen(addr string, n int) ([]net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	conns := make([]net.PacketConn, 0, n)
	for range n {
		c, err := lc.ListenPacket(context.Background(), "udp4", addr)
		if err != nil {
			for _, o := range conns {
				o.Close()
			}
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

func main() {
	addr := flag.String("listen", "127.0.0.1:5399", "UDP address to answer on")
	sockets := flag.Int("sockets", runtime.NumCPU(), "SO_REUSEPORT sockets, one reader each")
	flag.Parse()
	conns, err := listen(*addr, *sockets)
	if err != nil {
		log.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			if err := serve(c); err != nil {
				log.Print(err)
			}
		})
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
}
