package cache

import (
	"time"

	"github.com/sextant-dns/sextant/internal/dnsname"

	"github.com/sextant-dns/sextant/security"
)

// Serve-stale (RFC 8767) and prefetch support: entries kept past their
// expiry for answers when the servers cannot be reached, and entries near
// their expiry that a refresh may replace.

// GetStale returns the entry for name/qtype/qclass whether live or expired
// less than Config.ServeStale ago, if it is data or a negative answer that
// did not fail validation (RFC 8767 4: never bogus data, never failures).
// It is for answering when resolution failed; Get is for everything else.
func (c *Cache) GetStale(name string, qtype, qclass uint16) (*Entry, bool) {
	return c.stale(key{name: dnsname.Lower(name), qtype: qtype, qclass: qclass})
}

// GetStaleNXDomain is GetStale for the NXDOMAIN entry of name.
func (c *Cache) GetStaleNXDomain(name string, qclass uint16) (*Entry, bool) {
	return c.stale(nxKey(name, qclass))
}

func (c *Cache) stale(k key) (*Entry, bool) {
	h := c.hash(k)
	v, ok := c.shards.at(h).lru.Get(h)
	if !ok || !v.holds(k) || v.e.Failure() || v.e.Security == security.Bogus {
		return nil, false
	}
	now := c.cfg.Clock.Now()
	if v.e.expiredAt(now) && !c.keptStale(v.e, now) {
		return nil, false
	}
	return v.e, true
}

// keptStale reports whether e, expired by now, is still kept for GetStale.
func (c *Cache) keptStale(e *Entry, now time.Time) bool {
	return c.cfg.ServeStale > 0 && !e.Failure() && e.Security != security.Bogus && now.Before(e.Expires.Add(c.cfg.ServeStale))
}

// NearExpiry reports whether e, a live entry, is in the last tenth of its
// lifetime, when a prefetch should refresh it (Unbound's prefetch rule).
// Data stored under its key then replaces it at the same rank or higher
// whatever the DNSSEC states, as if it had expired: it is about to.
func (c *Cache) NearExpiry(e *Entry) bool {
	now := c.cfg.Clock.Now()
	return !e.expiredAt(now) && e.nearExpiry(now)
}

// nearExpiry reports whether now is in the last tenth of e's lifetime.
func (e *Entry) nearExpiry(now time.Time) bool {
	return !now.Before(e.Expires.Add(-e.Expires.Sub(e.Stored) / 10))
}
