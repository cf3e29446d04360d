package main

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/lab"
	"github.com/sextant-dns/sextant/validator"
)

// The root KSK rollover test's loopback block: the lab on 127.56.0.0/16
// (offsets .0.x), the servers under test on 127.56.255.x.
var rolloverLabBase = netip.MustParseAddr("127.56.0.0")

// rfc5011AddHoldDown is RFC 5011 2.4.1's add hold-down for keys whose TTL
// is under 30 days (the lab's is an hour), spelled out rather than taken
// from the validator so that the test checks the RFC.
const rfc5011AddHoldDown = 30 * 24 * time.Hour

// setClockFile moves the DNS time of everything that follows the
// libfaketime file at path. The modification time is set to the new DNS
// time as well, so that every move is seen even on a file system with
// coarse timestamps.
func setClockFile(t *testing.T, path string, at time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(at.UTC().Format("@2006-01-02 15:04:05")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

// waitKeyState waits until the RFC 5011 state file holds key k in state
// want; the background refresh of `sextant serve` writes it.
func waitKeyState(t *testing.T, path string, k *authority.Key, want validator.KeyState) {
	t.Helper()
	var got validator.KeyState
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := validator.LoadManagedAnchors(f)
		f.Close()
		if err != nil {
			t.Fatalf("state file: %v", err)
		}
		if got = m.State(lab.Root, k.DNSKEY); got == want {
			return
		}
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("key %d is %v in the state file, want %v:\n%s", k.Tag(), got, want, b)
}

// keyChanged returns when the state file says key k entered its current
// state (the third field of validator.ManagedAnchors.Save's key lines).
func keyChanged(t *testing.T, path string, k *authority.Key) time.Time {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] != "DS" && strings.Contains(line, k.DNSKEY.PublicKey) {
			unix, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				t.Fatalf("state file line %q: %v", line, err)
			}
			return time.Unix(unix, 0)
		}
	}
	t.Fatalf("key %d not in the state file:\n%s", k.Tag(), b)
	return time.Time{}
}

// TestServeRootKSKRollover runs `sextant serve --trust-anchor-state`
// through a root KSK roll with only its DNS clock (--clock-file) moved:
// the background refresh takes the new key into the state file after the
// 30-day hold-down and the old key's revocation; the server answers with
// AD throughout; started again from the state file alone, it still does.
func TestServeRootKSKRollover(t *testing.T) {
	dir := t.TempDir()
	clockPath := filepath.Join(dir, "faketime")
	now := time.Now().UTC().Truncate(time.Second)
	setClockFile(t, clockPath, now)
	clk, err := clock.NewFile(clockPath)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lab.Start(context.Background(), lab.Config{AddrBase: rolloverLabBase, Clock: clk, BulkHosts: -1})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	if err := l.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	var oldKSK *authority.Key
	for _, k := range l.Keys(lab.Root) {
		if k.IsSEP() {
			oldKSK = k
		}
	}
	hints, rootDS := filepath.Join(dir, lab.FileRootHints), filepath.Join(dir, lab.FileRootDS)
	state := filepath.Join(dir, "anchors.state")
	secure := "www." + lab.SecureAlg13
	wantAD := func(listen, when string) {
		t.Helper()
		if m := digDNSSEC(t, listen, secure, dns.TypeA, false); m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData {
			t.Fatalf("%s: %s %s AD=%v", when, secure, dns.RcodeToString[m.Rcode], m.AuthenticatedData)
		}
	}

	t.Run("long-running", func(t *testing.T) {
		const listen = "127.56.255.1:53"
		startServe(t, listen, "--root-hints", hints, "--trust-anchor", rootDS, "--trust-anchor-state", state, "--clock-file", clockPath)
		waitKeyState(t, state, oldKSK, validator.KeyValid)
		wantAD(listen, "start")
		// step moves the DNS time, re-signs the lab as its operator would,
		// and asks: a question is what starts a due refresh.
		step := func(d time.Duration, when string) {
			t.Helper()
			now = now.Add(d)
			setClockFile(t, clockPath, now)
			if err := l.Resign(); err != nil {
				t.Fatal(err)
			}
			wantAD(listen, when)
		}

		newKSK, err := l.AddRootKSK(dns.ECDSAP256SHA256)
		if err != nil {
			t.Fatal(err)
		}
		step(2*time.Hour, "new KSK published")
		waitKeyState(t, state, newKSK, validator.KeyAddPend)
		firstSeen := keyChanged(t, state, newKSK)
		for range 6 {
			step(5*24*time.Hour+time.Hour, "hold-down")
		}
		waitKeyState(t, state, newKSK, validator.KeyValid)
		if held := keyChanged(t, state, newKSK).Sub(firstSeen); held < rfc5011AddHoldDown {
			t.Errorf("the new KSK became valid %v after it was first seen, before the 30-day hold-down", held)
		}

		if _, err := l.RevokeRootKSK(oldKSK); err != nil {
			t.Fatal(err)
		}
		step(2*time.Hour, "old KSK revoked")
		waitKeyState(t, state, oldKSK, validator.KeyRevoked)

		if err := l.RemoveRootKSK(oldKSK); err != nil {
			t.Fatal(err)
		}
		step(2*time.Hour, "old KSK removed")
	})

	t.Run("restarted from the state file", func(t *testing.T) {
		const listen = "127.56.255.2:53"
		startServe(t, listen, "--root-hints", hints, "--trust-anchor-state", state, "--clock-file", clockPath)
		wantAD(listen, "restarted")
	})

	t.Run("old DS only", func(t *testing.T) {
		const listen = "127.56.255.3:53"
		startServe(t, listen, "--root-hints", hints, "--trust-anchor", rootDS, "--clock-file", clockPath)
		if m := digDNSSEC(t, listen, secure, dns.TypeA, false); m.Rcode != dns.RcodeServerFailure {
			t.Errorf("with the old root DS: %s AD=%v, want SERVFAIL", dns.RcodeToString[m.Rcode], m.AuthenticatedData)
		}
	})
}
