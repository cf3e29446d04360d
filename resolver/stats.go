package resolver

import (
	"cmp"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sextant-dns/sextant/internal/histogram"
	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/validator"
)

// maxCountedServers bounds the per-server upstream counters: servers seen
// after that many are counted together (Stats.UpstreamOther), so that a
// resolver asked for many zones keeps its memory and its metrics bounded.
const maxCountedServers = 4096

// stats counts what the resolver did, for metrics read when scraped. Every
// counter is on a path that already waits for the network or checks
// signatures, so a lock or an atomic add there costs nothing measurable.
type stats struct {
	mu       sync.Mutex
	servers  map[netip.Addr]*serverCounts
	other    serverCounts
	outcomes map[ValidationOutcome]uint64

	upstreamRTT *histogram.Histogram
	// budgetResolution and budgetValidation count questions whose
	// resolver Budget, or validation Budget, ran out.
	budgetResolution, budgetValidation atomic.Uint64
}

// serverCounts are one upstream server's counters.
type serverCounts struct {
	queries, timeouts, replies uint64
	rttSum                     time.Duration
}

func newStats() *stats {
	return &stats{
		servers:     map[netip.Addr]*serverCounts{},
		outcomes:    map[ValidationOutcome]uint64{},
		upstreamRTT: histogram.New(histogram.LatencyBounds),
	}
}

// exchanged records one upstream exchange with a: a reply after rtt, a
// timeout (errTimeout), or another failure (err).
func (s *stats) exchanged(a netip.Addr, rtt time.Duration, err error) {
	if err == nil {
		s.upstreamRTT.Observe(rtt)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.servers[a]
	if c == nil {
		c = &s.other
		if len(s.servers) < maxCountedServers {
			c = &serverCounts{}
			s.servers[a] = c
		}
	}
	c.queries++
	switch {
	case err == nil:
		c.replies++
		c.rttSum += rtt
	case errors.Is(err, errTimeout):
		c.timeouts++
	}
}

// validated records one run of the validator.
func (s *stats) validated(res validator.Result) {
	if errors.Is(res.Err, validator.ErrBudgetExhausted) {
		s.budgetValidation.Add(1)
	}
	o := ValidationOutcome{Status: res.Status, EDE: -1}
	if res.HasEDE() {
		o.EDE = int(res.EDE)
	}
	s.mu.Lock()
	s.outcomes[o]++
	s.mu.Unlock()
}

// failed records a question that ended with e.
func (s *stats) failed(e *Error) {
	if e.budget {
		s.budgetResolution.Add(1)
	}
}

// ValidationOutcome is a validator run's result: its RFC 4035 4.3 state and
// its Extended DNS Error code (-1 for none).
type ValidationOutcome struct {
	Status security.Status
	EDE    int
}

// UpstreamServer is what one upstream server was asked and how it did.
type UpstreamServer struct {
	// Addr is the server; zero in Stats.UpstreamOther.
	Addr netip.Addr
	// Queries counts exchanges (replies, timeouts and other failures such
	// as an unreachable network); Timeouts those without a usable reply
	// in time; Replies those with one, whose round-trip times add up to
	// RTTSum.
	Queries, Timeouts, Replies uint64
	RTTSum                     time.Duration
	// SRTT is the smoothed round-trip time that server selection uses,
	// when known.
	SRTT      time.Duration
	SRTTKnown bool
}

// Stats are the resolver's counters since it was made.
type Stats struct {
	// Upstream are the top servers by queries, most asked first (at most
	// the n asked of Stats); UpstreamOther adds up all the others.
	Upstream      []UpstreamServer
	UpstreamOther UpstreamServer
	// UpstreamRTT is the round-trip time of every upstream reply.
	UpstreamRTT histogram.Snapshot
	// Validations counts validator runs by outcome (answers whose
	// validation was already marked in the cache are not run again).
	Validations map[ValidationOutcome]uint64
	// BudgetExhausted counts client questions that ran out of their
	// Budget (upstream queries, CNAME hops, depth, name-server lookups,
	// deadline); ValidationBudgetExhausted validator runs that ran out of
	// theirs (signature checks, key fetches, NSEC3 hashing).
	BudgetExhausted, ValidationBudgetExhausted uint64
}

// Stats returns the resolver's counters with the top n upstream servers by
// queries (bounded, so that metrics stay few whatever the resolver has
// talked to).
func (r *Resolver) Stats(n int) Stats {
	s := r.stats
	out := Stats{
		UpstreamRTT:               s.upstreamRTT.Snapshot(),
		BudgetExhausted:           s.budgetResolution.Load(),
		ValidationBudgetExhausted: s.budgetValidation.Load(),
	}
	s.mu.Lock()
	all := make([]UpstreamServer, 0, len(s.servers))
	for a, c := range s.servers {
		all = append(all, UpstreamServer{Addr: a, Queries: c.queries, Timeouts: c.timeouts, Replies: c.replies, RTTSum: c.rttSum})
	}
	out.UpstreamOther = UpstreamServer{Queries: s.other.queries, Timeouts: s.other.timeouts, Replies: s.other.replies, RTTSum: s.other.rttSum}
	out.Validations = make(map[ValidationOutcome]uint64, len(s.outcomes))
	for o, c := range s.outcomes {
		out.Validations[o] = c
	}
	s.mu.Unlock()
	slices.SortFunc(all, func(a, b UpstreamServer) int {
		if c := cmp.Compare(b.Queries, a.Queries); c != 0 {
			return c
		}
		return a.Addr.Compare(b.Addr)
	})
	if len(all) > n {
		for _, u := range all[n:] {
			out.UpstreamOther.Queries += u.Queries
			out.UpstreamOther.Timeouts += u.Timeouts
			out.UpstreamOther.Replies += u.Replies
			out.UpstreamOther.RTTSum += u.RTTSum
		}
		all = all[:n]
	}
	for i := range all {
		all[i].SRTT, all[i].SRTTKnown = r.sel.srtt(all[i].Addr)
	}
	out.Upstream = all
	return out
}
