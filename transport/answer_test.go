package transport

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// packedAnswerA is answerA(n) through Write([]byte), the path of a cache's
// ready-to-send answers.
func packedAnswerA(n int) Handler {
	return HandlerFunc(func(_ context.Context, w ResponseWriter, r *Request) {
		m := new(dns.Msg)
		m.SetReply(r.Msg)
		for i := range n {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: r.Msg.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
				A:   net.IPv4(192, 0, 2, byte(i)).To4(),
			})
		}
		if opt := r.Msg.IsEdns0(); opt != nil {
			m.SetEdns0(1232, opt.Do())
		}
		b, err := m.Pack()
		if err != nil {
			panic(err)
		}
		w.Write(b)
	})
}

// ednsQuery is an A query with EDNS(0) and the given options.
func ednsQuery(name string, bufsize uint16, opts ...dns.EDNS0) *dns.Msg {
	q := dnstest.Query(name, dns.TypeA)
	q.SetEdns0(bufsize, false)
	q.IsEdns0().Option = append(q.IsEdns0().Option, opts...)
	return q
}

func keepaliveOf(m *dns.Msg) (uint16, bool) {
	opt := m.IsEdns0()
	if opt == nil {
		return 0, false
	}
	for _, o := range opt.Option {
		if k, ok := o.(*dns.EDNS0_TCP_KEEPALIVE); ok {
			return k.Timeout, true
		}
	}
	return 0, false
}

func unpackT(t *testing.T, b []byte) *dns.Msg {
	t.Helper()
	if b == nil {
		t.Fatal("no answer")
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestKeepaliveOption: on TCP and DoT a query with edns-tcp-keepalive gets
// our idle timeout in 100 ms units back (RFC 7828 3.3.2), through WriteMsg
// and through Write; a query without it gets none; UDP ignores it
// (RFC 7828 3.3.1) and never sends it.
func TestKeepaliveOption(t *testing.T) {
	keep := &dns.EDNS0_TCP_KEEPALIVE{Code: dns.EDNS0TCPKEEPALIVE}
	handlers := map[string]Handler{"WriteMsg": answerA(1), "Write": packedAnswerA(1)}
	for hname, h := range handlers {
		t.Run(hname, func(t *testing.T) {
			udp, tcp, _ := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: h, IdleTimeout: 7 * time.Second}})
			certs, ctls := testCerts(t)
			dot, _ := startDoT(t, "[::1]:0", DoTConfig{ListenerConfig: ListenerConfig{Handler: h, Certs: certs, IdleTimeout: 2500 * time.Millisecond}})
			dotExchange := func(q *dns.Msg) *dns.Msg {
				c, err := tls.Dial("tcp", dot, ctls)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(3 * time.Second))
				writeFramed(c, mustPack(t, q))
				b, err := readFramed(c)
				if err != nil {
					t.Fatal(err)
				}
				return unpackT(t, b)
			}
			cases := []struct {
				name      string
				exchange  func(q *dns.Msg) *dns.Msg
				q         *dns.Msg
				wantUnits uint16 // 0: no option in the answer
			}{
				{"tcp with option", func(q *dns.Msg) *dns.Msg {
					return unpackT(t, exchangeRaw(t, "tcp", tcp, mustPack(t, q), 3*time.Second))
				},
					ednsQuery("example.", 1232, keep), 70},
				{"tcp without option", func(q *dns.Msg) *dns.Msg {
					return unpackT(t, exchangeRaw(t, "tcp", tcp, mustPack(t, q), 3*time.Second))
				},
					ednsQuery("example.", 1232), 0},
				{"dot with option", dotExchange, ednsQuery("example.", 1232, keep), 25},
				{"dot without option", dotExchange, ednsQuery("example.", 1232), 0},
				{"udp with option is ignored", func(q *dns.Msg) *dns.Msg {
					return unpackT(t, exchangeRaw(t, "udp", udp, mustPack(t, q), 3*time.Second))
				},
					ednsQuery("example.", 1232, keep), 0},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					r := tc.exchange(tc.q)
					if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
						t.Fatalf("answer %v", r)
					}
					units, has := keepaliveOf(r)
					switch {
					case tc.wantUnits == 0 && has:
						t.Fatalf("answer carries edns-tcp-keepalive %d, want none", units)
					case tc.wantUnits != 0 && units != tc.wantUnits:
						t.Fatalf("keepalive %d (present %v), want %d", units, has, tc.wantUnits)
					}
				})
			}
		})
	}
}

func isPadded(m *dns.Msg) bool { return wantsPadding(m) }

// TestPaddingEverywhere: RFC 7830 4 makes padding the answer to a padded
// query a MUST for every responder, within the client's UDP size; DoQ pads
// every EDNS(0) answer (RFC 9250 5.4) and none without EDNS(0) (RFC 7830 4).
func TestPaddingEverywhere(t *testing.T) {
	pad := &dns.EDNS0_PADDING{Padding: make([]byte, 8)}
	for hname, h := range map[string]Handler{"WriteMsg": answerA(2), "Write": packedAnswerA(2)} {
		t.Run(hname, func(t *testing.T) {
			udp, tcp, _ := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: h}})
			certs, ctls := testCerts(t)
			doq := startDoQ(t, "127.0.0.1:0", DoQConfig{ListenerConfig: ListenerConfig{Handler: h, Certs: certs}})
			qc := dialDoQ(t, doq, ctls)
			viaDoQ := func(q *dns.Msg) []byte {
				q.Id = 0
				b, err := doqExchange(qc, frame(mustPack(t, q)))
				if err != nil || len(b) < 2 {
					t.Fatalf("doq: %v", err)
				}
				return b[2:]
			}
			viaUDP := func(q *dns.Msg) []byte { return exchangeRaw(t, "udp", udp, mustPack(t, q), 3*time.Second) }
			viaTCP := func(q *dns.Msg) []byte { return exchangeRaw(t, "tcp", tcp, mustPack(t, q), 3*time.Second) }
			cases := []struct {
				name     string
				exchange func(*dns.Msg) []byte
				q        *dns.Msg
				wantPad  bool
				maxLen   int
			}{
				{"tcp padded", viaTCP, ednsQuery("example.", 1232, pad), true, maxMsgLen},
				{"tcp unpadded", viaTCP, ednsQuery("example.", 1232), false, maxMsgLen},
				{"udp padded", viaUDP, ednsQuery("example.", 1232, pad), true, 1232},
				{"udp padded, 512-byte client: no block past its size", viaUDP, ednsQuery("example.", 512, pad), true, 512},
				{"udp unpadded", viaUDP, ednsQuery("example.", 1232), false, 1232},
				{"doq edns unpadded", viaDoQ, ednsQuery("example.", 1232), true, maxMsgLen},
				{"doq without edns", viaDoQ, dnstest.Query("example.", dns.TypeA), false, maxMsgLen},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					b := tc.exchange(tc.q)
					r := unpackT(t, b)
					if len(r.Answer) != 2 || r.Truncated {
						t.Fatalf("answer %v", r)
					}
					if isPadded(r) != tc.wantPad {
						t.Fatalf("padded %v, want %v", isPadded(r), tc.wantPad)
					}
					if len(b) > tc.maxLen {
						t.Fatalf("answer of %d bytes passes the client's %d", len(b), tc.maxLen)
					}
					if tc.wantPad && tc.maxLen >= paddingBlock && len(b)%paddingBlock != 0 {
						t.Fatalf("padded answer is %d bytes, not a multiple of %d", len(b), paddingBlock)
					}
				})
			}
		})
	}
}

func TestKeepaliveUnits(t *testing.T) {
	cases := []struct {
		idle time.Duration
		want uint16
	}{
		{10 * time.Second, 100},
		{50 * time.Millisecond, 1},
		{250 * time.Millisecond, 2},
		{2 * time.Hour, 0xFFFF},
	}
	for _, tc := range cases {
		if got := keepaliveUnits(tc.idle); got != tc.want {
			t.Errorf("keepaliveUnits(%v) = %d, want %d", tc.idle, got, tc.want)
		}
	}
}
