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
	"github.com/sextant-dns/sextant/internal/sigdata"
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
	KeyRevoked
)

var keyStateNames = map[KeyState]string{KeyAddPend: "ADDPEND", KeyValid: "VALID", KeyMissing: "MISSING", KeyRevoked: "REVOKED"}

func (s KeyState) String() string { return keyStateNames[s] }

// HoldDown is RFC 5011's add and remove hold-down time (section 2.4.1).
const HoldDown = 30 * 24 * time.Hour

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
	removed time.Time // Revoked: when the remove hold-down ends
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
	name = dns.CanonicalName(name)
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
	c.Hdr.Name = dns.CanonicalName(c.Hdr.Name)
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
	z := m.zones[dns.CanonicalName(zone)]
	if z == nil {
		return nil, nil
	}
	for _, k := range z.keys {
		if k.state == KeyValid || k.state == KeyMissing {
			keys = append(keys, k.key)
		}
	}
	return slices.Clone(z.ds), keys
}

// State returns the state of key in zone, 0 when it is not tracked.
func (m *ManagedAnchors) State(zone string, key *dns.DNSKEY) KeyState {
	m.mu.Lock()
	defer m.mu.Unlock()
	if z := m.zones[dns.CanonicalName(zone)]; z != nil {
		if k := z.keys[keyID(key)]; k != nil {
			return k.state
		}
	}
	return 0
}

// Observe applies a DNSKEY RRset of zone that was validated with the
// current anchors (RFC 5011 section 4 events). A SEP key with the REVOKE
// bit counts as revoked only if it signed the set itself; b pays for
// checking that.
func (m *ManagedAnchors) Observe(zone string, set []dns.RR, sigs []*dns.RRSIG, now time.Time, b *Budget) {
	b = orDefault(b)
	m.mu.Lock()
	defer m.mu.Unlock()
	z := m.zones[dns.CanonicalName(zone)]
	if z == nil {
		return
	}
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
			if mk != nil && mk.state != KeyRevoked && selfSigned(set, sigs, k, now, b) {
				mk.state, mk.changed, mk.removed = KeyRevoked, now, now.Add(HoldDown)
			}
			continue
		}
		switch {
		case mk == nil && matchesAnyDS(z.ds, k):
			z.keys[id] = &managedKey{key: unrevoked(k), state: KeyValid, changed: now}
		case mk == nil:
			z.keys[id] = &managedKey{key: unrevoked(k), state: KeyAddPend, changed: now}
		case mk.state == KeyAddPend && now.Sub(mk.changed) >= HoldDown:
			mk.state, mk.changed = KeyValid, now
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
			if !now.Before(mk.removed) {
				delete(z.keys, id) // Removed: forgotten
			}
		}
	}
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
// remove time (Unix, revoked keys) and the DNSKEY; DS anchors still
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
			fmt.Fprintf(bw, "%s %s %d %d %s\n", name, k.state, k.changed.Unix(), k.removed.Unix(), k.key.String())
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
			return nil, fmt.Errorf("managed anchors line %d: want zone state changed removed DNSKEY", line)
		}
		var state KeyState
		for s, n := range keyStateNames {
			if n == f[1] {
				state = s
			}
		}
		changed, err1 := strconv.ParseInt(f[2], 10, 64)
		removed, err2 := strconv.ParseInt(f[3], 10, 64)
		rr, err3 := dns.NewRR(f[4])
		key, ok := rr.(*dns.DNSKEY)
		if state == 0 || err1 != nil || err2 != nil || err3 != nil || !ok {
			return nil, fmt.Errorf("managed anchors line %d: malformed", line)
		}
		k := unrevoked(key)
		m.zone(f[0]).keys[keyID(k)] = &managedKey{key: k, state: state, changed: time.Unix(changed, 0), removed: time.Unix(removed, 0)}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read managed anchors: %w", err)
	}
	return m, nil
}
