package server

import (
	"context"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/lab"
	"github.com/sextant-dns/sextant/transport"
)

// TestLatency: every miss is measured, hits (ServeDNS's ready path and the
// front ends' AnswerReady) one in HitSampleEvery by query ID, and
// measuring allocates nothing on the ready path.
func TestLatency(t *testing.T) {
	l := startLab(t, labBase, clock.System{})
	lat := NewLatency()
	hd := New(newResolver(t, l, clock.System{}, false), Config{Latency: lat})
	q := dnstest.Query("www."+lab.SecureAlg13, dns.TypeA, dnstest.EDNS(4096, false))
	raw, _ := q.Pack()
	req := &transport.Request{Msg: q, Raw: raw, Proto: transport.UDP, MaxSize: 1232}
	w := &nullWriter{}
	hd.ServeDNS(context.Background(), w, req) // a miss: resolved and stored
	const hits = 200 * HitSampleEvery
	setID := func(id int) { q.Id, raw[0], raw[1] = uint16(id), byte(id>>8), byte(id) }
	for id := range hits / 2 {
		setID(id)
		hd.ServeDNS(context.Background(), w, req)
	}
	buf := make([]byte, 0, 1500)
	for id := range hits / 2 {
		setID(id)
		if _, ok := hd.AnswerReady(buf, raw, 1232); !ok {
			t.Fatal("no ready answer after the miss")
		}
	}
	if n := lat.Miss.Snapshot().Count; n != 1 {
		t.Errorf("%d misses measured, want 1", n)
	}
	if n := lat.Hit.Snapshot().Count; n != hits/HitSampleEvery {
		t.Errorf("%d of %d hits with IDs 0 to %d measured, want %d", n, hits, hits/2-1, hits/HitSampleEvery)
	}
	if n := lat.Local.Snapshot().Count; n != 0 {
		t.Errorf("%d local answers measured, want 0", n)
	}
	if a := testing.AllocsPerRun(1000, func() { hd.AnswerReady(buf, raw, 1232) }); a != 0 {
		t.Errorf("AnswerReady with latency on: %v allocations, want 0", a)
	}
}
