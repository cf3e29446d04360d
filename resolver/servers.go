package resolver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/miekg/dns"
)

// queryZone asks the servers of d about q, unless the zone is remembered
// as failed (RFC 9520: see zonefail.go), and records the outcome for the
// zone. minimised says q is a QNAME-minimised step: its failure is not
// held against the zone, since the full name is asked next (RFC 9156 3).
func (rs *resolution) queryZone(ctx context.Context, d delegation, q question, depth int, minimised bool) (*dns.Msg, replyKind, string, error) {
	r := rs.r
	if err := r.admitZone(rs, d.zone, q.qclass); err != nil {
		return nil, 0, "", err
	}
	resp, kind, child, verdict, err := rs.queryServers(ctx, d, q, depth)
	switch {
	case err == nil:
		r.zoneSucceeded(d.zone, q.qclass)
	case verdict != zoneNoVerdict && !minimised:
		r.zoneFailed(rs, d.zone, q.qclass, q.name, verdict == zoneSilent, asError(err))
	}
	return resp, kind, child, err
}

// zoneVerdict is what a failed queryServers says about the zone.
type zoneVerdict uint8

const (
	// zoneNoVerdict: the failure is not the servers' (budget, deadline,
	// no address could be found for them).
	zoneNoVerdict zoneVerdict = iota
	// zoneSilent: no server replied at all (or too many name-server
	// lookups, NXNSAttack: the delegation is at fault).
	zoneSilent
	// zoneUnusable: servers replied, but only with errors or lame replies.
	zoneUnusable
)

// queryServers asks the servers of d, best first, until one gives a usable
// reply, hedging a late server with the next (hedge.go); glueless name
// servers are resolved (within the per-delegation and depth limits) only
// when the known addresses are exhausted. A server that timed out
// repeatedly is skipped while it is backed off, and then asked by one
// question at a time (selector.admit).
//
// The zone is judged silent only when every server address it has was
// asked by this question and none replied: a server skipped because it
// rests, or not asked because the budget or the deadline ran out first,
// gives no verdict, so one timeout does not fail a zone whose other
// servers were never asked (RFC 9520 3.1: all the zone's servers failed).
func (rs *resolution) queryServers(ctx context.Context, d delegation, q question, depth int) (*dns.Msg, replyKind, string, zoneVerdict, error) {
	tried := make(map[netip.Addr]bool)
	replies, resting := 0, 0
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
				if !tried[a] && !rs.budget.excludes(d.zone, a) { // excludes: dnssec_retry.go
					tried[a] = true
					cands = append(cands, a)
				}
			}
		}
		race := rs.newServerRace(ctx, d.zone, rs.r.sel.order(d.zone, cands), q, depth)
		for {
			res, ok, err := race.await()
			if err != nil {
				race.finish()
				return nil, 0, "", zoneNoVerdict, err
			}
			if !ok {
				break
			}
			c := res.c
			if res.err != nil {
				var re *Error
				if errors.As(res.err, &re) && !re.Cacheable {
					race.finish()
					return nil, 0, "", zoneNoVerdict, res.err // budget, deadline, cancelled
				}
				if errors.Is(res.err, errServerResting) {
					resting++
				}
				if errors.Is(res.err, errTimeout) || errors.Is(res.err, errServerResting) {
					network = false
				}
				lastErr = res.err
				continue
			}
			replies++
			switch res.kind {
			case kindLame, kindRcodeError:
				race.unusable()
				rs.r.sel.markLame(d.zone, c.addr)
				network = false
				lastErr = fmt.Errorf("%s from %s: %s", res.kind, c.addr, dns.RcodeToString[res.resp.Rcode])
				continue
			}
			race.finish()
			rs.from = c.addr // traced for bogus retries (dnssec_retry.go)
			return res.resp, res.kind, res.child, zoneNoVerdict, nil
		}
		race.finish()
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
				return nil, 0, "", zoneSilent, e
			}
			break
		}
		lookups++
		lookedUp[ns] = true
		if err := rs.resolveNSAddrs(ctx, ns, q.qclass, depth); err != nil {
			var re *Error
			if errors.As(err, &re) && !re.Cacheable {
				return nil, 0, "", zoneNoVerdict, err
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
		return nil, 0, "", zoneNoVerdict, &Error{EDE: dns.ExtendedErrorCodeNoReachableAuthority,
			Text: fmt.Sprintf("no reachable name server for %q: %s", d.zone, re.Text), Cacheable: true}
	}
	uerr := unreachableError(d.zone, network && len(tried) > 0, lastErr)
	switch {
	case len(tried) == 0 || replies == 0 && resting > 0:
		// Nobody asked, or some servers rest (their timeouts were other
		// questions'): this question cannot say all of them failed.
		return nil, 0, "", zoneNoVerdict, uerr
	case replies == 0:
		// RFC 9520 3.1: no server of the zone answered at all.
		return nil, 0, "", zoneSilent, uerr
	default:
		return nil, 0, "", zoneUnusable, uerr
	}
}

// askServer asks one candidate server, unless it is resting after repeated
// timeouts (another question probes it, or its back-off runs), and traces
// the outcome.
func (rs *resolution) askServer(ctx context.Context, zone string, c ranked, q question, depth int) (*dns.Msg, replyKind, string, error) {
	sel := rs.r.sel
	ok, probe := sel.admit(c.addr)
	if !ok {
		return nil, 0, "", fmt.Errorf("%s: %w", c.addr, errServerResting)
	}
	resp, ev, err := rs.ask(ctx, zone, c, q, depth)
	if probe {
		sel.endProbe(c.addr)
	}
	if err != nil {
		rs.emit(ev, "", err)
		return nil, 0, "", err
	}
	kind, child := classify(resp, zone, q.name, q.qtype)
	outcome := kind.String()
	if kind == kindReferral {
		outcome = "referral to " + child
	}
	rs.emit(ev, outcome, nil)
	return resp, kind, child, nil
}

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
		if answer := out.answer(); out.rcode == dns.RcodeSuccess && len(answer) > 0 {
			// The lookup cached the addresses (under the chain's final
			// name when ns is a CNAME, which RFC 2181 10.3 forbids; we
			// cache them under ns too so they can be found).
			rs.r.storeNSAddrs(ns, t, qclass, answer)
			return nil
		}
	}
	return firstErr
}

// ask sends q to one server, with the per-server fallbacks: TCP after TC,
// plain DNS for servers that reject EDNS, and the 0x20 case check. Every
// query is paid from the Budget. It returns the trace event of the last
// exchange for the caller to complete.
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
	caseCheck := false // this query is the TCP check of the server's case handling
	for attempt := 0; ; attempt++ {
		if err := rs.budget.checkTime(ctx); err != nil {
			return nil, ev, err
		}
		if err := rs.budget.spendQuery(); err != nil {
			return nil, ev, err
		}
		oq.Timeout = sel.timeout(c.addr)
		ev.Timeout, ev.TCP, ev.EDNS, ev.Case0x20 = oq.Timeout, oq.TCP, oq.EDNS, (oq.Use0x20 && !oq.TCP) || caseCheck
		resp, rtt, err := rs.r.x.exchange(ctx, oq)
		rs.r.stats.exchanged(c.addr, rtt, err)
		ev.RTT = rtt
		if err != nil {
			if berr := rs.budget.checkTime(ctx); berr != nil {
				// The wait ended with the client's deadline or the
				// caller's cancellation: not the server's fault.
				return nil, ev, berr
			}
			if errors.Is(err, errCaseMismatch) && !caseCheck && attempt < 3 && sel.caseMismatch(c.addr, q) {
				// Several questions got only wrong-case replies: forged,
				// or a server that does not preserve case. TCP tells them
				// apart (an off-path forger cannot inject into it), so the
				// question goes there with a random case, and its echo
				// decides (Unbound's use-caps-for-id fallback compares
				// the servers' replies instead).
				rs.emit(ev, "only wrong-case replies from several questions: checking the case over TCP", err)
				caseCheck, oq.TCP, oq.Name = true, true, randomCase(q.name)
				continue
			}
			if !errors.Is(err, errTCPPoolFull) && !rs.background { // our bound, or priming before the network: not the server's fault
				sel.failure(c.addr)
			}
			return nil, ev, fmt.Errorf("%s: %w", c.addr, err)
		}
		sel.replied(c.addr, rtt, oq.Use0x20 && !oq.TCP)
		ev.Rcode = resp.Rcode
		if caseCheck && len(resp.Question) == 1 {
			rs.judgeCase(c.addr, oq.Name, resp.Question[0].Name)
			caseCheck, oq.Name = false, q.name
		}
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

// judgeCase concludes the TCP case check of server a: a reply that echoes
// the random case sent proves the server preserves case, so the wrong-case
// UDP replies were forged and 0x20 stays on; one that does not proves the
// server's habit (TCP cannot be forged off-path), and 0x20 is off for it
// for capabilityMemory.
func (rs *resolution) judgeCase(a netip.Addr, sent, got string) {
	if got == sent {
		rs.r.sel.caseEchoed(a)
		rs.r.log.Warn("wrong-case UDP replies from a server that preserves case: spoofing attempt",
			"server", a, "name", canonical(sent))
		return
	}
	rs.r.sel.setNo0x20(a)
	rs.r.log.Info("server does not preserve case (checked over TCP): 0x20 off for it for a while",
		"server", a, "for", capabilityMemory)
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
