package transport

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

func startDoQ(t testing.TB, addr string, cfg DoQConfig) string {
	t.Helper()
	cfg.Addrs = []string{addr}
	s, err := NewDoQ(cfg)
	if err != nil {
		t.Fatal(err)
	}
	serveForTest(t, s)
	return s.Addrs()[0].String()
}

func dialDoQ(t testing.TB, addr string, ctls *tls.Config) *quic.Conn {
	t.Helper()
	conf := ctls.Clone()
	conf.NextProtos = []string{"doq"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, addr, conf, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseWithError(0, "") })
	return c
}

// doqExchange sends raw bytes (already framed) on a new stream, closes it,
// and returns what the server sent back before its FIN.
func doqExchange(c *quic.Conn, framed []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	st.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := st.Write(framed); err != nil {
		return nil, err
	}
	st.Close()
	return io.ReadAll(st)
}

func frame(raw []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(raw))), raw...)
}

func doqQueryBytes(t testing.TB, name string, id uint16) []byte {
	q := dnstest.Query(name, dns.TypeA)
	q.Id = id
	return mustPack(t, q)
}

func TestDoQQueries(t *testing.T) {
	for _, addr := range loopbacks {
		t.Run(addr, func(t *testing.T) {
			certs, ctls := testCerts(t)
			target := startDoQ(t, addr, DoQConfig{ListenerConfig: ListenerConfig{Handler: answerA(1), Certs: certs}})
			c := dialDoQ(t, target, ctls)
			if p := c.ConnectionState().TLS.NegotiatedProtocol; p != "doq" {
				t.Fatalf("ALPN %q", p)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 50)
			for range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := doqExchange(c, frame(doqQueryBytes(t, "example.", 0)))
					if err != nil {
						errs <- err
						return
					}
					if len(resp) < 2 || int(binary.BigEndian.Uint16(resp)) != len(resp)-2 {
						errs <- errors.New("bad framing of the answer")
						return
					}
					m := new(dns.Msg)
					if err := m.Unpack(resp[2:]); err != nil || m.Id != 0 || len(m.Answer) != 1 {
						errs <- errors.New("bad answer")
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestDoQProtocolErrors: each framing fault closes that connection with
// DOQ_PROTOCOL_ERROR, while another client's connection keeps working.
func TestDoQProtocolErrors(t *testing.T) {
	certs, ctls := testCerts(t)
	target := startDoQ(t, "127.0.0.1:0", DoQConfig{ListenerConfig: ListenerConfig{Handler: answerA(1), Certs: certs}, StreamTimeout: time.Second})
	bystander := dialDoQ(t, target, ctls)
	good := doqQueryBytes(t, "example.", 0)
	keepalive := dnstest.Query("example.", dns.TypeA)
	keepalive.Id = 0
	keepalive.SetEdns0(1232, false)
	keepalive.IsEdns0().Option = append(keepalive.IsEdns0().Option, &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE})
	response := append([]byte(nil), good...)
	response[2] |= 0x80

	cases := []struct {
		name      string
		framed    []byte
		wantRcode int // -1: protocol error
	}{
		{"non-zero ID", frame(doqQueryBytes(t, "example.", 4242)), -1},
		{"FIN inside the message", frame(good)[:10], -1},
		{"FIN inside the length", []byte{0}, -1},
		{"two queries on one stream", append(frame(good), frame(good)...), -1},
		{"shorter than a header", frame([]byte{0, 0, 1}), -1},
		{"a response, not a query", frame(response), -1},
		{"edns-tcp-keepalive", frame(mustPack(t, keepalive)), -1},
		{"unparseable message", frame(append(append([]byte(nil), good[:12]...), 0x3f, 'a')), dns.RcodeFormatError},
		{"NOTIFY", frame(func() []byte {
			m := dnstest.Query("example.", dns.TypeSOA)
			m.Id, m.Opcode = 0, dns.OpcodeNotify
			return mustPack(t, m)
		}()), dns.RcodeNotImplemented},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialDoQ(t, target, ctls)
			resp, err := doqExchange(c, tc.framed)
			if tc.wantRcode < 0 {
				var aerr *quic.ApplicationError
				if !errors.As(err, &aerr) || aerr.ErrorCode != doqProtocolError || !aerr.Remote {
					t.Fatalf("got %x, %v; want the connection closed with DOQ_PROTOCOL_ERROR", resp, err)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				m := new(dns.Msg)
				if err := m.Unpack(resp[2:]); err != nil || m.Rcode != tc.wantRcode {
					t.Fatalf("answer %v %v, want rcode %s", m, err, dns.RcodeToString[tc.wantRcode])
				}
				// The connection survives a DNS-level error.
				if _, err := doqExchange(c, frame(good)); err != nil {
					t.Fatalf("connection unusable after the error answer: %v", err)
				}
			}
			if _, err := doqExchange(bystander, frame(good)); err != nil {
				t.Fatalf("bystander: %v", err)
			}
		})
	}
	t.Run("unidirectional stream is a protocol error", func(t *testing.T) {
		c := dialDoQ(t, target, ctls)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		st, err := c.OpenUniStreamSync(ctx)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		st.Write(frame(good))
		st.Close()
		select {
		case <-c.Context().Done():
		case <-ctx.Done():
			t.Fatal("connection still open after a unidirectional stream")
		}
		var aerr *quic.ApplicationError
		if err := context.Cause(c.Context()); !errors.As(err, &aerr) || aerr.ErrorCode != doqProtocolError || !aerr.Remote {
			t.Fatalf("closed with %v, want DOQ_PROTOCOL_ERROR from the server", err)
		}
	})
	t.Run("whole query without FIN is a protocol error", func(t *testing.T) {
		c := dialDoQ(t, target, ctls)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		st, err := c.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st.Write(frame(good)) // the whole query, but the stream stays open
		st.SetReadDeadline(time.Now().Add(3 * time.Second))
		resp, err := io.ReadAll(st)
		var aerr *quic.ApplicationError
		if !errors.As(err, &aerr) || aerr.ErrorCode != doqProtocolError || !aerr.Remote {
			t.Fatalf("got %x, %v; want the connection closed with DOQ_PROTOCOL_ERROR", resp, err)
		}
	})
	t.Run("stalled stream is cancelled", func(t *testing.T) {
		c := dialDoQ(t, target, ctls)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		st, err := c.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st.Write([]byte{0, 40, 0, 0}) // promises 40 bytes, sends 2, never FIN
		st.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err = io.ReadAll(st)
		var serr *quic.StreamError
		if !errors.As(err, &serr) || serr.ErrorCode != doqRequestCancelled {
			t.Fatalf("read: %v, want the stream reset with DOQ_REQUEST_CANCELLED", err)
		}
	})
}

func TestDoQLimits(t *testing.T) {
	certs, ctls := testCerts(t)
	s, err := NewDoQ(DoQConfig{ListenerConfig: ListenerConfig{Addrs: []string{"[::1]:0"}, Handler: answerA(1), Certs: certs, MaxConns: 1, IdleTimeout: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	target := s.Addrs()[0].String()
	open := func() int {
		a := s.quics[0]
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.conns)
	}
	first := dialDoQ(t, target, ctls)
	if _, err := doqExchange(first, frame(doqQueryBytes(t, "example.", 0))); err != nil {
		t.Fatal(err)
	}
	t.Run("connection limit", func(t *testing.T) {
		second := dialDoQ(t, target, ctls)
		_, err := doqExchange(second, frame(doqQueryBytes(t, "example.", 0)))
		var aerr *quic.ApplicationError
		if !errors.As(err, &aerr) || aerr.ErrorCode != doqExcessiveLoad {
			t.Fatalf("second connection: %v, want DOQ_EXCESSIVE_LOAD", err)
		}
	})
	t.Run("idle timeout", func(t *testing.T) {
		// QUIC closes an idle connection silently (RFC 9000 10.1): watch the
		// server drop it, then see that a new client is admitted.
		deadline := time.Now().Add(3 * time.Second)
		for open() != 0 {
			if time.Now().After(deadline) {
				t.Fatal("idle connection still open on the server after 3s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		c := dialDoQ(t, target, ctls)
		if _, err := doqExchange(c, frame(doqQueryBytes(t, "example.", 0))); err != nil {
			t.Fatalf("new connection after the idle one closed: %v", err)
		}
	})
}

// TestDoQ0RTT resumes a session and sends a query in 0-RTT data.
func TestDoQ0RTT(t *testing.T) {
	certs, ctls := testCerts(t)
	target := startDoQ(t, "127.0.0.1:0", DoQConfig{ListenerConfig: ListenerConfig{Handler: answerA(1), Certs: certs}})
	conf := ctls.Clone()
	conf.NextProtos = []string{"doq"}
	tickets := &notifyingSessionCache{ClientSessionCache: tls.NewLRUClientSessionCache(4), put: make(chan struct{}, 1)}
	conf.ClientSessionCache = tickets
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := quic.DialAddr(ctx, target, conf, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := doqExchange(c, frame(doqQueryBytes(t, "example.", 0))); err != nil {
		t.Fatal(err)
	}
	// The session ticket arrives after the handshake; under load a round
	// trip is not always enough, so wait until the client has stored it.
	select {
	case <-tickets.put:
	case <-ctx.Done():
		t.Fatal("no session ticket arrived")
	}
	c.CloseWithError(0, "")

	early, err := quic.DialAddrEarly(ctx, target, conf, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer early.CloseWithError(0, "")
	resp, err := doqExchange(early, frame(doqQueryBytes(t, "example.", 0)))
	if err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(resp[2:]); err != nil || len(m.Answer) != 1 {
		t.Fatalf("0-RTT answer: %v %v", m, err)
	}
	<-early.HandshakeComplete()
	if !early.ConnectionState().Used0RTT {
		t.Fatal("0-RTT was not used")
	}
}

func TestReplaySafe(t *testing.T) {
	notify := dnstest.Query("example.", dns.TypeSOA)
	notify.Opcode = dns.OpcodeNotify
	cases := []struct {
		name string
		raw  []byte
		want bool
	}{
		{"A query", mustPack(t, dnstest.Query("example.", dns.TypeA)), true},
		{"AXFR", mustPack(t, dnstest.Query("example.", dns.TypeAXFR)), false},
		{"IXFR", mustPack(t, dnstest.Query("example.", dns.TypeIXFR)), false},
		{"NOTIFY", mustPack(t, notify), false},
		{"garbage", []byte{1, 2, 3}, false},
	}
	for _, tc := range cases {
		if got := replaySafe(tc.raw); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// notifyingSessionCache signals when a TLS session ticket is stored.
type notifyingSessionCache struct {
	tls.ClientSessionCache
	put chan struct{}
}

func (c *notifyingSessionCache) Put(key string, cs *tls.ClientSessionState) {
	c.ClientSessionCache.Put(key, cs)
	if cs != nil {
		select {
		case c.put <- struct{}{}:
		default:
		}
	}
}

// TestDoQReadyPath: a query without EDNS(0) is answered on the ready path;
// one with EDNS(0) takes the full path, which pads every such answer (RFC
// 9250 5.4).
func TestDoQReadyPath(t *testing.T) {
	certs, ctls := testCerts(t)
	h := newReadyTTLHandler()
	c := dialDoQ(t, startDoQ(t, "127.0.0.1:0", DoQConfig{ListenerConfig: ListenerConfig{Handler: h, Certs: certs}}), ctls)
	ask := func(q *dns.Msg) *dns.Msg {
		t.Helper()
		q.Id = 0
		b, err := doqExchange(c, frame(mustPack(t, q)))
		if err != nil || len(b) < 2 {
			t.Fatalf("%v (%d bytes)", err, len(b))
		}
		m := new(dns.Msg)
		if err := m.Unpack(b[2:]); err != nil || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 2 {
			t.Fatalf("%v %v", m, err)
		}
		return m
	}
	if a := ask(dnstest.Query("example.", dns.TypeA)); a.IsEdns0() != nil || h.ready.Load() != 1 {
		t.Fatalf("plain query: ready path %d times, OPT %v", h.ready.Load(), a.IsEdns0())
	}
	if a := ask(dnstest.Query("example.", dns.TypeA).SetEdns0(1232, false)); !wantsPadding(a) || h.ready.Load() != 1 {
		t.Fatalf("EDNS(0) query: padded %v, ready path %d times", wantsPadding(a), h.ready.Load())
	}
}
