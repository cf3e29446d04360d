package resolver

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// TraceEvent is one upstream query of a traced resolution: which server was
// asked and why (its SRTT), how long it took and what it returned.
type TraceEvent struct {
	// Depth is 0 for the client's question, more for sub-resolutions
	// (glueless name-server addresses).
	Depth int
	// Zone is the zone whose servers were asked.
	Zone   string
	Server netip.Addr
	// SRTT is the server's smoothed RTT when it was chosen; SRTTKnown is
	// false for a server without history (tried on a small random SRTT).
	SRTT      time.Duration
	SRTTKnown bool
	// Timeout is how long we were prepared to wait.
	Timeout time.Duration
	QName   string
	QType   uint16
	// TCP, EDNS and Case0x20 describe how the query was sent.
	TCP, EDNS, Case0x20 bool
	// RTT is the measured round trip (0 on timeout).
	RTT time.Duration
	// Rcode is the reply's rcode, -1 without a reply.
	Rcode int
	// Outcome says what the reply meant: "referral to x.", "answer",
	// "NXDOMAIN", "lame", "timeout", ...
	Outcome string
	// Err is the exchange error, if any.
	Err error
}

// String renders the event on one line for `sextant query --trace`.
func (e TraceEvent) String() string {
	srtt := "unknown"
	if e.SRTTKnown {
		srtt = e.SRTT.Round(10 * time.Microsecond).String()
	}
	proto := "udp"
	if e.TCP {
		proto = "tcp"
	}
	rcode := "-"
	if e.Rcode >= 0 {
		rcode = dns.RcodeToString[e.Rcode]
	}
	return fmt.Sprintf("%*s%s %s @%s (%s, zone %s, srtt %s) rtt %s %s: %s",
		2*e.Depth, "", e.QName, dns.TypeToString[e.QType], e.Server, proto, e.Zone, srtt,
		e.RTT.Round(10*time.Microsecond), rcode, e.Outcome)
}

// Tracer receives the events of a traced resolution, in order. It is called
// from the resolving goroutine and must not block for long.
type Tracer func(TraceEvent)

type traceKey struct{}

// WithTrace returns a context under which Resolve and Exchange report every
// upstream query to t. Traced questions are resolved on their own, not
// shared with identical concurrent ones.
func WithTrace(ctx context.Context, t Tracer) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

func tracerFrom(ctx context.Context) Tracer {
	t, _ := ctx.Value(traceKey{}).(Tracer)
	return t
}
