package transport

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// TestUDPBatchReadyPathAllocs checks that a cache hit read in a batch and
// answered with sendmmsg allocates nothing, server and client together.
func TestUDPBatchReadyPathAllocs(t *testing.T) {
	h := newBurstReady(t)
	udp, _, _ := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: h}, UDPSockets: 1})
	c, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q := mustPack(t, dnstest.Query("fast.example.", dns.TypeA))
	buf := make([]byte, 2048)
	const burst = 8
	roundTrip := func() {
		for range burst {
			if _, err := c.Write(q); err != nil {
				t.Fatal(err)
			}
		}
		for range burst {
			if _, err := c.Read(buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	roundTrip() // the batch reader and the pools are warm
	if allocs := testing.AllocsPerRun(200, roundTrip); allocs != 0 {
		t.Errorf("%v allocations per burst of %d cache hits, want 0", allocs, burst)
	}
	if r := h.ready.Load(); r < 201*burst {
		t.Errorf("fast path taken %d times, want %d", r, 201*burst)
	}
}

func TestSockaddrAddrPort(t *testing.T) {
	v4 := make([]byte, unix.SizeofSockaddrInet4)
	binary.NativeEndian.PutUint16(v4, unix.AF_INET)
	binary.BigEndian.PutUint16(v4[2:], 5353)
	copy(v4[4:], []byte{127, 0, 0, 9})
	v6 := func(addr string, scope uint32) []byte {
		b := make([]byte, unix.SizeofSockaddrInet6)
		binary.NativeEndian.PutUint16(b, unix.AF_INET6)
		binary.BigEndian.PutUint16(b[2:], 53)
		a := netip.MustParseAddr(addr).As16()
		copy(b[8:24], a[:])
		binary.NativeEndian.PutUint32(b[24:], scope)
		return b
	}
	unknown := make([]byte, unix.SizeofSockaddrInet6)
	binary.NativeEndian.PutUint16(unknown, unix.AF_UNIX)
	tests := []struct {
		name   string
		sa     []byte
		want   string
		wantOK bool
	}{
		{"IPv4", v4, "127.0.0.9:5353", true},
		{"IPv6", v6("::1", 0), "[::1]:53", true},
		{"IPv4-mapped comes out as IPv4", v6("::ffff:127.0.0.5", 0), "127.0.0.5:53", true},
		{"link-local keeps its scope", v6("fe80::1", 3), "[fe80::1%3]:53", true},
		{"short IPv4", v4[:6], "", false},
		{"short IPv6", v6("::1", 0)[:20], "", false},
		{"other family", unknown, "", false},
		{"empty", nil, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := sockaddrAddrPort(tc.sa)
			if ok != tc.wantOK || (ok && got.String() != tc.want) {
				t.Errorf("sockaddrAddrPort = %s, %v; want %s, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// TestUDPWorkersHelpRead checks the worker pool's part in reading a socket
// (udpBatch.help): a worker finds the queries waiting on a socket nobody
// reads, answers the ready one itself and hands the other to the pool; it
// leaves the socket alone while someone else reads it, and when it is the
// pool's only worker (it would wait for itself to take a query).
func TestUDPWorkersHelpRead(t *testing.T) {
	t.Run("pool of 4", func(t *testing.T) { testUDPWorkersHelpRead(t, 4) })
	t.Run("pool of 1", func(t *testing.T) { testUDPWorkersHelpRead(t, 1) })
}

func testUDPWorkersHelpRead(t *testing.T, workers int) {
	h := newBurstReady(t)
	d, err := NewDo53(Do53Config{ListenerConfig: ListenerConfig{Handler: h, Addrs: []string{"127.0.0.1:0"}}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := &udpSocket{
		eng: d.eng, conn: conn, sendFD: -1, local: addrPortOf(conn.LocalAddr()), ctx: context.Background(),
		stopping: &d.stopping, wg: &d.wg, maxWorkers: workers, jobs: make(chan *udpJob), done: make(chan struct{}),
	}
	defer func() { close(s.done); d.wg.Wait() }()
	b := newUDPBatch(s) // no read loop: only help reads this socket
	if b == nil {
		t.Fatal("no batch reader")
	}
	c, err := net.Dial("udp", conn.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func(name string, id uint16) {
		q := dnstest.Query(name, dns.TypeA)
		q.Id = id
		if _, err := c.Write(mustPack(t, q)); err != nil {
			t.Fatal(err)
		}
	}
	answered := func(wait time.Duration) map[uint16]bool {
		got := map[uint16]bool{}
		buf := make([]byte, 2048)
		for {
			c.SetReadDeadline(time.Now().Add(wait))
			n, err := c.Read(buf)
			if err != nil {
				return got
			}
			got[binary.BigEndian.Uint16(buf[:2])] = n > 0
		}
	}

	send("fast.example.", 1)
	b.mu.Lock() // someone else is reading
	b.help()
	b.mu.Unlock()
	if got := answered(100 * time.Millisecond); len(got) != 0 {
		t.Fatalf("help read a socket someone else was reading: answers %v", got)
	}

	send("slow.example.", 2)
	time.Sleep(10 * time.Millisecond) // both datagrams are queued
	b.help()
	if workers == 1 {
		if got := answered(100 * time.Millisecond); len(got) != 0 {
			t.Fatalf("the only worker helped read: answers %v", got)
		}
		return
	}
	if got := answered(2 * time.Second); !got[1] || !got[2] || len(got) != 2 {
		t.Fatalf("answers after help: %v, want IDs 1 and 2", got)
	}
	if r, f := h.ready.Load(), h.full.Load(); r != 1 || f != 1 {
		t.Errorf("ready path %d times, full path %d times; want 1 and 1", r, f)
	}
}
