package secondary

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnstest"
)

// A primary is a real DNS server from a Debian package, run as a child
// process with everything (config, zone, journal, pid file) in a temp dir.
type primary interface {
	// start writes the config for the zone file and runs the server.
	start(t *testing.T)
	// reload makes the server read its changed zone file (it then sends
	// NOTIFY to the secondary).
	reload(t *testing.T)
	// incremental: the server answers IXFR with differences.
	incremental() bool
}

// primarySetup is what every primary is configured with.
type primarySetup struct {
	dir       string
	zone      string
	zoneFile  string
	addr      netip.Addr // where it listens
	port      uint16
	secondary netip.Addr // allowed to transfer; its NOTIFY listener is on notifyPort
	key       *Key       // nil: no TSIG
}

const notifyPort = 5300

// interopHosts makes the interop zone big enough (about 130 KB) that every
// primary sends its AXFR in several messages, each TSIG-signed in a chain.
const interopHosts = 5000

func (s *primarySetup) writeZone(t *testing.T, serial uint32, n int) {
	t.Helper()
	tmp := s.zoneFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(testZone(s.zone, serial, n)), 0o644); err != nil {
		t.Fatal(err)
	}
	// A later mtime than the previous version, whatever the clock's
	// granularity: NSD and Knot look at it.
	at := time.Now().Add(time.Duration(serial) * time.Second)
	if err := os.Chtimes(tmp, at, at); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, s.zoneFile); err != nil {
		t.Fatal(err)
	}
}

// --- BIND 9 ---

type bindPrimary struct {
	primarySetup
	cmd *exec.Cmd
}

func (b *bindPrimary) incremental() bool { return true }

func (b *bindPrimary) start(t *testing.T) {
	allow := fmt.Sprintf("%s;", b.secondary)
	keys := ""
	if b.key != nil {
		allow = fmt.Sprintf("key %s;", b.key.Name)
		keys = fmt.Sprintf("key %q { algorithm %s; secret %q; };\n", strings.TrimSuffix(b.key.Name, "."),
			strings.TrimSuffix(b.key.Algorithm, "."), b.key.Secret)
	}
	notifyKey := ""
	if b.key != nil {
		notifyKey = " key " + b.key.Name
	}
	b.cmd = dnstest.StartBIND(t, dnstest.BIND{Dir: b.dir, Addr: b.addr.String(), Port: int(b.port), Options: []string{
		"notify explicit;",
		"notify-source " + b.addr.String() + ";",
		"transfer-source " + b.addr.String() + ";",
		fmt.Sprintf("also-notify { %s port %d%s; };", b.secondary, notifyPort, notifyKey),
		"ixfr-from-differences yes;",
		"notify-delay 0;",
	}, Conf: keys + fmt.Sprintf("zone %q { type primary; file %q; allow-transfer { %s }; };\n", b.zone, b.zoneFile, allow)})
}

func (b *bindPrimary) reload(t *testing.T) {
	if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// --- Knot DNS ---

type knotPrimary struct {
	primarySetup
	conf string
}

func (k *knotPrimary) incremental() bool { return true }

func (k *knotPrimary) start(t *testing.T) {
	dnstest.RequireTool(t, "knotc")
	keyRef, keySec, notifyKey := "", "", ""
	if k.key != nil {
		keySec = fmt.Sprintf("key:\n  - id: %s\n    algorithm: %s\n    secret: %s\n", k.key.Name,
			strings.TrimSuffix(k.key.Algorithm, "."), k.key.Secret)
		keyRef = "\n    key: " + k.key.Name
		notifyKey = keyRef
	}
	k.conf = dnstest.StartKnot(t, dnstest.Knot{Dir: k.dir, Listen: fmt.Sprintf("%s@%d", k.addr, k.port), Conf: fmt.Sprintf(`%[2]sremote:
  - id: sextant
    address: %[3]s@%[4]d
    via: %[9]s%[5]s
acl:
  - id: xfr
    address: %[3]s
    action: transfer%[6]s
zone:
  - domain: %[7]s
    storage: %[1]q
    file: %[8]q
    notify: sextant
    acl: xfr
    zonefile-load: difference
    journal-content: changes
    semantic-checks: off
`, k.dir, keySec, k.secondary, notifyPort, notifyKey, keyRef, k.zone, k.zoneFile, k.addr)})
}

func (k *knotPrimary) reload(t *testing.T) {
	out, err := exec.Command("knotc", "-c", k.conf, "zone-reload", k.zone).CombinedOutput()
	if err != nil {
		t.Fatalf("knotc zone-reload: %v: %s", err, out)
	}
}

// --- NSD ---

type nsdPrimary struct {
	primarySetup
	cmd *exec.Cmd
}

func (n *nsdPrimary) incremental() bool { return false }

func (n *nsdPrimary) start(t *testing.T) {
	nsd := dnstest.RequireTool(t, "nsd")
	keyName, keySec := "NOKEY", ""
	if n.key != nil {
		keyName = n.key.Name
		keySec = fmt.Sprintf("key:\n  name: %q\n  algorithm: %s\n  secret: %q\n", n.key.Name,
			strings.TrimSuffix(n.key.Algorithm, "."), n.key.Secret)
	}
	conf := fmt.Sprintf(`server:
  ip-address: %[2]s@%[9]d
  username: ""
  chroot: ""
  zonesdir: %[1]q
  pidfile: "%[1]s/nsd.pid"
  xfrdfile: "%[1]s/xfrd.state"
  zonelistfile: "%[1]s/zone.list"
  database: ""
  xfrd-reload-timeout: 0
  verbosity: 2
remote-control:
  control-enable: no
%[3]szone:
  name: %[4]q
  zonefile: %[5]q
  notify: %[6]s@%[7]d %[8]s
  provide-xfr: %[6]s %[8]s
  outgoing-interface: %[2]s
`, n.dir, n.addr, keySec, n.zone, n.zoneFile, n.secondary, notifyPort, keyName, n.port)
	path := filepath.Join(n.dir, "nsd.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n.cmd = dnstest.StartDaemon(t, n.dir, nsd, "-d", "-c", path)
}

func (n *nsdPrimary) reload(t *testing.T) {
	if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// TestInteropPrimaries: Sextant as secondary of BIND 9, Knot DNS and NSD,
// with and without TSIG: the first AXFR, then a change on the primary
// whose NOTIFY makes Sextant serve it (by IXFR from BIND and Knot) within
// 2 s of the NOTIFY.
func TestInteropPrimaries(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the primaries listen on port 53: run as root")
	}
	cases := []struct {
		name string
		net  int // 127.77.<net>.0/24
		tsig bool
		// loopbackOnly: the server binds only addresses configured on an
		// interface (BIND scans them), and lo has just 127.0.0.1.
		loopbackOnly bool
		make         func(primarySetup) primary
	}{
		{"bind", 10, false, true, func(s primarySetup) primary { return &bindPrimary{primarySetup: s} }},
		{"bind-tsig", 11, true, true, func(s primarySetup) primary { return &bindPrimary{primarySetup: s} }},
		{"knot", 12, false, false, func(s primarySetup) primary { return &knotPrimary{primarySetup: s} }},
		{"knot-tsig", 13, true, false, func(s primarySetup) primary { return &knotPrimary{primarySetup: s} }},
		{"nsd", 14, false, false, func(s primarySetup) primary { return &nsdPrimary{primarySetup: s} }},
		{"nsd-tsig", 15, true, false, func(s primarySetup) primary { return &nsdPrimary{primarySetup: s} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := primarySetup{
				dir: dir, zone: "interop.test.", zoneFile: filepath.Join(dir, "interop.test.zone"),
				addr: netip.MustParseAddr(fmt.Sprintf("127.77.%d.1", tc.net)), port: 53,
				secondary: netip.MustParseAddr(fmt.Sprintf("127.77.%d.2", tc.net)),
			}
			if tc.loopbackOnly {
				s.addr, s.port = netip.MustParseAddr("127.0.0.1"), uint16(dnstest.FreeLoopbackPort(t))
			}
			if tc.tsig {
				s.key = &Key{Name: "xfr-key.", Algorithm: dns.HmacSHA256, Secret: testSecret}
			}
			s.writeZone(t, 1, interopHosts)
			p := tc.make(s)
			p.start(t)
			waitAnswers(t, netip.AddrPortFrom(s.addr, s.port).String(), s.zone, 10*time.Second)

			zone := &Zone{Origin: s.zone, Primaries: []netip.AddrPort{netip.AddrPortFrom(s.addr, s.port)}, Key: s.key, Source: s.secondary}
			sut := startSecondary(t, zone, sutOptions{notifyAddr: netip.AddrPortFrom(s.secondary, notifyPort).String()})
			sut.waitSerial(t, s.zone, 1, 5*time.Second)
			if r := sut.ask(fmt.Sprintf("host%d.%s", interopHosts-1, s.zone), dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Fatalf("last host after the AXFR: %v", r)
			}

			// The change: serial 2, www moves, host20..29 appear.
			since := time.Now()
			s.writeZone(t, 2, interopHosts+10)
			p.reload(t)
			notified := sut.log.waitLog(t, since, 10*time.Second, "NOTIFY taken").at
			served := sut.waitSerial(t, s.zone, 2, 2*time.Second)
			if r := sut.ask(fmt.Sprintf("host%d.%s", interopHosts+9, s.zone), dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Fatalf("last new host after the change: %v", r)
			}
			kind := "kind=AXFR"
			if p.incremental() {
				kind = "kind=IXFR"
			}
			sut.log.waitLog(t, since, time.Second, "secondary zone transferred", "serial=2", kind)
			first, _ := sut.log.find(time.Time{}, "secondary zone transferred", "serial=1")
			t.Logf("%s: NOTIFY to new answer %v (%s); first: %s", tc.name, served.Sub(notified).Round(time.Millisecond), kind, first.text)
		})
	}
}
