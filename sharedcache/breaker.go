package sharedcache

import (
	"sync"
	"time"
)

// breaker is a circuit breaker in front of Redis: after failuresToOpen
// failures in a row it opens and every call is refused for openFor; then
// one call is let through (half-open), whose outcome closes it or opens it
// again. Refused calls cost nothing, so a dead or overloaded Redis stops
// taking a few milliseconds from every question.
type breaker struct {
	failuresToOpen int
	openFor        time.Duration
	now            func() time.Time

	mu       sync.Mutex
	failures int
	openTill time.Time // zero: closed
	probing  bool      // half-open: the one probe is out
	opened   uint64    // times it opened
}

// allow reports whether a call may go to Redis now.
func (b *breaker) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.openTill.IsZero():
		return true
	case b.now().Before(b.openTill) || b.probing:
		return false
	}
	b.probing = true
	return true
}

// done records the outcome of an allowed call.
func (b *breaker) done(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		b.failures, b.openTill, b.probing = 0, time.Time{}, false
		return
	}
	b.failures++
	if b.probing || b.failures >= b.failuresToOpen {
		if b.openTill.IsZero() || b.probing {
			b.opened++
		}
		b.openTill = b.now().Add(b.openFor)
		b.probing = false
	}
}

// state is the breaker's state for metrics: open (refusing calls), and
// how many times it has opened.
func (b *breaker) state() (open bool, opened uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.openTill.IsZero(), b.opened
}
