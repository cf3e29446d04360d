package validator

import (
	"slices"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// hasType reports whether t is in an NSEC/NSEC3 type bitmap.
func hasType(bitmap []uint16, t uint16) bool { return slices.Contains(bitmap, t) }

// deniableType reports whether a denial proof can say that qtype is absent.
// A type bitmap lists the RRsets stored at a name, so it speaks only for
// data types. The meta-types and QTYPEs (RFC 6895 3.1: OPT, and 128-255:
// TKEY, TSIG, IXFR, AXFR, MAILB, MAILA, ANY), the reserved types 0 and
// 65535, and RRSIG (no RRset of its own; RFC 4035 3.1.1) are never listed
// as absent, so a bitmap without them proves nothing about them. ANY is
// the one exception, handled by bitmapDenies: a name that owns no RRset at
// all (an empty non-terminal) has nothing for ANY either.
func deniableType(qtype uint16) bool {
	switch {
	case qtype == dns.TypeANY:
		return true
	case qtype == dns.TypeNone, qtype == dns.TypeOPT, qtype == dns.TypeRRSIG, qtype == dns.TypeReserved:
		return false
	case qtype >= 128 && qtype <= 255:
		return false
	}
	return true
}

// bitmapDenies reports whether a type bitmap of a record matching a name
// says qtype is absent there: a data type missing from the bitmap, or ANY
// at a name with an empty bitmap (an NSEC3 empty non-terminal, RFC 5155
// 7.2.3; an NSEC bitmap always lists NSEC, so never for NSEC).
func bitmapDenies(bitmap []uint16, qtype uint16) bool {
	if qtype == dns.TypeANY {
		return len(bitmap) == 0
	}
	return deniableType(qtype) && !hasType(bitmap, qtype)
}

// isDelegationBitmap reports a bitmap of a delegation point seen from the
// parent: NS without SOA. Such a record only speaks for the parent side and
// must not deny data at or below the child apex (RFC 4035 5.4, RFC 6840 4.1,
// RFC 5155 8.3 and 8.9).
func isDelegationBitmap(bitmap []uint16) bool {
	return hasType(bitmap, dns.TypeNS) && !hasType(bitmap, dns.TypeSOA)
}

// NSECCovers reports whether nsec proves that name does not exist in the
// zone's canonical order: owner < name < next, where the last NSEC of a zone
// (next = apex) covers every name after its owner inside the zone. A name
// below a delegation point or DNAME owner is not covered by that owner's
// NSEC: the parent cannot speak for it (RFC 6840 4.1).
// It does not check signatures; nsec must already be validated.
func NSECCovers(nsec *dns.NSEC, name string) bool {
	if nsec == nil {
		return false
	}
	name = dns.Fqdn(name)
	owner, next := nsec.Hdr.Name, nsec.NextDomain
	if dnsname.Compare(owner, name) >= 0 {
		return false
	}
	if dnsname.IsAtOrBelow(name, owner) && (isDelegationBitmap(nsec.TypeBitMap) || hasType(nsec.TypeBitMap, dns.TypeDNAME)) {
		return false
	}
	if dnsname.Compare(owner, next) < 0 {
		return dnsname.Compare(name, next) < 0
	}
	// Last NSEC in the zone: next is the apex.
	return dnsname.IsAtOrBelow(name, next)
}

// nsecClosestEncloser is the closest encloser that a covering NSEC implies
// for name: the longer of the names name shares with the owner and with
// next (RFC 4035 5.4).
func nsecClosestEncloser(nsec *dns.NSEC, name string) string {
	a := dnsname.CommonAncestor(name, nsec.Hdr.Name)
	b := dnsname.CommonAncestor(name, nsec.NextDomain)
	if dnsname.CountLabels(b) > dnsname.CountLabels(a) {
		return b
	}
	return a
}

// nsecShowsENT reports whether a covering NSEC shows that name is an empty
// non-terminal: the next name is below name, so name exists.
func nsecShowsENT(nsec *dns.NSEC, name string) bool {
	return dnsname.IsAtOrBelow(nsec.NextDomain, name) && !dnsname.Equal(nsec.NextDomain, name)
}

// NSECProvesNXDOMAIN reports whether two validated NSEC records prove that
// qname does not exist (RFC 4035 5.4, usable for RFC 8198 aggressive
// caching): cover covers qname and does not show it as an empty
// non-terminal, and wildcard covers the source of synthesis "*.<closest
// encloser>". cover and wildcard may be the same record.
func NSECProvesNXDOMAIN(qname string, cover, wildcard *dns.NSEC) bool {
	qname = dns.Fqdn(qname)
	if !NSECCovers(cover, qname) || nsecShowsENT(cover, qname) {
		return false
	}
	wc := wildcardOf(nsecClosestEncloser(cover, qname))
	return NSECCovers(wildcard, wc)
}

// NSECProvesNODATA reports whether one validated NSEC proves that qname
// exists without type qtype (RFC 4035 3.1.3.1, 5.4; RFC 8198): either it
// matches qname and lacks qtype and CNAME, or it covers qname and shows it
// as an empty non-terminal. The parent-side NSEC of a delegation proves
// nothing except the absence of DS; a child apex NSEC cannot deny DS.
// Meta-types and RRSIG are never proven absent; ANY only at an empty
// non-terminal (see deniableType).
func NSECProvesNODATA(qname string, qtype uint16, nsec *dns.NSEC) bool {
	if nsec == nil || !deniableType(qtype) {
		return false
	}
	qname = dns.Fqdn(qname)
	if dnsname.Equal(nsec.Hdr.Name, qname) {
		return nsecMatchDeniesType(nsec.TypeBitMap, qname, qtype)
	}
	return NSECCovers(nsec, qname) && nsecShowsENT(nsec, qname)
}

// nsecMatchDeniesType applies the bitmap rules to an NSEC or NSEC3 record
// that matches qname.
func nsecMatchDeniesType(bitmap []uint16, qname string, qtype uint16) bool {
	if !bitmapDenies(bitmap, qtype) || hasType(bitmap, dns.TypeCNAME) {
		return false
	}
	if qtype == dns.TypeDS {
		// The child apex's own record cannot deny the parent's DS,
		// except at the root, which has no parent.
		return !hasType(bitmap, dns.TypeSOA) || qname == "."
	}
	return !isDelegationBitmap(bitmap)
}

// NSECProvesWildcardNODATA reports whether validated NSECs prove that qname
// does not exist and the wildcard that would match it has no qtype
// (RFC 4035 3.1.3.4).
func NSECProvesWildcardNODATA(qname string, qtype uint16, cover, wildcard *dns.NSEC) bool {
	qname = dns.Fqdn(qname)
	if !deniableType(qtype) || !NSECCovers(cover, qname) || nsecShowsENT(cover, qname) || wildcard == nil {
		return false
	}
	wc := wildcardOf(nsecClosestEncloser(cover, qname))
	return dnsname.Equal(wildcard.Hdr.Name, wc) && nsecMatchDeniesType(wildcard.TypeBitMap, wc, qtype)
}
