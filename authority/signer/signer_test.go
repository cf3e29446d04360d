package signer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/clock"
)

const testZone = "signed.test."

// zoneText is a small zone with a delegation (secure when ds is set).
func zoneText(serial int, www, ds string) string {
	return "$ORIGIN signed.test.\n$TTL 300\n" +
		"@ SOA ns1 hostmaster " + strconv.Itoa(serial) + " 3600 600 86400 60\n" +
		"@ NS ns1\nns1 A 192.0.2.53\nwww A " + www + "\n" +
		"sub NS ns.sub\nns.sub A 192.0.2.54\n" + ds
}

func mustZone(t *testing.T, text string) *authority.Zone {
	t.Helper()
	z, err := authority.ParseZone(strings.NewReader(text), testZone, "test")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// verifyZone checks every RRSIG of z against its DNSKEYs and the time,
// and that the RRsets a validator needs are signed.
func verifyZone(t *testing.T, z *authority.Zone, at time.Time) {
	t.Helper()
	if !z.Signed() {
		t.Fatal("zone served unsigned")
	}
	rrs := z.Records()
	keys := map[uint16]*dns.DNSKEY{}
	sets := map[[2]string][]dns.RR{}
	signed := map[[2]string]bool{}
	for _, rr := range rrs {
		if k, ok := rr.(*dns.DNSKEY); ok {
			keys[k.KeyTag()] = k
		}
		if _, ok := rr.(*dns.RRSIG); !ok {
			k := [2]string{rr.Header().Name, dns.TypeToString[rr.Header().Rrtype]}
			sets[k] = append(sets[k], rr)
		}
	}
	for _, rr := range rrs {
		sig, ok := rr.(*dns.RRSIG)
		if !ok {
			continue
		}
		k := [2]string{sig.Hdr.Name, dns.TypeToString[sig.TypeCovered]}
		key := keys[sig.KeyTag]
		if key == nil {
			t.Errorf("%v: no DNSKEY %d", k, sig.KeyTag)
			continue
		}
		if err := authority.VerifySignature(sig, key, sets[k]); err != nil {
			t.Errorf("%v: %v", k, err)
		}
		if !sig.ValidityPeriod(at) {
			t.Errorf("%v: not valid at %v", k, at)
		}
		signed[k] = true
	}
	for _, want := range [][2]string{{testZone, "SOA"}, {testZone, "DNSKEY"}, {testZone, "CDS"}, {"www." + testZone, "A"}} {
		if !signed[want] {
			t.Errorf("%v not signed", want)
		}
	}
	if signed[[2]string{"sub." + testZone, "NS"}] || signed[[2]string{"ns.sub." + testZone, "A"}] {
		t.Error("delegation NS or glue signed")
	}
}

func serialOf(z *authority.Zone) uint32 { return z.SOA().Serial }

// TestSignerSignsEachVersion: a zone is signed when its hook is installed,
// again when it changes (only what changed), not again for the same
// content, and again when the clock reaches the refresh point; with
// serial=increment the serial rises with every signed version.
func TestSignerSignsEachVersion(t *testing.T) {
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	p, err := ParsePolicy("zone=signed.test validity=14d refresh=5d")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(p, Options{KeyDir: t.TempDir(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	srv := authority.NewServer(mustZone(t, zoneText(7, "192.0.2.1", "")))
	srv.SetPublishHook(testZone, s.Publish)
	first := srv.Zone(testZone)
	verifyZone(t, first, clk.Now())
	if got := serialOf(first); got != 7 {
		t.Errorf("first serial %d, want the unsigned 7", got)
	}

	// The same content again (a SIGHUP that changed nothing).
	srv.Set(mustZone(t, zoneText(7, "192.0.2.1", "")))
	if srv.Zone(testZone) != first {
		t.Error("unchanged content signed again")
	}

	// A change: the serial goes up by one even though the unsigned one did
	// not, and only a few RRsets are signed anew.
	clk.Advance(time.Hour)
	srv.Set(mustZone(t, zoneText(7, "192.0.2.2", "")))
	second := srv.Zone(testZone)
	verifyZone(t, second, clk.Now())
	if got := serialOf(second); got != 8 {
		t.Errorf("serial after a change %d, want 8", got)
	}
	if st := s.Status(); st.SignedRRsets != 2 || st.ReusedRRsets == 0 || !st.Incremental {
		t.Errorf("after a one-record change: %+v, want www/A and SOA signed anew by a patch", st)
	}
	// The unsigned serial ahead: followed.
	srv.Set(mustZone(t, zoneText(100, "192.0.2.3", "")))
	if got := serialOf(srv.Zone(testZone)); got != 100 {
		t.Errorf("serial %d, want the unsigned 100 that is ahead", got)
	}
	third := srv.Zone(testZone)

	// Before the refresh point nothing happens; after it, a new version
	// with fresh signatures.
	clk.Advance(8 * 24 * time.Hour)
	s.resignIfDue(srv)
	if srv.Zone(testZone) != third {
		t.Fatal("re-signed before the refresh point")
	}
	clk.Advance(2 * 24 * time.Hour)
	s.resignIfDue(srv)
	fourth := srv.Zone(testZone)
	if fourth == third {
		t.Fatal("not re-signed past the refresh point")
	}
	verifyZone(t, fourth, clk.Now())
	verifyZone(t, fourth, clk.Now().Add(5*24*time.Hour))
	if s.Status().Incremental {
		t.Error("re-signing past the refresh point patched the zone; want a full signing")
	}
	if got := serialOf(fourth); got != 101 {
		t.Errorf("serial after re-signing %d, want 101", got)
	}

	// A restart keeps the keys and the serial.
	s2, err := New(p, Options{KeyDir: s.keys.dir[:len(s.keys.dir)-len(filepath.Base(s.keys.dir))], Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if s2.DS()[0].Digest != s.DS()[0].Digest {
		t.Error("restart made new keys")
	}
	srv2 := authority.NewServer(mustZone(t, zoneText(100, "192.0.2.3", "")))
	srv2.SetPublishHook(testZone, s2.Publish)
	if got := serialOf(srv2.Zone(testZone)); got != 102 {
		t.Errorf("serial after a restart %d, want 102", got)
	}
}

// TestSignerAnswersWithProofs: negative answers of a signed zone carry
// NSEC or NSEC3 proofs, a secure delegation's DS is signed, and with
// serial=keep the unsigned serial is served.
func TestSignerAnswersWithProofs(t *testing.T) {
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, spec := range []string{"zone=signed.test serial=keep", "zone=signed.test keys=csk denial=nsec3 alg=15 serial=keep",
		"zone=signed.test denial=nsec3 optout=yes alg=14 serial=keep"} {
		t.Run(spec, func(t *testing.T) {
			p, err := ParsePolicy(spec)
			if err != nil {
				t.Fatal(err)
			}
			s, err := New(p, Options{KeyDir: t.TempDir(), Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			ds := "sub DS 12345 13 2 " + strings.Repeat("ab", 32) + "\n"
			srv := authority.NewServer(mustZone(t, zoneText(5, "192.0.2.1", ds)))
			srv.SetPublishHook(testZone, s.Publish)
			z := srv.Zone(testZone)
			verifyZone(t, z, clk.Now())
			if serialOf(z) != 5 {
				t.Errorf("serial %d, want 5 (keep)", serialOf(z))
			}
			ask := func(name string, qtype uint16) *dns.Msg {
				q := new(dns.Msg).SetQuestion(name, qtype)
				q.SetEdns0(1232, true)
				return srv.Answer(q)
			}
			wantDenial := dns.TypeNSEC
			if p.NSEC3 {
				wantDenial = dns.TypeNSEC3
			}
			for _, q := range []struct {
				name  string
				qtype uint16
				rcode int
			}{{"nope.signed.test.", dns.TypeA, dns.RcodeNameError}, {"www.signed.test.", dns.TypeTXT, dns.RcodeSuccess}} {
				m := ask(q.name, q.qtype)
				if m.Rcode != q.rcode || len(m.Answer) != 0 || countType(m.Ns, wantDenial) == 0 || countType(m.Ns, dns.TypeRRSIG) == 0 {
					t.Errorf("%s %s: %v", q.name, dns.TypeToString[q.qtype], m)
				}
			}
			m := ask("sub.signed.test.", dns.TypeDS)
			if countType(m.Answer, dns.TypeDS) != 1 || countType(m.Answer, dns.TypeRRSIG) != 1 {
				t.Errorf("DS at the delegation: %v", m)
			}
		})
	}
}

func countType(rrs []dns.RR, t uint16) int {
	n := 0
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			n++
		}
	}
	return n
}

// TestKeyDirectoryProblemsAreErrors: every problem with the key directory
// is an error at start that says what is wrong.
func TestKeyDirectoryProblemsAreErrors(t *testing.T) {
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	fresh := func(t *testing.T) (string, *Signer) {
		dir := t.TempDir()
		p, _ := ParsePolicy("zone=signed.test")
		s, err := New(p, Options{KeyDir: dir, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		return dir, s
	}
	open := func(dir, spec string) error {
		p, err := ParsePolicy(spec)
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(p, Options{KeyDir: dir, Clock: clk})
		return err
	}
	t.Run("private keys are 0600 and reloaded", func(t *testing.T) {
		dir, s := fresh(t)
		for _, k := range s.keys.state.Keys {
			st, err := os.Stat(filepath.Join(ZoneDir(dir, testZone), k.File+".private"))
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("%s.private: %v %v", k.File, st.Mode(), err)
			}
		}
		if err := open(dir, "zone=signed.test"); err != nil {
			t.Error(err)
		}
	})
	cases := []struct {
		name   string
		spec   string
		damage func(t *testing.T, zdir string, s *Signer)
		want   string
	}{
		{"algorithm changed", "zone=signed.test alg=15", nil, "algorithm 13, the policy asks for 15"},
		{"layout changed", "zone=signed.test keys=csk", nil, "holds active keys ksk+zsk, the policy asks for csk"},
		{"private key corrupt", "zone=signed.test", func(t *testing.T, zdir string, s *Signer) {
			writeFile(t, filepath.Join(zdir, s.keys.state.Keys[0].File+".private"), "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: AAAA\n", 0o600)
		}, ".private"},
		{"private key of another key", "zone=signed.test", func(t *testing.T, zdir string, s *Signer) {
			other, _ := os.ReadFile(filepath.Join(zdir, s.keys.state.Keys[1].File+".private"))
			writeFile(t, filepath.Join(zdir, s.keys.state.Keys[0].File+".private"), string(other), 0o600)
		}, "does not match"},
		{"private key readable by others", "zone=signed.test", func(t *testing.T, zdir string, s *Signer) {
			if err := os.Chmod(filepath.Join(zdir, s.keys.state.Keys[0].File+".private"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "readable by others"},
		{"key file missing", "zone=signed.test", func(t *testing.T, zdir string, s *Signer) {
			os.Remove(filepath.Join(zdir, s.keys.state.Keys[1].File+".key"))
		}, "no such file"},
		{"state file corrupt", "zone=signed.test", func(t *testing.T, zdir string, s *Signer) {
			writeFile(t, filepath.Join(zdir, StateFile), "{", 0o600)
		}, StateFile},
		{"key files without state", "zone=signed.test", func(t *testing.T, zdir string, s *Signer) {
			os.Remove(filepath.Join(zdir, StateFile))
		}, "no " + StateFile},
		{"state names a path", "zone=signed.test", func(t *testing.T, zdir string, s *Signer) {
			writeFile(t, filepath.Join(zdir, StateFile), `{"zone":"signed.test.","keys":[{"file":"../../etc/K","role":"csk"}]}`, 0o600)
		}, "bad key file name"},
		{"roles swapped", "zone=signed.test", func(t *testing.T, zdir string, s *Signer) {
			st := s.keys.state
			st.Keys[0].Role, st.Keys[1].Role = st.Keys[1].Role, st.Keys[0].Role
			s.keys.state = st
			if err := s.keys.save(); err != nil {
				t.Fatal(err)
			}
		}, "do not fit the role"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, s := fresh(t)
			if c.damage != nil {
				c.damage(t, ZoneDir(dir, testZone), s)
			}
			err := open(dir, c.spec)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}

func writeFile(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
