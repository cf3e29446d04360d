package transport

import (
	"net/netip"
	"sync/atomic"
)

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

// AccessList is the list of client networks served (ListenerConfig.Allow)
// as a value that front ends share and that may change while they run: a
// configuration reload swaps it with Set, and every query after that is
// judged by the new list, on connections already open too. Checking a
// client costs one atomic load beside the list's walk. Safe for
// concurrent use.
type AccessList struct {
	p atomic.Pointer[acl]
}

// NewAccessList makes an AccessList of allow (nil: loopback only).
func NewAccessList(allow []netip.Prefix) *AccessList {
	l := &AccessList{}
	l.Set(allow)
	return l
}

// Set replaces the list.
func (l *AccessList) Set(allow []netip.Prefix) {
	a := make(acl, len(allow))
	for i, p := range allow {
		a[i] = p.Masked()
	}
	l.p.Store(&a)
}

// Allows reports whether a client at addr is served.
func (l *AccessList) Allows(addr netip.Addr) bool { return l.allows(addr) }

func (l *AccessList) allows(addr netip.Addr) bool { return (*l.p.Load()).allows(addr) }
