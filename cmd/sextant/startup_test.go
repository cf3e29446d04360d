package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Issue 15 point 1 on 127.97.200.0/24 (the block, 127.97.0.0/16).
const (
	lateRootAddr = "127.97.200.1"
	lateListen   = "127.97.200.53:53"
)

// startLateRoot starts a root server at addr that answers everything with
// authority: the root NS set (priming), late.example. A, and NODATA for
// any other name.
func startLateRoot(t *testing.T, addr string) {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		qq := q.Question[0]
		rr := func(s string) dns.RR { r, _ := dns.NewRR(s); return r }
		switch name := strings.ToLower(qq.Name); {
		case name == "." && qq.Qtype == dns.TypeNS:
			m.Answer = []dns.RR{rr(". 3600 NS a.root.late.")}
			m.Extra = []dns.RR{rr("a.root.late. 3600 A " + addr)}
		case name == "late.example." && qq.Qtype == dns.TypeA:
			m.Answer = []dns.RR{rr("late.example. 300 A 192.0.2.1")}
		default:
			m.Ns = []dns.RR{rr(". 300 SOA a.root.late. hostmaster.late. 1 3600 600 86400 300")}
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", net.JoinHostPort(addr, "53"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "53"))
	if err != nil {
		t.Fatal(err)
	}
	udp, tcp := &dns.Server{PacketConn: pc, Handler: h}, &dns.Server{Listener: ln, Handler: h}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { _ = udp.Shutdown(); _ = tcp.Shutdown() })
}

// TestServeStartsBeforeTheNetwork (issue 15 point 1): `sextant serve`
// starts while its root server is not up yet, so priming fails. The root
// comes up; the first client question is answered (a real attempt, not the
// failure of the priming that nobody asked for) and primes the root.
func TestServeStartsBeforeTheNetwork(t *testing.T) {
	hints := filepath.Join(t.TempDir(), "root.hints")
	if err := os.WriteFile(hints, []byte(". 3600000 NS a.root.late.\na.root.late. 3600000 A "+lateRootAddr+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"serve", "--listen", lateListen, "--root-hints", hints, "--no-dnssec"}, out, out)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exit:
		case <-time.After(5 * time.Second):
			t.Error("serve did not shut down")
		}
	})
	waitForLog(t, out, "priming failed")

	startLateRoot(t, lateRootAddr)
	c := &dns.Client{Timeout: 3 * time.Second}
	q := new(dns.Msg).SetQuestion("late.example.", dns.TypeA)
	m, _, err := c.Exchange(q, lateListen)
	if err != nil || m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
		t.Fatalf("first client question after the root came up: %v %v\n%s", m, err, out.String())
	}
	// The question started a fresh priming: the root NS set is cached.
	cached := new(dns.Msg).SetQuestion(".", dns.TypeNS)
	cached.RecursionDesired = false
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m, _, err := c.Exchange(cached, lateListen)
		if err == nil && m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("root NS set not primed after the client question: %v %v\n%s", m, err, out.String())
		}
	}
}
