package cache

import "github.com/sextant-dns/sextant/internal/dnsname"

// Entries that are not RRsets: a name that does not exist, for any type
// (RFC 8020), and a zone whose servers all failed (RFC 9520). Each has a
// key of its own kind, so no RRset type stands in for them.

// GetNXDomain returns the live NXDOMAIN entry of name: the name does not
// exist, for any type (RFC 8020).
func (c *Cache) GetNXDomain(name string, qclass uint16) (*Entry, bool) {
	return c.get(nxKey(name, qclass))
}

// PutNXDomain stores e, an NXDOMAIN entry (Rcode dns.RcodeNameError), as
// the answer for every type at name, under the rules of Put.
func (c *Cache) PutNXDomain(name string, qclass uint16, e *Entry, ttl uint32) bool {
	return c.put(nxKey(name, qclass), e, ttl)
}

// MarkNXDomain is Mark for the NXDOMAIN entry of name.
func (c *Cache) MarkNXDomain(name string, qclass uint16, old *Entry, v Verdict) bool {
	return c.mark(nxKey(name, qclass), old, v)
}

// DeleteNXDomain forgets the NXDOMAIN entry of name (a resolver asking
// again after its denial failed validation).
func (c *Cache) DeleteNXDomain(name string, qclass uint16) {
	c.delete(nxKey(name, qclass))
}

// GetZoneFailure returns the live failure entry of zone (RFC 9520): none of
// its servers gave a usable reply.
func (c *Cache) GetZoneFailure(zone string, qclass uint16) (*Entry, bool) {
	return c.get(zoneFailureKey(zone, qclass))
}

// PutZoneFailure stores e, a failure entry (Rcode dns.RcodeServerFailure,
// with its EDE), for zone under the rules of Put.
func (c *Cache) PutZoneFailure(zone string, qclass uint16, e *Entry, ttl uint32) bool {
	return c.put(zoneFailureKey(zone, qclass), e, ttl)
}

// DeleteZoneFailure forgets zone's failure (a server answered).
func (c *Cache) DeleteZoneFailure(zone string, qclass uint16) {
	c.delete(zoneFailureKey(zone, qclass))
}

func nxKey(name string, qclass uint16) key {
	return key{name: dnsname.Lower(name), qclass: qclass, kind: kindNXDomain}
}

func zoneFailureKey(zone string, qclass uint16) key {
	return key{name: dnsname.Lower(zone), qclass: qclass, kind: kindZoneFailure}
}
