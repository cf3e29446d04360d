package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority/signer"
)

// The key-set rollover tests' loopback block, 127.90.0.0/16: .N.1 the
// test root, .N.2 the signing serve, .N.3 Sextant's resolver, .N.4
// Unbound, one N per case.

// keyRollTTL is every TTL of the rolled zone and of its DS at the root:
// Unbound's cache runs on the wall clock, so between two steps of the DNS
// clock its entries expire after this long, as they would have in the DNS
// time the step covers.
const keyRollTTL = 2

// keyRollZone is the signed zone, with TTLs of keyRollTTL.
func keyRollZone(authAddr string) string {
	return fmt.Sprintf(`$ORIGIN signed.test.
$TTL %[1]d
@ SOA ns1 hostmaster 1 3600 600 86400 %[1]d
@ NS ns1
ns1 A %[2]s
www A 192.0.2.1
mail MX 10 www
`, keyRollTTL, authAddr)
}

// TestServeKeySetRollovers moves `sextant serve --sign` through an
// algorithm rollover (RSA/SHA-256 KSK+ZSK to an ECDSA P-256 CSK) and a CSK
// rollover (csk-lifetime) with the DNS clock (--clock-file): at every
// stage, right after the change and again once the caches' entries of the
// stage before have expired, Sextant's resolver and Unbound both answer
// with AD, NOERROR for a name and NXDOMAIN for another, never SERVFAIL.
// The test's root plays the parent that follows the CDS.
func TestServeKeySetRollovers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("serve listens on port 53: run as root")
	}
	cases := []struct {
		name, from, policy string
		block              int
		// start is how far the DNS clock moves to start the rollover.
		start time.Duration
	}{
		{"algorithm 8 to 13", "zone=signed.test alg=8", "zone=signed.test alg=13 keys=csk", 1, time.Minute},
		{"csk-lifetime", "zone=signed.test keys=csk", "zone=signed.test keys=csk csk-lifetime=1d", 2, 24*time.Hour + time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keyRollover(t, c.from, c.policy, c.block, c.start)
		})
	}
}

func keyRollover(t *testing.T, from, policy string, block int, start time.Duration) {
	rootAddr := fmt.Sprintf("127.90.%d.1", block)
	authAddr := fmt.Sprintf("127.90.%d.2", block)
	resolverAddr := fmt.Sprintf("127.90.%d.3:53", block)
	unboundAddr := fmt.Sprintf("127.90.%d.4", block)
	dir := t.TempDir()
	t0 := time.Now().UTC().Truncate(time.Second)
	clockFile := filepath.Join(dir, "clock")
	setClockFile(t, clockFile, t0)
	stateDir := filepath.Join(dir, "state")
	keyDir := filepath.Join(stateDir, "keys")
	p, err := signer.ParsePolicy(from)
	if err != nil {
		t.Fatal(err)
	}
	was, err := signer.New(p, signer.Options{KeyDir: keyDir, Clock: clockAt(t0)})
	if err != nil {
		t.Fatal(err)
	}
	root := newTestRoot(t, dir, rootAddr)
	delegate := func(ds []*dns.DS) {
		t.Helper()
		var lines []string
		for _, d := range ds {
			d := *d
			d.Hdr.Ttl = keyRollTTL
			lines = append(lines, d.String())
		}
		root.write(t, signedDelegation("signed.test.", authAddr, lines))
	}
	delegate(was.DS())
	root.serve(t, dir)
	zoneFile := filepath.Join(dir, "signed.test.zone")
	writeAtomically(t, zoneFile, keyRollZone(authAddr))
	authLog := startServe(t, authAddr+":53", "--root-hints", root.hints, "--trust-anchor", root.anchor, "--upstream-loopback",
		"--zone", zoneFile, "--state-dir", stateDir, "--clock-file", clockFile, "--sign", policy)
	startServe(t, resolverAddr, "--root-hints", root.hints, "--trust-anchor", root.anchor, "--upstream-loopback", "--clock-file", clockFile)
	unboundDir := filepath.Join(dir, "unbound")
	if err := os.Mkdir(unboundDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Unbound checks signature validity on the wall clock unless told a
	// date: one inside every signature window of the test's DNS times.
	startUnboundWith(t, unboundDir, root.hints, root.anchor, unboundAddr,
		"\tval-override-date: \""+t0.Add(2*24*time.Hour).Format("20060102150405")+"\"")

	resolvers := []namedResolver{{"sextant", resolverAddr}, {"unbound", unboundAddr + ":53"}}
	check := func(step string) {
		t.Helper()
		checkSignedTestAD(t, step, resolvers, authLog.String)
	}
	// served says which algorithms the serve's DNSKEY RRset holds and
	// which sign www A, as "keys/signatures" (e.g. "8/8,13").
	served := func() string {
		algs := func(name string, qtype uint16) string {
			seen := map[uint8]bool{}
			for _, rr := range digDNSSEC(t, authAddr+":53", name, qtype, false).Answer {
				switch r := rr.(type) {
				case *dns.DNSKEY:
					if qtype == dns.TypeDNSKEY {
						seen[r.Algorithm] = true
					}
				case *dns.RRSIG:
					if qtype != dns.TypeDNSKEY {
						seen[r.Algorithm] = true
					}
				}
			}
			var out []string
			for _, a := range []uint8{dns.RSASHA256, dns.ECDSAP256SHA256} {
				if seen[a] {
					out = append(out, fmt.Sprint(a))
				}
			}
			return strings.Join(out, ",")
		}
		return algs("signed.test.", dns.TypeDNSKEY) + "/" + algs("www.signed.test.", dns.TypeA)
	}
	// checkStage checks at once (caches hold the stage before) and again
	// once their entries have expired; want is what the serve publishes
	// (served; not checked for the CSK rollover, whose algorithm stays,
	// nor when "").
	checkStage := func(stage, want string) {
		t.Helper()
		check(stage + " (caches from before)")
		time.Sleep(keyRollTTL*time.Second + 500*time.Millisecond)
		check(stage)
		if got := served(); want != "" && from != "zone=signed.test keys=csk" && got != want {
			t.Fatalf("%s: DNSKEY algorithms / www A signature algorithms %q, want %q", stage, got, want)
		}
	}
	at := t0
	move := func(d time.Duration) {
		at = at.Add(d)
		setClockFile(t, clockFile, at)
	}
	checkStage("before", "") // the algorithm rollover may have started

	// Each stage waits for the zone's largest TTL or the DNSKEY TTL (2 s)
	// plus an hour of safety: a move of an hour and a minute passes it.
	const stageWait = time.Hour + time.Minute
	move(start)
	waitForLogWithin(t, authLog, "key rollover: the new keys sign beside the old ones", 10*time.Second)
	checkStage("new signatures, unpublished", "8/8,13")
	move(stageWait)
	waitForLogWithin(t, authLog, "key rollover: the new DNSKEYs are published", 10*time.Second)
	checkStage("new DNSKEYs published", "8,13/8,13")
	move(stageWait)
	waitForLogWithin(t, authLog, "key rollover: CDS/CDNSKEY name the new KSK", 10*time.Second)
	checkStage("CDS names the new KSK", "8,13/8,13")

	// The parent follows the CDS.
	m := digDNSSEC(t, authAddr+":53", "signed.test.", dns.TypeCDS, false)
	var ds []*dns.DS
	for _, rr := range m.Answer {
		if c, ok := rr.(*dns.CDS); ok {
			ds = append(ds, &dns.DS{Hdr: dns.RR_Header{Name: "signed.test.", Rrtype: dns.TypeDS, Class: dns.ClassINET},
				KeyTag: c.KeyTag, Algorithm: c.Algorithm, DigestType: c.DigestType, Digest: c.Digest})
		}
	}
	st, err := signer.ReadStatus(keyDir, "signed.test.")
	if err != nil || len(ds) != 1 || len(st.DS) != 1 || !strings.Contains(st.DS[0], strings.ToUpper(ds[0].Digest)) || !strings.Contains(st.Roll, "new-ds") {
		t.Fatalf("CDS %v, status DS %v roll %q (%v): want the new KSK's alone", ds, st.DS, st.Roll, err)
	}
	delegate(ds)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the root reloads
	move(time.Minute)       // the serve's resolver asks the parent again
	waitForLogWithin(t, authLog, "key rollover: the parent has the new DS", 20*time.Second)
	checkStage("the parent has the new DS", "8,13/8,13")
	move(stageWait)
	waitForLogWithin(t, authLog, "key rollover: the old DNSKEYs are removed", 10*time.Second)
	checkStage("old DNSKEYs removed", "13/8,13")
	move(stageWait)
	waitForLogWithin(t, authLog, "key rollover: done", 10*time.Second)
	checkStage("done", "13/13")
	if st, err := signer.ReadStatus(keyDir, "signed.test."); err != nil || st.Roll != "" || len(st.Keys) != 1 {
		t.Errorf("status after the rollover: roll %q keys %v (%v), want one key and no rollover", st.Roll, st.Keys, err)
	}
}

// namedResolver is a resolver under test: its name in failures and its
// address.
type namedResolver struct{ name, addr string }

// checkSignedTestAD asks each resolver once for www.signed.test. A
// (NOERROR) and nope.signed.test. A (NXDOMAIN): a wrong rcode or a
// missing AD fails the test, no retries. log, if set, is added to the
// failure.
func checkSignedTestAD(t *testing.T, step string, resolvers []namedResolver, log func() string) {
	t.Helper()
	for _, r := range resolvers {
		for _, q := range []struct {
			name  string
			rcode int
		}{{"www.signed.test.", dns.RcodeSuccess}, {"nope.signed.test.", dns.RcodeNameError}} {
			m := digDNSSEC(t, r.addr, q.name, dns.TypeA, false)
			if m.Rcode != q.rcode || !m.AuthenticatedData {
				extra := ""
				if log != nil {
					extra = "serve log:\n" + log()
				}
				t.Fatalf("%s, %s: %s A: %s AD=%v, want %s with AD\n%v\n%s", step, r.name, q.name,
					dns.RcodeToString[m.Rcode], m.AuthenticatedData, dns.RcodeToString[q.rcode], m, extra)
			}
		}
	}
}
