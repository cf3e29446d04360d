package authority

import (
	"bytes"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// canonicalName returns name as a lower-case FQDN in the escaped form
// miekg/dns unpacks names from the wire in, the form every map key and
// index entry in this package uses (see dnsname.Canonical).
func canonicalName(name string) string { return dnsname.Canonical(name) }

// parentOf returns the name one label up ("a.b." -> "b.", "a." -> ".").
// The root has no parent: parentOf(".") is ".".
func parentOf(name string) string { return dnsname.Parent(name) }

// firstLabel returns the first label of name in presentation form.
func firstLabel(name string) string {
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '\\':
			i++
		case '.':
			return name[:i]
		}
	}
	return name
}

// isBelow reports whether child is a proper subdomain of parent.
func isBelow(child, parent string) bool { return dnsname.IsBelow(child, parent) }

// wireLabels returns name's labels as raw (unescaped, lower-cased) octet
// strings from the rightmost to the leftmost: the order RFC 4034 6.1
// canonical comparison walks them in. The root has no labels.
func wireLabels(name string) ([][]byte, bool) {
	var buf [256]byte
	off, err := dns.PackDomainName(name, buf[:], 0, nil, false)
	if err != nil {
		return nil, false
	}
	var labels [][]byte
	for i := 0; i < off; {
		n := int(buf[i])
		if n == 0 || i+1+n > off {
			break
		}
		l := make([]byte, n)
		for j := 0; j < n; j++ {
			c := buf[i+1+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			l[j] = c
		}
		labels = append(labels, l)
		i += 1 + n
	}
	for a, b := 0, len(labels)-1; a < b; a, b = a+1, b-1 {
		labels[a], labels[b] = labels[b], labels[a]
	}
	return labels, true
}

// labelsCompare orders two reversed label lists (from wireLabels) in
// DNSSEC canonical order (RFC 4034 6.1): label by label from the right,
// each label compared as an unsigned octet string, where a name sorts before
// its descendants. (signCanonicalCompare in sign_order.go is the string form.)
func labelsCompare(a, b [][]byte) int {
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

// replaceSuffix rewrites name so that its suffix from (a canonical
// ancestor) becomes to: the DNAME substitution of RFC 6672 2.2. name may be
// in any case or escaping; the labels it keeps keep their form. The suffix
// is found by counting labels, not bytes, as name and from may spell the
// same labels with different octet counts.
func replaceSuffix(name, from, to string) string {
	offs := dns.Split(name)
	keep := len(offs) - dns.CountLabel(from) // labels of name above from
	var prefix string
	switch {
	case keep <= 0:
	case keep >= len(offs): // from is the root
		prefix = dns.Fqdn(name)
	default:
		prefix = name[:offs[keep]]
	}
	if to == "." {
		if prefix == "" {
			return "."
		}
		return prefix
	}
	return prefix + to
}

// nameTooLong reports whether name exceeds 255 octets in wire form.
func nameTooLong(name string) bool {
	var buf [256]byte
	_, err := dns.PackDomainName(name, buf[:], 0, nil, false)
	return err != nil
}
