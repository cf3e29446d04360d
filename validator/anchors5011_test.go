package validator

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/security"
)

// rolloverSet returns the DNSKEY RRset of keys signed by each of signers.
func rolloverSet(t *testing.T, keys []*testKey, signers ...*testKey) ([]dns.RR, []*dns.RRSIG) {
	t.Helper()
	set := make([]dns.RR, len(keys))
	for i, k := range keys {
		set[i] = k.dnskey
	}
	sigs := make([]*dns.RRSIG, len(signers))
	for i, s := range signers {
		sigs[i] = s.signWindow(t, set, testNow.Add(-time.Hour), testNow.Add(365*24*time.Hour))
	}
	return set, sigs
}

func TestManagedAnchorsRollover(t *testing.T) {
	ksk1 := newTestKey(t, "example.", dns.ED25519, dns.ZONE|dns.SEP)
	ksk2 := newTestKey(t, "example.", dns.ED25519, dns.ZONE|dns.SEP)
	zsk := newTestKey(t, "example.", dns.ED25519, dns.ZONE)
	m, err := NewManagedAnchors([]dns.RR{ksk1.dnskey.ToDS(dns.SHA256)}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	observe := func(at time.Duration, keys []*testKey, signers ...*testKey) {
		set, sigs := rolloverSet(t, keys, signers...)
		m.Observe("example.", set, sigs, testNow.Add(at), nil)
	}
	anchors := func() int { ds, keys := m.Anchors("example."); return len(ds) + len(keys) }

	observe(0, []*testKey{ksk1, zsk}, ksk1)
	if m.State("example.", ksk1.dnskey) != KeyValid {
		t.Fatalf("DS anchor not resolved to a valid key: %v", m.State("example.", ksk1.dnskey))
	}
	if ds, keys := m.Anchors("example."); len(ds) != 0 || len(keys) != 1 {
		t.Fatalf("after bootstrap: %d DS, %d keys", len(ds), len(keys))
	}
	// A new KSK waits out the hold-down.
	observe(day, []*testKey{ksk1, ksk2, zsk}, ksk1)
	if m.State("example.", ksk2.dnskey) != KeyAddPend || anchors() != 1 {
		t.Fatalf("new key: %v, %d anchors", m.State("example.", ksk2.dnskey), anchors())
	}
	observe(20*day, []*testKey{ksk1, ksk2, zsk}, ksk1)
	if m.State("example.", ksk2.dnskey) != KeyAddPend {
		t.Fatalf("before the hold-down: %v", m.State("example.", ksk2.dnskey))
	}
	observe(32*day, []*testKey{ksk1, ksk2, zsk}, ksk1)
	if m.State("example.", ksk2.dnskey) != KeyValid || anchors() != 2 {
		t.Fatalf("after the hold-down: %v, %d anchors", m.State("example.", ksk2.dnskey), anchors())
	}
	// KSK1 is revoked: a forged revocation (not self-signed) is ignored...
	revoked := *ksk1
	rk := *ksk1.dnskey
	rk.Flags |= dns.REVOKE
	revoked.dnskey = &rk
	observe(33*day, []*testKey{&revoked, ksk2, zsk}, ksk2)
	if m.State("example.", ksk1.dnskey) != KeyValid {
		t.Fatalf("revocation without self-signature: %v", m.State("example.", ksk1.dnskey))
	}
	// ...a self-signed one is final.
	observe(34*day, []*testKey{&revoked, ksk2, zsk}, ksk2, &revoked)
	if m.State("example.", ksk1.dnskey) != KeyRevoked || anchors() != 1 {
		t.Fatalf("self-signed revocation: %v, %d anchors", m.State("example.", ksk1.dnskey), anchors())
	}
	// A valid key that disappears stays trusted as Missing, then returns.
	observe(35*day, []*testKey{zsk}, ksk2)
	if m.State("example.", ksk2.dnskey) != KeyMissing || anchors() != 1 {
		t.Fatalf("missing key: %v, %d anchors", m.State("example.", ksk2.dnskey), anchors())
	}
	observe(36*day, []*testKey{ksk2, zsk}, ksk2)
	if m.State("example.", ksk2.dnskey) != KeyValid {
		t.Fatalf("returning key: %v", m.State("example.", ksk2.dnskey))
	}
	// A pending key that vanishes is forgotten; a revoked key after the
	// remove hold-down too.
	ksk3 := newTestKey(t, "example.", dns.ED25519, dns.ZONE|dns.SEP)
	observe(37*day, []*testKey{ksk2, ksk3, zsk}, ksk2)
	observe(38*day, []*testKey{ksk2, zsk}, ksk2)
	if m.State("example.", ksk3.dnskey) != 0 {
		t.Fatalf("vanished pending key: %v", m.State("example.", ksk3.dnskey))
	}
	observe(70*day, []*testKey{ksk2, zsk}, ksk2)
	if m.State("example.", ksk1.dnskey) != 0 {
		t.Fatalf("revoked key after the remove hold-down: %v", m.State("example.", ksk1.dnskey))
	}

	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadManagedAnchors(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("load %q: %v", buf.String(), err)
	}
	var again bytes.Buffer
	loaded.Save(&again)
	if again.String() != buf.String() || loaded.State("example.", ksk2.dnskey) != KeyValid {
		t.Fatalf("round trip:\n%s\nvs\n%s", buf.String(), again.String())
	}
	if _, err := LoadManagedAnchors(bytes.NewReader([]byte("example. BOGUS 1 2 x\n"))); err == nil {
		t.Fatal("malformed state accepted")
	}
}

func TestManagedAnchorsInValidator(t *testing.T) {
	w := testWorld(t)
	m, err := NewManagedAnchors(rootAnchor(w), testNow)
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(nil, w, newManualAt(testNow), DefaultLimits(), WithManagedAnchors(m))
	if err != nil {
		t.Fatal(err)
	}
	if _, st, res := v.Keys(context.Background(), "a.b.example.", nil); st != security.Secure {
		t.Fatalf("managed root anchor: %+v", res)
	}
	if ds, keys := m.Anchors("."); len(ds) != 0 || len(keys) != 1 || m.State(".", w.zones["."].ksk.dnskey) != KeyValid {
		t.Fatalf("root DS not resolved by the walk: %d DS, %d keys", len(ds), len(keys))
	}
}

func TestRefreshInterval(t *testing.T) {
	for _, tc := range []struct {
		ttl    uint32
		expiry time.Duration
		want   time.Duration
	}{
		{172800, 10 * 24 * time.Hour, 24 * time.Hour},
		{600, 10 * 24 * time.Hour, time.Hour},
		{86400 * 100, 100 * 24 * time.Hour, 15 * 24 * time.Hour},
	} {
		if got := RefreshInterval(tc.ttl, tc.expiry); got != tc.want {
			t.Errorf("RefreshInterval(%d, %v) = %v, want %v", tc.ttl, tc.expiry, got, tc.want)
		}
	}
}

func newManualAt(t time.Time) *clock.Manual { return clock.NewManual(t) }
