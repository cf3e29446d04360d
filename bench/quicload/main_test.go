package main

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/transport"
)

// answerA answers every question with one A record.
var answerA = transport.HandlerFunc(func(_ context.Context, w transport.ResponseWriter, r *transport.Request) {
	m := new(dns.Msg).SetReply(r.Msg)
	m.Answer = []dns.RR{&dns.A{
		Hdr: dns.RR_Header{Name: r.Msg.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
		A:   net.IPv4(127, 0, 2, 1),
	}}
	w.WriteMsg(m)
})

type server interface {
	Start() error
	Addrs() []net.Addr
	Shutdown(context.Context) error
}

func start(t *testing.T, s server, err error) string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	for _, a := range s.Addrs() {
		if a.Network() == "udp" {
			return a.String()
		}
	}
	t.Fatal("no UDP listener")
	return ""
}

// TestRunAgainstTransport is the smoke test: each mode gets answers and no
// errors from Sextant's own QUIC front ends, and verification stays on
// without -insecure.
func TestRunAgainstTransport(t *testing.T) {
	doq, err := transport.NewDoQ(transport.DoQConfig{ListenerConfig: transport.ListenerConfig{Addrs: []string{"127.0.0.1:0"}, Handler: answerA}})
	doqAddr := start(t, doq, err)
	doh, err := transport.NewDoH(transport.DoHConfig{ListenerConfig: transport.ListenerConfig{Addrs: []string{"127.0.0.1:0"}, Handler: answerA}})
	dohAddr := start(t, doh, err)
	queries, err := parseQueries(strings.NewReader("a.test A\nb.test AAAA\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ mode, method, addr string }{
		{"doq", "post", doqAddr},
		{"doh3", "post", dohAddr},
		{"doh3", "get", dohAddr},
	} {
		cfg := config{mode: tc.mode, method: tc.method, addr: tc.addr, path: "/dns-query", conns: 2, streams: 4,
			duration: time.Second, timeout: 2 * time.Second, queries: queries, // long enough for QUIC handshakes on a loaded machine
			tls: &tls.Config{InsecureSkipVerify: true}}
		res, err := run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.mode, tc.method, err)
		}
		if res.answers == 0 || res.errors != 0 || res.rcodeOther != 0 {
			t.Errorf("%s %s: %s", tc.mode, tc.method, res.line(cfg))
		}
		cfg.tls = &tls.Config{}
		if _, err := run(context.Background(), cfg); err == nil {
			t.Errorf("%s %s: a self-signed server was accepted without -insecure", tc.mode, tc.method)
		}
	}
}

func TestParseQueries(t *testing.T) {
	for in, want := range map[string]int{"a.test A\n\n; c\nb.test\n": 2, "x.test MX": 1} {
		if q, err := parseQueries(strings.NewReader(in)); err != nil || len(q) != want {
			t.Errorf("%q: %d queries, %v", in, len(q), err)
		}
	}
	for _, in := range []string{"", "a.test BOGUS", "a..b A"} {
		if _, err := parseQueries(strings.NewReader(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

// TestHistogram checks bucket bounds invert and percentiles land within a bucket's width.
func TestHistogram(t *testing.T) {
	for _, us := range []uint64{0, 1, 15, 16, 31, 32, 33, 1000, 123456, 1 << 40} {
		b := bucketOf(us)
		if lo := lowerBound(b); lo > us || (b+1 < 64*16 && lowerBound(b+1) <= us) {
			t.Errorf("%d us: bucket %d lower bound %d", us, b, lo)
		}
	}
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for p, want := range map[float64]time.Duration{50: 500 * time.Microsecond, 99: 990 * time.Microsecond, 100: time.Millisecond} {
		if got := h.percentile(p); got > want || got < want*15/16 {
			t.Errorf("p%g = %v, want about %v", p, got, want)
		}
	}
}
