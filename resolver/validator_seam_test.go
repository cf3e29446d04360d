package resolver

import (
	"context"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/security"
)

// fakeValidator fetches the zone's SOA through the key source, as a real
// validator fetches DNSKEY and DS, and returns a fixed status.
type fakeValidator struct {
	r             *Resolver
	status        security.Status
	before, after int
	fetchRcode    int
	fetchErr      error
}

func (v *fakeValidator) Validate(ctx context.Context, q dns.Question, rcode int, answer, authority []dns.RR, b *Budget) (security.Status, *Error) {
	v.before = b.Queries()
	m, err := v.r.Query(ctx, "example.test.", dns.TypeSOA)
	v.after = b.Queries()
	v.fetchErr = err
	if m != nil {
		v.fetchRcode = m.Rcode
	}
	if v.status == security.Bogus {
		return v.status, &Error{EDE: dns.ExtendedErrorCodeDNSBogus, Text: "test says bogus"}
	}
	return v.status, nil
}

func TestValidatorSeam(t *testing.T) {
	h := basicHierarchy(t, 80, "example.test. SOA ns1.example.test. h.example.test. 1 3600 600 86400 60")
	fv := &fakeValidator{status: security.Secure}
	r := newTestResolver(t, h.hints, func(c *Config) { c.Validator = fv })
	fv.r = r
	q := query("www.example.test.", dns.TypeA, true)
	q.IsEdns0().SetDo()
	m, res := r.Exchange(ctxT(t), q)
	if res.Security != security.Secure || !m.AuthenticatedData {
		t.Fatalf("security %v AD %v, want secure with AD", res.Security, m.AuthenticatedData)
	}
	if fv.fetchErr != nil || fv.after != fv.before+1 {
		t.Fatalf("key fetch: err %v, budget queries %d -> %d: not drawn from the client budget", fv.fetchErr, fv.before, fv.after)
	}
	// CD=1: no validation.
	q = query("www.example.test.", dns.TypeA, true)
	q.CheckingDisabled = true
	if _, res = r.Exchange(ctxT(t), q); res.Security != security.Indeterminate {
		t.Fatalf("CD=1 gave %v", res.Security)
	}
	// Bogus: SERVFAIL with the validator's EDE.
	fv.status = security.Bogus
	m, res = r.Exchange(ctxT(t), query("www.example.test.", dns.TypeA, true))
	if m.Rcode != dns.RcodeServerFailure || res.Err == nil || res.Err.EDE != dns.ExtendedErrorCodeDNSBogus {
		t.Fatalf("bogus: rcode %d err %v", m.Rcode, res.Err)
	}
}
