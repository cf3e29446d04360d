package resolver

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestBudgetExhaustion(t *testing.T) {
	h := memHierarchy(t)
	r := h.resolver(t, func(c *Config) { c.Limits.MaxUpstreamQueries = 2 })
	re := mustFail(t, r, "www.example.test.", dns.TypeA)
	if re.EDE != dns.ExtendedErrorCodeOther || !strings.HasPrefix(re.Text, "budget exceeded: ") {
		t.Fatalf("EDE %d %q, want 0 \"budget exceeded: ...\"", re.EDE, re.Text)
	}
	if h.zone.count() != 0 {
		t.Fatalf("the third query was sent")
	}
	// Budget failures belong to one query and are not cached: with the
	// two referrals cached, the next question fits.
	res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA)
	if err != nil || len(answerAddrs(res)) != 1 {
		t.Fatalf("second attempt: %v %v", res, err)
	}
}

func TestBudgetSharedBySubResolutions(t *testing.T) {
	// NXNSAttack: a delegation to many glueless name servers in a zone
	// that does not answer. The lookups stop at MaxNSAddrLookups.
	p := memPrefix
	h := memHierarchy(t)
	var lines []string
	for i := 0; i < 20; i++ {
		lines = append(lines, "victim.test. 300 NS ns"+itoa(i)+".sink.test.")
	}
	lines = append(lines, "sink.test. 300 NS ns.sink.test.", "ns.sink.test. 300 A "+p+"9")
	h.tld.addRecords(t, lines...)
	sink := memServer(h.world, p+"9", zone(t, "sink.test.",
		"sink.test. SOA ns.sink.test. h.sink.test. 1 3600 600 86400 60", "sink.test. NS ns.sink.test."))
	r := h.resolver(t, nil)
	re := mustFail(t, r, "www.victim.test.", dns.TypeA)
	if n := sink.count(); n > r.Limits().MaxNSAddrLookups {
		t.Fatalf("sink got %d queries, want at most %d (MaxNSAddrLookups)", n, r.Limits().MaxNSAddrLookups)
	}
	if !strings.Contains(re.Text, "name-server address lookups") {
		t.Fatalf("err %v, want the NS lookup limit", re)
	}
	// The broken delegation is remembered: other names under it cost
	// nothing more.
	n := sink.count() + h.tld.count()
	for _, name := range []string{"other.victim.test.", "third.victim.test."} {
		mustFail(t, r, name, dns.TypeA)
	}
	if m := sink.count() + h.tld.count(); m != n {
		t.Fatalf("%d more queries for names under the failed delegation", m-n)
	}
}

func TestDeadlineGivesSERVFAILWithEDE(t *testing.T) {
	h := memHierarchy(t)
	h.zone.set(func(s *testServer) { s.drop = true })
	r := h.resolver(t, func(c *Config) {
		c.Limits.ClientDeadline = 150 * time.Millisecond
		c.Limits.UpstreamTimeoutInitial = time.Second
	})
	start := time.Now()
	res, err := r.Resolve(context.Background(), "www.example.test.", dns.TypeA)
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Fatalf("took %v, deadline 150ms", d)
	}
	var re *Error
	if !errors.As(err, &re) || !strings.Contains(re.Text, "deadline") {
		t.Fatalf("rcode %d err %v, want a deadline error", res.Rcode, err)
	}
}

func TestSingleflight(t *testing.T) {
	h := memHierarchy(t)
	h.zone.set(func(s *testServer) { s.delay = 50 * time.Millisecond })
	r := h.resolver(t, nil)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA)
			if err == nil && len(answerAddrs(res)) != 1 {
				err = errors.New("no address")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if c := h.zone.count(); c != 1 {
		t.Fatalf("zone got %d queries for %d identical concurrent questions, want 1", c, n)
	}
}

func TestLimitsDefaults(t *testing.T) {
	l := Limits{}.withDefaults()
	if l != DefaultLimits() {
		t.Fatalf("zero Limits = %+v, want the defaults", l)
	}
	for name, v := range map[string]int{
		"MaxUpstreamQueries": l.MaxUpstreamQueries, "MaxNSAddrLookups": l.MaxNSAddrLookups,
		"MaxCNAMEChain": l.MaxCNAMEChain,
	} {
		if v <= 0 {
			t.Errorf("%s = %d", name, v)
		}
	}
	if l.MaxUpstreamQueries < 50 || l.MaxUpstreamQueries > 200 || l.MaxNSAddrLookups < 4 || l.MaxNSAddrLookups > 10 ||
		l.MaxCNAMEChain < 10 || l.MaxCNAMEChain > 13 || l.ClientDeadline < 7*time.Second || l.ClientDeadline > 10*time.Second {
		t.Fatalf("defaults outside the anchors: %+v", l)
	}
}

func TestCNAMERestartsShareTheBudget(t *testing.T) {
	p := "127.30.54."
	mk := func(limit int) (*twoTLDs, *Resolver) {
		w := startTwoTLDs(t, 54,
			[]string{"example.test. NS ns.host.org."},
			[]string{"ns.host.org. A " + p + "3", "www.host.org. A 192.0.2.99"},
			[]string{"alias.example.test. CNAME www.host.org."}, nil)
		return w, newTestResolver(t, hintsFor(p+"1"), func(c *Config) {
			c.Upstream = w.world
			c.QNameMinimisation = false
			c.Limits.MaxUpstreamQueries = limit
			c.Limits.MaxHedges = -1 // exact query counts: a reply late on a loaded machine must not draw a hedge
		})
	}
	// root (test.), test. (glueless NS), root (org.), org. (the NS
	// address), example.test. (the CNAME), then the restart at
	// www.host.org: org. again. 6 queries in all.
	w, r := mk(6)
	res, err := r.Resolve(ctxT(t), "alias.example.test.", dns.TypeA)
	if err != nil || len(answerAddrs(res)) != 1 {
		t.Fatalf("with 6 queries: %v %v", res, err)
	}
	for _, s := range []*testServer{w.root, w.test, w.org, w.zone} {
		s.stop()
	}
	_, r = mk(5)
	res, err = r.Resolve(ctxT(t), "alias.example.test.", dns.TypeA)
	var re *Error
	if !errors.As(err, &re) || !strings.Contains(re.Text, "budget exceeded") {
		t.Fatalf("with 5 queries: rcode %d err %v, want the budget to run out after the restart", res.Rcode, err)
	}
}
