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
		return int(a.srtt - b.srtt)
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
	return out
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
