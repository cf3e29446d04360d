package resolver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// tcpOnly makes s answer every UDP query with an empty TC=1 reply and
// record the source address of every TCP query (one per connection's
// source port).
func tcpOnly(ports *sync.Map, after func(w dns.ResponseWriter)) func(s *testServer) {
	return func(s *testServer) {
		s.hook = func(w dns.ResponseWriter, r *dns.Msg) bool {
			if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
				m := new(dns.Msg)
				m.SetReply(r)
				m.Truncated = true
				_ = w.WriteMsg(m)
				return true
			}
			ports.Store(w.RemoteAddr().String(), true)
			if after != nil {
				_ = w.WriteMsg(answerFrom(s.zones, r))
				after(w)
				return true
			}
			return false
		}
	}
}

func countKeys(m *sync.Map) int {
	n := 0
	m.Range(func(any, any) bool { n++; return true })
	return n
}

// TestTCPReuse: questions answered with TC=1 over UDP share one TCP
// connection to the server, sequential or at once (pipelined).
func TestTCPReuse(t *testing.T) {
	h := basicHierarchyAt(t, "127.95.20.")
	var ports sync.Map
	h.zone.set(tcpOnly(&ports, nil))
	r := newTestResolver(t, h.hints, func(c *Config) { c.UpstreamTCPMaxConnsPerServer = 1 })
	t.Cleanup(func() { _ = r.Close() })
	const n = 10
	for i := 0; i < n; i++ {
		if _, err := r.Resolve(ctxT(t), "n"+itoa(i)+".example.test.", dns.TypeA); err != nil {
			t.Fatalf("question %d: %v", i, err)
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = r.Resolve(ctxT(t), "p"+itoa(i)+".example.test.", dns.TypeA)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent question %d: %v", i, err)
		}
	}
	if got := countKeys(&ports); got != 1 {
		t.Fatalf("%d TCP connections for %d questions, want 1", got, 2*n)
	}
	if open := r.x.tcp.stats(); open != 1 {
		t.Fatalf("%d connections open, want 1", open)
	}
	_ = r.Close()
	if open := r.x.tcp.stats(); open != 0 {
		t.Fatalf("%d connections open after Close", open)
	}
	// After Close: a connection per query, still answered.
	if _, err := r.Resolve(ctxT(t), "after.example.test.", dns.TypeA); err != nil {
		t.Fatalf("after Close: %v", err)
	}
}

// TestTCPIdleClose: a connection without queries closes after the idle
// time; the next question opens a new one.
func TestTCPIdleClose(t *testing.T) {
	h := basicHierarchyAt(t, "127.95.21.")
	var ports sync.Map
	h.zone.set(tcpOnly(&ports, nil))
	r := newTestResolver(t, h.hints, func(c *Config) { c.UpstreamTCPIdleTimeout = 50 * time.Millisecond })
	t.Cleanup(func() { _ = r.Close() })
	if _, err := r.Resolve(ctxT(t), "a.example.test.", dns.TypeA); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the idle connection closed", func() bool { return r.x.tcp.stats() == 0 })
	if _, err := r.Resolve(ctxT(t), "b.example.test.", dns.TypeA); err != nil {
		t.Fatal(err)
	}
	if got := countKeys(&ports); got != 2 {
		t.Fatalf("%d TCP connections, want 2 (one closed when idle)", got)
	}
}

// TestTCPServerClosesAfterReply: a server that closes each connection
// after its reply still answers every question: a reused connection found
// closed is replaced once.
func TestTCPServerClosesAfterReply(t *testing.T) {
	h := basicHierarchyAt(t, "127.95.22.")
	var ports sync.Map
	h.zone.set(tcpOnly(&ports, func(w dns.ResponseWriter) { _ = w.Close() }))
	r := newTestResolver(t, h.hints, nil)
	t.Cleanup(func() { _ = r.Close() })
	for i := 0; i < 5; i++ {
		if _, err := r.Resolve(ctxT(t), "n"+itoa(i)+".example.test.", dns.TypeA); err != nil {
			t.Fatalf("question %d: %v", i, err)
		}
	}
	if got := countKeys(&ports); got != 5 {
		t.Fatalf("%d TCP connections, want 5 (the server closes each)", got)
	}
}

// TestTCPPoolBounds: the pool never holds more connections than its
// bounds, per server and in total; past the total an idle connection of
// another server makes room, and with none idle the query fails without
// a connection.
func TestTCPPoolBounds(t *testing.T) {
	var lns []net.Listener
	var accepts sync.Map
	var servers []netip.AddrPort
	for i := 0; i < 3; i++ {
		ln, err := net.Listen("tcp", "127.95.23."+itoa(1+i)+":0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		t.Cleanup(func() { _ = ln.Close() })
		servers = append(servers, netip.MustParseAddrPort(ln.Addr().String()))
		go echoServer(ln, &accepts)
	}
	x := newExchanger()
	x.reuseTCP(time.Minute, 2, 2)
	t.Cleanup(x.close)
	ctx := context.Background()
	ask := func(s netip.AddrPort) error {
		m := new(dns.Msg)
		m.SetQuestion("example.test.", dns.TypeA)
		m.Id = randUint16()
		wire, _ := m.Pack()
		_, _, err := x.tcp.exchange(ctx, s, wire, time.Now().Add(2*time.Second))
		return err
	}
	for i := 0; i < 5; i++ {
		if err := ask(servers[0]); err != nil {
			t.Fatal(err)
		}
	}
	if n := x.tcp.stats(); n != 1 {
		t.Fatalf("%d connections after 5 sequential queries, want 1", n)
	}
	if err := ask(servers[1]); err != nil {
		t.Fatal(err)
	}
	if n := x.tcp.stats(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
	// The total is reached: the third server's connection replaces an
	// idle one.
	if err := ask(servers[2]); err != nil {
		t.Fatal(err)
	}
	if n := x.tcp.stats(); n != 2 {
		t.Fatalf("%d connections, want at most 2", n)
	}
	if n := countKeys(&accepts); n != 3 {
		t.Fatalf("%d accepts, want 3", n)
	}
}

// echoServer answers each DNS frame on each accepted connection with the
// same message marked as a response; it records every accept.
func echoServer(ln net.Listener, accepts *sync.Map) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		accepts.Store(c.RemoteAddr().String(), true)
		go func() {
			defer c.Close()
			for {
				var l [2]byte
				if _, err := readFull(c, l[:]); err != nil {
					return
				}
				buf := make([]byte, int(l[0])<<8|int(l[1]))
				if _, err := readFull(c, buf); err != nil {
					return
				}
				buf[2] |= 0x80 // QR
				if _, err := c.Write(append(l[:], buf...)); err != nil {
					return
				}
			}
		}()
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestTCPPoolFull: with every connection busy and the bounds reached, a
// query to another server fails at once, sending nothing, and is not
// held against that server.
func TestTCPPoolFull(t *testing.T) {
	silent, err := net.Listen("tcp", "127.95.24.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() }) // holds it open, never answers
		}
	}()
	var accepts sync.Map
	other, err := net.Listen("tcp", "127.95.24.2:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	go echoServer(other, &accepts)

	x := newExchanger()
	x.reuseTCP(time.Minute, 1, 1)
	t.Cleanup(x.close)
	wire := func() []byte {
		m := new(dns.Msg)
		m.SetQuestion("example.test.", dns.TypeA)
		b, _ := m.Pack()
		return b
	}
	busy := make(chan error, 1)
	go func() {
		_, _, err := x.tcp.exchange(context.Background(), netip.MustParseAddrPort(silent.Addr().String()), wire(), time.Now().Add(time.Second))
		busy <- err
	}()
	eventually(t, "the silent server's connection open", func() bool {
		x.tcp.mu.Lock()
		defer x.tcp.mu.Unlock()
		for _, l := range x.tcp.conns {
			for _, tc := range l {
				tc.mu.Lock()
				n := len(tc.pending)
				tc.mu.Unlock()
				if n > 0 {
					return true
				}
			}
		}
		return false
	})
	_, _, err = x.tcp.exchange(context.Background(), netip.MustParseAddrPort(other.Addr().String()), wire(), time.Now().Add(time.Second))
	if !errors.Is(err, errTCPPoolFull) {
		t.Fatalf("err %v, want %v", err, errTCPPoolFull)
	}
	if n := countKeys(&accepts); n != 0 {
		t.Fatalf("%d connections to the other server past the bound", n)
	}
	if err := <-busy; !errors.Is(err, errTimeout) {
		t.Fatalf("silent server: %v, want a timeout", err)
	}
	// The timed-out connection is closed; the other server gets one now.
	eventually(t, "the stuck connection closed", func() bool { return x.tcp.stats() == 0 })
	if _, _, err := x.tcp.exchange(context.Background(), netip.MustParseAddrPort(other.Addr().String()), wire(), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
}

// TestTCPJunkFrames: a server that streams frames nobody asked for loses
// the connection after maxJunkReplies of them: the query waiting on it
// ends at once rather than at its deadline.
func TestTCPJunkFrames(t *testing.T) {
	ln, err := net.Listen("tcp", "127.95.24.3:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		junk := []byte{0, 12, 0xff, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		for i := 0; i <= 2*maxJunkReplies; i++ {
			if _, err := c.Write(junk); err != nil {
				return
			}
		}
		time.Sleep(2 * time.Second) // then silence, connection open
	}()
	x := newExchanger()
	x.reuseTCP(time.Minute, 1, 1)
	t.Cleanup(x.close)
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeA)
	m.Id = 1
	wire, _ := m.Pack()
	_, _, err = x.tcp.exchange(context.Background(), netip.MustParseAddrPort(ln.Addr().String()), wire, time.Now().Add(time.Second))
	if !errors.Is(err, errTCPConnLost) {
		t.Fatalf("err %v, want the connection given up (%v)", err, errTCPConnLost)
	}
	if n := x.tcp.stats(); n != 0 {
		t.Fatalf("%d connections open after the junk", n)
	}
}
