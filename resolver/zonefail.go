package resolver

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
)

// Zone failures (RFC 9520 3 and 4). When no server of a zone gives a usable
// reply, the zone is remembered as failed: a zone-failure cache entry
// (cache.PutZoneFailure) that every question for the zone meets before sending
// anything. It lives zoneFailureBase, doubled after each failed re-probe up
// to zoneFailureMax. When it expires, one question (the probe) may query the
// zone again while the others keep getting the cached failure; the probe's
// success forgets the failure, its failure re-caches it for longer.
//
// Silence (every server timed out) fails the zone at once: it is not about
// one name. Replies that are all unusable (REFUSED, SERVFAIL, lame) fail
// it once they came for zoneLameNames distinct names in a row, with no
// usable reply between: one broken name does not take its zone down, but
// a zone that refuses everything (issue 8: one upstream query per random
// client name) is caught after a few.

const (
	// zoneFailureBase is the first failure's cache time (RFC 9520 3.2
	// gives 5 s as the example; at least 1 s).
	zoneFailureBase = 5 * time.Second
	// zoneFailureMax caps the back-off (RFC 9520 3.2: 5 minutes).
	zoneFailureMax = 5 * time.Minute
	// zoneLameNames is how many distinct names must get only unusable
	// replies from a zone, in a row, before the zone counts as failed.
	zoneLameNames = 3
	// maxTrackedZoneFailures bounds the zone table (least recently used
	// out: a forgotten zone is simply asked again).
	maxTrackedZoneFailures = 20000
)

// zoneKey is a zone in a class.
type zoneKey struct {
	zone   string
	qclass uint16
}

// zoneFailState is the failure history of one zone.
type zoneFailState struct {
	// failures counts the failures of the zone in a row (each a first
	// failure or a failed probe); the back-off grows with it.
	failures int
	// lameNames are the distinct names that got only unusable replies
	// since the last usable one, while failures is 0.
	lameNames []string
	// probe is the question allowed to query the zone after its entry
	// expired (nil: none); probeSince is when it started, on the real
	// clock, so that a probe whose question vanished is taken back.
	probe      *resolution
	probeSince time.Time
	// ede and text are the last failure, for questions turned away while
	// a probe is out.
	ede  uint16
	text string
}

// zoneFailures is the table of zones with a failure history.
type zoneFailures struct {
	mu    sync.Mutex
	zones *simplelru.LRU[zoneKey, *zoneFailState]
}

func newZoneFailures() *zoneFailures {
	lru, err := simplelru.NewLRU[zoneKey, *zoneFailState](maxTrackedZoneFailures, nil)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &zoneFailures{zones: lru}
}

// zoneBackoff is how long the failures-th failure in a row is cached.
func zoneBackoff(failures int) time.Duration {
	return min(zoneFailureBase<<min(max(failures-1, 0), 16), zoneFailureMax)
}

// cachedZoneFailure is the error for a question that meets a zone's
// failure (cached, or being re-probed by another question).
func cachedZoneFailure(text string) *Error {
	return &Error{EDE: dns.ExtendedErrorCodeCachedError, Text: "cached failure: " + text, Cacheable: true, fromCache: true}
}

// admitZone decides whether rs may query the servers of zone: not while
// the zone's failure entry lives, nor while another question probes the
// zone after it expired. rs becomes the probe when the zone has failed
// before and nobody probes it; it stays the probe until zoneSucceeded,
// zoneFailed or releaseZoneProbes.
func (r *Resolver) admitZone(rs *resolution, zone string, qclass uint16) error {
	if e, ok := r.cache.GetZoneFailure(zone, qclass); ok && e.Failure() {
		return cachedZoneFailure(e.EDEText)
	}
	z := r.zoneFails
	k := zoneKey{zone, qclass}
	z.mu.Lock()
	defer z.mu.Unlock()
	st, ok := z.zones.Get(k)
	if !ok || st.failures == 0 {
		return nil
	}
	// Checked again under the lock: a probe may have just failed.
	if e, ok := r.cache.GetZoneFailure(zone, qclass); ok && e.Failure() {
		return cachedZoneFailure(e.EDEText)
	}
	now := time.Now()
	if st.probe != nil && st.probe != rs && now.Sub(st.probeSince) < r.limits.ClientDeadline {
		return cachedZoneFailure(st.text + " (the zone is being probed)")
	}
	if st.probe != rs {
		st.probe, st.probeSince = rs, now
		rs.zoneProbes = append(rs.zoneProbes, k)
	}
	return nil
}

// zoneSucceeded forgets the zone's failures: a server gave a usable reply.
func (r *Resolver) zoneSucceeded(zone string, qclass uint16) {
	z := r.zoneFails
	k := zoneKey{zone, qclass}
	z.mu.Lock()
	defer z.mu.Unlock()
	if _, ok := z.zones.Peek(k); !ok {
		return
	}
	z.zones.Remove(k)
	r.cache.DeleteZoneFailure(zone, qclass)
}

// zoneFailed records that rs's question (for name) got no usable reply
// from any server of zone; silent says no server replied at all. It caches
// the zone's failure when that makes the zone failed: at once for silence,
// after zoneLameNames names for unusable replies, and always for the
// probe's verdict. A failure that others already recorded counts once.
func (r *Resolver) zoneFailed(rs *resolution, zone string, qclass uint16, name string, silent bool, e *Error) {
	if rs.background {
		// Nobody asked: a failure cached now would answer the first
		// client question without an attempt (issue 15 point 1).
		return
	}
	z := r.zoneFails
	k := zoneKey{zone, qclass}
	z.mu.Lock()
	defer z.mu.Unlock()
	st, ok := z.zones.Get(k)
	if !ok {
		st = &zoneFailState{}
		z.zones.Add(k, st)
	}
	switch {
	case st.probe == rs:
		// The probe's verdict.
	case st.failures > 0:
		if st.probe != nil {
			return // another question's probe decides
		}
		if e, ok := r.cache.GetZoneFailure(zone, qclass); ok && e.Failure() {
			return // recorded already by a question that ran alongside
		}
		// A question that started before the zone failed and ended
		// after its entry expired: as good as a probe.
	case !silent:
		if !containsString(st.lameNames, name) {
			st.lameNames = append(st.lameNames, name)
		}
		if len(st.lameNames) < zoneLameNames {
			return
		}
	}
	st.failures++
	st.lameNames = nil
	st.probe = nil
	st.ede, st.text = e.EDE, e.Text
	ttl := zoneBackoff(st.failures)
	r.cache.PutZoneFailure(zone, qclass, &cache.Entry{
		Rcode: dns.RcodeServerFailure, EDE: e.EDE, EDEText: e.Text,
	}, uint32(ttl/time.Second))
}

// releaseZoneProbes gives back the probes rs still holds, without a
// verdict (its question ended for its own reasons: budget, deadline), so
// that the next question probes.
func (r *Resolver) releaseZoneProbes(rs *resolution) {
	if len(rs.zoneProbes) == 0 {
		return
	}
	z := r.zoneFails
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, k := range rs.zoneProbes {
		if st, ok := z.zones.Peek(k); ok && st.probe == rs {
			st.probe = nil
		}
	}
	rs.zoneProbes = nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
