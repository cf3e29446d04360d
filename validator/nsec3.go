package validator

import (
	"bytes"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/security"

	"github.com/miekg/dns"
)

// nsec3Set is the usable NSEC3 records of one response for one zone, with
// their decoded hashes, and a per-proof cache of computed name hashes.
type nsec3Set struct {
	zone  string
	recs  []*dns.NSEC3
	owner [][]byte
	next  [][]byte
	iter  uint16
	salt  string
	b     *Budget
	cache map[string][]byte
}

// newNSEC3Set keeps the NSEC3 records that may take part in a proof for
// zone (RFC 5155 8.2): owner exactly one label below the zone, SHA-1 hash,
// flags 0 or 1 (opt-out), well-formed hashes, and the same parameters as the
// first such record. unknownAlg reports records that were dropped only for
// an unknown hash algorithm: if nothing else is left the zone is insecure.
func newNSEC3Set(all []*dns.NSEC3, zone string, b *Budget) (s *nsec3Set, unknownAlg bool) {
	s = &nsec3Set{zone: zone, b: b, cache: make(map[string][]byte, 4)}
	zoneLabels := dnsname.CountLabels(zone)
	for _, r := range all {
		if !dnsname.IsAtOrBelow(r.Hdr.Name, zone) || dnsname.CountLabels(r.Hdr.Name) != zoneLabels+1 || r.Flags > 1 {
			continue
		}
		if r.Hash != dns.SHA1 {
			unknownAlg = true
			continue
		}
		if len(s.recs) > 0 && (r.Iterations != s.iter || !equalFoldHex(r.Salt, s.salt)) {
			continue
		}
		dot := strings.IndexByte(r.Hdr.Name, '.')
		if dot <= 0 {
			continue
		}
		owner, err1 := decodeHash(r.Hdr.Name[:dot])
		next, err2 := decodeHash(r.NextDomain)
		if err1 != nil || err2 != nil {
			continue
		}
		if len(s.recs) == 0 {
			s.iter, s.salt = r.Iterations, r.Salt
		}
		s.recs = append(s.recs, r)
		s.owner = append(s.owner, owner)
		s.next = append(s.next, next)
	}
	if len(s.recs) == 0 {
		return nil, unknownAlg
	}
	return s, unknownAlg
}

func decodeHash(s string) ([]byte, error) {
	h, err := base32.HexEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(s))
	if err != nil {
		return nil, fmt.Errorf("NSEC3 hash %q: %w", s, err)
	}
	if len(h) != 20 {
		return nil, fmt.Errorf("NSEC3 hash %q: %d bytes, want 20", s, len(h))
	}
	return h, nil
}

var errIterations = errors.New("NSEC3 iterations above limit")

// hash returns the NSEC3 hash of name, spending one unit of the budget per
// new name. It refuses to hash when the iterations exceed the limit: the
// caller checks that first, this is the second lock on the door.
func (s *nsec3Set) hash(name string) ([]byte, error) {
	key := dnsname.Canonical(name)
	if h, ok := s.cache[key]; ok {
		return h, nil
	}
	if s.iter > s.b.lim.MaxNSEC3Iterations {
		return nil, errIterations
	}
	if err := s.b.spendHash(); err != nil {
		return nil, err
	}
	h, err := decodeHash(dns.HashName(key, dns.SHA1, s.iter, s.salt))
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", name, err)
	}
	s.cache[key] = h
	return h, nil
}

// match returns the index of the record whose owner hash is h, or -1.
func (s *nsec3Set) match(h []byte) int {
	for i, o := range s.owner {
		if bytes.Equal(o, h) {
			return i
		}
	}
	return -1
}

// cover returns the index of a record whose span strictly contains h, or -1.
func (s *nsec3Set) cover(h []byte) int {
	for i := range s.recs {
		o, n := s.owner[i], s.next[i]
		if bytes.Compare(o, n) < 0 {
			if bytes.Compare(o, h) < 0 && bytes.Compare(h, n) < 0 {
				return i
			}
			continue
		}
		// Last record of the chain wraps around.
		if bytes.Compare(h, o) > 0 || bytes.Compare(h, n) < 0 {
			return i
		}
	}
	return -1
}

func (s *nsec3Set) optOut(i int) bool { return s.recs[i].Flags&1 == 1 }

// encloser is the result of the closest encloser proof (RFC 5155 8.3).
type encloser struct {
	ce         string
	ceIdx      int
	nextCloser string // "" when qname itself matched
	ncIdx      int    // record covering nextCloser
}

// closestEncloser finds the closest provable encloser of qname and the
// record covering the next closer name. exact reports that qname itself
// has a matching NSEC3 (then nextCloser is empty).
func (s *nsec3Set) closestEncloser(qname string) (e encloser, exact bool, res Result, err error) {
	if !dnsname.IsAtOrBelow(qname, s.zone) {
		return e, false, bogus(EDEDNSSECBogus, "name "+qname+" outside zone "+s.zone), nil
	}
	nc := ""
	for name := dns.Fqdn(qname); ; name = dnsname.Parent(name) {
		h, err := s.hash(name)
		if err != nil {
			return e, false, Result{}, err
		}
		if i := s.match(h); i >= 0 {
			bm := s.recs[i].TypeBitMap
			if nc != "" && (hasType(bm, dns.TypeDNAME) || isDelegationBitmap(bm)) {
				return e, false, bogus(EDEDNSSECBogus, "closest encloser "+name+" is a delegation or DNAME"), nil
			}
			e.ce, e.ceIdx = name, i
			break
		}
		if dnsname.Equal(name, s.zone) || name == "." {
			return e, false, bogus(EDENSECMissing, "no NSEC3 proves a closest encloser for "+qname), nil
		}
		nc = name
	}
	if nc == "" {
		return e, true, secure(0), nil
	}
	h, err := s.hash(nc)
	if err != nil {
		return e, false, Result{}, err
	}
	j := s.cover(h)
	if j < 0 {
		return e, false, bogus(EDENSECMissing, "no NSEC3 covers next closer name "+nc), nil
	}
	e.nextCloser, e.ncIdx = nc, j
	return e, false, secure(0), nil
}

// nsec3NXDOMAIN: closest encloser proof plus a record covering the wildcard
// at the closest encloser (RFC 5155 8.4). Opt-out on the next closer makes
// the answer insecure: an unsigned delegation may hide there.
func nsec3NXDOMAIN(s *nsec3Set, qname string) ([]dns.RR, Result, error) {
	e, exact, res, err := s.closestEncloser(qname)
	if err != nil || res.Status != secureStatus {
		return nil, res, err
	}
	if exact {
		return nil, bogus(EDEDNSSECBogus, "NSEC3 shows "+qname+" exists"), nil
	}
	wh, err := s.hash(wildcardOf(e.ce))
	if err != nil {
		return nil, Result{}, err
	}
	w := s.cover(wh)
	if w < 0 {
		return nil, bogus(EDENSECMissing, "no NSEC3 denies wildcard "+wildcardOf(e.ce)), nil
	}
	used := []dns.RR{s.recs[e.ceIdx], s.recs[e.ncIdx], s.recs[w]}
	if s.optOut(e.ncIdx) {
		return used, insecure(EDENone, "opt-out NSEC3 covers "+e.nextCloser), nil
	}
	return used, secure(0), nil
}

// nsec3NODATA covers RFC 5155 8.5 (match), 8.6 (DS with opt-out) and 8.7
// (wildcard NODATA).
func nsec3NODATA(s *nsec3Set, qname string, qtype uint16) ([]dns.RR, Result, error) {
	if !deniableType(qtype) {
		return nil, undeniable(qtype), nil
	}
	h, err := s.hash(qname)
	if err != nil {
		return nil, Result{}, err
	}
	if i := s.match(h); i >= 0 {
		if !nsecMatchDeniesType(s.recs[i].TypeBitMap, qname, qtype) {
			return nil, bogus(EDEDNSSECBogus, "matching NSEC3 does not deny "+dns.TypeToString[qtype]+" at "+qname), nil
		}
		return []dns.RR{s.recs[i]}, secure(0), nil
	}
	e, exact, res, err := s.closestEncloser(qname)
	if err != nil || res.Status != secureStatus || exact {
		return nil, res, err
	}
	if qtype == dns.TypeDS {
		if s.optOut(e.ncIdx) {
			return []dns.RR{s.recs[e.ceIdx], s.recs[e.ncIdx]}, insecure(EDENone, "opt-out NSEC3 covers "+e.nextCloser), nil
		}
		return nil, bogus(EDEDNSSECBogus, "NSEC3 proves "+qname+" does not exist, not NODATA"), nil
	}
	wc := wildcardOf(e.ce)
	wh, err := s.hash(wc)
	if err != nil {
		return nil, Result{}, err
	}
	w := s.match(wh)
	if w < 0 && s.optOut(e.ncIdx) {
		// An empty non-terminal above unsigned delegations has no NSEC3
		// in an opt-out zone (RFC 5155 7.1): not provable, so insecure.
		return []dns.RR{s.recs[e.ceIdx], s.recs[e.ncIdx]}, insecure(EDENone, "opt-out NSEC3 covers "+e.nextCloser), nil
	}
	if w < 0 {
		return nil, bogus(EDENSECMissing, "no NSEC3 matches "+qname+" or its wildcard"), nil
	}
	if !nsecMatchDeniesType(s.recs[w].TypeBitMap, wc, qtype) {
		return nil, bogus(EDEDNSSECBogus, "wildcard NSEC3 does not deny "+dns.TypeToString[qtype]), nil
	}
	used := []dns.RR{s.recs[e.ceIdx], s.recs[e.ncIdx], s.recs[w]}
	if s.optOut(e.ncIdx) {
		return used, insecure(EDENone, "opt-out NSEC3 covers "+e.nextCloser), nil
	}
	return used, secure(0), nil
}

// nsec3WildcardAnswer: the next closer name of qname below the wildcard's
// closest encloser must be covered (RFC 5155 8.8).
func nsec3WildcardAnswer(s *nsec3Set, qname, wildcard string) ([]dns.RR, Result, error) {
	ce := dnsname.Parent(wildcard)
	if !dnsname.IsAtOrBelow(qname, ce) || dnsname.Equal(qname, ce) {
		return nil, bogus(EDEDNSSECBogus, "wildcard "+wildcard+" cannot expand to "+qname), nil
	}
	nc := dnsname.LastLabels(qname, dnsname.CountLabels(ce)+1)
	h, err := s.hash(nc)
	if err != nil {
		return nil, Result{}, err
	}
	i := s.cover(h)
	if i < 0 {
		return nil, bogus(EDENSECMissing, "no NSEC3 covers next closer "+nc+" of wildcard answer"), nil
	}
	if s.optOut(i) {
		return []dns.RR{s.recs[i]}, insecure(EDENone, "opt-out NSEC3 covers "+nc), nil
	}
	return []dns.RR{s.recs[i]}, secure(0), nil
}

// nsec3NoDS proves that name, a delegation, has no DS (RFC 5155 8.6, 8.9):
// a matching record with NS and without DS and SOA, or opt-out covering the
// next closer. cut reports whether the proof shows a delegation at name.
func nsec3NoDS(s *nsec3Set, name string) (used []dns.RR, res Result, cut bool, err error) {
	h, err := s.hash(name)
	if err != nil {
		return nil, Result{}, false, err
	}
	if i := s.match(h); i >= 0 {
		bm := s.recs[i].TypeBitMap
		if !nsecMatchDeniesType(bm, name, dns.TypeDS) {
			return nil, bogus(EDEDNSSECBogus, "NSEC3 at "+name+" does not deny DS"), false, nil
		}
		return []dns.RR{s.recs[i]}, secure(0), hasType(bm, dns.TypeNS), nil
	}
	e, exact, res, err := s.closestEncloser(name)
	if err != nil || res.Status != secureStatus || exact {
		return nil, res, false, err
	}
	if !s.optOut(e.ncIdx) {
		return nil, bogus(EDEDNSSECBogus, "NSEC3 proves "+name+" does not exist"), false, nil
	}
	return []dns.RR{s.recs[e.ceIdx], s.recs[e.ncIdx]}, insecure(EDENone, "opt-out NSEC3 covers "+e.nextCloser), true, nil
}

const secureStatus = security.Secure
