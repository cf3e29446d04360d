package validator

import (
	"context"
	"testing"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/security"
)

// TestValidateParts: each piece of a chain gets its own state, and the
// whole is the worst of them (or worse, when the chain itself is wrong).
func TestValidateParts(t *testing.T) {
	w := testWorld(t)
	ex, abx := w.zones["example."], w.zones["a.b.example."]
	v, _ := newTestValidator(t, w)
	join := func(parts ...[]dns.RR) []dns.RR {
		var out []dns.RR
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	toInsecure := join(ex.signed(t, rr(t, "alias.example. 300 IN CNAME www.insec.example.")), rrs(t, "www.insec.example. 300 IN A 192.0.2.3"))
	wwwABX := abx.signed(t, rr(t, "www.a.b.example. 300 IN A 192.0.2.2"))
	tampered := join(rrs(t, "www.a.b.example. 300 IN A 192.0.2.66"), wwwABX[1:])
	toBogus := join(ex.signed(t, rr(t, "alias.example. 300 IN CNAME www.a.b.example.")), tampered)
	toSecure := join(ex.signed(t, rr(t, "alias.example. 300 IN CNAME www.a.b.example.")), wwwABX)
	toNX := ex.signed(t, rr(t, "alias.example. 300 IN CNAME gone.a.b.example."))
	_, nx := abx.negative(t, "gone.a.b.example.", dns.TypeA)
	dname := ex.signed(t, rr(t, "old.example. 300 IN DNAME a.b.example."))
	throughDNAME := join(dname, rrs(t, "www.old.example. 300 IN CNAME www.a.b.example."), wwwABX)
	wrongDNAME := join(dname, rrs(t, "www.old.example. 300 IN CNAME www.evil."), wwwABX)

	type want struct {
		name     string
		rtype    uint16
		negative bool
		status   security.Status
	}
	const S, I, B = security.Secure, security.Insecure, security.Bogus
	for _, tc := range []struct {
		name   string
		qname  string
		rcode  int
		answer []dns.RR
		auth   []dns.RR
		status security.Status
		parts  []want
	}{
		{"secure to secure", "alias.example.", 0, toSecure, nil, S, []want{{"alias.example.", dns.TypeCNAME, false, S}, {"www.a.b.example.", dns.TypeA, false, S}}},
		{"secure to insecure", "alias.example.", 0, toInsecure, nil, I, []want{{"alias.example.", dns.TypeCNAME, false, S}, {"www.insec.example.", dns.TypeA, false, I}}},
		{"secure to bogus", "alias.example.", 0, toBogus, nil, B, []want{{"alias.example.", dns.TypeCNAME, false, S}, {"www.a.b.example.", dns.TypeA, false, B}}},
		{"secure to NXDOMAIN", "alias.example.", dns.RcodeNameError, toNX, nx, S, []want{{"alias.example.", dns.TypeCNAME, false, S}, {"gone.a.b.example.", dns.TypeA, true, S}}},
		{"NXDOMAIN without proof", "alias.example.", dns.RcodeNameError, toNX, nil, B, []want{{"alias.example.", dns.TypeCNAME, false, S}, {"gone.a.b.example.", dns.TypeA, true, B}}},
		{"through a DNAME", "www.old.example.", 0, throughDNAME, nil, S, []want{{"old.example.", dns.TypeDNAME, false, S}, {"www.a.b.example.", dns.TypeA, false, S}}},
		// The chain is wrong, not any piece: the parts are all secure and
		// the whole is bogus, which tells the caller not to use them.
		{"CNAME disagreeing with its DNAME", "www.old.example.", 0, wrongDNAME, nil, B, []want{{"old.example.", dns.TypeDNAME, false, S}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := dns.Question{Name: tc.qname, Qtype: dns.TypeA, Qclass: dns.ClassINET}
			res, parts := v.ValidateParts(context.Background(), q, tc.rcode, tc.answer, tc.auth, NewBudget(DefaultLimits()))
			if res.Status != tc.status {
				t.Fatalf("status %v (%s), want %v", res.Status, res.Reason, tc.status)
			}
			if len(parts) != len(tc.parts) {
				t.Fatalf("%d parts %+v, want %d", len(parts), parts, len(tc.parts))
			}
			for i, p := range parts {
				w := tc.parts[i]
				if p.Name != w.name || p.Type != w.rtype || p.Negative != w.negative || p.Result.Status != w.status {
					t.Errorf("part %d: %s %s negative=%v %v (%s), want %s %s negative=%v %v", i,
						p.Name, dns.TypeToString[p.Type], p.Negative, p.Result.Status, p.Result.Reason,
						w.name, dns.TypeToString[w.rtype], w.negative, w.status)
				}
			}
			if plain := v.ValidateSections(context.Background(), q, tc.rcode, tc.answer, tc.auth, NewBudget(DefaultLimits())); plain.Status != res.Status || plain.EDE != res.EDE {
				t.Errorf("ValidateSections %+v, ValidateParts %+v", plain, res)
			}
		})
	}
}
