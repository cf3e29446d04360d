package authority

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// These checks re-derive every DNSSEC proof from the response alone, the
// way a validator would, with miekg/dns's NSEC3 Cover/Match and a
// canonical order of the tests' own.

type rrKey struct {
	name string
	t    uint16
}

// verifySignatures checks that every RRset in the answer and authority
// sections (except delegation NS and synthesised CNAMEs) carries an RRSIG
// that verifies with the zone key, and that RRSIGs elsewhere verify too.
func verifySignatures(t *testing.T, tz *testZone, m *dns.Msg) {
	t.Helper()
	var dnames []string
	for _, rr := range m.Answer {
		if rr.Header().Rrtype == dns.TypeDNAME {
			dnames = append(dnames, strings.ToLower(rr.Header().Name))
		}
	}
	for si, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		sets := map[rrKey][]dns.RR{}
		sigs := map[rrKey][]*dns.RRSIG{}
		var order []rrKey
		for _, rr := range sec {
			h := rr.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			if sig, ok := rr.(*dns.RRSIG); ok {
				k := rrKey{strings.ToLower(h.Name), sig.TypeCovered}
				sigs[k] = append(sigs[k], sig)
				continue
			}
			k := rrKey{strings.ToLower(h.Name), h.Rrtype}
			if sets[k] == nil {
				order = append(order, k)
			}
			sets[k] = append(sets[k], rr)
		}
		for _, k := range order {
			required := si < 2
			if si == 1 && k.t == dns.TypeNS {
				required = false // delegation NS is not signed by the parent
			}
			if k.t == dns.TypeCNAME {
				for _, d := range dnames {
					if dnsname.IsAtOrBelow(k.name, d) && d != k.name {
						required = false // synthesised from a DNAME
					}
				}
			}
			ss := sigs[k]
			if len(ss) == 0 {
				if required {
					t.Errorf("RRset %s/%s has no RRSIG", k.name, dns.TypeToString[k.t])
				}
				continue
			}
			ok := false
			for _, sig := range ss {
				if sig.Verify(tz.key, sets[k]) == nil && sig.ValidityPeriod(time.Now()) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("RRSIG over %s/%s does not verify", k.name, dns.TypeToString[k.t])
			}
		}
		for k := range sigs {
			if sets[k] == nil {
				t.Errorf("RRSIG for %s/%s without its RRset", k.name, dns.TypeToString[k.t])
			}
		}
	}
}

func nsecs(sec []dns.RR) []*dns.NSEC {
	var out []*dns.NSEC
	for _, rr := range sec {
		if n, ok := rr.(*dns.NSEC); ok {
			out = append(out, n)
		}
	}
	return out
}

func nsec3s(sec []dns.RR) []*dns.NSEC3 {
	var out []*dns.NSEC3
	for _, rr := range sec {
		if n, ok := rr.(*dns.NSEC3); ok {
			out = append(out, n)
		}
	}
	return out
}

// nsecCovers: owner < name < next in canonical order (the last NSEC wraps
// to the apex).
func nsecCovers(n *dns.NSEC, name string) bool {
	owner, next := strings.ToLower(n.Hdr.Name), strings.ToLower(n.NextDomain)
	name = strings.ToLower(name)
	if testLess(owner, next) {
		return testLess(owner, name) && testLess(name, next)
	}
	return testLess(owner, name) // last in the chain
}

func commonAncestor(a, b string) string {
	la, lb := dns.SplitDomainName(strings.ToLower(a)), dns.SplitDomainName(strings.ToLower(b))
	var common []string
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0 && la[i] == lb[j]; i, j = i-1, j-1 {
		common = append([]string{la[i]}, common...)
	}
	return dns.Fqdn(strings.Join(common, "."))
}

func ancestors(name string) []string { // name's proper ancestors, deepest first
	var out []string
	for off, end := dns.NextLabel(name, 0); !end; off, end = dns.NextLabel(name, off) {
		out = append(out, name[off:])
	}
	if name != "." {
		out = append(out, ".")
	}
	return out
}

func childToward(name, ce string) string {
	labels := dns.SplitDomainName(name)
	n := dnsname.CountLabels(ce) + 1
	return dns.Fqdn(strings.Join(labels[len(labels)-n:], "."))
}

// nsec3CE finds the closest encloser that some NSEC3 in sec matches and
// checks that the next closer name is covered; it returns the encloser and
// the covering NSEC3.
func nsec3CE(t *testing.T, sec []dns.RR, qname string) (string, *dns.NSEC3) {
	t.Helper()
	for _, a := range ancestors(qname) {
		for _, n := range nsec3s(sec) {
			if n3Match(n, a) {
				nc := childToward(qname, a)
				for _, c := range nsec3s(sec) {
					if n3Cover(c, nc) {
						return a, c
					}
				}
				t.Errorf("closest encloser %s matched but next closer %s not covered", a, nc)
				return a, nil
			}
		}
	}
	t.Errorf("no closest encloser proof for %s", qname)
	return "", nil
}

func anyNSECCovers(sec []dns.RR, name string) bool {
	for _, n := range nsecs(sec) {
		if nsecCovers(n, name) {
			return true
		}
	}
	return false
}

func anyNSEC3Covers(sec []dns.RR, name string) bool {
	for _, n := range nsec3s(sec) {
		if n3Cover(n, name) {
			return true
		}
	}
	return false
}

// nsecCE derives the closest encloser from an NSEC covering name.
func nsecCE(sec []dns.RR, name string) string {
	for _, n := range nsecs(sec) {
		if nsecCovers(n, name) {
			a, b := commonAncestor(name, n.Hdr.Name), commonAncestor(name, n.NextDomain)
			if dnsname.CountLabels(a) > dnsname.CountLabels(b) {
				return a
			}
			return b
		}
	}
	return ""
}

func checkProof(t *testing.T, tz *testZone, qname string, m *dns.Msg, want expect) {
	t.Helper()
	qname = strings.ToLower(qname)
	qtype := m.Question[0].Qtype
	nsec3 := tz.mode == nsec3Zone || tz.mode == nsec3OptOutZone
	// Follow CNAMEs to the name the proof is about.
	for _, rr := range m.Answer {
		if c, ok := rr.(*dns.CNAME); ok && dnsname.Equal(c.Hdr.Name, qname) && qtype != dns.TypeCNAME && want.kind != "wildcard" {
			qname = strings.ToLower(c.Target)
		}
	}
	switch want.kind {
	case "nxdomain":
		if nsec3 {
			ce, _ := nsec3CE(t, m.Ns, qname)
			if ce != "" && !anyNSEC3Covers(m.Ns, wildcardName(ce)) {
				t.Errorf("wildcard *.%s not denied", ce)
			}
			return
		}
		if !anyNSECCovers(m.Ns, qname) {
			t.Errorf("no NSEC covers %s", qname)
		}
		ce := nsecCE(m.Ns, qname)
		if !anyNSECCovers(m.Ns, wildcardName(ce)) {
			t.Errorf("no NSEC denies the wildcard *.%s", ce)
		}

	case "nodata":
		if nsec3 {
			for _, n := range nsec3s(m.Ns) {
				if n3Match(n, qname) {
					if slices.Contains(n.TypeBitMap, qtype) || slices.Contains(n.TypeBitMap, dns.TypeCNAME) {
						t.Errorf("matching NSEC3 lists %s or CNAME", dns.TypeToString[qtype])
					}
					return
				}
			}
			if tz.mode != nsec3OptOutZone {
				t.Errorf("no NSEC3 matches %s", qname)
				return
			}
			if _, cover := nsec3CE(t, m.Ns, qname); cover != nil && cover.Flags&1 == 0 {
				t.Errorf("next closer covered without opt-out")
			}
			return
		}
		for _, n := range nsecs(m.Ns) {
			if dnsname.Equal(n.Hdr.Name, qname) {
				if slices.Contains(n.TypeBitMap, qtype) || slices.Contains(n.TypeBitMap, dns.TypeCNAME) {
					t.Errorf("matching NSEC lists %s or CNAME", dns.TypeToString[qtype])
				}
				return
			}
			if nsecCovers(n, qname) && dnsname.IsAtOrBelow(strings.ToLower(n.NextDomain), qname) {
				return // empty non-terminal
			}
		}
		t.Errorf("no NSEC proves NODATA for %s", qname)

	case "wildcard":
		var sig *dns.RRSIG
		for _, rr := range m.Answer {
			if s, ok := rr.(*dns.RRSIG); ok && dnsname.Equal(s.Hdr.Name, qname) {
				sig = s
			}
		}
		if sig == nil || int(sig.Labels) >= dnsname.CountLabels(qname) {
			t.Fatalf("expanded answer lacks an RRSIG with a wildcard label count: %v", sig)
		}
		labels := dns.SplitDomainName(qname)
		ce := dns.Fqdn(strings.Join(labels[len(labels)-int(sig.Labels):], "."))
		if nsec3 {
			if !anyNSEC3Covers(m.Ns, childToward(qname, ce)) {
				t.Errorf("next closer %s not covered", childToward(qname, ce))
			}
			return
		}
		if !anyNSECCovers(m.Ns, qname) {
			t.Errorf("no NSEC covers %s", qname)
		}

	case "wildnodata":
		var ce string
		if nsec3 {
			ce, _ = nsec3CE(t, m.Ns, qname)
		} else {
			if !anyNSECCovers(m.Ns, qname) {
				t.Errorf("no NSEC covers %s", qname)
			}
			ce = nsecCE(m.Ns, qname)
		}
		wild := wildcardName(ce)
		found := false
		if nsec3 {
			for _, n := range nsec3s(m.Ns) {
				if n3Match(n, wild) {
					found = !slices.Contains(n.TypeBitMap, qtype)
				}
			}
		} else {
			for _, n := range nsecs(m.Ns) {
				if dnsname.Equal(n.Hdr.Name, wild) {
					found = !slices.Contains(n.TypeBitMap, qtype)
				}
				if nsecCovers(n, wild) && dnsname.IsAtOrBelow(strings.ToLower(n.NextDomain), wild) {
					found = true // the wildcard is an empty non-terminal
				}
			}
		}
		if !found {
			t.Errorf("no NSEC/NSEC3 at %s proves the type absent", wild)
		}

	case "referral-secure":
		ds := findType(m.Ns, dns.TypeDS)
		ns := findType(m.Ns, dns.TypeNS)
		if ds == nil || ns == nil || !dnsname.Equal(ds.Header().Name, ns.Header().Name) {
			t.Errorf("secure referral without DS at the cut")
		}

	case "referral-insecure":
		ns := findType(m.Ns, dns.TypeNS)
		if ns == nil {
			t.Fatalf("referral without NS")
		}
		if findType(m.Ns, dns.TypeDS) != nil {
			t.Errorf("DS in an insecure referral")
		}
		cut := strings.ToLower(ns.Header().Name)
		if nsec3 {
			for _, n := range nsec3s(m.Ns) {
				if n3Match(n, cut) {
					if slices.Contains(n.TypeBitMap, dns.TypeDS) || !slices.Contains(n.TypeBitMap, dns.TypeNS) {
						t.Errorf("NSEC3 at the cut has DS or lacks NS")
					}
					return
				}
			}
			if tz.mode != nsec3OptOutZone {
				t.Errorf("no NSEC3 matches the cut %s", cut)
				return
			}
			if _, cover := nsec3CE(t, m.Ns, cut); cover != nil && cover.Flags&1 == 0 {
				t.Errorf("cut covered without opt-out")
			}
			return
		}
		for _, n := range nsecs(m.Ns) {
			if dnsname.Equal(n.Hdr.Name, cut) {
				if slices.Contains(n.TypeBitMap, dns.TypeDS) || !slices.Contains(n.TypeBitMap, dns.TypeNS) {
					t.Errorf("NSEC at the cut has DS or lacks NS")
				}
				return
			}
		}
		t.Errorf("no NSEC at the cut %s", cut)
	}
}

// n3Match and n3Cover are NSEC3 Match and Cover that also work in the root
// zone (miekg/dns's need a label above the hash).
func n3Match(n *dns.NSEC3, name string) bool {
	h := dns.HashName(name, n.Hash, n.Iterations, n.Salt)
	return h != "" && dnsname.Equal(h, strings.SplitN(n.Hdr.Name, ".", 2)[0])
}

func n3Cover(n *dns.NSEC3, name string) bool {
	h := dns.HashName(name, n.Hash, n.Iterations, n.Salt)
	owner := strings.ToUpper(strings.SplitN(n.Hdr.Name, ".", 2)[0])
	next := strings.ToUpper(n.NextDomain)
	if h == "" || h == owner {
		return false
	}
	if owner < next {
		return owner < h && h < next
	}
	return h > owner || h < next // last in the chain wraps
}

// A zone signed elsewhere may give NSEC/NSEC3 records the SOA MINIMUM as
// TTL although the SOA's own TTL is lower; RFC 9077 wants the lesser of
// the two on what is returned, so that aggressive use (RFC 8198) denies no
// longer than a negative answer is cached. Signatures still verify: they
// carry the original TTL.
func TestProofTTLCappedAtNegativeTTL(t *testing.T) {
	for _, mode := range []denialMode{nsecZone, nsec3Zone} {
		t.Run(mode.String(), func(t *testing.T) {
			tz := makeTestZone(t, "example.", `
$ORIGIN example.
$TTL 3600
@      SOA ns1 hostmaster 1 7200 3600 1209600 7200
@      NS  ns1
ns1    A   192.0.2.1
*.w    A   192.0.2.2
`, mode) // proofs get TTL 7200 (the MINIMUM); the SOA's TTL is 3600
			s := NewServer(tz.zone)
			for _, qname := range []string{"nope.example.", "x.w.example."} {
				m := s.Answer(query(qname, dns.TypeA, true))
				proofs := 0
				for _, rr := range m.Ns {
					typ := rr.Header().Rrtype
					if sig, ok := rr.(*dns.RRSIG); ok {
						typ = sig.TypeCovered
					}
					if typ != dns.TypeNSEC && typ != dns.TypeNSEC3 {
						continue
					}
					proofs++
					if rr.Header().Ttl != 3600 {
						t.Errorf("%s: %v: TTL %d, want min(SOA TTL, MINIMUM) = 3600", qname, rr, rr.Header().Ttl)
					}
				}
				if proofs == 0 {
					t.Errorf("%s: no proofs: %v", qname, m)
				}
				verifySignatures(t, tz, m)
			}
		})
	}
}
