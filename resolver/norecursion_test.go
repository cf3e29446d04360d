package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

func query(name string, qtype uint16, edns bool) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true
	if edns {
		q.SetEdns0(4096, false)
	}
	return q
}

func TestNoRecursionDesiredAnswersFromCacheOnly(t *testing.T) {
	hier := basicHierarchy(t, 63)
	r := newTestResolver(t, hier.hints, nil)
	q := query("www.example.test.", dns.TypeA, true)
	q.RecursionDesired = false
	m, res := r.Exchange(ctxT(t), q)
	if m.Rcode != dns.RcodeRefused || res.ExtendedError() == nil || res.ExtendedError().EDE != dns.ExtendedErrorCodeNotAuthoritative || hier.root.count() != 0 {
		t.Fatalf("RD=0 miss: rcode %s err %v, root queries %d", dns.RcodeToString[m.Rcode], res.ExtendedError(), hier.root.count())
	}
	if _, err := r.Resolve(ctxT(t), "www.example.test.", dns.TypeA); err != nil {
		t.Fatal(err)
	}
	n := hier.zone.count()
	m, _ = r.Exchange(ctxT(t), q)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.RecursionDesired || hier.zone.count() != n {
		t.Fatalf("RD=0 hit: %v", m)
	}
}
