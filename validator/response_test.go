package validator

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/security"
)

func msg(rcode int, answer, ns []dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.Response, m.Rcode, m.Answer, m.Ns = true, rcode, answer, ns
	return m
}

// withoutType drops the RRsets (and their RRSIGs) of type t.
func withoutType(records []dns.RR, t uint16) []dns.RR {
	var out []dns.RR
	for _, r := range records {
		if r.Header().Rrtype == t {
			continue
		}
		if s, ok := r.(*dns.RRSIG); ok && s.TypeCovered == t {
			continue
		}
		out = append(out, r)
	}
	return out
}

type responseCase struct {
	name   string
	qname  string
	qtype  uint16
	resp   *dns.Msg
	status security.Status
	ede    uint16
}

// responseCases are signed responses from testWorld with the state each
// must validate to; the fuzz target starts from them too.
func responseCases(t testing.TB, w *fakeWorld) []responseCase {
	ex, abx, n3, oo := w.zones["example."], w.zones["a.b.example."], w.zones["nsec3tld."], w.zones["optout."]

	wwwA := ex.signed(t, dnstest.MustRR(t, "www.example. 300 IN A 192.0.2.1"))
	tampered := append([]dns.RR{dnstest.MustRR(t, "www.example. 300 IN A 192.0.2.66")}, wwwA[1:]...)
	stranger := newTestZone(t, "example.", dns.ECDSAP256SHA256)

	cnameChain := append(ex.signed(t, dnstest.MustRR(t, "alias.example. 300 IN CNAME www.a.b.example.")),
		abx.signed(t, dnstest.MustRR(t, "www.a.b.example. 300 IN A 192.0.2.2"))...)

	wildSig := ex.zsk.sign(t, dnstest.MustRRs(t, "*.wild.example. 300 IN TXT \"wild\""))
	wildSig.Hdr.Name = "x.wild.example."
	wildAnswer := []dns.RR{dnstest.MustRR(t, "x.wild.example. 300 IN TXT \"wild\""), wildSig}
	wildProof := ex.sign1(t, nsecFind(t, ex.chain, "x.wild.example.", true))

	_, nxAuth := ex.negative(t, "nx.example.", dns.TypeA)
	_, nodataAuth := ex.negative(t, "www.example.", dns.TypeAAAA)
	_, n3nxAuth := n3.negative(t, "nx.nsec3tld.", dns.TypeA)
	_, noDSInsec := ex.negative(t, "insec.example.", dns.TypeDS)
	_, noDSOptOut := oo.negative(t, "child.optout.", dns.TypeDS)
	_, optOutNX := oo.negative(t, "nx.optout.", dns.TypeA)
	_, hiNX := w.zones["hiiter."].negative(t, "nx.hiiter.", dns.TypeA)

	nsFor := func(child string) dns.RR { return dnstest.MustRR(t, child+" 300 IN NS ns."+child) }
	signedReferral := append([]dns.RR{nsFor("a.b.example.")}, ex.dsFor["a.b.example."]...)
	insecReferral := append([]dns.RR{nsFor("insec.example.")}, withoutType(noDSInsec, dns.TypeSOA)...)
	optOutReferral := append([]dns.RR{nsFor("child.optout.")}, withoutType(noDSOptOut, dns.TypeSOA)...)

	return []responseCase{
		{"signed answer", "www.example.", dns.TypeA, msg(0, wwwA, nil), security.Secure, EDENone},
		{"tampered answer", "www.example.", dns.TypeA, msg(0, tampered, nil), security.Bogus, EDEDNSSECBogus},
		{"answer signed by a stranger", "www.example.", dns.TypeA, msg(0, stranger.signed(t, wwwA[0]), nil), security.Bogus, EDEDNSKEYMissing},
		{"stripped answer", "www.example.", dns.TypeA, msg(0, wwwA[:1], nil), security.Bogus, EDERRSIGsMissing},
		{"CNAME chain across zones", "alias.example.", dns.TypeA, msg(0, cnameChain, nil), security.Secure, EDENone},
		{"CNAME chain with a stripped link", "alias.example.", dns.TypeA, msg(0, append(cnameChain[:2:2], cnameChain[2]), nil), security.Bogus, EDERRSIGsMissing},
		{"partial CNAME chain", "alias.example.", dns.TypeA, msg(0, cnameChain[:2], nil), security.Secure, EDENone},
		{"wildcard answer", "x.wild.example.", dns.TypeTXT, msg(0, wildAnswer, wildProof), security.Secure, EDENone},
		{"wildcard answer without denial", "x.wild.example.", dns.TypeTXT, msg(0, wildAnswer, nil), security.Bogus, EDENSECMissing},
		{"NXDOMAIN (NSEC)", "nx.example.", dns.TypeA, msg(dns.RcodeNameError, nil, nxAuth), security.Secure, EDENone},
		{"NXDOMAIN stripped", "nx.example.", dns.TypeA, msg(dns.RcodeNameError, nil, withoutSigs(nxAuth)), security.Bogus, EDENSECMissing},
		{"NXDOMAIN without NSEC", "nx.example.", dns.TypeA, msg(dns.RcodeNameError, nil, withoutType(nxAuth, dns.TypeNSEC)), security.Bogus, EDENSECMissing},
		{"NODATA (NSEC)", "www.example.", dns.TypeAAAA, msg(0, nil, nodataAuth), security.Secure, EDENone},
		{"NODATA claimed for existing type", "www.example.", dns.TypeA, msg(0, nil, nodataAuth), security.Bogus, EDEDNSSECBogus},
		{"NXDOMAIN (NSEC3)", "nx.nsec3tld.", dns.TypeA, msg(dns.RcodeNameError, nil, n3nxAuth), security.Secure, EDENone},
		{"NXDOMAIN under opt-out", "nx.optout.", dns.TypeA, msg(dns.RcodeNameError, nil, optOutNX), security.Insecure, EDENone},
		{"NXDOMAIN with 51 NSEC3 iterations", "nx.hiiter.", dns.TypeA, msg(dns.RcodeNameError, nil, hiNX), security.Insecure, EDEUnsupportedNSEC3Iterations},
		{"signed referral", "www.a.b.example.", dns.TypeA, msg(0, nil, signedReferral), security.Secure, EDENone},
		{"insecure referral (NSEC)", "www.insec.example.", dns.TypeA, msg(0, nil, insecReferral), security.Insecure, EDENone},
		{"insecure referral (opt-out)", "www.child.optout.", dns.TypeA, msg(0, nil, optOutReferral), security.Insecure, EDENone},
		{"referral stripped of DS", "www.a.b.example.", dns.TypeA, msg(0, nil, signedReferral[:1]), security.Bogus, EDENSECMissing},
		{"unsigned answer below insecure delegation", "www.insec.example.", dns.TypeA, msg(0, dnstest.MustRRs(t, "www.insec.example. 300 IN A 192.0.2.3"), nil), security.Insecure, EDENone},
		{"unsigned answer outside anchors is insecure", "www.unsigned.", dns.TypeA, msg(0, dnstest.MustRRs(t, "www.unsigned. 300 IN A 192.0.2.4"), nil), security.Insecure, EDENone},
		{"SERVFAIL not validated", "www.example.", dns.TypeA, msg(dns.RcodeServerFailure, nil, nil), security.Indeterminate, EDENone},
	}
}

func TestValidateResponse(t *testing.T) {
	w := testWorld(t)
	v, _ := newTestValidator(t, w)
	for _, tc := range responseCases(t, w) {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBudget(DefaultLimits())
			res := v.ValidateResponse(context.Background(), tc.qname, tc.qtype, tc.resp, b)
			if res.Status != tc.status || res.EDE != tc.ede {
				t.Fatalf("got %v EDE %d (%s), want %v EDE %d", res.Status, res.EDE, res.Reason, tc.status, tc.ede)
			}
			q := dns.Question{Name: tc.qname, Qtype: tc.qtype, Qclass: dns.ClassINET}
			if again := v.ValidateSections(context.Background(), q, tc.resp.Rcode, tc.resp.Answer, tc.resp.Ns, NewBudget(DefaultLimits())); again.Status != res.Status || again.EDE != res.EDE {
				t.Fatalf("ValidateSections: %+v, ValidateResponse: %+v", again, res)
			}
			if res.Status == security.Secure && (res.TTL == 0 || res.TTL > 3600) {
				t.Fatalf("secure with TTL %d", res.TTL)
			}
		})
	}
}

// dnameCases are answers through "old.example. DNAME a.b.example." (signed
// by example.) with the server's unsigned synthesised CNAME (RFC 6672).
func dnameCases(t testing.TB, w *fakeWorld) []responseCase {
	ex, abx := w.zones["example."], w.zones["a.b.example."]
	dname := ex.signed(t, dnstest.MustRR(t, "old.example. 300 IN DNAME a.b.example."))
	synth := dnstest.MustRR(t, "www.old.example. 300 IN CNAME www.a.b.example.")
	wrong := dnstest.MustRR(t, "www.old.example. 300 IN CNAME www.evil.")
	other := dnstest.MustRR(t, "www.old.example. 300 IN CNAME mail.a.b.example.")
	target := abx.signed(t, dnstest.MustRR(t, "www.a.b.example. 300 IN A 192.0.2.2"))
	targetTXT := abx.signed(t, dnstest.MustRR(t, "www.a.b.example. 300 IN TXT \"t\""))
	join := func(parts ...[]dns.RR) []dns.RR {
		var out []dns.RR
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	one := func(r dns.RR) []dns.RR { return []dns.RR{r} }
	// A CNAME signed by the zone for an occluded name proves nothing: the
	// DNAME decides.
	signedWrong := ex.signed(t, dnstest.MustRR(t, "www.old.example. 300 IN CNAME www.evil."))
	_, abxNX := abx.negative(t, "nx.a.b.example.", dns.TypeA)
	_, abxNODATA := abx.negative(t, "www.a.b.example.", dns.TypeAAAA)
	q := "www.old.example."
	return []responseCase{
		{"DNAME A", q, dns.TypeA, msg(0, join(dname, one(synth), target), nil), security.Secure, EDENone},
		{"DNAME A without the synthesised CNAME", q, dns.TypeA, msg(0, join(dname, target), nil), security.Secure, EDENone},
		{"DNAME A with a CNAME elsewhere", q, dns.TypeA, msg(0, join(dname, one(wrong), target), nil), security.Bogus, EDEDNSSECBogus},
		{"DNAME A with a signed CNAME elsewhere", q, dns.TypeA, msg(0, join(dname, signedWrong, target), nil), security.Bogus, EDEDNSSECBogus},
		{"DNAME A with two CNAMEs", q, dns.TypeA, msg(0, join(dname, one(synth), one(other), target), nil), security.Bogus, EDEDNSSECBogus},
		{"DNAME A unsigned DNAME", q, dns.TypeA, msg(0, join(dname[:1], one(synth), target), nil), security.Bogus, EDERRSIGsMissing},
		{"DNAME CNAME", q, dns.TypeCNAME, msg(0, join(dname, one(synth)), nil), security.Secure, EDENone},
		{"DNAME CNAME, server followed the target", q, dns.TypeCNAME, msg(0, join(dname, one(synth), target), nil), security.Secure, EDENone},
		{"DNAME CNAME without the synthesised CNAME", q, dns.TypeCNAME, msg(0, dname, nil), security.Secure, EDENone},
		{"DNAME CNAME elsewhere", q, dns.TypeCNAME, msg(0, join(dname, one(wrong)), nil), security.Bogus, EDEDNSSECBogus},
		{"DNAME CNAME signed elsewhere", q, dns.TypeCNAME, msg(0, join(dname, signedWrong), nil), security.Bogus, EDEDNSSECBogus},
		{"DNAME CNAME unsigned DNAME", q, dns.TypeCNAME, msg(0, join(dname[:1], one(synth)), nil), security.Bogus, EDERRSIGsMissing},
		{"CNAME unsigned, no DNAME", q, dns.TypeCNAME, msg(0, one(synth), nil), security.Bogus, EDERRSIGsMissing},
		{"DNAME ANY", q, dns.TypeANY, msg(0, join(dname, one(synth), target, targetTXT), nil), security.Secure, EDENone},
		{"DNAME ANY with a CNAME elsewhere", q, dns.TypeANY, msg(0, join(dname, one(wrong), target), nil), security.Bogus, EDEDNSSECBogus},
		{"DNAME to NXDOMAIN", "nx.old.example.", dns.TypeA, msg(dns.RcodeNameError, join(dname, dnstest.MustRRs(t, "nx.old.example. 300 IN CNAME nx.a.b.example.")), abxNX), security.Secure, EDENone},
		{"DNAME to NXDOMAIN, proof for another name", "nx.old.example.", dns.TypeA, msg(dns.RcodeNameError, join(dname, dnstest.MustRRs(t, "nx.old.example. 300 IN CNAME nx.a.b.example.")), abxNODATA), security.Bogus, EDENSECMissing},
	}
}

func TestValidateResponseDNAME(t *testing.T) {
	w := testWorld(t)
	v, _ := newTestValidator(t, w)
	for _, tc := range dnameCases(t, w) {
		t.Run(tc.name, func(t *testing.T) {
			res := v.ValidateResponse(context.Background(), tc.qname, tc.qtype, tc.resp, NewBudget(DefaultLimits()))
			if res.Status != tc.status || res.EDE != tc.ede {
				t.Fatalf("got %v EDE %d (%s), want %v EDE %d", res.Status, res.EDE, res.Reason, tc.status, tc.ede)
			}
			q := dns.Question{Name: tc.qname, Qtype: tc.qtype, Qclass: dns.ClassINET}
			if again := v.ValidateSections(context.Background(), q, tc.resp.Rcode, tc.resp.Answer, tc.resp.Ns, NewBudget(DefaultLimits())); again.Status != res.Status {
				t.Fatalf("ValidateSections: %+v, ValidateResponse: %+v", again, res)
			}
			if res.Status == security.Secure && (res.TTL == 0 || res.TTL > 300) {
				t.Fatalf("secure with TTL %d", res.TTL)
			}
		})
	}
}

func TestValidateResponseExpiredAndFuture(t *testing.T) {
	w := testWorld(t)
	ex := w.zones["example."]
	set := dnstest.MustRRs(t, "www.example. 300 IN A 192.0.2.1")
	v, _ := newTestValidator(t, w)
	for _, tc := range []struct {
		name     string
		inc, exp time.Time
		ede      uint16
	}{
		{"expired", testNow.Add(-48 * time.Hour), testNow.Add(-time.Hour), EDESignatureExpired},
		{"not yet valid", testNow.Add(time.Hour), testNow.Add(48 * time.Hour), EDESignatureNotYetValid},
	} {
		answer := append(set, ex.zsk.signWindow(t, set, tc.inc, tc.exp))
		res := v.ValidateResponse(context.Background(), "www.example.", dns.TypeA, msg(0, answer, nil), nil)
		if res.Status != security.Bogus || res.EDE != tc.ede {
			t.Errorf("%s: %+v", tc.name, res)
		}
	}
}

// The resolver randomises the case of query names (0x20); answers echo it.
func TestValidateResponseMixedCase(t *testing.T) {
	w := testWorld(t)
	ex, n3 := w.zones["example."], w.zones["nsec3tld."]
	v, _ := newTestValidator(t, w)
	answer := ex.signed(t, dnstest.MustRR(t, "www.example. 300 IN A 192.0.2.1"))
	answer[0].Header().Name = "WwW.ExAmPlE."
	answer[1].Header().Name = "WwW.ExAmPlE."
	_, nx := ex.negative(t, "nx.example.", dns.TypeA)
	_, n3nx := n3.negative(t, "nx.nsec3tld.", dns.TypeA)
	for _, tc := range []struct {
		qname string
		resp  *dns.Msg
	}{
		{"WwW.ExAmPlE.", msg(0, answer, nil)},
		{"nX.eXaMpLe.", msg(dns.RcodeNameError, nil, nx)},
		{"Nx.NsEc3TlD.", msg(dns.RcodeNameError, nil, n3nx)},
	} {
		if res := v.ValidateResponse(context.Background(), tc.qname, dns.TypeA, tc.resp, nil); res.Status != security.Secure {
			t.Errorf("%s: %v (%s)", tc.qname, res.Status, res.Reason)
		}
	}
}

// A CNAME into another zone whose target does not exist: the NXDOMAIN proof
// is for the target, from the target's zone.
func TestValidateResponseCNAMEToNXDOMAIN(t *testing.T) {
	w := testWorld(t)
	ex, abx := w.zones["example."], w.zones["a.b.example."]
	v, _ := newTestValidator(t, w)
	answer := ex.signed(t, dnstest.MustRR(t, "alias.example. 300 IN CNAME gone.a.b.example."))
	_, nx := abx.negative(t, "gone.a.b.example.", dns.TypeA)
	res := v.ValidateResponse(context.Background(), "alias.example.", dns.TypeA, msg(dns.RcodeNameError, answer, nx), nil)
	if res.Status != security.Secure {
		t.Fatalf("CNAME to NXDOMAIN: %+v", res)
	}
	// The proof for the CNAME owner instead of its target proves nothing.
	_, wrong := ex.negative(t, "nx.example.", dns.TypeA)
	res = v.ValidateResponse(context.Background(), "alias.example.", dns.TypeA, msg(dns.RcodeNameError, answer, wrong), nil)
	if res.Status != security.Bogus {
		t.Fatalf("CNAME to NXDOMAIN with a proof for another name: %+v", res)
	}
}
