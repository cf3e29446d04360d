package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/authority/signer"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnstest"
)

// The online-signing tests' loopback block, 127.80.0.0/16: the root on
// .0.1, the signing server on .0.2, Sextant's resolver on .0.3, Unbound on
// .0.4 (.1.x for the flag tests).
const (
	signRootAddr     = "127.80.0.1"
	signAuthAddr     = "127.80.0.2"
	signResolverAddr = "127.80.0.3"
	signUnboundAddr  = "127.80.0.4"
	signXfrListen    = "127.80.0.2:5300"
)

// signedZoneText is the zone the signing server serves, unsigned.
func signedZoneText(serial int, extra string) string {
	return fmt.Sprintf(`$ORIGIN signed.test.
$TTL 300
@ SOA ns1 hostmaster %d 3600 600 86400 60
@ NS ns1
ns1 A %s
www A 192.0.2.1
www AAAA 2001:db8::1
mail MX 10 www
insecure NS ns.insecure
ns.insecure A 192.0.2.9
%s`, serial, signAuthAddr, extra)
}

// writeAtomically replaces path with text, as an editor saving a zone would.
func writeAtomically(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// signedDelegation is the root's delegation of zone to the signing server
// at addr, with the DS records ds.
func signedDelegation(zone, addr string, ds []string) string {
	return fmt.Sprintf("%[1]s 3600 IN NS ns1.%[1]s\nns1.%[1]s 3600 IN A %[2]s\n%[3]s\n", zone, addr, strings.Join(ds, "\n"))
}

// testRoot is a signed root zone, served by a `sextant serve`, that
// delegates to the signing servers under test.
type testRoot struct {
	ksk, zsk            *authority.Key
	addr                string
	zone, hints, anchor string
}

// newTestRoot makes the root's keys and files in dir; write puts the
// delegations in.
func newTestRoot(t *testing.T, dir, rootAddr string) *testRoot {
	t.Helper()
	r := &testRoot{addr: rootAddr, zone: filepath.Join(dir, "root.zone"), hints: filepath.Join(dir, "root.hints"), anchor: filepath.Join(dir, "root.ds")}
	var err error
	if r.ksk, err = authority.GenerateKey(".", dns.ECDSAP256SHA256, authority.FlagsKSK); err != nil {
		t.Fatal(err)
	}
	if r.zsk, err = authority.GenerateKey(".", dns.ECDSAP256SHA256, authority.FlagsZSK); err != nil {
		t.Fatal(err)
	}
	writeAtomically(t, r.hints, fmt.Sprintf(". 3600000 IN NS a.root.test.\na.root.test. 3600000 IN A %s\n", rootAddr))
	writeAtomically(t, r.anchor, r.ksk.DS(dns.SHA256).String()+"\n")
	return r
}

// write signs the root zone with the delegations (signedDelegation) and
// writes it (a SIGHUP makes its serve reload it).
func (r *testRoot) write(t *testing.T, delegations string) {
	t.Helper()
	text := fmt.Sprintf(`. 86400 IN SOA a.root.test. hostmaster.root.test. 1 1800 900 604800 300
. 86400 IN NS a.root.test.
a.root.test. 86400 IN A %s
%s`, r.addr, delegations)
	var rrs []dns.RR
	zp := dns.NewZoneParser(strings.NewReader(text), ".", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	// Valid long enough for the rollover tests' moves of the DNS clock.
	signed, err := authority.Sign(".", rrs, authority.SignOptions{Keys: []*authority.Key{r.ksk, r.zsk},
		Inception: now.Add(-time.Hour), Expiration: now.Add(60 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, rr := range signed {
		b.WriteString(rr.String() + "\n")
	}
	writeAtomically(t, r.zone, b.String())
}

// serve starts the root's `sextant serve`.
func (r *testRoot) serve(t *testing.T, dir string) {
	t.Helper()
	startServe(t, r.addr+":53", "--root-hints", r.hints, "--no-dnssec", "--zone", r.zone,
		"--state-dir", filepath.Join(dir, "root-state"))
}

// startSignedRoot signs a root zone with the delegations (signedDelegation)
// to the signing servers, serves it with `sextant serve` and returns the
// hints and trust anchor files that lead to it.
func startSignedRoot(t *testing.T, dir, rootAddr, delegations string) (hints, anchor string) {
	t.Helper()
	r := newTestRoot(t, dir, rootAddr)
	r.write(t, delegations)
	r.serve(t, dir)
	return r.hints, r.anchor
}

// startUnbound runs Unbound validating from anchor, with hints, on addr:53.
func startUnbound(t *testing.T, dir, hints, anchor, addr string) {
	t.Helper()
	startUnboundWith(t, dir, hints, anchor, addr, "")
}

// startUnboundWith is startUnbound with extra server: lines.
func startUnboundWith(t *testing.T, dir, hints, anchor, addr, extra string) {
	t.Helper()
	bin := dnstest.RequireTool(t, "unbound")
	conf := fmt.Sprintf(`server:
	interface: %[1]s
	port: 53
	do-ip6: no
	do-not-query-localhost: no
	chroot: ""
	username: ""
	directory: "%[2]s"
	pidfile: "%[2]s/unbound.pid"
	use-syslog: no
	logfile: ""
	verbosity: 1
	val-log-level: 2
	root-hints: "%[3]s"
	trust-anchor-file: "%[4]s"
	aggressive-nsec: no
	module-config: "validator iterator"
	access-control: 127.0.0.0/8 allow
	local-zone: "test." nodefault
%[5]s
remote-control:
	control-enable: no
`, addr, dir, hints, anchor, extra)
	confPath := filepath.Join(dir, "unbound.conf")
	writeAtomically(t, confPath, conf)
	dnstest.StartDaemon(t, dir, bin, "-d", "-c", confPath)
	c := &dns.Client{Timeout: time.Second}
	q := new(dns.Msg).SetQuestion("a.root.test.", dns.TypeA)
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(50 * time.Millisecond) {
		if _, _, err := c.Exchange(q, addr+":53"); err == nil {
			return
		}
	}
	t.Fatal("unbound does not answer")
}

// wantSecure asks server and wants a validated (AD) answer with rcode.
func wantSecure(t *testing.T, who, server, name string, qtype uint16, rcode int, answers int) {
	t.Helper()
	var m *dns.Msg
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(100 * time.Millisecond) {
		m = digDNSSEC(t, server, name, qtype, false)
		if m.Rcode == rcode && m.AuthenticatedData && countRR(m.Answer, qtype) == answers {
			return
		}
		if m.Rcode != dns.RcodeServerFailure {
			break // a definite wrong answer: no point waiting
		}
	}
	t.Errorf("%s: %s %s: want %s with AD and %d answers, got:\n%v", who, name, dns.TypeToString[qtype], dns.RcodeToString[rcode], answers, m)
}

func countRR(rrs []dns.RR, qtype uint16) int {
	n := 0
	for _, rr := range rrs {
		if rr.Header().Rrtype == qtype {
			n++
		}
	}
	return n
}

// axfrToFile transfers zone from addr and writes it as a zone file.
func axfrToFile(t *testing.T, zone, addr, path string) []dns.RR {
	t.Helper()
	tr := &dns.Transfer{DialTimeout: time.Second, ReadTimeout: 5 * time.Second}
	ch, err := tr.In(new(dns.Msg).SetAxfr(zone), addr)
	if err != nil {
		t.Fatal(err)
	}
	var rrs []dns.RR
	for env := range ch {
		if env.Error != nil {
			t.Fatal(env.Error)
		}
		rrs = append(rrs, env.RR...)
	}
	var b strings.Builder
	for _, rr := range rrs[:len(rrs)-1] { // the closing SOA repeats the first
		b.WriteString(rr.String() + "\n")
	}
	writeAtomically(t, path, b.String())
	return rrs
}

// verifyWithBIND runs dnssec-verify on a zone file; csk: the zone is
// signed by a key with the KSK flag alone (-z: without it dnssec-verify
// wants a separate ZSK).
func verifyWithBIND(t *testing.T, zone, path string, csk bool) {
	t.Helper()
	bin := dnstest.RequireTool(t, "dnssec-verify")
	args := []string{"-o", zone, path}
	if csk {
		args = append([]string{"-z"}, args...)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Errorf("dnssec-verify rejects the AXFR of %s: %v\n%s", zone, err, out)
	}
}

// TestServeSignsZoneOnline: a zone file served with --sign validates
// through Sextant's resolver and through Unbound (positive, NXDOMAIN,
// NODATA, an insecure delegation), its AXFR passes BIND's dnssec-verify,
// and after a SIGHUP that changes it the new name validates too, with a
// higher serial.
func TestServeSignsZoneOnline(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("serve listens on port 53: run as root")
	}
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "signed.test.zone")
	writeAtomically(t, zoneFile, signedZoneText(1, ""))
	deadHints := filepath.Join(dir, "dead.hints")
	writeAtomically(t, deadHints, ". 3600 IN NS a.root.test.\na.root.test. 3600 IN A 127.80.0.9\n")
	stateDir := filepath.Join(dir, "state")
	authLog := startServe(t, signAuthAddr+":53", "--root-hints", deadHints, "--no-dnssec", "--zone", zoneFile,
		"--state-dir", stateDir, "--sign", "zone=signed.test",
		"--xfr-out", "zone=signed.test allow=127.0.0.0/8", "--xfr-listen", signXfrListen)

	st, err := signer.ReadStatus(filepath.Join(stateDir, "keys"), "signed.test.")
	if err != nil {
		t.Fatalf("signing status: %v\n%s", err, authLog.String())
	}
	if len(st.DS) != 1 || st.Serial != 1 {
		t.Fatalf("status %+v", st)
	}
	hints, anchor := startSignedRoot(t, dir, signRootAddr, signedDelegation("signed.test.", signAuthAddr, st.DS))
	startServe(t, signResolverAddr+":53", "--root-hints", hints, "--trust-anchor", anchor, "--upstream-loopback")
	unboundDir := filepath.Join(dir, "unbound")
	if err := os.Mkdir(unboundDir, 0o755); err != nil {
		t.Fatal(err)
	}
	startUnbound(t, unboundDir, hints, anchor, signUnboundAddr)

	resolvers := []struct{ name, addr string }{{"sextant", signResolverAddr + ":53"}, {"unbound", signUnboundAddr + ":53"}}
	for _, r := range resolvers {
		wantSecure(t, r.name, r.addr, "www.signed.test.", dns.TypeA, dns.RcodeSuccess, 1)
		wantSecure(t, r.name, r.addr, "mail.signed.test.", dns.TypeMX, dns.RcodeSuccess, 1)
		wantSecure(t, r.name, r.addr, "nope.signed.test.", dns.TypeA, dns.RcodeNameError, 0)
		wantSecure(t, r.name, r.addr, "ns1.signed.test.", dns.TypeTXT, dns.RcodeSuccess, 0)
		// The insecure delegation's DS is denied securely (NSEC at the cut).
		wantSecure(t, r.name, r.addr, "insecure.signed.test.", dns.TypeDS, dns.RcodeSuccess, 0)
	}
	axfr := filepath.Join(dir, "axfr1.zone")
	if rrs := axfrToFile(t, "signed.test.", signXfrListen, axfr); rrs[0].(*dns.SOA).Serial != 1 {
		t.Errorf("AXFR serial %d, want 1", rrs[0].(*dns.SOA).Serial)
	}
	verifyWithBIND(t, "signed.test.", axfr, false)

	// A change by SIGHUP: a new name, same unsigned serial (serial=increment
	// serves 2 anyway). The new name was never denied to either resolver,
	// and no NSEC they hold covers it ("zz" sorts after www, whose NSEC
	// was not asked for).
	writeAtomically(t, zoneFile, signedZoneText(1, "zz TXT \"new\"\n"))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, authLog, "serial=2")
	for _, r := range resolvers {
		wantSecure(t, r.name, r.addr, "zz.signed.test.", dns.TypeTXT, dns.RcodeSuccess, 1)
	}
	// `sextant zone status` shows the policy, the keys and the DS to give
	// the parent.
	var out syncBuffer
	if code := run(context.Background(), []string{"zone", "status", "--state-dir", stateDir, "signed.test"}, &out, &out); code != 0 {
		t.Fatalf("zone status: exit %d\n%s", code, out.String())
	}
	for _, want := range []string{"signed.test.\n  role:            primary (zone file)", "signing:         zone=signed.test. alg=13 keys=ksk+zsk denial=nsec",
		"key:             ksk tag ", "key:             zsk tag ", "DS for parent:   " + st.DS[0], "signed serial:   2 (unsigned 1)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("zone status lacks %q:\n%s", want, out.String())
		}
	}
	axfr = filepath.Join(dir, "axfr2.zone")
	if rrs := axfrToFile(t, "signed.test.", signXfrListen, axfr); rrs[0].(*dns.SOA).Serial != 2 {
		t.Errorf("AXFR serial after the change %d, want 2", rrs[0].(*dns.SOA).Serial)
	}
	verifyWithBIND(t, "signed.test.", axfr, false)
}

// TestServeSignsSecondaryZone: a --secondary zone transferred from an
// unsigned primary (a Sextant serving a file with --xfr-out) is served
// signed (CSK, NSEC3), validates through Sextant's resolver and Unbound,
// and after the primary changes (NOTIFY, IXFR) the change validates too;
// dnssec-verify accepts the signed zone's AXFR before and after.
func TestServeSignsSecondaryZone(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("serve listens on port 53: run as root")
	}
	const (
		primary   = "127.80.1.1"
		secondary = "127.80.1.2"
		resolverA = "127.80.1.3:53"
		unboundA  = "127.80.1.4"
	)
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "sec.test.zone")
	zoneText := func(serial int, extra string) string {
		return fmt.Sprintf("$ORIGIN sec.test.\n$TTL 300\n@ SOA ns1 hostmaster %d 3600 600 86400 60\n@ NS ns1\nns1 A %s\nwww A 192.0.2.7\n%s",
			serial, secondary, extra)
	}
	writeAtomically(t, zoneFile, zoneText(1, ""))
	deadHints := filepath.Join(dir, "dead.hints")
	writeAtomically(t, deadHints, ". 3600 IN NS a.root.test.\na.root.test. 3600 IN A 127.80.1.9\n")
	startServe(t, primary+":53", "--root-hints", deadHints, "--no-dnssec", "--zone", zoneFile,
		"--state-dir", filepath.Join(dir, "primary-state"),
		"--xfr-out", "zone=sec.test allow=127.80.1.2 notify="+secondary+":5301 source="+primary, "--xfr-listen", primary+":5300")
	stateDir := filepath.Join(dir, "state")
	secLog := startServe(t, secondary+":53", "--root-hints", deadHints, "--no-dnssec",
		"--secondary", "zone=sec.test primary="+primary+":5300 source="+secondary, "--notify-listen", secondary+":5301",
		"--state-dir", stateDir, "--sign", "zone=sec.test keys=csk denial=nsec3 alg=15",
		"--xfr-out", "zone=sec.test allow=127.0.0.0/8", "--xfr-listen", secondary+":5300")
	waitForLog(t, secLog, `msg="zone signed"`)
	st, err := signer.ReadStatus(filepath.Join(stateDir, "keys"), "sec.test.")
	if err != nil || len(st.DS) != 1 || len(st.Keys) != 1 || st.Keys[0].Role != signer.RoleCSK {
		t.Fatalf("signing status %+v %v\n%s", st, err, secLog.String())
	}
	hints, anchor := startSignedRoot(t, dir, signRootAddr, signedDelegation("sec.test.", secondary, st.DS))
	startServe(t, resolverA, "--root-hints", hints, "--trust-anchor", anchor, "--upstream-loopback")
	unboundDir := filepath.Join(dir, "unbound")
	if err := os.Mkdir(unboundDir, 0o755); err != nil {
		t.Fatal(err)
	}
	startUnbound(t, unboundDir, hints, anchor, unboundA)
	resolvers := []struct{ name, addr string }{{"sextant", resolverA}, {"unbound", unboundA + ":53"}}
	for _, r := range resolvers {
		wantSecure(t, r.name, r.addr, "www.sec.test.", dns.TypeA, dns.RcodeSuccess, 1)
		wantSecure(t, r.name, r.addr, "www.sec.test.", dns.TypeTXT, dns.RcodeSuccess, 0)
	}
	axfr := filepath.Join(dir, "axfr1.zone")
	axfrToFile(t, "sec.test.", secondary+":5300", axfr)
	verifyWithBIND(t, "sec.test.", axfr, true)

	// The primary changes; its NOTIFY brings the change by IXFR, signed.
	writeAtomically(t, zoneFile, zoneText(2, "new TXT \"after IXFR\"\n"))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, secLog, "kind=IXFR")
	for _, r := range resolvers {
		wantSecure(t, r.name, r.addr, "new.sec.test.", dns.TypeTXT, dns.RcodeSuccess, 1)
	}
	axfr = filepath.Join(dir, "axfr2.zone")
	if rrs := axfrToFile(t, "sec.test.", secondary+":5300", axfr); countRR(rrs, dns.TypeNSEC3) == 0 {
		t.Error("no NSEC3 in the signed zone")
	}
	verifyWithBIND(t, "sec.test.", axfr, true)
}

// TestServeZSKRollover moves the DNS clock (--clock-file, shared by the
// signing serve and the resolver) through a ZSK pre-publish rollover:
// the successor published, then signing, then the old ZSK removed; at
// every step Sextant's resolver validates the zone's answers (no
// SERVFAIL), and the DNSKEY RRset holds the keys each step should.
func TestServeZSKRollover(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("serve listens on port 53: run as root")
	}
	const (
		rootAddr = "127.80.2.1"
		authAddr = "127.80.2.2"
		resolver = "127.80.2.3:53"
	)
	dir := t.TempDir()
	t0 := time.Now().UTC().Truncate(time.Second)
	clockFile := filepath.Join(dir, "clock")
	setClockFile(t, clockFile, t0)
	zoneFile := filepath.Join(dir, "signed.test.zone")
	writeAtomically(t, zoneFile, strings.ReplaceAll(signedZoneText(1, ""), signAuthAddr, authAddr))
	deadHints := filepath.Join(dir, "dead.hints")
	writeAtomically(t, deadHints, ". 3600 IN NS a.root.test.\na.root.test. 3600 IN A 127.80.2.9\n")
	stateDir := filepath.Join(dir, "state")
	authLog := startServe(t, authAddr+":53", "--root-hints", deadHints, "--no-dnssec", "--zone", zoneFile,
		"--state-dir", stateDir, "--clock-file", clockFile, "--sign", "zone=signed.test zsk-lifetime=2d")
	st, err := signer.ReadStatus(filepath.Join(stateDir, "keys"), "signed.test.")
	if err != nil {
		t.Fatal(err)
	}
	hints, anchor := startSignedRoot(t, dir, rootAddr, signedDelegation("signed.test.", authAddr, st.DS))
	startServe(t, resolver, "--root-hints", hints, "--trust-anchor", anchor, "--upstream-loopback", "--clock-file", clockFile)

	dnskeys := func() int {
		return countRR(digDNSSEC(t, authAddr+":53", "signed.test.", dns.TypeDNSKEY, false).Answer, dns.TypeDNSKEY)
	}
	check := func(step string, wantKeys int) {
		t.Helper()
		// The step is logged before the new version is signed and served.
		for start := time.Now(); dnskeys() != wantKeys && time.Since(start) < 5*time.Second; {
			time.Sleep(20 * time.Millisecond)
		}
		wantSecure(t, "sextant "+step, resolver, "www.signed.test.", dns.TypeA, dns.RcodeSuccess, 1)
		wantSecure(t, "sextant "+step, resolver, "nope.signed.test.", dns.TypeA, dns.RcodeNameError, 0)
		wantSecure(t, "sextant "+step, resolver, "signed.test.", dns.TypeDNSKEY, dns.RcodeSuccess, wantKeys)
		if got := dnskeys(); got != wantKeys {
			t.Errorf("%s: %d DNSKEYs served, want %d", step, got, wantKeys)
		}
	}
	check("before", 2)
	// The waits: Ipub = DNSKEY TTL (300 s, the SOA TTL) + 1 h, Iret = the
	// largest TTL (300 s) + 1 h.
	const ipub, iret = 65 * time.Minute, 65 * time.Minute
	at := t0.Add(2*24*time.Hour - ipub + time.Minute)
	setClockFile(t, clockFile, at)
	waitForLog(t, authLog, "successor ZSK published")
	check("successor published", 3)
	at = at.Add(ipub + time.Minute)
	setClockFile(t, clockFile, at)
	waitForLog(t, authLog, "successor ZSK now signs")
	check("successor signing", 3)
	at = at.Add(iret + time.Minute)
	setClockFile(t, clockFile, at)
	waitForLog(t, authLog, "old ZSK removed")
	check("old ZSK removed", 2)
}

// waitForLogWithin waits up to d until out holds want.
func waitForLogWithin(t *testing.T, out *syncBuffer, want string, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); !strings.Contains(out.String(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q logged\n%s", want, out.String())
		}
	}
}

// TestServeTurnsSigningOff: with unsign=yes the zone keeps validating
// while it publishes the delete CDS (RFC 8078) and the parent still has a
// DS; once the parent's DS is gone (seen through the serve's own
// resolver) and its TTL has passed on the DNS clock, the zone is served
// unsigned, and Sextant's resolver answers it as insecure, never SERVFAIL.
func TestServeTurnsSigningOff(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("serve listens on port 53: run as root")
	}
	const (
		rootAddr = "127.80.3.1"
		authAddr = "127.80.3.2"
		resolver = "127.80.3.3:53"
	)
	dir := t.TempDir()
	t0 := time.Now().UTC().Truncate(time.Second)
	clockFile := filepath.Join(dir, "clock")
	setClockFile(t, clockFile, t0)
	stateDir := filepath.Join(dir, "state")
	keyDir := filepath.Join(stateDir, "keys")
	// The zone was signed before: its keys exist and the parent has its DS.
	p, err := signer.ParsePolicy("zone=signed.test")
	if err != nil {
		t.Fatal(err)
	}
	was, err := signer.New(p, signer.Options{KeyDir: keyDir})
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, d := range was.DS() {
		ds = append(ds, d.String())
	}
	root := newTestRoot(t, dir, rootAddr)
	root.write(t, signedDelegation("signed.test.", authAddr, ds))
	root.serve(t, dir)

	zoneFile := filepath.Join(dir, "signed.test.zone")
	writeAtomically(t, zoneFile, strings.ReplaceAll(signedZoneText(1, ""), signAuthAddr, authAddr))
	authLog := startServe(t, authAddr+":53", "--root-hints", root.hints, "--trust-anchor", root.anchor, "--upstream-loopback",
		"--zone", zoneFile, "--state-dir", stateDir, "--clock-file", clockFile, "--sign", "zone=signed.test unsign=yes")
	startServe(t, resolver, "--root-hints", root.hints, "--trust-anchor", root.anchor, "--upstream-loopback", "--clock-file", clockFile)

	wantSecure(t, "sextant", resolver, "www.signed.test.", dns.TypeA, dns.RcodeSuccess, 1)
	cds := digDNSSEC(t, authAddr+":53", "signed.test.", dns.TypeCDS, false)
	if len(cds.Answer) == 0 || !strings.HasSuffix(cds.Answer[0].String(), "0 0 0 00") {
		t.Fatalf("CDS while turning off: %v, want the delete form", cds.Answer)
	}
	// The parent keeps the DS for a day: the zone stays signed.
	setClockFile(t, clockFile, t0.Add(24*time.Hour))
	time.Sleep(6 * time.Second) // a parent check
	wantSecure(t, "sextant with the DS still at the parent", resolver, "www.signed.test.", dns.TypeA, dns.RcodeSuccess, 1)

	// The parent removes the DS (the delegation stays).
	root.write(t, signedDelegation("signed.test.", authAddr, nil))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	setClockFile(t, clockFile, t0.Add(26*time.Hour)) // the DS cached before expires
	waitForLogWithin(t, authLog, "the parent no longer has a DS", 15*time.Second)
	// Without a DS the still-signed zone is insecure, not bogus.
	if m := digDNSSEC(t, resolver, "www.signed.test.", dns.TypeA, false); m.Rcode != dns.RcodeSuccess || countRR(m.Answer, dns.TypeA) != 1 {
		t.Errorf("with the DS gone, still signed: %v", m)
	}
	// The DS TTL (1 h) + 1 h after the removal was seen (the file clock
	// runs on from each setting, so a minute more).
	setClockFile(t, clockFile, t0.Add(28*time.Hour+time.Minute))
	waitForLogWithin(t, authLog, "the zone is now served unsigned", 5*time.Second)
	// The step is logged just before the unsigned version is served.
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(20 * time.Millisecond) {
		if countRR(digDNSSEC(t, authAddr+":53", "signed.test.", dns.TypeDNSKEY, false).Answer, dns.TypeDNSKEY) == 0 {
			break
		}
	}
	var m *dns.Msg
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(50 * time.Millisecond) {
		m = digDNSSEC(t, resolver, "www.signed.test.", dns.TypeA, false)
		if m.Rcode == dns.RcodeSuccess && countRR(m.Answer, dns.TypeA) == 1 && !m.AuthenticatedData && countRR(m.Answer, dns.TypeRRSIG) == 0 {
			break
		}
	}
	if m.Rcode != dns.RcodeSuccess || countRR(m.Answer, dns.TypeA) != 1 || m.AuthenticatedData || countRR(m.Answer, dns.TypeRRSIG) != 0 {
		t.Errorf("after turning signing off: want an insecure answer, got\n%v", m)
	}
}

// TestServeKSKRollover moves the DNS clock through a double-DS KSK
// rollover of a `sextant serve --sign ... ksk-lifetime=2d`: the
// successor's DS is offered as CDS, the test's parent (the root) adds it,
// the serve sees it through its own resolver and, the DS TTL later, swaps
// the KSKs; the parent then drops the old DS. Sextant's resolver validates
// the zone at every step, and `sextant zone status` names the DS to hand
// to a registrar.
func TestServeKSKRollover(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("serve listens on port 53: run as root")
	}
	const (
		rootAddr = "127.80.4.1"
		authAddr = "127.80.4.2"
		resolver = "127.80.4.3:53"
	)
	dir := t.TempDir()
	t0 := time.Now().UTC().Truncate(time.Second)
	clockFile := filepath.Join(dir, "clock")
	setClockFile(t, clockFile, t0)
	stateDir := filepath.Join(dir, "state")
	keyDir := filepath.Join(stateDir, "keys")
	p, err := signer.ParsePolicy("zone=signed.test")
	if err != nil {
		t.Fatal(err)
	}
	was, err := signer.New(p, signer.Options{KeyDir: keyDir, Clock: clockAt(t0)})
	if err != nil {
		t.Fatal(err)
	}
	dsStrings := func(ds []*dns.DS) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.String())
		}
		return out
	}
	oldDS := dsStrings(was.DS())
	root := newTestRoot(t, dir, rootAddr)
	root.write(t, signedDelegation("signed.test.", authAddr, oldDS))
	root.serve(t, dir)
	zoneFile := filepath.Join(dir, "signed.test.zone")
	writeAtomically(t, zoneFile, strings.ReplaceAll(signedZoneText(1, ""), signAuthAddr, authAddr))
	authLog := startServe(t, authAddr+":53", "--root-hints", root.hints, "--trust-anchor", root.anchor, "--upstream-loopback",
		"--zone", zoneFile, "--state-dir", stateDir, "--clock-file", clockFile, "--sign", "zone=signed.test ksk-lifetime=2d")
	startServe(t, resolver, "--root-hints", root.hints, "--trust-anchor", root.anchor, "--upstream-loopback", "--clock-file", clockFile)
	cdsCount := func() int {
		return countRR(digDNSSEC(t, authAddr+":53", "signed.test.", dns.TypeCDS, false).Answer, dns.TypeCDS)
	}
	check := func(step string) {
		t.Helper()
		wantSecure(t, "sextant "+step, resolver, "www.signed.test.", dns.TypeA, dns.RcodeSuccess, 1)
		wantSecure(t, "sextant "+step, resolver, "nope.signed.test.", dns.TypeA, dns.RcodeNameError, 0)
	}
	check("before")
	// Each move of the clock passes every TTL (the DS's is 1 h), so the
	// resolver asks again.
	at := t0.Add(2*24*time.Hour + time.Minute)
	setClockFile(t, clockFile, at)
	waitForLogWithin(t, authLog, "KSK rollover: successor KSK made", 5*time.Second)
	for start := time.Now(); cdsCount() != 2 && time.Since(start) < 5*time.Second; time.Sleep(20 * time.Millisecond) {
	}
	if n := cdsCount(); n != 2 {
		t.Fatalf("%d CDS while the successor's DS is offered, want 2", n)
	}
	check("successor offered")
	var out syncBuffer
	if code := run(context.Background(), []string{"zone", "status", "--state-dir", stateDir, "signed.test"}, &out, &out); code != 0 ||
		strings.Count(out.String(), "DS for parent:") != 2 || !strings.Contains(out.String(), "ksk tag") || !strings.Contains(out.String(), "ds-pending") {
		t.Errorf("zone status during the rollover:\n%s", out.String())
	}
	st, err := signer.ReadStatus(keyDir, "signed.test.")
	if err != nil || len(st.DS) != 2 {
		t.Fatalf("status DS %v %v", st.DS, err)
	}

	// The parent adds the new DS.
	root.write(t, signedDelegation("signed.test.", authAddr, st.DS))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	at = at.Add(2 * time.Hour)
	setClockFile(t, clockFile, at)
	waitForLogWithin(t, authLog, "KSK rollover: the parent has the successor's DS", 15*time.Second)
	check("both DS at the parent")
	at = at.Add(2*time.Hour + time.Minute) // the DS TTL + 1 h
	setClockFile(t, clockFile, at)
	waitForLogWithin(t, authLog, "KSK rollover: successor KSK now signs", 5*time.Second)
	for start := time.Now(); cdsCount() != 1 && time.Since(start) < 5*time.Second; time.Sleep(20 * time.Millisecond) {
	}
	check("successor signing")

	// The parent drops the old DS.
	st, err = signer.ReadStatus(keyDir, "signed.test.")
	if err != nil || len(st.DS) != 1 || st.DS[0] == oldDS[0] {
		t.Fatalf("status DS after the swap %v %v", st.DS, err)
	}
	root.write(t, signedDelegation("signed.test.", authAddr, st.DS))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	at = at.Add(2 * time.Hour)
	setClockFile(t, clockFile, at)
	time.Sleep(time.Second) // the root reloads
	check("old DS gone")
}

// clockAt is a DNS clock stopped at t.
func clockAt(t time.Time) clock.Clock { return clock.NewManual(t) }

// TestServeSignFlagErrors: a bad --sign policy, a zone not served here, a
// key directory with a broken key, or --key-dir alone stop serve at start
// with the reason.
func TestServeSignFlagErrors(t *testing.T) {
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "signed.test.zone")
	writeAtomically(t, zoneFile, signedZoneText(1, ""))
	brokenKeys := filepath.Join(dir, "broken")
	p, _ := signer.ParsePolicy("zone=signed.test")
	if _, err := signer.New(p, signer.Options{KeyDir: brokenKeys}); err != nil {
		t.Fatal(err)
	}
	// Keys of algorithm 8 for the rollover cases.
	if p8, _ := signer.ParsePolicy("zone=signed.test alg=8"); p8 != nil {
		if _, err := signer.New(p8, signer.Options{KeyDir: brokenKeys + "-alg"}); err != nil {
			t.Fatal(err)
		}
	}
	privs, _ := filepath.Glob(filepath.Join(signer.ZoneDir(brokenKeys, "signed.test."), "K*.private"))
	if len(privs) == 0 {
		t.Fatal("no private keys made")
	}
	writeAtomically(t, privs[0], "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: AAAA\n")
	if err := os.Chmod(privs[0], 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--zone", zoneFile, "--sign", "zone=signed.test alg=5"}, "want 8, 13, 14, 15 or 16"},
		{[]string{"--zone", zoneFile, "--sign", "zone=other.test"}, "zone other.test. is not served here"},
		{[]string{"--zone", zoneFile, "--sign", "zone=signed.test", "--sign", "zone=signed.test keys=csk"}, "given twice"},
		{[]string{"--zone", zoneFile, "--key-dir", dir}, "--key-dir without any --sign"},
		{[]string{"--zone", zoneFile, "--sign", "zone=signed.test", "--key-dir", brokenKeys}, ".private"},
		{[]string{"--zone", zoneFile, "--no-dnssec", "--sign", "zone=signed.test unsign=yes", "--key-dir", filepath.Join(dir, "k2")}, "unsign-wait"},
		{[]string{"--zone", zoneFile, "--sign", "zone=signed.test import-dnskey=" + filepath.Join(dir, "none.keys"), "--key-dir", filepath.Join(dir, "k3")}, "import-dnskey"},
		{[]string{"--zone", zoneFile, "--sign", "zone=signed.test import-dnskey=" + zoneFile, "--key-dir", filepath.Join(dir, "k4")}, "is not a DNSKEY record"},
		{[]string{"--zone", zoneFile, "--no-dnssec", "--sign", "zone=signed.test alg=15", "--key-dir", brokenKeys + "-alg"}, "algorithm 8, the policy asks for 15"},
		{[]string{"--zone", zoneFile, "--sign", "zone=signed.test alg=8 keys=csk", "--key-dir", brokenKeys + "-alg"}, "changing the key layout needs a change of algorithm"},
		{[]string{"--zone", zoneFile, "--sign", "zone=signed.test csk-lifetime=30d"}, "csk-lifetime needs keys=csk"},
	}
	for _, c := range cases {
		var out syncBuffer
		args := append([]string{"serve", "--listen", "127.80.5.1:53", "--state-dir", filepath.Join(dir, "state")}, c.args...)
		if code := run(context.Background(), args, &out, &out); code == 0 || !strings.Contains(out.String(), c.want) {
			t.Errorf("%q: exit %d, output %q; want an error saying %q", c.args, code, out.String(), c.want)
		}
	}
}
