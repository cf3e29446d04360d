package resolver

import (
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/validator"
)

// RFC 8198 aggressive use of the DNSSEC-validated cache: NSEC and NSEC3 records of
// secure negative and wildcard answers are kept per zone, and a question
// whose name falls in a kept range is answered NXDOMAIN or NODATA without
// asking upstream. The synthesised answer carries the records with their
// RRSIGs and is validated again like any other.

const (
	// maxDenialZones bounds the zones whose NSEC records are kept.
	maxDenialZones = 1024
	// maxNSECPerZone bounds the NSEC/NSEC3 records kept per zone; the one
	// that expires first makes room.
	maxNSECPerZone = 256
)

// denialRecord is one validated NSEC or NSEC3 record with its RRSIGs.
type denialRecord struct {
	rr      dns.RR // *dns.NSEC or *dns.NSEC3
	sigs    []dns.RR
	expires time.Time
}

// denialZone is what is kept of one zone: its SOA (for the negative TTL
// of synthesised answers) and its NSEC or NSEC3 records by owner.
type denialZone struct {
	soa        []dns.RR // the SOA and its RRSIGs
	soaExpires time.Time
	nsec       map[string]denialRecord // NSEC and NSEC3 records by owner
}

// denialStore holds the validated NSEC ranges. Its lock is never held
// across I/O or signature checks.
type denialStore struct {
	clk   clock.Clock
	mu    sync.Mutex
	zones *lru.Cache[string, *denialZone]
}

func newDenialStore(clk clock.Clock) *denialStore {
	zones, _ := lru.New[string, *denialZone](maxDenialZones) // size > 0: no error
	return &denialStore{clk: clk, zones: zones}
}

// add keeps the NSEC or NSEC3 records (and the SOA) of a secure denial;
// ttl is the validated TTL (signatures), which caps every record's
// lifetime. NSEC3 opt-out records and those over maxIterations are left out.
func (s *denialStore) add(authority []dns.RR, ttl uint32, maxIterations uint16) {
	var zone string
	sigs := map[string][]dns.RR{}
	var soa []dns.RR
	for _, rr := range authority {
		if sig, ok := rr.(*dns.RRSIG); ok {
			k := canonical(sig.Hdr.Name) + "/" + dns.TypeToString[sig.TypeCovered]
			sigs[k] = append(sigs[k], sig)
			if sig.TypeCovered == dns.TypeNSEC || sig.TypeCovered == dns.TypeNSEC3 {
				zone = canonical(sig.SignerName)
			}
		}
	}
	if zone == "" {
		return
	}
	now := s.clk.Now()
	lifetime := func(rrTTL uint32) time.Time {
		if ttl > 0 {
			rrTTL = min(rrTTL, ttl)
		}
		return now.Add(time.Duration(rrTTL) * time.Second)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	z, ok := s.zones.Get(zone)
	if !ok {
		z = &denialZone{nsec: map[string]denialRecord{}}
		s.zones.Add(zone, z)
	}
	for _, rr := range authority {
		switch x := rr.(type) {
		case *dns.SOA:
			if canonical(x.Hdr.Name) == zone {
				soa = append([]dns.RR{x}, sigs[zone+"/SOA"]...)
				z.soa, z.soaExpires = soa, lifetime(x.Hdr.Ttl)
			}
		case *dns.NSEC, *dns.NSEC3:
			if n3, ok := x.(*dns.NSEC3); ok && (n3.Flags&1 == 1 || n3.Iterations > maxIterations) {
				continue // opt-out spans and costly hashes prove nothing here
			}
			h := rr.Header()
			owner := canonical(h.Name)
			rs := sigs[owner+"/"+dns.TypeToString[h.Rrtype]]
			if len(rs) == 0 || !isSubdomain(owner, zone) {
				continue
			}
			if _, have := z.nsec[owner]; !have && len(z.nsec) >= maxNSECPerZone {
				z.evictOne(now)
			}
			z.nsec[owner] = denialRecord{rr: rr, sigs: rs, expires: lifetime(h.Ttl)}
		}
	}
}

// evictOne removes the expired records, or else the one expiring first.
func (z *denialZone) evictOne(now time.Time) {
	var first string
	var firstAt time.Time
	for owner, r := range z.nsec {
		if !now.Before(r.expires) {
			delete(z.nsec, owner)
			continue
		}
		if first == "" || r.expires.Before(firstAt) {
			first, firstAt = owner, r.expires
		}
	}
	if len(z.nsec) >= maxNSECPerZone && first != "" {
		delete(z.nsec, first)
	}
}

// snapshot returns the live records of the deepest kept zone at or above
// name, with the remaining TTL of each; ok is false when there is none or
// its SOA has expired.
func (s *denialStore) snapshot(name string) (zone string, soa []dns.RR, soaTTL uint32, recs []denialRecord, ok bool) {
	now := s.clk.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for n := name; ; n = parentName(n) {
		if z, found := s.zones.Get(n); found {
			if !now.Before(z.soaExpires) || len(z.soa) == 0 {
				return "", nil, 0, nil, false
			}
			for _, r := range z.nsec {
				if now.Before(r.expires) {
					recs = append(recs, r)
				}
			}
			return n, z.soa, uint32((z.soaExpires.Sub(now) + time.Second - 1) / time.Second), recs, len(recs) > 0
		}
		if n == "." {
			return "", nil, 0, nil, false
		}
	}
}

// aggressiveDenial answers q from validated NSEC ranges, or returns false.
// DS questions are left alone: a child apex's NSEC does not speak for the
// parent's DS. Which types a range can deny (never ANY at a name with data,
// nor a meta-type) is validator.AggressiveDenial's call.
func (r *Resolver) aggressiveDenial(q question, b *Budget) (*step, bool) {
	d, ok := r.cfg.Validator.(*DNSSEC)
	if !ok || q.qtype == dns.TypeDS || q.qclass != dns.ClassINET {
		return nil, false
	}
	zone, soa, soaTTL, recs, ok := d.denials.snapshot(q.name)
	if !ok {
		return nil, false
	}
	records := make([]dns.RR, len(recs))
	for i, rec := range recs {
		records[i] = rec.rr
	}
	denial, err := validator.AggressiveDenial(q.name, q.qtype, zone, records, d.validationBudget(b))
	if err != nil || denial == validator.DenialNone {
		return nil, false
	}
	now := d.clk.Now()
	auth := cache.WithTTL(soa, soaTTL)
	hashes := nsec3Candidates(recs, q.name, zone)
	for _, rec := range recs {
		if !provesFor(rec.rr, q.name, zone, hashes) {
			continue
		}
		ttl := uint32((rec.expires.Sub(now) + time.Second - 1) / time.Second)
		auth = append(auth, cache.WithTTL([]dns.RR{rec.rr}, ttl)...)
		auth = append(auth, cache.WithTTL(rec.sigs, ttl)...)
	}
	st := &step{rcode: dns.RcodeSuccess, authority: auth}
	if denial == validator.DenialNXDOMAIN {
		st.rcode = dns.RcodeNameError
	}
	r.log.Debug("answered from validated NSEC (RFC 8198)", "name", q.name, "type", dns.TypeToString[q.qtype], "zone", zone, "rcode", dns.RcodeToString[st.rcode])
	return st, true
}

// provesFor reports whether an NSEC or NSEC3 record takes part in a
// denial for name: it is name's own record, covers name, or is or covers
// the wildcard at one of name's ancestors inside zone (for NSEC3 also the
// closest encloser's match). hashes are the NSEC3 hashes of those names.
func provesFor(rr dns.RR, name, zone string, hashes []string) bool {
	switch x := rr.(type) {
	case *dns.NSEC:
		return nsecProvesFor(x, name, zone)
	case *dns.NSEC3:
		owner, _, _ := strings.Cut(x.Hdr.Name, ".")
		owner = strings.ToUpper(owner)
		next := strings.ToUpper(x.NextDomain)
		for _, h := range hashes {
			if h == owner || nsec3CoversHash(owner, next, h) {
				return true
			}
		}
	}
	return false
}

// nsec3CoversHash reports owner < h < next in hash order, the last record
// of the chain (next <= owner) covering the wrap-around.
func nsec3CoversHash(owner, next, h string) bool {
	if owner < next {
		return owner < h && h < next
	}
	return owner < h || h < next
}

// nsec3Candidates hashes, with the parameters of the kept NSEC3 records,
// the names an NSEC3 denial for name speaks of: name, its ancestors down to
// zone, and the wildcards below them. The records passed AggressiveDenial,
// so their iterations are within the limit; the names are at most 127.
func nsec3Candidates(recs []denialRecord, name, zone string) []string {
	var p *dns.NSEC3
	for _, rec := range recs {
		if x, ok := rec.rr.(*dns.NSEC3); ok {
			p = x
			break
		}
	}
	if p == nil {
		return nil
	}
	var out []string
	for n := name; isSubdomain(n, zone); n = parentName(n) {
		out = append(out, dns.HashName(n, p.Hash, p.Iterations, p.Salt), dns.HashName("*."+n, p.Hash, p.Iterations, p.Salt))
		if n == zone || n == "." {
			break
		}
	}
	return out
}

// nsecProvesFor is provesFor for NSEC.
func nsecProvesFor(nsec *dns.NSEC, name, zone string) bool {
	owner := canonical(nsec.Hdr.Name)
	if owner == name || validator.NSECCovers(nsec, name) {
		return true
	}
	for n := parentName(name); isSubdomain(n, zone); n = parentName(n) {
		w := "*." + n
		if n == "." {
			w = "*."
		}
		if owner == w || validator.NSECCovers(nsec, w) {
			return true
		}
		if n == zone || n == "." {
			break
		}
	}
	return false
}
