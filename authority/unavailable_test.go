package authority

import (
	"testing"

	"github.com/miekg/dns"
)

// TestUnavailableZone: every name of an unavailable zone gets SERVFAIL with
// the EDE (when the client speaks EDNS); other zones answer as before, and
// replacing it with a real zone serves that at once.
func TestUnavailableZone(t *testing.T) {
	z, err := NewZone(testOrigin, parseRecords(t, testOrigin, parentText))
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(z)
	srv.Set(UnavailableZone("sub.example.", dns.ExtendedErrorCodeNotReady, "secondary zone not yet transferred"))
	for _, tc := range []struct {
		name  string
		qtype uint16
		edns  bool
		rcode int
		ede   bool
	}{
		{"sub.example.", dns.TypeSOA, true, dns.RcodeServerFailure, true},
		{"deep.name.sub.example.", dns.TypeA, true, dns.RcodeServerFailure, true},
		{"sub.example.", dns.TypeDNSKEY, false, dns.RcodeServerFailure, false},
		{"example.", dns.TypeSOA, true, dns.RcodeSuccess, false},
	} {
		q := new(dns.Msg)
		q.SetQuestion(tc.name, tc.qtype)
		if tc.edns {
			q.SetEdns0(1232, false)
		}
		r := srv.Answer(q)
		if r.Rcode != tc.rcode {
			t.Errorf("%s %s: rcode %s, want %s", tc.name, dns.TypeToString[tc.qtype], dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
		}
		var got *dns.EDNS0_EDE
		if opt := r.IsEdns0(); opt != nil {
			for _, o := range opt.Option {
				if e, ok := o.(*dns.EDNS0_EDE); ok {
					got = e
				}
			}
		}
		if tc.ede != (got != nil) || (got != nil && (got.InfoCode != dns.ExtendedErrorCodeNotReady || got.ExtraText != "secondary zone not yet transferred")) {
			t.Errorf("%s: EDE %v, want one: %v", tc.name, got, tc.ede)
		}
		if !srv.Covers(tc.name) {
			t.Errorf("%s not covered", tc.name)
		}
	}
	if why, ok := srv.Zone("sub.example.").Unavailable(); !ok || why == "" {
		t.Errorf("Unavailable() = %q, %v", why, ok)
	}
	if srv.Zone("sub.example.").SOA() != nil {
		t.Error("an unavailable zone has an SOA")
	}
}
