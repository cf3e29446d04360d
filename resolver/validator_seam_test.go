package resolver

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/security"
)

// TestValidatorSeam: the resolver's DNSSEC part fetches its keys through
// the resolver, drawing from the client question's Budget; CD=1 questions
// are not validated; a bogus answer is SERVFAIL with the validator's EDE.
// The root of the test hierarchy is unsigned, so an anchor for it makes
// every answer bogus (no DNSKEY).
func TestValidatorSeam(t *testing.T) {
	h := memHierarchy(t, "example.test. SOA ns1.example.test. h.example.test. 1 3600 600 86400 60")
	anchor := dnstest.MustRR(t, ". 3600 IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D")
	validating := func() *Resolver {
		return h.resolver(t, func(c *Config) {
			c.Clock = clock.System{}
			c.DNSSEC = &DNSSECConfig{Anchors: []dns.RR{anchor}}
		})
	}
	q := dns.Question{Name: "www.example.test.", Qtype: dns.TypeA, Qclass: dns.ClassINET}

	// The same question with and without validation, each on a cold
	// resolver: the key fetches are counted in the client Budget.
	r := validating()
	cdBudget := newBudget(&r.limits, time.Now())
	if res := r.runWith(ctxT(t), q, true, cdBudget); res.Rcode != dns.RcodeSuccess || res.Security != security.Indeterminate {
		t.Fatalf("CD=1: %s %v, want NOERROR indeterminate", dns.RcodeToString[res.Rcode], res.Security)
	}
	r = validating()
	b := newBudget(&r.limits, time.Now())
	res := r.runWith(ctxT(t), q, false, b)
	if res.Rcode != dns.RcodeServerFailure || res.Security != security.Bogus || res.ExtendedError() == nil || res.ExtendedError().EDE != dns.ExtendedErrorCodeDNSKEYMissing {
		t.Fatalf("bogus: %s %v err %v, want SERVFAIL bogus with EDE %d", dns.RcodeToString[res.Rcode], res.Security, res.ExtendedError(), dns.ExtendedErrorCodeDNSKEYMissing)
	}
	if b.Queries() <= cdBudget.Queries() {
		t.Fatalf("budget queries: %d validated, %d with CD=1: the key fetches were not drawn from the client budget", b.Queries(), cdBudget.Queries())
	}

	// Through Exchange: SERVFAIL without AD; CD=1 gets the data.
	m, _ := r.Exchange(ctxT(t), dnstest.Query("www.example.test.", dns.TypeA, dnstest.EDNS(4096, false)))
	if m.Rcode != dns.RcodeServerFailure || m.AuthenticatedData {
		t.Fatalf("bogus via Exchange: %s AD=%v", dns.RcodeToString[m.Rcode], m.AuthenticatedData)
	}
	cd := dnstest.Query("www.example.test.", dns.TypeA, dnstest.EDNS(4096, false))
	cd.CheckingDisabled = true
	if m, res := r.Exchange(ctxT(t), cd); m.Rcode != dns.RcodeSuccess || res.Security != security.Indeterminate {
		t.Fatalf("CD=1 via Exchange: %s %v", dns.RcodeToString[m.Rcode], res.Security)
	}
}
