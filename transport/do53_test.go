package transport

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// loopbacks are the two client/server families every test runs over.
var loopbacks = []string{"127.0.0.1:0", "[::1]:0"}

// answerA answers every query with one A record per name label count, or
// n records when the handler is built with n.
func answerA(n int) Handler {
	return HandlerFunc(func(_ context.Context, w ResponseWriter, r *Request) {
		m := new(dns.Msg)
		m.SetReply(r.Msg)
		for i := range n {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: r.Msg.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
				A:   net.IPv4(192, 0, 2, byte(i)).To4(),
			})
		}
		w.WriteMsg(m)
	})
}

// startDo53 starts a server on one loopback address and stops it when the
// test ends. It returns the UDP and TCP address.
func startDo53(t testing.TB, addr string, cfg Do53Config) (udp, tcp string, s *Do53) {
	t.Helper()
	cfg.Addrs = []string{addr}
	s, err := NewDo53(cfg)
	if err != nil {
		t.Fatal(err)
	}
	udp, tcp = serveForTest(t, s)
	if udp == "" || tcp == "" {
		t.Fatalf("addrs %v: want one UDP and one TCP", s.Addrs())
	}
	return udp, tcp, s
}

// exchangeRaw sends raw bytes as one query over UDP or TCP and returns the
// response, or nil if none comes within wait.
func exchangeRaw(t testing.TB, network, addr string, raw []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(wait))
	if network == "udp" {
		if _, err := c.Write(raw); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		if err != nil {
			return nil
		}
		return buf[:n]
	}
	if err := writeFramed(c, raw); err != nil {
		t.Fatal(err)
	}
	b, err := readFramed(c)
	if err != nil {
		return nil
	}
	return b
}

func writeFramed(w io.Writer, raw []byte) error {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(raw)))
	_, err := w.Write(append(b, raw...))
	return err
}

func readFramed(r io.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	_, err := io.ReadFull(r, b)
	return b, err
}

func mustPack(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDo53Screening(t *testing.T) {
	withEDNS := func(version uint8) []byte {
		m := dnstest.Query("example.", dns.TypeA)
		m.SetEdns0(1232, false)
		m.IsEdns0().SetVersion(version)
		return mustPack(t, m)
	}
	setHeader := func(raw []byte, f func(h []byte)) []byte {
		raw = append([]byte(nil), raw...)
		f(raw)
		return raw
	}
	good := mustPack(t, dnstest.Query("example.", dns.TypeA))
	twoQ := dnstest.Query("example.", dns.TypeA)
	twoQ.Question = append(twoQ.Question, dns.Question{Name: "b.example.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	notify := dnstest.Query("example.", dns.TypeSOA)
	notify.Opcode = dns.OpcodeNotify
	twoOPT := dnstest.Query("example.", dns.TypeA)
	twoOPT.SetEdns0(1232, false)
	twoOPT.Extra = append(twoOPT.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 1232}})

	cases := []struct {
		name      string
		raw       []byte
		wantDrop  bool
		wantRcode int
		wantQ     int // questions echoed
		wantOPT   bool
	}{
		{name: "good query", raw: good, wantRcode: dns.RcodeSuccess, wantQ: 1},
		{name: "runt", raw: good[:5], wantDrop: true},
		{name: "QR set", raw: setHeader(good, func(h []byte) { h[2] |= 0x80 }), wantDrop: true},
		{name: "truncated question", raw: good[:len(good)-3], wantRcode: dns.RcodeFormatError},
		{name: "label runs past end", raw: append(append([]byte(nil), good[:12]...), 0x3f, 'a'), wantRcode: dns.RcodeFormatError},
		{name: "no question", raw: setHeader(good[:12], func(h []byte) { h[5] = 0 }), wantRcode: dns.RcodeFormatError},
		{name: "two questions", raw: mustPack(t, twoQ), wantRcode: dns.RcodeFormatError},
		{name: "opcode NOTIFY", raw: mustPack(t, notify), wantRcode: dns.RcodeNotImplemented, wantQ: 1},
		{name: "opcode 15", raw: setHeader(good, func(h []byte) { h[2] |= 0x78 }), wantRcode: dns.RcodeNotImplemented, wantQ: 1},
		{name: "EDNS version 1", raw: withEDNS(1), wantRcode: dns.RcodeBadVers, wantQ: 1, wantOPT: true},
		{name: "EDNS version 0", raw: withEDNS(0), wantRcode: dns.RcodeSuccess, wantQ: 1, wantOPT: true},
		{name: "two OPT records", raw: mustPack(t, twoOPT), wantRcode: dns.RcodeFormatError, wantOPT: true},
	}
	for _, addr := range loopbacks {
		udp, tcp, _ := startDo53(t, addr, Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(1)}})
		for _, net := range []struct{ name, addr string }{{"udp", udp}, {"tcp", tcp}} {
			for _, tc := range cases {
				t.Run(fmt.Sprintf("%s/%s/%s", addr, net.name, tc.name), func(t *testing.T) {
					wait := 2 * time.Second
					if tc.wantDrop {
						wait = 300 * time.Millisecond
					}
					resp := exchangeRaw(t, net.name, net.addr, tc.raw, wait)
					if tc.wantDrop {
						if resp != nil {
							t.Fatalf("got a %d-byte response, want none", len(resp))
						}
						return
					}
					if resp == nil {
						t.Fatal("no response")
					}
					m := new(dns.Msg)
					if err := m.Unpack(resp); err != nil {
						t.Fatalf("unpack response: %v", err)
					}
					if m.Id != binary.BigEndian.Uint16(tc.raw) || !m.Response {
						t.Errorf("id %d response %v, want id %d echoed as a response", m.Id, m.Response, binary.BigEndian.Uint16(tc.raw))
					}
					if m.Rcode != tc.wantRcode {
						t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.wantRcode])
					}
					if len(m.Question) != tc.wantQ {
						t.Errorf("%d questions echoed, want %d", len(m.Question), tc.wantQ)
					}
					if opt := m.IsEdns0(); (opt != nil) != tc.wantOPT {
						t.Errorf("OPT present %v, want %v", opt != nil, tc.wantOPT)
					} else if opt != nil && (opt.Version() != 0 || opt.UDPSize() != 1232) {
						t.Errorf("OPT version %d size %d, want 0 and 1232", opt.Version(), opt.UDPSize())
					}
				})
			}
		}
	}
}

func TestDo53AccessControl(t *testing.T) {
	cases := []struct {
		name      string
		allow     []netip.Prefix
		wantRcode int
	}{
		{"default admits loopback", nil, dns.RcodeSuccess},
		{"allow list excluding client", []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}, dns.RcodeRefused},
		{"allow list including client", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}, dns.RcodeSuccess},
	}
	for _, tc := range cases {
		for _, addr := range loopbacks {
			t.Run(tc.name+"/"+addr, func(t *testing.T) {
				udp, tcp, _ := startDo53(t, addr, Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(1), Allow: tc.allow}})
				for _, c := range []*dns.Client{{Net: "udp"}, {Net: "tcp"}} {
					target := udp
					if c.Net == "tcp" {
						target = tcp
					}
					r, _, err := c.Exchange(dnstest.Query("example.", dns.TypeA), target)
					if err != nil {
						t.Fatalf("%s: %v", c.Net, err)
					}
					if r.Rcode != tc.wantRcode {
						t.Errorf("%s: rcode %s, want %s", c.Net, dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.wantRcode])
					}
					if tc.wantRcode == dns.RcodeRefused && (len(r.Answer) != 0 || len(r.Question) != 1) {
						t.Errorf("%s: REFUSED with %d answers and %d questions, want 0 and 1", c.Net, len(r.Answer), len(r.Question))
					}
				}
			})
		}
	}
}

// TestDo53SizeLimits checks MaxSize as the handler sees it and truncation
// of a large answer over UDP, with the full answer over TCP.
func TestDo53SizeLimits(t *testing.T) {
	const records = 100 // ~1.7 KB compressed: over 1232 and 512
	cases := []struct {
		name       string
		net        string
		edns       uint16 // 0: no OPT
		wantMax    int
		wantTC     bool
		wantMaxLen int
	}{
		{"udp without EDNS", "udp", 0, 512, true, 512},
		{"udp EDNS below 512", "udp", 100, 512, true, 512},
		{"udp EDNS 1000", "udp", 1000, 1000, true, 1000},
		{"udp EDNS 4096 clamped", "udp", 4096, 1232, true, 1232},
		{"tcp without EDNS", "tcp", 0, 65535, false, 65535},
		{"tcp EDNS 1232", "tcp", 1232, 65535, false, 65535},
	}
	for _, addr := range loopbacks {
		var sawMax atomic.Int64
		inner := answerA(records)
		h := HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
			sawMax.Store(int64(r.MaxSize))
			inner.ServeDNS(ctx, w, r)
		})
		udp, tcp, _ := startDo53(t, addr, Do53Config{ListenerConfig: ListenerConfig{Handler: h}})
		for _, tc := range cases {
			t.Run(addr+"/"+tc.name, func(t *testing.T) {
				q := dnstest.Query("a-rather-long-name-to-fill-the-packet.example.", dns.TypeA)
				if tc.edns != 0 {
					q.SetEdns0(tc.edns, true)
				}
				target := udp
				if tc.net == "tcp" {
					target = tcp
				}
				resp := exchangeRaw(t, tc.net, target, mustPack(t, q), 2*time.Second)
				if resp == nil {
					t.Fatal("no response")
				}
				if got := int(sawMax.Load()); got != tc.wantMax {
					t.Errorf("handler saw MaxSize %d, want %d", got, tc.wantMax)
				}
				if len(resp) > tc.wantMaxLen {
					t.Errorf("response is %d bytes, limit %d", len(resp), tc.wantMaxLen)
				}
				m := new(dns.Msg)
				if err := m.Unpack(resp); err != nil {
					t.Fatalf("unpack: %v", err)
				}
				if m.Truncated != tc.wantTC {
					t.Errorf("TC %v, want %v", m.Truncated, tc.wantTC)
				}
				if !tc.wantTC && len(m.Answer) != records {
					t.Errorf("%d answers, want all %d", len(m.Answer), records)
				}
				if tc.wantTC && (len(m.Answer) == 0 || len(m.Answer) >= records) {
					t.Errorf("%d answers in the truncated response, want some but not all", len(m.Answer))
				}
				if opt := m.IsEdns0(); (opt != nil) != (tc.edns != 0) {
					t.Errorf("OPT in response %v, want %v", opt != nil, tc.edns != 0)
				} else if opt != nil && !opt.Do() {
					t.Error("DO bit not echoed in the added OPT")
				}
			})
		}
	}
}

// TestDo53TCPPipelining sends a slow and then a fast query on one
// connection: the fast answer must come first (RFC 7766 6.2.1.1).
func TestDo53TCPPipelining(t *testing.T) {
	release := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
		if strings.HasPrefix(r.Msg.Question[0].Name, "slow.") {
			select {
			case <-release:
			case <-time.After(3 * time.Second):
			}
		}
		answerA(1).ServeDNS(ctx, w, r)
	})
	for _, addr := range loopbacks {
		t.Run(addr, func(t *testing.T) {
			_, tcp, _ := startDo53(t, addr, Do53Config{ListenerConfig: ListenerConfig{Handler: h}})
			c, err := net.Dial("tcp", tcp)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			slow, fast := dnstest.Query("slow.example.", dns.TypeA), dnstest.Query("fast.example.", dns.TypeA)
			slow.Id, fast.Id = 1, 2
			if err := writeFramed(c, mustPack(t, slow)); err != nil {
				t.Fatal(err)
			}
			if err := writeFramed(c, mustPack(t, fast)); err != nil {
				t.Fatal(err)
			}
			var order []uint16
			for range 2 {
				b, err := readFramed(c)
				if err != nil {
					t.Fatalf("after %v: %v", order, err)
				}
				m := new(dns.Msg)
				if err := m.Unpack(b); err != nil {
					t.Fatal(err)
				}
				order = append(order, m.Id)
				if m.Id == 2 {
					release <- struct{}{} // only now may the slow one finish
				}
			}
			if order[0] != 2 || order[1] != 1 {
				t.Fatalf("answers came in order %v, want [2 1]", order)
			}
		})
	}
}

func TestDo53TCPConnectionHandling(t *testing.T) {
	for _, addr := range loopbacks {
		t.Run(addr+"/idle timeout closes", func(t *testing.T) {
			_, tcp, _ := startDo53(t, addr, Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(1), IdleTimeout: 200 * time.Millisecond}})
			c, err := net.Dial("tcp", tcp)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// One query first: the timer restarts after each one.
			writeFramed(c, mustPack(t, dnstest.Query("example.", dns.TypeA)))
			if _, err := readFramed(c); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				t.Fatalf("read on idle connection: %v, want EOF", err)
			}
			if d := time.Since(start); d < 150*time.Millisecond || d > 2*time.Second {
				t.Errorf("closed after %v, want about 200ms", d)
			}
		})
		t.Run(addr+"/garbage does not kill the server", func(t *testing.T) {
			_, tcp, _ := startDo53(t, addr, Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(1)}})
			garbage := [][]byte{
				{0x00, 0x00},          // zero length
				{0x00, 0x03, 1, 2, 3}, // runt frame
				[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
				append([]byte{0x00, 0x20}, make([]byte, 32)...), // zeros: header only, no question
				{0xff, 0xff, 1, 2},                              // long frame, never completed
			}
			for _, g := range garbage {
				c, err := net.Dial("tcp", tcp)
				if err != nil {
					t.Fatal(err)
				}
				c.Write(g)
				c.Close()
			}
			r, _, err := (&dns.Client{Net: "tcp"}).Exchange(dnstest.Query("example.", dns.TypeA), tcp)
			if err != nil || r.Rcode != dns.RcodeSuccess {
				t.Fatalf("after garbage: %v %v", r, err)
			}
		})
		t.Run(addr+"/connection limit", func(t *testing.T) {
			_, tcp, _ := startDo53(t, addr, Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(1), MaxConns: 2}})
			var held []net.Conn
			for range 2 {
				c, err := net.Dial("tcp", tcp)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				// Make sure the server has admitted it.
				writeFramed(c, mustPack(t, dnstest.Query("example.", dns.TypeA)))
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := readFramed(c); err != nil {
					t.Fatal(err)
				}
				held = append(held, c)
			}
			// The third is reset at once; the reset may even beat the
			// end of Dial (ECONNRESET there), which is as closed.
			if c, err := net.Dial("tcp", tcp); err == nil {
				defer c.Close()
				writeFramed(c, mustPack(t, dnstest.Query("example.", dns.TypeA)))
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if b, err := readFramed(c); err == nil {
					t.Fatalf("third connection got a %d-byte answer, want it closed", len(b))
				}
			} else if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatal(err)
			}
			held[0].Close()
			time.Sleep(100 * time.Millisecond)
			r, _, err := (&dns.Client{Net: "tcp"}).Exchange(dnstest.Query("example.", dns.TypeA), tcp)
			if err != nil || r.Rcode != dns.RcodeSuccess {
				t.Fatalf("after a slot freed: %v %v", r, err)
			}
		})
	}
}

// TestDo53SlowReader: a client that sends queries for big answers and never
// reads must not stop others being served; its writes time out.
func TestDo53SlowReader(t *testing.T) {
	_, tcp, _ := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(3000), WriteTimeout: 200 * time.Millisecond}})
	c, err := net.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4096)
	for range 16 {
		writeFramed(c, mustPack(t, dnstest.Query("example.", dns.TypeA)))
	}
	for range 5 {
		r, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(dnstest.Query("other.example.", dns.TypeA), tcp)
		if err != nil || len(r.Answer) != 3000 {
			t.Fatalf("well-behaved client: %v", err)
		}
	}
}

func TestDo53HandlerPanic(t *testing.T) {
	h := HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
		if strings.HasPrefix(r.Msg.Question[0].Name, "panic.") {
			panic("boom")
		}
		answerA(1).ServeDNS(ctx, w, r)
	})
	for _, addr := range loopbacks {
		udp, tcp, _ := startDo53(t, addr, Do53Config{ListenerConfig: ListenerConfig{Handler: h}})
		for _, c := range []*dns.Client{{Net: "udp"}, {Net: "tcp"}} {
			target := udp
			if c.Net == "tcp" {
				target = tcp
			}
			t.Run(addr+"/"+c.Net, func(t *testing.T) {
				for range 3 {
					r, _, err := c.Exchange(dnstest.Query("panic.example.", dns.TypeA), target)
					if err != nil || r.Rcode != dns.RcodeServerFailure {
						t.Fatalf("panicking handler: %v %v, want SERVFAIL", r, err)
					}
					r, _, err = c.Exchange(dnstest.Query("fine.example.", dns.TypeA), target)
					if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
						t.Fatalf("after the panic: %v %v", r, err)
					}
				}
			})
		}
	}
}

func TestDo53WriteOnce(t *testing.T) {
	second := make(chan error, 2)
	h := HandlerFunc(func(ctx context.Context, w ResponseWriter, r *Request) {
		m := new(dns.Msg)
		m.SetReply(r.Msg)
		w.WriteMsg(m)
		second <- w.WriteMsg(m)
	})
	udp, tcp, _ := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: h}})
	for _, c := range []*dns.Client{{Net: "udp"}, {Net: "tcp"}} {
		target := udp
		if c.Net == "tcp" {
			target = tcp
		}
		if _, _, err := c.Exchange(dnstest.Query("example.", dns.TypeA), target); err != nil {
			t.Fatal(err)
		}
		if err := <-second; !errors.Is(err, errAlreadyWritten) {
			t.Errorf("%s: second write: %v, want errAlreadyWritten", c.Net, err)
		}
	}
}

func TestDo53StartAndShutdown(t *testing.T) {
	t.Run("bind failure leaves nothing bound", func(t *testing.T) {
		busy, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		free, err := net.ListenPacket("udp", "[::1]:0")
		if err != nil {
			t.Fatal(err)
		}
		freeAddr := free.LocalAddr().String()
		free.Close()
		s, err := NewDo53(Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(1), Addrs: []string{freeAddr, busy.LocalAddr().String()}}, UDPSockets: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err == nil {
			t.Fatal("Start succeeded on a busy address")
		}
		again, err := net.ListenPacket("udp", freeAddr)
		if err != nil {
			t.Fatalf("first address still bound after failed Start: %v", err)
		}
		again.Close()
	})
	for _, addr := range loopbacks {
		t.Run(addr+"/shutdown", func(t *testing.T) {
			s, err := NewDo53(Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(1), Addrs: []string{addr}}})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			var udp, tcp string
			for _, a := range s.Addrs() {
				if _, ok := a.(*net.UDPAddr); ok {
					udp = a.String()
				} else {
					tcp = a.String()
				}
			}
			// An open idle TCP connection must not hold Shutdown up.
			idle, err := net.Dial("tcp", tcp)
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
			if _, _, err := (&dns.Client{Net: "udp"}).Exchange(dnstest.Query("example.", dns.TypeA), udp); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			if _, err := net.Dial("tcp", tcp); err == nil {
				t.Error("TCP still accepting after shutdown")
			}
			if resp := exchangeRaw(t, "udp", udp, mustPack(t, dnstest.Query("example.", dns.TypeA)), 200*time.Millisecond); resp != nil {
				t.Error("UDP still answering after shutdown")
			}
			rebind, err := net.ListenPacket("udp", udp)
			if err != nil {
				t.Fatalf("UDP port still bound after shutdown: %v", err)
			}
			rebind.Close()
		})
	}
}

func TestDo53ManyUDPSocketsAllServe(t *testing.T) {
	udp, _, s := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(1)}, UDPSockets: 4})
	if len(s.udp) != 4 {
		t.Fatalf("%d UDP sockets, want 4", len(s.udp))
	}
	for i := range 50 {
		c := &dns.Client{Net: "udp"}
		r, _, err := c.Exchange(dnstest.Query(fmt.Sprintf("q%d.example.", i), dns.TypeA), udp)
		if err != nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("query %d: %v %v", i, r, err)
		}
	}
}

// notifyTaker is a NotifyHandler: it answers every message it is given
// with NOERROR, so a NOTIFY that reaches it is told from one the front end
// answered NOTIMP.
type notifyTaker struct{ Handler }

func (notifyTaker) TakesNotify() bool { return true }

// TestNotifyHandler: a NotifyHandler is given NOTIFY over Do53 UDP and TCP
// but not over DoT (NOTIMP); UPDATE stays NOTIMP everywhere.
func TestNotifyHandler(t *testing.T) {
	h := notifyTaker{answerA(0)}
	udp, tcp, _ := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: h}})
	certs, ctls := testCerts(t)
	dot, _ := startDoT(t, "127.0.0.1:0", DoTConfig{ListenerConfig: ListenerConfig{Handler: h, Certs: certs}})
	notify := mustPack(t, new(dns.Msg).SetNotify("example."))
	update := mustPack(t, new(dns.Msg).SetUpdate("example."))
	dotExchange := func(raw []byte) []byte {
		c, err := tls.Dial("tcp", dot, ctls)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if err := writeFramed(c, raw); err != nil {
			t.Fatal(err)
		}
		b, err := readFramed(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name      string
		exchange  func(raw []byte) []byte
		raw       []byte
		wantRcode int
	}{
		{"NOTIFY over UDP", func(raw []byte) []byte { return exchangeRaw(t, "udp", udp, raw, 2*time.Second) }, notify, dns.RcodeSuccess},
		{"NOTIFY over TCP", func(raw []byte) []byte { return exchangeRaw(t, "tcp", tcp, raw, 2*time.Second) }, notify, dns.RcodeSuccess},
		{"NOTIFY over DoT", dotExchange, notify, dns.RcodeNotImplemented},
		{"UPDATE over UDP", func(raw []byte) []byte { return exchangeRaw(t, "udp", udp, raw, 2*time.Second) }, update, dns.RcodeNotImplemented},
		{"UPDATE over TCP", func(raw []byte) []byte { return exchangeRaw(t, "tcp", tcp, raw, 2*time.Second) }, update, dns.RcodeNotImplemented},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := tc.exchange(tc.raw)
			m := new(dns.Msg)
			if resp == nil || m.Unpack(resp) != nil {
				t.Fatalf("no answer that parses: %x", resp)
			}
			if m.Rcode != tc.wantRcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.wantRcode])
			}
		})
	}
}
