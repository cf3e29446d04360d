package resolver

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// serverState is what we know of one server address. Times are on the real
// monotonic clock: they measure the network, not DNS data.
type serverState struct {
	// srtt is the smoothed round-trip time (EWMA, alpha 0.3); valid when
	// known is true.
	srtt  time.Duration
	known bool
	// timeouts counts consecutive timeouts; backoffUntil is when the server
	// is offered again after its last one (exponential back-off).
	timeouts     int
	backoffUntil time.Time
	// probing is set while one question probes a dead server (see admit);
	// probeSince is when that began, so that a lost probe is taken back.
	probing    bool
	probeSince time.Time
	// noEDNSUntil and no0x20Until remember, for a while, that the server
	// rejects EDNS or does not echo case.
	noEDNSUntil time.Time
	no0x20Until time.Time
	// caseMisses are the distinct questions (at most caseMismatchQuestions)
	// whose exchanges ended with only wrong-case replies since the server
	// last echoed a 0x20 name exactly: the evidence that it might not
	// preserve case.
	caseMisses []question
	// lateSince is when a query to the server passed its hedge delay with
	// no reply (zero: none is late); the server sorts behind responsive
	// ones until that query's outcome (reply or timeout) is known, so that
	// the questions that follow do not wait on it too.
	lateSince time.Time
	// hedgesOut counts the hedges out to the server now (MaxHedgesPerServer).
	hedgesOut int
}

// familyState is what the last queries say about one address family's
// path (RFC 8305's spirit: a broken IPv6 path must not cost every
// question a wait).
type familyState struct {
	// timeouts counts timeouts in a row from servers of the family, with
	// no reply between; lastTimeout is the last one.
	timeouts    int
	lastTimeout time.Time
}

// Selection tuning. Unknown servers get a small random SRTT so that each is
// tried once and then ranked on what it shows (as BIND does).
const (
	// unknownSRTTMax bounds the random SRTT given to an unknown server.
	unknownSRTTMax = 5 * time.Millisecond
	// timeoutPenalty is added to a server's SRTT for each timeout, so a
	// server that times out sorts behind every responsive one.
	timeoutPenalty = time.Second
	// maxSRTT caps the SRTT so that a penalised server can recover.
	maxSRTT = 10 * time.Second
	// backoffBase and backoffMax bound the exponential back-off: 1 s after
	// the first timeout, doubling, at most 2 minutes.
	backoffBase = time.Second
	backoffMax  = 2 * time.Minute
	// deadAfterTimeouts is how many timeouts in a row make a server dead:
	// not asked at all while backed off, then by one question at a time
	// (a probe), so that its recovery is noticed without a stampede.
	deadAfterTimeouts = 3
	// probePercent is how often (in percent of choices) a random other
	// server is put first, so that a recovered or faster server is noticed.
	probePercent = 3
	// capabilityMemory is how long "no EDNS" / "no 0x20" is remembered.
	capabilityMemory = 15 * time.Minute
	// caseMismatchQuestions is how many distinct questions must end with
	// only wrong-case replies (and no exact echo in between) before a
	// server's case handling is checked over TCP. One forged reply proves
	// nothing about the server (issue 8); a server that lower-cases every
	// name shows it on every question.
	caseMismatchQuestions = 3
	// maxTrackedServers bounds the server table (least recently used out).
	maxTrackedServers = 20000
	// lameMemory is how long a server that answered a zone's question
	// lamely (REFUSED, SERVFAIL, no AA, upward referral) is asked only after
	// the zone's other servers (RFC 9520 3: failures are remembered).
	lameMemory = 10 * time.Minute
	// maxTrackedLame bounds the lame table.
	maxTrackedLame = 20000
	// hedgeSRTTs is how many SRTTs a known server may take before a hedge
	// goes out, plus hedgeSlack for scheduling jitter: a reply later than
	// that is rare for a healthy server.
	hedgeSRTTs = 3
	hedgeSlack = 2 * time.Millisecond
	// familyBrokenAfter is how many timeouts in a row, from servers of one
	// address family, make its path look broken: its servers then go
	// after those of the other family. familyBrokenMemory is how long that
	// lasts after the last timeout, so a repaired path is used again.
	familyBrokenAfter  = 3
	familyBrokenMemory = 30 * time.Second
)

// lameKey is a server address for one zone: lameness is per zone.
type lameKey struct {
	zone string
	addr netip.Addr
}

// selector keeps per-address statistics and orders candidate servers.
type selector struct {
	mu      sync.Mutex
	servers *simplelru.LRU[netip.Addr, *serverState]
	// lame maps a zone's lame servers to when that is forgotten.
	lame   *simplelru.LRU[lameKey, time.Time]
	limits *Limits
	now    func() time.Time
	// probe is the probing rate in percent (probePercent; tests set 0).
	probe int
	// v4 and v6 are the paths' states (happy eyeballs).
	v4, v6 familyState
}

func newSelector(l *Limits) *selector {
	lru, err := simplelru.NewLRU[netip.Addr, *serverState](maxTrackedServers, nil)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	lame, err := simplelru.NewLRU[lameKey, time.Time](maxTrackedLame, nil)
	if err != nil {
		panic(err)
	}
	return &selector{servers: lru, lame: lame, limits: l, now: time.Now, probe: probePercent}
}

// stateLocked returns (creating) the state for a; s.mu must be held.
func (s *selector) stateLocked(a netip.Addr) *serverState {
	st, ok := s.servers.Get(a)
	if !ok {
		st = &serverState{}
		s.servers.Add(a, st)
	}
	return st
}

// ranked is a candidate with its sort key, for traces.
type ranked struct {
	addr    netip.Addr
	srtt    time.Duration
	known   bool
	backoff bool
	until   time.Time // end of the back-off
	lame    bool      // lame for this zone lately
	late    bool      // a query to it is past its hedge delay, unanswered
}

// sortSRTT is the SRTT a candidate is ranked by: a late server goes behind
// every responsive one until its outcome is known.
func (r ranked) sortSRTT() time.Duration {
	if r.late {
		return r.srtt + timeoutPenalty
	}
	return r.srtt
}

// order returns the candidates for zone best first: servers not in back-off
// by SRTT (unknown servers with a small random one), then those lame for the
// zone lately, then those in back-off by when it ends. Occasionally a random
// other responsive server goes first (a probe). The returned slice is new.
func (s *selector) order(zone string, cands []netip.Addr) []ranked {
	now := s.now()
	out := make([]ranked, 0, len(cands))
	s.mu.Lock()
	for _, a := range cands {
		st, ok := s.servers.Peek(a)
		r := ranked{addr: a}
		if until, ok := s.lame.Peek(lameKey{zone, a}); ok && now.Before(until) {
			r.lame = true
		}
		if ok && !st.lateSince.IsZero() && now.Sub(st.lateSince) < s.limits.UpstreamTimeoutMax {
			r.late = true
		}
		switch {
		case !ok || !st.known:
			r.srtt = time.Duration(randIntn(int(unknownSRTTMax)))
			if ok && now.Before(st.backoffUntil) {
				r.backoff, r.until = true, st.backoffUntil
			}
		default:
			r.srtt, r.known = st.srtt, true
			if now.Before(st.backoffUntil) {
				r.backoff, r.until = true, st.backoffUntil
			}
		}
		out = append(out, r)
	}
	broken := s.brokenFamilyLocked(now)
	s.mu.Unlock()
	slices.SortStableFunc(out, func(a, b ranked) int {
		if a.lame != b.lame && !a.backoff && !b.backoff {
			if a.lame {
				return 1
			}
			return -1
		}
		if a.backoff != b.backoff {
			if a.backoff {
				return 1
			}
			return -1
		}
		if a.backoff {
			return a.until.Compare(b.until)
		}
		return int(a.sortSRTT() - b.sortSRTT())
	})
	// Probe: sometimes try another responsive server first.
	live := 0
	for live < len(out) && !out[live].backoff && !out[live].lame {
		live++
	}
	if live > 1 && randIntn(100) < s.probe {
		i := 1 + randIntn(live-1)
		out[0], out[i] = out[i], out[0]
	}
	interleaveFamilies(out[:live], broken)
	return out
}

// family is an address family for happy eyeballs.
type family uint8

const (
	familyNone family = iota
	familyV4
	familyV6
)

func familyOf(a netip.Addr) family {
	if a.Is4() || a.Is4In6() {
		return familyV4
	}
	return familyV6
}

// brokenFamilyLocked returns the family whose path looks broken (timeouts
// in a row lately, while the other family's did not), or familyNone.
func (s *selector) brokenFamilyLocked(now time.Time) family {
	broken := func(f *familyState) bool {
		return f.timeouts >= familyBrokenAfter && now.Sub(f.lastTimeout) < familyBrokenMemory
	}
	b4, b6 := broken(&s.v4), broken(&s.v6)
	switch {
	case b6 && !b4:
		return familyV6
	case b4 && !b6:
		return familyV4
	}
	return familyNone
}

// interleaveFamilies reorders live candidates (sorted best first) so that
// the address families alternate, as RFC 8305 4 interleaves addresses: a
// hedge after a silent server then tries the other family's path, so one
// broken path costs one hedge delay, not every server's. The best server
// stays first unless its family's path is broken, when the other family's
// best leads.
func interleaveFamilies(out []ranked, broken family) {
	if len(out) < 2 {
		return
	}
	first := familyOf(out[0].addr)
	if !slices.ContainsFunc(out, func(r ranked) bool { return familyOf(r.addr) != first }) {
		return // one family: nothing to interleave
	}
	if first == broken {
		if i := slices.IndexFunc(out, func(r ranked) bool { return familyOf(r.addr) != broken }); i > 0 {
			first = familyOf(out[i].addr)
		}
	}
	var same, other []ranked
	for _, r := range out {
		if familyOf(r.addr) == first {
			same = append(same, r)
		} else {
			other = append(other, r)
		}
	}
	i := 0
	for len(same) > 0 || len(other) > 0 {
		if len(same) > 0 {
			out[i], same = same[0], same[1:]
			i++
		}
		if len(other) > 0 {
			out[i], other = other[0], other[1:]
			i++
		}
	}
}

// hedgeDelay is how long a may stay silent before the question also goes
// to another server: a few SRTTs for a server with history and no recent
// timeout, the initial guess otherwise; always less than the timeout, or
// there would be nothing to hedge.
func (s *selector) hedgeDelay(a netip.Addr) time.Duration {
	s.mu.Lock()
	st, ok := s.servers.Peek(a)
	known := ok && st.known && st.timeouts == 0
	var srtt time.Duration
	if known {
		srtt = st.srtt
	}
	s.mu.Unlock()
	if !known {
		return s.limits.HedgeDelayInitial
	}
	return max(hedgeSRTTs*srtt+hedgeSlack, s.limits.HedgeDelayMin)
}

// markLate records that a query to a passed its hedge delay unanswered.
func (s *selector) markLate(a netip.Addr) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stateLocked(a).lateSince = now
}

// takeHedge reserves one of a's hedge slots (MaxHedgesPerServer); the
// caller gives it back with releaseHedge when the hedge's exchange ends.
func (s *selector) takeHedge(a netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stateLocked(a)
	if st.hedgesOut >= s.limits.MaxHedgesPerServer {
		return false
	}
	st.hedgesOut++
	return true
}

// releaseHedge gives back a hedge slot of a.
func (s *selector) releaseHedge(a netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.servers.Peek(a); ok && st.hedgesOut > 0 {
		st.hedgesOut--
	}
}

// familyStateLocked is the path state of a's family.
func (s *selector) familyStateLocked(a netip.Addr) *familyState {
	if familyOf(a) == familyV4 {
		return &s.v4
	}
	return &s.v6
}

// timeout is how long to wait for a reply from a: a few SRTTs, within the
// configured bounds; the initial timeout for unknown servers.
func (s *selector) timeout(a netip.Addr) time.Duration {
	s.mu.Lock()
	st, ok := s.servers.Peek(a)
	var srtt time.Duration
	known := ok && st.known && st.timeouts == 0
	if known {
		srtt = st.srtt
	}
	s.mu.Unlock()
	if !known {
		return s.limits.UpstreamTimeoutInitial
	}
	return min(max(3*srtt+10*time.Millisecond, s.limits.UpstreamTimeoutMin), s.limits.UpstreamTimeoutMax)
}

// success records a reply after rtt.
func (s *selector) success(a netip.Addr, rtt time.Duration) { s.replied(a, rtt, false) }

// replied records a reply after rtt; caseEchoed says it echoed a randomised
// 0x20 name exactly, which clears the case-mismatch evidence.
func (s *selector) replied(a netip.Addr, rtt time.Duration, caseEchoed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stateLocked(a)
	if caseEchoed {
		st.caseMisses = nil
	}
	if !st.known || st.timeouts > 0 {
		// First sample, or first after timeouts: the penalty is history.
		st.srtt = rtt
	} else {
		st.srtt = (7*st.srtt + 3*rtt) / 10
	}
	st.known = true
	st.timeouts = 0
	st.backoffUntil = time.Time{}
	st.lateSince = time.Time{}
	s.familyStateLocked(a).timeouts = 0
}

// failure records a timeout (or an unreachable server): a large SRTT
// penalty and exponential back-off.
func (s *selector) failure(a netip.Addr) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stateLocked(a)
	if !st.known {
		st.srtt = s.limits.UpstreamTimeoutInitial
		st.known = true
	}
	st.srtt = min(st.srtt+timeoutPenalty, maxSRTT)
	st.timeouts++
	st.lateSince = time.Time{}
	f := s.familyStateLocked(a)
	f.timeouts++
	f.lastTimeout = now
	shift := min(st.timeouts-1, 10)
	st.backoffUntil = now.Add(min(backoffBase<<shift, backoffMax))
}

// admit reports whether a may be asked now, and whether the asker is its
// probe (who must call endProbe when done). A live server always may; a
// dead one (deadAfterTimeouts) not while backed off, and afterwards only
// by one question at a time: a timeout backs it off again, a reply revives
// it.
func (s *selector) admit(a netip.Addr) (ok, probe bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st, found := s.servers.Peek(a)
	if !found || st.timeouts < deadAfterTimeouts {
		return true, false
	}
	if now.Before(st.backoffUntil) {
		return false, false
	}
	// A probe cannot outlive its question's deadline; one older was lost.
	if st.probing && now.Sub(st.probeSince) < s.limits.ClientDeadline {
		return false, false
	}
	st.probing, st.probeSince = true, now
	return true, true
}

// endProbe ends the probe of a that admit allowed.
func (s *selector) endProbe(a netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.servers.Peek(a); ok {
		st.probing = false
	}
}

// markLame remembers that a answered a question for zone lamely.
func (s *selector) markLame(zone string, a netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lame.Add(lameKey{zone, a}, s.now().Add(lameMemory))
}

// noEDNS reports whether a is known to reject EDNS.
func (s *selector) noEDNS(a netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.servers.Peek(a)
	return ok && s.now().Before(st.noEDNSUntil)
}

// setNoEDNS remembers that a rejects EDNS.
func (s *selector) setNoEDNS(a netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stateLocked(a).noEDNSUntil = s.now().Add(capabilityMemory)
}

// no0x20 reports whether a is known not to echo the query name's case.
func (s *selector) no0x20(a netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.servers.Peek(a)
	return ok && s.now().Before(st.no0x20Until)
}

// setNo0x20 remembers, for capabilityMemory, that a does not echo case
// (checked over TCP, see resolution.ask); the evidence is spent.
func (s *selector) setNo0x20(a netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stateLocked(a)
	st.no0x20Until = s.now().Add(capabilityMemory)
	st.caseMisses = nil
}

// caseMismatch records that an exchange of q with a ended with only
// wrong-case replies. It reports whether the evidence now reaches
// caseMismatchQuestions distinct questions, so that the caller checks the
// server over TCP.
func (s *selector) caseMismatch(a netip.Addr, q question) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stateLocked(a)
	if !slices.Contains(st.caseMisses, q) && len(st.caseMisses) < caseMismatchQuestions {
		st.caseMisses = append(st.caseMisses, q)
	}
	return len(st.caseMisses) >= caseMismatchQuestions
}

// caseEchoed records that a echoed a randomised case exactly: the
// mismatches seen so far were forged (or chance), not the server's habit.
func (s *selector) caseEchoed(a netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.servers.Peek(a); ok {
		st.caseMisses = nil
	}
}

// caseEvidence returns how many distinct questions count against a's case
// handling, for tests and traces.
func (s *selector) caseEvidence(a netip.Addr) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.servers.Peek(a); ok {
		return len(st.caseMisses)
	}
	return 0
}

// srtt returns a's SRTT and whether it is known, for traces.
func (s *selector) srtt(a netip.Addr) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.servers.Peek(a)
	if !ok || !st.known {
		return 0, false
	}
	return st.srtt, true
}
