package roothints

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// Anchors are DNSSEC trust anchors, as DS and/or DNSKEY records, possibly
// for several zones. Owner names are lower case.
type Anchors struct {
	DS     []*dns.DS
	DNSKEY []*dns.DNSKEY
}

// anchorTTL is the TTL given to anchors written without one (the root
// DNSKEY RRset's TTL); the validator does not use it.
const anchorTTL = 172800

// digestLen is the digest length of a DS digest type we know; for others
// (ok false) the digest is accepted as it is and left to the validator.
func digestLen(digestType uint8) (n int, ok bool) {
	switch digestType {
	case dns.SHA1:
		return 20, true
	case dns.SHA256:
		return 32, true
	case dns.SHA384:
		return 48, true
	}
	return 0, false
}

// LoadAnchors reads trust-anchor files (see ParseAnchors) and merges them.
func LoadAnchors(paths ...string) (*Anchors, error) {
	all := &Anchors{}
	for _, path := range paths {
		a, err := loadAnchorFile(path)
		if err != nil {
			return nil, err
		}
		all.merge(a)
	}
	if len(all.DS)+len(all.DNSKEY) == 0 {
		return nil, fmt.Errorf("trust anchors: no DS or DNSKEY records in %s", strings.Join(paths, ", "))
	}
	return all, nil
}

func loadAnchorFile(path string) (*Anchors, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trust anchors: %w", err)
	}
	defer f.Close()
	return ParseAnchors(f, path)
}

// ParseAnchors reads trust anchors in zone-file syntax: DS and/or DNSKEY
// records (digests and keys may be split by spaces, or spread over lines in
// parentheses), origin "." unless $ORIGIN says otherwise, TTL and class
// optional. name is used in errors, which give name:line. It refuses other
// record types, classes other than IN, a DS digest of the wrong length or
// not in hex, and a DNSKEY that is not a zone key (RFC 4034 2.1.1), has a
// protocol other than 3 or is revoked (RFC 5011).
func ParseAnchors(r io.Reader, name string) (*Anchors, error) {
	rrs, err := readZone(r, name, anchorTTL)
	if err != nil {
		return nil, fmt.Errorf("trust anchors: %w", err)
	}
	a := &Anchors{}
	for _, p := range rrs {
		if msg := a.add(p.rr); msg != "" {
			return nil, fmt.Errorf("trust anchors: %w", &LineError{File: name, Line: p.line, Msg: msg})
		}
	}
	return a, nil
}

// add checks and adds one record, returning what is wrong with it if any.
func (a *Anchors) add(rr dns.RR) string {
	hdr := rr.Header()
	if hdr.Class != dns.ClassINET {
		return "class " + dns.ClassToString[hdr.Class] + " is not IN"
	}
	hdr.Name = dnsname.Canonical(hdr.Name)
	switch rr := rr.(type) {
	case *dns.DS:
		raw, err := hex.DecodeString(rr.Digest)
		if err != nil {
			return "DS digest is not hex"
		}
		if want, ok := digestLen(rr.DigestType); ok && len(raw) != want {
			return fmt.Sprintf("DS digest type %d needs %d bytes, has %d", rr.DigestType, want, len(raw))
		}
		rr.Digest = strings.ToUpper(rr.Digest)
		a.DS = append(a.DS, rr)
	case *dns.DNSKEY:
		if rr.Flags&dns.ZONE == 0 {
			return "DNSKEY is not a zone key (flags lack 256)"
		}
		if rr.Protocol != 3 {
			return fmt.Sprintf("DNSKEY protocol %d, must be 3", rr.Protocol)
		}
		if rr.Flags&dns.REVOKE != 0 {
			return "DNSKEY has the REVOKE bit (flags 128): a revoked key is no trust anchor (RFC 5011 2.1)"
		}
		a.DNSKEY = append(a.DNSKEY, rr)
	default:
		return dns.TypeToString[hdr.Rrtype] + " record; a trust-anchor file holds only DS and DNSKEY"
	}
	return ""
}

func (a *Anchors) merge(b *Anchors) {
	a.DS = append(a.DS, b.DS...)
	a.DNSKEY = append(a.DNSKEY, b.DNSKEY...)
}

// Records returns every anchor, DS then DNSKEY, as copies: the form the
// validator (validator.New, resolver.DNSSECConfig) takes.
func (a *Anchors) Records() []dns.RR {
	rrs := make([]dns.RR, 0, len(a.DS)+len(a.DNSKEY))
	for _, ds := range a.DS {
		rrs = append(rrs, dns.Copy(ds))
	}
	for _, k := range a.DNSKEY {
		rrs = append(rrs, dns.Copy(k))
	}
	return rrs
}

// Zones returns the zones that have anchors, sorted, without repeats.
func (a *Anchors) Zones() []string {
	var zones []string
	for _, ds := range a.DS {
		zones = append(zones, ds.Hdr.Name)
	}
	for _, k := range a.DNSKEY {
		zones = append(zones, k.Hdr.Name)
	}
	slices.Sort(zones)
	return slices.Compact(zones)
}

// ForZone returns the anchors for one zone (matched case-insensitively).
func (a *Anchors) ForZone(zone string) (ds []*dns.DS, keys []*dns.DNSKEY) {
	zone = dnsname.Canonical(zone)
	for _, d := range a.DS {
		if d.Hdr.Name == zone {
			ds = append(ds, d)
		}
	}
	for _, k := range a.DNSKEY {
		if k.Hdr.Name == zone {
			keys = append(keys, k)
		}
	}
	return ds, keys
}
