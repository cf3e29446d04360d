package dnsname

import (
	"bytes"
	"strings"

	"github.com/miekg/dns"
)

// This file holds the canonical order of names (RFC 4034 6.1), the order
// of NSEC chains.

// CanonicalLabels returns the labels of name in wire form (escapes
// resolved), ASCII lower-cased, from the root side first: the order RFC
// 4034 6.1 compares them in (CompareLabels). They share one allocation of
// the name's wire length, so an index of many names (an NSEC chain) holds
// little more than the names. ok is false for names that do not pack.
func CanonicalLabels(name string) (labels [][]byte, ok bool) {
	var buf [256]byte
	n, err := dns.PackDomainName(dns.Fqdn(name), buf[:], 0, nil, false)
	if err != nil {
		return nil, false
	}
	wire := append([]byte(nil), buf[:n]...)
	LowerBytes(wire) // ASCII only: RFC 4034 6.1 orders octets as they are
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

// CompareLabels orders two label lists from CanonicalLabels in canonical
// order (RFC 4034 6.1): -1, 0 or +1, label by label from the root, each an
// unsigned octet string, a name before its descendants.
func CompareLabels(a, b [][]byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := bytes.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

// Compare orders two names canonically (RFC 4034 section 6.1): -1, 0 or
// +1, label by label from the root, each label as lower-cased (ASCII) octets
// of its wire form, a name before its descendants. Names that do not pack
// sort first and compare equal only to each other, so they never prove
// anything (an NSEC span check with one proves nothing).
func Compare(a, b string) int {
	if c, ok := comparePlainNames(a, b); ok {
		return c
	}
	la, oka := CanonicalLabels(a)
	lb, okb := CanonicalLabels(b)
	switch {
	case !oka && !okb:
		return 0
	case !oka:
		return -1
	case !okb:
		return 1
	}
	return CompareLabels(la, lb)
}

// maxPlainName is the longest presentation name (trailing dot aside) that
// always packs: 255 octets of wire form less the length octets.
const maxPlainName = 253

// comparePlainNames is Compare for the common names without escapes:
// their bytes are their wire labels, so they compare in place, with no
// packing and no allocation (RFC 8198 synthesis compares a name with every
// kept NSEC record). ok is false, for Compare's general path, when
// either name has a backslash, an empty label, a label over 63 octets or
// is too long to pack.
func comparePlainNames(a, b string) (c int, ok bool) {
	if !plainName(a) || !plainName(b) {
		return 0, false
	}
	a, b = strings.TrimSuffix(a, "."), strings.TrimSuffix(b, ".")
	for a != "" && b != "" {
		la, ra := lastLabel(a)
		lb, rb := lastLabel(b)
		if c := compareFoldASCII(la, lb); c != 0 {
			return c, true
		}
		a, b = ra, rb
	}
	switch {
	case a == b:
		return 0, true
	case a == "":
		return -1, true
	}
	return 1, true
}

// plainName reports a name Compare may take in place: "." or labels
// of 1 to 63 octets without escapes, at most maxPlainName octets.
func plainName(name string) bool {
	if name == "." {
		return true
	}
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > maxPlainName || strings.IndexByte(name, '\\') >= 0 ||
		name[0] == '.' || strings.Contains(name, "..") {
		return false
	}
	for name != "" {
		l, rest := lastLabel(name)
		if l == "" || len(l) > 63 {
			return false
		}
		name = rest
	}
	return true
}

// lastLabel splits off the last label of a name without its trailing dot.
func lastLabel(name string) (label, rest string) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return name, ""
	}
	return name[i+1:], name[:i]
}

// compareFoldASCII compares two labels octet by octet, ASCII letters
// lower-cased (RFC 4034 6.1); a label that is a prefix of the other sorts
// first.
func compareFoldASCII(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := lowerASCII(a[i]), lowerASCII(b[i])
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

func lowerASCII(c byte) byte {
	if isUpper(c) {
		return c + 'a' - 'A'
	}
	return c
}
