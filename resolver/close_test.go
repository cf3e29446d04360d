package resolver

import (
	"context"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/lab"
	"github.com/sextant-dns/sextant/validator"
)

// closeLabBase is the lab of the Close test (ARCHITECTURE.md "Loopback
// blocks").
var closeLabBase = netip.MustParseAddr("127.86.0.0")

// goroutineSettle bounds the wait for goroutines that are ending.
const goroutineSettle = 5 * time.Second

// TestCloseLeavesNoGoroutine: a started resolver with DNSSEC and RFC 5011
// managed anchors runs re-priming, the anchor ticker and refreshes in the
// background; Close ends all of it although Start's context never ends,
// and a second Close is harmless.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := lab.Start(ctx, lab.Config{AddrBase: closeLabBase, Clock: clock.System{}, BulkHosts: -1})
	if err != nil {
		t.Fatalf("lab.Start: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	m, err := validator.NewManagedAnchors(l.RootDS(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	saved := make(chan struct{}, 4)
	save := func(*validator.ManagedAnchors) error {
		saved <- struct{}{}
		return nil
	}

	before := resolverGoroutines()
	r := newLabResolver(t, l, func(c *Config) {
		c.Clock = clock.System{}
		c.DNSSEC = &DNSSECConfig{Managed: m, SaveManaged: save}
	})
	r.Start(context.Background()) // never cancelled: only Close stops it
	select {
	case <-saved: // the ticker ran a refresh
	case <-time.After(goroutineSettle):
		t.Fatal("no RFC 5011 refresh after Start")
	}
	if _, err := r.Resolve(ctx, "www.example.test.", dns.TypeA); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if during := resolverGoroutines(); during <= before {
		t.Fatalf("goroutines %d while started, %d before: the test sees no background work", during, before)
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Close()
		_ = r.Close() // idempotent
	}()
	select {
	case <-done:
	case <-time.After(goroutineSettle):
		t.Fatal("Close did not return")
	}
	after := settledGoroutines(before)
	if after > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before New, %d after Close\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
	// Still answers, without background work.
	if _, err := r.Resolve(ctx, "www.example.test.", dns.TypeA); err != nil {
		t.Fatalf("resolve after Close: %v", err)
	}
	r.Start(context.Background()) // after Close: starts nothing
	if after := settledGoroutines(before); after > before {
		t.Fatalf("goroutines: %d before New, %d after Start following Close", before, after)
	}
}

// resolverGoroutines counts the goroutines running code of this package
// outside tests. The whole process's count is no measure here: the lab's
// servers start and end workers on their own.
func resolverGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "sextant-dns/sextant/resolver.") && !strings.Contains(g, "_test.go") {
			count++
		}
	}
	return count
}

// settledGoroutines waits up to goroutineSettle for resolverGoroutines
// to fall to want (goroutines that are ending need a moment) and returns
// the last count.
func settledGoroutines(want int) int {
	deadline := time.Now().Add(goroutineSettle)
	for {
		n := resolverGoroutines()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}
