package validator

import (
	"errors"
	"time"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/security"
)

// VerifyDNSKEYs validates a zone's DNSKEY RRset (RFC 4035 section 5.2)
// against the DS RRset from its parent (already validated by the caller) or
// against trust-anchor keys, and returns the keys that may then be used to
// verify the zone's data.
//
// A DS set, or anchor set, with no supported digest type (EDE 2) or no
// supported algorithm (EDE 1) makes the zone insecure (RFC 4035 5.2,
// RFC 6840 5.2). DS records that match no DNSKEY make it bogus (EDE 9).
// The DNSKEY RRset must be signed by a key that a DS or anchor vouches for.
func VerifyDNSKEYs(keys []dns.RR, sigs []*dns.RRSIG, ds []*dns.DS, anchorKeys []*dns.DNSKEY, now time.Time, b *Budget) (Result, []*dns.DNSKEY) {
	b = orDefault(b)
	var dnskeys []*dns.DNSKEY
	var rrset []dns.RR
	for _, rr := range keys {
		if k, ok := rr.(*dns.DNSKEY); ok {
			dnskeys = append(dnskeys, k)
			rrset = append(rrset, k)
		}
	}
	if len(dnskeys) == 0 {
		return bogus(EDEDNSKEYMissing, "no DNSKEY records"), nil
	}

	var signers []*dns.DNSKEY
	if len(anchorKeys) > 0 {
		for _, a := range anchorKeys {
			if a != nil && supportedAlgorithm(a.Algorithm) {
				signers = append(signers, a)
			}
		}
		if len(signers) == 0 {
			return insecure(EDEUnsupportedDNSKEYAlg, "trust anchor keys use only unsupported algorithms"), nil
		}
	}
	if len(ds) > 0 {
		matched, res, done := keysForDS(dnskeys, ds, b.lim)
		if done {
			return res, nil
		}
		signers = append(signers, matched...)
	}
	if len(signers) == 0 {
		return bogus(EDEDNSKEYMissing, "no DS or trust anchor for the DNSKEY set"), nil
	}
	if !anyUsableKey(signers, b.lim) {
		return insecure(EDEUnsupportedDNSKEYAlg, "keys vouched for by DS or anchor are unsupported (algorithm or RSA size)"), nil
	}

	res := VerifyRRset(rrset, sigs, signers, dnskeys[0].Hdr.Name, now, b)
	if res.Status != security.Secure {
		return res, nil
	}
	trusted := make([]*dns.DNSKEY, 0, len(dnskeys))
	for _, k := range dnskeys {
		if k.Protocol == 3 && k.Flags&dns.ZONE != 0 && k.Flags&dns.REVOKE == 0 {
			trusted = append(trusted, k)
		}
	}
	return res, trusted
}

// keysForDS returns the DNSKEYs whose digest matches a supported DS. When
// done is true, res is the final answer (insecure or bogus).
func keysForDS(dnskeys []*dns.DNSKEY, ds []*dns.DS, lim Limits) (matched []*dns.DNSKEY, res Result, done bool) {
	tags := make([]uint16, len(dnskeys))
	for i, k := range dnskeys {
		tags[i] = k.KeyTag()
	}
	// RFC 4509 section 3: ignore SHA-1 DS records when a stronger digest
	// of a supported algorithm is present, so that SHA-1 cannot be used
	// to downgrade.
	strong := false
	for _, d := range ds {
		if d != nil && (d.DigestType == dns.SHA256 || d.DigestType == dns.SHA384) && supportedAlgorithm(d.Algorithm) {
			strong = true
		}
	}
	var supportedDigests, usable, unusableKeys int
	for i, d := range ds {
		if d != nil && strong && d.DigestType == dns.SHA1 {
			continue
		}
		if d == nil || i >= lim.MaxSigsPerRRset*2 {
			break
		}
		if !supportedDigest(d.DigestType) {
			continue
		}
		supportedDigests++
		if !supportedAlgorithm(d.Algorithm) {
			continue
		}
		usable++
		tried := 0
		for j, k := range dnskeys {
			if tags[j] != d.KeyTag || k.Algorithm != d.Algorithm {
				continue
			}
			if tried == lim.MaxKeysPerSig {
				break
			}
			tried++
			if k.Flags&dns.ZONE != 0 && k.Protocol == 3 && k.Flags&dns.REVOKE == 0 && dsMatches(d, k) {
				if _, err := parseKey(k, lim); errors.Is(err, errUnsupportedKey) {
					unusableKeys++
					continue
				}
				matched = append(matched, k)
			}
		}
	}
	switch {
	case supportedDigests == 0:
		return nil, insecure(EDEUnsupportedDSDigest, "DS records use only unsupported digest types"), true
	case usable == 0:
		return nil, insecure(EDEUnsupportedDNSKEYAlg, "DS records use only unsupported algorithms"), true
	case len(matched) == 0 && unusableKeys > 0:
		return nil, insecure(EDEUnsupportedDNSKEYAlg, "the DS points only at keys outside the supported RSA sizes"), true
	case len(matched) == 0:
		return nil, bogus(EDEDNSKEYMissing, "no DNSKEY matches the DS records"), true
	}
	return matched, Result{}, false
}
