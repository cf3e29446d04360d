package server

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/roothints"
	"github.com/sextant-dns/sextant/transport"
)

func TestRecursionLimiter(t *testing.T) {
	l := newRecursionLimiter(3, 2)
	a1, a2 := netip.MustParseAddr("127.94.1.1"), netip.MustParseAddr("127.94.1.2") // one /24
	b := netip.MustParseAddr("127.94.2.1")
	c := netip.MustParseAddr("127.94.3.1")
	n1, ok1 := l.acquire(a1)
	_, ok2 := l.acquire(a2)
	_, ok3 := l.acquire(a1)
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("per network: %v %v %v, want the third refused", ok1, ok2, ok3)
	}
	_, okB := l.acquire(b)
	_, okC := l.acquire(c)
	if !okB || okC {
		t.Fatalf("total: %v %v, want the fourth refused", okB, okC)
	}
	l.release(n1)
	if _, ok := l.acquire(c); !ok {
		t.Fatal("a released slot was not given again")
	}
	if l.refused.Load() != 2 || len(l.byNetwork) != 3 {
		t.Fatalf("refused %d, networks %d", l.refused.Load(), len(l.byNetwork))
	}
	if network(netip.MustParseAddr("2001:db8:1:2ff::1")) != netip.MustParsePrefix("2001:db8:1:200::/56") {
		t.Fatal("IPv6 network is not the /56")
	}
}

// TestRecursionLimitPerNetwork: a network with its share of questions in
// resolution gets SERVFAIL at once for more; another network does not.
func TestRecursionLimitPerNetwork(t *testing.T) {
	// A root that takes queries and never answers keeps questions in
	// resolution.
	sink, err := net.ListenPacket("udp", "127.94.254.1:53")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	hints, err := roothints.ParseHints(strings.NewReader(". NS a.root.\na.root. A 127.94.254.1\n"), "sink")
	if err != nil {
		t.Fatal(err)
	}
	cfg := resolver.DefaultConfig()
	cfg.Hints, cfg.DisableUpstreamIPv6 = hints, true
	r, err := resolver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := New(r, Config{MaxRecursionsPerNetwork: 1})
	ask := func(ctx context.Context, client, name string) *recorder {
		raw, _ := dnstest.Query(name, dns.TypeA, dnstest.EDNS(4096, false)).Pack()
		q := new(dns.Msg)
		_ = q.Unpack(raw)
		w := &recorder{}
		h.ServeDNS(ctx, w, &transport.Request{Msg: q, Raw: raw, Remote: netip.MustParseAddrPort(client + ":5353"), Proto: transport.UDP, MaxSize: 1232})
		return w
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); ask(ctx, "127.94.10.1", "first.example.") }()
	deadline := time.Now().Add(5 * time.Second)
	for h.limit.acquireCount() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first question never started resolving")
		}
		time.Sleep(time.Millisecond)
	}
	w := ask(context.Background(), "127.94.10.2", "second.example.")
	if w.msg.Rcode != dns.RcodeServerFailure || dnstest.EDE(w.msg) == nil || !strings.Contains(dnstest.EDE(w.msg).ExtraText, "too many") || h.RecursionsRefused() != 1 {
		t.Fatalf("same network: %v (refused %d), want SERVFAIL at once", w.msg, h.RecursionsRefused())
	}
	wg.Add(1)
	go func() { defer wg.Done(); ask(ctx, "127.94.11.1", "third.example.") }()
	for h.limit.acquireCount() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("another network's question was not let through")
		}
		time.Sleep(time.Millisecond)
	}
	if h.RecursionsRefused() != 1 {
		t.Fatalf("another network refused too (%d refusals)", h.RecursionsRefused())
	}
	cancel()
	wg.Wait()
}
