package resolver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// maxFlights bounds the shared resolutions in progress; beyond it questions
// are resolved on their own (still bounded by their Budget).
const maxFlights = 10000

// flightKey identifies a client question for sharing.
type flightKey struct {
	name          string
	qtype, qclass uint16
	cd            bool
}

type flight struct {
	done chan struct{}
	res  *Result
}

// flightGroup lets identical concurrent questions share one resolution.
// The resolution runs detached from any one client's context (a client
// that goes away does not cancel it for the others) but never past the
// client deadline.
type flightGroup struct {
	mu sync.Mutex
	m  map[flightKey]*flight
}

func (g *flightGroup) do(ctx context.Context, key flightKey, deadline time.Duration, fn func(context.Context) *Result) *Result {
	g.mu.Lock()
	if g.m == nil {
		g.m = make(map[flightKey]*flight)
	}
	f, ok := g.m[key]
	if !ok {
		if len(g.m) >= maxFlights {
			g.mu.Unlock()
			return fn(ctx)
		}
		f = &flight{done: make(chan struct{})}
		g.m[key] = f
		go g.run(ctx, key, f, deadline, fn)
	}
	g.mu.Unlock()
	select {
	case <-f.done:
		return f.res
	case <-ctx.Done():
		return &Result{Rcode: dns.RcodeServerFailure, ede: &Error{EDE: dns.ExtendedErrorCodeOther, Text: "query cancelled", Err: ctx.Err()}}
	}
}

func (g *flightGroup) run(ctx context.Context, key flightKey, f *flight, deadline time.Duration, fn func(context.Context) *Result) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deadline)
	defer func() {
		if p := recover(); p != nil {
			f.res = &Result{Rcode: dns.RcodeServerFailure, ede: &Error{EDE: dns.ExtendedErrorCodeOther, Text: fmt.Sprintf("internal error: %v", p)}}
		}
		cancel()
		g.mu.Lock()
		delete(g.m, key)
		g.mu.Unlock()
		close(f.done)
	}()
	f.res = fn(rctx)
}
