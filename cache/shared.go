package cache

import (
	"sync/atomic"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// Negative answers repeat themselves: every NXDOMAIN and NODATA from one
// zone carries the same SOA (and, signed, the same RRSIG over it). Kept
// apart, these copies were most of the memory of a negative entry. Put
// shares them instead, through a small lock-free memo of recent stores per
// zone: a miss there only costs the sharing, never correctness, since
// shared records are immutable.

// memoSlots is the number of slots of each memo (a power of two): enough
// that concurrent resolutions of different zones and names rarely push
// each other out between the two stores of one answer.
const memoSlots = 256

// zoneAuth is the SOA and RRSIG over it last stored for a zone, for the
// negative entries of that zone to share.
type zoneAuth struct {
	soa     dns.RR
	soaSig  dns.RR   // nil for an unsigned zone
	soaOnly []dns.RR // []dns.RR{soa}: the whole authority section of an unsigned negative entry
}

// memos are the Cache's sharing memos, indexed by a hash of the zone or
// owner name.
type memos struct {
	zones [memoSlots]atomic.Pointer[zoneAuth]
}

func memoSlot(name string) uint64 { return hashKey(name, 0) & (memoSlots - 1) }

// shareAuthority returns auth with its SOA and the RRSIG over it replaced by
// the identical records (TTL included) already held for the zone, or
// remembers them when the zone's are new or different. auth is not
// modified: readers may hold it. The zoneAuth returned tells which records
// are taken from the memo (nil when none).
func (m *memos) shareAuthority(auth []dns.RR) ([]dns.RR, *zoneAuth) {
	soa, soaSig := soaOf(auth)
	if soa == nil {
		return auth, nil
	}
	slot := &m.zones[memoSlot(dnsname.Lower(soa.Header().Name))]
	z := slot.Load()
	if z == nil || !sameRecord(z.soa, soa) || (soaSig != nil && (z.soaSig == nil || !sameRecord(z.soaSig, soaSig))) {
		z = &zoneAuth{soa: soa, soaSig: soaSig, soaOnly: []dns.RR{soa}}
		if len(auth) == 1 {
			z.soaOnly = auth
		}
		slot.Store(z)
		return auth, nil // the first entry holding them pays for them
	}
	if len(auth) == 1 {
		return z.soaOnly, z
	}
	out := make([]dns.RR, len(auth))
	for i, rr := range auth {
		switch rr {
		case soa:
			out[i] = z.soa
		case soaSig:
			out[i] = z.soaSig
		default:
			out[i] = rr
		}
	}
	return out, z
}

// soaOf finds the SOA of a negative answer's authority section and the
// RRSIG over it.
func soaOf(auth []dns.RR) (soa, sig dns.RR) {
	for _, rr := range auth {
		switch v := rr.(type) {
		case *dns.SOA:
			if soa == nil {
				soa = rr
			}
		case *dns.RRSIG:
			if v.TypeCovered == dns.TypeSOA && sig == nil {
				sig = rr
			}
		}
	}
	return soa, sig
}

// sameRecord reports whether a and b are the same record, TTL included.
func sameRecord(a, b dns.RR) bool {
	return a == b || (a.Header().Ttl == b.Header().Ttl && dns.IsDuplicate(a, b))
}
