package validator

import (
	"context"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/security"
)

// yxLabel is a 50-octet label for names near the 255-octet limit.
var yxLabel = strings.Repeat("y", 50)

// TestValidateResponseYXDOMAIN: RFC 6672 2.2 answers through "x.example.
// DNAME" to a target 130 octets longer than the owner. YXDOMAIN is secure
// only when the signed DNAME is above the name and the substitution is
// indeed over 255 octets.
func TestValidateResponseYXDOMAIN(t *testing.T) {
	w := testWorld(t)
	v, _ := newTestValidator(t, w)
	ex := w.zones["example."]
	long := strings.Repeat("z", 63)
	dname := ex.signed(t, dnstest.MustRR(t, "x.example. 300 IN DNAME "+long+"."+long+".a.b.example."))
	unsigned := dname[:1]
	longName := yxLabel + "." + yxLabel + "." + yxLabel + ".x.example." // 164 octets, 294 substituted
	shortName := yxLabel + ".x.example."                                // fits after substitution
	otherDNAME := ex.signed(t, dnstest.MustRR(t, "old.example. 300 IN DNAME "+long+"."+long+".a.b.example."))
	yx := dns.RcodeYXDomain
	cases := []responseCase{
		{"signed DNAME, too long", longName, dns.TypeA, msg(yx, dname, nil), security.Secure, EDENone},
		{"signed DNAME, too long, CNAME question", longName, dns.TypeCNAME, msg(yx, dname, nil), security.Secure, EDENone},
		{"unsigned DNAME", longName, dns.TypeA, msg(yx, unsigned, nil), security.Bogus, EDERRSIGsMissing},
		{"substitution fits", shortName, dns.TypeA, msg(yx, dname, nil), security.Bogus, EDEDNSSECBogus},
		{"no DNAME", longName, dns.TypeA, msg(yx, nil, nil), security.Bogus, EDEDNSSECBogus},
		{"DNAME not above the name", longName, dns.TypeA, msg(yx, otherDNAME, nil), security.Bogus, EDEDNSSECBogus},
		{"signed data instead", "www.example.", dns.TypeA, msg(yx, ex.signed(t, dnstest.MustRR(t, "www.example. 300 IN A 192.0.2.1")), nil), security.Bogus, EDEDNSSECBogus},
		{"NOERROR with a substitution too long", longName, dns.TypeA, msg(0, dname, nil), security.Bogus, EDEDNSSECBogus},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := v.ValidateResponse(context.Background(), tc.qname, tc.qtype, tc.resp, NewBudget(DefaultLimits()))
			if res.Status != tc.status || res.EDE != tc.ede {
				t.Fatalf("got %v EDE %d (%s), want %v EDE %d", res.Status, res.EDE, res.Reason, tc.status, tc.ede)
			}
			if res.Status == security.Secure && (res.TTL == 0 || res.TTL > 300) {
				t.Fatalf("secure with TTL %d", res.TTL)
			}
		})
	}
}

// TestSubstituteWireLength: the limit is 255 octets of wire form, not of
// presentation text (one octet shorter for a name of ordinary labels).
func TestSubstituteWireLength(t *testing.T) {
	l63 := strings.Repeat("a", 63)
	d := dnstest.MustRR(t, "x.example. 300 IN DNAME b.example.").(*dns.DNAME)
	// b.example. is 11 octets: a prefix of 244 octets makes 255.
	fits := l63 + "." + l63 + "." + l63 + "." + strings.Repeat("c", 51) + "."
	cases := []struct {
		name          string
		in            string
		ok, tooLong   bool
		wantTargetLen int
	}{
		{"255 octets", fits + "x.example.", true, false, 254},
		{"256 octets", l63 + "." + l63 + "." + l63 + "." + strings.Repeat("c", 52) + ".x.example.", false, true, 0},
		{"not below", "x.example.", false, false, 0},
		{"label boundary", "ax.example.", false, false, 0},
	}
	for _, tc := range cases {
		target, ok, tooLong := substitute(tc.in, d)
		if ok != tc.ok || tooLong != tc.tooLong || len(target) != tc.wantTargetLen {
			t.Errorf("%s: substitute = %q (%d) %v %v, want ok %v tooLong %v", tc.name, target, len(target), ok, tooLong, tc.ok, tc.tooLong)
		}
	}
}
