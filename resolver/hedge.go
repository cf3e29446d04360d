package resolver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Hedged queries. A zone's servers are asked best first, but a server that
// has not replied within its hedge delay (a few SRTTs; a short guess,
// Limits.HedgeDelayInitial, for one with no history) does not hold the
// question up to its timeout: the question also goes to the next server,
// and the first usable reply wins. The first query is not abandoned: its
// reply or timeout still reaches the server's RTT estimate (a late reply
// teaches a large SRTT, a timeout the back-off), and until then the server
// sorts behind responsive ones (selector.markLate). Hedges are bounded per
// client question (Limits.MaxHedges, from the Budget) and per server
// (Limits.MaxHedgesPerServer, hedges out at once); without either the
// servers are asked one after the other, each until its timeout.

// attemptResult is the outcome of asking one server (askServer).
type attemptResult struct {
	c     ranked
	resp  *dns.Msg
	kind  replyKind
	child string
	err   error
}

// serverRace asks the candidate servers of one zone for one question,
// hedging as above. Its attempts run in their own goroutines on a context
// that the question's end does not cancel (so that losers still teach
// their RTT), only its abandonment (cancellation, deadline) while no reply
// is in. One goroutine, the question's, calls await and finish.
type serverRace struct {
	rs *resolution
	// attempt is the resolution the attempts run with: rs with the trace
	// behind gate, so that attempts still out after finish emit nothing.
	attempt resolution
	gate    *traceGate
	qctx    context.Context // the question's
	actx    context.Context // the attempts'
	cancel  context.CancelFunc
	zone    string
	q       question
	depth   int
	cands   []ranked
	next    int // index of the next candidate to ask
	out     int // attempts whose result has not been taken
	results chan attemptResult
	// hedgeAt is when the next candidate goes out as a hedge (zero: no
	// hedge planned); late is the server that is then late (invalid when
	// the hedge replaces a failed attempt).
	hedgeAt time.Time
	late    ranked
}

// traceGate serialises the trace events of concurrent attempts and drops
// those of attempts still out once the question moved on: a Tracer is
// called in order, from one goroutine at a time, and never after its
// resolution returned.
type traceGate struct {
	mu     sync.Mutex
	closed bool
	t      Tracer
}

func (g *traceGate) emit(ev TraceEvent) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.t(ev)
	}
}

func (g *traceGate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// newServerRace prepares a race over cands (best first).
func (rs *resolution) newServerRace(ctx context.Context, zone string, cands []ranked, q question, depth int) *serverRace {
	return &serverRace{rs: rs, qctx: ctx, zone: zone, q: q, depth: depth, cands: cands}
}

// start asks c in a new goroutine; hedge says it goes out while another
// attempt is still out (it holds one of c's hedge slots).
func (r *serverRace) start(c ranked, hedge bool) {
	if r.results == nil {
		// The first attempt in a goroutine: what attempts share.
		r.results = make(chan attemptResult, len(r.cands))
		r.actx, r.cancel = context.WithCancel(context.WithoutCancel(r.qctx))
		// What askServer uses, and nothing the question's goroutine changes.
		r.attempt = resolution{r: r.rs.r, budget: r.rs.budget, cacheOnly: r.rs.cacheOnly}
		if r.rs.trace != nil {
			r.gate = &traceGate{t: r.rs.trace}
			r.attempt.trace = r.gate.emit
		}
	}
	r.out++
	r.planHedge(c)
	go func() {
		resp, kind, child, err := r.attempt.askServer(r.actx, r.zone, c, r.q, r.depth)
		if hedge {
			r.rs.r.sel.releaseHedge(c.addr)
		}
		r.results <- attemptResult{c: c, resp: resp, kind: kind, child: child, err: err}
	}()
}

// planHedge sets when the candidate after c goes out if c is late.
func (r *serverRace) planHedge(c ranked) {
	if r.rs.r.limits.MaxHedges >= 0 {
		r.hedgeAt, r.late = time.Now().Add(r.rs.r.sel.hedgeDelay(c.addr)), c
	}
}

// hedge sends the next candidate while others are out, if it looks
// responsive (not backed off, lame for the zone or late itself) and the
// question's and the server's hedge budgets allow; otherwise no more
// hedges until the attempts out have ended.
func (r *serverRace) hedge() {
	r.hedgeAt = time.Time{}
	c := r.cands[r.next]
	if c.backoff || c.lame || c.late {
		// Not likely to do better: it waits its turn.
		return
	}
	sel := r.rs.r.sel
	if !sel.takeHedge(c.addr) {
		return
	}
	if !r.rs.budget.spendHedge() {
		sel.releaseHedge(c.addr)
		return
	}
	if r.late.addr.IsValid() {
		sel.markLate(r.late.addr)
		r.traceHedge(c)
	}
	r.next++
	r.start(c, true)
}

// traceHedge reports that the late server is hedged with c (the late
// query's own event comes only if it ends before the question does).
func (r *serverRace) traceHedge(c ranked) {
	if r.gate == nil {
		return
	}
	l := r.late
	r.gate.emit(TraceEvent{Depth: r.depth, Zone: r.zone, Server: l.addr, SRTT: l.srtt, SRTTKnown: l.known,
		QName: r.q.name, QType: r.q.qtype, Rcode: -1,
		Outcome: fmt.Sprintf("no reply within the hedge delay: %s asked too", c.addr)})
}

// await returns the next attempt's result, starting attempts as needed:
// the next candidate when none is out, a hedge when the one out is late.
// ok is false when every candidate has been asked and answered; err is
// set when the question gave up (cancelled, past its deadline).
func (r *serverRace) await() (res attemptResult, ok bool, err error) {
	for {
		if r.out == 0 {
			switch {
			case r.next >= len(r.cands):
				return attemptResult{}, false, nil
			case r.next == len(r.cands)-1:
				// The last candidate, nothing out: no hedge can follow,
				// so it is asked here, as without hedging.
				r.next++
				c := r.cands[r.next-1]
				resp, kind, child, err := r.rs.askServer(r.qctx, r.zone, c, r.q, r.depth)
				return attemptResult{c: c, resp: resp, kind: kind, child: child, err: err}, true, nil
			}
			r.next++
			r.start(r.cands[r.next-1], false)
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if r.next < len(r.cands) && !r.hedgeAt.IsZero() {
			wait := time.Until(r.hedgeAt)
			if wait <= 0 {
				r.hedge()
				continue
			}
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		res, ok, done, err := r.wait(fire)
		if timer != nil {
			timer.Stop()
		}
		if done {
			return res, ok, err
		}
	}
}

// wait is await's select: an attempt's result, the hedge timer (fire) or
// the question's end; done is false when the timer fired.
func (r *serverRace) wait(fire <-chan time.Time) (res attemptResult, ok, done bool, err error) {
	select {
	case res := <-r.results:
		r.out--
		if res.err != nil {
			r.unusable()
		}
		return res, true, true, nil
	case <-fire:
		r.hedge()
		return attemptResult{}, false, false, nil
	case <-r.qctx.Done():
		r.cancel()
		if err := r.rs.budget.checkTime(r.qctx); err != nil {
			return attemptResult{}, false, true, err
		}
		return attemptResult{}, false, true, &Error{Text: "query cancelled", Err: r.qctx.Err()}
	}
}

// unusable says the result just taken was no use (an error, or a lame or
// error reply): its turn passes to the next candidate at once, as a hedge
// if attempts are still out (they are not late for that).
func (r *serverRace) unusable() {
	if r.out > 0 && r.rs.r.limits.MaxHedges >= 0 {
		r.hedgeAt, r.late = time.Now(), ranked{}
	}
}

// finish ends the race for the question: attempts still out go on (their
// outcomes feed the RTT estimates) but emit no more trace events.
func (r *serverRace) finish() {
	if r.gate != nil {
		r.gate.close()
	}
}
