package resolver

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
)

// TestServeStale: with the zone's server gone after the data expired,
// clients get the expired data with TTL 30 and EDE 3 (19 for NXDOMAIN);
// with serve-stale off, or off for the zone, SERVFAIL as before.
func TestServeStale(t *testing.T) {
	tests := []struct {
		name    string
		stale   *StaleConfig
		expired time.Duration // how long ago the data expired
		want    bool
	}{
		{"on", &StaleConfig{AnswerAfter: 300 * time.Millisecond}, time.Second, true},
		{"off", nil, time.Second, false},
		{"off for the zone", &StaleConfig{AnswerAfter: 300 * time.Millisecond, Zones: map[string]time.Duration{"example.test.": 0}}, time.Second, false},
		{"past the stale limit", &StaleConfig{AnswerAfter: 300 * time.Millisecond, MaxStale: 30 * time.Second}, 31 * time.Second, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := basicHierarchy(t, 120+i, "data.example.test. 60 A 127.0.0.7")
			r := newTestResolver(t, h.hints, func(c *Config) {
				c.ServeStale = tc.stale
				c.Limits.UpstreamTimeoutInitial = 50 * time.Millisecond
			})
			clk := r.cfg.Clock.(*clock.Manual)
			for _, name := range []string{"data.example.test.", "nx.example.test."} {
				if m, _ := r.Exchange(ctxT(t), dnstest.Query(name, dns.TypeA, dnstest.EDNS(4096, false))); m.Rcode == dns.RcodeServerFailure {
					t.Fatalf("%s: SERVFAIL while the server is up", name)
				}
			}
			h.zone.set(func(s *testServer) { s.drop = true })
			clk.Advance(60*time.Second + tc.expired)

			m, _ := r.Exchange(ctxT(t), dnstest.Query("data.example.test.", dns.TypeA, dnstest.EDNS(4096, false)))
			if !tc.want {
				if m.Rcode != dns.RcodeServerFailure {
					t.Fatalf("data: %v, want SERVFAIL", m)
				}
				return
			}
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].Header().Ttl != staleTTL || dnstest.EDECode(m) != int(dns.ExtendedErrorCodeStaleAnswer) {
				t.Fatalf("data: %v, want the stale A with TTL 30 and EDE 3", m)
			}
			m, _ = r.Exchange(ctxT(t), dnstest.Query("nx.example.test.", dns.TypeA, dnstest.EDNS(4096, false)))
			if m.Rcode != dns.RcodeNameError || dnstest.EDECode(m) != int(dns.ExtendedErrorCodeStaleNXDOMAINAnswer) {
				t.Fatalf("nx: %v, want the stale NXDOMAIN with EDE 19", m)
			}
			// The server is back: once the failure is no longer cached,
			// fresh data again.
			h.zone.set(func(s *testServer) { s.drop = false })
			clk.Advance(10 * time.Minute)
			m, _ = r.Exchange(ctxT(t), dnstest.Query("data.example.test.", dns.TypeA, dnstest.EDNS(4096, false)))
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].Header().Ttl != 60 || dnstest.EDECode(m) != -1 {
				t.Fatalf("after the outage: %v, want the fresh answer", m)
			}
		})
	}
}

// TestPrefetch: a name asked every second with TTL 10 never costs a client
// an upstream query over 60 s: each refresh happens in the background,
// while the cached data has a tenth of its life left. The zone's server
// holds every reply while a client question is in progress, so a question
// that needed the server fails (a miss) whatever the machine's load, and
// lets the background refresh through between questions.
func TestPrefetch(t *testing.T) {
	for _, prefetch := range []bool{true, false} {
		t.Run(map[bool]string{true: "on", false: "off"}[prefetch], func(t *testing.T) {
			h := basicHierarchy(t, map[bool]int{true: 124, false: 125}[prefetch], "hot.example.test. 10 A 127.0.0.8")
			var open atomic.Bool
			open.Store(true)
			h.zone.set(func(s *testServer) {
				s.hook = func(dns.ResponseWriter, *dns.Msg) bool {
					for !open.Load() {
						time.Sleep(time.Millisecond)
					}
					return false // the zone answers
				}
			})
			t.Cleanup(func() { open.Store(true) })
			r := newTestResolver(t, h.hints, func(c *Config) {
				c.Prefetch = prefetch
				// A refresh that times out on a loaded machine would leave the
				// entry to expire: not what this test is about.
				c.Limits.UpstreamTimeoutMin = 2 * time.Second
			})
			clk := r.cfg.Clock.(*clock.Manual)
			if _, err := r.Resolve(ctxT(t), "hot.example.test.", dns.TypeA); err != nil {
				t.Fatal(err)
			}
			misses := 0
			for second := 1; second <= 60; second++ {
				clk.Advance(time.Second)
				open.Store(false)
				ctx, cancel := context.WithTimeout(ctxT(t), 300*time.Millisecond)
				res, err := r.Resolve(ctx, "hot.example.test.", dns.TypeA)
				cancel()
				if err != nil || len(res.Answer) != 1 {
					misses++ // the question needed the server
				}
				open.Store(true)
				waitPrefetches(t, r)
			}
			if prefetch && misses != 0 {
				t.Fatalf("%d client questions needed the server, want 0", misses)
			}
			if !prefetch && misses < 5 {
				t.Fatalf("without prefetch only %d client misses in 60 s of TTL 10: the test shows nothing", misses)
			}
		})
	}
}

// waitPrefetches waits until r runs no prefetch.
func waitPrefetches(t *testing.T, r *Resolver) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.prefetchesRunning() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("prefetch did not end")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestServeStaleWhenRefreshIsSlow: a refresh slower than AnswerAfter gives
// the client the stale data at AnswerAfter, and goes on to refresh the
// cache for the next client.
func TestServeStaleWhenRefreshIsSlow(t *testing.T) {
	h := basicHierarchy(t, 126, "data.example.test. 60 A 127.0.0.7")
	r := newTestResolver(t, h.hints, func(c *Config) {
		c.ServeStale = &StaleConfig{AnswerAfter: 100 * time.Millisecond}
		c.Limits.UpstreamTimeoutMin = 2 * time.Second // the slow server is slow, not dead
	})
	clk := r.cfg.Clock.(*clock.Manual)
	if _, err := r.Resolve(ctxT(t), "data.example.test.", dns.TypeA); err != nil {
		t.Fatal(err)
	}
	h.zone.set(func(s *testServer) { s.delay = 500 * time.Millisecond })
	clk.Advance(61 * time.Second)
	m, _ := r.Exchange(ctxT(t), dnstest.Query("data.example.test.", dns.TypeA, dnstest.EDNS(4096, false)))
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].Header().Ttl != staleTTL || dnstest.EDECode(m) != int(dns.ExtendedErrorCodeStaleAnswer) {
		t.Fatalf("%v, want the stale answer before the slow server replied", m)
	}
	// The refresh lands in the cache.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if e, ok := r.Cache().Get("data.example.test.", dns.TypeA, dns.ClassINET); ok && r.Cache().Remaining(e) == 60 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the refresh never reached the cache")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
