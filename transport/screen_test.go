package transport

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// FuzzScreen feeds arbitrary bytes through screening and the error reply:
// nothing may panic, and every reply must parse and echo the ID.
func FuzzScreen(f *testing.F) {
	q := dnstest.Query("example.", dns.TypeA)
	q.SetEdns0(1232, true)
	b, _ := q.Pack()
	f.Add(b)
	f.Add(b[:12])
	f.Add([]byte{0, 1, 0x78, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, allowed := range []bool{true, false} {
			sc := screen(raw, allowed, allowed)
			if sc.verdict != reject {
				continue
			}
			out, err := appendErrorReply(make([]byte, maxMsgLen), raw, sc.msg, sc.rcode, 1232)
			if err != nil {
				continue // an OPT miekg will not pack back; the query is not answered
			}
			m := new(dns.Msg)
			if err := m.Unpack(out); err != nil {
				t.Fatalf("error reply does not parse: %v", err)
			}
			if m.Id != uint16(raw[0])<<8|uint16(raw[1]) || !m.Response {
				t.Fatalf("error reply id %d response %v", m.Id, m.Response)
			}
		}
	})
}

func TestMaxUDPResponse(t *testing.T) {
	cases := []struct {
		edns, advertised, want int
	}{
		{0, 1232, 512},
		{100, 1232, 512},
		{512, 1232, 512},
		{1000, 1232, 1000},
		{4096, 1232, 1232},
		{65535, 4096, 4096},
	}
	for _, tc := range cases {
		q := dnstest.Query("example.", dns.TypeA)
		if tc.edns != 0 {
			q.SetEdns0(uint16(tc.edns), false)
		}
		if got := maxUDPResponse(q, tc.advertised); got != tc.want {
			t.Errorf("EDNS %d advertised %d: %d, want %d", tc.edns, tc.advertised, got, tc.want)
		}
	}
}

// withCookie is a query for name carrying a COOKIE option of n octets, and
// then the options in more.
func withCookie(name string, n int, more ...dns.EDNS0) *dns.Msg {
	m := dnstest.Query(name, dns.TypeA)
	m.SetEdns0(1232, false)
	cookie := &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(make([]byte, n))}
	opt := m.IsEdns0()
	opt.Option = append(append(opt.Option, cookie), more...)
	return m
}

// TestMalformedCookieFormErr: RFC 7873 5.2.2, a COOKIE option that is
// neither a Client Cookie alone (8 octets) nor one with a Server Cookie (16
// to 40) gets FORMERR, with our OPT, over UDP and TCP alike.
func TestMalformedCookieFormErr(t *testing.T) {
	cases := []struct {
		octets    int
		wantRcode int
	}{
		{0, dns.RcodeFormatError},
		{1, dns.RcodeFormatError},
		{5, dns.RcodeFormatError},
		{7, dns.RcodeFormatError},
		{8, dns.RcodeSuccess},
		{9, dns.RcodeFormatError},
		{15, dns.RcodeFormatError},
		{16, dns.RcodeSuccess},
		{40, dns.RcodeSuccess},
		{41, dns.RcodeFormatError},
	}
	udp, tcp, _ := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(1)}})
	for _, net := range []struct{ name, addr string }{{"udp", udp}, {"tcp", tcp}} {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s/%d octets", net.name, tc.octets), func(t *testing.T) {
				raw := mustPack(t, withCookie("example.", tc.octets))
				resp := exchangeRaw(t, net.name, net.addr, raw, 2*time.Second)
				if resp == nil {
					t.Fatal("no response")
				}
				m := new(dns.Msg)
				if err := m.Unpack(resp); err != nil {
					t.Fatalf("unpack response: %v", err)
				}
				if m.Id != binary.BigEndian.Uint16(raw) || !m.Response {
					t.Errorf("id %d response %v, want id %d echoed", m.Id, m.Response, binary.BigEndian.Uint16(raw))
				}
				if m.Rcode != tc.wantRcode {
					t.Errorf("rcode %s, want %s", dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.wantRcode])
				}
				if m.IsEdns0() == nil {
					t.Error("no OPT in the response")
				}
				if wantAnswers := tc.wantRcode == dns.RcodeSuccess; (len(m.Answer) > 0) != wantAnswers {
					t.Errorf("%d answers, want some: %v", len(m.Answer), wantAnswers)
				}
			})
		}
	}
}

// TestMalformedCookieSkipsReadyPath: a query that the ReadyAnswerer would
// answer gets FORMERR instead when its COOKIE is malformed, even when the
// option data ends in bytes shaped like an option-less OPT record (which a
// look at the last 11 bytes took for the query's OPT).
func TestMalformedCookieSkipsReadyPath(t *testing.T) {
	// An option (local/experimental code, RFC 6891 9) whose data ends like
	// an option-less OPT with a 1232-byte buffer.
	fakeOPT := []byte{0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0}
	disguise := &dns.EDNS0_LOCAL{Code: 65001, Data: append([]byte{1, 2, 3}, fakeOPT...)}
	cases := []struct {
		name      string
		q         *dns.Msg
		wantRcode int
	}{
		{"5-octet cookie", withCookie("fast.example.", 5), dns.RcodeFormatError},
		{"41-octet cookie", withCookie("fast.example.", 41), dns.RcodeFormatError},
		{"5-octet cookie disguised as option-less", withCookie("fast.example.", 5, disguise), dns.RcodeFormatError},
		{"8-octet cookie: full path", withCookie("fast.example.", 8), dns.RcodeSuccess},
	}
	h := newBurstReady(t)
	udp, _, _ := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: h}})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := mustPack(t, tc.q)
			if _, ok := readySize(raw, 1232); ok {
				t.Error("readySize lets the query take the fast path")
			}
			resp := exchangeRaw(t, "udp", udp, raw, 2*time.Second)
			m := new(dns.Msg)
			if resp == nil || m.Unpack(resp) != nil {
				t.Fatalf("no valid response: %x", resp)
			}
			if m.Rcode != tc.wantRcode || m.IsEdns0() == nil {
				t.Errorf("rcode %s, OPT %v; want %s with OPT", dns.RcodeToString[m.Rcode], m.IsEdns0() != nil, dns.RcodeToString[tc.wantRcode])
			}
		})
	}
	if n := h.ready.Load(); n != 0 {
		t.Errorf("%d queries answered on the ready path, want 0", n)
	}
	// The same name without options does take it: the handler is not broken.
	if resp := exchangeRaw(t, "udp", udp, mustPack(t, dnstest.Query("fast.example.", dns.TypeA)), 2*time.Second); resp == nil || h.ready.Load() != 1 {
		t.Fatalf("plain query: response %v, ready path %d times; want 1", resp != nil, h.ready.Load())
	}
}

// TestScreenOpcodes: NOTIFY reaches the Handler only when it takes NOTIFY;
// every other opcode but QUERY is NOTIMP either way.
func TestScreenOpcodes(t *testing.T) {
	cases := []struct {
		opcode      int
		notify      bool
		wantVerdict verdict
	}{
		{dns.OpcodeQuery, false, serve},
		{dns.OpcodeQuery, true, serve},
		{dns.OpcodeNotify, false, reject},
		{dns.OpcodeNotify, true, serve},
		{dns.OpcodeUpdate, true, reject},
		{dns.OpcodeStatus, true, reject},
		{dns.OpcodeIQuery, true, reject},
	}
	for _, tc := range cases {
		q := dnstest.Query("example.", dns.TypeSOA)
		q.Opcode = tc.opcode
		raw, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		sc := screen(raw, true, tc.notify)
		if sc.verdict != tc.wantVerdict {
			t.Errorf("opcode %s notify %v: verdict %d, want %d", dns.OpcodeToString[tc.opcode], tc.notify, sc.verdict, tc.wantVerdict)
		}
		if sc.verdict == reject && sc.rcode != dns.RcodeNotImplemented {
			t.Errorf("opcode %s notify %v: rcode %s, want NOTIMP", dns.OpcodeToString[tc.opcode], tc.notify, dns.RcodeToString[sc.rcode])
		}
	}
}
