package lab

import (
	"errors"
	"fmt"
	"slices"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"

	"github.com/sextant-dns/sextant/authority"
)

// Root KSK rollover by RFC 5011, the way the IANA root rolls: publish a
// new KSK beside the old one (both sign the DNSKEY RRset), wait out the
// resolvers' 30-day add hold-down, revoke the old key (REVOKE bit set,
// still signing the DNSKEY RRset so that resolvers can check the
// revocation is genuine, RFC 5011 2.1), then remove it. Each step re-signs
// the root zone at the clock's now and swaps it in on the root servers at
// once; Resign keeps signing with the keys as rolled.
//
// The root's DS in the files WriteFiles wrote at start stays the old one:
// a resolver started from it has to follow the roll. RootDS, RootKeys and
// TrustAnchors report the KSKs published now (a revoked key included), so
// read them before the roll to get the old anchor.

// AddRootKSK generates a root KSK of algorithm alg and publishes it beside
// the current keys (RFC 5011's "add" step). The DNSKEY RRset is signed by
// every KSK from then on.
func (l *Lab) AddRootKSK(alg uint8) (*authority.Key, error) {
	k, err := authority.GenerateKey(Root, alg, authority.FlagsKSK)
	if err != nil {
		return nil, fmt.Errorf("lab: add root KSK: %w", err)
	}
	if err := l.PublishRootKSK(k); err != nil {
		return nil, err
	}
	return k, nil
}

// PublishRootKSK publishes a root KSK the caller already has, such as one
// removed earlier: a key that comes back after it vanished must start its
// hold-down again in a resolver.
func (l *Lab) PublishRootKSK(k *authority.Key) error {
	if k == nil || k.DNSKEY == nil || k.Private == nil {
		return errors.New("lab: publish root KSK: incomplete key")
	}
	if dnsname.Canonical(k.DNSKEY.Hdr.Name) != Root || k.DNSKEY.Flags != authority.FlagsKSK {
		return fmt.Errorf("lab: publish root KSK: key %d is %s flags %d, want a root KSK (flags %d)",
			k.Tag(), k.DNSKEY.Hdr.Name, k.DNSKEY.Flags, authority.FlagsKSK)
	}
	return l.changeRootKeys(func(keys []*authority.Key) ([]*authority.Key, error) {
		if slices.IndexFunc(keys, sameKey(k)) >= 0 {
			return nil, fmt.Errorf("key %d is already published", k.Tag())
		}
		return append(keys, k), nil
	})
}

// RevokeRootKSK sets the REVOKE bit on the root KSK old (flags 385, a new
// key tag) and returns the revoked key. The revoked key keeps signing the
// DNSKEY RRset (a revocation must be self-signed) but nothing else; the
// other KSKs sign the RRset as before. At least one KSK must remain
// unrevoked.
func (l *Lab) RevokeRootKSK(old *authority.Key) (*authority.Key, error) {
	var revoked *authority.Key
	err := l.changeRootKeys(func(keys []*authority.Key) ([]*authority.Key, error) {
		i := slices.IndexFunc(keys, sameKey(old))
		switch {
		case i < 0:
			return nil, errors.New("the key is not published")
		case !keys[i].IsSEP():
			return nil, fmt.Errorf("key %d is not a KSK", keys[i].Tag())
		case keys[i].DNSKEY.Flags&dns.REVOKE != 0:
			return nil, fmt.Errorf("key %d is already revoked", keys[i].Tag())
		}
		rk := dns.Copy(keys[i].DNSKEY).(*dns.DNSKEY)
		rk.Flags |= dns.REVOKE
		revoked = &authority.Key{DNSKEY: rk, Private: keys[i].Private}
		out := slices.Clone(keys)
		out[i] = revoked
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return revoked, nil
}

// RemoveRootKSK stops publishing the root KSK k, revoked or not (k may be
// given with or without the REVOKE bit). At least one KSK must remain
// unrevoked.
func (l *Lab) RemoveRootKSK(k *authority.Key) error {
	return l.changeRootKeys(func(keys []*authority.Key) ([]*authority.Key, error) {
		i := slices.IndexFunc(keys, sameKey(k))
		if i < 0 {
			return nil, errors.New("the key is not published")
		}
		if !keys[i].IsSEP() {
			return nil, fmt.Errorf("key %d is not a KSK", keys[i].Tag())
		}
		return slices.Delete(slices.Clone(keys), i, i+1), nil
	})
}

// changeRootKeys replaces the root's keys by what change makes of them,
// re-signs the root zone and swaps it in on every server that serves the
// root. On any error nothing changes.
func (l *Lab) changeRootKeys(change func([]*authority.Key) ([]*authority.Key, error)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	root := l.world.by[Root]
	keys, err := change(root.keys)
	if err != nil {
		return fmt.Errorf("lab: root keys: %w", err)
	}
	if !slices.ContainsFunc(keys, activeKSK) {
		return errors.New("lab: root keys: no unrevoked KSK would be left")
	}
	saved := *root
	root.keys = keys
	if err := l.world.buildZone(root, l.cfg.Clock.Now()); err != nil {
		*root = saved
		return fmt.Errorf("lab: root keys: %w", err)
	}
	for _, s := range l.servers {
		if slices.Contains(s.zones, Root) {
			s.auth.Set(root.zone)
		}
	}
	return nil
}

// sameKey matches keys by algorithm and public key, so that a key is
// found whether its REVOKE bit is set or not.
func sameKey(k *authority.Key) func(*authority.Key) bool {
	return func(x *authority.Key) bool {
		return k != nil && k.DNSKEY != nil &&
			x.DNSKEY.Algorithm == k.DNSKEY.Algorithm && x.DNSKEY.PublicKey == k.DNSKEY.PublicKey
	}
}

// activeKSK reports whether k is a KSK without the REVOKE bit.
func activeKSK(k *authority.Key) bool {
	return k.IsSEP() && k.DNSKEY.Flags&dns.REVOKE == 0
}
