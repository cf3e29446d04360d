package transport

import "net/netip"

// acl decides which clients are answered. An empty acl admits loopback
// clients only, so a resolver started without --allow is not an open
// resolver by accident.
type acl []netip.Prefix

// allows reports whether addr may be served. IPv4-mapped IPv6 addresses are
// judged as the IPv4 address they carry.
func (a acl) allows(addr netip.Addr) bool {
	addr = addr.Unmap()
	if len(a) == 0 {
		return addr.IsLoopback()
	}
	for _, p := range a {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
