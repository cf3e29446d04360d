package resolver

import (
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/validator"
)

// RFC 8198 aggressive use of the DNSSEC-validated cache. The NSEC and NSEC3
// records whose signatures a validation verified (validator.Proof: the
// records a secure denial proof used) are kept twice: as RRsets in the RRset
// cache, marked Secure, and in a per-zone index (denialStore) where the
// records covering a name can be found. A question whose name falls in a
// kept range is answered NXDOMAIN or NODATA without asking upstream and
// without checking a signature again (a random-subdomain flood at a signed
// zone would otherwise cost a signature check per name): the proof logic
// (covering, closest encloser, wildcard, opt-out; RFC 8198 section 4,
// RFC 5155) runs on the kept records, and every record the proof uses must
// still be in the RRset cache, marked Secure and unchanged. So a cache
// flush, an expired or replaced RRset ends synthesis from it, and nothing
// that was not validated Secure is ever used.

const (
	// maxDenialZones bounds the zones whose NSEC records are kept.
	maxDenialZones = 1024
	// maxNSECPerZone bounds the NSEC/NSEC3 records kept per zone; the one
	// that expires first makes room.
	maxNSECPerZone = 256
	// denialRank is the rank of kept denial RRsets in the RRset cache.
	// They come from authority sections, but validated: ranked as answer
	// data, an unvalidated copy (the answer to a CD=1 NSEC question) can
	// neither displace a live Secure one nor keep it out (at equal rank
	// Secure data always replaces, see cache.Put).
	denialRank = cache.RankAnswerAuth
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
	negTTL     uint32                  // min(SOA TTL, MINIMUM) of the kept SOA; 0: none yet
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

// add keeps the SOA and NSEC/NSEC3 records of a secure proof, with the
// RRSIGs over them found in authority (made by the proof's zone). ttl is
// the validated TTL (signatures), which caps every record's lifetime, and
// so does the negative TTL of the zone's SOA (RFC 9077 3.4: an NSEC range
// denies no longer than a negative answer would). NSEC3 opt-out records
// and those over maxIterations are left out. It returns the records kept.
func (s *denialStore) add(p validator.Proof, authority []dns.RR, ttl uint32, maxIterations uint16) []denialRecord {
	zone := canonical(p.Zone)
	now := s.clk.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	z, ok := s.zones.Get(zone)
	if !ok {
		z = &denialZone{nsec: map[string]denialRecord{}}
		s.zones.Add(zone, z)
	}
	for _, rr := range p.Records {
		if soa, ok := rr.(*dns.SOA); ok && canonical(soa.Hdr.Name) == zone {
			z.negTTL = min(soa.Hdr.Ttl, soa.Minttl)
			z.soa = append([]dns.RR{soa}, sigsFor(authority, zone, dns.TypeSOA, zone)...)
			z.soaExpires = now.Add(seconds(capTTL(z.negTTL, ttl)))
		}
	}
	var kept []denialRecord
	for _, rr := range p.Records {
		h := rr.Header()
		if !keepable(rr, maxIterations) {
			continue
		}
		owner := canonical(h.Name)
		sigs := sigsFor(authority, owner, h.Rrtype, zone)
		if len(sigs) == 0 || !isSubdomain(owner, zone) {
			continue
		}
		if _, have := z.nsec[owner]; !have && len(z.nsec) >= maxNSECPerZone {
			z.evictOne(now)
		}
		rec := denialRecord{rr: rr, sigs: sigs, expires: now.Add(seconds(capTTL(capTTL(h.Ttl, ttl), z.negTTL)))}
		z.nsec[owner] = rec
		kept = append(kept, rec)
	}
	return kept
}

// keepable reports whether rr is an NSEC, or an NSEC3 that may prove
// something here: opt-out spans and costly hashes never do (RFC 8198 4.3,
// RFC 9276).
func keepable(rr dns.RR, maxIterations uint16) bool {
	switch x := rr.(type) {
	case *dns.NSEC:
		return true
	case *dns.NSEC3:
		return x.Flags&1 == 0 && x.Iterations <= maxIterations
	}
	return false
}

// sigsFor returns the RRSIGs in rrs over owner/rrtype made by signer.
func sigsFor(rrs []dns.RR, owner string, rrtype uint16, signer string) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if sig, ok := rr.(*dns.RRSIG); ok && sig.TypeCovered == rrtype &&
			dnsname.Equal(sig.Hdr.Name, owner) && dnsname.Equal(sig.SignerName, signer) {
			out = append(out, sig)
		}
	}
	return out
}

// capTTL is the smaller of ttl and limit; limit 0 is no limit.
func capTTL(ttl, limit uint32) uint32 {
	if limit > 0 {
		return min(ttl, limit)
	}
	return ttl
}

// seconds turns a TTL into a duration.
func seconds(ttl uint32) time.Duration { return time.Duration(ttl) * time.Second }

// secondsLeft is the whole seconds from now until t, rounded up; 0 when
// t has passed.
func secondsLeft(t, now time.Time) uint32 {
	d := t.Sub(now)
	if d <= 0 {
		return 0
	}
	return uint32((d + time.Second - 1) / time.Second)
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

// denialSnapshot is the live part of the deepest kept zone at or above a
// name: its SOA with the TTL left, and its records (records[i] is
// recs[i].rr, the form the validator takes).
type denialSnapshot struct {
	zone    string
	soa     []dns.RR
	soaTTL  uint32
	records []dns.RR
	recs    []denialRecord
}

// snapshot returns the live records of the deepest kept zone at or above
// name; ok is false when there is none or its SOA has expired (or was
// kept at a later time than the clock now shows).
func (s *denialStore) snapshot(name string) (snap denialSnapshot, ok bool) {
	now := s.clk.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for n := name; ; n = parentName(n) {
		if z, found := s.zones.Get(n); found {
			if !now.Before(z.soaExpires) || len(z.soa) == 0 {
				return snap, false
			}
			snap = denialSnapshot{zone: n, soa: z.soa, soaTTL: secondsLeft(z.soaExpires, now),
				records: make([]dns.RR, 0, len(z.nsec)), recs: make([]denialRecord, 0, len(z.nsec))}
			for _, r := range z.nsec {
				if now.Before(r.expires) {
					snap.records = append(snap.records, r.rr)
					snap.recs = append(snap.recs, r)
				}
			}
			return snap, len(snap.recs) > 0
		}
		if n == "." {
			return snap, false
		}
	}
}

// find returns the kept record that is rr itself (the validator hands
// back the records it was given).
func (snap *denialSnapshot) find(rr dns.RR) (denialRecord, bool) {
	for i, r := range snap.records {
		if r == rr {
			return snap.recs[i], true
		}
	}
	return denialRecord{}, false
}

// keepProofs keeps the records of the secure denial proofs among the
// pieces of res (validator.Proof) for RFC 8198: in the denial index and,
// marked Secure, in the RRset cache, where synthesis checks them.
func (r *Resolver) keepProofs(res validator.AnswerResult, authority []dns.RR, qclass uint16) {
	if qclass != dns.ClassINET {
		return
	}
	for _, p := range res.Sets {
		r.keepProofsOf(p, authority, qclass)
	}
	r.keepProofsOf(res.Denial, authority, qclass)
}

// keepProofsOf keeps the proofs of one piece when it is secure.
func (r *Resolver) keepProofsOf(piece validator.Piece, authority []dns.RR, qclass uint16) {
	if !piece.Checked || piece.Status != security.Secure {
		return
	}
	d := r.dnssec
	now := r.cfg.Clock.Now()
	for _, p := range piece.Proofs {
		for _, rec := range d.denials.add(p, authority, piece.TTL, d.v.Limits().MaxNSEC3Iterations) {
			h := rec.rr.Header()
			r.cache.Put(canonical(h.Name), h.Rrtype, qclass, &cache.Entry{
				RRs: []dns.RR{rec.rr}, Sigs: rec.sigs, Rank: denialRank, Security: security.Secure,
			}, secondsLeft(rec.expires, now))
		}
	}
}

// stillSecure reports whether rec is still in the RRset cache, marked
// Secure and unchanged, and the TTL it has left there and in the index.
func (r *Resolver) stillSecure(rec denialRecord, now time.Time) (uint32, bool) {
	h := rec.rr.Header()
	e, ok := r.cache.Get(h.Name, h.Rrtype, h.Class)
	if !ok || e.Security != security.Secure || e.Negative() || e.Failure() || !holds(e.RRs, rec.rr) {
		return 0, false
	}
	return min(secondsLeft(rec.expires, now), r.cache.Remaining(e)), true
}

// usedAlready reports whether rr is among the records of proof.
func usedAlready(proof []denialRecord, rr dns.RR) bool {
	for _, rec := range proof {
		if rec.rr == rr {
			return true
		}
	}
	return false
}

// holds reports whether rrs has rr (the same record, TTL aside).
func holds(rrs []dns.RR, rr dns.RR) bool {
	for _, x := range rrs {
		if x == rr || dns.IsDuplicate(x, rr) {
			return true
		}
	}
	return false
}

// aggressiveDenial answers q from validated NSEC ranges, or returns false.
// DS questions are left alone: a child apex's NSEC does not speak for the
// parent's DS. Which types a range can deny (never ANY at a name with data,
// nor a meta-type) is validator.AggressiveProof's call. No signature is
// checked: the records were verified when kept, and each one used must
// still be Secure in the RRset cache. The answer's denial is secure
// (denial.secure), so that its validation checks nothing.
func (r *Resolver) aggressiveDenial(q question, b *Budget) (*step, bool) {
	d := r.dnssec
	if d == nil || q.qtype == dns.TypeDS || q.qclass != dns.ClassINET {
		return nil, false
	}
	snap, ok := d.denials.snapshot(q.name)
	if !ok {
		return nil, false
	}
	st := r.dnssecState(b)
	kind, used, err := validator.AggressiveProof(q.name, q.qtype, snap.zone, snap.records, st.budget)
	if err != nil || kind == validator.DenialNone {
		return nil, false
	}
	now := r.cfg.Clock.Now()
	ttl := snap.soaTTL
	proof := make([]denialRecord, 0, len(used))
	for _, rr := range used {
		rec, found := snap.find(rr)
		if !found {
			return nil, false
		}
		if usedAlready(proof, rr) {
			continue // one record may cover both the name and the wildcard
		}
		left, ok := r.stillSecure(rec, now)
		if !ok {
			return nil, false
		}
		ttl = min(ttl, left)
		proof = append(proof, rec)
	}
	// Nothing synthesised outlives any record it rests on (RFC 9077 3.4).
	auth := cache.WithTTL(snap.soa, ttl)
	for _, rec := range proof {
		auth = append(auth, cache.WithTTL([]dns.RR{rec.rr}, ttl)...)
		auth = append(auth, cache.WithTTL(rec.sigs, ttl)...)
	}
	out := &step{rcode: dns.RcodeSuccess, authority: auth, denial: &denial{secure: true}}
	if kind == validator.DenialNXDOMAIN {
		out.rcode = dns.RcodeNameError
	}
	r.log.Debug("answered from validated NSEC (RFC 8198)", "name", q.name, "type", dns.TypeToString[q.qtype], "zone", snap.zone, "rcode", dns.RcodeToString[out.rcode])
	return out, true
}
