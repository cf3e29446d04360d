package resolver

import (
	"strings"

	"github.com/miekg/dns"
)

// canonical returns the lower-case fully qualified form of name.
func canonical(name string) string {
	return strings.ToLower(dns.Fqdn(name))
}

// isSubdomain reports whether child is parent or below it (both canonical).
func isSubdomain(child, parent string) bool {
	if parent == "." || child == parent {
		return true
	}
	return strings.HasSuffix(child, "."+parent) || (len(child) > len(parent) && strings.HasSuffix(child, parent) && child[len(child)-len(parent)-1] == '.')
}

// strictSubdomain reports whether child is below parent, not equal.
func strictSubdomain(child, parent string) bool {
	return child != parent && isSubdomain(child, parent)
}

// parentName returns the name one label up ("." for a TLD and the root).
func parentName(name string) string {
	if name == "." {
		return "."
	}
	off, end := dns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[off:]
}

// ancestorWithLabels returns the suffix of name with n labels.
func ancestorWithLabels(name string, n int) string {
	if n <= 0 {
		return "."
	}
	idx := dns.Split(name)
	if n >= len(idx) {
		return name
	}
	return name[idx[len(idx)-n]:]
}

// maxTTL is the largest TTL RFC 2181 8 allows.
const maxTTL = 1<<31 - 1

// canonicaliseMsg lower-cases the owner names and the names in the RDATA of
// the types the iterator follows (NS, CNAME, DNAME, SOA), so that 0x20 case
// and server quirks never split cache keys. RFC 4034 6.2 compares these
// names in lower case for DNSSEC too, so signatures still verify. TTLs
// over 2^31-1 become 0.
func canonicaliseMsg(m *dns.Msg) {
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			h := rr.Header()
			h.Name = strings.ToLower(h.Name)
			if h.Ttl > maxTTL {
				h.Ttl = 0 // RFC 2181 8: a TTL with the top bit set is 0
			}
			switch v := rr.(type) {
			case *dns.NS:
				v.Ns = strings.ToLower(v.Ns)
			case *dns.CNAME:
				v.Target = strings.ToLower(v.Target)
			case *dns.DNAME:
				v.Target = strings.ToLower(v.Target)
			case *dns.SOA:
				v.Ns = strings.ToLower(v.Ns)
				v.Mbox = strings.ToLower(v.Mbox)
			case *dns.RRSIG:
				v.SignerName = strings.ToLower(v.SignerName)
			}
		}
	}
}
