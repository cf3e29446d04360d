package cache

import (
	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/security"
)

// replaces reports whether e may take the place of old, a live entry under
// the same key. Rank decides first (RFC 2181 5.4.1: never lower over
// higher; higher always wins). At equal rank the DNSSEC state decides, as
// in Unbound's rrset cache (need_to_update_rrset):
//
//   - Secure data always replaces: it has been validated.
//   - A live Secure entry is not replaced by anything else: an unvalidated
//     or bogus RRset from a later reply (forged, or data that changed
//     before the validated copy ran out) waits for the Secure entry to
//     expire. Identical data does not even refresh the TTL: the Secure
//     entry's lifetime was capped by signatures and keys the cache cannot
//     see, and re-validation after it ends costs little.
//   - A live Bogus entry is not cleared by identical unvalidated data
//     (records and signatures): it would only be found bogus again.
//     Different data, re-signed records included, replaces it (the zone
//     may have been fixed).
//
// The resolver's own flow, "store unvalidated, validate, mark the entries
// it holds" (Mark, a compare-and-swap that applies these rules too), never
// meets a live Secure entry with new data: it stores only what no live
// entry answered, or refreshes an entry in the last tenth of its life,
// which Put treats as expired (rank aside: see NearExpiry).
func replaces(e, old *Entry) bool {
	switch {
	case e.Rank != old.Rank:
		return e.Rank > old.Rank
	case e.Security == security.Secure:
		return true
	case old.Security == security.Secure:
		return false
	case old.Security == security.Bogus && e.Security != security.Bogus:
		return !sameData(e, old)
	}
	return true
}

// sameData reports whether a and b hold the same data: the same rcode,
// records and signatures, TTLs aside. Negative entries compare their
// authority sections (SOA and proofs), so a re-signed denial differs too.
func sameData(a, b *Entry) bool {
	return a.Rcode == b.Rcode && sameSet(a.RRs, b.RRs) && sameSet(a.Sigs, b.Sigs) && sameSet(a.Authority, b.Authority)
}

// sameSet reports whether a and b hold the same records (TTLs aside), in
// any order. Cached sets are small: a scan beats a map.
func sameSet(a, b []dns.RR) bool {
	if len(a) != len(b) {
		return false
	}
	for _, rr := range a {
		found := false
		for _, o := range b {
			if dns.IsDuplicate(rr, o) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
