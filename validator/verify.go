package validator

import (
	"errors"
	"time"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/internal/sigdata"
)

// VerifyRRset checks that rrset is signed by one of keys, the trusted
// DNSKEYs of zone signer (RFC 4035 section 5.3). sigs may hold RRSIGs for
// other RRsets too; only those covering rrset and made by signer are tried.
// If signer is "", the signer of each RRSIG is taken as given, and only
// keys owned by it are candidates.
//
// now is compared with inception and expiration in serial arithmetic
// (RFC 4034 3.1.5, RFC 1982). On success Result.TTL is the smallest of the
// RRset TTLs, the RRSIG original TTL and the seconds until the RRSIG
// expires, and Result.Wildcard names the wildcard when the RRSIG Labels
// field shows the RRset was synthesised from one.
//
// Work is capped by b: MaxSigsPerRRset signatures, MaxKeysPerSig keys per
// signature, and the per-query validation and failure counts.
func VerifyRRset(rrset []dns.RR, sigs []*dns.RRSIG, keys []*dns.DNSKEY, signer string, now time.Time, b *Budget) Result {
	b = orDefault(b)
	lim := b.lim
	if signer != "" {
		signer = dns.Fqdn(signer)
	}
	if len(rrset) == 0 {
		return bogus(EDEDNSSECBogus, "empty RRset")
	}
	h0 := rrset[0].Header()
	owner, rrtype, class := h0.Name, h0.Rrtype, h0.Class
	ttl := h0.Ttl
	for _, rr := range rrset[1:] {
		h := rr.Header()
		if h.Rrtype != rrtype || h.Class != class || !dnsname.Equal(h.Name, owner) {
			return bogus(EDEDNSSECBogus, "records of different owner, type or class are not one RRset")
		}
		ttl = min(ttl, h.Ttl)
	}
	if len(keys) == 0 {
		return bogus(EDEDNSKEYMissing, "no trusted DNSKEY for "+dns.TypeToString[rrtype]+" "+owner)
	}
	if !anyUsableKey(keys, lim) {
		return insecure(EDEUnsupportedDNSKEYAlg, "no DNSKEY with a supported algorithm and size")
	}

	now32 := uint32(now.Unix())
	var tried, unsupported, expired, notYet, noKey, failed int
	for _, sig := range sigs {
		if sig == nil || sig.TypeCovered != rrtype || sig.Hdr.Class != class || !dnsname.Equal(sig.Hdr.Name, owner) {
			continue
		}
		if signer != "" && !dnsname.Equal(sig.SignerName, signer) {
			continue
		}
		// RFC 4035 5.3.1: the signer is the zone holding the RRset, and
		// Labels cannot exceed the owner's label count.
		if !dnsname.IsAtOrBelow(owner, sig.SignerName) || int(sig.Labels) > sigdata.OwnerLabels(owner) {
			continue
		}
		if tried == lim.MaxSigsPerRRset {
			break
		}
		tried++
		if !supportedAlgorithm(sig.Algorithm) {
			unsupported++
			continue
		}
		switch validity(sig, now32) {
		case sigExpired:
			expired++
			continue
		case sigNotYetValid:
			notYet++
			continue
		}
		ok, nkeys, err := verifyWithKeys(rrset, sig, keys, b)
		if err != nil {
			return budgetBogus(err)
		}
		if ok {
			res := secure(min(ttl, sig.OrigTtl, sig.Expiration-now32))
			if int(sig.Labels) < sigdata.OwnerLabels(owner) {
				res.Wildcard = "*." + sigdata.LastLabels(owner, int(sig.Labels))
				if sig.Labels == 0 {
					res.Wildcard = "*."
				}
			}
			return res
		}
		if nkeys == 0 {
			noKey++
		} else {
			failed++
		}
	}
	name := dns.TypeToString[rrtype] + " " + owner
	switch {
	case failed > 0:
		return bogus(EDEDNSSECBogus, "RRSIG does not verify for "+name)
	case expired > 0:
		return bogus(EDESignatureExpired, "RRSIG expired for "+name)
	case notYet > 0:
		return bogus(EDESignatureNotYetValid, "RRSIG not yet valid for "+name)
	case noKey > 0:
		return bogus(EDEDNSKEYMissing, "no DNSKEY matches the RRSIG for "+name)
	case unsupported > 0:
		return bogus(EDERRSIGsMissing, "no RRSIG with a supported algorithm for "+name)
	}
	return bogus(EDERRSIGsMissing, "no RRSIG for "+name)
}

// verifyWithKeys tries at most MaxKeysPerSig candidate keys (same tag,
// algorithm and owner) for one signature. nkeys is how many usable keys were
// tried; err is non-nil only when the budget ran out.
func verifyWithKeys(rrset []dns.RR, sig *dns.RRSIG, keys []*dns.DNSKEY, b *Budget) (ok bool, nkeys int, err error) {
	var data, sigBytes []byte
	tried := 0
	for _, k := range keys {
		if !candidateKey(k, sig) {
			continue
		}
		if tried == b.lim.MaxKeysPerSig {
			break
		}
		tried++
		pub, perr := parseKey(k, b.lim)
		if perr != nil {
			continue
		}
		nkeys++
		if data == nil {
			var derr error
			if data, derr = sigdata.Build(rrset, sig); derr != nil {
				return false, nkeys, nil
			}
			if sigBytes, derr = signatureBytes(sig); derr != nil {
				return false, nkeys, nil
			}
		}
		if err := b.spendValidation(); err != nil {
			return false, nkeys, err
		}
		if verifySignature(pub, data, sigBytes) == nil {
			return true, nkeys, nil
		}
		if err := b.spendFailure(); err != nil {
			return false, nkeys, err
		}
	}
	return false, nkeys, nil
}

// candidateKey reports whether k may have made sig: same owner as the
// signer, algorithm and key tag, a zone key of protocol 3 that is not
// revoked (RFC 4034 2.1.1, 2.1.2; RFC 5011 2.1).
func candidateKey(k *dns.DNSKEY, sig *dns.RRSIG) bool {
	return k != nil && k.Algorithm == sig.Algorithm && k.Protocol == 3 &&
		k.Flags&dns.ZONE != 0 && k.Flags&dns.REVOKE == 0 &&
		k.Hdr.Class == sig.Hdr.Class && k.KeyTag() == sig.KeyTag &&
		dnsname.Equal(k.Hdr.Name, sig.SignerName)
}

// anyUsableKey reports whether some key has an algorithm and size we can
// validate. A zone whose keys are all unusable is insecure, not bogus.
func anyUsableKey(keys []*dns.DNSKEY, lim Limits) bool {
	for _, k := range keys {
		if k == nil || !supportedAlgorithm(k.Algorithm) {
			continue
		}
		if _, err := parseKey(k, lim); !errors.Is(err, errUnsupportedKey) {
			return true
		}
	}
	return false
}

type window int

const (
	sigValid window = iota
	sigExpired
	sigNotYetValid
)

// validity places now32 against the RRSIG window in serial arithmetic.
func validity(sig *dns.RRSIG, now32 uint32) window {
	if int32(now32-sig.Inception) < 0 {
		return sigNotYetValid
	}
	if int32(sig.Expiration-now32) < 0 {
		return sigExpired
	}
	return sigValid
}
