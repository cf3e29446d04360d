package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/authority/signer"
)

// providerKeys is the import file another provider needs of the keys
// under keyDir: the DNSKEY records of the want keys its status lists (it
// is written once the step logged is signed: waited for).
func providerKeys(t *testing.T, keyDir string, want int) string {
	t.Helper()
	var st signer.Status
	var err error
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
		if st, err = signer.ReadStatus(keyDir, "signed.test."); err == nil && len(st.Keys) == want {
			break
		}
	}
	if err != nil || len(st.Keys) != want {
		t.Fatalf("status of %s: keys %v (%v), want %d", keyDir, st.Keys, err, want)
	}
	var b strings.Builder
	for _, k := range st.Keys {
		text, err := os.ReadFile(filepath.Join(signer.ZoneDir(keyDir, "signed.test."), k.File+".key"))
		if err != nil {
			t.Fatal(err)
		}
		b.Write(text)
	}
	return b.String()
}

// rrsetWithSigs asks server for name/qtype with DO and returns the RRset
// and its RRSIGs.
func rrsetWithSigs(t *testing.T, server, name string, qtype uint16) ([]dns.RR, []*dns.RRSIG) {
	t.Helper()
	m := digDNSSEC(t, server, name, qtype, false)
	var set []dns.RR
	var sigs []*dns.RRSIG
	for _, rr := range m.Answer {
		switch r := rr.(type) {
		case *dns.RRSIG:
			if r.TypeCovered == qtype {
				sigs = append(sigs, r)
			}
		default:
			if rr.Header().Rrtype == qtype {
				set = append(set, rr)
			}
		}
	}
	if len(set) == 0 || len(sigs) == 0 {
		t.Fatalf("%s %s from %s: no signed RRset\n%v", name, dns.TypeToString[qtype], server, m)
	}
	return set, sigs
}

// TestServeMultiSigner runs two `sextant serve --sign` as the two
// providers of one zone (RFC 8901 model 2), each with its own keys and
// importing the other's (import-dnskey): the parent holds a DS for both
// KSKs; Sextant's resolver and Unbound, led by one test root to each
// provider, answer with AD, never SERVFAIL, before and during a ZSK
// rollover at the second provider (whose keys the first re-reads from
// its import file); and an answer of either provider validates with the
// DNSKEY RRset of the other, as a resolver that mixes them needs.
func TestServeMultiSigner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("serve listens on port 53: run as root")
	}
	const (
		rootA, authA, resolverA, unboundA = "127.90.3.1", "127.90.3.2", "127.90.3.3:53", "127.90.3.4"
		rootB, authB, resolverB, unboundB = "127.90.3.11", "127.90.3.12", "127.90.3.13:53", "127.90.3.14"
	)
	dir := t.TempDir()
	t0 := time.Now().UTC().Truncate(time.Second)
	clockFile := filepath.Join(dir, "clock")
	setClockFile(t, clockFile, t0)
	keysA, keysB := filepath.Join(dir, "a", "keys"), filepath.Join(dir, "b", "keys")
	importA, importB := filepath.Join(dir, "for-a.keys"), filepath.Join(dir, "for-b.keys")
	policyA, policyB := "zone=signed.test import-dnskey="+importA, "zone=signed.test zsk-lifetime=1d import-dnskey="+importB
	// Each provider's keys, then each imports the other's.
	for _, k := range []struct{ dir, spec string }{{keysA, "zone=signed.test"}, {keysB, "zone=signed.test zsk-lifetime=1d"}} {
		p, err := signer.ParsePolicy(k.spec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := signer.New(p, signer.Options{KeyDir: k.dir, Clock: clockAt(t0)}); err != nil {
			t.Fatal(err)
		}
	}
	writeAtomically(t, importA, providerKeys(t, keysB, 2))
	writeAtomically(t, importB, providerKeys(t, keysA, 2))

	zoneFile := filepath.Join(dir, "signed.test.zone")
	writeAtomically(t, zoneFile, fmt.Sprintf(`$ORIGIN signed.test.
$TTL %[1]d
@ SOA ns1 hostmaster 1 3600 600 86400 %[1]d
@ NS ns1
@ NS ns2
ns1 A %[2]s
ns2 A %[3]s
www A 192.0.2.1
mail MX 10 www
`, keyRollTTL, authA, authB))
	deadHints := filepath.Join(dir, "dead.hints")
	writeAtomically(t, deadHints, ". 3600 IN NS a.root.test.\na.root.test. 3600 IN A 127.90.3.9\n")
	logA := startServe(t, authA+":53", "--root-hints", deadHints, "--no-dnssec", "--zone", zoneFile,
		"--state-dir", filepath.Join(dir, "a"), "--clock-file", clockFile, "--sign", policyA)
	logB := startServe(t, authB+":53", "--root-hints", deadHints, "--no-dnssec", "--zone", zoneFile,
		"--state-dir", filepath.Join(dir, "b"), "--clock-file", clockFile, "--sign", policyB)

	// The parent: a DS for each provider's KSK, which each names in its
	// status (and CDS).
	st, err := signer.ReadStatus(keysA, "signed.test.")
	if err != nil || len(st.DS) != 2 {
		t.Fatalf("provider A's DS for the parent: %v (%v), want both KSKs'", st.DS, err)
	}
	var ds []string
	for _, line := range st.DS {
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatal(err)
		}
		rr.Header().Ttl = keyRollTTL
		ds = append(ds, rr.String())
	}
	if n := countRR(digDNSSEC(t, authB+":53", "signed.test.", dns.TypeCDS, false).Answer, dns.TypeCDS); n != 2 {
		t.Errorf("provider B publishes %d CDS, want both KSKs'", n)
	}
	// One root leads to each provider.
	var resolvers []namedResolver
	for _, r := range []struct{ root, ns, auth, resolver, unbound, name string }{
		{rootA, "ns1", authA, resolverA, unboundA, "A"},
		{rootB, "ns2", authB, resolverB, unboundB, "B"},
	} {
		rdir := filepath.Join(dir, "root"+r.name)
		if err := os.Mkdir(rdir, 0o755); err != nil {
			t.Fatal(err)
		}
		root := newTestRoot(t, rdir, r.root)
		root.write(t, fmt.Sprintf("signed.test. 3600 IN NS %[1]s.signed.test.\n%[1]s.signed.test. 3600 IN A %[2]s\n%[3]s\n", r.ns, r.auth, strings.Join(ds, "\n")))
		root.serve(t, rdir)
		startServe(t, r.resolver, "--root-hints", root.hints, "--trust-anchor", root.anchor, "--upstream-loopback", "--clock-file", clockFile)
		udir := filepath.Join(rdir, "unbound")
		if err := os.Mkdir(udir, 0o755); err != nil {
			t.Fatal(err)
		}
		startUnboundWith(t, udir, root.hints, root.anchor, r.unbound,
			"\tval-override-date: \""+t0.Add(2*24*time.Hour).Format("20060102150405")+"\"")
		resolvers = append(resolvers,
			namedResolver{"sextant via provider " + r.name, r.resolver},
			namedResolver{"unbound via provider " + r.name, r.unbound + ":53"})
	}

	check := func(step string) {
		t.Helper()
		checkSignedTestAD(t, step, resolvers, nil)
		// A resolver holding one provider's DNSKEY RRset and an answer of
		// the other validates it.
		for _, p := range []struct{ keys, data string }{{authA, authB}, {authB, authA}} {
			keys, _ := rrsetWithSigs(t, p.keys+":53", "signed.test.", dns.TypeDNSKEY)
			set, sigs := rrsetWithSigs(t, p.data+":53", "www.signed.test.", dns.TypeA)
			for _, sig := range sigs {
				ok := false
				for _, rr := range keys {
					if k := rr.(*dns.DNSKEY); k.KeyTag() == sig.KeyTag && authority.VerifySignature(sig, k, set) == nil {
						ok = true
					}
				}
				if !ok {
					t.Fatalf("%s: www A from %s, signed by key %d, does not verify with the DNSKEY RRset of %s", step, p.data, sig.KeyTag, p.keys)
				}
			}
		}
	}
	checkStage := func(step string) {
		t.Helper()
		check(step + " (caches from before)")
		time.Sleep(keyRollTTL*time.Second + 500*time.Millisecond)
		check(step)
	}
	checkStage("start")

	// Provider B rolls its ZSK (Ipub and Iret are the 2 s TTLs plus an
	// hour); A takes B's keys from its import file at each step.
	const wait = time.Hour + time.Minute
	at := t0.Add(24*time.Hour - time.Hour + time.Minute)
	setClockFile(t, clockFile, at)
	waitForLogWithin(t, logB, "ZSK rollover: successor ZSK published", 10*time.Second)
	writeAtomically(t, importA, providerKeys(t, keysB, 3))
	waitForLogWithin(t, logA, "imported DNSKEYs changed", 10*time.Second)
	checkStage("B's successor ZSK published")
	at = at.Add(wait)
	setClockFile(t, clockFile, at)
	waitForLogWithin(t, logB, "ZSK rollover: successor ZSK now signs", 10*time.Second)
	checkStage("B's successor ZSK signs")
	at = at.Add(wait)
	setClockFile(t, clockFile, at)
	waitForLogWithin(t, logB, "ZSK rollover: old ZSK removed", 10*time.Second)
	writeAtomically(t, importA, providerKeys(t, keysB, 2))
	checkStage("B's old ZSK removed")
}
