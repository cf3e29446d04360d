package resolver

import (
	"context"
	"sync/atomic"
	"time"
)

// Budget is the work one client query may still cause. CNAME restarts,
// sub-resolutions (glueless name servers) and validation (the validator's
// DS and DNSKEY fetches, its signature checks) all draw from the same
// Budget, and nothing resets it: that is what keeps NXNSAttack, tsuNAME,
// CNAME-chain amplification and KeyTrap bounded. It is safe for concurrent
// use.
type Budget struct {
	limits   *Limits
	queries  atomic.Int32 // upstream queries sent
	hops     atomic.Int32 // CNAME/DNAME hops followed
	hedges   atomic.Int32 // hedged upstream queries (see Limits.MaxHedges)
	deadline time.Time
	// dnssec is the question's validation state (the validator's budget,
	// RFC 8198 denials); nil until validation first needs it.
	dnssec atomic.Pointer[dnssecState]
	// sources traces the question's RRsets to their servers and holds
	// the servers a retry of a bogus answer must not ask
	// (dnssec_retry.go); nil until validation is on and a reply came.
	sources atomic.Pointer[sourceLog]
}

func newBudget(l *Limits, now time.Time) *Budget {
	return &Budget{limits: l, deadline: now.Add(l.ClientDeadline)}
}

// Deadline is when the client gets SERVFAIL at the latest.
func (b *Budget) Deadline() time.Time { return b.deadline }

// Queries is the number of upstream queries sent so far.
func (b *Budget) Queries() int { return int(b.queries.Load()) }

// spendQuery takes one upstream query from the budget.
func (b *Budget) spendQuery() error {
	if n := b.queries.Add(1); int(n) > b.limits.MaxUpstreamQueries {
		return budgetError("more than %d upstream queries", b.limits.MaxUpstreamQueries)
	}
	return nil
}

// hedgesSpent is the number of hedged upstream queries sent so far.
func (b *Budget) hedgesSpent() int { return int(b.hedges.Load()) }

// spendHedge takes one hedge from the budget; false when none is left
// (then the servers are asked one after the other).
func (b *Budget) spendHedge() bool {
	if b.limits.MaxHedges < 0 {
		return false
	}
	if n := b.hedges.Add(1); int(n) > b.limits.MaxHedges {
		b.hedges.Add(-1)
		return false
	}
	return true
}

// spendHop takes one CNAME/DNAME hop from the budget.
func (b *Budget) spendHop() error {
	if n := b.hops.Add(1); int(n) > b.limits.MaxCNAMEChain {
		return budgetError("CNAME chain longer than %d", b.limits.MaxCNAMEChain)
	}
	return nil
}

// checkDepth reports whether a sub-resolution at depth may start.
func (b *Budget) checkDepth(depth int) error {
	if depth > b.limits.MaxDepth {
		return budgetError("sub-resolution depth over %d", b.limits.MaxDepth)
	}
	return nil
}

// checkTime reports a passed deadline or a cancelled context.
func (b *Budget) checkTime(ctx context.Context) error {
	if !time.Now().Before(b.deadline) {
		return budgetError("client deadline of %v passed", b.limits.ClientDeadline)
	}
	if err := ctx.Err(); err != nil {
		return &Error{EDE: 0, Text: "query cancelled", Err: err}
	}
	return nil
}
