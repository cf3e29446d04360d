package validator

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/security"
)

// revokedForm returns k with the REVOKE bit set: the same private key, a
// new key tag (RFC 5011 2.1).
func revokedForm(k *testKey) *testKey {
	r := *k
	rk := *k.dnskey
	rk.Flags |= dns.REVOKE
	r.dnskey = &rk
	return &r
}

// withTTL returns a copy of k whose DNSKEY carries ttl, so that RRSIGs
// made over a set of such keys carry it as their original TTL.
func withTTL(k *testKey, ttl uint32) *testKey {
	c := *k
	c.dnskey = dns.Copy(k.dnskey).(*dns.DNSKEY)
	c.dnskey.Hdr.Ttl = ttl
	return &c
}

// TestManagedAnchorsRevocationBeforeValidation: a tracked key's self-signed
// revocation counts even when the revoked key was the only anchor, so the
// set it signed does not validate with anything else (RFC 5011 2.1): the
// key is Revoked at once, no anchor is left, and a set signed with the
// same private key in its unrevoked form is bogus from then on.
func TestManagedAnchorsRevocationBeforeValidation(t *testing.T) {
	ksk1 := newTestKey(t, "example.", dns.ED25519, dns.ZONE|dns.SEP)
	ksk2 := newTestKey(t, "example.", dns.ED25519, dns.ZONE|dns.SEP)
	zsk := newTestKey(t, "example.", dns.ED25519, dns.ZONE)
	rev1 := revokedForm(ksk1)
	rev2 := revokedForm(ksk2)

	for _, tc := range []struct {
		name       string
		keys       []*testKey
		signers    []*testKey
		wantState1 KeyState
		wantStatus security.Status
	}{
		{"self-signed revocation of the only anchor", []*testKey{rev1, ksk2, zsk}, []*testKey{rev1, ksk2}, KeyRevoked, security.Bogus},
		{"revoked alone, signed by itself alone", []*testKey{rev1, zsk}, []*testKey{rev1}, KeyRevoked, security.Bogus},
		{"revocation signed by an untrusted key only", []*testKey{rev1, ksk2, zsk}, []*testKey{ksk2}, KeyValid, security.Bogus},
		{"revocation signed by the unrevoked form", []*testKey{rev1, ksk2, zsk}, []*testKey{ksk1}, KeyValid, security.Secure},
		{"revocation of an untracked key", []*testKey{ksk1, rev2, zsk}, []*testKey{ksk1, rev2}, KeyValid, security.Secure},
		{"no revocation", []*testKey{ksk1, zsk}, []*testKey{ksk1}, KeyValid, security.Secure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewManagedAnchors([]dns.RR{ksk1.dnskey}, testNow)
			if err != nil {
				t.Fatal(err)
			}
			set, sigs := rolloverSet(t, tc.keys, tc.signers...)
			res, _ := m.VerifyDNSKEYs("example.", set, sigs, testNow.Add(time.Hour), nil)
			if res.Status != tc.wantStatus {
				t.Errorf("set validates %v (%s), want %v", res.Status, res.Reason, tc.wantStatus)
			}
			if got := m.State("example.", ksk1.dnskey); got != tc.wantState1 {
				t.Fatalf("anchor is %v, want %v", got, tc.wantState1)
			}
			forged, forgedSigs := rolloverSet(t, []*testKey{ksk1, zsk}, ksk1)
			res, _ = m.VerifyDNSKEYs("example.", forged, forgedSigs, testNow.Add(2*time.Hour), nil)
			ds, keys := m.Anchors("example.")
			if tc.wantState1 == KeyRevoked {
				if res.Status != security.Bogus || len(ds)+len(keys) != 0 {
					t.Fatalf("after the revocation a set signed by the unrevoked key is %v with %d anchors, want bogus with none", res.Status, len(ds)+len(keys))
				}
				if m.State("example.", ksk1.dnskey) != KeyRevoked {
					t.Fatalf("the unrevoked key in a later set brought the revoked one back: %v", m.State("example.", ksk1.dnskey))
				}
			} else if res.Status != security.Secure {
				t.Fatalf("control: the unrevoked anchor's set is %v (%s)", res.Status, res.Reason)
			}
		})
	}
}

// TestManagedAnchorsAddHoldDownFollowsTTL: RFC 5011 2.4.1's add hold-down
// is 30 days or the original TTL of the DNSKEY RRset that first held the
// key, whichever is greater.
func TestManagedAnchorsAddHoldDownFollowsTTL(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		name     string
		ttl      uint32
		holdDown time.Duration
	}{
		{"one-hour TTL", 3600, 30 * day},
		{"30-day TTL", uint32(30 * day / time.Second), 30 * day},
		{"40-day TTL", uint32(40 * day / time.Second), 40 * day},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := AddHoldDown(tc.ttl); got != tc.holdDown {
				t.Fatalf("AddHoldDown(%d) = %v, want %v", tc.ttl, got, tc.holdDown)
			}
			ksk1 := withTTL(newTestKey(t, "example.", dns.ED25519, dns.ZONE|dns.SEP), tc.ttl)
			ksk2 := withTTL(newTestKey(t, "example.", dns.ED25519, dns.ZONE|dns.SEP), tc.ttl)
			m, err := NewManagedAnchors([]dns.RR{ksk1.dnskey}, testNow)
			if err != nil {
				t.Fatal(err)
			}
			apply := func(at time.Duration) KeyState {
				t.Helper()
				set, sigs := rolloverSet(t, []*testKey{ksk1, ksk2}, ksk1)
				if res, _ := m.VerifyDNSKEYs("example.", set, sigs, testNow.Add(at), nil); res.Status != security.Secure {
					t.Fatalf("day %v: %s", at/day, res.Reason)
				}
				return m.State("example.", ksk2.dnskey)
			}
			if s := apply(0); s != KeyAddPend {
				t.Fatalf("first seen: %v", s)
			}
			for at := 10 * day; at < tc.holdDown; at += 10 * day {
				if s := apply(at); s != KeyAddPend {
					t.Fatalf("after %v of %v: %v", at, tc.holdDown, s)
				}
			}
			if s := apply(tc.holdDown - time.Minute); s != KeyAddPend {
				t.Fatalf("a minute before the hold-down ends: %v", s)
			}
			// A restart keeps the key's own hold-down.
			var buf bytes.Buffer
			if err := m.Save(&buf); err != nil {
				t.Fatal(err)
			}
			if m, err = LoadManagedAnchors(&buf); err != nil {
				t.Fatal(err)
			}
			if s := apply(tc.holdDown - time.Second); s != KeyAddPend {
				t.Fatalf("reloaded, a second before the hold-down ends: %v", s)
			}
			if s := apply(tc.holdDown); s != KeyValid {
				t.Fatalf("hold-down over: %v", s)
			}
		})
	}
}

// TestManagedAnchorsLoadOldAddPend: a state file written before per-key
// add hold-downs (no end recorded) waits the 30 days from first sight.
func TestManagedAnchorsLoadOldAddPend(t *testing.T) {
	ksk := newTestKey(t, "example.", dns.ED25519, dns.ZONE|dns.SEP)
	line := "example. ADDPEND " + itoa(testNow.Unix()) + " " + itoa(time.Time{}.Unix()) + " " + ksk.dnskey.String() + "\n"
	m, err := LoadManagedAnchors(bytes.NewReader([]byte(line)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   time.Duration
		want KeyState
	}{{HoldDown - time.Second, KeyAddPend}, {HoldDown, KeyValid}} {
		m.Observe("example.", []dns.RR{ksk.dnskey}, nil, testNow.Add(tc.at), nil)
		if got := m.State("example.", ksk.dnskey); got != tc.want {
			t.Fatalf("after %v: %v, want %v", tc.at, got, tc.want)
		}
	}
}

// TestManagedAnchorsMissing follows RFC 5011 section 4's Missing state: a
// Valid key absent from a validated DNSKEY set (KeyRem) becomes Missing and
// stays a trust anchor, for as long as it is missing (the RFC gives Missing
// no timeout); when it is back (KeyPres) it is Valid again; a Missing key
// that signs its own revocation (RevBit) is Revoked.
func TestManagedAnchorsMissing(t *testing.T) {
	day := 24 * time.Hour
	ksk1 := newTestKey(t, "example.", dns.ED25519, dns.ZONE|dns.SEP)
	ksk2 := newTestKey(t, "example.", dns.ED25519, dns.ZONE|dns.SEP)
	zsk := newTestKey(t, "example.", dns.ED25519, dns.ZONE)
	m, err := NewManagedAnchors([]dns.RR{ksk1.dnskey, ksk2.dnskey}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	step := func(at time.Duration, keys []*testKey, signers ...*testKey) security.Status {
		t.Helper()
		set, sigs := rolloverSet(t, keys, signers...)
		res, _ := m.VerifyDNSKEYs("example.", set, sigs, testNow.Add(at), nil)
		return res.Status
	}
	trusted := func(k *testKey) bool {
		_, keys := m.Anchors("example.")
		for _, a := range keys {
			if keyID(a) == keyID(k.dnskey) {
				return true
			}
		}
		return false
	}

	// KeyRem: ksk2 leaves the set; it is Missing and still an anchor.
	if st := step(day, []*testKey{ksk1, zsk}, ksk1); st != security.Secure {
		t.Fatalf("set without ksk2: %v", st)
	}
	if s := m.State("example.", ksk2.dnskey); s != KeyMissing || !trusted(ksk2) {
		t.Fatalf("after KeyRem: %v, trusted %v", s, trusted(ksk2))
	}
	// Still missing 100 days on: still Missing, still an anchor; a set
	// that ksk2 alone signs (ksk2 in it) validates with it.
	if st := step(100*day, []*testKey{ksk1, zsk}, ksk1); st != security.Secure || m.State("example.", ksk2.dnskey) != KeyMissing {
		t.Fatalf("100 days missing: %v, %v", st, m.State("example.", ksk2.dnskey))
	}
	if st := step(100*day+time.Hour, []*testKey{ksk2, zsk}, ksk2); st != security.Secure {
		t.Fatalf("a set signed by the Missing key: %v", st)
	}
	// That set was KeyPres for ksk2 (Valid) and KeyRem for ksk1 (Missing).
	if m.State("example.", ksk2.dnskey) != KeyValid || m.State("example.", ksk1.dnskey) != KeyMissing {
		t.Fatalf("after KeyPres: ksk2 %v, ksk1 %v", m.State("example.", ksk2.dnskey), m.State("example.", ksk1.dnskey))
	}
	// Missing survives a restart.
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	if m, err = LoadManagedAnchors(&buf); err != nil {
		t.Fatal(err)
	}
	if m.State("example.", ksk1.dnskey) != KeyMissing || !trusted(ksk1) {
		t.Fatalf("reloaded Missing key: %v, trusted %v", m.State("example.", ksk1.dnskey), trusted(ksk1))
	}
	// RevBit from Missing: Revoked, and no longer an anchor.
	rev1 := revokedForm(ksk1)
	if st := step(101*day, []*testKey{rev1, ksk2, zsk}, rev1, ksk2); st != security.Secure {
		t.Fatalf("revocation set: %v", st)
	}
	if s := m.State("example.", ksk1.dnskey); s != KeyRevoked || trusted(ksk1) {
		t.Fatalf("Missing key after its revocation: %v, trusted %v", s, trusted(ksk1))
	}
	if st := step(101*day+time.Hour, []*testKey{ksk1, zsk}, ksk1); st != security.Bogus {
		t.Fatalf("a set signed by the revoked key's unrevoked form: %v", st)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// dnskeySource serves one DNSKEY answer for every question, swappable.
type dnskeySource struct {
	mu     sync.Mutex
	answer []dns.RR
}

func (s *dnskeySource) serve(set []dns.RR, sigs []*dns.RRSIG) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = slices.Clone(set)
	for _, sig := range sigs {
		s.answer = append(s.answer, sig)
	}
}

func (s *dnskeySource) Query(_ context.Context, name string, qtype uint16) (*dns.Msg, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Response = true
	if qtype == dns.TypeDNSKEY {
		m.Answer = slices.Clone(s.answer)
	}
	return m, nil
}

// TestManagedAnchorsRevocationInWalk: the validator's own walk, not only
// the refresh, takes a self-signed revocation of the only anchor from the
// DNSKEY set it fetches: the anchor is Revoked and the trust point bogus,
// and a set the same private key signs unrevoked is bogus afterwards.
func TestManagedAnchorsRevocationInWalk(t *testing.T) {
	ksk := newTestKey(t, ".", dns.ED25519, dns.ZONE|dns.SEP)
	zsk := newTestKey(t, ".", dns.ED25519, dns.ZONE)
	m, err := NewManagedAnchors([]dns.RR{ksk.dnskey}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	src := &dnskeySource{}
	clk := newManualAt(testNow)
	v, err := New(nil, src, clk, DefaultLimits(), WithManagedAnchors(m))
	if err != nil {
		t.Fatal(err)
	}
	keys := func() security.Status {
		t.Helper()
		clk.Advance(time.Hour) // past every cached state
		_, st, _ := v.Keys(context.Background(), ".", nil)
		return st
	}
	src.serve(rolloverSet(t, []*testKey{ksk, zsk}, ksk))
	if st := keys(); st != security.Secure {
		t.Fatalf("control: the anchor's own set is %v", st)
	}
	rev := revokedForm(ksk)
	src.serve(rolloverSet(t, []*testKey{rev, zsk}, rev))
	if st := keys(); st != security.Bogus || m.State(".", ksk.dnskey) != KeyRevoked {
		t.Fatalf("revocation seen by the walk: %v, key %v", st, m.State(".", ksk.dnskey))
	}
	src.serve(rolloverSet(t, []*testKey{ksk, zsk}, ksk))
	if st := keys(); st != security.Bogus {
		t.Fatalf("a set signed by the revoked key's unrevoked form is %v", st)
	}
}
