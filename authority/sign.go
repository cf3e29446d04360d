package authority

// Signing a zone:
//
//	ksk, _ := authority.GenerateKey("example.test.", dns.ECDSAP256SHA256, authority.FlagsKSK)
//	zsk, _ := authority.GenerateKey("example.test.", dns.ECDSAP256SHA256, authority.FlagsZSK)
//	signed, err := authority.Sign("example.test.", records, authority.SignOptions{
//		Keys:      []*authority.Key{ksk, zsk}, // or one FlagsKSK key as a CSK
//		Inception: now.Add(-time.Hour), Expiration: now.Add(30 * 24 * time.Hour),
//		NSEC3:     &authority.NSEC3Options{}, // nil for NSEC
//		PublishCDS: true,
//	})
//	zone, err := authority.NewZone("example.test.", signed)
//	parentDS := ksk.DS(dns.SHA256)
//
// Keys come from GenerateKey (algorithms 8, 10, 13, 14, 15, 16) or LoadKey
// (BIND K*.key/K*.private files; Key.Save writes them). Sign is pure: no
// I/O, no clock; the caller picks the validity window.

import (
	"errors"
	"fmt"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// NSEC3Options selects NSEC3 denial of existence (RFC 5155) instead of NSEC.
// RFC 9276 advises Iterations 0 and no Salt.
type NSEC3Options struct {
	// Iterations is the number of extra SHA-1 rounds.
	Iterations uint16
	// Salt is the salt in hex; "" or "-" for none.
	Salt string
	// OptOut leaves insecure delegations (NS without DS) out of the chain
	// and sets the Opt-Out flag on every NSEC3 record.
	OptOut bool
}

// SignOptions says how Sign signs a zone.
type SignOptions struct {
	// Keys sign the zone. Keys with the SEP bit (flags 257) sign the DNSKEY,
	// CDS and CDNSKEY RRsets; the others sign the rest. An algorithm that has
	// only SEP keys signs everything with them (a CSK), one that has no SEP
	// key signs the DNSKEY RRset with its ZSKs.
	Keys []*Key
	// Unpublished are keys among Keys that sign without being added to the
	// DNSKEY RRset: an algorithm rollover's new keys, whose signatures
	// reach caches before their DNSKEYs (RFC 6781 4.1.4), or its old ones
	// after their DNSKEYs left.
	Unpublished []*Key
	// Inception and Expiration bound every signature's validity.
	Inception, Expiration time.Time
	// NSEC3 selects NSEC3 denial; nil means NSEC.
	NSEC3 *NSEC3Options
	// PublishCDS adds CDS (SHA-256) and CDNSKEY records for the SEP keys at
	// the apex (RFC 7344) so the parent can follow key changes.
	PublishCDS bool
	// CDSDelete publishes the RFC 8078 "delete DS" CDS/CDNSKEY instead.
	CDSDelete bool
	// KeyTTL is the TTL of DNSKEY, CDS and CDNSKEY; 0 means the SOA TTL.
	KeyTTL uint32
	// Cache, when set, keeps this signing's RRSIGs for the next, which
	// reuses those whose RRset and keys are unchanged and that stay valid
	// past ReuseUntil (a zero ReuseUntil signs everything anew). Sign
	// replaces the cache's contents.
	Cache      *SignatureCache
	ReuseUntil time.Time
	// Unordered skips the final sort into canonical order, for callers
	// that build a Zone from the output (which indexes records itself):
	// on a large zone the sort costs more than a re-signing's crypto.
	Unordered bool
}

// Sign signs a zone. rrs are the zone's unsigned records (any RRSIG, NSEC,
// NSEC3 and NSEC3PARAM among them are replaced; DNSKEYs are kept beside the
// signing keys, for pre-published keys). The result holds the records, the
// keys' DNSKEYs, the NSEC or NSEC3 chain (with NSEC3PARAM), the RRSIGs and,
// if asked, CDS/CDNSKEY, in canonical order.
//
// Delegation NS RRsets and glue are not signed; DS RRsets at delegations
// are. Names below a delegation or a DNAME are not authoritative and stay
// out of the denial chain.
func Sign(origin string, rrs []dns.RR, opts SignOptions) ([]dns.RR, error) {
	origin = dnsname.Canonical(origin)
	if err := opts.check(origin); err != nil {
		return nil, fmt.Errorf("sign %s: %w", origin, err)
	}
	z, err := newSignZone(origin, rrs, opts)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", origin, err)
	}
	if opts.NSEC3 != nil {
		err = z.addNSEC3Chain(*opts.NSEC3)
	} else {
		z.addNSECChain()
	}
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", origin, err)
	}
	sigs, err := z.signAll(opts)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", origin, err)
	}
	out := z.records()
	out = append(out, sigs...)
	if !opts.Unordered {
		signSortRecords(out)
	}
	return out, nil
}

// check validates the options before any work is done.
func (o *SignOptions) check(origin string) error {
	if len(o.Keys) == 0 {
		return errors.New("no keys")
	}
	for _, k := range o.Keys {
		if k == nil || k.DNSKEY == nil || k.Private == nil {
			return errors.New("incomplete key")
		}
		if dnsname.Canonical(k.DNSKEY.Hdr.Name) != origin {
			return fmt.Errorf("key %d belongs to %s", k.Tag(), k.DNSKEY.Hdr.Name)
		}
		if k.DNSKEY.Flags&dns.ZONE == 0 {
			return fmt.Errorf("key %d is not a zone key", k.Tag())
		}
	}
	if !o.Expiration.After(o.Inception) {
		return fmt.Errorf("expiration %v not after inception %v", o.Expiration, o.Inception)
	}
	if o.PublishCDS && o.CDSDelete {
		return errors.New("PublishCDS and CDSDelete are exclusive")
	}
	if o.NSEC3 != nil {
		if _, err := signNSEC3Salt(o.NSEC3.Salt); err != nil {
			return err
		}
		if o.NSEC3.Iterations > MaxNSEC3Iterations {
			return fmt.Errorf("NSEC3 iterations %d over the limit %d", o.NSEC3.Iterations, MaxNSEC3Iterations)
		}
	}
	return nil
}
