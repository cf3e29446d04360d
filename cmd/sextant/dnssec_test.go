package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/internal/labtest"
	"github.com/sextant-dns/sextant/lab"
)

// The DNSSEC tests' loopback block: the lab on 127.52.0.0/16 (offsets
// .0.x), the servers under test on 127.52.255.x.
var dnssecLabBase = netip.MustParseAddr("127.52.0.0")

func startDNSSECLab(t *testing.T) string {
	t.Helper()
	return labtest.StartFiles(t, lab.Config{AddrBase: dnssecLabBase, BulkHosts: 2})
}

// startServe runs `sextant serve` with args on listen until the test ends
// and waits for it to answer.
func startServe(t *testing.T, listen string, args ...string) *syncBuffer {
	t.Helper()
	return startServeProbe(t, listen, ".", dns.TypeNS, args...)
}

// startServeProbe runs `sextant serve --listen listen args...` until the
// test ends and waits until a query for probe/qtype gets any answer from
// listen; it fails the test when serve exits first or 5 s pass.
func startServeProbe(t *testing.T, listen, probe string, qtype uint16, args ...string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	exit := make(chan int, 1)
	all := append([]string{"serve", "--listen", listen}, args...)
	go func() { exit <- run(ctx, all, out, out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exit:
		case <-time.After(5 * time.Second):
			t.Error("serve did not shut down")
		}
	})
	c := &dns.Client{Timeout: time.Second}
	q := new(dns.Msg).SetQuestion(probe, qtype)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, _, err := c.Exchange(q, listen); err == nil {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("sextant serve on %s does not answer\n%s", listen, out.String())
		}
		select {
		case code := <-exit:
			t.Fatalf("serve exited %d\n%s", code, out.String())
		default:
		}
	}
}

// digDNSSEC asks like `dig +dnssec` (DO=1, AD=1), over TCP when truncated.
func digDNSSEC(t *testing.T, server, name string, qtype uint16, cd bool) *dns.Msg {
	t.Helper()
	q := new(dns.Msg).SetQuestion(name, qtype)
	q.SetEdns0(1232, true)
	q.AuthenticatedData = true
	q.CheckingDisabled = cd
	c := &dns.Client{Timeout: 5 * time.Second}
	m, _, err := c.Exchange(q, server)
	if err == nil && m.Truncated {
		c.Net = "tcp"
		m, _, err = c.Exchange(q, server)
	}
	if err != nil {
		t.Fatalf("%s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return m
}

// caseEDE is the EDE the cases with one must carry.
var caseEDE = map[string]int{
	"bogus-sig": 6, "bogus-nosig": 10, "expired": 7, "future": 8, "bad-ds": 9,
	"unsigned-dnskey": 10, "nodenial-nxdomain": 12, "cname-bogus": 6,
	"unknown-alg": 1, "unknown-digest": 2, "iter100-nxdomain": 27,
}

// TestDNSSECServeLabCases asks a running `sextant serve` every case of the
// lab's table, as DNSSEC-CASES.md records it, and the bogus cases again
// with CD=1.
func TestDNSSECServeLabCases(t *testing.T) {
	dir := startDNSSECLab(t)
	const listen = "127.52.255.1:53"
	startServe(t, listen, "--root-hints", filepath.Join(dir, lab.FileRootHints),
		"--trust-anchor", filepath.Join(dir, lab.FileRootDS))
	for _, c := range lab.Cases() {
		m := digDNSSEC(t, listen, c.QName, c.QType, false)
		rc, ad, data := m.Rcode, m.AuthenticatedData, len(m.Answer) > 0
		var ok bool
		switch c.Expect {
		case lab.ExpectSecure:
			ok = rc == dns.RcodeSuccess && ad && data
		case lab.ExpectInsecure:
			ok = rc == dns.RcodeSuccess && !ad && data
		case lab.ExpectBogus, lab.ExpectServfail:
			ok = rc == dns.RcodeServerFailure && !ad && !data
		case lab.ExpectNXDomainSecure:
			ok = rc == dns.RcodeNameError && ad
		case lab.ExpectNXDomainInsecure:
			ok = rc == dns.RcodeNameError && !ad
		case lab.ExpectNXDomain:
			ok = rc == dns.RcodeNameError
		case lab.ExpectNoDataSecure:
			ok = rc == dns.RcodeSuccess && ad && !data
		}
		if want, has := caseEDE[c.Name]; has && dnstest.EDECode(m) != want {
			ok = false
		}
		if !ok {
			t.Errorf("%s (%s %s): %s AD=%v EDE=%d answers=%d, want %s (EDE %v)", c.Name, c.QName, dns.TypeToString[c.QType],
				dns.RcodeToString[rc], ad, dnstest.EDECode(m), len(m.Answer), c.Expect, caseEDE[c.Name])
		}
		if c.Expect == lab.ExpectBogus && c.Name != "nodenial-nxdomain" {
			if m := digDNSSEC(t, listen, c.QName, c.QType, true); m.Rcode != dns.RcodeSuccess || m.AuthenticatedData || len(m.Answer) == 0 {
				t.Errorf("%s with CD=1: %s AD=%v answers=%d, want the data without AD", c.Name, dns.RcodeToString[m.Rcode], m.AuthenticatedData, len(m.Answer))
			}
		}
	}
}

// TestDNSSECServeSwitches: --negative-trust-anchor, --no-dnssec, and custom
// root hints without --trust-anchor (validation off, said once).
func TestDNSSECServeSwitches(t *testing.T) {
	dir := startDNSSECLab(t)
	hints := filepath.Join(dir, lab.FileRootHints)
	anchor := filepath.Join(dir, lab.FileRootDS)
	bogus, secure := "www."+lab.BogusSig, "www."+lab.SecureAlg13
	for _, tc := range []struct {
		name             string
		listen           string
		args             []string
		bogusRcode       int
		secureAD         bool
		logWant, logOnce string
	}{
		{"negative trust anchor", "127.52.255.2:53", []string{"--trust-anchor", anchor, "--negative-trust-anchor", lab.BogusSig},
			dns.RcodeSuccess, true, "DNSSEC validation is on", ""},
		{"no-dnssec", "127.52.255.3:53", []string{"--trust-anchor", anchor, "--no-dnssec"},
			dns.RcodeSuccess, false, "DNSSEC validation is off (--no-dnssec)", ""},
		{"own root, no anchor", "127.52.255.4:53", nil,
			dns.RcodeSuccess, false, "DNSSEC validation is off", "DNSSEC validation is off"},
		{"validating", "127.52.255.5:53", []string{"--trust-anchor", anchor},
			dns.RcodeServerFailure, true, "DNSSEC validation is on", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := startServe(t, tc.listen, append([]string{"--root-hints", hints}, tc.args...)...)
			if m := digDNSSEC(t, tc.listen, bogus, dns.TypeA, false); m.Rcode != tc.bogusRcode || m.AuthenticatedData {
				t.Errorf("%s: %s AD=%v, want %s without AD", bogus, dns.RcodeToString[m.Rcode], m.AuthenticatedData, dns.RcodeToString[tc.bogusRcode])
			}
			if m := digDNSSEC(t, tc.listen, secure, dns.TypeA, false); m.Rcode != dns.RcodeSuccess || m.AuthenticatedData != tc.secureAD {
				t.Errorf("%s: %s AD=%v, want AD=%v", secure, dns.RcodeToString[m.Rcode], m.AuthenticatedData, tc.secureAD)
			}
			out := log.String()
			if !strings.Contains(out, tc.logWant) {
				t.Errorf("log lacks %q:\n%s", tc.logWant, out)
			}
			if tc.logOnce != "" && strings.Count(out, tc.logOnce) != 1 {
				t.Errorf("%q logged %d times, want once", tc.logOnce, strings.Count(out, tc.logOnce))
			}
		})
	}
}

// TestDNSSECServeTrustAnchorState: --trust-anchor-state starts the RFC 5011
// state from the root DS, rewrites it once the root KSK is validated, and
// the file alone is enough for the next start.
func TestDNSSECServeTrustAnchorState(t *testing.T) {
	dir := startDNSSECLab(t)
	hints := filepath.Join(dir, lab.FileRootHints)
	state := filepath.Join(t.TempDir(), "anchors.state")
	secure := "www." + lab.SecureAlg13

	func() {
		const listen = "127.52.255.6:53"
		startServe(t, listen, "--root-hints", hints, "--trust-anchor", filepath.Join(dir, lab.FileRootDS), "--trust-anchor-state", state)
		// Written at start (from the DS), then refreshed in the background.
		if b, err := os.ReadFile(state); err != nil || !(strings.Contains(string(b), " DS ") || strings.Contains(string(b), "VALID")) {
			t.Fatalf("initial state: %v\n%s", err, b)
		}
		if m := digDNSSEC(t, listen, secure, dns.TypeA, false); !m.AuthenticatedData {
			t.Fatalf("%s: %s without AD", secure, dns.RcodeToString[m.Rcode])
		}
		var b []byte
		for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(20 * time.Millisecond) {
			if b, _ = os.ReadFile(state); strings.Contains(string(b), "VALID") {
				break
			}
		}
		if !strings.Contains(string(b), "VALID") || !strings.Contains(string(b), "DNSKEY") || strings.Contains(string(b), " DS ") {
			t.Fatalf("state after the refresh:\n%s", b)
		}
	}()

	const listen = "127.52.255.7:53"
	startServe(t, listen, "--root-hints", hints, "--trust-anchor-state", state)
	if m := digDNSSEC(t, listen, secure, dns.TypeA, false); !m.AuthenticatedData {
		t.Fatalf("from the state file alone: %s without AD", dns.RcodeToString[m.Rcode])
	}
	if m := digDNSSEC(t, listen, "www."+lab.BogusSig, dns.TypeA, false); m.Rcode != dns.RcodeServerFailure {
		t.Fatalf("from the state file alone, bogus: %s", dns.RcodeToString[m.Rcode])
	}
	// Without the file and without anchors: a clear error.
	var stderr syncBuffer
	if code := run(context.Background(), []string{"serve", "--listen", "127.52.255.8:53", "--root-hints", hints,
		"--trust-anchor-state", filepath.Join(t.TempDir(), "missing")}, &stderr, &stderr); code == 0 ||
		!strings.Contains(stderr.String(), "give --trust-anchor") {
		t.Fatalf("missing state without anchors: exit %d\n%s", code, stderr.String())
	}
}

// TestDNSSECServeClockFile: the validator follows --clock-file like the
// cache: the future zone turns secure once its window opens, everything is
// expired (EDE 7) past the lab's 30-day signatures, and not yet valid
// (EDE 8) before their inception.
func TestDNSSECServeClockFile(t *testing.T) {
	dir := startDNSSECLab(t)
	now := time.Now().UTC().Truncate(time.Second)
	for i, tc := range []struct {
		what  string
		at    time.Time
		name  string
		rcode int
		ad    bool
		ede   int
	}{
		{"future zone now", now, "www." + lab.Future, dns.RcodeServerFailure, false, 8},
		{"future zone in 11 days", now.Add(11 * 24 * time.Hour), "www." + lab.Future, dns.RcodeSuccess, true, -1},
		{"in 31 days", now.Add(31 * 24 * time.Hour), "www." + lab.SecureAlg13, dns.RcodeServerFailure, false, 7},
		{"2 hours ago", now.Add(-2 * time.Hour), "www." + lab.SecureAlg13, dns.RcodeServerFailure, false, 8},
	} {
		clockPath := filepath.Join(t.TempDir(), "faketime")
		if err := os.WriteFile(clockPath, []byte(tc.at.Format("@2006-01-02 15:04:05")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		listen := fmt.Sprintf("127.52.254.%d:53", i+1)
		startServe(t, listen, "--root-hints", filepath.Join(dir, lab.FileRootHints),
			"--trust-anchor", filepath.Join(dir, lab.FileRootDS), "--clock-file", clockPath)
		m := digDNSSEC(t, listen, tc.name, dns.TypeA, false)
		if m.Rcode != tc.rcode || m.AuthenticatedData != tc.ad || dnstest.EDECode(m) != tc.ede {
			t.Errorf("%s, %s: %s AD=%v EDE=%d, want %s AD=%v EDE=%d", tc.what, tc.name, dns.RcodeToString[m.Rcode],
				m.AuthenticatedData, dnstest.EDECode(m), dns.RcodeToString[tc.rcode], tc.ad, tc.ede)
		}
	}
}
