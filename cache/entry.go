package cache

import (
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/security"
)

// Entry is one cached RRset, negative answer or failure. Once given to Put
// it is shared by every reader and must not be modified.
type Entry struct {
	// Rcode is dns.RcodeSuccess for data (or NODATA when RRs is empty),
	// dns.RcodeNameError for NXDOMAIN, dns.RcodeServerFailure for an
	// RFC 9520 resolution-failure entry.
	Rcode int
	// RRs is the RRset (one owner, type and class); empty for negative and
	// failure entries.
	RRs []dns.RR
	// Sigs are the RRSIGs covering RRs.
	Sigs []dns.RR
	// Authority holds, for negative entries, the SOA and the NSEC/NSEC3
	// proofs with their RRSIGs.
	Authority []dns.RR
	// Rank is how much the data is trusted (RFC 2181 5.4.1).
	Rank Rank
	// Security is the DNSSEC state the validator gave the data.
	Security security.Status
	// EDE and EDEText are, for failure entries, the RFC 8914 Extended DNS
	// Error info-code and text to give the client.
	EDE     uint16
	EDEText string
	// Stored is when Put stored the entry (DNS clock); set by Put.
	Stored time.Time
	// Expires is Stored plus the clamped TTL; set by Put.
	Expires time.Time

	size int32  // bytes counted against Config.MaxBytes; set by Put
	name string // the lower-cased owner of the key(s) e is stored under; set by Put
}

// Memory of a stored entry beyond its records' wire length, for the byte
// budget to follow the heap (checked with bench/memory.sh):
//   - entryOverhead: the Entry (176 bytes) and keyOverhead;
//   - keyOverhead: per key, the LRU's slab node (32 bytes) and lruKeyBytes;
//   - rrOverhead: a decoded dns.RR beside its wire length (struct, header,
//     separately allocated owner name and rdata slices);
//   - sharedRROverhead: a record shared with other entries (an interned
//     SOA or its RRSIG): only its slot in the slice.
//
// An NXDOMAIN entry shared by two keys counts in full under the key it was
// stored for first and as keyOverhead under the other (keyBytes).
const (
	keyOverhead      = 32 + lruKeyBytes
	entryOverhead    = 176 + keyOverhead
	rrOverhead       = 80
	sharedRROverhead = 16
)

// measure estimates the bytes e holds, for the cache's byte budget. The
// records of z are shared with other entries and cost only their slot.
func (e *Entry) measure(z *zoneAuth) int {
	n := entryOverhead + len(e.EDEText)
	for _, rrs := range [3][]dns.RR{e.RRs, e.Sigs, e.Authority} {
		for _, rr := range rrs {
			switch {
			case rr == nil:
			case z != nil && (rr == z.soa || rr == z.soaSig):
				n += sharedRROverhead
			default:
				n += rrOverhead + dns.Len(rr)
			}
		}
	}
	return n
}

// slotBytes is what an entry counts for under its key.
func slotBytes(_ uint64, v slot) int { return int(v.e.size) }

// Negative reports whether e is a negative entry (NXDOMAIN or NODATA).
func (e *Entry) Negative() bool {
	return e.Rcode == dns.RcodeNameError || (e.Rcode == dns.RcodeSuccess && len(e.RRs) == 0)
}

// Failure reports whether e records a resolution failure (RFC 9520).
func (e *Entry) Failure() bool {
	return e.Rcode != dns.RcodeSuccess && e.Rcode != dns.RcodeNameError
}

// expiredAt reports whether e is no longer usable at now: its TTL has run
// out, or the DNS clock has been moved back to before e was stored (its TTL
// and the validation behind it were reckoned at a time that is not now, and
// counting down from there would show TTLs above the stored ones).
func (e *Entry) expiredAt(now time.Time) bool {
	return !now.Before(e.Expires) || now.Before(e.Stored)
}

// WithTTL returns copies of rrs with their TTL set to ttl, for building a
// response from shared cached RRs without modifying them.
func WithTTL(rrs []dns.RR, ttl uint32) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Ttl = ttl
		out[i] = c
	}
	return out
}

// remaining is the TTL left at now in whole seconds, rounded up so that a
// live entry never shows TTL 0; 0 once expired.
func remaining(expires, now time.Time) uint32 {
	d := expires.Sub(now)
	if d <= 0 {
		return 0
	}
	s := (d + time.Second - 1) / time.Second
	if s > 1<<31-1 {
		s = 1<<31 - 1
	}
	return uint32(s)
}
