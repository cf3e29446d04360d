package lab

import (
	"context"
	"net/netip"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/validator"
)

// testBlockRollover is the loopback block of the rollover test.
var testBlockRollover = netip.MustParseAddr("127.39.0.0")

// rootServed is the root DNSKEY RRset as the root servers serve it.
type rootServed struct {
	set  []dns.RR
	sigs []*dns.RRSIG
}

// servedRootKeys asks every root server for the root DNSKEY RRset over
// TCP and fails unless they all serve the same records.
func servedRootKeys(t *testing.T, l *Lab) rootServed {
	t.Helper()
	a := asker{t: t, lab: l}
	var out rootServed
	var first []string
	for i, s := range l.ServersFor(Root) {
		r := a.mustAsk(s, "tcp", Root, dns.TypeDNSKEY)
		set, sigs := rrsetOf(r.Answer, Root, dns.TypeDNSKEY)
		var text []string
		for _, rr := range append(slices.Clone(set), rrsOf(sigs)...) {
			text = append(text, rr.String())
		}
		sort.Strings(text)
		if i == 0 {
			out, first = rootServed{set: set, sigs: sigs}, text
		} else if !slices.Equal(text, first) {
			t.Fatalf("root servers disagree on the DNSKEY RRset:\n%v\n%v", first, text)
		}
	}
	return out
}

func rrsOf(sigs []*dns.RRSIG) []dns.RR {
	out := make([]dns.RR, len(sigs))
	for i, s := range sigs {
		out[i] = s
	}
	return out
}

// flagsOf returns the flags of the published key with k's public key, 0
// when it is not published.
func (r rootServed) flagsOf(k *authority.Key) uint16 {
	for _, rr := range r.set {
		if d := rr.(*dns.DNSKEY); d.Algorithm == k.DNSKEY.Algorithm && d.PublicKey == k.DNSKEY.PublicKey {
			return d.Flags
		}
	}
	return 0
}

// signedBy checks that k's signature over the set is there and verifies.
func (r rootServed) signedBy(k *authority.Key, now time.Time) error {
	var mine []*dns.RRSIG
	for _, s := range r.sigs {
		if s.KeyTag == k.Tag() {
			mine = append(mine, s)
		}
	}
	return verifySet(r.set, mine, []*dns.DNSKEY{k.DNSKEY}, now)
}

func (r rootServed) tags() []uint16 {
	var out []uint16
	for _, s := range r.sigs {
		out = append(out, s.KeyTag)
	}
	slices.Sort(out)
	return out
}

func sortedTags(keys ...*authority.Key) []uint16 {
	var out []uint16
	for _, k := range keys {
		out = append(out, k.Tag())
	}
	slices.Sort(out)
	return out
}

// rootKeyRoles splits the root's keys into the KSK and the ZSK it starts with.
func rootKeyRoles(t *testing.T, l *Lab) (ksk, zsk *authority.Key) {
	t.Helper()
	for _, k := range l.Keys(Root) {
		if k.IsSEP() {
			ksk = k
		} else {
			zsk = k
		}
	}
	if ksk == nil || zsk == nil {
		t.Fatal("the root has no KSK+ZSK pair")
	}
	return ksk, zsk
}

// TestRootKSKRollover walks the RFC 5011 steps and checks after each what
// every root server serves: who signs the DNSKEY RRset, the REVOKE bit,
// the zone data still signed by the ZSK alone, and the chain of trust.
func TestRootKSKRollover(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	clk := clock.NewManual(start)
	l, err := Start(context.Background(), Config{AddrBase: testBlockRollover, Clock: clk, BulkHosts: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	old, zsk := rootKeyRoles(t, l)
	now := clk.Now()

	// Add: both KSKs sign the DNSKEY RRset; the ZSK signs the rest.
	ksk2, err := l.AddRootKSK(dns.ECDSAP256SHA256)
	if err != nil {
		t.Fatal(err)
	}
	s := servedRootKeys(t, l)
	if s.flagsOf(old) != authority.FlagsKSK || s.flagsOf(ksk2) != authority.FlagsKSK || s.flagsOf(zsk) != authority.FlagsZSK {
		t.Fatalf("after add, flags old %d new %d zsk %d", s.flagsOf(old), s.flagsOf(ksk2), s.flagsOf(zsk))
	}
	if got, want := s.tags(), sortedTags(old, ksk2); !slices.Equal(got, want) {
		t.Errorf("after add, DNSKEY signed by %v, want %v", got, want)
	}
	for _, k := range []*authority.Key{old, ksk2} {
		if err := s.signedBy(k, now); err != nil {
			t.Errorf("after add, key %d: %v", k.Tag(), err)
		}
	}
	soa := asker{t: t, lab: l}.mustAsk(l.ServersFor(Root)[0], "udp", Root, dns.TypeSOA)
	if set, sigs := rrsetOf(soa.Answer, Root, dns.TypeSOA); len(sigs) != 1 || sigs[0].KeyTag != zsk.Tag() || verifySet(set, sigs, []*dns.DNSKEY{zsk.DNSKEY}, now) != nil {
		t.Errorf("after add, root SOA not signed by the ZSK alone: %v", sigs)
	}

	// Revoke: the revoked key (flags 385, a new tag) signs its own
	// revocation; the new KSK signs too; the old tag signs nothing.
	revoked, err := l.RevokeRootKSK(old)
	if err != nil {
		t.Fatal(err)
	}
	if revoked.DNSKEY.Flags != authority.FlagsKSK|dns.REVOKE || revoked.Tag() == old.Tag() || old.DNSKEY.Flags != authority.FlagsKSK {
		t.Fatalf("revoked flags %d tag %d (old tag %d, old flags now %d)", revoked.DNSKEY.Flags, revoked.Tag(), old.Tag(), old.DNSKEY.Flags)
	}
	check := func(when string) {
		t.Helper()
		s := servedRootKeys(t, l)
		if s.flagsOf(old) != 385 || s.flagsOf(ksk2) != authority.FlagsKSK {
			t.Errorf("%s, flags old %d new %d", when, s.flagsOf(old), s.flagsOf(ksk2))
		}
		if got, want := s.tags(), sortedTags(revoked, ksk2); !slices.Equal(got, want) {
			t.Errorf("%s, DNSKEY signed by %v, want %v", when, got, want)
		}
		for _, k := range []*authority.Key{revoked, ksk2} {
			if err := s.signedBy(k, clk.Now()); err != nil {
				t.Errorf("%s, key %d: %v", when, k.Tag(), err)
			}
		}
	}
	check("after revoke")
	// The revocation is one an RFC 5011 validator takes: the revoked form
	// signed the set, so the old key is Revoked even by a validator whose
	// only anchor it was (the set then validates with nothing), and by one
	// that also trusts the new key (the set then validates).
	served := servedRootKeys(t, l)
	for _, tc := range []struct {
		name    string
		anchors []dns.RR
		want    security.Status
	}{
		{"old key only anchor", []dns.RR{old.DNSKEY}, security.Bogus},
		{"old and new keys anchors", []dns.RR{old.DNSKEY, ksk2.DNSKEY}, security.Secure},
	} {
		m, err := validator.NewManagedAnchors(tc.anchors, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		res, _ := m.VerifyDNSKEYs(Root, served.set, served.sigs, clk.Now(), nil)
		if res.Status != tc.want || m.State(Root, old.DNSKEY) != validator.KeyRevoked {
			t.Errorf("%s: served revocation set %v (%s), old key %v; want %v and REVOKED", tc.name, res.Status, res.Reason, m.State(Root, old.DNSKEY), tc.want)
		}
	}
	// Resign keeps the keys as rolled.
	clk.Advance(24 * time.Hour)
	if err := l.Resign(); err != nil {
		t.Fatal(err)
	}
	check("after revoke and Resign")

	// Remove (by the key as it was before the revocation): the new KSK
	// alone signs, and the chain of trust from its DS holds.
	if err := l.RemoveRootKSK(old); err != nil {
		t.Fatal(err)
	}
	s = servedRootKeys(t, l)
	if s.flagsOf(old) != 0 || s.flagsOf(ksk2) != authority.FlagsKSK || len(s.set) != 2 {
		t.Errorf("after remove, %d keys, old flags %d", len(s.set), s.flagsOf(old))
	}
	if got, want := s.tags(), sortedTags(ksk2); !slices.Equal(got, want) {
		t.Errorf("after remove, DNSKEY signed by %v, want %v", got, want)
	}
	if ds := l.RootDS(); len(ds) != 1 || ds[0].(*dns.DS).KeyTag != ksk2.Tag() {
		t.Errorf("RootDS after the roll: %v", ds)
	}
	if _, err := newChain(t, l, clk.Now()).secureAnswer(SecureAlg13, "udp", "www."+SecureAlg13, dns.TypeA); err != nil {
		t.Errorf("chain from the new KSK: %v", err)
	}
}

// TestRootKSKRolloverRefuses: the steps that would publish nonsense or
// leave the root without an unrevoked KSK fail and change nothing.
func TestRootKSKRolloverRefuses(t *testing.T) {
	clk := clock.NewManual(time.Now().Truncate(time.Second))
	l, err := Start(context.Background(), Config{AddrBase: testBlockRollover, Clock: clk, BulkHosts: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ksk, zsk := rootKeyRoles(t, l)
	other, err := authority.GenerateKey(TLDTest, dns.ECDSAP256SHA256, authority.FlagsKSK)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := authority.GenerateKey(Root, dns.ECDSAP256SHA256, authority.FlagsKSK)
	if err != nil {
		t.Fatal(err)
	}
	before := servedRootKeys(t, l)
	for _, tc := range []struct {
		name string
		step func() error
	}{
		{"add unknown algorithm", func() error { _, err := l.AddRootKSK(253); return err }},
		{"publish twice", func() error { return l.PublishRootKSK(ksk) }},
		{"publish a ZSK", func() error { return l.PublishRootKSK(zsk) }},
		{"publish another zone's key", func() error { return l.PublishRootKSK(other) }},
		{"publish nil", func() error { return l.PublishRootKSK(nil) }},
		{"revoke the only KSK", func() error { _, err := l.RevokeRootKSK(ksk); return err }},
		{"revoke the ZSK", func() error { _, err := l.RevokeRootKSK(zsk); return err }},
		{"revoke an unpublished key", func() error { _, err := l.RevokeRootKSK(stranger); return err }},
		{"remove the only KSK", func() error { return l.RemoveRootKSK(ksk) }},
		{"remove the ZSK", func() error { return l.RemoveRootKSK(zsk) }},
		{"remove an unpublished key", func() error { return l.RemoveRootKSK(stranger) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.step(); err == nil {
				t.Fatal("no error")
			} else {
				t.Log(err)
			}
		})
	}
	after := servedRootKeys(t, l)
	if !slices.Equal(after.tags(), before.tags()) || len(after.set) != len(before.set) || len(l.Keys(Root)) != 2 {
		t.Errorf("a refused step changed the root: signed by %v, %d keys", after.tags(), len(after.set))
	}
	// A removed key can come back (its hold-down starts again in resolvers).
	if err := l.PublishRootKSK(stranger); err != nil {
		t.Fatal(err)
	}
	if err := l.RemoveRootKSK(stranger); err != nil {
		t.Fatal(err)
	}
	if err := l.PublishRootKSK(stranger); err != nil {
		t.Fatalf("publish again after remove: %v", err)
	}
	if got := servedRootKeys(t, l).flagsOf(stranger); got != authority.FlagsKSK {
		t.Errorf("republished key served with flags %d", got)
	}
}
