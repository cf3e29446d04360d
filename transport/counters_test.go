package transport

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// nxHandler answers NXDOMAIN for "nx." names and NOERROR otherwise, on the
// full path, and "fast.example." on the ready path (readyHandler).
type nxHandler struct{ *readyHandler }

func (h nxHandler) ServeDNS(ctx context.Context, w ResponseWriter, r *Request) {
	m := new(dns.Msg).SetReply(r.Msg)
	if r.Msg.Question[0].Name == "nx." {
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}

// TestResponseCounters sends a known mix over UDP (ready and full path)
// and TCP, from an allowed and a refused client, plus a malformed query,
// and checks every counter exactly.
func TestResponseCounters(t *testing.T) {
	ans := new(dns.Msg).SetQuestion("fast.example.", dns.TypeA)
	ans.Response = true
	counts := NewResponseCounters()
	h := nxHandler{&readyHandler{answer: mustPack(t, ans)}}
	udp, tcp, _ := startDo53(t, "127.99.254.1:0", Do53Config{ListenerConfig: ListenerConfig{
		Handler: h, Responses: counts, Allow: []netip.Prefix{netip.MustParsePrefix("127.99.254.1/32")},
	}})
	send := func(network, src string, q *dns.Msg, wantRcode int) {
		t.Helper()
		raw := mustPack(t, q)
		var la net.Addr = &net.UDPAddr{IP: net.ParseIP(src)}
		if network == "tcp" {
			la = &net.TCPAddr{IP: net.ParseIP(src)}
		}
		target := udp
		if network == "tcp" {
			target = tcp
		}
		c, err := (&net.Dialer{LocalAddr: la, Timeout: 5 * time.Second}).Dial(network, target)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		var n int
		if network == "udp" {
			_, err = c.Write(raw)
			if err == nil {
				n, err = c.Read(buf)
			}
		} else if err = writeFramed(c, raw); err == nil {
			var b []byte
			b, err = readFramed(c)
			n = copy(buf, b)
		}
		if err != nil {
			t.Fatalf("%s %s: %v", network, q.Question[0].Name, err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if r.Rcode != wantRcode {
			t.Fatalf("%s %s: rcode %d, want %d", network, q.Question[0].Name, r.Rcode, wantRcode)
		}
	}
	const allowed, refused = "127.99.254.1", "127.99.254.2"
	for range 3 {
		send("udp", allowed, dnstest.Query("fast.example.", dns.TypeA), dns.RcodeSuccess)
	}
	for range 2 {
		send("udp", allowed, dnstest.Query("slow.example.", dns.TypeA), dns.RcodeSuccess)
	}
	send("udp", allowed, dnstest.Query("nx.", dns.TypeA), dns.RcodeNameError)
	twoQuestions := dnstest.Query("a.example.", dns.TypeA)
	twoQuestions.Question = append(twoQuestions.Question, twoQuestions.Question[0])
	send("udp", allowed, twoQuestions, dns.RcodeFormatError)
	send("udp", refused, dnstest.Query("fast.example.", dns.TypeA), dns.RcodeRefused)
	send("tcp", allowed, dnstest.Query("fast.example.", dns.TypeA), dns.RcodeSuccess)
	send("tcp", allowed, dnstest.Query("nx.", dns.TypeA), dns.RcodeNameError)
	send("tcp", refused, dnstest.Query("nx.", dns.TypeA), dns.RcodeRefused)

	want := map[[2]int]uint64{
		{int(UDP), dns.RcodeSuccess}:     5,
		{int(UDP), dns.RcodeNameError}:   1,
		{int(UDP), dns.RcodeFormatError}: 1,
		{int(UDP), dns.RcodeRefused}:     1,
		{int(TCP), dns.RcodeSuccess}:     1,
		{int(TCP), dns.RcodeNameError}:   1,
		{int(TCP), dns.RcodeRefused}:     1,
	}
	got := map[[2]int]uint64{}
	counts.Each(func(p Proto, rcode int, n uint64) { got[[2]int{int(p), rcode}] = n })
	if len(got) != len(want) {
		t.Errorf("counters %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s rcode %d: %d responses, want %d", Proto(k[0]), k[1], got[k], n)
		}
	}
	if h.ready.Load() != 4 { // 3 over UDP, 1 over TCP: every front end has the fast path
		t.Errorf("%d ready answers, want 4 (the fast path must be counted too)", h.ready.Load())
	}
}

// TestResponseCountersBounds: rcodes past BADCOOKIE share the last slot,
// negative ones the first, and nil counters count nothing.
func TestResponseCountersBounds(t *testing.T) {
	c := NewResponseCounters()
	c.count(UDP, 4095)
	c.count(TCP, -1)
	c.countWire(TLS, []byte{1, 2}) // too short for a header: not counted
	var nilCounts *ResponseCounters
	nilCounts.count(UDP, 0)
	nilCounts.countWire(UDP, make([]byte, headerLen))
	got := map[[2]int]uint64{}
	c.Each(func(p Proto, rcode int, n uint64) { got[[2]int{int(p), rcode}] = n })
	want := map[[2]int]uint64{{int(UDP), RcodeOther}: 1, {int(TCP), 0}: 1}
	if len(got) != len(want) || got[[2]int{int(UDP), RcodeOther}] != 1 || got[[2]int{int(TCP), 0}] != 1 {
		t.Errorf("got %v, want %v", got, want)
	}
}
