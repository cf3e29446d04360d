package validator

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/internal/sigdata"
	"github.com/sextant-dns/sextant/security"
)

// KeyState is the RFC 5011 section 4 state of a managed trust-anchor key.
type KeyState int

const (
	// KeyAddPend: a new SEP key seen in a validated DNSKEY set, waiting out
	// the add hold-down before it is trusted.
	KeyAddPend KeyState = iota + 1
	// KeyValid: a trusted anchor.
	KeyValid
	// KeyMissing: a trusted anchor absent from the last validated set; still
	// trusted (RFC 5011 4: "Missing" keys stay anchors).
	KeyMissing
	// KeyRevoked: the key signed its own revocation; never trusted again.
	//
	// A trust point whose keys are all revoked (RFC 5011 6.6, "trust point
	// deletion") keeps its zone but has no anchor left: Anchors returns
	// nothing, ManagedAnchors.VerifyDNSKEYs and the Validator's walk call
	// everything under it bogus. RFC 5011 6.6 (and Unbound, which removes
	// the trust point) would treat the zone as never configured, that is
	// insecure when no superior trust point exists. Sextant fails closed
	// instead, as BIND does when no managed key is left: for the root, the
	// only trust point, deleting it would switch validation off on the
	// word of one key, and that key may be the compromised one. An
	// operator who means to retire the trust point removes it from the
	// configuration and the state file.
	KeyRevoked
)

var keyStateNames = map[KeyState]string{KeyAddPend: "ADDPEND", KeyValid: "VALID", KeyMissing: "MISSING", KeyRevoked: "REVOKED"}

func (s KeyState) String() string { return keyStateNames[s] }

// HoldDown is RFC 5011's remove hold-down and the least add hold-down
// (section 2.4.1); see AddHoldDown.
const HoldDown = 30 * 24 * time.Hour

// AddHoldDown is RFC 5011 2.4.1's add hold-down for a key first seen in a
// DNSKEY RRset with original TTL origTTL: 30 days or that TTL, whichever is
// greater, so that at least two validated sets with the key are seen
// before it is trusted.
func AddHoldDown(origTTL uint32) time.Duration {
	return max(HoldDown, time.Duration(origTTL)*time.Second)
}

// ManagedAnchors keeps trust anchors up to date by RFC 5011: keys that a
// zone introduces in DNSKEY sets validated by the current anchors become
// anchors after the hold-down; keys that sign their own revocation stop
// being anchors at once. It is safe for concurrent use. Save and
// LoadManagedAnchors persist it; the caller decides where.
type ManagedAnchors struct {
	mu    sync.Mutex
	zones map[string]*managedZone
}

type managedZone struct {
	ds   []*dns.DS // initial DS anchors not yet resolved to keys
	keys map[string]*managedKey
}

type managedKey struct {
	key     *dns.DNSKEY // without the REVOKE bit
	state   KeyState
	changed time.Time // when the state last changed (AddPend: first seen)
	// until is when the hold-down of the state ends: AddPend, the add
	// hold-down (AddHoldDown from changed); Revoked, the remove hold-down.
	until time.Time
}

// NewManagedAnchors starts from configured anchors (DS or DNSKEY records):
// DNSKEYs are Valid at once; DS anchors are resolved to Valid keys by the
// first validated DNSKEY set of their zone.
func NewManagedAnchors(initial []dns.RR, now time.Time) (*ManagedAnchors, error) {
	m := &ManagedAnchors{zones: map[string]*managedZone{}}
	for _, rr := range initial {
		z := m.zone(rr.Header().Name)
		switch x := rr.(type) {
		case *dns.DS:
			z.ds = append(z.ds, x)
		case *dns.DNSKEY:
			k := unrevoked(x)
			z.keys[keyID(k)] = &managedKey{key: k, state: KeyValid, changed: now}
		default:
			return nil, fmt.Errorf("managed anchor %s: type %s is neither DS nor DNSKEY", rr.Header().Name, dns.TypeToString[rr.Header().Rrtype])
		}
	}
	return m, nil
}

func (m *ManagedAnchors) zone(name string) *managedZone {
	name = dnsname.Canonical(name)
	z := m.zones[name]
	if z == nil {
		z = &managedZone{keys: map[string]*managedKey{}}
		m.zones[name] = z
	}
	return z
}

// unrevoked returns a copy of k without the REVOKE flag, the key's identity
// across its revocation (RFC 5011 2.1: the flag changes the key tag).
func unrevoked(k *dns.DNSKEY) *dns.DNSKEY {
	c := dns.Copy(k).(*dns.DNSKEY)
	c.Flags &^= dns.REVOKE
	c.Hdr.Name = dnsname.Canonical(c.Hdr.Name)
	return c
}

func keyID(k *dns.DNSKEY) string {
	return strconv.Itoa(int(k.Algorithm)) + "/" + strings.TrimRight(k.PublicKey, "=")
}

// Zones returns the managed zones.
func (m *ManagedAnchors) Zones() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.zones))
	for z := range m.zones {
		out = append(out, z)
	}
	slices.Sort(out)
	return out
}

// Anchors returns the current anchors of zone: Valid and Missing keys, and
// initial DS records not yet resolved.
func (m *ManagedAnchors) Anchors(zone string) (ds []*dns.DS, keys []*dns.DNSKEY) {
	m.mu.Lock()
	defer m.mu.Unlock()
	z := m.zones[dnsname.Canonical(zone)]
	if z == nil {
		return nil, nil
	}
	return z.anchors()
}

// State returns the state of key in zone, 0 when it is not tracked.
func (m *ManagedAnchors) State(zone string, key *dns.DNSKEY) KeyState {
	m.mu.Lock()
	defer m.mu.Unlock()
	if z := m.zones[dnsname.Canonical(zone)]; z != nil {
		if k := z.keys[keyID(key)]; k != nil {
			return k.state
		}
	}
	return 0
}

// VerifyDNSKEYs validates a DNSKEY RRset of the managed zone and applies
// it, in RFC 5011's order: first the self-signed revocations of tracked
// keys (section 2.1: a key that signed its own revocation is never trusted
// again, even when it was the only anchor), then validation with the
// anchors left (package VerifyDNSKEYs), then, when the set is Secure, the
// other section 4 events (Observe). A zone whose anchors are all revoked
// gets a bogus result (fails closed: see KeyRevoked). An
// unmanaged zone is bogus too.
func (m *ManagedAnchors) VerifyDNSKEYs(zone string, set []dns.RR, sigs []*dns.RRSIG, now time.Time, b *Budget) (Result, []*dns.DNSKEY) {
	b = orDefault(b)
	zone = dnsname.Canonical(zone)
	m.mu.Lock()
	defer m.mu.Unlock()
	z := m.zones[zone]
	if z == nil {
		return bogus(EDEDNSKEYMissing, zone+" is not a managed trust point"), nil
	}
	z.revoke(set, sigs, now, b)
	ds, keys := z.anchors()
	if len(ds) == 0 && len(keys) == 0 {
		return bogus(EDEDNSKEYMissing, "every RFC 5011 anchor of "+zone+" is revoked"), nil
	}
	res, trusted := VerifyDNSKEYs(set, sigs, ds, keys, now, b)
	if res.Status == security.Secure {
		z.observe(set, sigs, now, b)
	}
	return res, trusted
}

// Observe applies a DNSKEY RRset of zone that was validated with the
// current anchors (RFC 5011 section 4 events). A SEP key with the REVOKE
// bit counts as revoked only if it signed the set itself; b pays for
// checking that. VerifyDNSKEYs validates and observes in one step, and
// also takes revocations from sets the revoked key alone signed.
func (m *ManagedAnchors) Observe(zone string, set []dns.RR, sigs []*dns.RRSIG, now time.Time, b *Budget) {
	b = orDefault(b)
	m.mu.Lock()
	defer m.mu.Unlock()
	if z := m.zones[dnsname.Canonical(zone)]; z != nil {
		z.revoke(set, sigs, now, b)
		z.observe(set, sigs, now, b)
	}
}

// anchors returns the zone's current anchors: Valid and Missing keys (RFC
// 5011 4: a Missing key is still a trust anchor) and unresolved DS.
func (z *managedZone) anchors() (ds []*dns.DS, keys []*dns.DNSKEY) {
	for _, k := range z.keys {
		if k.state == KeyValid || k.state == KeyMissing {
			keys = append(keys, k.key)
		}
	}
	return slices.Clone(z.ds), keys
}

// revoke applies RFC 5011's RevBit event: a tracked key that appears in set
// with the REVOKE bit and signed set in that form is Revoked at once. The
// self-signature is all the proof needed (section 2.1): whoever holds the
// private key may revoke it, whether or not the rest of the set validates.
// Section 4 lists RevBit for Valid and Missing keys; a pending key is
// revoked too, so that it can never become trusted later.
func (z *managedZone) revoke(set []dns.RR, sigs []*dns.RRSIG, now time.Time, b *Budget) {
	for _, rr := range set {
		k, ok := rr.(*dns.DNSKEY)
		if !ok || k.Flags&dns.REVOKE == 0 || k.Flags&dns.SEP == 0 || k.Flags&dns.ZONE == 0 {
			continue
		}
		mk := z.keys[keyID(k)]
		if mk != nil && mk.state != KeyRevoked && selfSigned(set, sigs, k, now, b) {
			mk.state, mk.changed, mk.until = KeyRevoked, now, now.Add(HoldDown)
		}
	}
}

// observe applies the section 4 events other than RevBit to a validated set.
func (z *managedZone) observe(set []dns.RR, sigs []*dns.RRSIG, now time.Time, b *Budget) {
	seen := map[string]bool{}
	for _, rr := range set {
		k, ok := rr.(*dns.DNSKEY)
		if !ok || k.Flags&dns.SEP == 0 || k.Flags&dns.ZONE == 0 {
			continue
		}
		id := keyID(k)
		seen[id] = true
		mk := z.keys[id]
		if k.Flags&dns.REVOKE != 0 {
			continue // revoke handled it
		}
		switch {
		case mk == nil && matchesAnyDS(z.ds, k):
			z.keys[id] = &managedKey{key: unrevoked(k), state: KeyValid, changed: now}
		case mk == nil:
			z.keys[id] = &managedKey{key: unrevoked(k), state: KeyAddPend, changed: now, until: now.Add(AddHoldDown(dnskeyOrigTTL(sigs)))}
		case mk.state == KeyAddPend && !now.Before(mk.until):
			mk.state, mk.changed, mk.until = KeyValid, now, time.Time{}
		case mk.state == KeyMissing:
			mk.state, mk.changed = KeyValid, now
		}
	}
	// DS anchors are resolved once their key is seen.
	z.ds = slices.DeleteFunc(z.ds, func(d *dns.DS) bool {
		for _, mk := range z.keys {
			if mk.state == KeyValid && dsMatches(d, mk.key) {
				return true
			}
		}
		return false
	})
	for id, mk := range z.keys {
		if seen[id] {
			continue
		}
		switch mk.state {
		case KeyAddPend:
			delete(z.keys, id) // KeyRem: back to Start
		case KeyValid:
			mk.state, mk.changed = KeyMissing, now
		case KeyRevoked:
			if !now.Before(mk.until) {
				delete(z.keys, id) // Removed: forgotten
			}
		}
	}
}

// dnskeyOrigTTL is the original TTL of the DNSKEY RRset as its RRSIGs give
// it: the least one, so that a stray RRSIG cannot stretch the add
// hold-down (AddHoldDown keeps it at 30 days or more). 0 without RRSIGs.
func dnskeyOrigTTL(sigs []*dns.RRSIG) uint32 {
	ttl, found := uint32(0), false
	for _, s := range sigs {
		if s.TypeCovered == dns.TypeDNSKEY && (!found || s.OrigTtl < ttl) {
			ttl, found = s.OrigTtl, true
		}
	}
	return ttl
}

func matchesAnyDS(ds []*dns.DS, k *dns.DNSKEY) bool {
	for _, d := range ds {
		if dsMatches(d, k) {
			return true
		}
	}
	return false
}

// selfSigned reports whether the revoked key k signed set (RFC 5011 2.1).
func selfSigned(set []dns.RR, sigs []*dns.RRSIG, k *dns.DNSKEY, now time.Time, b *Budget) bool {
	pub, err := parseKey(k, b.lim)
	if err != nil {
		return false
	}
	now32 := uint32(now.Unix())
	tag := k.KeyTag()
	for i, sig := range sigs {
		if i == b.lim.MaxSigsPerRRset {
			break
		}
		if sig.KeyTag != tag || sig.Algorithm != k.Algorithm || sig.TypeCovered != dns.TypeDNSKEY || validity(sig, now32) != sigValid {
			continue
		}
		data, err1 := sigdata.Build(set, sig)
		raw, err2 := signatureBytes(sig)
		if err1 != nil || err2 != nil || b.spendValidation() != nil {
			return false
		}
		if verifySignature(pub, data, raw) == nil {
			return true
		}
		if b.spendFailure() != nil {
			return false
		}
	}
	return false
}

// RefreshInterval is how often a managed zone's DNSKEY set should be
// fetched (RFC 5011 2.3): half the original TTL or half the time to the
// earliest signature expiration, between one hour and 15 days.
func RefreshInterval(origTTL uint32, untilExpiry time.Duration) time.Duration {
	d := min(time.Duration(origTTL)*time.Second/2, untilExpiry/2, 15*24*time.Hour)
	return max(d, time.Hour)
}

// Save writes the state, one key a line: zone, state, change time (Unix),
// end of the hold-down (Unix: add hold-down for pending keys, remove
// hold-down for revoked ones) and the DNSKEY; DS anchors still
// unresolved are written as DS lines.
func (m *ManagedAnchors) Save(w io.Writer) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	bw := bufio.NewWriter(w)
	for _, name := range sortedKeys(m.zones) {
		z := m.zones[name]
		for _, d := range z.ds {
			fmt.Fprintf(bw, "%s DS %s\n", name, d.String())
		}
		for _, id := range sortedKeys(z.keys) {
			k := z.keys[id]
			fmt.Fprintf(bw, "%s %s %d %d %s\n", name, k.state, k.changed.Unix(), k.until.Unix(), k.key.String())
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("save managed anchors: %w", err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// LoadManagedAnchors reads what Save wrote.
func LoadManagedAnchors(r io.Reader) (*ManagedAnchors, error) {
	m := &ManagedAnchors{zones: map[string]*managedZone{}}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, ";") {
			continue
		}
		f := strings.SplitN(text, " ", 5)
		if len(f) >= 3 && f[1] == "DS" {
			rr, err := dns.NewRR(strings.SplitN(text, " ", 3)[2])
			ds, ok := rr.(*dns.DS)
			if err != nil || !ok {
				return nil, fmt.Errorf("managed anchors line %d: bad DS: %v", line, err)
			}
			m.zone(f[0]).ds = append(m.zone(f[0]).ds, ds)
			continue
		}
		if len(f) != 5 {
			return nil, fmt.Errorf("managed anchors line %d: want zone state changed hold-down-end DNSKEY", line)
		}
		var state KeyState
		for s, n := range keyStateNames {
			if n == f[1] {
				state = s
			}
		}
		changed, err1 := strconv.ParseInt(f[2], 10, 64)
		until, err2 := strconv.ParseInt(f[3], 10, 64)
		rr, err3 := dns.NewRR(f[4])
		key, ok := rr.(*dns.DNSKEY)
		if state == 0 || err1 != nil || err2 != nil || err3 != nil || !ok {
			return nil, fmt.Errorf("managed anchors line %d: malformed", line)
		}
		k := unrevoked(key)
		mk := &managedKey{key: k, state: state, changed: time.Unix(changed, 0), until: time.Unix(until, 0)}
		if least := mk.changed.Add(HoldDown); state == KeyAddPend && mk.until.Before(least) {
			mk.until = least // files from before per-key add hold-downs
		}
		m.zone(f[0]).keys[keyID(k)] = mk
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read managed anchors: %w", err)
	}
	return m, nil
}
