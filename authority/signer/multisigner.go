package signer

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// This file lets several providers serve one zone, each signing with its
// own keys (RFC 8901 2.1.2, model 2): every provider's DNSKEY RRset holds
// the other providers' ZSKs beside its own keys, so that a validator
// holding any provider's DNSKEY RRset validates answers from all of them,
// and CDS/CDNSKEY name every provider's KSK, so that the parent holds a DS
// for each. The other providers' keys come from a file of DNSKEY records
// (import-dnskey=FILE), read at start and again whenever it changes (the
// other provider's ZSK rollover must reach this file before its successor
// signs: RFC 8901 4.3).

// maxImportKeys bounds the keys an import file may hold: a handful of
// providers with a key or two each in a rollover.
const maxImportKeys = 32

// importedKeys are the other providers' DNSKEYs, as last read.
type importedKeys struct {
	path    string
	modTime time.Time
	size    int64
	keys    []*dns.DNSKEY // in file order
}

// readImport reads path: DNSKEY records of zone, of the algorithm the
// zone signs with, neither revoked nor this provider's own. Every problem
// is an error naming the file and the record.
func readImport(path string, p *Policy, own []*dns.DNSKEY) (*importedKeys, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("import-dnskey: %w", err)
	}
	b, err := readLimited(path)
	if err != nil {
		return nil, fmt.Errorf("import-dnskey: %w", err)
	}
	im := &importedKeys{path: path, modTime: st.ModTime(), size: st.Size()}
	zp := dns.NewZoneParser(bytes.NewReader(b), p.Zone, path)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		k, isKey := rr.(*dns.DNSKEY)
		switch {
		case !isKey:
			return nil, fmt.Errorf("import-dnskey %s: %s is not a DNSKEY record", path, dns.TypeToString[rr.Header().Rrtype])
		case dns.CanonicalName(k.Hdr.Name) != p.Zone:
			return nil, fmt.Errorf("import-dnskey %s: key %d belongs to %s, not %s", path, k.KeyTag(), k.Hdr.Name, p.Zone)
		case k.Flags&dns.ZONE == 0 || k.Flags&dns.REVOKE != 0 || k.Protocol != 3:
			return nil, fmt.Errorf("import-dnskey %s: key %d has flags %d (want a zone key, not revoked)", path, k.KeyTag(), k.Flags)
		case k.Algorithm != p.Algorithm:
			// RFC 8901 3: the providers must use one algorithm, or each
			// would have to sign with every algorithm.
			return nil, fmt.Errorf("import-dnskey %s: key %d is algorithm %d, the zone is signed with %d", path, k.KeyTag(), k.Algorithm, p.Algorithm)
		case slices.ContainsFunc(own, func(o *dns.DNSKEY) bool { return sameKey(o, k) }):
			continue // this provider's own key, as the other one publishes it
		case slices.ContainsFunc(im.keys, func(o *dns.DNSKEY) bool { return sameKey(o, k) }):
			continue
		}
		if len(im.keys) == maxImportKeys {
			return nil, fmt.Errorf("import-dnskey %s: more than %d keys", path, maxImportKeys)
		}
		k.Hdr.Name = p.Zone
		im.keys = append(im.keys, k)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("import-dnskey: %w", err)
	}
	if len(im.keys) == 0 {
		return nil, fmt.Errorf("import-dnskey %s: no key of another provider", path)
	}
	return im, nil
}

func sameKey(a, b *dns.DNSKEY) bool {
	return a.Flags == b.Flags && a.Algorithm == b.Algorithm && a.PublicKey == b.PublicKey
}

// changed reports whether the file looks different from when it was read.
func (im *importedKeys) changed() bool {
	st, err := os.Stat(im.path)
	return err != nil || !st.ModTime().Equal(im.modTime) || st.Size() != im.size
}

// zsks are the imported keys that go into the DNSKEY RRset: the other
// providers' ZSKs (their KSKs sign only their own DNSKEY RRsets).
func (im *importedKeys) zsks() []dns.RR {
	var out []dns.RR
	for _, k := range im.keys {
		if k.Flags&dns.SEP == 0 {
			out = append(out, dns.Copy(k))
		}
	}
	return out
}

// ksks are the other providers' KSKs, for CDS/CDNSKEY.
func (im *importedKeys) ksks() []*dns.DNSKEY {
	var out []*dns.DNSKEY
	for _, k := range im.keys {
		if k.Flags&dns.SEP != 0 {
			out = append(out, k)
		}
	}
	return out
}

// describe lists the imported keys for the status.
func (im *importedKeys) describe() []string {
	var out []string
	for _, k := range im.keys {
		role := "zsk"
		if k.Flags&dns.SEP != 0 {
			role = "ksk"
		}
		out = append(out, fmt.Sprintf("%s tag %d algorithm %d", role, k.KeyTag(), k.Algorithm))
	}
	return out
}

// fingerprint names the imported keys, for signConfig.
func (im *importedKeys) fingerprint() string {
	if im == nil {
		return ""
	}
	return "import:" + strings.Join(im.describe(), ",")
}

// ownDNSKEYs are this provider's keys.
func (ks *keyStore) ownDNSKEYs() []*dns.DNSKEY {
	out := make([]*dns.DNSKEY, len(ks.keys))
	for i, k := range ks.keys {
		out[i] = k.DNSKEY
	}
	return out
}

// reimportLocked reads the import file again if it changed and reports
// whether the imported keys did (the zone must then be signed again). A
// file that no longer reads keeps the keys last read, with an error.
func (s *Signer) reimportLocked() bool {
	if s.imported == nil || !s.imported.changed() {
		return false
	}
	im, err := readImport(s.imported.path, s.policy, s.keys.ownDNSKEYs())
	if err != nil {
		s.status.LastError = err.Error()
		s.log.Error("imported DNSKEYs not read again; the keys read before stay", "zone", s.policy.Zone, "err", err)
		// Not read again until it changes once more.
		if st, statErr := os.Stat(s.imported.path); statErr == nil {
			s.imported.modTime, s.imported.size = st.ModTime(), st.Size()
		}
		return false
	}
	same := im.fingerprint() == s.imported.fingerprint()
	s.imported = im
	s.status.Imported = im.describe()
	if !same {
		s.log.Info("imported DNSKEYs changed", "zone", s.policy.Zone, "keys", strings.Join(im.describe(), "; "))
	}
	return !same
}
