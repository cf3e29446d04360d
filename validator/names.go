package validator

import (
	"bytes"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/internal/sigdata"
)

// canonicalLabels returns the labels of name in wire form, lower-cased,
// from the root side first (the order of RFC 4034 section 6.1). ok is false
// for names that do not pack.
func canonicalLabels(name string) (labels [][]byte, ok bool) {
	var buf [256]byte
	n, err := dns.PackDomainName(dns.Fqdn(name), buf[:], 0, nil, false)
	if err != nil {
		return nil, false
	}
	wire := buf[:n]
	dnsname.LowerBytes(wire) // ASCII only: RFC 4034 6.1 orders octets as they are
	for off := 0; off < len(wire); {
		l := int(wire[off])
		if l == 0 {
			break
		}
		if off+1+l > len(wire) {
			return nil, false
		}
		labels = append(labels, wire[off+1:off+1+l])
		off += 1 + l
	}
	// Reverse: root side first.
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	return labels, true
}

// compareNames orders two names canonically (RFC 4034 section 6.1):
// -1, 0 or +1. Names that do not pack sort first and compare equal only to
// each other, so they never prove anything.
func compareNames(a, b string) int {
	la, oka := canonicalLabels(a)
	lb, okb := canonicalLabels(b)
	switch {
	case !oka && !okb:
		return 0
	case !oka:
		return -1
	case !okb:
		return 1
	}
	for i := 0; i < len(la) && i < len(lb); i++ {
		if c := bytes.Compare(la[i], lb[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(la) < len(lb):
		return -1
	case len(la) > len(lb):
		return 1
	}
	return 0
}

// equalNames reports whether a and b are the same name, ignoring case.
func equalNames(a, b string) bool { return dnsname.Equal(dns.Fqdn(a), dns.Fqdn(b)) }

// isSubdomain reports whether child is at or below parent.
func isSubdomain(child, parent string) bool {
	return dnsname.IsAtOrBelow(dns.Fqdn(child), dns.Fqdn(parent))
}

// parentName returns name without its first label ("." for the root).
func parentName(name string) string {
	i, end := dns.NextLabel(name, 0)
	if end || i >= len(name) {
		return "."
	}
	return name[i:]
}

// childOf returns the ancestor of name (or name itself) that has exactly one
// label more than ancestor. name must be strictly below ancestor.
func childOf(name, ancestor string) string {
	return sigdata.LastLabels(name, dns.CountLabel(ancestor)+1)
}

// commonAncestor returns the longest name that a and b both are at or below.
func commonAncestor(a, b string) string {
	return sigdata.LastLabels(a, dns.CompareDomainName(a, b))
}

// wildcardOf returns the wildcard name directly below ce.
func wildcardOf(ce string) string {
	if ce == "." {
		return "*."
	}
	return "*." + ce
}
