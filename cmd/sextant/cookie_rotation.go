package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sextant-dns/sextant/transport"
)

// Server cookie secret rotation (RFC 7873 7.1, RFC 9018 4.4 and 4.5): a
// server changes its secret now and then so that a secret that leaked, or
// was guessed from cookies seen, stops being useful. ServerCookies.Rotate
// keeps the previous secret's cookies valid until the next rotation.
//
// With a random secret (no --cookie-secret-file) serve draws a new one
// every --cookie-secret-rotation. With a secret file the operators rotate:
// they write the new secret to every server of the anycast address and
// reload (SIGHUP or `sextant ctl reload`); a reload that finds the file
// changed rotates to it. Servers sharing an address must change together,
// which a timer of each server's own cannot do.

// defaultCookieRotation is how often a random secret is replaced. A cookie
// lives an hour (RFC 9018 4.3) and one made with the secret replaced stays
// valid until the next rotation, so any period of an hour or more breaks
// no client; a day keeps a leaked secret useful for two days at most and
// costs each client one fresh cookie a day.
const defaultCookieRotation = 24 * time.Hour

// minCookieRotation is the shortest period allowed: a shorter one would
// refuse cookies younger than their hour of validity (they would be two
// secrets old), and clients would meet BADCOOKIE under rate limiting.
const minCookieRotation = time.Hour

// cookieRotation rotates the shared ServerCookies' secret.
type cookieRotation struct {
	cookies *transport.ServerCookies
	file    string // --cookie-secret-file; empty: random secrets
	every   time.Duration
	log     *slog.Logger

	mu        sync.Mutex
	fromFile  [transport.CookieSecretLen]byte // the secret last read from file
	rotations uint64
}

// readCookieSecret reads a secret file: 32 hex digits, blanks around.
func readCookieSecret(path string) ([transport.CookieSecretLen]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return [transport.CookieSecretLen]byte{}, fmt.Errorf("--cookie-secret-file: %w", err)
	}
	s, err := transport.ParseCookieSecret(strings.TrimSpace(string(b)))
	if err != nil {
		return s, fmt.Errorf("--cookie-secret-file %s: %w", path, err)
	}
	return s, nil
}

// rotateRandom replaces the secret with a fresh random one.
func (r *cookieRotation) rotateRandom() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cookies.Rotate(transport.RandomCookieSecret())
	r.rotations++
	r.log.Info("server cookie secret rotated", "next_in", r.every)
}

// reloadFile re-reads the secret file and rotates to its secret when it
// changed, reporting whether it did. A file that cannot be read or parsed
// changes nothing: the running secret keeps serving.
func (r *cookieRotation) reloadFile() (bool, error) {
	if r == nil || r.file == "" {
		return false, nil
	}
	s, err := readCookieSecret(r.file)
	if err != nil {
		return false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s == r.fromFile {
		return false, nil
	}
	r.cookies.Rotate(s)
	r.fromFile = s
	r.rotations++
	r.log.Info("server cookie secret rotated to the secret file's new one", "file", r.file)
	return true, nil
}

// Rotations counts the rotations done.
func (r *cookieRotation) Rotations() uint64 {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rotations
}

// start rotates a random secret every r.every until ctx ends, and returns
// what stops it. With a secret file, or a period of 0, nothing runs. The
// timer is wall-clock time: the secret's age is about keeping secrets, not
// about DNS data (the cookies' own timestamps follow the DNS clock).
func (r *cookieRotation) start(ctx context.Context) (stop func()) {
	if r == nil || r.file != "" || r.every <= 0 {
		return func() {}
	}
	t := time.NewTicker(r.every)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.run(ctx, t.C)
	}()
	return func() {
		cancel()
		t.Stop()
		<-done
	}
}

// run rotates at each tick until ctx ends; tests drive it with their own
// ticks.
func (r *cookieRotation) run(ctx context.Context, ticks <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			r.rotateRandom()
		}
	}
}
