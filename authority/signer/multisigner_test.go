package signer

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/clock"
)

// keyText is the DNSKEY records of s's keys, as an import file holds them.
func keyText(s *Signer) string {
	var b strings.Builder
	for _, k := range s.keys.keys {
		b.WriteString(k.DNSKEY.String() + "\n")
	}
	return b.String()
}

// crossVerifies reports whether every RRSIG of data's RRsets (other than
// DNSKEY, CDS and CDNSKEY) verifies with a key of keys' DNSKEY RRset: a
// validator holding one provider's DNSKEY RRset and an answer from the
// other.
func crossVerifies(t *testing.T, keys, data *authority.Zone) {
	t.Helper()
	dnskeys := map[uint16]*dns.DNSKEY{}
	for _, rr := range keys.Records() {
		if k, ok := rr.(*dns.DNSKEY); ok {
			dnskeys[k.KeyTag()] = k
		}
	}
	sets := map[[2]string][]dns.RR{}
	for _, rr := range data.Records() {
		if rr.Header().Rrtype != dns.TypeRRSIG {
			k := [2]string{rr.Header().Name, dns.TypeToString[rr.Header().Rrtype]}
			sets[k] = append(sets[k], rr)
		}
	}
	for _, rr := range data.Records() {
		sig, ok := rr.(*dns.RRSIG)
		if !ok || sig.TypeCovered == dns.TypeDNSKEY || sig.TypeCovered == dns.TypeCDS || sig.TypeCovered == dns.TypeCDNSKEY {
			continue
		}
		k := [2]string{sig.Hdr.Name, dns.TypeToString[sig.TypeCovered]}
		key := dnskeys[sig.KeyTag]
		if key == nil {
			t.Errorf("%v signed by key %d, which the other provider's DNSKEY RRset lacks", k, sig.KeyTag)
			continue
		}
		if err := authority.VerifySignature(sig, key, sets[k]); err != nil {
			t.Errorf("%v: %v", k, err)
		}
	}
}

// TestMultiSigner: two providers of one zone (RFC 8901 model 2), each
// importing the other's keys: each DNSKEY RRset holds its own keys and
// the other's ZSK, signed by its own KSK alone; CDS names both KSKs; an
// answer of either validates with the DNSKEY RRset of the other, also
// after one rolls its ZSK and the other re-reads the import file.
func TestMultiSigner(t *testing.T) {
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	importA, importB, mk := twoProviders(t, clk)
	a := mk("a", "zone=signed.test import-dnskey="+importA)
	b := mk("b", "zone=signed.test zsk-lifetime=1d import-dnskey="+importB)
	srvA := authority.NewServer(mustZone(t, zoneText(1, "192.0.2.1", "")))
	srvA.SetPublishHook(testZone, a.Publish)
	srvB := authority.NewServer(mustZone(t, zoneText(1, "192.0.2.1", "")))
	srvB.SetPublishHook(testZone, b.Publish)
	check := func(when string) {
		t.Helper()
		za, zb := srvA.Zone(testZone), srvB.Zone(testZone)
		for _, c := range []struct {
			name      string
			z         *authority.Zone
			own, peer *Signer
		}{{"a", za, a, b}, {"b", zb, b, a}} {
			verifyPublished(t, c.z, clk.Now())
			if got := dnskeySigner(c.z); got != c.own.DS()[0].KeyTag {
				t.Errorf("%s: %s's DNSKEY RRset signed by %d, want its own KSK", when, c.name, got)
			}
			tags := cdsTags(c.z)
			for _, s := range []*Signer{a, b} {
				for _, ds := range s.keys.keys {
					if ds.IsSEP() && !tags[ds.Tag()] {
						t.Errorf("%s: %s's CDS lacks KSK %d", when, c.name, ds.Tag())
					}
				}
			}
			for i, k := range c.peer.keys.keys {
				published := c.peer.keys.state.Keys[i].state() != StateDSPending
				if !k.IsSEP() && published && !slices.Contains(mustDNSKEYTags(c.z), k.Tag()) {
					t.Errorf("%s: %s's DNSKEY RRset lacks the other provider's ZSK %d", when, c.name, k.Tag())
				}
			}
		}
		crossVerifies(t, za, zb)
		crossVerifies(t, zb, za)
	}
	check("start")
	if st := a.Status(); len(st.Imported) != 2 || len(st.DS) != 2 {
		t.Errorf("status: imported %v, DS %v; want b's two keys and both KSKs' DS", st.Imported, st.DS)
	}

	// b rolls its ZSK; a follows through the import file at each step.
	step := func(d time.Duration) {
		clk.Advance(d)
		b.resignIfDue(srvB)
		writeFile(t, importA, keyText(b), 0o644)
		// The file's time may not move within the file system's
		// resolution: a's signer goes by time and size.
		a.imported.modTime = time.Time{}
		a.resignIfDue(srvA)
	}
	firstZSK := dnskeyTagsOf(b, false)
	most := 0
	for range 12 {
		step(4 * time.Hour)
		check("during b's ZSK rollover")
		most = max(most, len(b.keys.state.Keys))
	}
	if most != 3 || slices.Equal(dnskeyTagsOf(b, false), firstZSK) {
		t.Fatalf("b's ZSK not rolled: at most %d keys, ZSK %v then %v", most, firstZSK, dnskeyTagsOf(b, false))
	}
}

// dnskeyTagsOf lists the tags of s's keys, SEP or not.
func dnskeyTagsOf(s *Signer, sep bool) []uint16 {
	var out []uint16
	for _, k := range s.keys.keys {
		if k.IsSEP() == sep {
			out = append(out, k.Tag())
		}
	}
	return out
}

// TestImportErrors: a bad import file stops the start with the reason.
func TestImportErrors(t *testing.T) {
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	other, err := authority.GenerateKey(testZone, dns.ECDSAP256SHA256, authority.FlagsZSK)
	if err != nil {
		t.Fatal(err)
	}
	rsa, err := authority.GenerateKey(testZone, dns.RSASHA256, authority.FlagsZSK)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := authority.GenerateKey("other.test.", dns.ECDSAP256SHA256, authority.FlagsZSK)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, text, want string }{
		{"missing", "", "no such file"},
		{"empty", "; nothing\n", "no key of another provider"},
		{"not a key", "signed.test. 300 IN A 192.0.2.1\n", "is not a DNSKEY record"},
		{"another zone", foreign.DNSKEY.String() + "\n", "belongs to other.test."},
		{"another algorithm", rsa.DNSKEY.String() + "\n", "is algorithm 8, the zone is signed with 13"},
		{"garbage", "signed.test. 300 IN DNSKEY what\n", "import-dnskey"},
		{"good", other.DNSKEY.String() + "\n", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".keys")
			if c.name != "missing" {
				if err := os.WriteFile(path, []byte(c.text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p, err := ParsePolicy("zone=signed.test import-dnskey=" + path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = New(p, Options{KeyDir: filepath.Join(dir, "keys-"+strings.ReplaceAll(c.name, " ", "-")), Clock: clk})
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}

// serveDNS answers UDP questions on 127.0.0.1 with answer until the test
// ends, and returns the address.
func serveDNS(t *testing.T, answer func(*dns.Msg) *dns.Msg) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		_ = w.WriteMsg(answer(q))
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// TestImportFetch: with import-dnskey-from, a provider follows the other
// provider's ZSK rollover by asking it for its DNSKEY RRset, taking only
// an RRset that a KSK of the import file signs: a forged RRset (a key of
// the attacker's, signed by the attacker) changes nothing.
func TestImportFetch(t *testing.T) {
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	importA, importB, mk := twoProviders(t, clk)
	b := mk("b", "zone=signed.test zsk-lifetime=1d import-dnskey="+importB)
	srvB := authority.NewServer(mustZone(t, zoneText(1, "192.0.2.1", "")))
	srvB.SetPublishHook(testZone, b.Publish)
	addrB := serveDNS(t, srvB.Answer)
	a := mk("a", "zone=signed.test import-dnskey="+importA+" import-dnskey-from="+addrB)
	srvA := authority.NewServer(mustZone(t, zoneText(1, "192.0.2.1", "")))
	srvA.SetPublishHook(testZone, a.Publish)
	ctx := context.Background()

	// The attacker answers with its own ZSK, signed by its own KSK.
	evilKSK, _ := authority.GenerateKey(testZone, dns.ECDSAP256SHA256, authority.FlagsKSK)
	evilZSK, _ := authority.GenerateKey(testZone, dns.ECDSAP256SHA256, authority.FlagsZSK)
	forged, err := authority.Sign(testZone, parseRR(t, zoneText(1, "192.0.2.1", "")), authority.SignOptions{
		Keys: []*authority.Key{evilKSK, evilZSK}, Inception: clk.Now().Add(-time.Hour), Expiration: clk.Now().Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	evilAddr := serveDNS(t, authority.NewServer(mustZoneRRs(t, forged)).Answer)
	a.policy.ImportFrom = evilAddr
	a.fetchImport(ctx)
	if !strings.Contains(a.Status().LastError, "no valid signature by an imported KSK") || a.importChanged {
		t.Fatalf("forged DNSKEY RRset: error %q, changed %v", a.Status().LastError, a.importChanged)
	}
	if slices.Contains(a.Status().Imported, fmt.Sprintf("zsk tag %d algorithm 13", evilZSK.Tag())) {
		t.Fatal("the attacker's ZSK was imported")
	}
	a.policy.ImportFrom = addrB

	for i := range 12 {
		clk.Advance(4 * time.Hour)
		b.resignIfDue(srvB)
		a.fetchImport(ctx)
		a.resignIfDue(srvA)
		za, zb := srvA.Zone(testZone), srvB.Zone(testZone)
		verifyPublished(t, za, clk.Now())
		crossVerifies(t, za, zb)
		crossVerifies(t, zb, za)
		if t.Failed() {
			t.Fatalf("step %d: b's keys %v, a imports %v", i, b.Status().Keys, a.Status().Imported)
		}
	}
	if slices.Contains(mustDNSKEYTags(srvA.Zone(testZone)), evilZSK.Tag()) {
		t.Error("the attacker's ZSK is in the DNSKEY RRset")
	}
}

func parseRR(t *testing.T, text string) []dns.RR {
	t.Helper()
	var out []dns.RR
	zp := dns.NewZoneParser(strings.NewReader(text), testZone, "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		out = append(out, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustZoneRRs(t *testing.T, rrs []dns.RR) *authority.Zone {
	t.Helper()
	z, err := authority.NewZone(testZone, rrs)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// TestImportFromPolicy: import-dnskey-from needs the file of KSKs that
// must sign what the other provider answers, and a usable address.
func TestImportFromPolicy(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		{"zone=a.test import-dnskey-from=192.0.2.1", "needs import-dnskey"},
		{"zone=a.test import-dnskey=k import-dnskey-from=192.0.2.1", ""},
		{"zone=a.test import-dnskey=k import-dnskey-from=[2001:db8::1]:5353", ""},
	} {
		p, err := ParsePolicy(c.spec)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.spec, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: %v, want an error saying %q", c.spec, err, c.want)
		case c.want == "" && !strings.Contains(p.ImportFrom, ":"):
			t.Errorf("%q: address %q has no port", c.spec, p.ImportFrom)
		}
	}
}

// twoProviders sets up a zone signed by two providers (RFC 8901 model 2):
// each provider's keys first (b rolls its ZSK daily), then the import
// files, importA holding b's keys for a and importB a's for b. mk makes a
// provider's signer, its keys in its own directory.
func twoProviders(t *testing.T, clk *clock.Manual) (importA, importB string, mk func(name, spec string) *Signer) {
	t.Helper()
	dir := t.TempDir()
	importA, importB = filepath.Join(dir, "for-a.keys"), filepath.Join(dir, "for-b.keys")
	mk = func(name, spec string) *Signer {
		p, err := ParsePolicy(spec)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(p, Options{KeyDir: filepath.Join(dir, name), Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	writeFile(t, importA, keyText(mk("b", "zone=signed.test zsk-lifetime=1d")), 0o644)
	writeFile(t, importB, keyText(mk("a", "zone=signed.test")), 0o644)
	return importA, importB, mk
}
