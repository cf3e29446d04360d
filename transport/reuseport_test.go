package transport

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// foreignReusePort is a ListenConfig like another program's that sets
// SO_REUSEPORT (and so could share a port with any socket that does).
var foreignReusePort = net.ListenConfig{Control: reusePort}

// TestDo53RefusesAnAddressInUse: Start fails, naming the address, when any
// other socket holds it: plain or SO_REUSEPORT, UDP or TCP, the same
// address or an overlapping wildcard one. A second server used to join the
// SO_REUSEPORT group and take part of the queries (issue 8).
func TestDo53RefusesAnAddressInUse(t *testing.T) {
	udpHolder := func(lc net.ListenConfig, addr string) func(t *testing.T) (int, func()) {
		return func(t *testing.T) (int, func()) {
			c, err := lc.ListenPacket(context.Background(), "udp", addr)
			if err != nil {
				t.Skipf("cannot bind %s here: %v", addr, err)
			}
			return c.LocalAddr().(*net.UDPAddr).Port, func() { c.Close() }
		}
	}
	tcpHolder := func(lc net.ListenConfig, addr string) func(t *testing.T) (int, func()) {
		return func(t *testing.T) (int, func()) {
			l, err := lc.Listen(context.Background(), "tcp", addr)
			if err != nil {
				t.Skipf("cannot bind %s here: %v", addr, err)
			}
			return l.Addr().(*net.TCPAddr).Port, func() { l.Close() }
		}
	}
	cases := []struct {
		name      string
		hold      func(t *testing.T) (port int, release func())
		ours      string // host we bind, on the holder's port
		reuseport bool   // the case needs SO_REUSEPORT
	}{
		{"plain UDP socket", udpHolder(net.ListenConfig{}, "127.0.0.1:0"), "127.0.0.1", false},
		{"plain TCP listener", tcpHolder(net.ListenConfig{}, "127.0.0.1:0"), "127.0.0.1", false},
		{"SO_REUSEPORT UDP socket", udpHolder(foreignReusePort, "127.0.0.1:0"), "127.0.0.1", true},
		{"SO_REUSEPORT TCP listener", tcpHolder(foreignReusePort, "127.0.0.1:0"), "127.0.0.1", true},
		{"SO_REUSEPORT UDP on ::1", udpHolder(foreignReusePort, "[::1]:0"), "::1", true},
		{"wildcard UDP held, specific wanted", udpHolder(foreignReusePort, "0.0.0.0:0"), "127.0.0.1", true},
		{"specific UDP held, wildcard wanted", udpHolder(foreignReusePort, "127.0.0.1:0"), "0.0.0.0", true},
		{"wildcard TCP held, specific wanted", tcpHolder(foreignReusePort, "0.0.0.0:0"), "127.0.0.1", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.reuseport && !reusePortSupported {
				t.Skip("no SO_REUSEPORT here")
			}
			port, release := tc.hold(t)
			defer release()
			addr := net.JoinHostPort(tc.ours, strconv.Itoa(port))
			s, err := NewDo53(Do53Config{ListenerConfig: ListenerConfig{Addrs: []string{addr}, Handler: answerA(1)}, UDPSockets: 2})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Start()
			if err == nil {
				s.Shutdown(context.Background())
				t.Fatalf("Start on %s succeeded while another socket holds it", addr)
			}
			if msg := err.Error(); !strings.Contains(msg, addr) || !strings.Contains(msg, "already served") {
				t.Errorf("error %q does not say that %s is already served", msg, addr)
			}
		})
	}
}

// TestDo53ForeignReusePortSocketGetsNoQueries: a socket of the same user
// that sets SO_REUSEPORT can still join the UDP group after Start (Linux
// allows it), but the group's steering program gives it no query: every
// query is answered by the server.
func TestDo53ForeignReusePortSocketGetsNoQueries(t *testing.T) {
	if !reusePortSupported {
		t.Skip("no SO_REUSEPORT here")
	}
	udp, _, _ := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(1)}, UDPSockets: 2})
	pc, err := foreignReusePort.ListenPacket(context.Background(), "udp", udp)
	if err != nil {
		t.Logf("the foreign socket could not even join: %v", err)
		return
	}
	defer pc.Close()
	const queries = 64 // each from its own port: the kernel's own hash would give the foreign socket a third
	for i := range queries {
		c := &dns.Client{Timeout: 2 * time.Second}
		r, _, err := c.Exchange(dnstest.Query("q"+strconv.Itoa(i)+".example.", dns.TypeA), udp)
		if err != nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("query %d: %v %v", i, r, err)
		}
	}
	pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 512)
	stolen := 0
	for {
		if _, _, err := pc.ReadFrom(buf); err != nil {
			break
		}
		stolen++
	}
	if stolen > 0 {
		t.Fatalf("the foreign socket received %d of %d queries", stolen, queries)
	}
}

// TestBindUDPSteersByID: the group's program sends a query to socket ID mod
// n, the first bound being 0, also after a foreign socket joined.
func TestBindUDPSteersByID(t *testing.T) {
	if !reusePortSupported {
		t.Skip("no SO_REUSEPORT here")
	}
	const n = 3
	conns, senders, err := bindUDP("127.0.0.1:0", n, false)
	if err != nil {
		t.Fatal(err)
	}
	defer closeUDP(conns, senders)
	addr := conns[0].LocalAddr().String()
	foreign, err := foreignReusePort.ListenPacket(context.Background(), "udp", addr)
	if err == nil {
		defer foreign.Close()
	}
	buf := make([]byte, 512)
	for id := range uint16(12) {
		c, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		q := dnstest.Query("example.", dns.TypeA)
		q.Id = id
		if _, err := c.Write(mustPack(t, q)); err != nil {
			t.Fatal(err)
		}
		c.Close()
		want := conns[int(id)%n]
		want.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, _, err := want.ReadFrom(buf); err != nil {
			t.Fatalf("ID %d: socket %d got nothing: %v", id, int(id)%n, err)
		}
	}
}
