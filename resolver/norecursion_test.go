package resolver

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

func TestNoRecursionDesiredAnswersFromCacheOnly(t *testing.T) {
	hier := memHierarchy(t)
	r := hier.resolver(t, nil)
	q := dnstest.Query("www.example.test.", dns.TypeA, dnstest.EDNS(4096, false))
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
