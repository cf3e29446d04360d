package resolver

import "time"

// Limits bound the work one client query can cause. Each is drawn from one
// Budget per client query that CNAME restarts and sub-resolutions share and
// never reset. Zero fields take the defaults below.
type Limits struct {
	// MaxUpstreamQueries caps the queries sent upstream for one client
	// query, sub-resolutions included. Unbound and BIND use 50 to 200
	// (BIND's max-recursion-queries is 100 since the 2023 NXNS work).
	MaxUpstreamQueries int
	// MaxNSAddrLookups caps the glueless name-server address lookups started
	// for one delegation (NXNSAttack, CVE-2020-8616: BIND uses 5, Unbound 6
	// after the fix, the paper suggests 4 to 10).
	MaxNSAddrLookups int
	// MaxDepth caps nested sub-resolutions (a glueless NS whose own NS is
	// glueless, ...). Real delegations rarely need more than 3 or 4.
	MaxDepth int
	// MaxCNAMEChain caps CNAME/DNAME hops for one client query (BIND 16 in
	// total, Unbound 11, Knot 13; RFC 1034 only asks for loop detection).
	MaxCNAMEChain int
	// ClientDeadline is when the client gets SERVFAIL (with an Extended DNS
	// Error) at the latest. Stub resolvers retry after about 5 s and give up
	// after 10 s or so; answering before then lets them fail over.
	ClientDeadline time.Duration
	// UpstreamTimeoutInitial is the wait for a server with no RTT history
	// (Unbound starts at 376 ms). UpstreamTimeoutMin and Max bound the
	// adaptive wait of a known server (a few SRTTs).
	UpstreamTimeoutInitial time.Duration
	UpstreamTimeoutMin     time.Duration
	UpstreamTimeoutMax     time.Duration
	// HedgeDelayInitial is how long a server with no RTT history may stay
	// silent before the question also goes to the zone's next server (a
	// hedge: the first query is not abandoned, the first good reply wins).
	// A short guess, not the initial timeout: a dead or slow server then
	// costs a cold question tens of milliseconds, not hundreds. A server
	// with history gets a few SRTTs, at least HedgeDelayMin.
	HedgeDelayInitial time.Duration
	HedgeDelayMin     time.Duration
	// MaxHedges caps the hedges of one client question: queries sent while
	// another query of the question is still out (they count in
	// MaxUpstreamQueries too). Past it the servers are asked one after the
	// other, each until its timeout. A negative value turns hedging off.
	MaxHedges int
	// MaxHedgesPerServer caps the hedges out at once to one server, over
	// all questions, so that a dead server does not double the load on
	// its zone's other servers during a burst.
	MaxHedgesPerServer int
}

// Default limits. The reason for each is on the Limits field.
const (
	DefaultMaxUpstreamQueries     = 100
	DefaultMaxNSAddrLookups       = 6
	DefaultMaxDepth               = 8
	DefaultMaxCNAMEChain          = 12
	DefaultClientDeadline         = 8 * time.Second
	DefaultUpstreamTimeoutInitial = 400 * time.Millisecond
	DefaultUpstreamTimeoutMin     = 100 * time.Millisecond
	DefaultUpstreamTimeoutMax     = 2 * time.Second
	DefaultHedgeDelayInitial      = 50 * time.Millisecond
	DefaultHedgeDelayMin          = 10 * time.Millisecond
	DefaultMaxHedges              = 8
	DefaultMaxHedgesPerServer     = 32
)

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{
		MaxUpstreamQueries:     DefaultMaxUpstreamQueries,
		MaxNSAddrLookups:       DefaultMaxNSAddrLookups,
		MaxDepth:               DefaultMaxDepth,
		MaxCNAMEChain:          DefaultMaxCNAMEChain,
		ClientDeadline:         DefaultClientDeadline,
		UpstreamTimeoutInitial: DefaultUpstreamTimeoutInitial,
		UpstreamTimeoutMin:     DefaultUpstreamTimeoutMin,
		UpstreamTimeoutMax:     DefaultUpstreamTimeoutMax,
		HedgeDelayInitial:      DefaultHedgeDelayInitial,
		HedgeDelayMin:          DefaultHedgeDelayMin,
		MaxHedges:              DefaultMaxHedges,
		MaxHedgesPerServer:     DefaultMaxHedgesPerServer,
	}
}

// withDefaults fills zero fields.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxUpstreamQueries <= 0 {
		l.MaxUpstreamQueries = d.MaxUpstreamQueries
	}
	if l.MaxNSAddrLookups <= 0 {
		l.MaxNSAddrLookups = d.MaxNSAddrLookups
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxCNAMEChain <= 0 {
		l.MaxCNAMEChain = d.MaxCNAMEChain
	}
	if l.ClientDeadline <= 0 {
		l.ClientDeadline = d.ClientDeadline
	}
	if l.UpstreamTimeoutInitial <= 0 {
		l.UpstreamTimeoutInitial = d.UpstreamTimeoutInitial
	}
	if l.UpstreamTimeoutMin <= 0 {
		l.UpstreamTimeoutMin = d.UpstreamTimeoutMin
	}
	if l.UpstreamTimeoutMax <= 0 {
		l.UpstreamTimeoutMax = d.UpstreamTimeoutMax
	}
	if l.HedgeDelayInitial <= 0 {
		l.HedgeDelayInitial = d.HedgeDelayInitial
	}
	if l.HedgeDelayMin <= 0 {
		l.HedgeDelayMin = d.HedgeDelayMin
	}
	if l.MaxHedges == 0 {
		l.MaxHedges = d.MaxHedges
	}
	if l.MaxHedgesPerServer <= 0 {
		l.MaxHedgesPerServer = d.MaxHedgesPerServer
	}
	if l.UpstreamTimeoutMin > l.UpstreamTimeoutMax {
		l.UpstreamTimeoutMin = l.UpstreamTimeoutMax
	}
	return l
}
