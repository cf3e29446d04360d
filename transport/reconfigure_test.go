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

// TestAccessListChangesOnRunningServer: Set on a shared AccessList
// applies to the next query over UDP and on a TCP connection opened
// before the change.
func TestAccessListChangesOnRunningServer(t *testing.T) {
	access := NewAccessList([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	udp, tcp, _ := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(1), Access: access,
		Allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}})
	conn, err := dns.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rcodes := func() (udpRcode, tcpRcode int) {
		t.Helper()
		q := new(dns.Msg).SetQuestion("www.example.", dns.TypeA)
		r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(q, udp)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		if err := conn.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
		rt, err := conn.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		return r.Rcode, rt.Rcode
	}
	if u, c := rcodes(); u != dns.RcodeSuccess || c != dns.RcodeSuccess {
		t.Fatalf("allowed: %d %d", u, c)
	}
	access.Set([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	if u, c := rcodes(); u != dns.RcodeRefused || c != dns.RcodeRefused {
		t.Fatalf("after Set without loopback: %d %d, want REFUSED (Access wins over Allow)", u, c)
	}
	access.Set(nil) // loopback only
	if u, c := rcodes(); u != dns.RcodeSuccess || c != dns.RcodeSuccess {
		t.Fatalf("after Set(nil): %d %d", u, c)
	}
}

func TestRateLimiterReconfigure(t *testing.T) {
	l, err := NewRateLimiter(RateLimitConfig{Disabled: true})
	if err != nil {
		t.Fatal(err)
	}
	now := int64(0)
	l.now = func() int64 { return now }
	client := netip.MustParseAddr("192.0.2.1")
	for range 5000 {
		if l.admit(client) != ratePass {
			t.Fatal("a disabled limiter limited")
		}
	}
	if st := l.Stats(); st.Passed != 0 || l.Enabled() {
		t.Errorf("a disabled limiter counted: %+v, or says it is enabled", st)
	}
	if err := l.Reconfigure(RateLimitConfig{Rate: 10, Burst: 2, Slip: -1}); err != nil {
		t.Fatal(err)
	}
	if !l.Enabled() {
		t.Error("Reconfigure without Disabled left the limiter disabled")
	}
	verdicts := []rateVerdict{l.admit(client), l.admit(client), l.admit(client)}
	if verdicts[0] != ratePass || verdicts[1] != ratePass || verdicts[2] != rateDrop {
		t.Errorf("rate 10 burst 2: %v", verdicts)
	}
	if err := l.Reconfigure(RateLimitConfig{Rate: 10, Exempt: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}); err != nil {
		t.Fatal(err)
	}
	if l.admit(client) != ratePass {
		t.Error("an exempt network added by Reconfigure was limited")
	}
	for _, bad := range []RateLimitConfig{{Rate: -1}, {IPv4Prefix: 16}, {Slots: 1024}} {
		if err := l.Reconfigure(bad); err == nil {
			t.Errorf("Reconfigure(%+v) accepted", bad)
		}
	}
}

// TestSetConnLimitsOnRunningServer: a lowered per-client share refuses
// the next connection but keeps the one open.
func TestSetConnLimitsOnRunningServer(t *testing.T) {
	_, tcp, s := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: answerA(1)}})
	first, err := dns.Dial("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	ask := func(c *dns.Conn) error {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if err := c.WriteMsg(new(dns.Msg).SetQuestion("www.example.", dns.TypeA)); err != nil {
			return err
		}
		_, err := c.ReadMsg()
		return err
	}
	if err := ask(first); err != nil {
		t.Fatal(err)
	}
	if err := s.SetConnLimits(10, ConnLimits{PerClient: 1}); err != nil {
		t.Fatal(err)
	}
	var refused atomic.Bool
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
		second, err := net.Dial("tcp", tcp)
		if err != nil {
			refused.Store(true)
			break
		}
		err = ask(&dns.Conn{Conn: second})
		second.Close()
		if err != nil {
			refused.Store(true)
			break
		}
	}
	if !refused.Load() {
		t.Error("a second connection was served over a per-client limit of 1")
	}
	if err := ask(first); err != nil {
		t.Errorf("the connection open before the change was dropped: %v", err)
	}
	if err := s.SetConnLimits(-1, ConnLimits{}); err == nil {
		t.Error("a negative cap was accepted")
	}
	if err := s.SetConnLimits(2, ConnLimits{Reserve: 2}); err == nil {
		t.Error("a reserve as big as the cap was accepted")
	}
}

// readyFromHandler is a readyHandler told the client's address.
type readyFromHandler struct {
	readyHandler
	remote atomic.Pointer[netip.AddrPort]
}

func (h *readyFromHandler) AnswerReadyFrom(dst, query []byte, maxSize int, remote netip.AddrPort) ([]byte, bool) {
	h.remote.Store(&remote)
	return h.AnswerReady(dst, query, maxSize)
}

func TestReadyAnswererFromGetsTheClient(t *testing.T) {
	ans := new(dns.Msg).SetQuestion("fast.example.", dns.TypeA)
	ans.Response = true
	wire, _ := ans.Pack()
	h := &readyFromHandler{readyHandler: readyHandler{answer: wire}}
	udp, _, _ := startDo53(t, "127.0.0.1:0", Do53Config{ListenerConfig: ListenerConfig{Handler: h}})
	c, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q, _ := new(dns.Msg).SetQuestion("fast.example.", dns.TypeA).Pack()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	c.Write(q)
	buf := make([]byte, 512)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	got := h.remote.Load()
	if h.ready.Load() != 1 || got == nil || got.String() != c.LocalAddr().String() {
		t.Errorf("fast path answers %d, told client %v, want %v", h.ready.Load(), got, c.LocalAddr())
	}
	_ = context.Background
}
