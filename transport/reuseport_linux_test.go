package transport

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// TestBindUDPSendOnlyCompanionsGetNoQueries: the send-only companions
// bindUDP adds to the group (the batch readers answer through them) get
// no query, in a group of one socket as of several, while every reader
// gets those its ID steers to it; and what a companion sends comes from
// the server's address, so clients (which check it) take the answers.
func TestBindUDPSendOnlyCompanionsGetNoQueries(t *testing.T) {
	if !reusePortSupported {
		t.Skip("no SO_REUSEPORT here")
	}
	for _, n := range []int{1, 2} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			conns, senders, err := bindUDP("127.0.0.1:0", n, false)
			if err != nil {
				t.Fatal(err)
			}
			defer closeUDP(conns, senders)
			if len(senders) != n {
				t.Fatalf("%d companions for %d sockets", len(senders), n)
			}
			addr := conns[0].LocalAddr().String()
			buf := make([]byte, 512)
			for id := range uint16(8) {
				c, err := net.Dial("udp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				q := dnstest.Query("example.", dns.TypeA)
				q.Id = id
				if _, err := c.Write(mustPack(t, q)); err != nil {
					t.Fatal(err)
				}
				want := conns[int(id)%n]
				want.SetReadDeadline(time.Now().Add(2 * time.Second))
				_, from, err := want.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("ID %d: socket %d got nothing: %v", id, int(id)%n, err)
				}
				// The answer leaves through the companion; the client's
				// connected socket takes it only from the server's address.
				sa := &unix.SockaddrInet4{Port: int(from.Port()), Addr: from.Addr().As4()}
				if err := unix.Sendto(senders[int(id)%n], []byte("answer"), 0, sa); err != nil {
					t.Fatalf("companion send: %v", err)
				}
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if m, err := c.Read(buf); err != nil || string(buf[:m]) != "answer" {
					t.Fatalf("ID %d: the client got %q, %v from the companion", id, buf[:max(m, 0)], err)
				}
			}
			for i, fd := range senders {
				if m, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); err == nil {
					t.Fatalf("companion %d received a query of %d bytes", i, m)
				}
			}
		})
	}
}
