package resolver

import (
	"context"
	"sync"
)

// background tracks the goroutines a Resolver runs on its own (priming,
// RFC 5011 anchor refreshes and their ticker), so that Close can end them
// and wait for them: an embedding program that drops a Resolver leaves
// nothing behind.
type background struct {
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	mu     sync.Mutex // orders spawn's wg.Add before close's wg.Wait
	closed bool
	wg     sync.WaitGroup
}

// spawn runs f in a new goroutine unless Close has been called, and
// reports whether it did.
func (b *background) spawn(f func()) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
	return true
}

// close cancels the background context and waits for every goroutine.
func (b *background) close() {
	b.mu.Lock()
	b.closed = true
	b.cancel()
	b.mu.Unlock()
	b.wg.Wait()
}

// Close stops the resolver's background work (re-priming enabled by Start,
// the RFC 5011 trust-anchor refreshes and their ticker) and waits until it
// has ended; it closes the upstream TCP connections kept for reuse. Questions still in progress are not interrupted (they end
// with their own contexts), and the resolver still answers afterwards, only
// without background work. Close is idempotent and always returns nil; it
// returns an error to fit io.Closer.
func (r *Resolver) Close() error {
	r.bg.close()
	r.x.close() // pooled upstream TCP connections and their readers
	return nil
}
