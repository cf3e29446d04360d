package resolver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// UpstreamExchanger carries one query to one authoritative server and
// brings back its reply: the socket I/O of an upstream exchange, and
// nothing more. Config.Upstream takes one so that tests of the resolver's
// logic (referrals, CNAME chains, QNAME minimisation, bailiwick, budgets,
// zone failures) can run on an in-memory world instead of loopback
// sockets; nil, the default, is the real network.
//
// Everything around the I/O still runs on what it returns: the query's
// random ID and 0x20 case, the reply's match on ID, opcode and question
// (a wrong case counts as a forgery, as on a socket), DNS cookies, the
// RTT the server selection learns, truncation and the TCP retry, and the
// budget. What it replaces and so does not test: source-port
// randomisation, connected sockets, junk datagrams, TCP framing.
type UpstreamExchanger interface {
	// Exchange sends query to server (over TCP when tcp is set) and
	// returns the reply. It returns when ctx ends, with ctx's error: the
	// per-query timeout is ctx's deadline, and a server that never
	// answers is one that waits for it. It must not keep query or the
	// reply after it returns.
	Exchange(ctx context.Context, server netip.AddrPort, query *dns.Msg, tcp bool) (*dns.Msg, error)
}

// exchangeUpstream is exchangeOnce over x.upstream: the query m, already
// built, goes to the injected exchanger instead of a socket, and its reply
// passes through a pack and unpack (what a wire would do to it) and the
// same checks a UDP or TCP reply does.
func (x *exchanger) exchangeUpstream(ctx context.Context, q outQuery, m *dns.Msg, deadline time.Time) (*dns.Msg, time.Duration, error) {
	wait, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	start := time.Now()
	reply, err := x.upstream.Exchange(wait, q.Server, m.Copy(), q.TCP)
	rtt := time.Since(start)
	if ctx.Err() != nil {
		return nil, 0, ctx.Err()
	}
	if err != nil {
		if wait.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			return nil, 0, fmt.Errorf("%s: %w", q.Server, errTimeout)
		}
		return nil, 0, fmt.Errorf("exchange with %s: %w", q.Server, err)
	}
	reply, err = throughWire(reply)
	if err != nil {
		return nil, rtt, fmt.Errorf("reply from %s: %w: %w", q.Server, errMalformed, err)
	}
	switch matchReply(m, reply, q.Use0x20 && !q.TCP) {
	case replyMatches:
		if q.EDNS && !x.cookies.accept(q.Server.Addr(), reply, q.TCP) {
			if q.TCP {
				return nil, rtt, fmt.Errorf("tcp reply from %s: %w", q.Server, errMalformed)
			}
			x.cookies.forget(q.Server.Addr())
			return nil, 0, fmt.Errorf("%s: %w (%w)", q.Server, errTimeout, errCookieMismatch)
		}
		return reply, rtt, nil
	case replyCaseMismatch:
		return nil, 0, fmt.Errorf("%s: %w (%w)", q.Server, errTimeout, errCaseMismatch)
	}
	if q.TCP {
		return nil, rtt, fmt.Errorf("tcp reply from %s: %w", q.Server, errMalformed)
	}
	// Over UDP a mismatched datagram does not end the wait; the only
	// reply there is was one, so the wait ends empty.
	return nil, 0, fmt.Errorf("%s: %w (and %w)", q.Server, errTimeout, errMalformed)
}

// throughWire packs and unpacks a reply, so that the resolver sees only
// what a wire could carry and nothing the exchanger keeps a pointer to.
func throughWire(reply *dns.Msg) (*dns.Msg, error) {
	if reply == nil {
		return nil, errors.New("no reply")
	}
	wire, err := reply.Pack()
	if err != nil {
		return nil, err
	}
	out := new(dns.Msg)
	if err := out.Unpack(wire); err != nil {
		return nil, err
	}
	return out, nil
}
