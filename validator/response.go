package validator

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/security"
)

// maxChainLinks bounds the CNAME/DNAME links followed inside one response.
const maxChainLinks = 16

// ValidateResponse classifies a final response to (qname, qtype) and
// validates all of it: the answer RRsets along the CNAME/DNAME chain from
// qname (wildcard expansions included, with their denial proofs), and then
// the NXDOMAIN or NODATA proof for the last name, or the referral's DS or
// proof of no DS. Keys come from Keys (the chain walk). The result is the
// worst state of the parts; TTL is the smallest validated TTL.
//
// Below a DNAME, the CNAME the server synthesised (unsigned, RFC 6672
// 5.3.1) is taken as secure as the validated DNAME when it is exactly the
// substitution, and bogus otherwise; for a CNAME question it is the answer.
//
// A YXDOMAIN response (RFC 6672 2.2) is as secure as its DNAME when the
// chain from qname reaches a name below the DNAME whose substitution is
// longer than 255 octets, and bogus otherwise.
//
// A referral returns Secure when the child has a validated DS, Insecure
// when the parent proves there is none. A response whose chain ends in a
// CNAME the response does not follow (no SOA or denial records) is treated
// as a partial answer: its parts are validated, the rest is the caller's.
func (v *Validator) ValidateResponse(ctx context.Context, qname string, qtype uint16, resp *dns.Msg, b *Budget) Result {
	if resp == nil {
		return bogus(EDEDNSSECBogus, "no response")
	}
	return v.validateChain(ctx, qname, qtype, resp.Rcode, groupSets(resp.Answer), rrsigsIn(resp.Answer), resp.Ns, b, nil)
}

// validateChain is ValidateResponse on a response's parts: rcode, the
// answer's RRsets (sets) and RRSIGs (answerSigs), and the authority
// section (auth). rec, when not nil, notes each piece's own result
// (ValidateAnswer).
func (v *Validator) validateChain(ctx context.Context, qname string, qtype uint16, rcode int, sets rrsets, answerSigs []*dns.RRSIG, auth []dns.RR, b *Budget, rec *recorder) Result {
	b = orDefault(b)
	if rcode != dns.RcodeSuccess && rcode != dns.RcodeNameError && rcode != dns.RcodeYXDomain {
		return indeterminate("rcode " + dns.RcodeToString[rcode] + " is not validated")
	}
	if qtype == dns.TypeRRSIG {
		// RRSIGs are not an RRset that anything signs (RFC 4035 3.1.1).
		return indeterminate("RRSIG queries are not validated")
	}
	now := v.clk.Now()

	out := secure(0)
	name := dns.Fqdn(qname)
	answered := false
	for link := 0; ; link++ {
		if link > maxChainLinks {
			return bogus(EDEDNSSECBogus, "CNAME/DNAME chain longer than the limit")
		}
		// A name below a DNAME owns nothing (RFC 6672 2.3): the DNAME
		// speaks for it, before any data the response claims at name.
		if dname := sets.dnameAbove(name); dname != nil {
			out = combine(out, rec.set(dname, v.validateSet(ctx, []dns.RR{dname}, answerSigs, auth, now, b)))
			target, ok, tooLong := substitute(name, dname)
			if tooLong && rcode == dns.RcodeYXDomain {
				// RFC 6672 2.2: the validated DNAME is the answer.
				return out
			}
			if !ok {
				return bogus(EDEDNSSECBogus, "DNAME substitution of "+name+" is too long or not a name")
			}
			if r := checkSynthesis(sets.get(name, dns.TypeCNAME), name, target); r.Status == security.Bogus {
				return r
			}
			if qtype == dns.TypeCNAME {
				// The synthesised CNAME is the answer, secure as the
				// DNAME it follows from.
				answered = true
				break
			}
			name = target
			continue
		}
		if data := sets.at(name, qtype); len(data) > 0 {
			for _, set := range data {
				out = combine(out, rec.set(set[0], v.validateSet(ctx, set, answerSigs, auth, now, b)))
			}
			answered = true
			break
		}
		if c := sets.get(name, dns.TypeCNAME); len(c) > 0 && qtype != dns.TypeCNAME {
			out = combine(out, rec.set(c[0], v.validateSet(ctx, c, answerSigs, auth, now, b)))
			name = dns.Fqdn(c[0].(*dns.CNAME).Target)
			continue
		}
		break
	}
	switch {
	case out.Status == security.Bogus:
		return out
	case rcode == dns.RcodeYXDomain:
		return bogus(EDEDNSSECBogus, "YXDOMAIN for "+name+", which is not below a DNAME whose substitution is longer than 255 octets")
	case answered:
		return out
	}

	switch {
	case rcode == dns.RcodeNameError:
		return combine(out, rec.denial(v.validateNegative(ctx, name, qtype, true, auth, now, b)))
	case isReferral(auth, name):
		return combine(out, v.validateReferral(ctx, name, auth, now, b))
	case name != dns.Fqdn(qname) && !hasDenial(auth):
		return out // a partial chain; the caller follows it
	}
	return combine(out, rec.denial(v.validateNegative(ctx, name, qtype, false, auth, now, b)))
}

// ValidateSections is ValidateResponse for callers that hold the sections
// rather than a message (the resolver's finished answer). authority must
// carry the denial records (with RRSIGs) of every response along a CNAME
// chain, since a wildcard-expanded link needs its proof too.
func (v *Validator) ValidateSections(ctx context.Context, q dns.Question, rcode int, answer, authority []dns.RR, b *Budget) Result {
	m := &dns.Msg{Answer: answer, Ns: authority}
	m.Rcode = rcode
	m.Response = true
	return v.ValidateResponse(ctx, q.Name, q.Qtype, m, b)
}

// validateSet validates one answer RRset with the keys of its signer zone;
// an unsigned RRset is bogus unless its zone is provably not secure.
func (v *Validator) validateSet(ctx context.Context, set []dns.RR, sigs []*dns.RRSIG, auth []dns.RR, now time.Time, b *Budget) Result {
	h := set[0].Header()
	signer := signerFor(sigs, h.Name, h.Rrtype)
	if signer == "" {
		st := v.walk(ctx, h.Name, b)
		if st.status == security.Secure {
			return bogus(EDERRSIGsMissing, "no RRSIG for "+dns.TypeToString[h.Rrtype]+" "+h.Name+" in signed zone "+st.zone)
		}
		return st.res
	}
	keys, status, res := v.Keys(ctx, signer, b)
	if status != security.Secure {
		return res
	}
	r := VerifyRRset(set, sigs, keys, signer, now, b)
	if r.Status == security.Secure && r.Wildcard != "" {
		w := ProveWildcardAnswer(h.Name, r.Wildcard, signer, auth, keys, now, b)
		if w.Status != security.Secure {
			w.Reason = "wildcard answer " + h.Name + ": " + w.Reason
			return w
		}
		r.TTL = minTTL(r.TTL, w.TTL)
		r.Proofs = w.Proofs
	}
	return r
}

// validateNegative validates an NXDOMAIN or NODATA answer for name.
func (v *Validator) validateNegative(ctx context.Context, name string, qtype uint16, nx bool, auth []dns.RR, now time.Time, b *Budget) Result {
	zone := negativeZone(auth, name)
	if zone == "" {
		// A DS lives on the parent side of a cut (RFC 4035 2.4): an
		// unsigned denial of it is judged by the parent's state, so that
		// the DS of an island of security (its own trust anchor, an
		// unsigned parent) is insecure, not bogus (RFC 4033 5).
		at := name
		if qtype == dns.TypeDS && name != "." {
			at = dnsname.Parent(name)
		}
		st := v.walk(ctx, at, b)
		if st.status == security.Secure {
			return bogus(EDENSECMissing, "unsigned negative answer for "+name+" in signed zone "+st.zone)
		}
		return st.res
	}
	keys, status, res := v.Keys(ctx, zone, b)
	if status != security.Secure {
		return res
	}
	out := secure(0)
	sigs := rrsigsIn(auth)
	soa := groupSets(auth).get(zone, dns.TypeSOA)
	if len(soa) > 0 {
		r := VerifyRRset(soa, sigs, keys, zone, now, b)
		if r.Status != security.Secure {
			r.Reason = "SOA: " + r.Reason
			return r
		}
		out.TTL = r.TTL
	}
	var proof Result
	if nx {
		proof = ProveNXDOMAIN(name, zone, auth, keys, now, b)
	} else {
		proof = ProveNODATA(name, qtype, zone, auth, keys, now, b)
	}
	res = combine(out, proof)
	if res.Status == security.Secure && len(soa) > 0 && len(res.Proofs) == 1 {
		// The verified SOA belongs to the proof: its MINIMUM and TTL
		// bound the negative TTL of what is synthesised from it
		// (RFC 9077 3.4).
		p := res.Proofs[0]
		p.Records = append(append(make([]dns.RR, 0, len(soa)+len(p.Records)), soa...), p.Records...)
		res.Proofs = []Proof{p}
	}
	return res
}

// validateReferral validates a delegation toward name: a signed DS set for
// the child (Secure) or a proof that there is none (Insecure).
func (v *Validator) validateReferral(ctx context.Context, name string, auth []dns.RR, now time.Time, b *Budget) Result {
	sets := groupSets(auth)
	var child string
	for _, rr := range auth {
		if rr.Header().Rrtype == dns.TypeNS {
			child = dnsname.Canonical(rr.Header().Name)
			break
		}
	}
	sigs := rrsigsIn(auth)
	ds := sets.get(child, dns.TypeDS)
	parent := signerFor(sigs, child, dns.TypeDS)
	if parent == "" {
		parent = negativeZone(auth, child)
	}
	if parent == "" || dnsname.Equal(parent, child) {
		st := v.walk(ctx, dnsname.Parent(child), b)
		if st.status == security.Secure {
			return bogus(EDENSECMissing, "unsigned referral to "+child+" from signed zone "+st.zone)
		}
		return st.res
	}
	keys, status, res := v.Keys(ctx, parent, b)
	if status != security.Secure {
		return res
	}
	if len(ds) > 0 {
		r := VerifyRRset(ds, sigs, keys, parent, now, b)
		if r.Status == security.Secure && r.Wildcard != "" {
			return bogus(EDEDNSSECBogus, "DS from a wildcard")
		}
		return r
	}
	return ProveNoDS(child, parent, auth, keys, now, b)
}

// isReferral: no answer for name, an NS RRset for an ancestor of name (or
// name) below the zone, and no SOA.
func isReferral(auth []dns.RR, name string) bool {
	hasNS := false
	for _, rr := range auth {
		switch rr.Header().Rrtype {
		case dns.TypeSOA:
			return false
		case dns.TypeNS:
			hasNS = dnsname.IsAtOrBelow(name, rr.Header().Name)
		}
	}
	return hasNS
}

func hasDenial(auth []dns.RR) bool {
	for _, rr := range auth {
		switch rr.Header().Rrtype {
		case dns.TypeSOA, dns.TypeNSEC, dns.TypeNSEC3:
			return true
		}
	}
	return false
}

// negativeZone finds the zone that signed a negative answer for name: the
// signer of the SOA, else of the NSEC/NSEC3 records, if it is an ancestor.
func negativeZone(auth []dns.RR, name string) string {
	var fallback string
	for _, rr := range auth {
		sig, ok := rr.(*dns.RRSIG)
		if !ok || !dnsname.IsAtOrBelow(name, sig.SignerName) {
			continue
		}
		switch sig.TypeCovered {
		case dns.TypeSOA:
			return dnsname.Canonical(sig.SignerName)
		case dns.TypeNSEC, dns.TypeNSEC3:
			if fallback == "" {
				fallback = dnsname.Canonical(sig.SignerName)
			}
		}
	}
	return fallback
}

// signerFor returns the signer of the first RRSIG covering (owner, rrtype)
// whose signer is an ancestor of owner.
func signerFor(sigs []*dns.RRSIG, owner string, rrtype uint16) string {
	for _, s := range sigs {
		if s.TypeCovered == rrtype && dnsname.Equal(s.Hdr.Name, owner) && dnsname.IsAtOrBelow(owner, s.SignerName) {
			return dnsname.Canonical(s.SignerName)
		}
	}
	return ""
}

func rrsigsIn(section []dns.RR) []*dns.RRSIG {
	var out []*dns.RRSIG
	for _, rr := range section {
		if s, ok := rr.(*dns.RRSIG); ok {
			out = append(out, s)
		}
	}
	return out
}

// rrsets groups a section's records (RRSIGs excluded) by owner and type,
// keeping the order of first appearance.
type rrsets struct {
	keys []string
	sets map[string][]dns.RR
}

func setKey(name string, t uint16) string {
	return dnsname.Canonical(name) + "/" + strconv.Itoa(int(t))
}

func groupSets(section []dns.RR) rrsets {
	g := rrsets{sets: map[string][]dns.RR{}}
	for _, rr := range section {
		h := rr.Header()
		if h.Rrtype == dns.TypeRRSIG || h.Rrtype == dns.TypeOPT {
			continue
		}
		k := setKey(h.Name, h.Rrtype)
		if _, ok := g.sets[k]; !ok {
			g.keys = append(g.keys, k)
		}
		g.sets[k] = append(g.sets[k], rr)
	}
	return g
}

func (g rrsets) get(name string, t uint16) []dns.RR { return g.sets[setKey(name, t)] }

// at returns the RRsets answering (name, qtype): one set, or every set at
// name for ANY.
func (g rrsets) at(name string, qtype uint16) [][]dns.RR {
	if qtype != dns.TypeANY {
		if s := g.get(name, qtype); len(s) > 0 {
			return [][]dns.RR{s}
		}
		return nil
	}
	var out [][]dns.RR
	prefix := dnsname.Canonical(name) + "/"
	for _, k := range g.keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, g.sets[k])
		}
	}
	return out
}

// dnameAbove returns a DNAME record whose owner is a strict ancestor of name.
func (g rrsets) dnameAbove(name string) *dns.DNAME {
	for _, k := range g.keys {
		set := g.sets[k]
		d, ok := set[0].(*dns.DNAME)
		if ok && dnsname.IsAtOrBelow(name, d.Hdr.Name) && !dnsname.Equal(name, d.Hdr.Name) {
			return d
		}
	}
	return nil
}

// checkSynthesis checks the CNAME RRset a response carries for name below
// a DNAME: absent (the resolver may synthesise it) or exactly one CNAME
// from name to target, the DNAME substitution (RFC 6672 3.2). The server
// does not sign it, so nothing but this check stands behind it.
func checkSynthesis(cnames []dns.RR, name, target string) Result {
	if len(cnames) > 1 {
		return bogus(EDEDNSSECBogus, strconv.Itoa(len(cnames))+" CNAMEs for "+name+" below a DNAME")
	}
	if len(cnames) == 1 {
		if c, ok := cnames[0].(*dns.CNAME); ok && dnsname.Equal(c.Target, target) {
			return secure(0)
		}
		return bogus(EDEDNSSECBogus, "CNAME for "+name+" disagrees with the DNAME (want "+target+")")
	}
	return secure(0)
}

// substitute applies a DNAME to name (RFC 6672 2.2). ok is false when
// name is not below the DNAME owner or the result is not a domain name;
// tooLong is true (and ok false) when the result would be a name longer
// than 255 octets, which the server answers with YXDOMAIN.
func substitute(name string, d *dns.DNAME) (target string, ok, tooLong bool) {
	if len(d.Hdr.Name) >= len(name) {
		return "", false, false
	}
	prefix := name[:len(name)-len(d.Hdr.Name)]
	if !dnsname.Equal(name[len(prefix):], d.Hdr.Name) || prefix[len(prefix)-1] != '.' {
		return "", false, false
	}
	target = prefix + dns.Fqdn(d.Target)
	if d.Target == "." {
		target = prefix
	}
	var buf [2 * 256]byte // wire form of at most 255 + 255 octets
	n, err := dns.PackDomainName(target, buf[:], 0, nil, false)
	switch {
	case err != nil:
		return "", false, false
	case n > 255: // packing does not check the RFC 1035 limit
		return "", false, true
	}
	return target, true, false
}
