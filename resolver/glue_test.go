package resolver

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
)

// glueHierarchy is root (p.1) -> test. (p.2) -> example.test. (p.3), where
// test. gives the glue of ns1.example.test. with glueTTL and the child
// zone says its own address is childAddr.
func glueHierarchy(t *testing.T, p string, glueTTL, childAddr string) *hierarchy {
	t.Helper()
	root := startServer(t, p+"1", zone(t, ".",
		". SOA a.root.test. hostmaster.root.test. 1 3600 600 86400 3600",
		". NS a.root.test.",
		"test. NS ns.nic.test.",
		"ns.nic.test. A "+p+"2",
	))
	tld := startServer(t, p+"2", zone(t, "test.",
		"test. SOA ns.nic.test. hostmaster.nic.test. 1 3600 600 86400 600",
		"test. NS ns.nic.test.",
		"ns.nic.test. A "+p+"2",
		"example.test. 3600 NS ns1.example.test.",
		"ns1.example.test. "+glueTTL+" A "+p+"3",
	))
	z := startServer(t, p+"3", zone(t, "example.test.",
		"example.test. SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 60",
		"example.test. 3600 NS ns1.example.test.",
		"ns1.example.test. 3600 A "+childAddr,
		"www.example.test. A 192.0.2.80",
		"other.example.test. A 192.0.2.81",
		"third.example.test. A 192.0.2.82",
	))
	return &hierarchy{root: root, tld: tld, zone: z, hints: hintsFor(p + "1")}
}

// TestExpiredGlueFetchedAgain (issue 15 point 3): the glue of an
// in-bailiwick name server expires while the delegation's NS RRset is
// still cached. The next question asks the parent for the delegation
// again (fresh glue), as Unbound does with a delegation point that has no
// address left, instead of SERVFAIL (RFC 1034 5.3.3).
func TestExpiredGlueFetchedAgain(t *testing.T) {
	p := "127.97.12."
	h := glueHierarchy(t, p, "2", p+"3")
	r := newTestResolver(t, h.hints, nil)
	if res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA); err != nil || len(answerAddrs(res)) != 1 {
		t.Fatalf("first question: %v %v", res, err)
	}
	r.cfg.Clock.(*clock.Manual).Advance(10 * time.Second)
	if _, ok := r.cache.Get("ns1.example.test.", dns.TypeA, dns.ClassINET); ok {
		t.Fatal("the glue did not expire")
	}
	if _, ok := r.cache.Get("example.test.", dns.TypeNS, dns.ClassINET); !ok {
		t.Fatal("the NS RRset expired too")
	}
	res, err := r.Resolve(ctxT(t), "other.example.test.", dns.TypeA)
	if err != nil || len(answerAddrs(res)) != 1 {
		t.Fatalf("question after the glue expired: %v %v", res, err)
	}
}

// TestParentGlueWhenChildAddressFails (issue 15 point 4): the child zone
// says its name server is at an address where nothing answers, while the
// parent's glue has the working one. Once the child's (authoritative)
// address replaced the glue in the cache, the parent-side address is
// still tried before the server is given up.
func TestParentGlueWhenChildAddressFails(t *testing.T) {
	p := "127.97.13."
	h := glueHierarchy(t, p, "3600", p+"9")
	r := newTestResolver(t, h.hints, nil)
	if res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA); err != nil || len(answerAddrs(res)) != 1 {
		t.Fatalf("first question: %v %v", res, err)
	}
	// The child's authoritative answer for its name server's address
	// (as a lookup of it after the glue expired gets) replaces the glue.
	child := dnstest.MustRR(t, "ns1.example.test. 3600 A "+p+"9")
	if !r.cache.Put("ns1.example.test.", dns.TypeA, dns.ClassINET, &cache.Entry{RRs: []dns.RR{child}, Rank: cache.RankAnswerAuth}, 3600) {
		t.Fatal("the child's address was not cached")
	}
	res, err := r.Resolve(ctxT(t), "other.example.test.", dns.TypeA)
	if err != nil || len(answerAddrs(res)) != 1 {
		t.Fatalf("question once the child's address replaced the glue: %v %v", res, err)
	}
}

// TestParentGlueAfterChildAnswer is TestParentGlueWhenChildAddressFails
// the way it happens: the glue expires, the name server's address is
// asked of the zone itself (which gives its own, wrong one, replacing the
// glue in the cache), and the next question still reaches the server at
// the parent's address.
func TestParentGlueAfterChildAnswer(t *testing.T) {
	p := "127.97.14."
	h := glueHierarchy(t, p, "2", p+"9")
	r := newTestResolver(t, h.hints, nil)
	if res, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA); err != nil || len(answerAddrs(res)) != 1 {
		t.Fatalf("first question: %v %v", res, err)
	}
	r.cfg.Clock.(*clock.Manual).Advance(10 * time.Second)
	if res, err := r.Resolve(ctxT(t), "ns1.example.test.", dns.TypeA); err != nil || len(answerAddrs(res)) != 1 || answerAddrs(res)[0] != p+"9" {
		t.Fatalf("the zone's own address of its name server: %v %v", res, err)
	}
	for _, name := range []string{"other.example.test.", "third.example.test."} {
		if res, err := r.Resolve(ctxT(t), name, dns.TypeA); err != nil || len(answerAddrs(res)) != 1 {
			t.Fatalf("%s once the zone's address replaced the glue: %v %v", name, res, err)
		}
	}
}
