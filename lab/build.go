package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"

	"github.com/sextant-dns/sextant/authority"
)

// Signature windows: the lab signs from an hour ago for 30 days; the
// expired zone's window closed 30 days ago; the future zone's opens in 10
// days, well past the clock skew validators forgive (Unbound accepts an
// inception up to a day ahead, val-sig-skew-max).
const (
	sigBackdate = time.Hour
	sigLifetime = 30 * 24 * time.Hour
	futureStart = 10 * 24 * time.Hour
)

// builtZone is one zone on its way from definition to served records.
type builtZone struct {
	def    zoneDef
	parent string
	keys   []*authority.Key
	// ds is what the parent publishes: DS records, nil for an insecure
	// delegation.
	ds   []dns.RR
	rrs  []dns.RR
	zone *authority.Zone
}

// world is the built lab content: addresses and zones.
type world struct {
	addrs map[string]netip.Addr // NS host name (aliases too) -> address
	zones []*builtZone          // in labZones order
	by    map[string]*builtZone
}

// serverAddr is the address of the server at offset in the block of base.
func serverAddr(base netip.Addr, offset int) netip.Addr {
	b := base.As4()
	b[2], b[3] = byte(offset>>8), byte(offset)
	return netip.AddrFrom4(b)
}

// buildWorld generates keys, writes every zone's records and signs them.
func buildWorld(now time.Time, base netip.Addr, bulk int) (*world, error) {
	w := &world{addrs: make(map[string]netip.Addr), by: make(map[string]*builtZone)}
	for _, s := range labServers() {
		w.addrs[s.host] = serverAddr(base, s.offset)
	}
	for alias, host := range hostAliases() {
		w.addrs[alias] = w.addrs[host]
	}
	for _, d := range labZones(bulk) {
		z := &builtZone{def: d}
		w.zones = append(w.zones, z)
		w.by[d.origin] = z
	}
	for _, z := range w.zones {
		z.parent = w.parentOf(z.def.origin)
	}
	if err := w.generateKeys(); err != nil {
		return nil, err
	}
	if err := w.signAll(now); err != nil {
		return nil, err
	}
	return w, nil
}

// parentOf finds the nearest enclosing zone of origin.
func (w *world) parentOf(origin string) string {
	for p := origin; p != "."; {
		p = dnsname.Parent(p)
		if w.by[p] != nil {
			return p
		}
	}
	return ""
}

// generateKeys makes every signed zone's keys, concurrently (the RSA ones
// take a while), and the DS records the parents will publish.
func (w *world) generateKeys() error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, z := range w.zones {
		if z.def.sign == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := z.makeKeys(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (z *builtZone) makeKeys() error {
	s := z.def.sign
	ksk, err := authority.GenerateKey(z.def.origin, s.alg, authority.FlagsKSK)
	if err != nil {
		return fmt.Errorf("lab zone %s: %w", z.def.origin, err)
	}
	z.keys = []*authority.Key{ksk}
	if s.split {
		zsk, err := authority.GenerateKey(z.def.origin, s.alg, authority.FlagsZSK)
		if err != nil {
			return fmt.Errorf("lab zone %s: %w", z.def.origin, err)
		}
		z.keys = append(z.keys, zsk)
	}
	dsKey := ksk.DNSKEY
	switch {
	case z.def.ds == dsNone:
		return nil // an island: the parent publishes no DS
	case z.def.ds == dsWrong:
		other, err := authority.GenerateKey(z.def.origin, s.alg, authority.FlagsKSK)
		if err != nil {
			return fmt.Errorf("lab zone %s: %w", z.def.origin, err)
		}
		dsKey = other.DNSKEY
	case z.def.brk == breakUnknownAlg:
		dsKey = dns.Copy(dsKey).(*dns.DNSKEY)
		dsKey.Algorithm = AlgUnknown
	}
	ds := dsKey.ToDS(dns.SHA256)
	if ds == nil {
		return fmt.Errorf("lab zone %s: cannot make DS", z.def.origin)
	}
	if z.def.ds == dsUnknownDigest {
		ds.DigestType = DigestUnknown
	}
	z.ds = []dns.RR{ds}
	return nil
}

// children lists the zones delegated directly from origin.
func (w *world) children(origin string) []*builtZone {
	var out []*builtZone
	for _, z := range w.zones {
		if z.parent == origin && z.def.origin != origin {
			out = append(out, z)
		}
	}
	return out
}

// unsignedRecords writes a zone's records: SOA, NS, its body, A records
// for the name-server hosts it is authoritative for, delegations with DS
// and glue, and the bulk hosts.
func (w *world) unsignedRecords(z *builtZone) ([]dns.RR, error) {
	d := z.def
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL 3600\n", d.origin)
	fmt.Fprintf(&b, "@ SOA %s hostmaster.%s 1 7200 3600 1209600 300\n", d.ns[0], strings.TrimPrefix(d.origin, "."))
	for _, ns := range d.ns {
		fmt.Fprintf(&b, "@ NS %s\n", ns)
	}
	b.WriteString(d.body)

	children := w.children(d.origin)
	under := func(name string) *builtZone {
		for _, c := range children {
			if dnsname.IsAtOrBelow(name, c.def.origin) {
				return c
			}
		}
		return nil
	}
	hosts := make([]string, 0, len(w.addrs))
	for h := range w.addrs {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		if dnsname.IsAtOrBelow(h, d.origin) && under(h) == nil {
			fmt.Fprintf(&b, "%s A %s\n", h, w.addrs[h])
		}
	}
	glue := map[string]bool{}
	needGlue := func(ns string) {
		if dnsname.IsAtOrBelow(ns, d.origin) && under(ns) != nil && !glue[ns] {
			glue[ns] = true
			fmt.Fprintf(&b, "%s A %s\n", ns, w.addrs[ns])
		}
	}
	for _, ns := range d.ns {
		needGlue(ns)
	}
	for _, c := range children {
		for _, ns := range c.def.ns {
			fmt.Fprintf(&b, "%s NS %s\n", c.def.origin, ns)
			needGlue(ns)
		}
		for _, ds := range c.ds {
			b.WriteString(ds.String() + "\n")
		}
	}
	for i := range d.bulk {
		fmt.Fprintf(&b, "%s A %s\n", BulkName(i), bulkAddr(i))
	}

	zp := dns.NewZoneParser(strings.NewReader(b.String()), d.origin, d.origin)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("lab zone %s: %w", d.origin, err)
	}
	return rrs, nil
}

// signAll builds, signs, breaks and loads every served zone, concurrently.
func (w *world) signAll(now time.Time) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, z := range w.zones {
		if z.def.delegationOnly {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.buildZone(z, now); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (w *world) buildZone(z *builtZone, now time.Time) error {
	rrs, err := w.unsignedRecords(z)
	if err != nil {
		return err
	}
	if s := z.def.sign; s != nil {
		opts := authority.SignOptions{
			Keys:       z.keys,
			Inception:  now.Add(-sigBackdate),
			Expiration: now.Add(sigLifetime),
			NSEC3:      s.nsec3,
			PublishCDS: s.cds,
		}
		switch {
		case s.expired:
			opts.Inception = now.Add(-2 * sigLifetime)
			opts.Expiration = now.Add(-sigLifetime)
		case s.future:
			opts.Inception = now.Add(futureStart)
			opts.Expiration = now.Add(futureStart + sigLifetime)
		}
		rrs, err = authority.Sign(z.def.origin, rrs, opts)
		if err != nil {
			return fmt.Errorf("lab: %w", err)
		}
		rrs, err = breakZone(z.def.origin, z.def.brk, rrs)
		if err != nil {
			return fmt.Errorf("lab zone %s: %w", z.def.origin, err)
		}
	}
	z.rrs = rrs
	z.zone, err = authority.NewZone(z.def.origin, rrs)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// breakZone damages a signed zone as its case asks.
func breakZone(origin string, brk breakage, rrs []dns.RR) ([]dns.RR, error) {
	sigAt := func(rr dns.RR, name string, covered uint16) bool {
		s, ok := rr.(*dns.RRSIG)
		return ok && s.TypeCovered == covered && dnsname.Canonical(s.Hdr.Name) == name
	}
	switch brk {
	case breakNone:
		return rrs, nil
	case breakSigWWW:
		www, nosig := "www."+origin, "nosig."+origin
		found := false
		for _, rr := range rrs {
			if sigAt(rr, www, dns.TypeA) {
				s := rr.(*dns.RRSIG)
				s.Signature = corruptBase64(s.Signature)
				found = true
			}
		}
		if !found {
			return nil, errors.New("no RRSIG for www A to corrupt")
		}
		return slices.DeleteFunc(rrs, func(rr dns.RR) bool { return sigAt(rr, nosig, dns.TypeA) }), nil
	case breakUnsignedDNSKEY:
		return slices.DeleteFunc(rrs, func(rr dns.RR) bool { return sigAt(rr, origin, dns.TypeDNSKEY) }), nil
	case breakNoDenial:
		return slices.DeleteFunc(rrs, func(rr dns.RR) bool {
			s, ok := rr.(*dns.RRSIG)
			return rr.Header().Rrtype == dns.TypeNSEC || ok && s.TypeCovered == dns.TypeNSEC
		}), nil
	case breakUnknownAlg:
		tags := map[uint16]uint16{}
		for _, rr := range rrs {
			if k, ok := rr.(*dns.DNSKEY); ok {
				old := k.KeyTag()
				k.Algorithm = AlgUnknown
				tags[old] = k.KeyTag()
			}
		}
		for _, rr := range rrs {
			if s, ok := rr.(*dns.RRSIG); ok {
				s.Algorithm = AlgUnknown
				s.KeyTag = tags[s.KeyTag]
			}
		}
		return rrs, nil
	}
	return nil, fmt.Errorf("unknown breakage %d", brk)
}

// corruptBase64 flips bits in the middle of a base64-encoded signature so
// that it still parses but no longer verifies.
func corruptBase64(s string) string {
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
