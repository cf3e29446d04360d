package validator

import (
	"context"
	"sync"

	"github.com/sextant-dns/sextant/security"
)

// flights lets concurrent walks share one fetch-and-validate step per name,
// so that a cold cache hit by many clients at once asks for each DS and
// DNSKEY once. Only the leader spends its Budget; a waiter that gets a
// result marked with an error (the leader's budget ran out, its context
// ended, its transport failed) does the step itself with its own budget.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	done chan struct{}
	st   zoneState
}

func (f *flights) do(ctx context.Context, key string, fn func() zoneState) zoneState {
	f.mu.Lock()
	if f.m == nil {
		f.m = map[string]*flight{}
	}
	if fl, ok := f.m[key]; ok {
		f.mu.Unlock()
		select {
		case <-fl.done:
			if fl.st.res.Err == nil {
				return fl.st
			}
			return fn()
		case <-ctx.Done():
			return zoneState{status: security.Bogus, res: Result{Status: security.Bogus, EDE: EDEDNSSECBogus, Reason: "chain walk cancelled", Err: ctx.Err()}}
		}
	}
	fl := &flight{done: make(chan struct{})}
	f.m[key] = fl
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.m, key)
		f.mu.Unlock()
		close(fl.done)
	}()
	fl.st = fn()
	return fl.st
}
