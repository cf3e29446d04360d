package authority

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// This file lets Sign sign again only what changed. Online signing signs a
// zone each time it changes (a SIGHUP reload, an IXFR) and before its
// signatures near expiry; re-signing every RRset of a large zone for a
// ten-record change would cost seconds of CPU for nothing, so Sign keeps the
// signatures it made, by RRset, and reuses those whose RRset, keys and
// validity still fit.

// SignatureCache holds the RRSIGs of the last Sign that used it, keyed by
// owner name and type with a digest of the RRset they cover. It is not
// safe for concurrent use: give each zone its own.
type SignatureCache struct {
	entries map[sigCacheKey]sigCacheEntry
	stats   SignatureStats
}

// SignatureStats says how much work the last Sign with the cache did.
type SignatureStats struct {
	Signed, Reused int // RRsets signed anew, RRsets whose signatures were reused
}

// Stats reports the last Sign that used the cache.
func (c *SignatureCache) Stats() SignatureStats {
	if c == nil {
		return SignatureStats{}
	}
	return c.stats
}

type sigCacheKey struct {
	name   string
	rrtype uint16
}

type sigCacheEntry struct {
	digest [sha256.Size]byte
	sigs   []dns.RR
}

// Len is the number of RRsets whose signatures the cache holds.
func (c *SignatureCache) Len() int {
	if c == nil {
		return 0
	}
	return len(c.entries)
}

// rrsetDigest fingerprints what an RRSIG covers: the TTL (it is the
// signature's original TTL) and the set of RDATAs, in canonical order.
// The owner and type are the cache key. A change of case inside RDATA
// names counts as a change: harmless, it is only signed again.
func rrsetDigest(rrset []dns.RR) [sha256.Size]byte {
	rdatas := make([][]byte, 0, len(rrset))
	buf := make([]byte, 0, 512)
	for _, rr := range rrset {
		var rd []byte
		rd, buf = signRdataBytes(rr, buf)
		rdatas = append(rdatas, rd)
	}
	slices.SortFunc(rdatas, bytes.Compare)
	h := sha256.New()
	var ttl [4]byte
	binary.BigEndian.PutUint32(ttl[:], rrset[0].Header().Ttl)
	h.Write(ttl[:])
	for _, rd := range rdatas {
		var l [2]byte
		binary.BigEndian.PutUint16(l[:], uint16(len(rd)))
		h.Write(l[:])
		h.Write(rd)
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// reusable returns cached signatures for job if the cache has some for the
// same RRset, made by exactly the job's keys, valid from before inception
// until after reuseUntil.
func (c *SignatureCache) reusable(job signJob, digest [sha256.Size]byte, inception uint32, reuseUntil time.Time) []dns.RR {
	if c == nil || c.entries == nil || reuseUntil.IsZero() {
		return nil
	}
	h := job.rrset[0].Header()
	e, ok := c.entries[sigCacheKey{h.Name, h.Rrtype}]
	if !ok || e.digest != digest || len(e.sigs) != len(job.keys) {
		return nil
	}
	until := uint32(reuseUntil.Unix())
	for i, rr := range e.sigs {
		sig := rr.(*dns.RRSIG)
		k := job.keys[i]
		if sig.KeyTag != k.Tag() || sig.Algorithm != k.DNSKEY.Algorithm {
			return nil
		}
		// RFC 1982 arithmetic is not needed: these are our own recent
		// signatures, well inside one 68-year window.
		if sig.Expiration <= until || sig.Inception > inception {
			return nil
		}
	}
	return e.sigs
}

// replace makes the cache hold exactly the signatures of this signing.
func (c *SignatureCache) replace(jobs []signJob, digests [][sha256.Size]byte, results [][]dns.RR, reused []bool) {
	entries := make(map[sigCacheKey]sigCacheEntry, len(jobs))
	c.stats = SignatureStats{}
	for i, j := range jobs {
		h := j.rrset[0].Header()
		entries[sigCacheKey{h.Name, h.Rrtype}] = sigCacheEntry{digest: digests[i], sigs: results[i]}
		if reused[i] {
			c.stats.Reused++
		} else {
			c.stats.Signed++
		}
	}
	c.entries = entries
}
