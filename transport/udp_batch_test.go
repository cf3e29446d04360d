package transport

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// burstReady is a ReadyAnswerer with a canned answer for the name
// "fast.example." (and a panic for "boom.example."), found by comparing raw
// question bytes, so that its fast path allocates nothing. Other names go
// the full way and get NOERROR with no records.
type burstReady struct {
	fastQ, boomQ []byte // wire question section: name, type, class
	answer       []byte // response to fastQ, ID to patch
	ready, full  atomic.Int64
}

func newBurstReady(t testing.TB) *burstReady { return newBurstReadySized(t, 1) }

// newBurstReadySized answers fast.example. with n A records.
func newBurstReadySized(t testing.TB, n int) *burstReady {
	t.Helper()
	fast := dnstest.Query("fast.example.", dns.TypeA)
	ans := new(dns.Msg).SetReply(fast)
	for i := range n {
		ans.Answer = append(ans.Answer, &dns.A{Hdr: dns.RR_Header{Name: "fast.example.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, byte(i>>8), byte(i)).To4()})
	}
	return &burstReady{
		fastQ:  mustPack(t, fast)[headerLen:],
		boomQ:  mustPack(t, dnstest.Query("boom.example.", dns.TypeA))[headerLen:],
		answer: mustPack(t, ans),
	}
}

func (h *burstReady) AnswerReady(dst, q []byte, maxSize int) ([]byte, bool) {
	if len(q) < headerLen || q[2]&0x80 != 0 || binary.BigEndian.Uint16(q[4:6]) != 1 { // QR set or not one question
		return dst, false
	}
	question := q[headerLen:]
	if binary.BigEndian.Uint16(q[10:12]) == 1 {
		question = question[:len(question)-optNoOptionsLen]
	}
	switch string(question) {
	case string(h.boomQ):
		panic("ready boom")
	case string(h.fastQ):
		if len(h.answer) > maxSize {
			return dst, false
		}
		h.ready.Add(1)
		dst = append(dst, h.answer...)
		dst[0], dst[1] = q[0], q[1]
		return dst, true
	}
	return dst, false
}

func (h *burstReady) ServeDNS(_ context.Context, w ResponseWriter, r *Request) {
	h.full.Add(1)
	w.WriteMsg(new(dns.Msg).SetReply(r.Msg))
}

// sendBurst writes all queries at once from one socket, then reads answers
// until none comes for a while, and returns them by ID.
func sendBurst(t *testing.T, c net.Conn, queries [][]byte) map[uint16]*dns.Msg {
	t.Helper()
	for _, q := range queries {
		if _, err := c.Write(q); err != nil {
			t.Fatal(err)
		}
	}
	got := make(map[uint16]*dns.Msg)
	buf := make([]byte, 65535)
	for {
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := c.Read(buf)
		if err != nil {
			return got
		}
		m := new(dns.Msg)
		if err := m.Unpack(buf[:n]); err != nil {
			t.Fatalf("answer does not parse: %v", err)
		}
		if _, dup := got[m.Id]; dup {
			t.Fatalf("ID %d answered twice", m.Id)
		}
		got[m.Id] = m
	}
}

// TestUDPBurstMixedPaths sends bursts that arrive together (so Linux reads
// them in batches) mixing cache hits, misses, a panicking fast path and
// datagrams to drop, and checks that each query got exactly its own answer
// from the right path and that nothing else was sent.
func TestUDPBurstMixedPaths(t *testing.T) {
	for _, addr := range loopbacks {
		t.Run(addr, func(t *testing.T) {
			h := newBurstReady(t)
			udp, _, _ := startDo53(t, addr, Do53Config{ListenerConfig: ListenerConfig{Handler: h}, UDPSockets: 1})
			c, err := net.Dial("udp", udp)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			type want struct {
				answers int
				rcode   int
			}
			wants := make(map[uint16]want)
			var queries [][]byte
			var fast, slow int64
			for i := range 90 {
				id := uint16(1000 + i)
				var m *dns.Msg
				switch i % 6 {
				case 0, 1, 2:
					m = dnstest.Query("fast.example.", dns.TypeA)
					if i%2 == 0 {
						m.SetEdns0(1232, false)
					}
					wants[id] = want{1, dns.RcodeSuccess}
					fast++
				case 3:
					m = dnstest.Query("slow"+strconv.Itoa(i)+".example.", dns.TypeA)
					wants[id] = want{0, dns.RcodeSuccess}
					slow++
				case 4:
					m = dnstest.Query("boom.example.", dns.TypeA) // dropped after the panic
				case 5:
					m = dnstest.Query("fast.example.", dns.TypeA)
					m.Response = true // a response: dropped
				}
				m.Id = id
				queries = append(queries, mustPack(t, m))
			}
			queries = append(queries, []byte{1, 2, 3}) // runt: dropped
			got := sendBurst(t, c, queries)
			for id, w := range wants {
				m, ok := got[id]
				if !ok {
					t.Errorf("ID %d: no answer", id)
					continue
				}
				if m.Rcode != w.rcode || len(m.Answer) != w.answers {
					t.Errorf("ID %d: rcode %d with %d answers, want %d with %d", id, m.Rcode, len(m.Answer), w.rcode, w.answers)
				}
			}
			if len(got) != len(wants) {
				t.Errorf("%d answers, want %d", len(got), len(wants))
			}
			if r, f := h.ready.Load(), h.full.Load(); r != fast || f != slow {
				t.Errorf("ready path %d, full path %d; want %d and %d", r, f, fast, slow)
			}
		})
	}
}

// TestUDPBurstAllowList checks that clients outside the allow list get
// REFUSED in a burst too, and never the fast path.
func TestUDPBurstAllowList(t *testing.T) {
	h := newBurstReady(t)
	udp, _, _ := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: h, Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, UDPSockets: 1})
	c, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var queries [][]byte
	for i := range 40 {
		m := dnstest.Query("fast.example.", dns.TypeA)
		m.Id = uint16(i + 1)
		queries = append(queries, mustPack(t, m))
	}
	got := sendBurst(t, c, queries)
	if len(got) != len(queries) {
		t.Fatalf("%d answers, want %d", len(got), len(queries))
	}
	for id, m := range got {
		if m.Rcode != dns.RcodeRefused {
			t.Errorf("ID %d: rcode %d, want REFUSED", id, m.Rcode)
		}
	}
	if r := h.ready.Load(); r != 0 {
		t.Errorf("fast path taken %d times for refused clients", r)
	}
}

// TestUDPWildcardReadyAnswerSource checks that fast-path answers on a
// wildcard bind leave from the address queried: the connected client
// socket would drop them otherwise.
func TestUDPWildcardReadyAnswerSource(t *testing.T) {
	if !pktinfoSupported {
		t.Skip("no IP_PKTINFO on this platform")
	}
	cases := []struct{ bind, target string }{
		{"0.0.0.0:0", "127.0.0.2"},
		{"0.0.0.0:0", "127.0.0.1"},
		{"[::]:0", "127.0.0.3"},
		{"[::]:0", "::1"},
	}
	for _, tc := range cases {
		t.Run(tc.bind+"->"+tc.target, func(t *testing.T) {
			h := newBurstReady(t)
			s, err := NewDo53(Do53Config{ListenerConfig: ListenerConfig{Addrs: []string{tc.bind}, Handler: h}, UDPSockets: 1})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(); err != nil {
				t.Skipf("cannot bind %s here: %v", tc.bind, err)
			}
			defer s.Shutdown(context.Background())
			port := s.Addrs()[0].(*net.UDPAddr).Port
			c, err := net.Dial("udp", net.JoinHostPort(tc.target, strconv.Itoa(port)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var queries [][]byte
			for i := range 20 {
				m := dnstest.Query("fast.example.", dns.TypeA)
				m.Id = uint16(i + 1)
				queries = append(queries, mustPack(t, m))
			}
			if got := sendBurst(t, c, queries); len(got) != len(queries) {
				t.Fatalf("%d answers from %s, want %d", len(got), tc.target, len(queries))
			}
			if r := h.ready.Load(); r != int64(len(queries)) {
				t.Errorf("fast path taken %d times, want %d", r, len(queries))
			}
		})
	}
}

// TestUDPBurstLargeReadyAnswers checks fast-path answers bigger than the
// room first set aside for them, on a server that advertises 4096 bytes:
// each arrives whole, and a client with a smaller buffer gets none from the
// fast path (the ReadyAnswerer declines; the full path truncates).
func TestUDPBurstLargeReadyAnswers(t *testing.T) {
	h := newBurstReadySized(t, 80) // about 2.3 KB
	udp, _, _ := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: h, EDNSSize: 4096}, UDPSockets: 1})
	c, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var queries [][]byte
	for i := range 40 {
		m := dnstest.Query("fast.example.", dns.TypeA)
		m.Id = uint16(i + 1)
		size := uint16(4096)
		if i%4 == 3 {
			size = 1232
		}
		m.SetEdns0(size, false)
		queries = append(queries, mustPack(t, m))
	}
	got := sendBurst(t, c, queries)
	if len(got) != len(queries) {
		t.Fatalf("%d answers, want %d", len(got), len(queries))
	}
	for id, m := range got {
		if id%4 == 0 { // asked with 1232
			if r := m.Rcode; r != dns.RcodeSuccess {
				t.Errorf("ID %d: rcode %d", id, r)
			}
			continue
		}
		if len(m.Answer) != 80 || m.Truncated {
			t.Errorf("ID %d: %d records, truncated %v; want 80 whole", id, len(m.Answer), m.Truncated)
		}
	}
	if r, f := h.ready.Load(), h.full.Load(); r != 30 || f != 10 {
		t.Errorf("ready path %d, full path %d; want 30 and 10", r, f)
	}
}
