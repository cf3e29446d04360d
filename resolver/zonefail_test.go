package resolver

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// refuseAll makes s answer every query REFUSED.
func refuseAll(s *testServer) {
	s.hook = func(w dns.ResponseWriter, q *dns.Msg) bool {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeRefused)
		_ = w.WriteMsg(m)
		return true
	}
}

// zoneFailureTTL returns how long the zone's failure entry lives, 0 when
// there is none.
func zoneFailureTTL(r *Resolver, zone string) time.Duration {
	e, ok := r.Cache().GetZoneFailure(zone, dns.ClassINET)
	if !ok {
		return 0
	}
	return e.Expires.Sub(e.Stored)
}

// flood resolves n distinct names under zone at once and returns their
// errors.
func flood(t *testing.T, r *Resolver, prefix string, n int) []error {
	t.Helper()
	out := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, out[i] = r.Resolve(ctxT(t), prefix+itoa(i)+".example.test.", dns.TypeA)
		}()
	}
	wg.Wait()
	return out
}

// cachedErrors counts SERVFAIL failures with EDE 13 Cached Error (RFC 8914).
func cachedErrors(errs []error) int {
	n := 0
	for _, err := range errs {
		var re *Error
		if errors.As(err, &re) && re.Rcode == dns.RcodeServerFailure && re.EDE == dns.ExtendedErrorCodeCachedError {
			n++
		}
	}
	return n
}

// warmUpRefused fails the REFUSED zone: zoneLameNames distinct names.
func warmUpRefused(t *testing.T, r *Resolver, h *hierarchy) {
	t.Helper()
	for i := 0; i < zoneLameNames; i++ {
		if zoneFailureTTL(r, "example.test.") != 0 {
			t.Fatalf("the zone failed after %d refused names, want %d", i, zoneLameNames)
		}
		if _, err := r.Resolve(ctxT(t), "warm"+itoa(i)+".example.test.", dns.TypeA); err == nil {
			t.Fatal("a REFUSED zone answered")
		}
	}
	if n := h.zone.count(); n != zoneLameNames {
		t.Fatalf("warm-up sent %d queries, want %d", n, zoneLameNames)
	}
	if ttl := zoneFailureTTL(r, "example.test."); ttl != zoneFailureBase {
		t.Fatalf("zone failure entry %v after %d refused names, want %v", ttl, zoneLameNames, zoneFailureBase)
	}
}

// TestRefusedZoneFlood is issue 8's REFUSED zone: every random name under
// it went upstream. Once the zone has refused a few names it is cached as
// failed: a flood of 500 distinct names sends nothing while the entry
// lives, and one query (the probe) after it expired.
func TestRefusedZoneFlood(t *testing.T) {
	h := memHierarchy(t)
	h.zone.set(refuseAll)
	r := h.resolver(t, nil)
	clk := manualClock(t, r)
	warmUpRefused(t, r, h)

	h.zone.reset()
	res := flood(t, r, "a", 500)
	if n := h.zone.count(); n != 0 {
		t.Fatalf("500 names under a failed zone sent %d upstream queries, want 0", n)
	}
	if n := cachedErrors(res); n != 500 {
		t.Fatalf("%d of 500 answered with the cached failure", n)
	}

	clk.Advance(zoneFailureBase + time.Second)
	res = flood(t, r, "b", 500)
	if n := h.zone.count(); n != 1 {
		t.Fatalf("500 names after the entry expired sent %d upstream queries, want 1 probe", n)
	}
	if n := cachedErrors(res); n != 499 {
		t.Fatalf("%d of 500 answered with the cached failure, want 499", n)
	}
	if ttl := zoneFailureTTL(r, "example.test."); ttl != 2*zoneFailureBase {
		t.Fatalf("after a failed probe the entry lives %v, want %v", ttl, 2*zoneFailureBase)
	}
}

// TestExpiredZoneFailureOneProbe: when a failed zone's entry expires, 50
// questions at once send one probe; the others get the cached failure
// while it runs. For a zone that refuses (slowly) and for a silent one.
func TestExpiredZoneFailureOneProbe(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(s *testServer)
		warmUp int // questions to fail the zone
	}{
		{"REFUSED", func(s *testServer) { refuseAll(s); s.delay = 100 * time.Millisecond }, zoneLameNames},
		{"silent", func(s *testServer) { s.drop = true }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := memHierarchy(t)
			r := h.resolver(t, func(c *Config) {
				c.Limits.UpstreamTimeoutInitial = 500 * time.Millisecond
				c.Limits.UpstreamTimeoutMin = 500 * time.Millisecond
			})
			// Learn the delegation while the zone works, then break it.
			if _, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA); err != nil {
				t.Fatal(err)
			}
			h.zone.set(tc.break_)
			clk := manualClock(t, r)
			for j := 0; j < tc.warmUp; j++ {
				if zoneFailureTTL(r, "example.test.") != 0 {
					t.Fatalf("the zone failed after %d questions, want %d", j, tc.warmUp)
				}
				if _, err := r.Resolve(ctxT(t), "warm"+itoa(j)+".example.test.", dns.TypeA); err == nil {
					t.Fatal("a broken zone answered")
				}
			}
			if zoneFailureTTL(r, "example.test.") == 0 {
				t.Fatal("the zone's failure was not cached")
			}
			h.zone.reset()
			clk.Advance(zoneFailureBase + time.Second)
			res := flood(t, r, "p", 50)
			if n := h.zone.count(); n != 1 {
				t.Fatalf("50 questions after expiry sent %d queries, want 1 probe", n)
			}
			if n := cachedErrors(res); n != 49 {
				t.Fatalf("%d of 50 got the cached failure, want 49", n)
			}
		})
	}
}

// TestZoneFailureBackoff: each failed probe doubles the zone's entry, up
// to 5 minutes; a usable reply clears the history.
func TestZoneFailureBackoff(t *testing.T) {
	h := memHierarchy(t)
	h.zone.set(refuseAll)
	r := h.resolver(t, nil)
	clk := manualClock(t, r)
	warmUpRefused(t, r, h)
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second,
		160 * time.Second, 5 * time.Minute, 5 * time.Minute}
	ttl := zoneFailureBase
	for i, w := range want {
		clk.Advance(ttl + time.Second)
		if _, err := r.Resolve(ctxT(t), "probe"+itoa(i)+".example.test.", dns.TypeA); err == nil {
			t.Fatal("a REFUSED zone answered")
		}
		if ttl = zoneFailureTTL(r, "example.test."); ttl != w {
			t.Fatalf("after %d failed probes the entry lives %v, want %v", i+1, ttl, w)
		}
	}
	// The zone recovers: the probe succeeds and the history is gone.
	h.zone.set(func(s *testServer) { s.hook = nil })
	clk.Advance(ttl + time.Second)
	res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA)
	if err != nil || len(answerAddrs(res)) != 1 {
		t.Fatalf("recovered zone: answer %v err %v", res, err)
	}
	if ttl := zoneFailureTTL(r, "example.test."); ttl != 0 {
		t.Fatalf("failure entry %v after a success", ttl)
	}
	// It fails again: the back-off starts over.
	h.zone.set(refuseAll)
	h.zone.reset()
	warmUpRefused(t, r, h)
}

// TestOneBrokenNameKeepsZone: a server that fails for one name (SERVFAIL,
// asked again and for another type) does not get its zone cached as failed.
func TestOneBrokenNameKeepsZone(t *testing.T) {
	h := memHierarchy(t)
	h.zone.set(func(s *testServer) {
		s.hook = func(w dns.ResponseWriter, q *dns.Msg) bool {
			if canonical(q.Question[0].Name) != "bad.example.test." {
				return false
			}
			m := new(dns.Msg)
			m.SetRcode(q, dns.RcodeServerFailure)
			_ = w.WriteMsg(m)
			return true
		}
	})
	r := h.resolver(t, nil)
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeMX} {
		if _, err := r.Resolve(ctxT(t), "bad.example.test.", qt); err == nil {
			t.Fatal("the broken name answered")
		}
	}
	if ttl := zoneFailureTTL(r, "example.test."); ttl != 0 {
		t.Fatalf("one broken name failed the zone for %v", ttl)
	}
	if res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA); err != nil || len(answerAddrs(res)) != 1 {
		t.Fatalf("answer %v err %v", res, err)
	}
}

// TestDeadServerOneProbe: a server that timed out repeatedly is not asked
// while backed off, and afterwards by one question at a time.
func TestDeadServerOneProbe(t *testing.T) {
	h := memHierarchy(t)
	r := h.resolver(t, func(c *Config) {
		c.Limits.UpstreamTimeoutInitial = 200 * time.Millisecond
	})
	if _, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA); err != nil {
		t.Fatal(err)
	}
	h.zone.set(func(s *testServer) { s.drop = true })
	off := shiftSelectorClock(r)
	for i := 0; i < deadAfterTimeouts; i++ {
		r.sel.failure(h.zone.addr)
	}
	h.zone.reset()
	res := flood(t, r, "d", 20)
	if n := h.zone.count(); n != 0 {
		t.Fatalf("a dead server in back-off got %d queries", n)
	}
	for _, err := range res {
		if rc := rcodeOf(nil, err); rc != dns.RcodeServerFailure {
			t.Fatalf("rcode %d (%v) from a dead zone", rc, err)
		}
	}
	// Back-off over; the zone's failure entry gone too: one probe.
	off.Store(int64(backoffMax))
	r.Cache().DeleteZoneFailure("example.test.", dns.ClassINET)
	r.zoneFails.mu.Lock()
	r.zoneFails.zones.Purge()
	r.zoneFails.mu.Unlock()
	res = flood(t, r, "e", 50)
	if n := h.zone.count(); n != 1 {
		t.Fatalf("50 questions to a dead server after its back-off sent %d queries, want 1 probe", n)
	}
	// The probe timed out: backed off again, no more queries.
	_ = flood(t, r, "f", 20)
	if n := h.zone.count(); n != 1 {
		t.Fatalf("the dead server got %d queries after a failed probe", n)
	}
	// It recovers: after the back-off one probe revives it.
	h.zone.set(func(s *testServer) { s.drop = false })
	off.Store(int64(2 * backoffMax))
	r.Cache().DeleteZoneFailure("example.test.", dns.ClassINET)
	if res, err := r.Resolve(ctxT(t), "revived.example.test.", dns.TypeA); err != nil || res.Rcode != dns.RcodeNameError {
		t.Fatalf("revived server: rcode %d err %v", res.Rcode, err)
	}
	if ok, probe := r.sel.admit(h.zone.addr); !ok || probe {
		t.Fatalf("revived server admit = %v, %v; want a live server", ok, probe)
	}
}
