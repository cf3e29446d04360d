package resolver

import (
	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// canonical returns the lower-case (ASCII only) fully qualified form of name.
func canonical(name string) string { return dnsname.Canonical(name) }

// isSubdomain reports whether child is parent or below it. An escaped dot is
// label content: ns\.attacker.example. is not below attacker.example., so
// it is never in that zone's bailiwick.
func isSubdomain(child, parent string) bool { return dnsname.IsAtOrBelow(child, parent) }

// strictSubdomain reports whether child is below parent, not equal.
func strictSubdomain(child, parent string) bool { return dnsname.IsBelow(child, parent) }

// parentName returns the name one label up ("." for a TLD and the root).
func parentName(name string) string { return dnsname.Parent(name) }

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
			h.Name = dnsname.Lower(h.Name)
			if h.Ttl > maxTTL {
				h.Ttl = 0 // RFC 2181 8: a TTL with the top bit set is 0
			}
			switch v := rr.(type) {
			case *dns.NS:
				v.Ns = dnsname.Lower(v.Ns)
			case *dns.CNAME:
				v.Target = dnsname.Lower(v.Target)
			case *dns.DNAME:
				v.Target = dnsname.Lower(v.Target)
			case *dns.SOA:
				v.Ns = dnsname.Lower(v.Ns)
				v.Mbox = dnsname.Lower(v.Mbox)
			case *dns.RRSIG:
				v.SignerName = dnsname.Lower(v.SignerName)
			}
		}
	}
}
