package cache

import (
	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// ClosestAbove walks up from the parent of name (a fully qualified name;
// name itself is not looked at) and returns the closest ancestor holding a
// live entry of qtype with data, such as the DNAME that rewrites every name
// below its owner (RFC 6672). owner is lower case. A find counts as a hit;
// finding nothing counts nothing: the resolver probes for DNAMEs on every
// lookup, and a miss there is not a cache miss.
func (c *Cache) ClosestAbove(name string, qtype, qclass uint16) (owner string, e *Entry, ok bool) {
	if qtype == dns.TypeDNAME && c.dnames.Load() == 0 {
		return "", nil, false
	}
	name = dnsname.Lower(dns.Fqdn(name))
	if name == "." {
		return "", nil, false
	}
	for n := dnsname.Parent(name); ; n = dnsname.Parent(n) {
		k := key{name: n, qtype: qtype, qclass: qclass}
		// Peek first: most names have no such ancestor, and a miss then
		// costs neither the clock nor the LRU's recency update.
		if c.peek(k) {
			if e, ok := c.live(k, c.cfg.Clock.Now()); ok && len(e.RRs) > 0 {
				c.stats.hits.Add(1)
				return k.name, e, true
			}
		}
		if n == "." {
			return "", nil, false
		}
	}
}
