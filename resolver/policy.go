package resolver

import "net/netip"

// addrPolicy decides which server addresses may be queried. By default no
// query goes to an unspecified, loopback, link-local or multicast address:
// a delegation to 127.0.0.1 must not make the resolver query itself or a
// local service. Loopback is allowed when the root hints are loopback (a
// lab) or the operator says so (--upstream-loopback).
type addrPolicy struct {
	ipv4, ipv6    bool
	allowLoopback bool
}

// allowed reports whether a may be sent a query.
func (p addrPolicy) allowed(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	if a.Is4() && !p.ipv4 || a.Is6() && !p.ipv6 {
		return false
	}
	if a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		return false
	}
	if a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	if a.IsLoopback() {
		return p.allowLoopback
	}
	return true
}
