package transport

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestReadySize(t *testing.T) {
	plain := new(dns.Msg).SetQuestion("example.", dns.TypeA)
	withOPT := plain.Copy().SetEdns0(4096, true)
	smallOPT := plain.Copy().SetEdns0(100, false)
	withOption := plain.Copy().SetEdns0(1232, false)
	withOption.IsEdns0().Option = append(withOption.IsEdns0().Option, &dns.EDNS0_PADDING{Padding: make([]byte, 8)})
	disguised := plain.Copy().SetEdns0(1232, false)
	disguised.IsEdns0().Option = append(disguised.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: 65001, Data: []byte{0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0}})
	twoQ := plain.Copy()
	twoQ.Question = append(twoQ.Question, twoQ.Question[0])
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name   string
		raw    []byte
		size   int
		wantOK bool
	}{
		{"no EDNS: 512", pack(plain), 512, true},
		{"EDNS 4096 clamped to ours", pack(withOPT), 1232, true},
		{"EDNS below 512 raised", pack(smallOPT), 512, true},
		{"EDNS option: full path", pack(withOption), 0, false},
		{"runt", []byte{1, 2, 3}, 0, false},
		{"ARCOUNT 1 but no OPT at the end", append(pack(plain)[:10], 0, 1), 0, false},
		{"ARCOUNT 0 and bytes after the question", append(pack(plain), 0), 0, false},
		{"option data ending like an option-less OPT", pack(disguised), 0, false},
		{"two questions", pack(twoQ), 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			size, ok := readySize(tc.raw, 1232)
			if ok != tc.wantOK || (ok && size != tc.size) {
				t.Errorf("readySize = %d, %v; want %d, %v", size, ok, tc.size, tc.wantOK)
			}
		})
	}
}

// readyHandler answers from a canned response on the fast path for one
// name and counts which path each query took.
type readyHandler struct {
	ready, full atomic.Int64
	answer      []byte
}

func (h *readyHandler) AnswerReady(dst, query []byte, maxSize int) ([]byte, bool) {
	q := new(dns.Msg)
	if q.Unpack(query) != nil || q.Question[0].Name != "fast.example." || len(h.answer) > maxSize {
		return dst, false
	}
	h.ready.Add(1)
	dst = append(dst, h.answer...)
	dst[0], dst[1] = query[0], query[1]
	return dst, true
}

func (h *readyHandler) ServeDNS(ctx context.Context, w ResponseWriter, r *Request) {
	h.full.Add(1)
	m := new(dns.Msg).SetReply(r.Msg)
	w.WriteMsg(m)
}

func TestUDPReadyAnswerPath(t *testing.T) {
	ans := new(dns.Msg).SetQuestion("fast.example.", dns.TypeA)
	ans.Response = true
	ans.Answer = append(ans.Answer, &dns.A{Hdr: dns.RR_Header{Name: "fast.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)})
	wire, _ := ans.Pack()
	h := &readyHandler{answer: wire}
	srv, err := NewDo53(Do53Config{ListenerConfig: ListenerConfig{Addrs: []string{"127.0.0.1:0"}, Handler: h}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	addr := srv.Addrs()[0].String()
	c := &dns.Client{Timeout: 2 * time.Second}

	fast := new(dns.Msg).SetQuestion("fast.example.", dns.TypeA)
	resp, _, err := c.Exchange(fast, addr)
	if err != nil || resp.Id != fast.Id || len(resp.Answer) != 1 {
		t.Fatalf("fast path: %v %v", err, resp)
	}
	other := new(dns.Msg).SetQuestion("slow.example.", dns.TypeA)
	if _, _, err := c.Exchange(other, addr); err != nil {
		t.Fatal(err)
	}
	// A padded query for the fast name goes the full way (it must be padded).
	padded := fast.Copy().SetEdns0(1232, false)
	padded.IsEdns0().Option = append(padded.IsEdns0().Option, &dns.EDNS0_PADDING{Padding: make([]byte, 4)})
	if _, _, err := c.Exchange(padded, addr); err != nil {
		t.Fatal(err)
	}
	if r, f := h.ready.Load(), h.full.Load(); r != 1 || f != 2 {
		t.Fatalf("ready path %d, full path %d; want 1 and 2", r, f)
	}

	// A client outside the allow list never reaches the fast path: REFUSED.
	denied, err := NewDo53(Do53Config{ListenerConfig: ListenerConfig{Addrs: []string{"127.0.0.1:0"}, Handler: h, Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := denied.Start(); err != nil {
		t.Fatal(err)
	}
	defer denied.Shutdown(context.Background())
	resp, _, err = c.Exchange(fast, denied.Addrs()[0].String())
	if err != nil || resp.Rcode != dns.RcodeRefused {
		t.Fatalf("denied client: %v %v", err, resp)
	}
	if r := h.ready.Load(); r != 1 {
		t.Fatalf("ready path taken %d times, want still 1", r)
	}
}
