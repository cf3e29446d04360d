package lab

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/internal/dnsname"
)

// This file is a small, test-only chain-of-trust checker: it asks the lab's
// servers directly and verifies every step with miekg/dns, from the root
// DS down. It shares no code with the signer.

// asker sends queries to lab servers.
type asker struct {
	t   *testing.T
	lab *Lab
}

// ask sends one DO query to server over proto ("udp" or "tcp").
func (a asker) ask(s *Server, proto, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, true)
	m.RecursionDesired = false
	c := &dns.Client{Net: proto, Timeout: 2 * time.Second, UDPSize: 1232}
	r, rtt, err := c.Exchange(m, s.AddrPort().String())
	return r, rtt, err
}

// mustAsk is ask that fails the test on error or a reply that is not
// authoritative.
func (a asker) mustAsk(s *Server, proto, name string, qtype uint16) *dns.Msg {
	a.t.Helper()
	r, _, err := a.ask(s, proto, name, qtype)
	if err != nil {
		a.t.Fatalf("%s %s/%s @%s: %v", proto, name, dns.TypeToString[qtype], s.Host(), err)
	}
	return r
}

// primary is the first working server of a zone.
func (a asker) primary(origin string) *Server {
	a.t.Helper()
	for _, s := range a.lab.ServersFor(origin) {
		if !s.Dropping() && !s.Refusing() {
			return s
		}
	}
	a.t.Fatalf("no working server for %s", origin)
	return nil
}

// rrsetOf picks the records of one name and type, and the RRSIGs over
// them, from a section.
func rrsetOf(section []dns.RR, name string, qtype uint16) (set []dns.RR, sigs []*dns.RRSIG) {
	for _, rr := range section {
		if !dnsname.Equal(rr.Header().Name, name) {
			continue
		}
		if s, ok := rr.(*dns.RRSIG); ok {
			if s.TypeCovered == qtype {
				sigs = append(sigs, s)
			}
			continue
		}
		if rr.Header().Rrtype == qtype {
			set = append(set, rr)
		}
	}
	return set, sigs
}

// verifySet checks that at least one RRSIG over set verifies with one of
// keys and is valid at now.
func verifySet(set []dns.RR, sigs []*dns.RRSIG, keys []*dns.DNSKEY, now time.Time) error {
	if len(set) == 0 {
		return fmt.Errorf("empty RRset")
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%s/%s has no RRSIG", set[0].Header().Name, dns.TypeToString[set[0].Header().Rrtype])
	}
	var errs []string
	for _, sig := range sigs {
		for _, k := range keys {
			if k.KeyTag() != sig.KeyTag || k.Algorithm != sig.Algorithm {
				continue
			}
			// ED448 goes through the signer's own verifier (miekg/dns
			// has none); the signer's tests check its signed data
			// against miekg/dns.
			if err := authority.VerifySignature(sig, k, set); err != nil {
				errs = append(errs, fmt.Sprintf("key %d: %v", k.KeyTag(), err))
				continue
			}
			if !sig.ValidityPeriod(now) {
				errs = append(errs, fmt.Sprintf("key %d: signature outside its validity period", k.KeyTag()))
				continue
			}
			return nil
		}
	}
	return fmt.Errorf("%s/%s: no RRSIG verifies: %v", set[0].Header().Name, dns.TypeToString[set[0].Header().Rrtype], errs)
}

// chain finds and verifies zone keys top-down, memoised per zone.
type chain struct {
	asker
	now  time.Time
	keys map[string][]*dns.DNSKEY
}

func newChain(t *testing.T, l *Lab, now time.Time) *chain {
	return &chain{asker: asker{t: t, lab: l}, now: now, keys: map[string][]*dns.DNSKEY{}}
}

// zoneKeys returns the DNSKEYs of origin after checking that they chain up
// to the lab's trust anchor: parent's DS RRset signed by the parent's keys,
// a DNSKEY matching a DS, and that key signing the DNSKEY RRset.
func (c *chain) zoneKeys(origin string) ([]*dns.DNSKEY, error) {
	if k, ok := c.keys[origin]; ok {
		return k, nil
	}
	var dsSet []dns.RR
	if origin == Root {
		dsSet = c.lab.RootDS()
	} else {
		z := c.lab.world.by[origin]
		if z == nil {
			return nil, fmt.Errorf("no zone %s", origin)
		}
		parentKeys, err := c.zoneKeys(z.parent)
		if err != nil {
			return nil, fmt.Errorf("parent of %s: %w", origin, err)
		}
		r := c.mustAsk(c.primary(z.parent), "udp", origin, dns.TypeDS)
		set, sigs := rrsetOf(r.Answer, origin, dns.TypeDS)
		if len(set) == 0 {
			return nil, fmt.Errorf("no DS for %s in %s", origin, z.parent)
		}
		if err := verifySet(set, sigs, parentKeys, c.now); err != nil {
			return nil, fmt.Errorf("DS of %s: %w", origin, err)
		}
		dsSet = set
	}
	r := c.mustAsk(c.primary(origin), "tcp", origin, dns.TypeDNSKEY)
	set, sigs := rrsetOf(r.Answer, origin, dns.TypeDNSKEY)
	var keys, anchors []*dns.DNSKEY
	for _, rr := range set {
		k := rr.(*dns.DNSKEY)
		keys = append(keys, k)
		for _, d := range dsSet {
			ds := d.(*dns.DS)
			if got := k.ToDS(ds.DigestType); got != nil && strings.EqualFold(got.Digest, ds.Digest) && ds.Algorithm == k.Algorithm {
				anchors = append(anchors, k)
			}
		}
	}
	if len(anchors) == 0 {
		return nil, fmt.Errorf("no DNSKEY of %s matches its DS", origin)
	}
	if err := verifySet(set, sigs, anchors, c.now); err != nil {
		return nil, fmt.Errorf("DNSKEY of %s: %w", origin, err)
	}
	c.keys[origin] = keys
	return keys, nil
}

// secureAnswer queries name/qtype at the zone's server over proto and
// verifies the answer RRset of owner up the chain.
func (c *chain) secureAnswer(origin, proto, name string, qtype uint16) (*dns.Msg, error) {
	keys, err := c.zoneKeys(origin)
	if err != nil {
		return nil, err
	}
	r := c.mustAsk(c.primary(origin), proto, name, qtype)
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
		return r, fmt.Errorf("%s/%s: rcode %s, AA %v", name, dns.TypeToString[qtype], dns.RcodeToString[r.Rcode], r.Authoritative)
	}
	set, sigs := rrsetOf(r.Answer, name, qtype)
	return r, verifySet(set, sigs, keys, c.now)
}

// verifySection verifies every RRset of a section that has RRSIGs and
// checks that every RRset of the given types carries some.
func (c *chain) verifySection(origin string, section []dns.RR, must ...uint16) error {
	keys, err := c.zoneKeys(origin)
	if err != nil {
		return err
	}
	type key struct {
		name string
		typ  uint16
	}
	seen := map[key]bool{}
	for _, rr := range section {
		h := rr.Header()
		if h.Rrtype == dns.TypeRRSIG || h.Rrtype == dns.TypeOPT {
			continue
		}
		k := key{dnsname.Lower(h.Name), h.Rrtype}
		if seen[k] {
			continue
		}
		seen[k] = true
		set, sigs := rrsetOf(section, h.Name, h.Rrtype)
		if len(sigs) == 0 && !slices.Contains(must, h.Rrtype) {
			continue
		}
		if err := verifySet(set, sigs, keys, c.now); err != nil {
			return err
		}
	}
	return nil
}

// canonicalLess orders plain (escape-free) names as RFC 4034 6.1.
func canonicalLess(a, b string) bool {
	la := dns.SplitDomainName(strings.ToLower(a))
	lb := dns.SplitDomainName(strings.ToLower(b))
	slices.Reverse(la)
	slices.Reverse(lb)
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			return la[i] < lb[i]
		}
	}
	return len(la) < len(lb)
}

// nsecCovers reports whether an NSEC proves that name does not exist:
// owner < name < next, or the last NSEC of the ring.
func nsecCovers(n *dns.NSEC, name string) bool {
	owner, next := n.Hdr.Name, n.NextDomain
	if canonicalLess(owner, next) {
		return canonicalLess(owner, name) && canonicalLess(name, next)
	}
	return canonicalLess(owner, name) || canonicalLess(name, next)
}
