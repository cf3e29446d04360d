package authority

import (
	"bytes"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

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
// its descendants. (dnsname.Compare is the string form.)
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

// replaceSuffix rewrites the fully qualified name so that its suffix from
// (a canonical ancestor) becomes to: the DNAME substitution of RFC 6672
// 2.2. name may be in any case or escaping; the labels it keeps keep their
// form. The suffix is found by counting labels, not bytes, as name and from
// may spell the same labels with different octet counts.
func replaceSuffix(name, from, to string) string {
	prefix := name
	if n := dnsname.CountLabels(from); n > 0 {
		prefix = name[:len(name)-len(dnsname.LastLabels(name, n))]
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
