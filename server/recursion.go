package server

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// Defaults of the recursion limits (Config.MaxRecursions,
// MaxRecursionsPerNetwork). A home or office network keeps a few dozen
// lookups in progress at most; a random-subdomain flood from one network
// keeps thousands, each costing upstream queries. The global cap keeps
// the resolver's own work bounded whatever the number of networks.
const (
	DefaultMaxRecursions           = 5000
	DefaultMaxRecursionsPerNetwork = 200
)

// Client networks for the per-network limit: an IPv4 /24 is the smallest
// block routed on the Internet; an IPv6 /56 is what an end site commonly
// gets (RFC 6177). The same prefixes as transport's rate limiting.
const (
	networkBitsIPv4 = 24
	networkBitsIPv6 = 56
)

// recursionLimiter bounds the questions in resolution (answers not ready
// in the answer cache) in total and per client network, so that a flood of
// unique names from one network can neither take all of the resolver's
// work nor starve the other networks. It holds one map entry per network
// with a question in progress: at most max entries.
type recursionLimiter struct {
	max, perNetwork int
	mu              sync.Mutex
	total           int
	byNetwork       map[netip.Prefix]int
	refused         atomic.Uint64
}

func newRecursionLimiter(max, perNetwork int) *recursionLimiter {
	if max <= 0 {
		max = DefaultMaxRecursions
	}
	if perNetwork <= 0 {
		perNetwork = DefaultMaxRecursionsPerNetwork
	}
	return &recursionLimiter{max: max, perNetwork: perNetwork, byNetwork: make(map[netip.Prefix]int)}
}

// network is the client network of a.
func network(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := networkBitsIPv6
	if a.Is4() {
		bits = networkBitsIPv4
	}
	p, _ := a.Prefix(bits)
	return p
}

// acquire takes a slot for a question from client; false when the client's
// network or the resolver as a whole is at its limit. A true acquire must
// be released.
func (l *recursionLimiter) acquire(client netip.Addr) (netip.Prefix, bool) {
	n := network(client)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max || l.byNetwork[n] >= l.perNetwork {
		l.refused.Add(1)
		return n, false
	}
	l.total++
	l.byNetwork[n]++
	return n, true
}

// release gives back the slot acquire took for network n.
func (l *recursionLimiter) release(n netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if c := l.byNetwork[n] - 1; c > 0 {
		l.byNetwork[n] = c
	} else {
		delete(l.byNetwork, n)
	}
}

// acquireCount is the number of questions holding a slot (tests).
func (l *recursionLimiter) acquireCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}
