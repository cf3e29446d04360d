package transport

import (
	"errors"
	"log/slog"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// ConnLimits shares a stream front end's connection slots (its MaxConns)
// among clients, so that no one client, nor one network, can hold them
// all. Every field has a default; zero means "use it".
//
// A flat cap alone lets one client open every slot and keep each alive
// with a query now and then (or, on QUIC, with PING frames only), after
// which well-behaved clients, and UDP clients falling back to TCP after a
// truncated answer (RFC 7766 5), are refused. Hence three defences:
// per-client and per-network shares, eviction of the longest-idle
// connection when slots run short (RFC 7766 6.2.3: a server under
// pressure may close idle connections), and a reserve of slots that only
// a client with no connection yet may take.
//
// For scale: BIND's whole tcp-clients quota defaults to 150 and Unbound's
// incoming-num-tcp to 10 per thread; Unbound offers tcp-connection-limit
// per netblock (unset by default) and shortens its tcp-idle-timeout as
// its TCP buffers fill. The defaults here follow that last idea, with
// shares an ordinary client never reaches (a stub keeps one or two
// connections per server; a NAT of a few dozen such stubs stays under
// PerClient) but well below the cap.
type ConnLimits struct {
	// PerClient bounds the connections of one client address; default
	// 64 (1/16 of the default cap of 1024).
	PerClient int
	// PerPrefix bounds the connections from one /24 (IPv4) or /56 (IPv6,
	// a typical end-site assignment, RFC 6177); default 256 (a quarter of
	// the default cap), so at least four networks are needed to fill it.
	PerPrefix int
	// HighWater is the number of open connections above which a new
	// connection closes the longest-idle one, if it has been idle for
	// PressureIdle; default 3/4 of the cap.
	HighWater int
	// PressureIdle is the idle timeout that applies above HighWater;
	// default 2s (the normal ones are 10s to 30s).
	PressureIdle time.Duration
	// EvictMinIdle: at the cap, a new connection closes the longest-idle
	// one of a network bigger than its own if it has been idle at least
	// this long; default 500ms. A connection that has just been opened
	// (its first query on the way, its handshake running) is thus not
	// closed by a burst of new ones, except to make room for a network
	// holding far fewer connections (see chooseVictimLocked).
	EvictMinIdle time.Duration
	// Reserve is the number of slots, under the cap, that only a client
	// with no connection open may take. With the eviction of idle
	// connections of bigger networks, a resolver falling back to TCP
	// after a truncated UDP answer finds a slot unless every connection
	// has a query in flight. Default 1/16 of the cap.
	Reserve int
}

// Defaults of ConnLimits, as explained on its fields.
const (
	defaultPerClient    = 64
	defaultPerPrefix    = 256
	defaultPressureIdle = 2 * time.Second
	defaultEvictMinIdle = 500 * time.Millisecond
	// Client prefixes: an IPv4 /24 is the smallest block routed on the
	// Internet; an IPv6 /56 is what an end site commonly gets (RFC 6177).
	clientPrefixV4 = 24
	clientPrefixV6 = 56
	// limitLogEvery spaces the "connection limit reached" log lines: an
	// attack refuses thousands of connections a second.
	limitLogEvery = 10 * time.Second
)

// resolve fills in the defaults for a cap of max connections and checks
// the values.
func (l ConnLimits) resolve(max int) (ConnLimits, error) {
	if l.PerClient < 0 || l.PerPrefix < 0 || l.HighWater < 0 || l.Reserve < 0 || l.PressureIdle < 0 || l.EvictMinIdle < 0 {
		return l, errors.New("connection limits must not be negative")
	}
	if l.PerClient == 0 {
		l.PerClient = defaultPerClient
	}
	if l.PerPrefix == 0 {
		l.PerPrefix = defaultPerPrefix
	}
	if l.HighWater == 0 {
		l.HighWater = max * 3 / 4
	}
	if l.PressureIdle == 0 {
		l.PressureIdle = defaultPressureIdle
	}
	if l.EvictMinIdle == 0 {
		l.EvictMinIdle = defaultEvictMinIdle
	}
	if l.Reserve == 0 {
		l.Reserve = max / 16
	}
	l.PerClient = min(l.PerClient, max)
	l.PerPrefix = min(l.PerPrefix, max)
	l.HighWater = min(l.HighWater, max)
	if l.Reserve >= max {
		return l, errors.New("connection reserve must be below the connection cap")
	}
	return l, nil
}

// ConnStats counts what a front end's connection admission did.
type ConnStats struct {
	// Open is the number of connections open now.
	Open int
	// Refused counts connections refused: at the cap with none idle
	// enough to close (Total), or over a client's or a network's share.
	RefusedTotal, RefusedClient, RefusedPrefix int64
	// Evicted counts idle connections closed to make room for new ones;
	// IdleClosed those closed by the idle timer (QUIC only: PINGs keep
	// the transport alive, so DNS queries alone must count).
	Evicted, IdleClosed int64
}

// refusal says why a connection was refused.
type refusal int

const (
	admitted refusal = iota
	refusedTotal
	refusedClient
	refusedPrefix
)

func (r refusal) String() string {
	switch r {
	case refusedTotal:
		return "connection cap"
	case refusedClient:
		return "per-client limit"
	case refusedPrefix:
		return "per-network limit"
	}
	return "admitted"
}

// admission decides which connections a front end takes, one instance per
// front end and transport, shared by all its listen addresses.
//
// Finding the longest-idle connection scans every open one; that happens
// only when a connection arrives above HighWater, costs a few
// microseconds for a thousand connections (less than the accept itself),
// and leaves the per-query path with two atomic operations and no lock.
type admission struct {
	name   string // for the log: "tcp", "dot", "doh", "doh3", "doq"
	max    int
	limits ConnLimits
	// idleTimeout, when set, closes a connection with no query for that
	// long even if the transport sees traffic (QUIC PINGs).
	idleTimeout time.Duration
	log         *slog.Logger
	epoch       time.Time
	now         func() time.Duration // since epoch; replaced in tests

	mu        sync.Mutex
	slots     []*connSlot
	perClient map[netip.Addr]int
	perPrefix map[netip.Prefix]int

	// pending counts the connections waiting for their PROXY header
	// before they can be admitted (limitListener), at most max.
	pending atomic.Int32

	refusedTotal, refusedClient, refusedPrefix atomic.Int64
	evicted, idleClosed                        atomic.Int64
	lastLog                                    atomic.Int64 // now() of the last limit log line
}

func newAdmission(name string, max int, limits ConnLimits, idleTimeout time.Duration, log *slog.Logger) (*admission, error) {
	l, err := limits.resolve(max)
	if err != nil {
		return nil, err
	}
	a := &admission{
		name: name, max: max, limits: l, idleTimeout: idleTimeout, log: log,
		epoch:     time.Now(),
		perClient: make(map[netip.Addr]int),
		perPrefix: make(map[netip.Prefix]int),
	}
	a.now = func() time.Duration { return time.Since(a.epoch) }
	a.lastLog.Store(-int64(limitLogEvery)) // the first refusal is logged
	return a, nil
}

// reconfigure changes the cap and the shares while the front end runs.
// Connections already open stay, even above a lowered cap or share: they
// leave by themselves (idle timeouts, eviction of idle ones under
// pressure), and no new one is admitted until the counts are below.
func (a *admission) reconfigure(max int, limits ConnLimits) error {
	l, err := limits.resolve(max)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.max, a.limits = max, l
	a.mu.Unlock()
	return nil
}

// connSlot is one admitted connection's place, and what tells whether it
// is idle: queries in flight, and when the last one began or ended.
type connSlot struct {
	adm    *admission
	client netip.Addr
	prefix netip.Prefix
	close  func() // closes the connection; must not block for long
	idx    int    // in adm.slots; -1 once released (under adm.mu)
	// busy counts the queries in flight; evictedMark once the connection
	// is chosen for closing, which no query may then join.
	busy       atomic.Int32
	lastActive atomic.Int64 // adm.now() at the last query start or end
	timer      atomic.Pointer[time.Timer]
}

// evictedMark is far enough below zero that no number of begin calls
// racing with an eviction brings busy back to zero or above.
const evictedMark = math.MinInt32 / 2

// clientPrefix is the network a client address is counted in.
func clientPrefix(a netip.Addr) netip.Prefix {
	bits := clientPrefixV6
	if a.Is4() {
		bits = clientPrefixV4
	}
	p, _ := a.Prefix(bits)
	return p
}

// admit takes a slot for a connection from client, closing an idle one
// if need be, or returns nil when the connection must be refused. close
// is what eviction and the idle timer call.
func (a *admission) admit(client netip.Addr, close func()) *connSlot {
	client = client.Unmap()
	s := &connSlot{adm: a, client: client, prefix: clientPrefix(client), close: close, idx: -1}
	a.mu.Lock()
	why, victim := a.placeLocked(s)
	a.mu.Unlock()
	if victim != nil {
		a.evicted.Add(1)
		victim.close()
	}
	if why != admitted {
		a.refused(why, client)
		return nil
	}
	if a.idleTimeout > 0 {
		s.timer.Store(time.AfterFunc(a.idleTimeout, s.checkIdle))
	}
	return s
}

// placeLocked admits s if the shares allow it, closing an idle
// connection above HighWater or at the limit. At the limit, s is admitted
// only in exchange for a closed one, so the total does not grow.
func (a *admission) placeLocked(s *connSlot) (refusal, *connSlot) {
	switch {
	case a.perClient[s.client] >= a.limits.PerClient:
		return refusedClient, nil
	case a.perPrefix[s.prefix] >= a.limits.PerPrefix:
		return refusedPrefix, nil
	}
	// A client's first connection may use the reserve.
	limit := a.max - a.limits.Reserve
	if a.perClient[s.client] == 0 {
		limit = a.max
	}
	now := a.now()
	full := len(a.slots) >= limit
	var victim *connSlot
	if full || len(a.slots) >= a.limits.HighWater {
		if v := a.chooseVictimLocked(s, now, full); v != nil && v.busy.CompareAndSwap(0, evictedMark) {
			a.removeLocked(v)
			victim = v
		}
	}
	if full && victim == nil {
		return refusedTotal, nil
	}
	s.lastActive.Store(int64(now))
	s.idx = len(a.slots)
	a.slots = append(a.slots, s)
	a.perClient[s.client]++
	a.perPrefix[s.prefix]++
	return admitted, victim
}

// chooseVictimLocked picks the idle connection (no query in flight) to
// close for s, or nil: networks keep a fair share, and within that the
// least recently used goes first, so a busy client keeps its slots.
//
// Above HighWater that is the longest-idle connection if idle for
// PressureIdle. At the limit (full), failing that:
//   - the longest-idle one of the network holding the most connections,
//     if it holds at least two more than s's: clients reconnecting in a
//     loop keep every connection too young to close by age, and would
//     otherwise lock the others out;
//   - else the longest-idle one of a network holding more than s's, if
//     idle for EvictMinIdle;
//   - else one of s's own client, which trades it for the new one.
//
// So a connection of a small network (a client falling back to TCP,
// still in its handshake) is closed only when idle for PressureIdle, or
// for a network smaller still.
func (a *admission) chooseVictimLocked(s *connSlot, now time.Duration, full bool) *connSlot {
	mine := a.perPrefix[s.prefix]
	var oldest, fattest, bigger, own *connSlot
	fatCount := mine + 1
	for _, c := range a.slots {
		if c.busy.Load() != 0 {
			continue
		}
		at := c.lastActive.Load()
		if oldest == nil || at < oldest.lastActive.Load() {
			oldest = c
		}
		n := a.perPrefix[c.prefix]
		if n > fatCount || (fattest != nil && n == fatCount && at < fattest.lastActive.Load()) {
			fattest, fatCount = c, n
		}
		if n > mine && (bigger == nil || at < bigger.lastActive.Load()) {
			bigger = c
		}
		if c.client == s.client && (own == nil || at < own.lastActive.Load()) {
			own = c
		}
	}
	idleFor := func(c *connSlot) time.Duration { return now - time.Duration(c.lastActive.Load()) }
	switch {
	case oldest == nil:
		return nil
	case idleFor(oldest) >= a.limits.PressureIdle:
		return oldest
	case !full:
		return nil
	case fattest != nil:
		return fattest
	case bigger != nil && idleFor(bigger) >= a.limits.EvictMinIdle:
		return bigger
	}
	return own
}

func (a *admission) removeLocked(s *connSlot) {
	if s.idx < 0 {
		return
	}
	last := a.slots[len(a.slots)-1]
	a.slots[s.idx] = last
	last.idx = s.idx
	a.slots = a.slots[:len(a.slots)-1]
	s.idx = -1
	if a.perClient[s.client]--; a.perClient[s.client] == 0 {
		delete(a.perClient, s.client)
	}
	if a.perPrefix[s.prefix]--; a.perPrefix[s.prefix] == 0 {
		delete(a.perPrefix, s.prefix)
	}
}

// refused counts a refusal and logs it, at most once per limitLogEvery.
func (a *admission) refused(why refusal, client netip.Addr) {
	switch why {
	case refusedTotal:
		a.refusedTotal.Add(1)
	case refusedClient:
		a.refusedClient.Add(1)
	case refusedPrefix:
		a.refusedPrefix.Add(1)
	}
	now := int64(a.now())
	last := a.lastLog.Load()
	if now-last < int64(limitLogEvery) || !a.lastLog.CompareAndSwap(last, now) {
		return
	}
	st := a.stats()
	a.mu.Lock()
	max := a.max
	a.mu.Unlock()
	a.log.Warn("connection limit reached", "frontend", a.name, "why", why.String(), "client", client,
		"open", st.Open, "max", max, "refused_total", st.RefusedTotal, "refused_client", st.RefusedClient,
		"refused_prefix", st.RefusedPrefix, "evicted", st.Evicted)
}

// startPending counts one more connection waiting to be admitted, unless
// max are waiting already.
func (a *admission) startPending() bool {
	if a.pending.Add(1) > int32(a.max) {
		a.pending.Add(-1)
		return false
	}
	return true
}

func (a *admission) endPending() { a.pending.Add(-1) }

// stats is a snapshot of the counters.
func (a *admission) stats() ConnStats {
	a.mu.Lock()
	open := len(a.slots)
	a.mu.Unlock()
	return ConnStats{
		Open:          open,
		RefusedTotal:  a.refusedTotal.Load(),
		RefusedClient: a.refusedClient.Load(),
		RefusedPrefix: a.refusedPrefix.Load(),
		Evicted:       a.evicted.Load(),
		IdleClosed:    a.idleClosed.Load(),
	}
}

// release gives the slot back; it may be called more than once, and on
// nil.
func (s *connSlot) release() {
	if s == nil {
		return
	}
	if t := s.timer.Load(); t != nil {
		t.Stop()
	}
	s.adm.mu.Lock()
	s.adm.removeLocked(s)
	s.adm.mu.Unlock()
}

// begin marks a query in flight: the connection is not idle until end.
// It returns false when the connection is being closed as idle; the
// query is then dropped with it (and end must not be called).
func (s *connSlot) begin() bool {
	if s == nil {
		return true
	}
	s.lastActive.Store(int64(s.adm.now()))
	if s.busy.Add(1) < 0 {
		return false
	}
	return true
}

// end marks the end of a query begun with begin.
func (s *connSlot) end() {
	if s == nil {
		return
	}
	s.lastActive.Store(int64(s.adm.now()))
	s.busy.Add(-1)
}

// checkIdle runs on the idle timer: it closes the connection if no query
// has been in flight for idleTimeout, else sets the timer again.
func (s *connSlot) checkIdle() {
	a := s.adm
	wait := a.idleTimeout
	if s.busy.Load() == 0 {
		idle := a.now() - time.Duration(s.lastActive.Load())
		if idle >= a.idleTimeout {
			if s.busy.CompareAndSwap(0, evictedMark) {
				a.idleClosed.Add(1)
				s.release()
				s.close()
			}
			return
		}
		wait = a.idleTimeout - idle
	}
	if t := s.timer.Load(); t != nil && s.busy.Load() >= 0 {
		t.Reset(wait)
	}
}
