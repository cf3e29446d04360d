package resolver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/cache"
)

// question is a canonical question.
type question struct {
	name          string
	qtype, qclass uint16
}

func (q question) String() string {
	return q.name + " " + dns.TypeToString[q.qtype]
}

// resolution is the state of one client question: its Budget, its tracer
// and the lookups in progress (for loop detection).
type resolution struct {
	r      *Resolver
	budget *Budget
	trace  Tracer
	active []question
	// cacheOnly answers from local data and the cache only (RD=0).
	cacheOnly bool
}

// outcome is a finished lookup.
type outcome struct {
	rcode     int
	answer    []dns.RR
	authority []dns.RR
}

// step is one name's lookup: data, a negative answer, or a CNAME/DNAME
// target (next) to restart at.
type step struct {
	rcode     int
	answer    []dns.RR
	authority []dns.RR
	next      string
}

// lookup resolves q, following CNAME/DNAME chains across zones. depth is
// the sub-resolution nesting.
func (rs *resolution) lookup(ctx context.Context, q question, depth int) (*outcome, error) {
	if err := rs.budget.checkDepth(depth); err != nil {
		return nil, err
	}
	for _, a := range rs.active {
		if a == q {
			return nil, &Error{EDE: dns.ExtendedErrorCodeNoReachableAuthority,
				Text: fmt.Sprintf("delegation loop: %s needs itself", q), Cacheable: true}
		}
	}
	rs.active = append(rs.active, q)
	defer func() { rs.active = rs.active[:len(rs.active)-1] }()

	out := &outcome{}
	seen := map[string]bool{q.name: true}
	cur := q
	for {
		st, err := rs.lookupName(ctx, cur, depth)
		if err != nil {
			return nil, err
		}
		out.answer = append(out.answer, st.answer...)
		if st.next == "" {
			out.rcode, out.authority = st.rcode, st.authority
			return out, nil
		}
		if err := rs.budget.spendHop(); err != nil {
			return nil, err
		}
		if seen[st.next] {
			return nil, &Error{EDE: dns.ExtendedErrorCodeOther, Text: fmt.Sprintf("CNAME loop at %s", st.next)}
		}
		seen[st.next] = true
		cur.name = st.next
	}
}

// lookupName answers one name (no restarts): special-use names, then the
// cache, then iteration. Failures that RFC 9520 calls cacheable are cached.
func (rs *resolution) lookupName(ctx context.Context, q question, depth int) (*step, error) {
	if rs.r.special {
		if st, ok := specialAnswer(q); ok {
			return st, nil
		}
	}
	st, err := rs.lookupUpstream(ctx, q, depth)
	if rs.r.localhostFallback && isSubdomain(q.name, "localhost.") && err != errNotCached &&
		(err != nil || st.rcode == dns.RcodeNameError) {
		// The operator's root does not serve localhost: it is still
		// loopback (RFC 6761 6.3).
		return localhostAnswer(q), nil
	}
	return st, err
}

// lookupUpstream answers one name from the cache or by iteration.
func (rs *resolution) lookupUpstream(ctx context.Context, q question, depth int) (*step, error) {
	if st, err, ok := rs.r.fromCache(q); ok {
		return st, err
	}
	if rs.cacheOnly {
		return nil, errNotCached
	}
	st, err := rs.iterate(ctx, q, depth)
	if err != nil {
		if e := asError(err); e.Cacheable {
			rs.r.cache.Put(q.name, q.qtype, q.qclass, &cache.Entry{
				Rcode: dns.RcodeServerFailure, EDE: e.EDE, EDEText: e.Text,
			}, 0)
		}
		return nil, err
	}
	return st, nil
}

// fromCache answers q from the cache: data, negative, a cached failure, or
// a CNAME to follow.
func (r *Resolver) fromCache(q question) (*step, error, bool) {
	if e, ok := r.cache.Get(q.name, q.qtype, q.qclass); ok {
		ttl := r.cache.Remaining(e)
		switch {
		case e.Failure():
			return nil, &Error{EDE: dns.ExtendedErrorCodeCachedError, Text: "cached failure: " + e.EDEText}, true
		case e.Negative():
			return &step{rcode: e.Rcode, authority: cache.WithTTL(e.Authority, ttl)}, nil, true
		default:
			return &step{answer: append(cache.WithTTL(e.RRs, ttl), cache.WithTTL(e.Sigs, ttl)...),
				authority: cache.WithTTL(e.Authority, ttl)}, nil, true
		}
	}
	if q.qtype == dns.TypeCNAME {
		return nil, nil, false
	}
	if e, ok := r.cache.Get(q.name, dns.TypeCNAME, q.qclass); ok && !e.Negative() && !e.Failure() && len(e.RRs) == 1 {
		ttl := r.cache.Remaining(e)
		cn, _ := e.RRs[0].(*dns.CNAME)
		if cn != nil {
			return &step{answer: append(cache.WithTTL(e.RRs, ttl), cache.WithTTL(e.Sigs, ttl)...), next: canonical(cn.Target)}, nil, true
		}
	}
	return nil, nil, false
}

// iterate resolves q from the closest known delegation down.
func (rs *resolution) iterate(ctx context.Context, q question, depth int) (*step, error) {
	d := rs.r.closestDelegation(q.name, q.qtype, q.qclass)
	qm := newQmin(rs.r.cfg.QNameMinimisation && q.qtype != dns.TypeDS)
	for {
		if err := rs.budget.checkTime(ctx); err != nil {
			return nil, err
		}
		askName, askType := q.name, q.qtype
		minimised := false
		if n, ok := qm.next(d.zone, q.name); ok {
			askName, askType, minimised = n, dns.TypeA, true
		}
		resp, kind, child, err := rs.queryZone(ctx, d, question{askName, askType, q.qclass}, depth)
		if err != nil {
			if minimised && asError(err).Cacheable {
				// RFC 9156 3: servers that fail on minimised queries get
				// the full name.
				qm.disable()
				continue
			}
			return nil, err
		}
		switch {
		case kind == kindReferral:
			nd, err := rs.r.storeReferral(resp, d.zone, child, q.qclass)
			if err != nil {
				return nil, err
			}
			d = nd
			continue
		case minimised && kind == kindNXDomain:
			// RFC 8020 says nothing exists below, but some servers give
			// NXDOMAIN for empty non-terminals: ask the full name to be sure.
			qm.disable()
			continue
		case minimised:
			// Data, NODATA or a CNAME at a minimised name: no zone cut
			// there; add labels.
			qm.advance(askName)
			continue
		}
		return rs.storeAnswer(resp, kind, d.zone, q)
	}
}

// queryZone asks the servers of d, best first, until one gives a usable
// reply; glueless name servers are resolved (within the per-delegation and
// depth limits) only when the known addresses are exhausted.
func (rs *resolution) queryZone(ctx context.Context, d delegation, q question, depth int) (*dns.Msg, replyKind, string, error) {
	if e, ok := rs.r.cache.Get(d.zone, zoneFailureType, q.qclass); ok && e.Failure() {
		return nil, 0, "", &Error{EDE: dns.ExtendedErrorCodeCachedError, Text: "cached failure: " + e.EDEText, Cacheable: true}
	}
	tried := make(map[netip.Addr]bool)
	replies := 0
	lookedUp := make(map[string]bool)
	lookups := 0
	var lastErr error
	// network: every failure so far was a network error other than a
	// timeout (EDE 23); timeouts and bad replies give EDE 22.
	network := true
	for {
		var cands []netip.Addr
		for _, ns := range d.ns {
			addrs, _ := rs.r.knownAddrs(d, ns, q.qclass)
			for _, a := range addrs {
				if !tried[a] {
					tried[a] = true
					cands = append(cands, a)
				}
			}
		}
		for _, c := range rs.r.sel.order(d.zone, cands) {
			resp, ev, err := rs.ask(ctx, d.zone, c, q, depth)
			if err != nil {
				rs.emit(ev, "", err)
				var re *Error
				if errors.As(err, &re) && !re.Cacheable {
					return nil, 0, "", err // budget, deadline, cancelled
				}
				if errors.Is(err, errTimeout) {
					network = false
				}
				lastErr = err
				continue
			}
			replies++
			kind, child := classify(resp, d.zone, q.name, q.qtype)
			outcome := kind.String()
			if kind == kindReferral {
				outcome = "referral to " + child
			}
			rs.emit(ev, outcome, nil)
			switch kind {
			case kindLame, kindRcodeError:
				rs.r.sel.markLame(d.zone, c.addr)
				network = false
				lastErr = fmt.Errorf("%s from %s: %s", kind, c.addr, dns.RcodeToString[resp.Rcode])
				continue
			}
			return resp, kind, child, nil
		}
		// Known addresses exhausted: resolve one more glueless name server.
		ns := rs.nextGlueless(d, lookedUp, q.qclass)
		if ns == "" {
			break
		}
		if lookups >= rs.r.limits.MaxNSAddrLookups {
			if len(tried) == 0 {
				// NXNSAttack: the delegation, not this client, is at
				// fault, so the failure is cached for the zone too.
				e := budgetError("more than %d name-server address lookups for %s", rs.r.limits.MaxNSAddrLookups, d.zone)
				e.EDE, e.Cacheable = dns.ExtendedErrorCodeNoReachableAuthority, true
				rs.r.cache.Put(d.zone, zoneFailureType, q.qclass, &cache.Entry{
					Rcode: dns.RcodeServerFailure, EDE: e.EDE, EDEText: e.Text,
				}, 0)
				return nil, 0, "", e
			}
			break
		}
		lookups++
		lookedUp[ns] = true
		if err := rs.resolveNSAddrs(ctx, ns, q.qclass, depth); err != nil {
			var re *Error
			if errors.As(err, &re) && !re.Cacheable {
				return nil, 0, "", err
			}
			lastErr = err
		}
	}
	if lastErr == nil {
		lastErr = errors.New("no name server addresses")
		network = false
	}
	var re *Error
	if errors.As(lastErr, &re) && re.Text != "" && len(tried) == 0 {
		// Every name server's address lookup failed: pass that reason on.
		return nil, 0, "", &Error{EDE: dns.ExtendedErrorCodeNoReachableAuthority,
			Text: fmt.Sprintf("no reachable name server for %q: %s", d.zone, re.Text), Cacheable: true}
	}
	uerr := unreachableError(d.zone, network && len(tried) > 0, lastErr)
	if replies == 0 && len(tried) > 0 {
		// RFC 9520 3.1: no server of the zone answered at all. Remember
		// that for the zone, so that other names in it do not send more
		// queries to dead servers for a while.
		rs.r.cache.Put(d.zone, zoneFailureType, q.qclass, &cache.Entry{
			Rcode: dns.RcodeServerFailure, EDE: uerr.EDE, EDEText: uerr.Text,
		}, 0)
	}
	return nil, 0, "", uerr
}

// zoneFailureType is the cache type under which a zone whose servers all
// failed to answer is remembered (type 0 is reserved, RFC 6895, so it never
// meets real data).
const zoneFailureType = 0

// nextGlueless returns a name server of d without known addresses that a
// lookup could find: not looked up yet, and not inside d's zone (such a
// name needs glue, which the parent did not give).
func (rs *resolution) nextGlueless(d delegation, lookedUp map[string]bool, qclass uint16) string {
	for _, ns := range d.ns {
		if lookedUp[ns] || isSubdomain(ns, d.zone) && d.zone != "." {
			continue
		}
		if _, settled := rs.r.knownAddrs(d, ns, qclass); settled {
			continue
		}
		return ns
	}
	return ""
}

// resolveNSAddrs looks up the addresses of a glueless name server as a
// sub-resolution (A first; AAAA only when IPv6 is on and A gave nothing).
func (rs *resolution) resolveNSAddrs(ctx context.Context, ns string, qclass uint16, depth int) error {
	var firstErr error
	types := []uint16{}
	if rs.r.policy.ipv4 {
		types = append(types, dns.TypeA)
	}
	if rs.r.policy.ipv6 {
		types = append(types, dns.TypeAAAA)
	}
	for _, t := range types {
		out, err := rs.lookup(ctx, question{ns, t, qclass}, depth+1)
		if err != nil {
			var re *Error
			if errors.As(err, &re) && !re.Cacheable {
				return err
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		if out.rcode == dns.RcodeNameError {
			return nil // the name does not exist: no AAAA either
		}
		if out.rcode == dns.RcodeSuccess && len(out.answer) > 0 {
			// The lookup cached the addresses (under the chain's final
			// name when ns is a CNAME, which RFC 2181 10.3 forbids; we
			// cache them under ns too so they can be found).
			rs.r.storeNSAddrs(ns, t, qclass, out.answer)
			return nil
		}
	}
	return firstErr
}

// ask sends q to one server, with the per-server fallbacks: no 0x20 for
// servers that do not echo case, TCP after TC, plain DNS for servers that
// reject EDNS. Every query is paid from the Budget. It returns the trace
// event of the last exchange for the caller to complete.
func (rs *resolution) ask(ctx context.Context, zone string, c ranked, q question, depth int) (*dns.Msg, TraceEvent, error) {
	sel := rs.r.sel
	oq := outQuery{
		Name: q.name, Type: q.qtype, Class: q.qclass,
		Server:  netip.AddrPortFrom(c.addr, rs.r.port),
		EDNS:    !sel.noEDNS(c.addr),
		DO:      true,
		Use0x20: rs.r.cfg.Use0x20 && !sel.no0x20(c.addr),
	}
	ev := TraceEvent{Depth: depth, Zone: zone, Server: c.addr, SRTT: c.srtt, SRTTKnown: c.known, QName: q.name, QType: q.qtype, Rcode: -1}
	for attempt := 0; ; attempt++ {
		if err := rs.budget.checkTime(ctx); err != nil {
			return nil, ev, err
		}
		if err := rs.budget.spendQuery(); err != nil {
			return nil, ev, err
		}
		oq.Timeout = sel.timeout(c.addr)
		ev.Timeout, ev.TCP, ev.EDNS, ev.Case0x20 = oq.Timeout, oq.TCP, oq.EDNS, oq.Use0x20 && !oq.TCP
		resp, rtt, err := rs.r.x.exchange(ctx, oq)
		ev.RTT = rtt
		if err != nil {
			if berr := rs.budget.checkTime(ctx); berr != nil {
				// The wait ended with the client's deadline.
				return nil, ev, berr
			}
			if ctx.Err() != nil {
				if berr := rs.budget.checkTime(ctx); berr != nil {
					return nil, ev, berr
				}
				return nil, ev, &Error{EDE: dns.ExtendedErrorCodeOther, Text: "query cancelled", Err: ctx.Err()}
			}
			if errors.Is(err, errCaseMismatch) && attempt < 3 {
				sel.setNo0x20(c.addr)
				rs.emit(ev, "reply did not echo 0x20 case, retrying without", nil)
				oq.Use0x20 = false
				continue
			}
			sel.failure(c.addr)
			return nil, ev, fmt.Errorf("%s: %w", c.addr, err)
		}
		sel.success(c.addr, rtt)
		ev.Rcode = resp.Rcode
		if resp.Truncated && !oq.TCP && attempt < 3 {
			rs.emit(ev, "truncated, retrying over TCP", nil)
			oq.TCP = true
			continue
		}
		if oq.EDNS && resp.IsEdns0() == nil && attempt < 3 &&
			(resp.Rcode == dns.RcodeFormatError || resp.Rcode == dns.RcodeNotImplemented) {
			sel.setNoEDNS(c.addr)
			rs.emit(ev, "EDNS rejected, retrying without", nil)
			oq.EDNS = false
			continue
		}
		canonicaliseMsg(resp)
		return resp, ev, nil
	}
}

// emit completes and reports a trace event, if tracing.
func (rs *resolution) emit(ev TraceEvent, outcome string, err error) {
	if rs.trace == nil {
		return
	}
	ev.Outcome = outcome
	ev.Err = err
	if err != nil && outcome == "" {
		ev.Outcome = err.Error()
	}
	rs.trace(ev)
}
