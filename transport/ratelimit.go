package transport

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Rate limiting of UDP answers per client prefix. Over UDP a query's
// source can be forged, so an open resolver answering everything is an
// amplifier aimed at whoever's address is forged; over TCP, TLS, HTTPS and
// QUIC the handshake proves the address, and a query that returns a valid
// Server Cookie (cookie.go) proves it too. Only the rest is limited.
//
// Each prefix (/24 for IPv4, /56 for IPv6: what one customer or one site
// usually holds) has a token bucket, kept as the Generic Cell Rate
// Algorithm's one timestamp (ITU-T I.371): a prefix may send Burst answers
// at once and Rate per second after. Past it, every Slip-th query gets a
// truncated answer (TC=1, no records: a real client retries over TCP,
// which is not limited; a forged one gets no more bytes than it sent) or,
// when it carried a Client Cookie, BADCOOKIE with a fresh Server Cookie
// (what BIND does: the client retries over UDP with a cookie that exempts
// it); the others are dropped.
//
// The buckets live in a fixed table indexed by a hash of the prefix, so
// memory is bounded whatever the number of sources: a prefix that lands on
// a slot in use takes it over with a full bucket. A collision can only
// make a limit looser, never limit another prefix.

// RateLimitConfig configures a RateLimiter. Zero fields take the defaults.
type RateLimitConfig struct {
	// Rate is the answers per second each prefix gets; default 1000.
	Rate int
	// Burst is how many answers a prefix may get at once; default 2*Rate.
	Burst int
	// Slip: every Slip-th limited answer is sent truncated, the others
	// dropped; default 2 (BIND's default). 1 truncates all; -1 drops all.
	Slip int
	// IPv4Prefix and IPv6Prefix are the prefix lengths clients are
	// grouped by; default 24 and 56.
	IPv4Prefix, IPv6Prefix int
	// Exempt lists client networks never limited (a NAT of many users, a
	// monitoring host).
	Exempt []netip.Prefix
	// Slots is the size of the bucket table; default 65536 (about 1.5 MiB).
	Slots int
	// Disabled makes the limiter pass every answer, uncounted: a program
	// that may turn limiting on at run time (Reconfigure) builds one
	// disabled limiter into its front ends instead of none.
	Disabled bool
}

// Defaults of RateLimitConfig. A home network or an office behind one
// address never reaches 1000 answers per second: a busy desktop browser
// asks tens of names per page and a whole office of them a few hundred per
// second at peak; the anchors' own defaults of 5 to 20 per second per
// client are what their users complain about. A forged flood is still cut
// to 1000 answers per second per /24, and the two-second burst lets a
// client's cold start or a mail server's batch through.
const (
	defaultRateLimit  = 1000
	defaultBurstRatio = 2
	defaultSlip       = 2
	defaultV4Prefix   = 24
	defaultV6Prefix   = 56
	defaultRateSlots  = 1 << 16
	rateShards        = 64
)

// RateLimiter limits UDP answers per client prefix. Safe for concurrent
// use; one can be shared by several front ends (ListenerConfig.RateLimit).
type RateLimiter struct {
	params atomic.Pointer[rateParams] // swapped whole by Reconfigure
	v4, v6 int
	slots  int
	now    func() int64 // monotonic nanoseconds
	shards [rateShards]rateShard
}

// rateParams are the settings Reconfigure may change while the limiter
// runs; each answer reads one snapshot.
type rateParams struct {
	interval  int64 // nanoseconds per answer
	tolerance int64 // Burst answers' worth of nanoseconds
	slip      int
	exempt    []netip.Prefix
	disabled  bool
}

type rateShard struct {
	mu    sync.Mutex
	slots []rateSlot
	stats RateLimitStats
	_     [40]byte // keeps shards' locks off one cache line
}

// rateSlot is one prefix's bucket: key 0 is an empty slot.
type rateSlot struct {
	key     uint64
	tat     int64  // GCRA's theoretical arrival time
	limited uint32 // limited answers since the bucket was taken, for Slip
}

// RateLimitStats counts the UDP answers the limiter decided on: Passed
// within the limit, Exempt (by Exempt, or a valid Server Cookie), and of
// the limited ones, Slipped (sent truncated or BADCOOKIE) and Dropped.
type RateLimitStats struct {
	Passed, Exempt, Slipped, Dropped uint64
}

// rateVerdict is the limiter's decision for one UDP answer.
type rateVerdict uint8

const (
	ratePass rateVerdict = iota
	rateSlip
	rateDrop
)

// Validate reports what is wrong with c.
func (c *RateLimitConfig) Validate() error {
	switch {
	case c.Rate < 0 || c.Burst < 0 || c.Slots < 0:
		return errors.New("rate limit: rate, burst and slots must not be negative")
	case c.Slip < -1:
		return errors.New("rate limit: slip must be -1 (drop all), 0 (default) or more")
	case c.IPv4Prefix < 0 || c.IPv4Prefix > 32:
		return fmt.Errorf("rate limit: IPv4 prefix length %d outside [0, 32]", c.IPv4Prefix)
	case c.IPv6Prefix < 0 || c.IPv6Prefix > 64:
		// 64: finer than a /64 is one host's choice of address.
		return fmt.Errorf("rate limit: IPv6 prefix length %d outside [0, 64]", c.IPv6Prefix)
	}
	return nil
}

// NewRateLimiter returns a limiter configured by c.
func NewRateLimiter(c RateLimitConfig) (*RateLimiter, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	slots := orDefault(c.Slots, defaultRateSlots)
	start := time.Now()
	l := &RateLimiter{
		v4:    orDefault(c.IPv4Prefix, defaultV4Prefix),
		v6:    orDefault(c.IPv6Prefix, defaultV6Prefix),
		slots: slots,
		now:   func() int64 { return int64(time.Since(start)) },
	}
	l.params.Store(newRateParams(c))
	per := max(slots/rateShards, 1)
	for i := range l.shards {
		l.shards[i].slots = make([]rateSlot, per)
	}
	return l, nil
}

// Enabled reports whether the limiter limits (RateLimitConfig.Disabled
// is false).
func (l *RateLimiter) Enabled() bool { return !l.params.Load().disabled }

func newRateParams(c RateLimitConfig) *rateParams {
	rate := orDefault(c.Rate, defaultRateLimit)
	burst := orDefault(c.Burst, defaultBurstRatio*rate)
	p := &rateParams{
		interval: int64(time.Second) / int64(rate),
		slip:     orDefault(c.Slip, defaultSlip),
		exempt:   maskedPrefixes(c.Exempt),
		disabled: c.Disabled,
	}
	p.tolerance = int64(burst-1) * p.interval
	return p
}

// Reconfigure changes the rate, burst, slip, exempt networks and
// Disabled while the limiter runs; the buckets are kept (a prefix's
// bucket is judged by the new rate from its next answer on). The prefix
// lengths and the table size cannot change: they shape the table, and a
// config that changes them is refused.
func (l *RateLimiter) Reconfigure(c RateLimitConfig) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if orDefault(c.IPv4Prefix, defaultV4Prefix) != l.v4 || orDefault(c.IPv6Prefix, defaultV6Prefix) != l.v6 ||
		orDefault(c.Slots, defaultRateSlots) != l.slots {
		return errors.New("rate limit: prefix lengths and slots cannot change on a running limiter")
	}
	l.params.Store(newRateParams(c))
	return nil
}

func orDefault(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

// Stats returns the counters.
func (l *RateLimiter) Stats() RateLimitStats {
	var s RateLimitStats
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		s.Passed += sh.stats.Passed
		s.Exempt += sh.stats.Exempt
		s.Slipped += sh.stats.Slipped
		s.Dropped += sh.stats.Dropped
		sh.mu.Unlock()
	}
	return s
}

func maskedPrefixes(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		out[i] = p.Masked()
	}
	return out
}

// exempts reports whether client is in the Exempt list.
func (p *rateParams) exempts(client netip.Addr) bool {
	client = client.Unmap()
	for _, p := range p.exempt {
		if p.Contains(client) {
			return true
		}
	}
	return false
}

// hashKey spreads prefix keys over shards and slots (Fibonacci hashing:
// the high bits depend on every bit of the key).
func hashKey(key uint64) uint64 { return key * 0x9E3779B97F4A7C15 }

// exempted counts an answer to a client exempt by a valid Server Cookie.
func (l *RateLimiter) exempted(client netip.Addr) {
	if l.params.Load().disabled {
		return
	}
	sh := &l.shards[hashKey(l.key(client))>>58]
	sh.mu.Lock()
	sh.stats.Exempt++
	sh.mu.Unlock()
}

// admit decides on one UDP answer to client. It allocates nothing.
func (l *RateLimiter) admit(client netip.Addr) rateVerdict {
	p := l.params.Load()
	if p.disabled {
		return ratePass
	}
	if p.exempts(client) {
		l.exempted(client)
		return ratePass
	}
	return l.admitKey(p, l.key(client))
}

// admitKey decides on one answer counted in key's bucket (a non-zero
// key: a client prefix, or a response's key, rrl.go). It allocates
// nothing.
func (l *RateLimiter) admitKey(p *rateParams, key uint64) rateVerdict {
	h := hashKey(key)
	sh := &l.shards[h>>58]
	now := l.now()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	slot := &sh.slots[(h>>20)%uint64(len(sh.slots))]
	if slot.key != key {
		*slot = rateSlot{key: key, tat: now}
	}
	tat := max(slot.tat, now)
	if tat-now <= p.tolerance {
		slot.tat = tat + p.interval
		sh.stats.Passed++
		return ratePass
	}
	slot.limited++
	if p.slip > 0 && slot.limited%uint32(p.slip) == 0 {
		sh.stats.Slipped++
		return rateSlip
	}
	sh.stats.Dropped++
	return rateDrop
}

// key is client's prefix as a non-zero number, the family in the top bits.
func (l *RateLimiter) key(client netip.Addr) uint64 {
	client = client.Unmap()
	if client.Is4() {
		a := client.As4()
		v := uint64(a[0])<<24 | uint64(a[1])<<16 | uint64(a[2])<<8 | uint64(a[3])
		return 1<<63 | v>>(32-l.v4)
	}
	a := client.As16()
	var v uint64
	for _, b := range a[:8] {
		v = v<<8 | uint64(b)
	}
	if l.v6 == 0 {
		v = 0
	} else {
		v >>= 64 - l.v6
	}
	// Collapse to 62 bits so the family bit stays apart; /56 keeps all.
	return 1<<62 | v&(1<<62-1)
}
