package cache

import (
	"github.com/sextant-dns/sextant/security"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// Verdict is what DNSSEC validation says of a cached entry.
type Verdict struct {
	// Security is the entry's state (RFC 4035 4.3).
	Security security.Status
	// EDE and EDEText, when EDE is not 0, replace the entry's Extended
	// DNS Error (bogus data, insecure data the validator annotated).
	EDE     uint16
	EDEText string
	// TTL caps the seconds the entry may still live (the signatures'
	// validity, RRSIG original TTL, the bogus TTL); 0 is no cap.
	TTL uint32
}

// Mark gives old, an entry stored under name/qtype/qclass, validation's
// verdict, the way Unbound updates the security status of the RRsets it
// holds: it stores a copy of old with v's state and EDE and a TTL no longer
// than old has left (and v.TTL, and the clamps of Put), only if old is
// still the live entry there. That compare-and-swap runs under the shard's
// lock, since entries are immutable once Put and another question may
// have replaced old meanwhile. As for Put, a live Secure entry keeps its
// place against a worse verdict. It reports whether the copy was stored.
func (c *Cache) Mark(name string, qtype, qclass uint16, old *Entry, v Verdict) bool {
	return c.mark(key{name: dnsname.Lower(name), qtype: qtype, qclass: qclass}, old, v)
}

// mark is Mark under k.
func (c *Cache) mark(k key, old *Entry, v Verdict) bool {
	if old == nil {
		return false
	}
	now := c.cfg.Clock.Now()
	if old.expiredAt(now) {
		return false
	}
	ttl := remaining(old.Expires, now)
	if v.TTL > 0 {
		ttl = min(ttl, v.TTL)
	}
	// The copy keeps old's name, size and shared records: same key, same
	// data, so the shard's byte count stays right.
	marked := *old
	marked.Security = v.Security
	if v.EDE != 0 {
		marked.EDE, marked.EDEText = v.EDE, v.EDEText
	}
	life := c.cfg.ttlFor(&marked, ttl)
	if life <= 0 {
		return false
	}
	marked.Stored, marked.Expires = now, now.Add(life)
	h := c.hash(k)
	s := c.shards.at(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.lru.Peek(h)
	if !ok || !cur.holds(k) || cur.e != old || !replaces(&marked, old) {
		return false
	}
	evicted, stored := s.putLocked(h, slot{e: &marked, qtype: k.qtype, qclass: k.qclass, kind: k.kind})
	c.stats.evictions.Add(uint64(evicted))
	return stored
}
