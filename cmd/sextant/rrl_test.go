package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

const (
	rrlListen = "127.107.10.10:53"
	rrlDead   = "127.107.10.99" // root hints: nobody answers
)

// udpFlood sends n queries for name (with %d: the query's number in it)
// from src to server over d and counts the answers (any rcode) and the
// truncated ones arriving until 300 ms after (dnstest.FloodUDP).
func udpFlood(t *testing.T, src, server, name string, n int, d time.Duration) (answered, truncated int) {
	t.Helper()
	r := dnstest.FloodUDP(t, src+":0", server, n, d, func(i int) *dns.Msg {
		qname := name
		if strings.Contains(name, "%d") {
			qname = fmt.Sprintf(name, i)
		}
		return new(dns.Msg).SetQuestion(qname, dns.TypeA)
	})
	return r.Responses - r.Truncated, r.Truncated
}

// TestServeRRL: serve's local zone answers are not limited by default;
// a reload turning --rrl-responses-per-second on limits a flood of one
// name from one /24 to about that many a second, with slipped truncated
// answers, and a flood of random names of the zone (NXDOMAIN) likewise,
// while TCP is answered; ctl stats counts it.
func TestServeRRL(t *testing.T) {
	dir := t.TempDir()
	zone := filepath.Join(dir, "rrl.zone")
	hints := filepath.Join(dir, "root.hints")
	conf := filepath.Join(dir, "sextant.toml")
	socket := filepath.Join(dir, "ctl.sock")
	if err := os.WriteFile(zone, []byte("$ORIGIN rrl.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hints, []byte(". 3600000 NS a.root.test.\na.root.test. 3600000 A "+rrlDead+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeConf := func(rrl int) {
		c := fmt.Sprintf("listen = [%q]\nzone = [%q]\nroot-hints = %q\nallow = [\"127.107.0.0/16\"]\ncontrol-socket = %q\nstate-dir = %q\nrrl-responses-per-second = %d\nrrl-slip = 2\n",
			rrlListen, zone, hints, socket, t.TempDir(), rrl)
		if err := os.WriteFile(conf, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConf(0)
	out := startServeProbe(t, rrlListen, "www.rrl.test.", dns.TypeA, "--config", conf)

	if ans, tc := udpFlood(t, "127.107.11.1", rrlListen, "www.rrl.test.", 200, 500*time.Millisecond); ans < 190 || tc != 0 {
		t.Fatalf("RRL off: %d answered, %d truncated of 200; want all answered\n%s", ans, tc, out.String())
	}

	writeConf(20)
	if code, o, e := ctl(socket, "reload"); code != 0 || !strings.Contains(o, "rrl-responses-per-second") {
		t.Fatalf("reload: %d %s %s", code, o, e)
	}
	ans, tc := udpFlood(t, "127.107.12.1", rrlListen, "www.rrl.test.", 200, 500*time.Millisecond)
	t.Logf("RRL 20/s: %d answered, %d truncated of 200", ans, tc)
	// 20 at once and 20/s over half a second (more on a loaded machine).
	if ans < 20 || ans > 60 || tc < 40 {
		t.Errorf("RRL 20/s: %d answered, %d truncated of 200; want about 30, and about 85 truncated", ans, tc)
	}
	r, _, err := (&dns.Client{Net: "tcp", Timeout: 3 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.107.12.1")}}}).
		Exchange(new(dns.Msg).SetQuestion("www.rrl.test.", dns.TypeA), rrlListen)
	if err != nil || len(r.Answer) != 1 {
		t.Errorf("TCP from the flooded /24: %v %v", err, r)
	}
	// A random-subdomain flood: NXDOMAIN answers of one zone are one
	// bucket whatever the name.
	ans, tc = udpFlood(t, "127.107.13.1", rrlListen, "r%d.rrl.test.", 200, 500*time.Millisecond)
	t.Logf("RRL 20/s, random names: %d answered, %d truncated of 200", ans, tc)
	if ans < 20 || ans > 60 || tc < 40 {
		t.Errorf("RRL 20/s, random names: %d answered, %d truncated of 200; want about 30, and about 85 truncated", ans, tc)
	}
	_, stats, _ := ctl(socket, "stats")
	if !strings.Contains(stats, "rrl.enabled=true\n") || statValue(t, stats, "rrl.dropped") < 40 || statValue(t, stats, "rrl.slipped") < 40 ||
		statValue(t, stats, "cookies.secret_rotations") != 0 {
		t.Errorf("ctl stats:\n%s", stats)
	}
}
