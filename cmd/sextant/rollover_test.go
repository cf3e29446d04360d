package main

import (
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
	"github.com/sextant-dns/sextant/internal/labtest"
	"github.com/sextant-dns/sextant/lab"
	"github.com/sextant-dns/sextant/security"
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

// loadStateFile reads the RFC 5011 state file as a restarted server would.
func loadStateFile(t *testing.T, path string) *validator.ManagedAnchors {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := validator.LoadManagedAnchors(f)
	if err != nil {
		t.Fatalf("state file: %v", err)
	}
	return m
}

// forgedRootKeys is the root DNSKEY RRset that whoever holds ksk's private
// half could serve after its revocation: ksk unrevoked and zsk, signed by
// ksk alone.
func forgedRootKeys(t *testing.T, ksk, zsk *authority.Key, now time.Time) ([]dns.RR, []*dns.RRSIG) {
	t.Helper()
	set := []dns.RR{dns.Copy(ksk.DNSKEY), dns.Copy(zsk.DNSKEY)}
	sig := &dns.RRSIG{
		Hdr:        dns.RR_Header{Name: lab.Root, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: 3600},
		Algorithm:  ksk.DNSKEY.Algorithm,
		KeyTag:     ksk.Tag(),
		SignerName: lab.Root,
		Inception:  uint32(now.Add(-time.Hour).Unix()),
		Expiration: uint32(now.Add(24 * time.Hour).Unix()),
	}
	if err := sig.Sign(ksk.Private, set); err != nil {
		t.Fatal(err)
	}
	return set, []*dns.RRSIG{sig}
}

// acceptsForged reports whether the anchors in the state file at path
// validate the set forgedRootKeys makes with ksk.
func acceptsForged(t *testing.T, path string, ksk, zsk *authority.Key, now time.Time) bool {
	t.Helper()
	set, sigs := forgedRootKeys(t, ksk, zsk, now)
	res, _ := loadStateFile(t, path).VerifyDNSKEYs(lab.Root, set, sigs, now, nil)
	return res.Status == security.Secure
}

// rootKeys returns the lab root's KSK and ZSK.
func rootKeys(t *testing.T, l *lab.Lab) (ksk, zsk *authority.Key) {
	t.Helper()
	for _, k := range l.Keys(lab.Root) {
		if k.IsSEP() {
			ksk = k
		} else {
			zsk = k
		}
	}
	if ksk == nil || zsk == nil {
		t.Fatal("the lab root has no KSK and ZSK")
	}
	return ksk, zsk
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
	l := labtest.Start(t, lab.Config{AddrBase: rolloverLabBase, Clock: clk, BulkHosts: -1})
	if err := l.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	oldKSK, zsk := rootKeys(t, l)
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
		if !acceptsForged(t, state, oldKSK, zsk, now) {
			t.Fatal("control: the state file does not accept a set signed by the old KSK before its revocation")
		}
		step(2*time.Hour, "old KSK revoked")
		waitKeyState(t, state, oldKSK, validator.KeyRevoked)
		waitKeyState(t, state, newKSK, validator.KeyValid)
		if acceptsForged(t, state, oldKSK, zsk, now) {
			t.Fatal("after the revocation, the state file accepts a set forged with the old KSK")
		}

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

// TestServeRootKSKOnlyAnchorRevoked: the old KSK revokes itself while the
// new one is still in its add hold-down, so the revoked key was the only
// trust anchor and nothing else validates the revocation. `sextant serve`
// must still take it (RFC 5011 2.1): the state file says REVOKED, a set
// forged with the old private key is rejected, and the server, with no
// anchor left, answers SERVFAIL (fails closed), restarted or not.
func TestServeRootKSKOnlyAnchorRevoked(t *testing.T) {
	dir := t.TempDir()
	clockPath := filepath.Join(dir, "faketime")
	now := time.Now().UTC().Truncate(time.Second)
	setClockFile(t, clockPath, now)
	clk, err := clock.NewFile(clockPath)
	if err != nil {
		t.Fatal(err)
	}
	l := labtest.Start(t, lab.Config{AddrBase: rolloverLabBase, Clock: clk, BulkHosts: -1})
	if err := l.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	oldKSK, zsk := rootKeys(t, l)
	hints, rootDS := filepath.Join(dir, lab.FileRootHints), filepath.Join(dir, lab.FileRootDS)
	state := filepath.Join(dir, "anchors.state")
	secure := "www." + lab.SecureAlg13
	move := func(d time.Duration) {
		t.Helper()
		now = now.Add(d)
		setClockFile(t, clockPath, now)
		if err := l.Resign(); err != nil {
			t.Fatal(err)
		}
	}
	wantRcode := func(listen, when string, rcode int, ad bool) {
		t.Helper()
		if m := digDNSSEC(t, listen, secure, dns.TypeA, false); m.Rcode != rcode || m.AuthenticatedData != ad {
			t.Fatalf("%s: %s %s AD=%v, want %s AD=%v", when, secure, dns.RcodeToString[m.Rcode], m.AuthenticatedData, dns.RcodeToString[rcode], ad)
		}
	}

	const listen = "127.56.255.4:53"
	startServe(t, listen, "--root-hints", hints, "--trust-anchor", rootDS, "--trust-anchor-state", state, "--clock-file", clockPath)
	waitKeyState(t, state, oldKSK, validator.KeyValid)
	wantRcode(listen, "start", dns.RcodeSuccess, true)

	newKSK, err := l.AddRootKSK(dns.ECDSAP256SHA256)
	if err != nil {
		t.Fatal(err)
	}
	move(2 * time.Hour)
	wantRcode(listen, "new KSK published", dns.RcodeSuccess, true)
	waitKeyState(t, state, newKSK, validator.KeyAddPend)
	if !acceptsForged(t, state, oldKSK, zsk, now) {
		t.Fatal("control: the state file does not accept a set signed by the old KSK, its only anchor")
	}

	// Revoked a day into the new key's hold-down.
	move(24 * time.Hour)
	if _, err := l.RevokeRootKSK(oldKSK); err != nil {
		t.Fatal(err)
	}
	move(2 * time.Hour)
	wantRcode(listen, "only anchor revoked", dns.RcodeServerFailure, false)
	waitKeyState(t, state, oldKSK, validator.KeyRevoked)
	if m := loadStateFile(t, state); m.State(lab.Root, newKSK.DNSKEY) == validator.KeyValid {
		t.Fatal("the new KSK became trusted before its hold-down")
	}
	if acceptsForged(t, state, oldKSK, zsk, now) {
		t.Fatal("the state file accepts a set forged with the revoked KSK")
	}
	move(2 * time.Hour)
	wantRcode(listen, "only anchor revoked, later", dns.RcodeServerFailure, false)

	const restarted = "127.56.255.5:53"
	startServe(t, restarted, "--root-hints", hints, "--trust-anchor-state", state, "--clock-file", clockPath)
	wantRcode(restarted, "restarted from the state file", dns.RcodeServerFailure, false)
}
