package validator

import (
	"context"
	"testing"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/security"
)

// answerOf groups a flat answer section into the RRsets of an Answer, in
// order of first appearance, each with the RRSIGs over it.
func answerOf(rcode int, answer, auth []dns.RR) Answer {
	a := Answer{Rcode: rcode, Authority: auth}
	var sigs []*dns.RRSIG
	for _, set := range groupRRsets(answer) {
		if _, ok := set[0].(*dns.RRSIG); ok {
			sigs = append(sigs, sigsOf(set)...)
			continue
		}
		a.Sets = append(a.Sets, RRset{RRs: set})
	}
	for i, s := range a.Sets {
		h := s.RRs[0].Header()
		for _, sig := range sigs {
			if sig.TypeCovered == h.Rrtype && dnsname.Equal(sig.Hdr.Name, h.Name) {
				a.Sets[i].Sigs = append(a.Sets[i].Sigs, sig)
			}
		}
	}
	return a
}

// TestValidateAnswer: each piece of a chain gets its own state, and the
// whole is the worst of them (or worse, when the chain itself is wrong).
func TestValidateAnswer(t *testing.T) {
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
	toInsecure := join(ex.signed(t, dnstest.MustRR(t, "alias.example. 300 IN CNAME www.insec.example.")), dnstest.MustRRs(t, "www.insec.example. 300 IN A 192.0.2.3"))
	wwwABX := abx.signed(t, dnstest.MustRR(t, "www.a.b.example. 300 IN A 192.0.2.2"))
	tampered := join(dnstest.MustRRs(t, "www.a.b.example. 300 IN A 192.0.2.66"), wwwABX[1:])
	toBogus := join(ex.signed(t, dnstest.MustRR(t, "alias.example. 300 IN CNAME www.a.b.example.")), tampered)
	toSecure := join(ex.signed(t, dnstest.MustRR(t, "alias.example. 300 IN CNAME www.a.b.example.")), wwwABX)
	toNX := ex.signed(t, dnstest.MustRR(t, "alias.example. 300 IN CNAME gone.a.b.example."))
	_, nx := abx.negative(t, "gone.a.b.example.", dns.TypeA)
	dname := ex.signed(t, dnstest.MustRR(t, "old.example. 300 IN DNAME a.b.example."))
	throughDNAME := join(dname, dnstest.MustRRs(t, "www.old.example. 300 IN CNAME www.a.b.example."), wwwABX)
	wrongDNAME := join(dname, dnstest.MustRRs(t, "www.old.example. 300 IN CNAME www.evil."), wwwABX)

	// piece is the expected result of one piece; checked false: none.
	type piece struct {
		checked bool
		status  security.Status
	}
	const S, I, B = security.Secure, security.Insecure, security.Bogus
	no := piece{}
	for _, tc := range []struct {
		name   string
		qname  string
		rcode  int
		answer []dns.RR
		auth   []dns.RR
		status security.Status
		sets   []piece // by Answer.Sets index
		denial piece
	}{
		{"secure to secure", "alias.example.", 0, toSecure, nil, S, []piece{{true, S}, {true, S}}, no},
		{"secure to insecure", "alias.example.", 0, toInsecure, nil, I, []piece{{true, S}, {true, I}}, no},
		{"secure to bogus", "alias.example.", 0, toBogus, nil, B, []piece{{true, S}, {true, B}}, no},
		{"secure to NXDOMAIN", "alias.example.", dns.RcodeNameError, toNX, nx, S, []piece{{true, S}}, piece{true, S}},
		{"NXDOMAIN without proof", "alias.example.", dns.RcodeNameError, toNX, nil, B, []piece{{true, S}}, piece{true, B}},
		// The CNAME a DNAME implies is judged with the DNAME, not alone.
		{"through a DNAME", "www.old.example.", 0, throughDNAME, nil, S, []piece{{true, S}, no, {true, S}}, no},
		// The chain is wrong, not any piece: the pieces checked are all
		// secure and the whole is bogus, which tells the caller not to
		// use them.
		{"CNAME disagreeing with its DNAME", "www.old.example.", 0, wrongDNAME, nil, B, []piece{{true, S}, no, no}, no},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := dns.Question{Name: tc.qname, Qtype: dns.TypeA, Qclass: dns.ClassINET}
			a := answerOf(tc.rcode, tc.answer, tc.auth)
			res := v.ValidateAnswer(context.Background(), q, a, NewBudget(DefaultLimits()))
			if res.Status != tc.status {
				t.Fatalf("status %v (%s), want %v", res.Status, res.Reason, tc.status)
			}
			if len(res.Sets) != len(tc.sets) {
				t.Fatalf("%d set results %+v, want %d", len(res.Sets), res.Sets, len(tc.sets))
			}
			for i, p := range res.Sets {
				w := tc.sets[i]
				h := a.Sets[i].RRs[0].Header()
				if p.Checked != w.checked || (w.checked && p.Status != w.status) {
					t.Errorf("set %d (%s %s): checked=%v %v (%s), want checked=%v %v", i, h.Name, dns.TypeToString[h.Rrtype],
						p.Checked, p.Status, p.Reason, w.checked, w.status)
				}
			}
			if res.Denial.Checked != tc.denial.checked || (tc.denial.checked && res.Denial.Status != tc.denial.status) {
				t.Errorf("denial: checked=%v %v (%s), want checked=%v %v", res.Denial.Checked, res.Denial.Status, res.Denial.Reason, tc.denial.checked, tc.denial.status)
			}
			if plain := v.ValidateSections(context.Background(), q, tc.rcode, tc.answer, tc.auth, NewBudget(DefaultLimits())); plain.Status != res.Status || plain.EDE != res.EDE {
				t.Errorf("ValidateSections %+v, ValidateAnswer %+v", plain, res.Result)
			}
		})
	}
}
