package transport

import (
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
