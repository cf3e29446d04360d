package validator

import (
	"fmt"
	"strconv"
	"time"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/security"
)

// denial holds the NSEC/NSEC3 records and RRSIGs of one response's
// authority section that belong to one zone.
type denial struct {
	zone  string
	auth  []dns.RR
	nsec  []*dns.NSEC
	nsec3 []*dns.NSEC3
	sigs  []*dns.RRSIG
}

func collectDenial(auth []dns.RR, zone string) *denial {
	d := &denial{zone: dns.Fqdn(zone), auth: auth}
	for _, rr := range auth {
		switch x := rr.(type) {
		case *dns.NSEC:
			if dnsname.IsAtOrBelow(x.Hdr.Name, d.zone) {
				d.nsec = append(d.nsec, x)
			}
		case *dns.NSEC3:
			if dnsname.IsAtOrBelow(x.Hdr.Name, d.zone) {
				d.nsec3 = append(d.nsec3, x)
			}
		case *dns.RRSIG:
			d.sigs = append(d.sigs, x)
		}
	}
	return d
}

// verify validates the RRsets of the records a proof used. A denial record
// that fails, or that was synthesised from a wildcard, makes the proof bogus.
// A secure result carries the verified RRsets as its Proof.
func (d *denial) verify(used []dns.RR, keys []*dns.DNSKEY, now time.Time, b *Budget) Result {
	out := secure(0)
	var verified []dns.RR
	seen := make(map[string]bool, len(used))
	for _, rec := range used {
		h := rec.Header()
		key := dnsname.Canonical(h.Name) + "/" + dns.TypeToString[h.Rrtype]
		if seen[key] {
			continue
		}
		seen[key] = true
		var rrset []dns.RR
		for _, rr := range d.auth {
			if rh := rr.Header(); rh.Rrtype == h.Rrtype && dnsname.Equal(rh.Name, h.Name) {
				rrset = append(rrset, rr)
			}
		}
		res := VerifyRRset(rrset, d.sigs, keys, d.zone, now, b)
		if res.Status != security.Secure {
			res.Reason = "denial: " + res.Reason
			return res
		}
		if res.Wildcard != "" {
			return bogus(EDEDNSSECBogus, "denial record "+h.Name+" signed as a wildcard expansion")
		}
		out.TTL = minTTL(out.TTL, res.TTL)
		verified = append(verified, rrset...)
	}
	if len(verified) > 0 {
		out.Proofs = []Proof{{Zone: d.zone, Records: verified}}
	}
	return out
}

// finish verifies the records a proof used and merges the outcome.
func (d *denial) finish(used []dns.RR, proof Result, keys []*dns.DNSKEY, now time.Time, b *Budget) Result {
	if proof.Status == security.Bogus || proof.Status == security.Indeterminate {
		return proof
	}
	v := d.verify(used, keys, now, b)
	if v.Status != security.Secure {
		return v
	}
	proof.TTL = v.TTL
	if proof.Status == security.Secure {
		proof.Proofs = v.Proofs
	}
	return proof
}

// nsec3Proof selects the NSEC3 records, applies the iteration limit before
// any hashing (RFC 9276 3.2: the records are still validated first, so that
// an attacker cannot downgrade by raising the count) and runs proof.
func (d *denial) nsec3Proof(keys []*dns.DNSKEY, now time.Time, b *Budget, proof func(*nsec3Set) ([]dns.RR, Result, error)) Result {
	s, unknownAlg := newNSEC3Set(d.nsec3, d.zone, b)
	if s == nil {
		if !unknownAlg {
			return bogus(EDENSECMissing, "no usable NSEC3 records for "+d.zone)
		}
		used := make([]dns.RR, len(d.nsec3))
		for i, r := range d.nsec3 {
			used[i] = r
		}
		return d.finish(used, insecure(EDENone, "NSEC3 with unknown hash algorithm"), keys, now, b)
	}
	if s.iter > b.lim.MaxNSEC3Iterations {
		used := make([]dns.RR, len(s.recs))
		for i, r := range s.recs {
			used[i] = r
		}
		return d.finish(used, insecure(EDEUnsupportedNSEC3Iterations,
			fmt.Sprintf("NSEC3 iterations %d above limit %d", s.iter, b.lim.MaxNSEC3Iterations)), keys, now, b)
	}
	used, res, err := proof(s)
	if err != nil {
		return budgetBogus(err)
	}
	return d.finish(used, res, keys, now, b)
}

// ProveNXDOMAIN checks that auth (the authority section: NSEC or NSEC3
// records and their RRSIGs) proves qname does not exist in zone, signed by
// keys (RFC 4035 5.4, RFC 5155 8.4). Secure on proof; Insecure when an
// opt-out NSEC3 covers the next closer name or the NSEC3 parameters are
// unsupported (EDE 27 for iterations); Bogus otherwise (EDE 12 when records
// are missing).
func ProveNXDOMAIN(qname, zone string, auth []dns.RR, keys []*dns.DNSKEY, now time.Time, b *Budget) Result {
	b, qname = orDefault(b), dns.Fqdn(qname)
	d := collectDenial(auth, zone)
	switch {
	case len(d.nsec) > 0:
		used, res := nsecNXDOMAIN(d, qname)
		return d.finish(used, res, keys, now, b)
	case len(d.nsec3) > 0:
		return d.nsec3Proof(keys, now, b, func(s *nsec3Set) ([]dns.RR, Result, error) { return nsec3NXDOMAIN(s, qname) })
	}
	return bogus(EDENSECMissing, "no NSEC or NSEC3 records to prove NXDOMAIN for "+qname)
}

// ProveNODATA checks that auth proves qname exists without qtype: a
// matching record lacking the type (and CNAME), an empty non-terminal, or a
// wildcard lacking the type (RFC 4035 5.4, RFC 5155 8.5-8.7). For DS the
// parent-side record at a delegation is the proof; the child apex record
// is not. An opt-out NSEC3 span makes a DS NODATA insecure.
func ProveNODATA(qname string, qtype uint16, zone string, auth []dns.RR, keys []*dns.DNSKEY, now time.Time, b *Budget) Result {
	b, qname = orDefault(b), dns.Fqdn(qname)
	d := collectDenial(auth, zone)
	switch {
	case len(d.nsec) > 0:
		used, res := nsecNODATA(d, qname, qtype)
		return d.finish(used, res, keys, now, b)
	case len(d.nsec3) > 0:
		return d.nsec3Proof(keys, now, b, func(s *nsec3Set) ([]dns.RR, Result, error) { return nsec3NODATA(s, qname, qtype) })
	}
	return bogus(EDENSECMissing, "no NSEC or NSEC3 records to prove NODATA for "+qname)
}

// ProveWildcardAnswer checks that a positive answer for qname synthesised
// from wildcard (as reported in Result.Wildcard by VerifyRRset) is
// legitimate: auth must prove that no closer match for qname exists
// (RFC 4035 5.3.4, RFC 5155 8.8).
func ProveWildcardAnswer(qname, wildcard, zone string, auth []dns.RR, keys []*dns.DNSKEY, now time.Time, b *Budget) Result {
	b, qname, wildcard = orDefault(b), dns.Fqdn(qname), dns.Fqdn(wildcard)
	d := collectDenial(auth, zone)
	switch {
	case len(d.nsec) > 0:
		used, res := nsecWildcardAnswer(d, qname, wildcard)
		return d.finish(used, res, keys, now, b)
	case len(d.nsec3) > 0:
		return d.nsec3Proof(keys, now, b, func(s *nsec3Set) ([]dns.RR, Result, error) { return nsec3WildcardAnswer(s, qname, wildcard) })
	}
	return bogus(EDENSECMissing, "no NSEC or NSEC3 records prove the wildcard answer for "+qname)
}

// ProveNoDS checks that auth, from the parent zone, proves the delegation
// name has no DS, which makes the child insecure (RFC 4035 5.2). The
// Result is Insecure when proven (by a signed NSEC/NSEC3 with NS and
// without DS and SOA, or an opt-out NSEC3 span), Bogus otherwise.
func ProveNoDS(name, zone string, auth []dns.RR, keys []*dns.DNSKEY, now time.Time, b *Budget) Result {
	res, cut := proveNoDS(name, zone, auth, keys, now, b)
	switch {
	case res.Status == security.Secure && cut:
		res.Status, res.Reason = security.Insecure, "proven insecure delegation at "+name
	case res.Status == security.Secure:
		return bogus(EDEDNSSECBogus, "no DS at "+name+", but it is no delegation either")
	}
	return res
}

// proveNoDS proves the absence of DS at name. Status Secure: proven, and
// cut tells whether name is a delegation; Insecure: opt-out, may be one.
func proveNoDS(name, zone string, auth []dns.RR, keys []*dns.DNSKEY, now time.Time, b *Budget) (Result, bool) {
	b, name = orDefault(b), dns.Fqdn(name)
	d := collectDenial(auth, zone)
	switch {
	case len(d.nsec) > 0:
		used, res, cut := nsecNoDS(d, name)
		return d.finish(used, res, keys, now, b), cut
	case len(d.nsec3) > 0:
		var cut bool
		res := d.nsec3Proof(keys, now, b, func(s *nsec3Set) ([]dns.RR, Result, error) {
			used, res, c, err := nsec3NoDS(s, name)
			cut = c
			return used, res, err
		})
		return res, cut || res.Status == security.Insecure
	}
	return bogus(EDENSECMissing, "no NSEC or NSEC3 records prove the absence of DS at "+name), false
}

// nsecNXDOMAIN: one NSEC covers qname, one covers the wildcard at the
// closest encloser (RFC 4035 5.4).
func nsecNXDOMAIN(d *denial, qname string) ([]dns.RR, Result) {
	cover := d.nsecCovering(qname)
	if cover == nil {
		return nil, bogus(EDENSECMissing, "no NSEC covers "+qname)
	}
	if nsecShowsENT(cover, qname) {
		return nil, bogus(EDEDNSSECBogus, "NSEC shows "+qname+" is an empty non-terminal, not NXDOMAIN")
	}
	ce := nsecClosestEncloser(cover, qname)
	if !dnsname.IsAtOrBelow(ce, d.zone) {
		return nil, bogus(EDEDNSSECBogus, "closest encloser outside zone "+d.zone)
	}
	wc := wildcardOf(ce)
	for _, n := range d.nsec {
		if dnsname.Equal(n.Hdr.Name, wc) {
			return nil, bogus(EDEDNSSECBogus, "wildcard "+wc+" exists; NXDOMAIN is wrong")
		}
	}
	wcover := d.nsecCovering(wc)
	if wcover == nil {
		return nil, bogus(EDENSECMissing, "no NSEC denies wildcard "+wc)
	}
	return []dns.RR{cover, wcover}, secure(0)
}

// nsecNODATA: a matching NSEC without the type, an empty non-terminal, or
// a wildcard NODATA (RFC 4035 3.1.3.1, 3.1.3.2, 3.1.3.4).
func nsecNODATA(d *denial, qname string, qtype uint16) ([]dns.RR, Result) {
	if !deniableType(qtype) {
		return nil, undeniable(qtype)
	}
	for _, n := range d.nsec {
		if dnsname.Equal(n.Hdr.Name, qname) {
			if !nsecMatchDeniesType(n.TypeBitMap, qname, qtype) {
				return nil, bogus(EDEDNSSECBogus, "NSEC at "+qname+" does not deny "+dns.TypeToString[qtype])
			}
			return []dns.RR{n}, secure(0)
		}
	}
	cover := d.nsecCovering(qname)
	if cover == nil {
		return nil, bogus(EDENSECMissing, "no NSEC matches or covers "+qname)
	}
	if nsecShowsENT(cover, qname) {
		return []dns.RR{cover}, secure(0)
	}
	// The wildcard NODATA of NSECProvesWildcardNODATA, with the covering
	// record's part (covers, no empty non-terminal) done once above.
	wc := wildcardOf(nsecClosestEncloser(cover, qname))
	for _, n := range d.nsec {
		if dnsname.Equal(n.Hdr.Name, wc) && nsecMatchDeniesType(n.TypeBitMap, wc, qtype) {
			return []dns.RR{cover, n}, secure(0)
		}
	}
	return nil, bogus(EDENSECMissing, "no NSEC proves NODATA for "+qname+" (wildcard "+wc+")")
}

// nsecWildcardAnswer: an NSEC covers qname and its closest encloser is the
// wildcard's parent, so no closer match exists (RFC 4035 5.3.4).
func nsecWildcardAnswer(d *denial, qname, wildcard string) ([]dns.RR, Result) {
	ce := dnsname.Parent(wildcard)
	for _, n := range d.nsec {
		if NSECCovers(n, qname) && !nsecShowsENT(n, qname) && dnsname.Equal(nsecClosestEncloser(n, qname), ce) {
			return []dns.RR{n}, secure(0)
		}
	}
	return nil, bogus(EDENSECMissing, "no NSEC proves that no closer match than "+wildcard+" exists for "+qname)
}

// nsecNoDS: the NSEC at name lacks DS and SOA; cut tells whether it has NS.
func nsecNoDS(d *denial, name string) ([]dns.RR, Result, bool) {
	for _, n := range d.nsec {
		if dnsname.Equal(n.Hdr.Name, name) {
			if !nsecMatchDeniesType(n.TypeBitMap, name, dns.TypeDS) {
				return nil, bogus(EDEDNSSECBogus, "NSEC at "+name+" does not deny DS"), false
			}
			return []dns.RR{n}, secure(0), hasType(n.TypeBitMap, dns.TypeNS)
		}
	}
	// An empty non-terminal has no DS and is no delegation.
	if cover := d.nsecCovering(name); cover != nil && nsecShowsENT(cover, name) {
		return []dns.RR{cover}, secure(0), false
	}
	return nil, bogus(EDENSECMissing, "no NSEC at "+name+" proves the absence of DS"), false
}

// undeniable is the result of a NODATA claim for a type no denial proof
// speaks for (a meta-type or RRSIG; see deniableType).
func undeniable(qtype uint16) Result {
	return bogus(EDEDNSSECBogus, "no NSEC or NSEC3 can prove the absence of "+dns.TypeToString[qtype]+" (type "+strconv.Itoa(int(qtype))+")")
}

func (d *denial) nsecCovering(name string) *dns.NSEC {
	for _, n := range d.nsec {
		if NSECCovers(n, name) {
			return n
		}
	}
	return nil
}
