package resolver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
)

func TestTrace(t *testing.T) {
	h := memHierarchy(t)
	r := h.resolver(t, nil)
	var events []TraceEvent
	ctx := WithTrace(ctxT(t), func(e TraceEvent) { events = append(events, e) })
	if _, err := r.Resolve(ctx, "www.example.test.", dns.TypeA); err != nil {
		t.Fatal(err)
	}
	want := []struct{ server, zone, outcome string }{
		{memAddr(1), ".", "referral to test."},
		{memAddr(2), "test.", "referral to example.test."},
		{memAddr(3), "example.test.", "answer"},
	}
	if len(events) != len(want) {
		t.Fatalf("%d events, want %d: %v", len(events), len(want), events)
	}
	for i, w := range want {
		e := events[i]
		if e.Server.String() != w.server || e.Zone != w.zone || e.Outcome != w.outcome || e.RTT <= 0 || e.Rcode != dns.RcodeSuccess {
			t.Errorf("event %d = %+v, want %v", i, e, w)
		}
		if s := e.String(); !strings.Contains(s, w.server) || !strings.Contains(s, w.outcome) {
			t.Errorf("event %d renders as %q", i, s)
		}
	}
	// A second traced question shows the SRTT the choice was based on.
	events = nil
	if _, err := r.Resolve(ctx, "www2.example.test.", dns.TypeA); err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || !events[0].SRTTKnown || events[0].SRTT <= 0 {
		t.Fatalf("second trace %v, want one event with a known SRTT", events)
	}
}

func TestPrimingInBackground(t *testing.T) {
	h := memHierarchy(t)
	h.root.addRecords(t, "a.root.test. 300 A "+memAddr(1))
	r := h.resolver(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.Start(ctx) // must not block
	deadline := time.Now().Add(2 * time.Second)
	for {
		if e, ok := r.Cache().Get(".", dns.TypeNS, dns.ClassINET); ok && len(e.RRs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("root NS set not primed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	qs := h.root.Queries()
	if len(qs) == 0 || qs[0].Name != "." || qs[0].Qtype != dns.TypeNS {
		t.Fatalf("root saw %v, want a priming query . NS", qs)
	}
	if _, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA); err != nil {
		t.Fatal(err)
	}
}

func TestRePrimingWhenRootNSExpires(t *testing.T) {
	h := memHierarchy(t)
	h.root.addRecords(t, "a.root.test. 300 A "+memAddr(1))
	clk := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	r := h.resolver(t, func(c *Config) { c.Clock = clk })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.Start(ctx)
	waitPrimes := func(want int) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for {
			n := 0
			for _, q := range h.root.Queries() {
				if q.Name == "." && q.Qtype == dns.TypeNS {
					n++
				}
			}
			_, cached := r.Cache().Get(".", dns.TypeNS, dns.ClassINET)
			if n >= want && cached {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d priming queries, want %d", n, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitPrimes(1)
	// The root NS set (TTL 300 in the test root) expires: the next
	// resolution that needs the root primes again.
	clk.Advance(301 * time.Second)
	if _, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA); err != nil {
		t.Fatal(err)
	}
	waitPrimes(2)
}

func TestPrimingFailureFallsBackToHints(t *testing.T) {
	h := memHierarchy(t)
	h.root.set(func(s *testServer) {
		s.hook = func(w dns.ResponseWriter, q *dns.Msg) bool {
			if q.Question[0].Qtype != dns.TypeNS || q.Question[0].Name != "." {
				return false
			}
			m := new(dns.Msg)
			m.SetRcode(q, dns.RcodeServerFailure)
			_ = w.WriteMsg(m)
			return true
		}
	})
	r := h.resolver(t, nil)
	if err := r.Prime(ctxT(t)); err == nil {
		t.Fatal("priming against a failing root succeeded")
	}
	if res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA); err != nil || len(res.Answer) != 1 {
		t.Fatalf("resolution with the hints: %v %v", res, err)
	}
}

func TestPrimedRootWithoutAddressesFallsBackToHints(t *testing.T) {
	h := memHierarchy(t)
	r := h.resolver(t, nil)
	// A primed root NS set naming a server whose address is not known.
	r.Cache().Put(".", dns.TypeNS, dns.ClassINET, &cache.Entry{RRs: []dns.RR{dnstest.MustRR(t, ". 3600 NS x.unknown-root.")}, Rank: cache.RankAnswerAuth}, 3600)
	res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA)
	if err != nil || len(res.Answer) != 1 {
		t.Fatalf("answer %v err %v", res, err)
	}
}
