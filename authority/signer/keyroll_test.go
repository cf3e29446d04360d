package signer

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/clock"
)

// chainProblems checks z as a validator holding parentDS would: the
// DNSKEY RRset must be signed by a key the parent's DS names, and every
// signed RRset must carry a signature of every algorithm of the DNSKEY
// RRset (RFC 4035 2.2; Unbound's harden-algo-downgrade insists). Every
// signature must verify (verifyZone).
func chainProblems(t *testing.T, z *authority.Zone, parentDS []*dns.DS) []string {
	t.Helper()
	var problems []string
	algs := map[uint8]bool{}
	keys := map[uint16]*dns.DNSKEY{}
	sigAlgs := map[[2]string]map[uint8]bool{}
	for _, rr := range z.Records() {
		switch r := rr.(type) {
		case *dns.DNSKEY:
			algs[r.Algorithm] = true
			keys[r.KeyTag()] = r
		case *dns.RRSIG:
			k := [2]string{r.Hdr.Name, dns.TypeToString[r.TypeCovered]}
			if sigAlgs[k] == nil {
				sigAlgs[k] = map[uint8]bool{}
			}
			sigAlgs[k][r.Algorithm] = true
		}
	}
	for set, have := range sigAlgs {
		for a := range algs {
			if !have[a] {
				problems = append(problems, set[0]+"/"+set[1]+": no signature of DNSKEY algorithm "+dns.AlgorithmToString[a])
			}
		}
	}
	anchored := false
	for _, rr := range z.Records() {
		sig, ok := rr.(*dns.RRSIG)
		if !ok || sig.TypeCovered != dns.TypeDNSKEY || keys[sig.KeyTag] == nil {
			continue
		}
		for _, d := range parentDS {
			if want := keys[sig.KeyTag].ToDS(d.DigestType); want != nil && d.KeyTag == sig.KeyTag && strings.EqualFold(want.Digest, d.Digest) {
				anchored = true
			}
		}
	}
	if !anchored {
		problems = append(problems, "no DS at the parent names a key that signs the DNSKEY RRset")
	}
	return problems
}

// verifyPublished checks, as a validator would, the signatures made by
// keys of the DNSKEY RRset (those of unpublished keys cannot be checked
// and are skipped): each must verify and be current.
func verifyPublished(t *testing.T, z *authority.Zone, at time.Time) {
	t.Helper()
	rrs := z.Records()
	keys := map[uint16]*dns.DNSKEY{}
	sets := map[[2]string][]dns.RR{}
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
		if !ok || keys[sig.KeyTag] == nil {
			continue
		}
		k := [2]string{sig.Hdr.Name, dns.TypeToString[sig.TypeCovered]}
		if err := authority.VerifySignature(sig, keys[sig.KeyTag], sets[k]); err != nil {
			t.Errorf("%v by %d: %v", k, sig.KeyTag, err)
		}
		if !sig.ValidityPeriod(at) {
			t.Errorf("%v: not valid at %v", k, at)
		}
	}
}

// cdsAsDS is what a parent that reads CDS (RFC 7344) would publish.
func cdsAsDS(z *authority.Zone) []*dns.DS {
	var out []*dns.DS
	for _, rr := range z.Records() {
		if c, ok := rr.(*dns.CDS); ok {
			out = append(out, &dns.DS{Hdr: dns.RR_Header{Name: testZone, Rrtype: dns.TypeDS, Class: dns.ClassINET, Ttl: 3600},
				KeyTag: c.KeyTag, Algorithm: c.Algorithm, DigestType: c.DigestType, Digest: c.Digest})
		}
	}
	return out
}

func dnskeyAlgorithms(z *authority.Zone) []uint8 {
	var out []uint8
	for _, rr := range z.Records() {
		if k, ok := rr.(*dns.DNSKEY); ok && !slices.Contains(out, k.Algorithm) {
			out = append(out, k.Algorithm)
		}
	}
	slices.Sort(out)
	return out
}

// TestKeySetRollover moves algorithm rollovers (with and without a change
// of key layout) and a CSK rollover through their stages with the DNS
// clock and a parent that follows the CDS: at every step the zone
// validates from the parent's DS with signatures of every DNSKEY
// algorithm on every RRset; the new keys' signatures come before their
// DNSKEYs, the DS moves only once both sets are published, the old
// DNSKEYs leave before their signatures, and the state file carries the
// rollover across a restart.
func TestKeySetRollover(t *testing.T) {
	cases := []struct {
		name, from, to string
		wantAlg        uint8
		wantKeys       int
	}{
		{"algorithm 8 to 13", "zone=signed.test alg=8", "zone=signed.test alg=13", dns.ECDSAP256SHA256, 2},
		{"algorithm 13 ksk+zsk to 15 csk", "zone=signed.test", "zone=signed.test alg=15 keys=csk", dns.ED25519, 1},
		{"csk-lifetime", "zone=signed.test keys=csk", "zone=signed.test keys=csk csk-lifetime=2d", dns.ECDSAP256SHA256, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			clk := clock.NewManual(t0)
			dir := t.TempDir()
			parent := &fakeParent{}
			from, _ := ParsePolicy(c.from)
			first, err := New(from, Options{KeyDir: dir, Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			oldTags := map[uint16]bool{}
			for _, k := range first.keys.state.Keys {
				oldTags[k.Tag] = true
			}
			ds := first.DS()
			for _, d := range ds {
				d.Hdr.Ttl = 3600
			}
			parent.set(ds, nil)
			to, err := ParsePolicy(c.to)
			if err != nil {
				t.Fatal(err)
			}
			s, err := New(to, Options{KeyDir: dir, Clock: clk, ParentDS: parent.lookup})
			if err != nil {
				t.Fatal(err)
			}
			srv := authority.NewServer(mustZone(t, zoneText(1, "192.0.2.1", "")))
			srv.SetPublishHook(testZone, s.Publish)
			var stages []RollStage
			check := func(when string) *authority.Zone {
				t.Helper()
				z := srv.Zone(testZone)
				verifyPublished(t, z, clk.Now())
				parent.mu.Lock()
				pds := parent.ds
				parent.mu.Unlock()
				if p := chainProblems(t, z, pds); len(p) > 0 {
					t.Fatalf("%s (stage %q): %s", when, s.keys.rollStage(), strings.Join(p, "; "))
				}
				return z
			}
			check("start")
			serial := 1
			for i := 0; i < 200 && (len(stages) == 0 || stages[len(stages)-1] != ""); i++ {
				clk.Advance(30 * time.Minute)
				s.lastParentCheck = time.Time{}
				if s.unsignDue() {
					s.checkParent(context.Background())
				}
				s.resignIfDue(srv)
				z := check("after a step")
				if st := s.keys.rollStage(); len(stages) == 0 && st != "" || len(stages) > 0 && stages[len(stages)-1] != st {
					stages = append(stages, st)
					switch st {
					case RollNewRRSIGs:
						if got := dnskeyAlgorithms(z); len(got) != 1 || (got[0] == c.wantAlg && c.wantAlg != from.Algorithm) {
							t.Errorf("new-rrsigs: the DNSKEY RRset has algorithms %v, want only the old one", got)
						}
						if n, _ := keysOf(z); c.name == "csk-lifetime" && len(n) != 1 {
							t.Errorf("new-rrsigs: the new CSK is published: %v", n)
						}
					case RollNewDS:
						if st := s.Status(); !strings.Contains(st.Roll, "new-ds") || len(s.DS()) != 1 || s.DS()[0].Algorithm != c.wantAlg {
							t.Errorf("new-ds: status roll %q, DS for the parent %v; want the new KSK's alone", st.Roll, s.DS())
						}
					case RollDNSKEYRemoved:
						for _, tag := range s.keys.state.Keys {
							if tag.State == StateOutgoing && slices.Contains(mustDNSKEYTags(z), tag.Tag) {
								t.Errorf("dnskey-removed: old key %d still in the DNSKEY RRset", tag.Tag)
							}
						}
					}
				}
				// The parent follows the CDS, with the DS TTL of an hour.
				if want := cdsAsDS(z); len(want) > 0 && !sameDS(want, parent.ds) {
					parent.set(want, nil)
				}
				// A change of the zone on the way is signed as it is.
				if i == 3 {
					serial++
					srv.Set(mustZone(t, zoneText(serial, "192.0.2.7", "")))
					check("a change during the rollover")
				}
				// A restart half-way carries on.
				if i == 5 {
					s2, err := New(to, Options{KeyDir: dir, Clock: clk, ParentDS: parent.lookup})
					if err != nil {
						t.Fatalf("restart during the rollover: %v", err)
					}
					if s2.keys.rollStage() != s.keys.rollStage() {
						t.Fatalf("restart: stage %q, want %q", s2.keys.rollStage(), s.keys.rollStage())
					}
				}
			}
			want := []RollStage{RollNewRRSIGs, RollNewDNSKEY, RollNewDS, RollDNSKEYRemoved, ""}
			if !slices.Equal(stages, want) {
				t.Fatalf("stages %q, want %q", stages, want)
			}
			z := check("done")
			if got := dnskeyAlgorithms(z); !slices.Equal(got, []uint8{c.wantAlg}) {
				t.Errorf("after the rollover the DNSKEY algorithms are %v, want %d", got, c.wantAlg)
			}
			tags := mustDNSKEYTags(z)
			if len(tags) != c.wantKeys {
				t.Errorf("after the rollover the DNSKEY RRset holds %v, want %d keys", tags, c.wantKeys)
			}
			for _, tag := range tags {
				if oldTags[tag] {
					t.Errorf("old key %d still published", tag)
				}
			}
			if ds := cdsAsDS(z); len(ds) != 1 || ds[0].Algorithm != c.wantAlg {
				t.Errorf("CDS after the rollover: %v", ds)
			}
		})
	}
}

func mustDNSKEYTags(z *authority.Zone) []uint16 {
	var out []uint16
	for _, rr := range z.Records() {
		if k, ok := rr.(*dns.DNSKEY); ok {
			out = append(out, k.KeyTag())
		}
	}
	return out
}

func sameDS(a, b []*dns.DS) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			if x.KeyTag == y.KeyTag && x.DigestType == y.DigestType && strings.EqualFold(x.Digest, y.Digest) {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// TestKeySetRolloverErrors: a rollover that cannot see the parent, a key
// layout change within one algorithm and a policy changed half-way are
// errors at start that say why.
func TestKeySetRolloverErrors(t *testing.T) {
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	open := func(dir, spec string, parent ParentDSFunc) error {
		p, err := ParsePolicy(spec)
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(p, Options{KeyDir: dir, Clock: clk, ParentDS: parent})
		return err
	}
	dir := t.TempDir()
	if err := open(dir, "zone=signed.test", nil); err != nil {
		t.Fatal(err)
	}
	parent := (&fakeParent{}).lookup
	for _, c := range []struct {
		spec   string
		parent ParentDSFunc
		want   string
	}{
		{"zone=signed.test alg=15", nil, "the algorithm rollover needs a way to see the parent's new DS"},
		{"zone=signed.test keys=csk", parent, "changing the key layout needs a change of algorithm too"},
		{"zone=signed.test keys=csk csk-lifetime=2d", parent, "changing the key layout"},
	} {
		if err := open(dir, c.spec, c.parent); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error saying %q", c.spec, err, c.want)
		}
	}
	if err := open(dir, "zone=signed.test alg=15 ksk-wait=2d", nil); err != nil {
		t.Errorf("with ksk-wait: %v", err)
	}
	// Half-way through a rollover to 15, the policy asks for 14.
	p, _ := ParsePolicy("zone=signed.test alg=15")
	s, err := New(p, Options{KeyDir: dir, Clock: clk, ParentDS: parent})
	if err != nil {
		t.Fatal(err)
	}
	srv := authority.NewServer(mustZone(t, zoneText(1, "192.0.2.1", "")))
	srv.SetPublishHook(testZone, s.Publish)
	clk.Advance(time.Minute)
	s.resignIfDue(srv)
	if s.keys.rollStage() != RollNewRRSIGs {
		t.Fatalf("stage %q, want the rollover started", s.keys.rollStage())
	}
	if err := open(dir, "zone=signed.test alg=14", parent); err == nil || !strings.Contains(err.Error(), "under way") {
		t.Errorf("policy changed half-way: %v", err)
	}
	for _, spec := range []string{"zone=a.test keys=csk csk-lifetime=2h", "zone=a.test csk-lifetime=30d"} {
		if _, err := ParsePolicy(spec); err == nil {
			t.Errorf("%q accepted", spec)
		}
	}
}

// TestAlgorithmChangeDuringZSKRollover: a ZSK rollover under way when the
// policy's algorithm changes finishes with the old algorithm; only then
// does the key-set rollover start, and no key of the new algorithm ever
// joins the old set.
func TestAlgorithmChangeDuringZSKRollover(t *testing.T) {
	clk := clock.NewManual(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	p13, _ := ParsePolicy("zone=signed.test zsk-lifetime=1d")
	s, err := New(p13, Options{KeyDir: dir, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	srv := authority.NewServer(mustZone(t, zoneText(1, "192.0.2.1", "")))
	srv.SetPublishHook(testZone, s.Publish)
	for len(s.keys.state.Keys) < 3 {
		clk.Advance(time.Hour)
		s.resignIfDue(srv)
	}
	p15, _ := ParsePolicy("zone=signed.test alg=15 zsk-lifetime=1d ksk-wait=1d")
	s, err = New(p15, Options{KeyDir: dir, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetPublishHook(testZone, s.Publish)
	started := false
	for range 200 {
		clk.Advance(time.Hour)
		s.resignIfDue(srv)
		for _, k := range s.keys.state.Keys {
			if k.Algorithm == dns.ED25519 && k.State != StateIncoming && k.State != StateActive && k.State != "" {
				t.Fatalf("a key of the new algorithm in state %q: %+v", k.State, s.keys.state.Keys)
			}
			if k.Algorithm == dns.ED25519 && k.State == StateIncoming {
				started = true
			}
		}
		if started && s.keys.state.Roll == nil {
			break
		}
	}
	if !started || s.keys.state.Roll != nil || s.keys.activeAlgorithm() != dns.ED25519 {
		t.Fatalf("rollover started %v, roll %+v, active algorithm %d", started, s.keys.state.Roll, s.keys.activeAlgorithm())
	}
	verifyZone(t, srv.Zone(testZone), clk.Now())
}
