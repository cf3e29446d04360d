package resolver

import (
	"testing"

	"github.com/miekg/dns"
)

func answerAddrs(res *Result) []string {
	if res == nil {
		return nil
	}
	var out []string
	for _, rr := range res.Answer {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		}
	}
	return out
}

func TestResolveFollowsReferrals(t *testing.T) {
	h := memHierarchy(t)
	r := h.resolver(t, nil)
	res, err := r.Resolve(ctxT(t), "WWW.Example.Test", dns.TypeA)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if got := answerAddrs(res); len(got) != 1 || got[0] != "192.0.2.80" {
		t.Fatalf("answer = %v, want [192.0.2.80]", res.Answer)
	}
	if h.root.count() != 1 || h.tld.count() != 1 || h.zone.count() != 1 {
		t.Fatalf("queries root/tld/zone = %d/%d/%d, want 1/1/1", h.root.count(), h.tld.count(), h.zone.count())
	}
	// A second question in the zone starts at the cached delegation.
	res, err = r.Resolve(ctxT(t), "nope.example.test.", dns.TypeA)
	if err != nil || res.Rcode != dns.RcodeNameError {
		t.Fatalf("nope: rcode %d err %v, want NXDOMAIN", res.Rcode, err)
	}
	if h.root.count() != 1 || h.tld.count() != 1 || h.zone.count() != 2 {
		t.Fatalf("after second question root/tld/zone = %d/%d/%d, want 1/1/2", h.root.count(), h.tld.count(), h.zone.count())
	}
}
