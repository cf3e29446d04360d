package main

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority/signer"
	"github.com/sextant-dns/sextant/internal/dnstest"
	"github.com/sextant-dns/sextant/internal/labtest"
	"github.com/sextant-dns/sextant/lab"
)

// The flattening test's loopback block: the lab on 127.103.0.x, serve on
// 127.103.255.1 (ARCHITECTURE.md).
var (
	flattenLabBase = netip.MustParseAddr("127.103.0.0")
	flattenListen  = "127.103.255.1:53"
	// flattenXfrListen is where the flattening serve offers its zone to
	// the secondaries, which transfer from flattenSecondaryAddr.
	flattenXfrListen      = "127.103.255.1:5353"
	flattenSecondaryAddr  = "127.103.255.3"
	flattenSecondary      = "127.103.255.3:53"
	flattenPlainSecondary = "127.103.255.4:53"
	flattenUnbound        = "127.103.255.5"
)

// flatZone is flat.example.: its apex a CNAME to the lab's secure13 zone;
// sub a CNAME to a CNAME there (chain of two); down a CNAME to a zone
// whose only server refuses.
const flatZone = `$ORIGIN flat.example.
$TTL 3600
@    SOA ns1 hostmaster 1 7200 3600 1209600 300
@    NS  ns1
ns1  A   127.103.255.1
@    600 CNAME www.` + lab.SecureAlg13 + `
@    TXT "apex data"
sub  5000 CNAME cname-secure.` + lab.SecureAlg13 + `
down CNAME www.` + lab.Lame + `
`

func writeFlatZone(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flat.zone")
	if err := os.WriteFile(path, []byte(flatZone), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFlattenThroughLab serves flat.example. with --flatten over the lab:
// the apex's A and AAAA are the target's, at the apex, with the chain's
// smallest TTL, validated by Sextant's resolver; a target whose servers
// fail gives SERVFAIL with an EDE.
func TestFlattenThroughLab(t *testing.T) {
	dir := labtest.StartFiles(t, lab.Config{AddrBase: flattenLabBase, BulkHosts: 2})
	zone := writeFlatZone(t)
	labFlags := []string{"--root-hints", filepath.Join(dir, lab.FileRootHints), "--trust-anchor", filepath.Join(dir, lab.FileRootDS)}
	startServe(t, flattenListen, append(slices.Clip(labFlags), "--zone", zone, "--flatten", "flat.example.=all",
		"--xfr-out", "zone=flat.example. allow="+flattenSecondaryAddr, "--xfr-listen", flattenXfrListen)...)

	ask := func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		return digDNSSEC(t, flattenListen, name, qtype, false)
	}
	for _, tc := range []struct {
		qtype uint16
		want  string
	}{{dns.TypeA, "127.0.2.13"}, {dns.TypeAAAA, "::1"}} {
		for round := range 2 { // the second from the flattening cache
			m := ask("flat.example.", tc.qtype)
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
				t.Fatalf("round %d flat.example. %s:\n%v", round, dns.TypeToString[tc.qtype], m)
			}
			h := m.Answer[0].Header()
			got := strings.Fields(m.Answer[0].String())
			if h.Name != "flat.example." || h.Rrtype != tc.qtype || got[len(got)-1] != tc.want {
				t.Errorf("round %d: answer %v, want %s at flat.example.", round, m.Answer[0], tc.want)
			}
			if h.Ttl > 600 || h.Ttl < 590 {
				t.Errorf("round %d: TTL %d, want the CNAME's 600 (smaller than the target's 3600)", round, h.Ttl)
			}
		}
	}
	// The apex keeps its own data; the CNAME is never sent.
	if m := ask("flat.example.", dns.TypeTXT); len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != dns.TypeTXT {
		t.Errorf("apex TXT:\n%v", m)
	}
	if m := ask("flat.example.", dns.TypeSOA); len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != dns.TypeSOA {
		t.Errorf("apex SOA:\n%v", m)
	}
	// A chain of two CNAMEs in the lab (3600 each) under a 5000 one.
	m := ask("sub.flat.example.", dns.TypeA)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].Header().Name != "sub.flat.example." ||
		m.Answer[0].Header().Ttl > 3600 || m.Answer[0].Header().Ttl < 3000 {
		t.Errorf("sub A: want one A at sub.flat.example. with the chain's TTL (<= 3600)\n%v", m)
	}
	// The target's only server refuses: SERVFAIL with an EDE, no records.
	m = ask("down.flat.example.", dns.TypeA)
	if m.Rcode != dns.RcodeServerFailure || len(m.Answer) != 0 {
		t.Fatalf("down A: want SERVFAIL without records\n%v", m)
	}
	if ede := dnstest.EDE(m); ede == nil || !strings.Contains(ede.ExtraText, "www."+lab.Lame) {
		t.Errorf("down A: EDE %v, want one naming www.%s", ede, lab.Lame)
	}

	// Unbound, with flat.example. stubbed to this serve, caches and hands
	// on the flattened answers like any authoritative data.
	udir := t.TempDir()
	startUnboundWith(t, udir, filepath.Join(dir, lab.FileRootHints), filepath.Join(dir, lab.FileRootDS), flattenUnbound,
		"\tdomain-insecure: \"flat.example.\"\nstub-zone:\n\tname: \"flat.example.\"\n\tstub-addr: "+strings.TrimSuffix(flattenListen, ":53")+"\n")
	for _, qt := range []uint16{dns.TypeA, dns.TypeA, dns.TypeSOA} {
		m := digDNSSEC(t, flattenUnbound+":53", "flat.example.", qt, false)
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != qt || m.Answer[0].Header().Name != "flat.example." {
			t.Errorf("through Unbound, flat.example. %s:\n%v", dns.TypeToString[qt], m)
		}
	}
	if m := digDNSSEC(t, flattenUnbound+":53", "down.flat.example.", dns.TypeA, false); m.Rcode != dns.RcodeServerFailure || len(m.Answer) != 0 {
		t.Errorf("through Unbound, down.flat.example. A: want SERVFAIL\n%v", m)
	}

	// A secondary takes the transferred apex CNAME only when it flattens
	// the zone too.
	secondaryOf := func(listen string, flatten ...string) (*syncBuffer, func() *dns.Msg) {
		args := append(slices.Clip(labFlags), "--state-dir", t.TempDir(), "--secondary",
			"zone=flat.example. primary="+flattenXfrListen+" source="+flattenSecondaryAddr)
		out := startServe(t, listen, append(args, flatten...)...)
		return out, func() *dns.Msg { return digDNSSEC(t, listen, "flat.example.", dns.TypeA, false) }
	}
	_, askFlat := secondaryOf(flattenSecondary, "--flatten", "flat.example.")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m := askFlat()
		if m.Rcode == dns.RcodeSuccess && len(m.Answer) == 1 && m.Answer[0].Header().Name == "flat.example." &&
			m.Answer[0].(*dns.A).A.String() == "127.0.2.13" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flattening secondary: flat.example. A never answered from the transferred zone:\n%v", m)
		}
	}
	out, askPlain := secondaryOf(flattenPlainSecondary)
	waitForLog(t, out, "CNAME beside other data")
	if m := askPlain(); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("secondary without --flatten: want SERVFAIL (zone not transferred)\n%v", m)
	}
}

// TestFlattenStartErrors: bad flattening configuration stops serve at
// start with the reason.
func TestFlattenStartErrors(t *testing.T) {
	zone := writeFlatZone(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"apex CNAME without --flatten", []string{"--zone", zone}, "flat.zone:6: CNAME beside other data (NS) at the apex flat.example."},
		{"zone not served", []string{"--zone", zone, "--flatten", "flat.example.", "--flatten", "other.example."}, "--flatten other.example.: neither a --zone file nor a --secondary serves"},
		{"bad mode", []string{"--zone", zone, "--flatten", "flat.example.=some"}, `flattening mode "some" is neither apex nor all`},
		{"signed, all", []string{"--zone", zone, "--flatten", "flat.example.=all", "--sign", "zone=flat.example."}, "only the apex CNAME can be flattened"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out syncBuffer
			args := append([]string{"serve", "--listen", "127.103.255.2:53", "--state-dir", t.TempDir()}, c.args...)
			if code := run(ctx, args, &out, &out); code != 1 || !strings.Contains(out.String(), c.want) {
				t.Errorf("exit %d, want 1 with %q\n%s", code, c.want, out.String())
			}
		})
	}
}

// The signed flattening test's addresses: a test root, the signing and
// flattening serve, Sextant's resolver and Unbound.
const (
	flatSignRoot     = "127.103.1.9"
	flatSignAuth     = "127.103.1.1"
	flatSignResolver = "127.103.1.2"
	flatSignUnbound  = "127.103.1.3"
)

// TestFlattenSignedZoneValidates: a zone signed online with its apex CNAME
// flattened; the flattened A RRset is signed online with the zone's key
// and validates through Sextant's resolver and Unbound, as does the NODATA
// of a type the target lacks and the apex's own data.
func TestFlattenSignedZoneValidates(t *testing.T) {
	dir := t.TempDir()
	root := newTestRoot(t, dir, flatSignRoot)
	zoneFile := filepath.Join(dir, "flat.test.zone")
	zoneText := `$ORIGIN flat.test.
$TTL 3600
@    SOA ns1 hostmaster 1 7200 3600 1209600 300
@    NS  ns1
ns1  A   ` + flatSignAuth + `
@    600 CNAME www.target.test.
@    MX  10 ns1
`
	writeAtomically(t, zoneFile, zoneText)
	stateDir := filepath.Join(dir, "state")
	authLog := startServe(t, flatSignAuth+":53", "--root-hints", root.hints, "--trust-anchor", root.anchor, "--upstream-loopback",
		"--zone", zoneFile, "--flatten", "flat.test.", "--state-dir", stateDir, "--sign", "zone=flat.test")
	st, err := signer.ReadStatus(filepath.Join(stateDir, "keys"), "flat.test.")
	if err != nil {
		t.Fatalf("signing status: %v\n%s", err, authLog.String())
	}
	// The target lives in the signed root itself.
	root.write(t, signedDelegation("flat.test.", flatSignAuth, st.DS)+"www.target.test. 3600 IN A 192.0.2.77\n")
	root.serve(t, dir)
	startServe(t, flatSignResolver+":53", "--root-hints", root.hints, "--trust-anchor", root.anchor, "--upstream-loopback")
	unboundDir := filepath.Join(dir, "unbound")
	if err := os.Mkdir(unboundDir, 0o755); err != nil {
		t.Fatal(err)
	}
	startUnbound(t, unboundDir, root.hints, root.anchor, flatSignUnbound)

	// The signing serve started before the root: its resolver remembers
	// the root's failure a few seconds, and flattening answers SERVFAIL.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		m := digDNSSEC(t, flatSignAuth+":53", "flat.test.", dns.TypeA, false)
		if m.Rcode == dns.RcodeSuccess {
			break
		}
		if m.Rcode != dns.RcodeServerFailure || dnstest.EDE(m) == nil || time.Now().After(deadline) {
			t.Fatalf("flattening serve, flat.test. A: want SERVFAIL with EDE until the root answers, then an answer\n%v", m)
		}
	}
	for _, r := range []struct{ name, addr string }{{"sextant", flatSignResolver + ":53"}, {"unbound", flatSignUnbound + ":53"}} {
		// NODATA first: its apex NSEC must not let a resolver that uses
		// NSEC aggressively (Sextant's, RFC 8198) deny the flattened A.
		wantSecure(t, r.name, r.addr, "flat.test.", dns.TypeTXT, dns.RcodeSuccess, 0)
		wantSecure(t, r.name, r.addr, "flat.test.", dns.TypeA, dns.RcodeSuccess, 1)
		// The target has no AAAA: NODATA proved by an NSEC signed online.
		wantSecure(t, r.name, r.addr, "flat.test.", dns.TypeAAAA, dns.RcodeSuccess, 0)
		wantSecure(t, r.name, r.addr, "flat.test.", dns.TypeMX, dns.RcodeSuccess, 1)
	}
	m := digDNSSEC(t, flatSignResolver+":53", "flat.test.", dns.TypeA, false)
	if len(m.Answer) == 0 || m.Answer[0].Header().Name != "flat.test." || m.Answer[0].(*dns.A).A.String() != "192.0.2.77" {
		t.Errorf("flat.test. A through Sextant's resolver: want 192.0.2.77 at flat.test.\n%v", m)
	}

	// A change by SIGHUP is signed incrementally: the patched zone still
	// signs its flattened answers and their denials.
	writeAtomically(t, zoneFile, zoneText+"zz TXT \"new\"\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, authLog, "serial=2")
	waitForLog(t, authLog, "zone change signed") // incrementally (authority.Resign)
	for _, r := range []struct{ name, addr string }{{"sextant", flatSignResolver + ":53"}, {"unbound", flatSignUnbound + ":53"}} {
		wantSecure(t, r.name, r.addr, "zz.flat.test.", dns.TypeTXT, dns.RcodeSuccess, 1)
		wantSecure(t, r.name, r.addr, "flat.test.", dns.TypeHTTPS, dns.RcodeSuccess, 0)
	}
	if m := digDNSSEC(t, flatSignAuth+":53", "flat.test.", dns.TypeA, false); countRR(m.Answer, dns.TypeRRSIG) == 0 {
		t.Errorf("flat.test. A from the patched zone: no RRSIG\n%v", m)
	}
}
