package main

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// TestBehindDnsdist runs deploy/dnsdist.conf, its addresses moved to
// loopback (127.91.10.0/24), with Debian's dnsdist in front of `sextant
// serve --proxy-from`: a client in --allow is answered through dnsdist
// over UDP and TCP, one outside it is refused, which only works if serve
// judges the address dnsdist's PROXY header carries (dnsdist itself is
// in neither), and the debug log names the refused client and dnsdist.
// The same through a second dnsdist listener whose backend is serve's
// DoT (dnsdist sends the header inside TLS). A client that sends serve a
// PROXY header itself is dropped, and `sextant ctl stats` counts it.
func TestBehindDnsdist(t *testing.T) {
	bin := dnstest.RequireTool(t, "dnsdist")
	const (
		front    = "127.91.10.1:5391" // dnsdist's listener
		frontDoT = "127.91.10.1:5392" // dnsdist's listener towards serve's DoT
		dot      = "127.91.10.2:8531" // serve's DoT
		lbSrc    = "127.91.10.10"     // dnsdist's source towards serve
		listen   = "127.91.10.2:5391" // serve
		allowed  = "127.91.11.5"      // a client in --allow
		refused  = "127.91.12.5"      // a client outside it
		dead     = "127.91.10.99"     // the root hints' server: nothing there
		allowNet = "127.91.11.0/24"
	)
	dir := t.TempDir()
	socket := filepath.Join(dir, "ctl.sock")
	conf, err := os.ReadFile(filepath.Join("..", "..", "deploy", "dnsdist.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(conf), "\n") {
		// One resolver here, and Do53 listeners only
		// (TestFleetDeployment runs the DoT and DoH ones).
		if strings.Contains(l, "192.0.2.54") || strings.Contains(l, "192.0.2.55") ||
			strings.HasPrefix(l, "addTLSLocal(") || strings.HasPrefix(l, "addDOHLocal(") {
			continue
		}
		lines = append(lines, l)
	}
	// dnsdist itself stays outside --allow here, so its health checks are
	// REFUSED: without mustResolve it still counts the resolver up.
	moved := strings.NewReplacer("192.0.2.1:53", front, "192.0.2.10", lbSrc, "192.0.2.53:53", listen, "mustResolve=true, ", "").Replace(strings.Join(lines, "\n"))
	for _, l := range strings.Split(moved, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") && strings.Contains(l, "192.0.2.") {
			t.Fatalf("deploy/dnsdist.conf has an address this test does not move: %s", l)
		}
	}
	moved += noSecurityPolling + "\naddLocal(\"" + frontDoT + "\")\n" +
		"newServer({address=\"" + dot + "\", source=\"" + lbSrc + "\", useProxyProtocol=true, tls=\"openssl\", validateCertificates=false, pool=\"dot\"})\n" +
		"addAction(DSTPortRule(5392), PoolAction(\"dot\"))\n"
	confPath := filepath.Join(dir, "dnsdist.conf")
	if err := os.WriteFile(confPath, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	zone := filepath.Join(dir, "proxy.zone")
	hints := filepath.Join(dir, "root.hints")
	if err := os.WriteFile(zone, []byte("$ORIGIN proxy.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hints, []byte(". 3600000 NS a.root.test.\na.root.test. 3600000 A "+dead+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"serve", "--listen", listen, "--dot", dot, "--zone", zone, "--root-hints", hints,
			"--proxy-from", lbSrc, "--allow", allowNet, "--log-level", "debug",
			"--control-socket", socket}, &stderr, &stderr)
	}()
	defer func() { cancel(); <-exit }()
	waitForLog(t, &stderr, "do53 listening")
	dnstest.StartDaemon(t, dir, bin, "--supervised", "--disable-syslog", "-C", confPath)

	ask := func(network, src, front string) (*dns.Msg, error) {
		local := net.Addr(&net.UDPAddr{IP: net.ParseIP(src)})
		if network == "tcp" {
			local = &net.TCPAddr{IP: net.ParseIP(src)}
		}
		c := &dns.Client{Net: network, Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: local, Timeout: 2 * time.Second}}
		r, _, err := c.Exchange(new(dns.Msg).SetQuestion("www.proxy.test.", dns.TypeA), front)
		return r, err
	}
	// dnsdist takes a moment to listen.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err = ask("udp", allowed, front); err == nil || time.Now().After(deadline) {
			break
		}
	}
	for _, c := range []struct{ network, front, logged string }{
		{"udp", front, "proto=udp"},
		{"tcp", front, "proto=tcp"},
		{"udp", frontDoT, "proto=tls"}, // dnsdist to serve over DoT
	} {
		what := c.network + " to " + c.front
		r, err := ask(c.network, allowed, c.front)
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("%s: allowed client %s through dnsdist: %v %v\n%s", what, allowed, err, r, stderr.String())
		}
		r, err = ask(c.network, refused, c.front)
		if err != nil || r.Rcode != dns.RcodeRefused {
			t.Errorf("%s: client %s outside --allow through dnsdist: %v %v, want REFUSED", what, refused, err, r)
		}
		waitForLog(t, &stderr, `msg="query refused: client not allowed" `+c.logged+" client="+refused+":")
	}
	if !strings.Contains(stderr.String(), " via="+lbSrc+":") {
		t.Errorf("no refusal logged via %s\n%s", lbSrc, stderr.String())
	}

	// The allowed client forges a header naming another client, straight
	// to serve: dropped.
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(allowed)}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(listen)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q, _ := new(dns.Msg).SetQuestion("www.proxy.test.", dns.TypeA).Pack()
	forged := []byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x12, 0, 12,
		127, 91, 11, 6, 127, 91, 10, 2, 0x30, 0x39, 0x15, 0x0F}
	c.Write(append(forged, q...))
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := c.Read(make([]byte, 512)); err == nil {
		t.Errorf("forged PROXY header answered (%d bytes)", n)
	}
	code, out, errOut := ctl(socket, "stats")
	if code != 0 {
		t.Fatalf("ctl stats: exit %d: %s", code, errOut)
	}
	if n := statValue(t, out, "proxy.relayed"); n < 6 {
		t.Errorf("proxy.relayed=%d, want at least the 6 queries above\n%s", n, out)
	}
	if n := statValue(t, out, "proxy.refused_untrusted"); n != 1 {
		t.Errorf("proxy.refused_untrusted=%d, want 1", n)
	}
	if n := statValue(t, out, "proxy.refused_missing") + statValue(t, out, "proxy.refused_malformed"); n != 0 {
		t.Errorf("dnsdist's queries refused: %d\n%s", n, out)
	}
}
