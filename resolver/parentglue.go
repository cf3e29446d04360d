package resolver

import (
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/sextant-dns/sextant/clock"
)

// Parent-side glue (issue 15 point 4). A child zone's own, authoritative
// address for its name server replaces the parent's glue in the cache
// (RFC 2181 5.4.1). When the two disagree and the child's is wrong (a
// renumbered server the zone file forgot), the server is not given up
// before the parent's address is tried: the glue of every referral is
// also kept here, for its TTL, as Unbound keeps parent-side addresses
// (PACKED_RRSET_PARENT_SIDE) and tries them last. The selector then
// ranks both addresses of the server like any others.

// maxParentGlue bounds the names whose parent-side glue is kept (least
// recently used out: a forgotten one is only not tried).
const maxParentGlue = 10000

// maxParentGlueTTL caps how long parent-side glue is kept, whatever its
// TTL (a day, as the cache's default maximum TTL).
const maxParentGlueTTL = 24 * time.Hour

// glueKey is a name server's name in a class.
type glueKey struct {
	name   string
	qclass uint16
}

// parentGlue is one name server's glue as its parent gave it.
type parentGlue struct {
	addrs   []netip.Addr
	expires time.Time // on the DNS clock
}

// glueStore holds the parent-side glue of name servers.
type glueStore struct {
	mu    sync.Mutex
	clk   clock.Clock
	names *simplelru.LRU[glueKey, parentGlue]
}

func newGlueStore(clk clock.Clock) *glueStore {
	lru, err := simplelru.NewLRU[glueKey, parentGlue](maxParentGlue, nil)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &glueStore{clk: clk, names: lru}
}

// put keeps the glue addresses of name server ns for ttl seconds, adding
// to those of its other family. No addresses records that the parent gave
// no glue for ns (see Resolver.addressless).
func (g *glueStore) put(ns string, qclass uint16, addrs []netip.Addr, ttl uint32) {
	if ttl == 0 {
		return
	}
	now := g.clk.Now()
	expires := now.Add(min(time.Duration(ttl)*time.Second, maxParentGlueTTL))
	k := glueKey{ns, qclass}
	g.mu.Lock()
	defer g.mu.Unlock()
	if old, ok := g.names.Peek(k); ok && now.Before(old.expires) {
		merged := append([]netip.Addr(nil), old.addrs...)
		for _, a := range addrs {
			if !containsAddr(merged, a) {
				merged = append(merged, a)
			}
		}
		addrs = merged
		if old.expires.Before(expires) {
			expires = old.expires
		}
	}
	g.names.Add(k, parentGlue{addrs: addrs, expires: expires})
}

// get returns the live parent-side glue of name server ns, and whether
// the parent's word on it is known (no addresses: it gave none).
func (g *glueStore) get(ns string, qclass uint16) ([]netip.Addr, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.names.Get(glueKey{ns, qclass})
	if !ok || !g.clk.Now().Before(e.expires) {
		return nil, false
	}
	return e.addrs, true
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}
