package dnstest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestWorldExchange: each kind of server behaviour gives what a resolver
// would see on a wire.
func TestWorldExchange(t *testing.T) {
	addr := netip.MustParseAddrPort("127.98.200.1:53")
	answer := func(w dns.ResponseWriter, q *dns.Msg) { _ = w.WriteMsg(new(dns.Msg).SetReply(q)) }
	for _, tc := range []struct {
		name    string
		h       dns.HandlerFunc // nil: no server at addr
		tcp     bool
		wantErr error
	}{
		{"answer", answer, false, nil},
		{"raw bytes", func(w dns.ResponseWriter, q *dns.Msg) {
			b, _ := new(dns.Msg).SetReply(q).Pack()
			_, _ = w.Write(b)
		}, false, nil},
		{"drop", func(dns.ResponseWriter, *dns.Msg) {}, false, context.DeadlineExceeded},
		{"junk", func(w dns.ResponseWriter, _ *dns.Msg) { _, _ = w.Write([]byte{1, 2, 3}) }, false, context.DeadlineExceeded},
		{"slower than the timeout", func(w dns.ResponseWriter, q *dns.Msg) {
			time.Sleep(200 * time.Millisecond)
			answer(w, q)
		}, false, context.DeadlineExceeded},
		{"no server", nil, false, context.DeadlineExceeded},
		{"TCP is told apart", func(w dns.ResponseWriter, q *dns.Msg) {
			if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
				answer(w, q)
			}
		}, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWorld()
			if tc.h != nil {
				w.Handle(addr, tc.h)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
			defer cancel()
			q := Query("www.example.test.", dns.TypeA, NoRD)
			reply, err := w.Exchange(ctx, addr, q, tc.tcp)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && (reply == nil || reply.Id != q.Id || !reply.Response) {
				t.Fatalf("reply %v", reply)
			}
			if want := map[bool]int{true: 1, false: 0}[tc.h != nil]; w.Queries(addr) != want {
				t.Fatalf("%d queries counted, want %d", w.Queries(addr), want)
			}
		})
	}
}

func TestQuery(t *testing.T) {
	q := Query("a.test.", dns.TypeAAAA, NoRD, EDNS(1232, true))
	if q.RecursionDesired || q.Question[0].Name != "a.test." || q.Question[0].Qtype != dns.TypeAAAA {
		t.Fatalf("query %v", q)
	}
	if opt := q.IsEdns0(); opt == nil || opt.UDPSize() != 1232 || !opt.Do() {
		t.Fatalf("OPT %v", q.IsEdns0())
	}
	if q := Query("a.test.", dns.TypeA); !q.RecursionDesired || q.IsEdns0() != nil {
		t.Fatalf("plain query %v", q)
	}
}

func TestEDE(t *testing.T) {
	m := Query("a.test.", dns.TypeA)
	if EDE(m) != nil || EDECode(m) != -1 {
		t.Fatal("EDE found in a message without OPT")
	}
	m.SetEdns0(1232, false)
	if EDECode(m) != -1 {
		t.Fatal("EDE found in an OPT without one")
	}
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeDNSBogus})
	if EDECode(m) != int(dns.ExtendedErrorCodeDNSBogus) || EDE(m).InfoCode != dns.ExtendedErrorCodeDNSBogus {
		t.Fatalf("EDE %v", EDE(m))
	}
}
