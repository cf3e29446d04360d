package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// The secondary-zone tests use 127.77.60.0/24 (the secondary) and
// 127.0.0.1 with a free port (BIND, which binds only interface addresses).

// TestServeSecondaryFlagErrors: mistakes in the secondary-zone flags stop
// serve at start, with the flag and the reason.
func TestServeSecondaryFlagErrors(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keyFile, []byte("# keys\nhmac-sha256:good:c2V4dGFudC1zZWNvbmRhcnktdGVzdC1rZXktMzItYnl0ZXM=\nhmac-md5:bad:c2V4dGFudC1zZWNvbmRhcnktdGVzdC1rZXktMzItYnl0ZXM=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--secondary", "zone=example.test"}, `--secondary "zone=example.test": zone example.test.: no primary=ADDR[:PORT]`},
		{[]string{"--secondary", "zone=example.test primary=ns1.example"}, `primary "ns1.example": want ADDR, ADDR:PORT or [IPV6]:PORT`},
		{[]string{"--secondary", "zone=example.test primary=127.77.60.9 key=k"}, `key "k" is not defined`},
		{[]string{"--tsig-key", "hmac-sha1:k:c2V4dGFudC1zZWNvbmRhcnktdGVzdC1rZXktMzItYnl0ZXM=", "--secondary", "zone=a primary=127.77.60.9"}, `--tsig-key: TSIG key "k": algorithm "hmac-sha1" is not hmac-sha256 or hmac-sha512`},
		{[]string{"--tsig-key-file", keyFile, "--secondary", "zone=a primary=127.77.60.9"}, keyFile + `:3: TSIG key "bad": algorithm`},
		{[]string{"--secondary", "zone=a primary=127.77.60.9", "--secondary", "zone=A. primary=127.77.60.8"}, "zone a. declared twice"},
		{[]string{"--notify-listen", "127.77.60.1:5300"}, "--notify-listen without any --secondary zone"},
		{[]string{"--xfr-out", "zone=a allow=127.0.0.1", "--xfr-listen", "127.77.60.1:5353"}, "--xfr-out: zone a. is not served here"},
		{[]string{"--secondary", "zone=a primary=127.77.60.9", "--xfr-out", "zone=a allow=127.0.0.1"}, "--xfr-out without --xfr-listen"},
		{[]string{"--secondary", "zone=a primary=127.77.60.9", "--xfr-out", "zone=a", "--xfr-listen", "127.77.60.1:5353"}, "nobody could transfer it"},
		{[]string{"--xfr-listen", "127.77.60.1:5353"}, "--xfr-listen without any --xfr-out zone"},
	} {
		var stderr bytes.Buffer
		args := append([]string{"serve", "--listen", "127.77.60.1:53"}, tc.args...)
		if code := run(context.Background(), args, &stderr, &stderr); code == 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestServeHiddenPrimary: Sextant is the secondary of a BIND 9 primary
// that is not in the zone's NS set (a hidden primary); the resolver on the
// same Sextant answers the zone's names from the co-located copy (the NS
// addresses are not reachable: no network hop is possible), and a change
// on the primary is answered within 2 s of its NOTIFY.
func TestServeHiddenPrimary(t *testing.T) {
	dnstest.RequireTool(t, "named")
	if os.Geteuid() != 0 {
		t.Skip("serve listens on port 53: run as root")
	}
	dir := t.TempDir()
	port := dnstest.FreeLoopbackPort(t)
	zoneFile := filepath.Join(dir, "hidden.test.zone")
	writeHiddenZone := func(serial int, addr string) {
		text := fmt.Sprintf(`$ORIGIN hidden.test.
$TTL 300
@ SOA ns1.provider.example. hostmaster %d 3600 600 86400 300
@ NS ns1.provider.example.
@ NS ns2.provider.example.
www A %s
`, serial, addr)
		tmp := zoneFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, zoneFile); err != nil {
			t.Fatal(err)
		}
	}
	writeHiddenZone(1, "192.0.2.10")
	named := dnstest.StartBIND(t, dnstest.BIND{Dir: dir, Port: port, Options: []string{
		"notify explicit;",
		"notify-source 127.0.0.1;",
		"also-notify { 127.77.60.1 port 5300 key xfr-key; };",
		"notify-delay 0;",
		"ixfr-from-differences yes;",
	}, Conf: fmt.Sprintf(`key "xfr-key" { algorithm hmac-sha512; secret "c2V4dGFudC1zZWNvbmRhcnktdGVzdC1rZXktMzItYnl0ZXM="; };
zone "hidden.test" { type primary; file "%s"; allow-transfer { key xfr-key; }; };
`, zoneFile)})

	// Root hints that lead nowhere: any name outside the local zones
	// fails, so an answer can only come from the co-located copy.
	hints := filepath.Join(dir, "root.hints")
	if err := os.WriteFile(hints, []byte(". 3600 IN NS a.root.test.\na.root.test. 3600 IN A 127.77.60.9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "tsig.keys")
	if err := os.WriteFile(keyFile, []byte("hmac-sha512:xfr-key:c2V4dGFudC1zZWNvbmRhcnktdGVzdC1rZXktMzItYnl0ZXM=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := "127.77.60.1:53"
	log := startServe(t, listen, "--root-hints", hints, "--no-dnssec", "--log-level", "debug",
		"--state-dir", filepath.Join(dir, "state"), "--tsig-key-file", keyFile,
		"--secondary", fmt.Sprintf("zone=hidden.test primary=127.0.0.1:%d key=xfr-key", port),
		"--notify-listen", "127.77.60.1:5300")

	ask := func() (*dns.Msg, error) {
		q := new(dns.Msg).SetQuestion("www.hidden.test.", dns.TypeA)
		r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(q, listen)
		return r, err
	}
	waitFor := func(addr string, within time.Duration) time.Time {
		t.Helper()
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if r, err := ask(); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 &&
				r.Answer[0].(*dns.A).A.String() == addr {
				if !r.Authoritative {
					t.Fatalf("answer from the co-located copy without AA: %v", r)
				}
				return time.Now()
			}
		}
		r, err := ask()
		t.Fatalf("www.hidden.test not %s within %v: %v %v\n%s", addr, within, r, err, log.String())
		return time.Time{}
	}
	waitFor("192.0.2.10", 10*time.Second)
	saved := filepath.Join(dir, "state", "secondary", "hidden.test.zone")
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(saved); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the transferred zone was not saved: %v", err)
		}
	}

	writeHiddenZone(2, "192.0.2.20")
	mark := len(log.String())
	if err := named.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var notified time.Time
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if strings.Contains(log.String()[mark:], "NOTIFY taken") {
			notified = time.Now()
			break
		}
	}
	if notified.IsZero() {
		t.Fatalf("no NOTIFY from BIND\n%s", log.String())
	}
	served := waitFor("192.0.2.20", 2*time.Second)
	t.Logf("NOTIFY to new answer through serve: %v", served.Sub(notified).Round(time.Microsecond))

	// `sextant zone status` shows what serve wrote after the refresh.
	var out bytes.Buffer
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out.Reset()
		if run(context.Background(), []string{"zone", "status", "--state-dir", filepath.Join(dir, "state"), "hidden.test"}, &out, &out) == 0 &&
			strings.Contains(out.String(), "serial:          2") {
			break
		}
	}
	for _, want := range []string{"hidden.test.\n", "secondary, serving", "serial:          2", fmt.Sprintf("primaries:       127.0.0.1:%d", port), ", ok\n", "expires in:      2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("zone status lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"zone", "status", "--state-dir", filepath.Join(dir, "state"), "other.test"}, &out, &out); code == 0 ||
		!strings.Contains(out.String(), "other.test. is not a secondary zone of that serve") {
		t.Errorf("zone status for another zone: exit %d, %q", code, out.String())
	}
}

// TestServeTransfersOut: a --zone file offered with --xfr-out is
// transferred to the allowed address only, and a SIGHUP that changes it
// sends NOTIFY (from the configured source) to the configured secondary.
func TestServeTransfersOut(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("serve listens on port 53: run as root")
	}
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "out.test.zone")
	writeZone := func(serial int) {
		text := fmt.Sprintf("$ORIGIN out.test.\n$TTL 300\n@ SOA ns1 hostmaster %d 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.%d\n", serial, serial)
		if err := os.WriteFile(zoneFile, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeZone(1)
	// The secondary to be notified: a UDP socket that acknowledges.
	pc, err := net.ListenPacket("udp", "127.77.61.3:5300")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	notified := make(chan string, 4)
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil || q.Opcode != dns.OpcodeNotify {
				continue
			}
			notified <- from.(*net.UDPAddr).IP.String() + " " + q.Question[0].Name
			r := new(dns.Msg).SetReply(q)
			out, _ := r.Pack()
			_, _ = pc.WriteTo(out, from)
		}
	}()
	hints := filepath.Join(dir, "root.hints")
	if err := os.WriteFile(hints, []byte(". 3600 IN NS a.root.test.\na.root.test. 3600 IN A 127.77.61.9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	startServe(t, "127.77.61.1:53", "--root-hints", hints, "--no-dnssec", "--zone", zoneFile,
		"--xfr-out", "zone=out.test allow=127.77.61.2 notify=127.77.61.3:5300 source=127.77.61.1",
		"--xfr-listen", "127.77.61.1:5353")

	transfer := func(src string) ([]dns.RR, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: time.Second}
		nc, err := d.Dial("tcp", "127.77.61.1:5353")
		if err != nil {
			return nil, err
		}
		tr := &dns.Transfer{Conn: &dns.Conn{Conn: nc}}
		ch, err := tr.In(new(dns.Msg).SetAxfr("out.test."), "127.77.61.1:5353")
		if err != nil {
			return nil, err
		}
		var rrs []dns.RR
		for env := range ch {
			if env.Error != nil {
				return nil, env.Error
			}
			rrs = append(rrs, env.RR...)
		}
		return rrs, nil
	}
	rrs, err := transfer("127.77.61.2")
	if err != nil || len(rrs) != 5 || rrs[0].(*dns.SOA).Serial != 1 {
		t.Fatalf("AXFR from the allowed address: %v %v", rrs, err)
	}
	if _, err := transfer("127.77.61.4"); err == nil || !strings.Contains(err.Error(), "rcode: 5") { // 5: REFUSED
		t.Fatalf("AXFR from another address: %v, want REFUSED", err)
	}

	writeZone(2)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-notified:
		if got != "127.77.61.1 out.test." {
			t.Fatalf("NOTIFY %q, want from 127.77.61.1 for out.test.", got)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no NOTIFY after the reload")
	}
	if rrs, err := transfer("127.77.61.2"); err != nil || rrs[0].(*dns.SOA).Serial != 2 {
		t.Fatalf("AXFR after the reload: %v %v", rrs, err)
	}
}
