// Package labtest starts the lab (package lab, the simulated signed
// internet) for other packages' tests, once for all of them. It is apart
// from internal/dnstest because lab imports authority and transport, whose
// tests import dnstest: dnstest importing lab would make a cycle. Only
// tests import it.
package labtest

import (
	"context"
	"testing"
	"time"

	"github.com/sextant-dns/sextant/lab"
)

// startTimeout bounds lab.Start: the lab builds and signs its zones and
// binds hundreds of sockets, seconds on a loaded machine.
const startTimeout = 30 * time.Second

// Start starts a lab with cfg and closes it when the test ends. It fails
// the test when the lab does not start within startTimeout, also when
// lab.Start itself hangs.
func Start(t testing.TB, cfg lab.Config) *lab.Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	type started struct {
		l   *lab.Lab
		err error
	}
	done := make(chan started, 1)
	go func() {
		l, err := lab.Start(ctx, cfg)
		done <- started{l, err}
	}()
	var s started
	select {
	case s = <-done:
	case <-time.After(startTimeout + 10*time.Second):
		t.Fatalf("lab.Start did not return within %v", startTimeout+10*time.Second)
	}
	if s.err != nil {
		t.Fatalf("lab.Start: %v", s.err)
	}
	t.Cleanup(func() { _ = s.l.Close() })
	return s.l
}

// StartFiles is Start, then the lab's files (root hints, root DS, ...)
// written to a directory of the test's; it returns the directory.
func StartFiles(t testing.TB, cfg lab.Config) (dir string) {
	t.Helper()
	l := Start(t, cfg)
	dir = t.TempDir()
	if err := l.WriteFiles(dir); err != nil {
		t.Fatalf("lab files: %v", err)
	}
	return dir
}
