package authority

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// signJob is one RRset and the keys that must sign it.
type signJob struct {
	rrset []dns.RR
	keys  []*Key
}

// signKeyRoles splits the keys into those that sign the DNSKEY RRset (and
// CDS/CDNSKEY) and those that sign everything else. Each algorithm must
// sign every RRset (RFC 4035 2.2), so an algorithm without ZSKs signs the
// zone with its SEP keys (CSK) and one without SEP keys signs the DNSKEY
// RRset with its ZSKs. Revoked keys sign only the DNSKEY RRset (RFC 5011).
func signKeyRoles(keys []*Key) (keySigners, zoneSigners []*Key) {
	byAlg := make(map[uint8][]*Key)
	var algs []uint8
	for _, k := range keys {
		a := k.DNSKEY.Algorithm
		if _, ok := byAlg[a]; !ok {
			algs = append(algs, a)
		}
		byAlg[a] = append(byAlg[a], k)
	}
	slices.Sort(algs)
	for _, a := range algs {
		var sep, zsk, revoked []*Key
		for _, k := range byAlg[a] {
			switch {
			case k.DNSKEY.Flags&dns.REVOKE != 0:
				revoked = append(revoked, k)
			case k.IsSEP():
				sep = append(sep, k)
			default:
				zsk = append(zsk, k)
			}
		}
		if len(zsk) == 0 {
			zsk = sep
		}
		if len(sep) == 0 {
			sep = zsk
		}
		keySigners = append(keySigners, sep...)
		keySigners = append(keySigners, revoked...)
		zoneSigners = append(zoneSigners, zsk...)
	}
	return keySigners, zoneSigners
}

// signJobs lists the RRsets to sign: everything authoritative except the NS
// RRset at a delegation (the child's to sign); DS and NSEC at a delegation
// are the parent's and are signed.
func (z *signZone) signJobs(keys []*Key) []signJob {
	keySigners, zoneSigners := signKeyRoles(keys)
	var jobs []signJob
	for name, n := range z.nodes {
		if n.occluded {
			continue
		}
		for t, set := range n.sets {
			if n.delegation && t != dns.TypeDS && t != dns.TypeNSEC {
				continue
			}
			signers := zoneSigners
			if name == z.origin && (t == dns.TypeDNSKEY || t == dns.TypeCDS || t == dns.TypeCDNSKEY) {
				signers = keySigners
			}
			jobs = append(jobs, signJob{rrset: set, keys: signers})
		}
	}
	return jobs
}

// signAll makes the RRSIGs for every job, spread over the CPUs: signing is
// the bulk of the work for large zones.
func (z *signZone) signAll(opts SignOptions) ([]dns.RR, error) {
	jobs := z.signJobs(opts.Keys)
	inception := uint32(opts.Inception.Unix())
	expiration := uint32(opts.Expiration.Unix())
	results, digests, reused, err := signJobsParallel(jobs, z.origin, inception, expiration, opts.Cache, opts.ReuseUntil)
	if err != nil {
		return nil, err
	}
	if opts.Cache != nil {
		opts.Cache.replace(jobs, digests, results, reused)
	}
	var out []dns.RR
	for _, r := range results {
		if opts.Cache == nil {
			out = append(out, r...)
			continue
		}
		for _, sig := range r {
			// The caller owns the output; the cache keeps its own.
			out = append(out, dns.Copy(sig))
		}
	}
	return out, nil
}

// signJobsParallel signs every job (reusing the cache's signatures where
// they fit), spread over the CPUs, and returns each job's signatures, its
// RRset digest (with a cache) and whether they were reused.
func signJobsParallel(jobs []signJob, origin string, inception, expiration uint32, cache *SignatureCache, reuseUntil time.Time) ([][]dns.RR, [][32]byte, []bool, error) {
	results := make([][]dns.RR, len(jobs))
	digests := make([][32]byte, len(jobs))
	reused := make([]bool, len(jobs))
	workers := min(runtime.GOMAXPROCS(0), max(1, len(jobs)/64+1))
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		next     = make(chan int, workers)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if cache != nil {
					digests[i] = rrsetDigest(jobs[i].rrset)
					if sigs := cache.reusable(jobs[i], digests[i], inception, reuseUntil); sigs != nil {
						results[i], reused[i] = sigs, true
						continue
					}
				}
				sigs, err := signRRset(jobs[i], origin, inception, expiration)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				results[i] = sigs
			}
		}()
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, nil, nil, firstErr
	}
	return results, digests, reused, nil
}

// signRRset signs one RRset with each of the job's keys.
func signRRset(j signJob, signer string, inception, expiration uint32) ([]dns.RR, error) {
	out := make([]dns.RR, 0, len(j.keys))
	h := j.rrset[0].Header()
	for _, k := range j.keys {
		sig := &dns.RRSIG{
			Hdr:        dns.RR_Header{Name: h.Name, Rrtype: dns.TypeRRSIG, Class: h.Class, Ttl: h.Ttl},
			Algorithm:  k.DNSKEY.Algorithm,
			KeyTag:     k.Tag(),
			SignerName: signer,
			Inception:  inception,
			Expiration: expiration,
		}
		if err := signWith(sig, k, j.rrset); err != nil {
			return nil, fmt.Errorf("sign %s/%s with key %d: %w", h.Name, dns.TypeToString[h.Rrtype], k.Tag(), err)
		}
		out = append(out, sig)
	}
	return out, nil
}
