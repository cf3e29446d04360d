package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/internal/labtest"
	"github.com/sextant-dns/sextant/lab"
)

// Loopback block of this package's tests: the lab on 127.50.0.0/16, sextant
// serve on 127.51.0.0/16 (see ARCHITECTURE.md).
var (
	labBase     = netip.MustParseAddr("127.50.0.0")
	serveListen = "127.51.0.1:53"
	serveDoT    = "127.51.0.1:853"
	serveDoH    = "127.51.0.1:443"
)

// startLab starts the lab once for the package's tests and writes its files.
func startLab(t *testing.T) (dir string) {
	t.Helper()
	return labtest.StartFiles(t, lab.Config{AddrBase: labBase, BulkHosts: 10})
}

// syncBuffer is the output of a running command (safe for its concurrent
// writes).
type syncBuffer = dnstest.Buffer

func TestServeResolvesThroughLabAndShutsDownCleanly(t *testing.T) {
	dir := startLab(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	exit := make(chan int, 1)
	start := time.Now()
	go func() {
		exit <- run(ctx, []string{"serve", "--listen", serveListen,
			"--root-hints", filepath.Join(dir, lab.FileRootHints),
			"--trust-anchor", filepath.Join(dir, lab.FileRootDS),
			"--dot", serveDoT, "--doh", serveDoH}, &stderr, &stderr)
	}()

	// The listeners open within a second, before priming finishes.
	c := &dns.Client{Timeout: 2 * time.Second}
	q := new(dns.Msg).SetQuestion("www."+lab.SecureAlg13, dns.TypeA)
	var resp *dns.Msg
	var err error
	for time.Since(start) < 3*time.Second {
		if resp, _, err = c.Exchange(q, serveListen); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("no answer from sextant serve: %v\n%s", err, stderr.String())
	}
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) == 0 {
		t.Fatalf("www.%s A: rcode %s, %d answers\n%s", lab.SecureAlg13, dns.RcodeToString[resp.Rcode], len(resp.Answer), resp)
	}
	if !resp.RecursionAvailable {
		t.Error("RA not set")
	}
	// TCP answers too.
	tc := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	if resp, _, err = tc.Exchange(q, serveListen); err != nil || resp.Rcode != dns.RcodeSuccess {
		t.Fatalf("over TCP: %v %v", err, resp)
	}

	// DNS over TLS, with the self-signed certificate.
	tlsc := &dns.Client{Net: "tcp-tls", Timeout: 2 * time.Second, TLSConfig: &tls.Config{InsecureSkipVerify: true}}
	if resp, _, err = tlsc.Exchange(q, serveDoT); err != nil || resp.Rcode != dns.RcodeSuccess || len(resp.Answer) == 0 {
		t.Fatalf("over DoT: %v %v", err, resp)
	}
	// DNS over HTTPS, RFC 8484 GET with ID 0 as browsers send it.
	q.Id = 0
	wire, _ := q.Pack()
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	hr, err := hc.Get("https://" + serveDoH + "/dns-query?dns=" + base64.RawURLEncoding.EncodeToString(wire))
	if err != nil {
		t.Fatalf("over DoH: %v", err)
	}
	body, _ := io.ReadAll(hr.Body)
	hr.Body.Close()
	dm := new(dns.Msg)
	if hr.StatusCode != http.StatusOK || dm.Unpack(body) != nil || len(dm.Answer) == 0 {
		t.Fatalf("over DoH: status %d, %v", hr.StatusCode, dm)
	}

	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("serve exited %d, want 0\n%s", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not shut down")
	}
}

func TestQueryCommand(t *testing.T) {
	dir := startLab(t)
	var stdout, stderr syncBuffer
	code := run(context.Background(), []string{"query", "--root-hints", filepath.Join(dir, lab.FileRootHints),
		"--trace", "www." + lab.SecureAlg15, "A"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"rcode NOERROR", "www." + lab.SecureAlg15, ";; "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no command", nil, 2},
		{"unknown command", []string{"frobnicate"}, 2},
		{"unknown flag", []string{"serve", "--no-such-flag"}, 2},
		{"bad allow", []string{"serve", "--allow", "not-a-cidr"}, 2},
		{"stray argument", []string{"serve", "extra"}, 2},
		{"missing hints file", []string{"serve", "--root-hints", "/nonexistent/root.hints", "--listen", "127.51.0.2:53"}, 1},
		{"bad cache size", []string{"serve", "--cache-size", "0", "--listen", "127.51.0.2:53"}, 1},
		{"bad cache bytes", []string{"serve", "--cache-max-bytes", "-1", "--listen", "127.51.0.2:53"}, 1},
		{"tls cert without key", []string{"serve", "--tls-cert", "x.pem", "--dot", "127.51.0.2:853", "--listen", "127.51.0.2:53"}, 1},
		{"bad log level", []string{"serve", "--log-level", "loud", "--listen", "127.51.0.2:53"}, 1},
		{"negative connection share", []string{"serve", "--conns-per-client", "-1", "--listen", "127.51.0.2:53"}, 1},
		{"query without name", []string{"query"}, 2},
		{"query bad type", []string{"query", "example.", "NOTATYPE"}, 1},
		{"help", []string{"help"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			if got := run(context.Background(), tc.args, &out, &out); got != tc.want {
				t.Errorf("run(%q) = %d, want %d\n%s", tc.args, got, tc.want, out.String())
			}
		})
	}
}

// TestClockFileMovesTTLs starts serve with --clock-file, then moves DNS time
// forward in the file mid-run: cached TTLs count down by the file's time and,
// once expired, the answer is fetched again from the lab.
func TestClockFileMovesTTLs(t *testing.T) {
	dir := startLab(t)
	clockPath := filepath.Join(t.TempDir(), "faketime")
	setClock := func(ts time.Time) {
		t.Helper()
		if err := os.WriteFile(clockPath, []byte(ts.UTC().Format("@2006-01-02 15:04:05")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now().UTC().Truncate(time.Second)
	setClock(start)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	exit := make(chan int, 1)
	const listen = "127.51.0.3:53"
	go func() {
		exit <- run(ctx, []string{"serve", "--listen", listen, "--clock-file", clockPath,
			"--root-hints", filepath.Join(dir, lab.FileRootHints)}, &stderr, &stderr)
	}()
	defer func() { cancel(); <-exit }()

	c := &dns.Client{Timeout: 2 * time.Second}
	ask := func() uint32 {
		t.Helper()
		q := new(dns.Msg).SetQuestion("www."+lab.SecureAlg13, dns.TypeA)
		var resp *dns.Msg
		var err error
		for i := 0; i < 100; i++ {
			if resp, _, err = c.Exchange(q, listen); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil || len(resp.Answer) == 0 {
			t.Fatalf("no answer: %v %v\n%s", err, resp, stderr.String())
		}
		return resp.Answer[0].Header().Ttl
	}
	first := ask()
	if first < 3000 {
		t.Fatalf("first TTL %d, want the zone's 3600 or close", first)
	}
	setClock(start.Add(1000 * time.Second))
	if got := ask(); got > first-990 || got < first-1010 {
		t.Fatalf("after 1000 s of DNS time the TTL is %d, want about %d", got, first-1000)
	}
	// Past expiry the record is fetched again with a fresh TTL.
	setClock(start.Add(2 * time.Hour))
	if got := ask(); got < 3000 {
		t.Fatalf("after expiry the TTL is %d, want a fresh one near 3600", got)
	}
}

// TestZoneServedLocallyAndReloadedOnSIGHUP serves a --zone file from the
// co-located authoritative backend (no lab, no network hop), then changes
// the file and sends SIGHUP: the new data is served, a broken file keeps it.
func TestZoneServedLocallyAndReloadedOnSIGHUP(t *testing.T) {
	zonePath := filepath.Join(t.TempDir(), "corp.zone")
	writeZone := func(addr string) {
		t.Helper()
		z := "$ORIGIN corp.internal.\n$TTL 300\n" +
			"@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 10.0.0.53\nwww A " + addr + "\n"
		if err := os.WriteFile(zonePath, []byte(z), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeZone("10.0.0.1")
	hints := filepath.Join(startLab(t), lab.FileRootHints)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	exit := make(chan int, 1)
	const listen = "127.51.0.4:53"
	go func() {
		exit <- run(ctx, []string{"serve", "--listen", listen, "--zone", zonePath,
			"--root-hints", hints}, &stderr, &stderr)
	}()
	defer func() { cancel(); <-exit }()

	c := &dns.Client{Timeout: 2 * time.Second}
	ask := func() *dns.Msg {
		t.Helper()
		q := new(dns.Msg).SetQuestion("www.corp.internal.", dns.TypeA)
		for i := 0; i < 100; i++ {
			if resp, _, err := c.Exchange(q, listen); err == nil {
				return resp
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("no answer\n%s", stderr.String())
		return nil
	}
	answerIs := func(resp *dns.Msg, want string) bool {
		return resp.Rcode == dns.RcodeSuccess && len(resp.Answer) == 1 && resp.Answer[0].(*dns.A).A.String() == want
	}
	resp := ask()
	if !answerIs(resp, "10.0.0.1") || !resp.Authoritative {
		t.Fatalf("local zone answer: %v", resp)
	}

	reload := func() {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	writeZone("10.0.0.2")
	reload()
	deadline := time.Now().Add(2 * time.Second)
	for !answerIs(ask(), "10.0.0.2") {
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not reload the zone\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A broken file is refused and the last good version keeps serving.
	if err := os.WriteFile(zonePath, []byte("www A 10.0.0.3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reload()
	for !strings.Contains(stderr.String(), "zone reload failed") {
		if time.Now().After(deadline.Add(2 * time.Second)) {
			t.Fatalf("no reload failure logged\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resp := ask(); !answerIs(resp, "10.0.0.2") {
		t.Fatalf("after a failed reload: %v", resp)
	}
}

// TestQueryReportsFailures: a bogus answer is printed with its status and
// reason, exits 1, and an informational EDE on an answer is not an error.
func TestQueryReportsFailures(t *testing.T) {
	dir := startLab(t)
	flags := []string{"query", "--root-hints", filepath.Join(dir, lab.FileRootHints), "--trust-anchor", filepath.Join(dir, lab.FileRootDS)}
	tests := []struct {
		name     string
		args     []string
		wantExit int
		want     []string
	}{
		{"bogus", []string{"www." + lab.BogusSig, "A"}, 1, []string{"rcode SERVFAIL, security bogus", ";; error:", "EDE 6"}},
		{"secure", []string{"www." + lab.SecureAlg13, "A"}, 0, []string{"rcode NOERROR, security secure"}},
		{"insecure with EDE 27", []string{"nonexistent." + lab.HighIterations, "A"}, 0, []string{"rcode NXDOMAIN, security insecure", ";; extended error:", "EDE 27"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			code := run(context.Background(), append(append([]string{}, flags...), tc.args...), &out, &out)
			if code != tc.wantExit {
				t.Errorf("exit %d, want %d\n%s", code, tc.wantExit, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// writeDeadHints writes root hints naming one loopback server in this
// test's block where nothing listens: serve starts without a lab, and its
// priming fails quietly on loopback.
func writeDeadHints(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "root.hints")
	if err := os.WriteFile(p, []byte(". 3600000 NS a.root.test.\na.root.test. 3600000 A 127.72.0.99\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitForLog waits until out holds want.
func waitForLog(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("no %q logged\n%s", want, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSecondServeOnSameAddressRefused: a second `sextant serve` on the
// address of a running one exits 1, naming the address, instead of
// silently sharing the port and taking part of the queries (issue 8). The
// first keeps answering.
func TestSecondServeOnSameAddressRefused(t *testing.T) {
	const listen = "127.72.0.1:53"
	hints := writeDeadHints(t)
	args := []string{"serve", "--listen", listen, "--root-hints", hints}
	ctx, cancel := context.WithCancel(context.Background())
	var first syncBuffer
	exit := make(chan int, 1)
	go func() { exit <- run(ctx, args, &first, &first) }()
	defer func() { cancel(); <-exit }()
	waitForLog(t, &first, "do53 listening")

	for _, second := range [][]string{
		args,
		{"serve", "--listen", "127.72.0.1:53", "--listen", "127.72.0.2:53", "--root-hints", hints},
	} {
		var out syncBuffer
		done := make(chan int, 1)
		go func() { done <- run(context.Background(), second, &out, &out) }()
		select {
		case code := <-done:
			if code != 1 {
				t.Errorf("second serve %q exited %d, want 1\n%s", second, code, out.String())
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("second serve %q did not refuse to start\n%s", second, out.String())
		}
		if msg := out.String(); !strings.Contains(msg, listen) || !strings.Contains(msg, "already served") {
			t.Errorf("second serve's error does not name %s as already served:\n%s", listen, msg)
		}
	}
	// Nothing of the second is left on its other address.
	for _, proto := range []string{"udp", "tcp"} {
		var err error
		if proto == "udp" {
			var c net.PacketConn
			if c, err = net.ListenPacket(proto, "127.72.0.2:53"); err == nil {
				c.Close()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen(proto, "127.72.0.2:53"); err == nil {
				l.Close()
			}
		}
		if err != nil {
			t.Errorf("%s 127.72.0.2:53 still held after the second serve failed: %v", proto, err)
		}
	}
	// The first still answers everything, over UDP and TCP.
	for _, proto := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
		for i := range 10 {
			if _, _, err := c.Exchange(new(dns.Msg).SetQuestion(fmt.Sprintf("q%d.example.", i), dns.TypeA), listen); err != nil {
				t.Fatalf("first serve over %s: %v\n%s", proto, err, first.String())
			}
		}
	}
}

// TestZoneRemovedByReloadStopsServing: after SIGHUP, a zone whose file is
// gone, or whose file now holds another origin, is no longer answered
// locally (issue 8: it kept answering until a restart); its names go to the
// resolver like any other, and the removal is logged with the reason. The
// file's new origin is served.
func TestZoneRemovedByReloadStopsServing(t *testing.T) {
	dir := t.TempDir()
	writeZone := func(name, origin, addr string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		z := "$ORIGIN " + origin + "\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 10.0.0.53\nwww A " + addr + "\n"
		if err := os.WriteFile(p, []byte(z), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	corp := writeZone("corp.zone", "corp.internal.", "10.0.0.1")
	other := writeZone("other.zone", "other.internal.", "10.0.1.1")
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	exit := make(chan int, 1)
	const listen = "127.72.0.3:53"
	go func() {
		exit <- run(ctx, []string{"serve", "--listen", listen, "--zone", corp, "--zone", other,
			"--root-hints", writeDeadHints(t)}, &stderr, &stderr)
	}()
	defer func() { cancel(); <-exit }()
	waitForLog(t, &stderr, "do53 listening")

	c := &dns.Client{Timeout: 3 * time.Second}
	ask := func(name string) *dns.Msg {
		t.Helper()
		resp, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), listen)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, stderr.String())
		}
		return resp
	}
	local := func(resp *dns.Msg, addr string) bool {
		return resp.Authoritative && resp.Rcode == dns.RcodeSuccess && len(resp.Answer) == 1 && resp.Answer[0].(*dns.A).A.String() == addr
	}
	if r := ask("www.corp.internal."); !local(r, "10.0.0.1") {
		t.Fatalf("corp.internal before the reload: %v", r)
	}
	if r := ask("www.other.internal."); !local(r, "10.0.1.1") {
		t.Fatalf("other.internal before the reload: %v", r)
	}

	writeZone("corp.zone", "moved.internal.", "10.0.2.1")
	if err := os.Remove(other); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(3 * time.Second); !local(ask("www.moved.internal."), "10.0.2.1"); {
		if time.Now().After(deadline) {
			t.Fatalf("the file's new origin is not served\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, name := range []string{"www.corp.internal.", "www.other.internal."} {
		// The resolver has it now: with these hints it cannot reach a root,
		// so SERVFAIL, and never the zone's authoritative answer.
		if r := ask(name); r.Authoritative || len(r.Answer) != 0 || r.Rcode == dns.RcodeSuccess {
			t.Errorf("%s still answered from the removed zone: %v", name, r)
		}
	}
	log := stderr.String()
	for _, want := range []string{
		`zone no longer served" zone=corp.internal. file=` + corp + ` reason="zone file now holds moved.internal."`,
		`zone no longer served" zone=other.internal. file=` + other + ` reason="zone file is gone"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s\n%s", want, log)
		}
	}
}
