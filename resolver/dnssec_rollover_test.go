package resolver

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/labtest"
	"github.com/sextant-dns/sextant/lab"
	"github.com/sextant-dns/sextant/security"
	"github.com/sextant-dns/sextant/validator"
)

// End-to-end RFC 5011 root KSK rollovers: a lab whose root rolls its KSK
// and a resolver that started from the old root DS, on one manual clock,
// its managed-anchor state kept in a file as `sextant serve
// --trust-anchor-state` keeps it.

// rolloverLabBase is the loopback block of the rollover tests.
var rolloverLabBase = netip.MustParseAddr("127.38.0.0")

// keyTTL is the root DNSKEY TTL in the lab (its SOA TTL): waiting longer
// than this after a change lets the resolver's cached DNSKEY set expire,
// as RFC 5011's refresh interval of at least an hour does in practice.
const keyTTL = 3600 * time.Second

// rfc5011AddHoldDown is RFC 5011 2.4.1's add hold-down for keys whose TTL
// is under 30 days, spelled out rather than taken from the validator so
// that the test checks the RFC.
const rfc5011AddHoldDown = 30 * 24 * time.Hour

// rolloverRig is a lab, its old root KSK and DS, and a resolver with RFC
// 5011 anchors started from that DS.
type rolloverRig struct {
	t         *testing.T
	clk       *clock.Manual
	lab       *lab.Lab
	oldKSK    *authority.Key
	zsk       *authority.Key
	oldDS     []dns.RR
	stateFile string
	m         *validator.ManagedAnchors
	d         *dnssec
	r         *Resolver

	saveMu sync.Mutex // serialises saves: background and explicit refreshes may overlap
}

func newRolloverRig(t *testing.T) *rolloverRig {
	t.Helper()
	t0 := time.Now().UTC().Truncate(time.Second)
	g := &rolloverRig{t: t, clk: clock.NewManual(t0), stateFile: filepath.Join(t.TempDir(), "root.anchors")}
	l := labtest.Start(t, lab.Config{AddrBase: rolloverLabBase, Clock: g.clk, BulkHosts: -1})
	g.lab = l
	for _, k := range l.Keys(lab.Root) {
		if k.IsSEP() {
			g.oldKSK = k
		} else {
			g.zsk = k
		}
	}
	g.oldDS = l.RootDS()
	if g.oldKSK == nil || g.zsk == nil || len(g.oldDS) != 1 {
		t.Fatalf("lab root: KSK %v ZSK %v DS %v", g.oldKSK, g.zsk, g.oldDS)
	}
	var err error
	g.m, err = validator.NewManagedAnchors(g.oldDS, t0)
	if err != nil {
		t.Fatal(err)
	}
	g.r, g.d = g.resolver(g.m)
	return g
}

// resolver makes a resolver that validates with the managed anchors m and
// saves them to the state file.
func (g *rolloverRig) resolver(m *validator.ManagedAnchors) (*Resolver, *dnssec) {
	r := newLabResolver(g.t, g.lab, func(c *Config) {
		c.Clock = g.clk
		c.DNSSEC = &DNSSECConfig{Managed: m, SaveManaged: g.save}
	})
	return r, r.dnssec
}

// save writes the state whole and renames it into place.
func (g *rolloverRig) save(m *validator.ManagedAnchors) error {
	g.saveMu.Lock()
	defer g.saveMu.Unlock()
	var b bytes.Buffer
	if err := m.Save(&b); err != nil {
		return err
	}
	tmp := g.stateFile + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, g.stateFile)
}

// loadState reads the state file as a restarted resolver would.
func (g *rolloverRig) loadState() *validator.ManagedAnchors {
	g.t.Helper()
	f, err := os.Open(g.stateFile)
	if err != nil {
		g.t.Fatal(err)
	}
	defer f.Close()
	m, err := validator.LoadManagedAnchors(f)
	if err != nil {
		g.t.Fatal(err)
	}
	return m
}

// settle waits for a background refresh (started by a client question
// when one is due) to end, so that what the test changes next is not
// raced by a refresh that read the lab before the change. The refresh
// swaps its done channel a moment before it clears running, so a channel
// taken in between belongs to the next refresh: hence the short re-checks.
func (g *rolloverRig) settle(d *dnssec) {
	g.t.Helper()
	deadline := time.Now().Add(2 * anchorRefreshTimeout)
	for d.anchors.running.Load() {
		if time.Now().After(deadline) {
			g.t.Fatal("background anchor refresh did not end")
		}
		select {
		case <-d.anchorRefreshDone():
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// advance moves the DNS clock and re-signs the lab at the new time, as a
// zone operator keeps signatures fresh.
func (g *rolloverRig) advance(d time.Duration) {
	g.t.Helper()
	g.clk.Advance(d)
	if err := g.lab.Resign(); err != nil {
		g.t.Fatal(err)
	}
}

// refresh runs one RFC 5011 refresh of r's managed zones and checks the
// interval it asks for (RFC 5011 2.3: one hour to 15 days).
func (g *rolloverRig) refresh(r *Resolver) {
	g.t.Helper()
	g.settle(r.dnssec)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if wait := r.RefreshAnchors(ctx); wait < time.Hour || wait > 15*24*time.Hour {
		g.t.Errorf("refresh interval %v outside 1 hour .. 15 days", wait)
	}
}

// askSecure checks that name resolves to NOERROR with AD through r.
func (g *rolloverRig) askSecure(r *Resolver, d *dnssec, when, name string, qtype uint16) {
	g.t.Helper()
	m, res := ask(g.t, r, name, qtype, true, false, false)
	g.settle(d)
	if m.Rcode != dns.RcodeSuccess || !m.AuthenticatedData {
		g.t.Fatalf("%s: %s %s: %s AD=%v (%v)", when, name, dns.TypeToString[qtype], dns.RcodeToString[m.Rcode], m.AuthenticatedData, res.ExtendedError())
	}
}

// wantState checks a key's RFC 5011 state in memory and in the state file.
func (g *rolloverRig) wantState(when string, k *authority.Key, want validator.KeyState) {
	g.t.Helper()
	if got := g.m.State(lab.Root, k.DNSKEY); got != want {
		g.t.Errorf("%s: key %d is %s, want %s", when, k.Tag(), stateName(got), stateName(want))
	}
	if got := g.loadState().State(lab.Root, k.DNSKEY); got != want {
		g.t.Errorf("%s: state file has key %d %s, want %s", when, k.Tag(), stateName(got), stateName(want))
	}
}

// stateName names a key state, the zero state (not tracked) included.
func stateName(s validator.KeyState) string {
	if s == 0 {
		return "untracked"
	}
	return s.String()
}

// trusts reports whether k is among the root's current anchors.
func trusts(m *validator.ManagedAnchors, k *authority.Key) bool {
	_, keys := m.Anchors(lab.Root)
	return slices.ContainsFunc(keys, func(a *dns.DNSKEY) bool {
		return a.Algorithm == k.DNSKEY.Algorithm && a.PublicKey == k.DNSKEY.PublicKey
	})
}

// rootDNSKEYs returns the served root DNSKEY set and the RRSIGs over it
// made by the key with tag (all of them when tag is 0).
func (g *rolloverRig) rootDNSKEYs(tag uint16) ([]dns.RR, []*dns.RRSIG) {
	var set []dns.RR
	var sigs []*dns.RRSIG
	for _, rr := range g.lab.ZoneRecords(lab.Root) {
		switch x := rr.(type) {
		case *dns.DNSKEY:
			set = append(set, x)
		case *dns.RRSIG:
			if x.TypeCovered == dns.TypeDNSKEY && (tag == 0 || x.KeyTag == tag) {
				sigs = append(sigs, x)
			}
		}
	}
	return set, sigs
}

// validates reports whether the managed anchors m accept the DNSKEY set
// with only the given signatures.
func (g *rolloverRig) validates(m *validator.ManagedAnchors, set []dns.RR, sigs []*dns.RRSIG) bool {
	ds, keys := m.Anchors(lab.Root)
	res, _ := validator.VerifyDNSKEYs(set, sigs, ds, keys, g.clk.Now(), nil)
	return res.Status == security.Secure
}

// forgedWithOldKey is what whoever holds the old private key could serve
// after the roll: the root DNSKEY set with the old key unrevoked, signed
// by it alone.
func (g *rolloverRig) forgedWithOldKey() ([]dns.RR, []*dns.RRSIG) {
	g.t.Helper()
	set := []dns.RR{dns.Copy(g.oldKSK.DNSKEY), dns.Copy(g.zsk.DNSKEY)}
	now := g.clk.Now()
	sig := &dns.RRSIG{
		Hdr:        dns.RR_Header{Name: lab.Root, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: 3600},
		Algorithm:  g.oldKSK.DNSKEY.Algorithm,
		KeyTag:     g.oldKSK.Tag(),
		SignerName: lab.Root,
		Inception:  uint32(now.Add(-time.Hour).Unix()),
		Expiration: uint32(now.Add(24 * time.Hour).Unix()),
	}
	if err := sig.Sign(g.oldKSK.Private, set); err != nil {
		g.t.Fatal(err)
	}
	return set, []*dns.RRSIG{sig}
}

// TestDNSSECRootKSKRollover follows a whole root KSK roll with RFC 5011:
// the new key waits out the 30-day add hold-down (RFC 5011 2.4.1) in
// AddPend, becomes Valid, the old key's self-signed revocation makes it
// Revoked and untrusted, the old key goes away and the resolver keeps
// answering with AD; a resolver restarted from the state file alone does
// too, where one that kept the old DS does not.
func TestDNSSECRootKSKRollover(t *testing.T) {
	g := newRolloverRig(t)
	secure := "www." + lab.SecureAlg13

	// Start: the old DS resolves to the old KSK.
	g.askSecure(g.r, g.d, "start", secure, dns.TypeA)
	g.refresh(g.r)
	g.wantState("start", g.oldKSK, validator.KeyValid)

	// Add: the new KSK is published beside the old one.
	newKSK, err := g.lab.AddRootKSK(dns.ECDSAP256SHA256)
	if err != nil {
		t.Fatal(err)
	}
	g.advance(keyTTL + time.Minute)
	g.refresh(g.r)
	firstSeen := g.clk.Now()
	g.wantState("first seen", newKSK, validator.KeyAddPend)
	if trusts(g.m, newKSK) {
		t.Fatal("the new KSK is trusted at first sight")
	}
	newOnly, newSigs := g.rootDNSKEYs(newKSK.Tag())
	if g.validates(g.m, newOnly, newSigs) {
		t.Fatal("the DNSKEY set signed by the new KSK alone validates before the hold-down")
	}

	// Hold-down: refreshed every few days (RFC 5011 2.3 asks for at most
	// 15), the key stays AddPend and the old key keeps the chain secure,
	// up to an hour before the 30 days end.
	for day := 5; day < 30; day += 5 {
		g.advance(firstSeen.Add(time.Duration(day) * 24 * time.Hour).Sub(g.clk.Now()))
		g.refresh(g.r)
		g.askSecure(g.r, g.d, "hold-down", secure, dns.TypeA)
		g.wantState("hold-down", newKSK, validator.KeyAddPend)
	}
	g.advance(firstSeen.Add(rfc5011AddHoldDown - time.Hour).Sub(g.clk.Now()))
	g.refresh(g.r)
	g.wantState("an hour before the hold-down ends", newKSK, validator.KeyAddPend)
	if trusts(g.m, newKSK) {
		t.Fatal("the new KSK is trusted before the hold-down ends")
	}

	// Past the hold-down, still published: Valid, and stays so.
	g.advance(2 * time.Hour)
	g.refresh(g.r)
	g.wantState("hold-down over", newKSK, validator.KeyValid)
	g.advance(keyTTL + time.Minute)
	g.refresh(g.r)
	g.wantState("hold-down over, next refresh", newKSK, validator.KeyValid)
	newOnly, newSigs = g.rootDNSKEYs(newKSK.Tag()) // re-signed since
	if !trusts(g.m, newKSK) || !g.validates(g.m, newOnly, newSigs) {
		t.Fatal("the new KSK is not trusted after the hold-down")
	}

	// Revoke: the old key signs its own revocation and is no longer trusted.
	forgedSet, forgedSigs := g.forgedWithOldKey()
	if !g.validates(g.m, forgedSet, forgedSigs) {
		t.Fatal("control: a set signed by the old key does not validate while it is an anchor")
	}
	revoked, err := g.lab.RevokeRootKSK(g.oldKSK)
	if err != nil {
		t.Fatal(err)
	}
	g.advance(keyTTL + time.Minute)
	g.refresh(g.r)
	g.wantState("revoked", g.oldKSK, validator.KeyRevoked)
	g.wantState("revoked", newKSK, validator.KeyValid)
	forgedSet, forgedSigs = g.forgedWithOldKey()
	if trusts(g.m, g.oldKSK) || g.validates(g.m, forgedSet, forgedSigs) {
		t.Fatal("the revoked key is still trusted")
	}
	if set, sigs := g.rootDNSKEYs(revoked.Tag()); len(sigs) != 1 || g.validates(g.m, set, sigs) {
		t.Fatalf("the DNSKEY set signed by the revoked key alone (%d RRSIGs) validates", len(sigs))
	}
	g.askSecure(g.r, g.d, "revoked", secure, dns.TypeA)

	// Remove: the old key is gone; only the new one signs.
	if err := g.lab.RemoveRootKSK(g.oldKSK); err != nil {
		t.Fatal(err)
	}
	g.advance(keyTTL + time.Minute)
	g.refresh(g.r)
	g.wantState("removed", g.oldKSK, validator.KeyRevoked) // remembered until the remove hold-down ends
	g.wantState("removed", newKSK, validator.KeyValid)
	if _, sigs := g.rootDNSKEYs(0); len(sigs) != 1 || sigs[0].KeyTag != newKSK.Tag() {
		t.Fatalf("root DNSKEY set signed by %v, want the new KSK %d alone", sigs, newKSK.Tag())
	}
	// The resolver's cached root keys are older than keyTTL: these walk
	// the chain again from the new KSK.
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{".", dns.TypeSOA}, {secure, dns.TypeA}, {"www." + lab.TLDExample, dns.TypeA}, {"nonexistent." + lab.SecureAlg13, dns.TypeA}} {
		m, _ := ask(t, g.r, q.name, q.qtype, true, false, false)
		g.settle(g.d)
		if !m.AuthenticatedData {
			t.Errorf("after the roll: %s %s: %s without AD", q.name, dns.TypeToString[q.qtype], dns.RcodeToString[m.Rcode])
		}
	}

	// Restart from the state file alone: secure.
	state, err := os.ReadFile(g.stateFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("state file after the roll:\n%s", state)
	if strings.Contains(string(state), " DS ") || strings.Contains(string(state), validator.KeyAddPend.String()) {
		t.Errorf("state file still holds a DS or a pending key:\n%s", state)
	}
	restarted := g.loadState()
	r2, d2 := g.resolver(restarted)
	g.askSecure(r2, d2, "restarted from the state file", secure, dns.TypeA)
	if restarted.State(lab.Root, newKSK.DNSKEY) != validator.KeyValid || trusts(restarted, g.oldKSK) {
		t.Errorf("restarted state: new %v, old trusted %v", restarted.State(lab.Root, newKSK.DNSKEY), trusts(restarted, g.oldKSK))
	}

	// Control: a resolver that kept the old DS cannot validate any more.
	r3 := newLabResolver(t, g.lab, func(c *Config) { c.Clock = g.clk; c.DNSSEC = &DNSSECConfig{Anchors: g.oldDS} })
	if m, _ := ask(t, r3, secure, dns.TypeA, true, false, false); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("with the old DS only: %s AD=%v, want SERVFAIL", dns.RcodeToString[m.Rcode], m.AuthenticatedData)
	}
}

// TestDNSSECRootKSKVanishesDuringHoldDown: a new KSK that disappears
// before its hold-down ends is forgotten (RFC 5011 4.4, AddPend -> Start);
// when it comes back, even after more than 30 days since it was first
// seen, its hold-down starts again. It never becomes trusted, so revoking
// the old key leaves the resolver with no anchor: SERVFAIL, not AD.
func TestDNSSECRootKSKVanishesDuringHoldDown(t *testing.T) {
	g := newRolloverRig(t)
	secure := "www." + lab.SecureAlg13
	g.askSecure(g.r, g.d, "start", secure, dns.TypeA)

	newKSK, err := g.lab.AddRootKSK(dns.ECDSAP256SHA256)
	if err != nil {
		t.Fatal(err)
	}
	g.advance(keyTTL + time.Minute)
	g.refresh(g.r)
	firstSeen := g.clk.Now()
	g.wantState("first seen", newKSK, validator.KeyAddPend)
	g.advance(10 * 24 * time.Hour)
	g.refresh(g.r)
	g.wantState("10 days on", newKSK, validator.KeyAddPend)

	// Gone before the hold-down ends: forgotten.
	if err := g.lab.RemoveRootKSK(newKSK); err != nil {
		t.Fatal(err)
	}
	g.advance(keyTTL + time.Minute)
	g.refresh(g.r)
	g.wantState("removed", newKSK, 0)
	for g.clk.Now().Before(firstSeen.Add(rfc5011AddHoldDown + time.Hour)) {
		g.advance(5 * 24 * time.Hour)
		g.refresh(g.r)
		g.askSecure(g.r, g.d, "after the key vanished", secure, dns.TypeA)
		g.wantState("after the key vanished", newKSK, 0)
	}

	// Back more than 30 days after it was first seen: AddPend again, not Valid.
	if err := g.lab.PublishRootKSK(newKSK); err != nil {
		t.Fatal(err)
	}
	g.advance(keyTTL + time.Minute)
	g.refresh(g.r)
	g.wantState("republished", newKSK, validator.KeyAddPend)
	g.advance(keyTTL + time.Minute)
	g.refresh(g.r)
	g.wantState("republished, next refresh", newKSK, validator.KeyAddPend)
	set, sigs := g.rootDNSKEYs(newKSK.Tag())
	if trusts(g.m, newKSK) || g.validates(g.m, set, sigs) {
		t.Fatal("the republished key is trusted without a new hold-down")
	}

	// The old key revokes itself: it is Revoked at once although it was
	// the only anchor and nothing else validates the set (RFC 5011 2.1);
	// no anchor is left, and the new key is not one.
	forgedSet, forgedSigs := g.forgedWithOldKey()
	if !g.validates(g.m, forgedSet, forgedSigs) {
		t.Fatal("control: a set signed by the old key does not validate while it is the anchor")
	}
	revoked, err := g.lab.RevokeRootKSK(g.oldKSK)
	if err != nil {
		t.Fatal(err)
	}
	g.advance(keyTTL + time.Minute)
	g.refresh(g.r)
	g.wantState("old revoked", g.oldKSK, validator.KeyRevoked)
	g.wantState("old revoked", newKSK, validator.KeyAddPend)
	if ds, keys := g.m.Anchors(lab.Root); len(ds)+len(keys) != 0 {
		t.Fatalf("anchors left after the only one revoked itself: %d DS, %d keys", len(ds), len(keys))
	}
	forgedSet, forgedSigs = g.forgedWithOldKey()
	if g.validates(g.m, forgedSet, forgedSigs) {
		t.Fatal("a DNSKEY set forged with the revoked key's private half validates")
	}
	if set, sigs := g.rootDNSKEYs(revoked.Tag()); len(sigs) != 1 || g.validates(g.m, set, sigs) {
		t.Fatalf("the DNSKEY set signed by the revoked key alone (%d RRSIGs) validates", len(sigs))
	}
	if m, _ := ask(t, g.r, secure, dns.TypeA, true, false, false); m.AuthenticatedData || m.Rcode != dns.RcodeServerFailure {
		t.Errorf("with no anchor left: %s AD=%v, want SERVFAIL", dns.RcodeToString[m.Rcode], m.AuthenticatedData)
	}
	g.settle(g.d)

	// A restart from the state file stays without anchor (fails closed,
	// see validator.KeyRevoked) and rejects the forged set too.
	restarted := g.loadState()
	if trusts(restarted, g.oldKSK) || g.validates(restarted, forgedSet, forgedSigs) {
		t.Fatal("restarted from the state file, the revoked key is trusted again")
	}
	r2, d2 := g.resolver(restarted)
	if m, _ := ask(t, r2, secure, dns.TypeA, true, false, false); m.AuthenticatedData || m.Rcode != dns.RcodeServerFailure {
		t.Errorf("restarted with no anchor left: %s AD=%v, want SERVFAIL", dns.RcodeToString[m.Rcode], m.AuthenticatedData)
	}
	g.settle(d2)
}

// TestDNSSECRootKSKMissing: a trusted KSK that the root stops publishing
// is Missing (RFC 5011 4, KeyRem) and stays a trust anchor, so a DNSKEY set
// it signs still validates; published again it is Valid at once (KeyPres),
// with no new hold-down.
func TestDNSSECRootKSKMissing(t *testing.T) {
	g := newRolloverRig(t)
	secure := "www." + lab.SecureAlg13
	g.askSecure(g.r, g.d, "start", secure, dns.TypeA)

	newKSK, err := g.lab.AddRootKSK(dns.ECDSAP256SHA256)
	if err != nil {
		t.Fatal(err)
	}
	g.advance(keyTTL + time.Minute)
	g.refresh(g.r)
	firstSeen := g.clk.Now()
	for g.clk.Now().Before(firstSeen.Add(rfc5011AddHoldDown + time.Hour)) {
		g.advance(10 * 24 * time.Hour)
		g.refresh(g.r)
	}
	g.wantState("after the hold-down", newKSK, validator.KeyValid)

	// KeyRem: Missing, still an anchor, in memory and in the state file.
	if err := g.lab.RemoveRootKSK(newKSK); err != nil {
		t.Fatal(err)
	}
	g.advance(keyTTL + time.Minute)
	g.refresh(g.r)
	g.wantState("new KSK unpublished", newKSK, validator.KeyMissing)
	g.wantState("new KSK unpublished", g.oldKSK, validator.KeyValid)
	g.askSecure(g.r, g.d, "new KSK missing", secure, dns.TypeA)
	g.advance(20 * 24 * time.Hour)
	g.refresh(g.r)
	g.wantState("missing for 20 days", newKSK, validator.KeyMissing)
	if !trusts(g.m, newKSK) || !trusts(g.loadState(), newKSK) {
		t.Fatal("the Missing key is no longer a trust anchor")
	}

	// KeyPres: Valid again at once, and the set it signs validates.
	if err := g.lab.PublishRootKSK(newKSK); err != nil {
		t.Fatal(err)
	}
	g.advance(keyTTL + time.Minute)
	g.refresh(g.r)
	g.wantState("republished", newKSK, validator.KeyValid)
	set, sigs := g.rootDNSKEYs(newKSK.Tag())
	if len(sigs) != 1 || !g.validates(g.m, set, sigs) {
		t.Fatalf("the DNSKEY set signed by the returned key alone (%d RRSIGs) does not validate", len(sigs))
	}
	g.askSecure(g.r, g.d, "new KSK back", secure, dns.TypeA)
}
