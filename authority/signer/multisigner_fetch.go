package signer

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
)

// This file follows another provider's ZSKs by asking it for the zone's
// DNSKEY RRset (import-dnskey-from=ADDR), so that its ZSK rollovers reach
// this provider's DNSKEY RRset without anyone editing the import file
// (RFC 8901 4.3 leaves the exchange to the providers). The answer travels
// unauthenticated, so it counts only when a KSK of the import file (the
// other provider's KSK, whose DS the parent holds) signs it, validly at
// the DNS time: an attacker on the path cannot put a key of its own into
// this zone's DNSKEY RRset. KSKs still come from the file alone: a KSK
// change moves the parent's DS, which the operators arrange.

// importFetchInterval is how often the other provider is asked: a ZSK
// pre-publication wait is an hour or more, so a minute reaches it in
// time, and answers are small.
const importFetchInterval = time.Minute

// importFetchTimeout bounds one question to the other provider.
const importFetchTimeout = 5 * time.Second

// fetchDue reports whether the other provider should be asked now.
func (s *Signer) fetchDue() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.policy.ImportFrom != "" && s.imported != nil && time.Since(s.lastFetch) >= importFetchInterval
}

// fetchImport asks the other provider for its DNSKEY RRset (outside the
// lock: it is I/O) and takes its ZSKs if an imported KSK signs it.
func (s *Signer) fetchImport(ctx context.Context) {
	s.mu.Lock()
	s.lastFetch = time.Now()
	anchors := s.imported.ksks()
	s.mu.Unlock()
	zsks, err := fetchZSKs(ctx, s.policy, anchors, s.clock.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.status.LastError = "import-dnskey-from: " + err.Error()
		s.log.Warn("the other provider's DNSKEYs not taken; the keys imported before stay", "zone", s.policy.Zone,
			"from", s.policy.ImportFrom, "err", err)
		return
	}
	own := s.keys.ownDNSKEYs()
	next := &importedKeys{path: s.imported.path, modTime: s.imported.modTime, size: s.imported.size, keys: slices.Clone(anchors)}
	for _, k := range zsks {
		if !slices.ContainsFunc(own, func(o *dns.DNSKEY) bool { return sameKey(o, k) }) && len(next.keys) < maxImportKeys {
			next.keys = append(next.keys, k)
		}
	}
	if next.fingerprint() == s.imported.fingerprint() {
		return
	}
	s.imported = next
	s.status.Imported = next.describe()
	s.importChanged = true
	s.log.Info("imported DNSKEYs changed", "zone", s.policy.Zone, "from", s.policy.ImportFrom, "keys", strings.Join(next.describe(), "; "))
}

// fetchZSKs asks addr for p.Zone's DNSKEY RRset and returns its ZSKs of
// the zone's algorithm, once a signature by one of anchors is verified
// and valid at now.
func fetchZSKs(ctx context.Context, p *Policy, anchors []*dns.DNSKEY, now time.Time) ([]*dns.DNSKEY, error) {
	if len(anchors) == 0 {
		return nil, fmt.Errorf("the import file names no KSK of the other provider to check its DNSKEY RRset with")
	}
	ctx, cancel := context.WithTimeout(ctx, importFetchTimeout)
	defer cancel()
	q := new(dns.Msg).SetQuestion(p.Zone, dns.TypeDNSKEY)
	q.SetEdns0(dns.DefaultMsgSize, true)
	c := &dns.Client{Timeout: importFetchTimeout}
	r, _, err := c.ExchangeContext(ctx, q, p.ImportFrom)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, q, p.ImportFrom)
	}
	if err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("DNSKEY %s: %s", p.Zone, dns.RcodeToString[r.Rcode])
	}
	var set []dns.RR
	var sigs []*dns.RRSIG
	for _, rr := range r.Answer {
		if dns.CanonicalName(rr.Header().Name) != p.Zone {
			continue
		}
		switch x := rr.(type) {
		case *dns.DNSKEY:
			set = append(set, x)
		case *dns.RRSIG:
			if x.TypeCovered == dns.TypeDNSKEY {
				sigs = append(sigs, x)
			}
		}
	}
	if len(set) == 0 || len(set) > maxImportKeys*2 {
		return nil, fmt.Errorf("DNSKEY %s: %d keys in the answer", p.Zone, len(set))
	}
	if !signedByAnchor(set, sigs, anchors, now) {
		return nil, fmt.Errorf("DNSKEY %s: no valid signature by an imported KSK", p.Zone)
	}
	var out []*dns.DNSKEY
	for _, rr := range set {
		k := rr.(*dns.DNSKEY)
		if k.Flags == authority.FlagsZSK && k.Protocol == 3 && k.Algorithm == p.Algorithm {
			c := dns.Copy(k).(*dns.DNSKEY)
			c.Hdr.Name = p.Zone
			out = append(out, c)
		}
	}
	return out, nil
}

// signedByAnchor reports whether one of sigs, by a key of anchors that is
// in set, verifies over set and is valid at now.
func signedByAnchor(set []dns.RR, sigs []*dns.RRSIG, anchors []*dns.DNSKEY, now time.Time) bool {
	for _, sig := range sigs {
		for _, a := range anchors {
			if sig.KeyTag != a.KeyTag() || sig.Algorithm != a.Algorithm || !sig.ValidityPeriod(now) {
				continue
			}
			inSet := slices.ContainsFunc(set, func(rr dns.RR) bool { return sameKey(rr.(*dns.DNSKEY), a) })
			if inSet && authority.VerifySignature(sig, a, set) == nil {
				return true
			}
		}
	}
	return false
}

// checkImportFrom checks an import-dnskey-from address at start.
func checkImportFrom(p *Policy) error {
	if p.ImportFrom == "" {
		return nil
	}
	if p.ImportDNSKEY == "" {
		return fmt.Errorf("import-dnskey-from needs import-dnskey (the file names the other provider's KSK that must sign what it answers)")
	}
	if _, _, err := net.SplitHostPort(p.ImportFrom); err != nil {
		return fmt.Errorf("import-dnskey-from=%s: want ADDRESS:PORT", p.ImportFrom)
	}
	return nil
}
