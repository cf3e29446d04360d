package authority

import (
	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

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
