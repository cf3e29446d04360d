package resolver

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/security"
)

// memShared is a SharedCache in memory.
type memShared struct {
	mu sync.Mutex
	m  map[dns.Question]*SharedAnswer
}

func (s *memShared) Get(_ context.Context, q dns.Question) (*SharedAnswer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.m[q]
	return a, ok
}

func (s *memShared) Put(q dns.Question, a *SharedAnswer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[dns.Question]*SharedAnswer{}
	}
	s.m[q] = a
}

// TestSharedCacheAcrossInstances: what one resolver resolved, another with
// the same shared cache answers without a query, with the TTLs counted
// down; CD questions and failures are not shared.
func TestSharedCacheAcrossInstances(t *testing.T) {
	h := basicHierarchy(t, 127, "shared.example.test. 300 A 127.0.0.9")
	shared := &memShared{}
	r1 := newTestResolver(t, h.hints, func(c *Config) { c.SharedCache = shared })
	r2 := newTestResolver(t, h.hints, func(c *Config) { c.SharedCache = shared; c.Clock = r1.cfg.Clock })
	if _, err := r1.Resolve(ctxT(t), "shared.example.test.", dns.TypeA); err != nil {
		t.Fatal(err)
	}
	n := h.root.count() + h.tld.count() + h.zone.count()
	r1.cfg.Clock.(*clock.Manual).Advance(100 * time.Second)
	res, err := r2.Resolve(ctxT(t), "shared.example.test.", dns.TypeA)
	if err != nil || len(res.Answer) != 1 || res.Answer[0].Header().Ttl != 200 {
		t.Fatalf("second instance: %v %v, want the shared answer with 200 s left", res, err)
	}
	if m := h.root.count() + h.tld.count() + h.zone.count(); m != n {
		t.Fatalf("the second instance sent %d queries", m-n)
	}
	// Validating instances take only what validation judged.
	shared.Put(dns.Question{Name: "unchecked.example.test.", Qtype: dns.TypeA, Qclass: dns.ClassINET},
		&SharedAnswer{Answer: []dns.RR{dnstest.MustRR(t, "unchecked.example.test. 300 A 127.0.0.66")}, Security: security.Indeterminate,
			Stored: r1.cfg.Clock.Now(), Expires: r1.cfg.Clock.Now().Add(300 * time.Second)})
	validating := &Resolver{cfg: Config{SharedCache: shared, Clock: r1.cfg.Clock}, dnssec: &dnssec{}}
	if res := validating.fromShared(ctxT(t), dns.Question{Name: "unchecked.example.test.", Qtype: dns.TypeA, Qclass: dns.ClassINET}); res != nil {
		t.Fatalf("a validating instance took an unvalidated answer: %v", res)
	}
	// A failure is not shared.
	h.zone.set(func(s *testServer) { s.drop = true })
	if _, err := r1.Resolve(ctxT(t), "down.example.test.", dns.TypeA); err == nil {
		t.Fatal("answered with the zone down")
	}
	if _, ok := shared.Get(context.Background(), dns.Question{Name: "down.example.test.", Qtype: dns.TypeA, Qclass: dns.ClassINET}); ok {
		t.Fatal("a failure was shared")
	}
}
